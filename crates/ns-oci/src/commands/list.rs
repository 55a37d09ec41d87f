//! `list [--format table|json] [--quiet]`: every container under the state root.

use ns_runtime::lifecycle;

use super::{Failure, Format, Verb, FORMAT};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const QUIET: Flag = Flag::switch("quiet", Some('q'), "print the ids alone");

pub static VERB: Verb = Verb {
    name: "list",
    aliases: &["ls"],
    args: "",
    about: "list the containers",
    flags: &[FORMAT, QUIET],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub format: Format,
    pub quiet: bool,
}

impl List {
    pub fn from(p: &Parsed) -> Result<List, UsageError> {
        p.none(VERB.name)?;
        Ok(List { format: Format::from(p)?, quiet: p.switch(QUIET.long) })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let l = List::from(&p)?;
    let all = lifecycle::list(&ctx.root);
    if l.quiet {
        for v in all {
            out!("{}", v.id);
        }
        return Ok(0);
    }
    match l.format {
        Format::Json => {
            out!("{}", serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()))
        }
        Format::Table => {
            out!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID",
                "PID",
                "STATUS",
                "BUNDLE",
                "CREATED"
            );
            for v in all {
                out!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    v.id,
                    v.pid.unwrap_or(0),
                    v.status.as_str(),
                    v.bundle,
                    v.created,
                    v.owner
                );
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn list(args: &[&str]) -> Result<List, UsageError> {
        List::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn list_takes_a_format_and_quiet_and_no_argument() {
        assert_eq!(list(&[]).unwrap(), List { format: Format::Table, quiet: false });
        assert_eq!(
            list(&["--format=json", "-q"]).unwrap(),
            List { format: Format::Json, quiet: true }
        );
        assert_eq!(list(&["c"]).unwrap_err().0, "list takes no arguments, not \"c\"");
        assert_eq!(
            list(&["-f", "yaml"]).unwrap_err().0,
            "--format: \"yaml\" is not one of table, json"
        );
    }
}
