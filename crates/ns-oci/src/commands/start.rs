//! `start ID`: let a created container's process run its command.

use ns_runtime::lifecycle;

use super::{Failure, Verb};
use crate::args::{Parsed, UsageError};
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "start",
    aliases: &[],
    args: "ID",
    about: "start a created container",
    flags: &[],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub id: String,
}

impl Start {
    pub fn from(p: &Parsed) -> Result<Start, UsageError> {
        Ok(Start { id: p.id(VERB.name)? })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let s = Start::from(&p)?;
    for w in lifecycle::start(&ctx.root, &s.id)? {
        ctx.warn(&w);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn start(args: &[&str]) -> Result<Start, UsageError> {
        Start::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn start_takes_one_id_and_no_flag() {
        assert_eq!(start(&["c"]).unwrap(), Start { id: "c".into() });
        assert_eq!(start(&[]).unwrap_err().0, "start needs a container id");
        assert_eq!(start(&["c", "d"]).unwrap_err().0, "start takes one container id, not \"c d\"");
        assert_eq!(start(&["--force", "c"]).unwrap_err().0, "unknown flag --force");
    }
}
