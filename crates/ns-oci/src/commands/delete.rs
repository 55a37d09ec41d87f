//! `delete [--force] ID`: remove a container and everything it took (cgroups, state folder); a
//! running one only with `--force`, which kills it first.

use ns_runtime::lifecycle;

use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const FORCE: Flag = Flag::switch("force", Some('f'), "kill it first if it still runs");

pub static VERB: Verb = Verb {
    name: "delete",
    aliases: &[],
    args: "ID",
    about: "remove it and all it took",
    flags: &[FORCE],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub id: String,
    pub force: bool,
}

impl Delete {
    pub fn from(p: &Parsed) -> Result<Delete, UsageError> {
        Ok(Delete { id: p.id(VERB.name)?, force: p.switch(FORCE.long) })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let d = Delete::from(&p)?;
    for w in lifecycle::delete(&ctx.root, &d.id, d.force)? {
        ctx.warn(&w);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn delete(args: &[&str]) -> Result<Delete, UsageError> {
        Delete::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn delete_takes_force_and_one_id() {
        assert_eq!(delete(&["--force", "c"]).unwrap(), Delete { id: "c".into(), force: true });
        assert_eq!(delete(&["c", "-f"]).unwrap(), Delete { id: "c".into(), force: true });
        assert_eq!(delete(&["c"]).unwrap(), Delete { id: "c".into(), force: false });
        assert_eq!(delete(&["--all", "c"]).unwrap_err().0, "unknown flag --all");
        assert_eq!(delete(&["-f"]).unwrap_err().0, "delete needs a container id");
    }
}
