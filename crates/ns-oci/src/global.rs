//! The global flags (before the command) and what every command runs with: the state root and
//! where errors go. Errors go to stderr and, with `--log`, to the log file: with
//! `--log-format json` one `{"level":"error","msg":…,"time":…}` object a line, which is what
//! containerd's shim and conmon read back and show their users.

use std::io::Write;
use std::path::PathBuf;

use ns_runtime::state;
use ns_runtime::SetupError;

use crate::args::{Flag, Parsed, UsageError};

pub const FLAGS: &[Flag] = &[
    Flag::value("root", None, "DIR", "where containers' state lives (default: /run/ns as root)"),
    Flag::value("log", None, "FILE", "also write errors to FILE"),
    Flag::value("log-format", None, "text|json", "how --log lines are written (default: text)"),
    Flag::switch("debug", None, "accepted for engines; changes nothing"),
    Flag::switch("systemd-cgroup", None, "accepted for engines; cgroups are made directly"),
    Flag::value("rootless", None, "true|false|auto", "accepted for engines; detected by itself"),
    Flag::value("criu", None, "PATH", "accepted for engines; there is no checkpointing"),
    Flag::switch("version", Some('v'), "print the version"),
];

pub const LOG_FORMATS: &[&str] = &["text", "json"];
const ROOTLESS: &[&str] = &["true", "false", "auto"];

/// The global flags, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub json_log: bool,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub rootless: Option<&'static str>,
    pub criu: Option<String>,
    pub version: bool,
    pub help: bool,
}

impl Global {
    pub fn from(p: &Parsed) -> Result<Global, UsageError> {
        Ok(Global {
            root: p.value("root").map(PathBuf::from),
            log: p.value("log").map(PathBuf::from),
            json_log: p.choice("log-format", LOG_FORMATS)? == Some("json"),
            debug: p.switch("debug"),
            systemd_cgroup: p.switch("systemd-cgroup"),
            rootless: p.choice("rootless", ROOTLESS)?,
            criu: p.value("criu").map(str::to_owned),
            version: p.switch("version"),
            help: p.switch("help"),
        })
    }

    pub fn context(&self) -> Ctx {
        Ctx {
            root: self.root.clone().unwrap_or_else(state::default_root),
            log: self.log.clone(),
            json_log: self.json_log,
        }
    }
}

/// What a command runs with.
pub struct Ctx {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub json_log: bool,
}

impl Ctx {
    /// Report a failure on stderr and in the log.
    pub fn error(&self, e: &SetupError) {
        let mut msg = e.message.clone();
        if let Some(h) = &e.hint {
            msg.push_str(&format!(" ({h})"));
        }
        self.report(&msg, None);
    }

    /// Report a line the user must read (`extra` goes to stderr only: the usage pointer).
    pub fn report(&self, msg: &str, extra: Option<&str>) {
        match extra {
            Some(x) => err!("ns-oci: {msg}\n{x}"),
            None => err!("ns-oci: {msg}"),
        }
        self.log_line("error", msg);
    }

    /// Report what went wrong without failing the command (a poststart or poststop hook).
    pub fn warn(&self, msg: &str) {
        err!("ns-oci: warning: {msg}");
        self.log_line("warning", msg);
    }

    fn log_line(&self, level: &str, msg: &str) {
        let Some(log) = &self.log else { return };
        let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) else {
            return;
        };
        let time = state::now_rfc3339();
        let _ = if self.json_log {
            writeln!(f, "{}", serde_json::json!({ "level": level, "msg": msg, "time": time }))
        } else {
            writeln!(f, "time={time:?} level={level} msg={msg:?}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;

    fn global(v: &[&str]) -> Result<(Global, usize), UsageError> {
        let args: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        let (p, at) = parse(&args, FLAGS, true)?;
        Ok((Global::from(&p)?, at))
    }

    #[test]
    fn engines_global_flags_parse_and_end_at_the_command() {
        // containerd's shim; conmon adds --systemd-cgroup when asked for it.
        let (g, at) = global(&[
            "--root",
            "/run/r",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "--bundle",
        ])
        .unwrap();
        assert_eq!(at, 7);
        assert_eq!(g.root, Some(PathBuf::from("/run/r")));
        assert_eq!(g.log, Some(PathBuf::from("/b/log.json")));
        assert!(g.json_log && g.systemd_cgroup && !g.debug);
        let (g, _) = global(&["--debug", "--log-format=text", "--rootless=auto", "-v"]).unwrap();
        assert!(g.debug && !g.json_log && g.version);
        assert_eq!(g.rootless, Some("auto"));
        assert!(global(&["--help"]).unwrap().0.help);
    }

    #[test]
    fn bad_global_flags_are_errors_naming_them() {
        assert_eq!(
            global(&["--log-format", "xml", "list"]).unwrap_err().0,
            "--log-format: \"xml\" is not one of text, json"
        );
        assert_eq!(
            global(&["--rootless", "create"]).unwrap_err().0,
            "--rootless: \"create\" is not one of true, false, auto"
        );
        assert_eq!(global(&["--roots", "/x"]).unwrap_err().0, "unknown flag --roots");
        assert_eq!(global(&["--root"]).unwrap_err().0, "flag --root needs a value");
    }
}
