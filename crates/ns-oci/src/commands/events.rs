//! `events [--stats] [--interval D] ID`: a container's events as runc prints them, a JSON
//! object a line: `{"type":"stats","id":…,"data":{cpu, memory, pids, blkio, hugetlb}}` every
//! interval (once, with `--stats`), and `{"type":"oom","id":…}` each time the kernel's OOM
//! killer kills in it. It ends when the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use ns_runtime::cgroup::Cgroup;
use ns_runtime::cgroup_stats::{oom_kills, runc_stats};
use ns_runtime::state::{ContainerDir, Status};
use ns_runtime::SetupError;
use serde_json::json;

use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const STATS: Flag = Flag::switch("stats", None, "print the figures once and end");
const INTERVAL: Flag =
    Flag::value("interval", None, "DURATION", "how often the figures are printed (default 5s)");

pub static VERB: Verb = Verb {
    name: "events",
    aliases: &[],
    args: "ID",
    about: "print a container's figures and OOM kills as JSON lines",
    flags: &[STATS, INTERVAL],
    flags_end_at_positional: false,
    main,
};

/// A duration as Go writes them: `5s`, `100ms`, `1m`, `1h`, `1.5s`.
pub fn parse_duration(v: &str) -> Result<Duration, UsageError> {
    let bad =
        || UsageError::new(format!("--interval: {v:?} is not a duration (such as 5s or 500ms)"));
    let split = v.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    pub id: String,
    pub stats: bool,
    pub interval: Duration,
}

impl Events {
    pub fn from(p: &Parsed) -> Result<Events, UsageError> {
        let interval = match p.value(INTERVAL.long) {
            Some(v) => parse_duration(v)?,
            None => Duration::from_secs(5),
        };
        Ok(Events { id: p.id(VERB.name)?, stats: p.switch(STATS.long), interval })
    }
}

fn line(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let e = Events::from(&p)?;
    let dir = ContainerDir::open(&ctx.root, &e.id)?;
    let rec = dir.read_record()?;
    if dir.status(&rec) == Status::Stopped {
        return Err(SetupError::config("id", format!("container {:?} is not running", e.id)).into());
    }
    let cg: Cgroup = rec.cgroup.clone().ok_or_else(|| {
        let mut err = SetupError::sys(
            "read the events of",
            Some(&e.id),
            ns_runtime::sys::Errno(libc::ENOENT),
        );
        err.message = format!("container {:?} has no cgroup to read figures from", e.id);
        err
    })?;
    let stats = |cg: &Cgroup| json!({ "type": "stats", "id": e.id, "data": runc_stats(cg) });
    if e.stats {
        line(stats(&cg));
        return Ok(0);
    }
    let mut ooms = oom_kills(&cg);
    let mut next = Instant::now();
    while ContainerDir::alive(&rec) {
        let kills = oom_kills(&cg);
        for _ in ooms..kills {
            line(json!({ "type": "oom", "id": e.id }));
        }
        ooms = ooms.max(kills);
        if Instant::now() >= next {
            line(stats(&cg));
            next += e.interval;
        }
        std::thread::sleep(e.interval.min(Duration::from_millis(50)));
    }
    // The last kills, if the OOM killer ended it.
    for _ in ooms..oom_kills(&cg) {
        line(json!({ "type": "oom", "id": e.id }));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    #[test]
    fn events_takes_stats_and_an_interval_as_go_writes_durations() {
        let ev = |args: &[&str]| Events::from(&parsed(&VERB, args)?);
        assert_eq!(
            ev(&["c"]).unwrap(),
            Events { id: "c".into(), stats: false, interval: Duration::from_secs(5) }
        );
        assert_eq!(
            ev(&["--stats", "--interval", "250ms", "c"]).unwrap().interval,
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["5", "s", "0s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(ev(&[]).unwrap_err().0, "events needs a container id");
    }
}
