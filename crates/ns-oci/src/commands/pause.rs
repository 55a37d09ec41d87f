//! `pause ID`: freeze every process of the container (cgroup v1's freezer, or v2's
//! cgroup.freeze) until `resume`; its state says `paused` meanwhile. containerd's shim calls it
//! for `ctr task pause`.

use ns_runtime::lifecycle;

use super::{Failure, Verb};
use crate::args::{Parsed, UsageError};
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "pause",
    aliases: &[],
    args: "ID",
    about: "freeze every process of a running container",
    flags: &[],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub id: String,
}

impl Pause {
    pub fn from(p: &Parsed, verb: &str) -> Result<Pause, UsageError> {
        Ok(Pause { id: p.id(verb)? })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    lifecycle::pause(&ctx.root, &Pause::from(&p, VERB.name)?.id)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    #[test]
    fn pause_takes_one_id_and_no_flag() {
        let pause = |args: &[&str]| Pause::from(&parsed(&VERB, args)?, "pause");
        assert_eq!(pause(&["c"]).unwrap(), Pause { id: "c".into() });
        assert_eq!(pause(&[]).unwrap_err().0, "pause needs a container id");
        assert_eq!(pause(&["--all", "c"]).unwrap_err().0, "unknown flag --all");
    }
}
