//! Phase 3, warm (a pool's container): launched as for the foreground, but its process stops
//! where its command would start (`child::wait_for_command`): namespaces made, id maps written,
//! root filesystem mounted, paths masked, identity taken. The helper says so to its caller
//! (`Event::Ready`), waits for the command on its control socket (`proto::RunMessage`, with
//! stdin, stdout and stderr), checks it and passes it on; from there on it is the foreground
//! helper (`foreground::relay`). A caller that closes its socket instead ends the container
//! unused: killed, reaped, its cgroup and id range given back.

use std::os::fd::{AsRawFd, RawFd};

use super::foreground::{after_failed_hook, ended, relay};
use super::launch::{launch, lease_ids};
use super::prepare::{prepare, HostFacts};
use crate::child::Detach;
use crate::error::{Result, SetupError};
use crate::process::Command;
use crate::proto::{self, Event, LineReader, Report, RunMessage};
use crate::request::{RunRequest, Sink};
use crate::sys::{self, Errno};
use crate::tty::socketpair;

fn protocol(what: &str) -> SetupError {
    let mut e = SetupError::sys("read the command", None, Errno(libc::EPROTO));
    e.code = "EPROTO".into();
    e.message = format!("failed to read the command: {what}");
    e
}

/// Check what the caller sent before it reaches the container: the fields a run may set.
fn check(msg: &RunMessage) -> Result<()> {
    if msg.args.is_empty() {
        return Err(SetupError::config("command", "must not be empty"));
    }
    if !msg.cwd.starts_with('/') {
        return Err(SetupError::config("cwd", "must be an absolute path"));
    }
    if let Some(i) = msg.env.iter().position(|e| !e.contains('=')) {
        return Err(SetupError::config(format!("env[{i}]"), "must be KEY=VALUE"));
    }
    // NUL bytes, as the container would refuse them.
    Command::new(&msg.args, &msg.env).map(|_| ())
}

/// Set up a warm container, wait for its command, run it: the exit status.
pub fn warm(req: &RunRequest, sink: Sink) -> Result<(Option<i32>, Option<i32>)> {
    // What the caller sends after its request: here, the command and nothing before it.
    let control = proto::take_control().ok_or_else(|| protocol("no control socket"))?;
    if control.has_buffered() {
        return Err(protocol("bytes after the request, before the container was ready"));
    }
    let mut p = prepare(req, &HostFacts::read())?;
    lease_ids(&mut p)?;
    let (ours, theirs) = socketpair()?;
    let detach = Detach { command: Some(theirs.as_raw_fd()), ..Detach::default() };
    let mut l = match launch(&p, detach, true) {
        Ok(l) => l,
        Err(e) => {
            after_failed_hook(&p, &e, 0, sink);
            return Err(e);
        }
    };
    drop(theirs);

    // Its set-up, until it waits (a failure ends the launch: `l` kills it and takes its cgroup;
    // a createContainer hook's, then the poststop hooks run, as for a cold container).
    let mut reports = LineReader::new(l.reports.as_raw_fd());
    loop {
        match reports.next_line().map(|line| serde_json::from_slice::<Report>(&line)) {
            Some(Ok(Report::Waiting)) => break,
            Some(Ok(Report::Error { error })) => {
                let pid = l.pid;
                drop(l);
                after_failed_hook(&p, &error, pid, sink);
                return Err(error);
            }
            Some(_) => continue,
            None => {
                return Err(SetupError::sys("set up the container", None, Errno(libc::ECHILD))
                    .with_hint("its process ended during set-up"))
            }
        }
    }
    if reports.has_buffered() {
        return Err(protocol("the container reported more than that it waits"));
    }
    // Its mount namespace, held until this helper ends: the container's mounts go down then,
    // after its exit has been reported, not in the exit of its first process.
    let _mounts = sys::recv_fd(ours.as_raw_fd()).ok().flatten();
    for message in std::mem::take(&mut l.warnings) {
        sink(&Event::Warning { message });
    }
    sink(&Event::Ready { pid: l.pid });

    let (line, fds) = match proto::recv_line(control.fd(), proto::MAX_LINE, proto::RUN_FDS) {
        Ok(Some(m)) => m,
        // Let go without a command: dropping `l` ends the container. Its prestart and
        // createRuntime hooks ran: its poststop hooks run once it is gone, as for any other.
        Ok(None) => {
            let pid = l.pid;
            drop(l);
            for message in crate::hooks::run_hooks_warning(
                "poststop",
                &p.hooks.poststop,
                &p.hook_state("stopped", pid),
            ) {
                sink(&Event::Warning { message });
            }
            return Ok((None, None));
        }
        Err(e) => return Err(SetupError::sys("receive the command", None, e)),
    };
    let msg: RunMessage =
        serde_json::from_slice(&line).map_err(|e| protocol(&format!("not a run message ({e})")))?;
    msg.check_stdio(fds.len()).map_err(|e| protocol(&e))?;
    check(&msg)?;
    let mut out = serde_json::to_vec(&msg).unwrap_or_default();
    out.push(b'\n');
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    proto::send_line(ours.as_raw_fd(), &raw, &out)
        .map_err(|e| SetupError::sys("pass the command on", None, e))?;
    // Ours close here: the container holds its stdio now, and nothing else comes its way.
    drop(fds);
    drop(ours);
    // So do our own stdio (the run's, when it kept what the sandbox was made with): its output
    // ends when the container's does, not when this helper does. Kept where hooks run after
    // the start, whose output is the run's, as a cold helper's is.
    if p.hooks.poststart.is_empty() && p.hooks.poststop.is_empty() {
        sys::detach_stdio();
    }
    ended(req, relay(&p, l, None, sink), sink)
}
