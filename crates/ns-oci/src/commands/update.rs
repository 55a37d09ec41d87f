//! `update [flags] ID`: change the limits of a running container. `--resources FILE` (or `-`,
//! standard input) gives them as the runtime spec's `linux.resources`, as containerd's shim
//! passes them (`ctr task update`, Kubernetes' in-place resize); the other flags are runc's,
//! each one field of it, given on top of the file's.

use std::io::Read;

use ns_runtime::lifecycle;
use ns_runtime::resources::{BlockIo, Cpu, Memory, Pids, Resources};
use ns_runtime::SetupError;

use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const RESOURCES: Flag = Flag::value(
    "resources",
    Some('r'),
    "FILE|-",
    "the limits as linux.resources JSON (- for stdin)",
);
const MEMORY: Flag =
    Flag::value("memory", None, "BYTES", "memory limit (k, m, g suffixes; -1 for none)");
const MEMORY_RESERVATION: Flag =
    Flag::value("memory-reservation", None, "BYTES", "memory reservation (soft limit)");
const MEMORY_SWAP: Flag =
    Flag::value("memory-swap", None, "BYTES", "memory plus swap limit (-1 for unlimited swap)");
const KERNEL_MEMORY: Flag = Flag::value("kernel-memory", None, "BYTES", "kernel memory limit (v1)");
const KERNEL_MEMORY_TCP: Flag =
    Flag::value("kernel-memory-tcp", None, "BYTES", "kernel TCP buffer limit (v1)");
const CPU_SHARE: Flag = Flag::value("cpu-share", None, "N", "CPU shares (relative weight)");
const CPU_PERIOD: Flag = Flag::value("cpu-period", None, "USECS", "CFS period");
const CPU_QUOTA: Flag = Flag::value("cpu-quota", None, "USECS", "CFS quota per period (-1: none)");
const CPU_BURST: Flag = Flag::value("cpu-burst", None, "USECS", "CFS burst");
const CPU_RT_PERIOD: Flag = Flag::value("cpu-rt-period", None, "USECS", "realtime period (v1)");
const CPU_RT_RUNTIME: Flag = Flag::value("cpu-rt-runtime", None, "USECS", "realtime runtime (v1)");
const CPU_IDLE: Flag = Flag::value("cpu-idle", None, "0|1", "SCHED_IDLE for the cgroup");
const CPUSET_CPUS: Flag = Flag::value("cpuset-cpus", None, "LIST", "CPUs to use (0-3,5)");
const CPUSET_MEMS: Flag = Flag::value("cpuset-mems", None, "LIST", "memory nodes to use");
const PIDS_LIMIT: Flag = Flag::value("pids-limit", None, "N", "most processes (0 or -1: none)");
const BLKIO_WEIGHT: Flag = Flag::value("blkio-weight", None, "N", "block I/O weight, 10 to 1000");
const L3_CACHE_SCHEMA: Flag =
    Flag::value("l3-cache-schema", None, "SCHEMA", "refused: resctrl groups are not updated");
const MEM_BW_SCHEMA: Flag =
    Flag::value("mem-bw-schema", None, "SCHEMA", "refused: resctrl groups are not updated");

pub static VERB: Verb = Verb {
    name: "update",
    aliases: &[],
    args: "ID",
    about: "change the limits of a running container",
    flags: &[
        RESOURCES,
        MEMORY,
        MEMORY_RESERVATION,
        MEMORY_SWAP,
        KERNEL_MEMORY,
        KERNEL_MEMORY_TCP,
        CPU_SHARE,
        CPU_PERIOD,
        CPU_QUOTA,
        CPU_BURST,
        CPU_RT_PERIOD,
        CPU_RT_RUNTIME,
        CPU_IDLE,
        CPUSET_CPUS,
        CPUSET_MEMS,
        PIDS_LIMIT,
        BLKIO_WEIGHT,
        L3_CACHE_SCHEMA,
        MEM_BW_SCHEMA,
    ],
    flags_end_at_positional: false,
    main,
};

