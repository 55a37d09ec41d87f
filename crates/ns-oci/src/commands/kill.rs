//! `kill [--all] ID [SIGNAL]`: signal the container's first process, or with `--all` every
//! process in it. The signal is a number (`9`, as containerd's shim sends it) or a name (`KILL`,
//! `SIGKILL`); SIGTERM when none is given.

use ns_runtime::lifecycle;

use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const ALL: Flag = Flag::switch("all", Some('a'), "signal every process of the container");

pub static VERB: Verb = Verb {
    name: "kill",
    aliases: &[],
    args: "ID [SIGNAL]",
    about: "signal it (default: SIGTERM)",
    flags: &[ALL],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub id: String,
    pub signal: libc::c_int,
    pub all: bool,
}

impl Kill {
    pub fn from(p: &Parsed) -> Result<Kill, UsageError> {
        let (id, signal) = match p.positionals.as_slice() {
            [] => return Err(UsageError::new("kill needs a container id")),
            [id] => (id, "TERM"),
            [id, sig] => (id, sig.as_str()),
            more => {
                return Err(UsageError::new(format!(
                    "kill takes a container id and a signal, not {:?}",
                    more.join(" ")
                )))
            }
        };
        let signal = lifecycle::parse_signal(signal).map_err(|e| UsageError::new(e.message))?;
        Ok(Kill { id: id.clone(), signal, all: p.switch(ALL.long) })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let k = Kill::from(&p)?;
    lifecycle::kill(&ctx.root, &k.id, k.signal, k.all)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn kill(args: &[&str]) -> Result<Kill, UsageError> {
        Kill::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn kill_takes_numbers_names_and_all() {
        // containerd's shim: `kill --all ID 9`.
        assert_eq!(
            kill(&["--all", "c", "9"]).unwrap(),
            Kill { id: "c".into(), signal: 9, all: true }
        );
        assert_eq!(kill(&["c", "KILL"]).unwrap().signal, libc::SIGKILL);
        assert_eq!(kill(&["-a", "c", "SIGHUP"]).unwrap().signal, libc::SIGHUP);
        assert_eq!(
            kill(&["c"]).unwrap(),
            Kill { id: "c".into(), signal: libc::SIGTERM, all: false }
        );
    }

    #[test]
    fn bad_kill_lines_name_what_is_wrong() {
        assert_eq!(kill(&[]).unwrap_err().0, "kill needs a container id");
        assert_eq!(kill(&["c", "NOPE"]).unwrap_err().0, "signal: unknown signal \"NOPE\"");
        assert_eq!(
            kill(&["c", "9", "x"]).unwrap_err().0,
            "kill takes a container id and a signal, not \"c 9 x\""
        );
        assert_eq!(kill(&["--force", "c"]).unwrap_err().0, "unknown flag --force");
    }
}
