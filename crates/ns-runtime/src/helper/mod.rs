//! The helper: the process that sets a container up from outside it (its parent; what the
//! container does for itself is `child`). It reads one request from its control socket and
//! sends events back on it. The set-up reads top to bottom, a file a phase:
//!
//! 1. `prepare`: check the request and compute the plan; nothing is touched yet;
//! 2. `launch`: join namespaces, make the cgroup, clone the child, write its id maps, attach
//!    what comes from outside, run the hooks that prepare its namespaces, release it;
//! 3. `foreground` (run it and wait), `create` (it waits for `start`) or `warm` (it waits for
//!    its command: a pool's container);
//! 4. `monitor`: a created container's parent while it lives, keeping its log and exit status.
//!
//! `signals` forwards the helper's signals to the container throughout. The third mode, exec
//! into a running container, is `crate::exec`.

pub mod create;
pub mod foreground;
pub mod launch;
pub mod monitor;
pub mod prepare;
pub mod signals;
pub mod warm;

pub use create::create;
pub use foreground::foreground;
pub use prepare::{prepare, Prepared};
pub use warm::warm;

use crate::error::SetupError;
use crate::proto::{self, Event, LineReader};
use crate::request::RunRequest;
use crate::sys;

/// The helper's entry point: the request arrives on `control`, events leave on it.
/// Returns the helper's exit code.
pub fn helper_main(control: libc::c_int) -> i32 {
    // SAFETY: ignoring SIGPIPE so a vanished caller shows up as EPIPE, not death.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut reader = LineReader::with_limit(control, proto::MAX_REQUEST);
    let Some(line) = reader.next_line() else { return 125 };
    let mut sink = |e: &Event| {
        let _ = proto::send(control, e);
    };
    let req: RunRequest = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let err = SetupError::config("config", format!("is not a valid runtime spec: {e}"));
            sink(&Event::Error { error: err });
            sink(&Event::Exited { exit_code: Some(125), signal: None, oom_killed: false });
            return 125;
        }
    };
    proto::keep_control(reader);
    if req.die_with_parent {
        let _ = sys::set_pdeathsig(libc::SIGKILL);
        // SAFETY: plain syscall.
        if unsafe { libc::getppid() } == 1 {
            return 125;
        }
    }
    let result = match (&req.exec, &req.create) {
        (Some(ex), _) => crate::exec::exec(ex, &mut sink).map(|_| ()),
        (None, Some(cr)) => create(&req, cr, &mut sink),
        (None, None) if req.warm => warm(&req, &mut sink).map(|_| ()),
        (None, None) => foreground(&req, &mut sink).map(|_| ()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            sink(&Event::Error { error: e });
            sink(&Event::Exited { exit_code: Some(125), signal: None, oom_killed: false });
            125
        }
    }
}