/// A size in bytes: a number with an optional k, m, g or t (powers of 1024, `b` allowed
/// after), or -1.
pub fn parse_size(flag: &str, v: &str) -> Result<i64, UsageError> {
    let bad = || {
        UsageError::new(format!(
            "--{flag}: {v:?} is not a size (bytes, or with k, m, g, t; -1 for none)"
        ))
    };
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, mult) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1i64 << 10),
        Some('m') => (&digits[..digits.len() - 1], 1 << 20),
        Some('g') => (&digits[..digits.len() - 1], 1 << 30),
        Some('t') => (&digits[..digits.len() - 1], 1 << 40),
        _ => (digits, 1),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(mult).ok_or_else(bad)
}

fn signed(p: &Parsed, f: &Flag) -> Result<Option<i64>, UsageError> {
    match p.value(f.long) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| UsageError::new(format!("--{}: {v:?} is not a number", f.long))),
    }
}

/// What `update` is asked for.
#[derive(Debug, Clone)]
pub struct Update {
    pub id: String,
    /// `--resources`: a file, or `-` for standard input.
    pub resources: Option<String>,
    /// The other flags, as the fields they set.
    pub flags: Resources,
}

impl Update {
    pub fn from(p: &Parsed) -> Result<Update, UsageError> {
        let size = |f: &Flag| p.value(f.long).map(|v| parse_size(f.long, v)).transpose();
        for f in [L3_CACHE_SCHEMA, MEM_BW_SCHEMA] {
            if p.value(f.long).is_some() {
                return Err(UsageError::new(format!(
                    "--{}: a container's resctrl group (linux.intelRdt) is not changed by update",
                    f.long
                )));
            }
        }
        let memory = Memory {
            limit: size(&MEMORY)?,
            reservation: size(&MEMORY_RESERVATION)?,
            swap: size(&MEMORY_SWAP)?,
            kernel: size(&KERNEL_MEMORY)?,
            kernel_tcp: size(&KERNEL_MEMORY_TCP)?,
            ..Memory::default()
        };
        let cpu = Cpu {
            shares: p.number(CPU_SHARE.long)?,
            period: p.number(CPU_PERIOD.long)?,
            quota: signed(p, &CPU_QUOTA)?,
            burst: p.number(CPU_BURST.long)?,
            realtime_period: p.number(CPU_RT_PERIOD.long)?,
            realtime_runtime: signed(p, &CPU_RT_RUNTIME)?,
            idle: signed(p, &CPU_IDLE)?,
            cpus: p.value(CPUSET_CPUS.long).map(str::to_owned),
            mems: p.value(CPUSET_MEMS.long).map(str::to_owned),
        };
        let mut flags = Resources::default();
        let mem_given = memory.limit.is_some()
            || memory.reservation.is_some()
            || memory.swap.is_some()
            || memory.kernel.is_some()
            || memory.kernel_tcp.is_some();
        if mem_given {
            flags.memory = Some(memory);
        }
        let cpu_given = serde_json::to_value(&cpu)
            .is_ok_and(|v| v.as_object().is_some_and(|o| o.values().any(|x| !x.is_null())));
        if cpu_given {
            flags.cpu = Some(cpu);
        }
        flags.pids = signed(p, &PIDS_LIMIT)?.map(|limit| Pids { limit });
        if let Some(w) = p.number::<u16>(BLKIO_WEIGHT.long)? {
            flags.block_io = Some(BlockIo { weight: Some(w), ..BlockIo::default() });
        }
        Ok(Update {
            id: p.id(VERB.name)?,
            resources: p.value(RESOURCES.long).map(str::to_owned),
            flags,
        })
    }

