//! `run [flags] ID`: create and start. With `--detach` the container is left on its own, as
//! after `create` and `start`; otherwise it runs attached to this process, which forwards
//! signals and exits with its status, its state folder there while it runs.

use std::path::Path;

use ns_runtime::helper;
use ns_runtime::lifecycle;
use ns_runtime::proto::Event;
use ns_runtime::state::{self, ContainerDir, Record};
use ns_runtime::SetupError;

use super::create::{
    self, Create, BUNDLE, CONSOLE_SOCKET, NO_NEW_KEYRING, NO_PIVOT, PID_FILE, PRESERVE_FDS,
};
use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const DETACH: Flag = Flag::switch("detach", Some('d'), "leave it running on its own and return");

const FLAGS: &[Flag] = &[
    BUNDLE,
    PID_FILE,
    CONSOLE_SOCKET,
    PRESERVE_FDS,
    NO_PIVOT,
    NO_NEW_KEYRING,
    DETACH,
    Flag::switch("keep", None, "accepted for engines; the folder goes once it has ended"),
    Flag::switch("no-subreaper", None, "accepted for engines; changes nothing"),
];

pub static VERB: Verb = Verb {
    name: "run",
    aliases: &[],
    args: "ID",
    about: "create and start, in the foreground unless --detach",
    flags: FLAGS,
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub create: Create,
    pub detach: bool,
}

impl Run {
    pub fn from(p: &Parsed) -> Result<Run, UsageError> {
        let run = Run { create: Create::from(p, VERB.name)?, detach: p.switch(DETACH.long) };
        if !run.detach && run.create.console_socket.is_some() {
            return Err(UsageError::new(
                "--console-socket is for create, and run --detach; a foreground run uses this terminal",
            ));
        }
        Ok(run)
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let r = Run::from(&p)?;
    if r.detach {
        create::create(ctx, &r.create)?;
        for w in lifecycle::start(&ctx.root, &r.create.id)? {
            ctx.warn(&w);
        }
        Ok(0)
    } else {
        Ok(run_foreground(ctx, &r.create)?)
    }
}

fn run_foreground(ctx: &Ctx, c: &Create) -> Result<i32, SetupError> {
    let req = create::request(c)?;
    let dir = ContainerDir::create(&ctx.root, &c.id)?;
    let bundle = req.bundle.clone().unwrap_or_default();
    let annotations = req.config.annotations.clone();
    let mut failure = None;
    let result = helper::foreground(&req, &mut |e: &Event| match e {
        Event::Started { pid } => {
            let rec = Record {
                oci_version: ns_runtime::SPEC_VERSION.into(),
                id: c.id.clone(),
                pid: *pid,
                start_time: state::process_start_time(*pid).unwrap_or(0),
                bundle: bundle.clone(),
                created: state::now_rfc3339(),
                annotations: annotations.clone(),
                // SAFETY: plain syscall.
                owner: unsafe { libc::geteuid() },
                monitor_pid: None,
                cgroup: None,
                rdt: None,
            };
            let _ = dir.write_record(&rec);
            if let Some(pf) = &c.pid_file {
                let _ = state::write_atomic(Path::new(pf), pid.to_string().as_bytes());
            }
        }
        Event::Error { error } => failure = Some(error.clone()),
        Event::Warning { message } => ctx.warn(message),
        _ => {}
    });
    let _ = std::fs::remove_dir_all(&dir.path);
    let (code, signal) = result?;
    if let Some(e) = failure {
        ctx.error(&e);
    }
    Ok(code.unwrap_or_else(|| 128 + signal.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn run(args: &[&str]) -> Result<Run, UsageError> {
        Run::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn run_parses_create_s_flags_and_detach() {
        let r = run(&["--detach", "--bundle", "/b", "--pid-file=/p", "--keep", "c"]).unwrap();
        assert!(r.detach);
        assert_eq!(r.create.bundle, std::path::PathBuf::from("/b"));
        assert_eq!(r.create.pid_file.as_deref(), Some("/p"));
        assert_eq!(r.create.id, "c");
        let r = run(&["-d", "--console-socket", "/s", "c"]).unwrap();
        assert_eq!(r.create.console_socket.as_deref(), Some("/s"));
        assert!(!run(&["c"]).unwrap().detach);
    }

    #[test]
    fn bad_run_lines_name_what_is_wrong() {
        assert_eq!(
            run(&["--console-socket", "/s", "c"]).unwrap_err().0,
            "--console-socket is for create, and run --detach; a foreground run uses this terminal"
        );
        assert_eq!(
            run(&["--detach=no", "c"]).unwrap_err().0,
            "flag --detach takes no value (or true, false), not \"no\""
        );
        assert_eq!(run(&["--all", "c"]).unwrap_err().0, "unknown flag --all");
        assert_eq!(run(&[]).unwrap_err().0, "run needs a container id");
    }
}
