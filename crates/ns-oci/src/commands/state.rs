//! `state ID`: the container's state as the runtime spec defines it (JSON), read off the
//! kernel each time.

use ns_runtime::lifecycle;

use super::{Failure, Verb};
use crate::args::{Parsed, UsageError};
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "state",
    aliases: &[],
    args: "ID",
    about: "print its state (JSON)",
    flags: &[],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
}

impl State {
    pub fn from(p: &Parsed) -> Result<State, UsageError> {
        Ok(State { id: p.id(VERB.name)? })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let s = State::from(&p)?;
    let v = lifecycle::state(&ctx.root, &s.id)?;
    out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn state(args: &[&str]) -> Result<State, UsageError> {
        State::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn state_takes_one_id_and_no_flag() {
        assert_eq!(state(&["c"]).unwrap(), State { id: "c".into() });
        assert_eq!(state(&[]).unwrap_err().0, "state needs a container id");
        assert_eq!(state(&["--format", "json", "c"]).unwrap_err().0, "unknown flag --format");
    }
}