    /// The file's resources (if any) with the flags' on top.
    pub fn resources(&self, stdin: &mut dyn Read) -> Result<Resources, SetupError> {
        let mut r = match self.resources.as_deref() {
            None => Resources::default(),
            Some(src) => {
                let mut data = Vec::new();
                let read = if src == "-" {
                    stdin.read_to_end(&mut data).map(|_| ())
                } else {
                    std::fs::read(src).map(|d| data = d)
                };
                read.map_err(|e| {
                    SetupError::sys(
                        "read",
                        Some(src),
                        ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
                    )
                })?;
                serde_json::from_slice(&data).map_err(|e| {
                    SetupError::config(
                        "resources",
                        format!("is not a runtime spec's linux.resources: {e}"),
                    )
                })?
            }
        };
        let f = self.flags.clone();
        if let Some(m) = f.memory {
            let have = r.memory.get_or_insert_with(Default::default);
            have.limit = m.limit.or(have.limit);
            have.reservation = m.reservation.or(have.reservation);
            have.swap = m.swap.or(have.swap);
            have.kernel = m.kernel.or(have.kernel);
            have.kernel_tcp = m.kernel_tcp.or(have.kernel_tcp);
        }
        if let Some(c) = f.cpu {
            let have = r.cpu.get_or_insert_with(Default::default);
            have.shares = c.shares.or(have.shares);
            have.period = c.period.or(have.period);
            have.quota = c.quota.or(have.quota);
            have.burst = c.burst.or(have.burst);
            have.realtime_period = c.realtime_period.or(have.realtime_period);
            have.realtime_runtime = c.realtime_runtime.or(have.realtime_runtime);
            have.idle = c.idle.or(have.idle);
            have.cpus = c.cpus.or(have.cpus.take());
            have.mems = c.mems.or(have.mems.take());
        }
        if f.pids.is_some() {
            r.pids = f.pids;
        }
        if let Some(b) = f.block_io {
            r.block_io.get_or_insert_with(Default::default).weight = b.weight;
        }
        if r.is_empty() {
            return Err(SetupError::config(
                "resources",
                "nothing to update: give --resources or a limit flag",
            ));
        }
        Ok(r)
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let u = Update::from(&p)?;
    let r = u.resources(&mut std::io::stdin())?;
    lifecycle::update(&ctx.root, &u.id, &r)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn update(args: &[&str]) -> Result<Update, UsageError> {
        Update::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn sizes_take_suffixes_as_runc_does() {
        assert_eq!(parse_size("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_size("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "2kb").unwrap(), 2048);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert_eq!(
            parse_size("memory", "lots").unwrap_err().0,
            "--memory: \"lots\" is not a size (bytes, or with k, m, g, t; -1 for none)"
        );
    }

    #[test]
    fn flags_become_the_fields_they_set_over_the_file() {
        let u =
            update(&["--memory", "64m", "--cpu-quota", "-1", "--pids-limit", "10", "c"]).unwrap();
        assert_eq!(u.id, "c");
        let json = br#"{"memory":{"limit":1,"swap":268435456},"cpu":{"shares":512}}"#;
        let u = Update { resources: Some("-".into()), ..u };
        let r = u.resources(&mut &json[..]).unwrap();
        let m = r.memory.unwrap();
        assert_eq!((m.limit, m.swap), (Some(64 << 20), Some(256 << 20)));
        let c = r.cpu.unwrap();
        assert_eq!((c.shares, c.quota), (Some(512), Some(-1)));
        assert_eq!(r.pids.unwrap().limit, 10);
        let none = update(&["c"]).unwrap();
        assert_eq!(none.resources(&mut &b""[..]).unwrap_err().path.as_deref(), Some("resources"));
        let bad = Update { resources: Some("-".into()), ..update(&["c"]).unwrap() };
        assert!(bad
            .resources(&mut &b"{\"memory\": 3}"[..])
            .unwrap_err()
            .message
            .starts_with("resources: is not"));
        assert!(update(&["--l3-cache-schema", "L3:0=f", "c"]).unwrap_err().0.contains("resctrl"));
        assert!(update(&["--memory", "x", "c"]).is_err());
    }
}
