//! `exec [flags] ID [COMMAND…]`: run another process in a running container. The process comes
//! from `--process` (a runtime-spec `process` object, as containerd's shim and conmon pass it:
//! `exec --process P --detach --pid-file F [--console-socket S] ID`) or from the container's own
//! config with the command line's command, environment, directory and user on top. Flags end
//! at the id: what follows is the command, flags and all.

use ns_runtime::exec::exec;
use ns_runtime::proto::Event;
use ns_runtime::request::ExecRequest;
use ns_runtime::spec::{Process, Spec};
use ns_runtime::state::{self, ContainerDir};
use ns_runtime::SetupError;

use super::create::{CONSOLE_SOCKET, PID_FILE};
use super::{absolute, Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const PROCESS: Flag = Flag::value(
    "process",
    Some('p'),
    "FILE",
    "the process to run, as a runtime-spec process (JSON)",
);
const DETACH: Flag = Flag::switch("detach", Some('d'), "leave it running and return");
const TTY: Flag = Flag::switch("tty", Some('t'), "give it a terminal");
const ENV: Flag = Flag::value("env", Some('e'), "K=V", "set a variable (repeatable)");
const CWD: Flag = Flag::value("cwd", None, "DIR", "its working directory in the container");
const USER: Flag = Flag::value("user", Some('u'), "UID[:GID]", "run as this user (numbers)");
const PRESERVE_FDS: Flag =
    Flag::value("preserve-fds", None, "N", "accepted for engines; the process gets stdio alone");
const NO_NEW_PRIVS: Flag = Flag::switch("no-new-privs", None, "set no_new_privs for it");

pub static VERB: Verb = Verb {
    name: "exec",
    aliases: &[],
    args: "ID [COMMAND…]",
    about: "run another process in a running container",
    flags: &[
        PROCESS,
        DETACH,
        PID_FILE,
        CONSOLE_SOCKET,
        TTY,
        ENV,
        CWD,
        USER,
        PRESERVE_FDS,
        NO_NEW_PRIVS,
    ],
    flags_end_at_positional: true,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub id: String,
    pub process: Option<String>,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<(u32, u32)>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<String>,
    pub console_socket: Option<String>,
    pub no_new_privs: bool,
}

fn user(u: &str) -> Result<(u32, u32), UsageError> {
    let (uid, gid) = u.split_once(':').unwrap_or((u, u));
    match (uid.parse(), gid.parse()) {
        (Ok(uid), Ok(gid)) => Ok((uid, gid)),
        _ => Err(UsageError::new(format!("--user: {u:?} must be UID[:GID] (numbers)"))),
    }
}

impl Exec {
    pub fn from(p: &Parsed) -> Result<Exec, UsageError> {
        let (id, mut command) = match p.positionals.split_first() {
            Some((id, rest)) => (id.clone(), rest.to_vec()),
            None => return Err(UsageError::new("exec needs a container id")),
        };
        if command.first().map(String::as_str) == Some("--") {
            command.remove(0);
        }
        let process = p.value(PROCESS.long).map(str::to_owned);
        if process.is_none() && command.is_empty() {
            return Err(UsageError::new("exec needs a command (after the id) or --process"));
        }
        for e in p.all(ENV.long) {
            if !e.contains('=') {
                return Err(UsageError::new(format!("--env: {e:?} must be KEY=VALUE")));
            }
        }
        Ok(Exec {
            id,
            process,
            command,
            env: p.all(ENV.long),
            cwd: p.value(CWD.long).map(str::to_owned),
            user: p.value(USER.long).map(user).transpose()?,
            tty: p.switch(TTY.long),
            detach: p.switch(DETACH.long),
            pid_file: p.value(PID_FILE.long).map(absolute),
            console_socket: p.value(CONSOLE_SOCKET.long).map(absolute),
            no_new_privs: p.switch(NO_NEW_PRIVS.long),
        })
    }
}

/// The process to start: `--process`, or the container's own with the command line's.
fn process(dir: &ContainerDir, x: &Exec) -> Result<Process, SetupError> {
    let mut process: Process = match &x.process {
        Some(file) => {
            let data = std::fs::read(file).map_err(|e| {
                SetupError::sys(
                    "read",
                    Some(file),
                    ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT)),
                )
            })?;
            serde_json::from_slice(&data).map_err(|e| {
                SetupError::config("--process", format!("is not a valid process: {e}"))
            })?
        }
        None => {
            let config: Spec = std::fs::read(dir.file(state::CONFIG_FILE))
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
                .unwrap_or_default();
            let mut pr = config.process.unwrap_or_default();
            pr.args = x.command.clone();
            pr.terminal = x.tty;
            pr
        }
    };
    if process.args.is_empty() {
        return Err(SetupError::config("--process", "args must name a command"));
    }
    for e in &x.env {
        let key = e.split('=').next().unwrap_or_default();
        process.env.retain(|v| v.split('=').next() != Some(key));
        process.env.push(e.clone());
    }
    if let Some(cwd) = &x.cwd {
        process.cwd = cwd.clone();
    }
    if let Some((uid, gid)) = x.user {
        process.user.uid = uid;
        process.user.gid = gid;
    }
    if x.no_new_privs {
        process.no_new_privileges = true;
    }
    Ok(process)
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let x = Exec::from(&p)?;
    let dir = ContainerDir::open(&ctx.root, &x.id)?;
    let req = ExecRequest {
        id: x.id.clone(),
        root: ctx.root.display().to_string(),
        process: process(&dir, &x)?,
        detach: x.detach,
        pid_file: x.pid_file.clone(),
        console_socket: x.console_socket.clone(),
    };
    let mut failure = None;
    let (code, signal) = exec(&req, &mut |e: &Event| {
        if let Event::Error { error } = e {
            failure = Some(error.clone());
        }
    })?;
    if let Some(e) = failure {
        ctx.error(&e);
        return Ok(code.unwrap_or(1));
    }
    Ok(code.unwrap_or_else(|| signal.map_or(0, |s| 128 + s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn exec(args: &[&str]) -> Result<Exec, UsageError> {
        Exec::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn the_shims_exec_parses_to_its_fields() {
        let x = exec(&[
            "--process",
            "/b/p.json",
            "--console-socket",
            "/s",
            "--detach",
            "--pid-file",
            "/b/x.pid",
            "c",
        ])
        .unwrap();
        assert_eq!(x.process.as_deref(), Some("/b/p.json"));
        assert_eq!(x.console_socket.as_deref(), Some("/s"));
        assert_eq!(x.pid_file.as_deref(), Some("/b/x.pid"));
        assert!(x.detach && !x.tty);
        assert_eq!(x.id, "c");
        assert!(x.command.is_empty());
    }

    #[test]
    fn what_follows_the_id_is_the_command_flags_and_all() {
        let x = exec(&[
            "-e",
            "A=1",
            "--env=B=2",
            "--cwd",
            "/tmp",
            "-u",
            "5:6",
            "-t",
            "c",
            "sh",
            "-c",
            "ls -d",
        ])
        .unwrap();
        assert_eq!(x.command, ["sh", "-c", "ls -d"]);
        assert_eq!(x.env, ["A=1", "B=2"]);
        assert_eq!(x.cwd.as_deref(), Some("/tmp"));
        assert_eq!(x.user, Some((5, 6)));
        assert!(x.tty);
        assert_eq!(exec(&["-u", "7", "c", "id"]).unwrap().user, Some((7, 7)));
        assert_eq!(exec(&["c", "--", "ls", "--all"]).unwrap().command, ["ls", "--all"]);
    }

    #[test]
    fn bad_exec_lines_name_what_is_wrong() {
        assert_eq!(exec(&[]).unwrap_err().0, "exec needs a container id");
        assert_eq!(exec(&["c"]).unwrap_err().0, "exec needs a command (after the id) or --process");
        assert_eq!(
            exec(&["-u", "root", "c", "id"]).unwrap_err().0,
            "--user: \"root\" must be UID[:GID] (numbers)"
        );
        assert_eq!(
            exec(&["-e", "NOEQ", "c", "id"]).unwrap_err().0,
            "--env: \"NOEQ\" must be KEY=VALUE"
        );
        assert_eq!(exec(&["--bundle", "b", "c", "id"]).unwrap_err().0, "unknown flag --bundle");
        assert_eq!(exec(&["--process"]).unwrap_err().0, "flag --process needs a value");
    }
}
