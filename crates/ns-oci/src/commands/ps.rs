//! `ps [--format table|json] ID`: the container's processes, by host PID (`--format json` is
//! the list of numbers containerd's shim reads).

use ns_runtime::lifecycle;

use super::{Failure, Format, Verb, FORMAT};
use crate::args::{Parsed, UsageError};
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "ps",
    aliases: &[],
    args: "ID",
    about: "its processes (host PIDs)",
    flags: &[FORMAT],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ps {
    pub id: String,
    pub format: Format,
}

impl Ps {
    pub fn from(p: &Parsed) -> Result<Ps, UsageError> {
        Ok(Ps { id: p.id(VERB.name)?, format: Format::from(p)? })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let ps = Ps::from(&p)?;
    let pids = lifecycle::pids(&ctx.root, &ps.id)?;
    match ps.format {
        Format::Json => {
            out!("{}", serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into()))
        }
        Format::Table => {
            out!("{:<8} CMD", "PID");
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd: Vec<String> = cmd
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                out!("{pid:<8} {}", cmd.join(" "));
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn ps(args: &[&str]) -> Result<Ps, UsageError> {
        Ps::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn ps_takes_a_format_and_one_id() {
        assert_eq!(
            ps(&["--format", "json", "c"]).unwrap(),
            Ps { id: "c".into(), format: Format::Json }
        );
        assert_eq!(ps(&["-f", "table", "c"]).unwrap().format, Format::Table);
        assert_eq!(ps(&["c"]).unwrap().format, Format::Table);
        assert_eq!(
            ps(&["--format", "xml", "c"]).unwrap_err().0,
            "--format: \"xml\" is not one of table, json"
        );
        assert_eq!(ps(&["--format"]).unwrap_err().0, "flag --format needs a value");
    }
}
