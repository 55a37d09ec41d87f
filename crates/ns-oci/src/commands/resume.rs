//! `resume ID`: thaw a paused container (`ctr task resume`).

use ns_runtime::lifecycle;

use super::pause::Pause;
use super::{Failure, Verb};
use crate::args::Parsed;
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "resume",
    aliases: &[],
    args: "ID",
    about: "thaw a paused container",
    flags: &[],
    flags_end_at_positional: false,
    main,
};

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    lifecycle::resume(&ctx.root, &Pause::from(&p, VERB.name)?.id)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    #[test]
    fn resume_takes_one_id() {
        let resume = |args: &[&str]| Pause::from(&parsed(&VERB, args)?, "resume");
        assert_eq!(resume(&["c"]).unwrap().id, "c");
        assert_eq!(resume(&[]).unwrap_err().0, "resume needs a container id");
    }
}
