//! OCI hooks: each is run with the container's state (JSON) on its stdin, its own arguments
//! and environment, and killed after its timeout. Where each point lies:
//!
//! - `prestart` (deprecated) and `createRuntime`: by the helper, in the host's namespaces, once
//!   the container's namespaces exist and before its set-up begins (so before pivot_root);
//!   these and `createContainer` and `startContainer` are told the status `created`;
//! - `createContainer`: in the container's namespaces, before pivot_root;
//! - `startContainer`: in the container, after `start`, before the command is executed;
//! - `poststart`: by whoever started it, once the command runs;
//! - `poststop`: once the container is deleted (or, in the foreground, has ended).
//!
//! A failing hook before the command runs is an error that ends the container (the operation
//! fails, nothing of the container is left, and its poststop hooks run); `poststart` and
//! `poststop` failures are warnings, and the other hooks and the lifecycle go on, as the
//! runtime spec asks.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Result, SetupError};
use crate::spec::Hook;
use crate::sys::Errno;

/// The state a hook reads on stdin (the runtime spec's state).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub pid: i32,
    pub bundle: &'a str,
    pub annotations: &'a std::collections::BTreeMap<String, String>,
}

/// Run the hooks of a point where a failure fails the operation: the first that fails ends it.
pub fn run_hooks(kind: &str, hooks: &[Hook], state: &HookState) -> Result<()> {
    let input = serde_json::to_vec(state).unwrap_or_default();
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, i, h, &input)?;
    }
    Ok(())
}

/// Run the hooks of a point where a failure is only reported (`poststart`, `poststop`): every
/// one runs, and each failure is a warning.
pub fn run_hooks_warning(kind: &str, hooks: &[Hook], state: &HookState) -> Vec<String> {
    let input = serde_json::to_vec(state).unwrap_or_default();
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| run_one(kind, i, h, &input).err().map(|e| e.message))
        .collect()
}

/// Whether `e` is the failure of a hook (of `run_hooks`), the step the runtime spec continues
/// from by destroying the container and running its poststop hooks.
pub fn is_hook_failure(e: &SetupError) -> bool {
    e.step.starts_with("run hook hooks.")
}

fn run_one(kind: &str, i: usize, h: &Hook, input: &[u8]) -> Result<()> {
    let field = format!("hooks.{kind}[{i}]");
    let fail = |what: String| {
        let mut e = SetupError::sys(format!("run hook {field}"), Some(&h.path), Errno(libc::EIO));
        e.message = format!("hook {field} ({}) {what}", h.path);
        e
    };
    let mut cmd = Command::new(&h.path);
    if let Some((argv0, rest)) = h.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
        cmd.args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| fail(format!("could not be started: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let deadline = h.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(fail(format!("failed: {st}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", h.timeout.unwrap_or(0))));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
