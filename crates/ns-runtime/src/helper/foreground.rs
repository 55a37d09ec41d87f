//! Phase 3, in the foreground: launch the container, relay what it reports (and its terminal)
//! to the caller while signals are forwarded to it, then reap it, remove its cgroup, run the
//! poststop hooks, remove its image root's directory (if it has one) and report how it ended.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::launch::{launch, lease_ids, Launched};
use super::prepare::{prepare, HostFacts, Prepared};
use super::signals::CHILD;
use crate::child::Detach;
use crate::error::{Result, SetupError};
use crate::proto::{self, Event, Report};
use crate::request::{RunRequest, Sink};
use crate::sys;
use crate::tty::socketpair;

/// Run in the foreground: relay events, forward signals, return the exit status. The
/// container's directory of an image root goes with it, whether it ran or not, before its end
/// is reported.
pub fn foreground(req: &RunRequest, sink: Sink) -> Result<(Option<i32>, Option<i32>)> {
    let ran = foreground_in(req, sink);
    ended(req, ran, sink)
}

/// How a container ended: its exit code, signal, and whether the OOM killer killed it.
pub(super) type Ended = (Option<i32>, Option<i32>, bool);

/// The end of a foreground or warm run, whether it ran or not: the container's directory of an
/// image root is removed, then its end is reported.
pub(super) fn ended(
    req: &RunRequest,
    ran: Result<Ended>,
    sink: Sink,
) -> Result<(Option<i32>, Option<i32>)> {
    let id = req.config.annotations.get("io.ns.id").map(String::as_str).unwrap_or_default();
    if let Err(e) = crate::image_root::remove_container_dir(&req.config, id) {
        sink(&Event::Warning { message: e.message });
    }
    let (code, signal, oom_killed) = ran?;
    sink(&Event::Exited { exit_code: code, signal, oom_killed });
    Ok((code, signal))
}

fn foreground_in(req: &RunRequest, sink: Sink) -> Result<Ended> {
    let mut p = prepare(req, &HostFacts::read())?;
    lease_ids(&mut p)?;
    let console = if p.process.terminal { Some(socketpair()?) } else { None };
    let detach =
        Detach { console: console.as_ref().map(|(_, c)| c.as_raw_fd()), ..Detach::default() };
    let mut l = match launch(&p, detach, true) {
        Ok(l) => l,
        Err(e) => {
            after_failed_hook(&p, &e, 0, sink);
            return Err(e);
        }
    };
    for message in std::mem::take(&mut l.warnings) {
        sink(&Event::Warning { message });
    }
    // The terminal's master arrives once the child has made it (or never, if it failed first).
    let master = console.and_then(|(ours, theirs)| {
        drop(theirs);
        sys::recv_fd(ours.as_raw_fd()).ok().flatten()
    });
    relay(&p, l, master, sink)
}

/// From a launched child to its end (the foreground's, and a warm container's once its command
/// is sent): relay what it reports (and its terminal, with `master`) while signals are
/// forwarded to it, reap it, remove its cgroup, run the poststop hooks; how it ended.
pub(super) fn relay(
    p: &Prepared,
    mut l: Launched,
    master: Option<OwnedFd>,
    sink: Sink,
) -> Result<Ended> {
    l.guard.0 = 0;
    let pid = l.pid;
    let mut started = false;
    let mut failed = false;
    let mut exit = None;
    let mut warnings = Vec::new();
    let mut poststart = |p: &Prepared| {
        warnings.extend(crate::hooks::run_hooks_warning(
            "poststart",
            &p.hooks.poststart,
            &p.hook_state("running", pid),
        ));
    };
    // Lines from the child, then None at their end: without init, the report pipe closes
    // when exec succeeds, and that is the start.
    let mut on_line = |line: Option<&[u8]>| match line.map(serde_json::from_slice::<Report>) {
        Some(Ok(Report::Started)) => {
            started = true;
            sink(&Event::Started { pid });
            poststart(p);
        }
        Some(Ok(Report::Error { error })) => {
            failed = true;
            sink(&Event::Error { error });
        }
        Some(Ok(Report::Exit { code, signal })) => exit = Some((code, signal)),
        Some(Ok(Report::Created | Report::Waiting) | Err(_)) => {}
        None if !started && !failed => {
            started = true;
            sink(&Event::Started { pid });
            poststart(p);
        }
        None => {}
    };
    match master {
        Some(m) => crate::tty::relay(m, l.reports.as_raw_fd(), &mut on_line),
        None => proto::each_line(l.reports.as_raw_fd(), &mut on_line),
    }
    for message in warnings {
        sink(&Event::Warning { message });
    }
    let (_, status) =
        sys::waitpid(pid, 0).map_err(|e| SetupError::sys("wait for the container", None, e))?;
    CHILD.store(0, Ordering::Relaxed);
    let (code, signal) = crate::init::trusted_exit(exit, status);
    let oom_killed = l.cgroup.as_ref().is_some_and(|c| c.oom_killed());
    if let Some(cg) = l.cgroup.take() {
        cg.remove();
    }
    if let Some(g) = l.rdt.take() {
        g.remove();
    }
    // Its networks given back before its end is reported.
    drop(l.network.take());
    for message in crate::hooks::run_hooks_warning(
        "poststop",
        &p.hooks.poststop,
        &p.hook_state("stopped", pid),
    ) {
        sink(&Event::Warning { message });
    }
    Ok((code, signal, oom_killed))
}

/// After a hook of the set-up failed (prestart, createRuntime, createContainer): the container
/// is gone, and the runtime spec goes on with its poststop hooks, whose failures are warnings.
pub(super) fn after_failed_hook(p: &Prepared, e: &SetupError, pid: i32, sink: Sink) {
    if crate::hooks::is_hook_failure(e) {
        for message in crate::hooks::run_hooks_warning(
            "poststop",
            &p.hooks.poststop,
            &p.hook_state("stopped", pid),
        ) {
            sink(&Event::Warning { message });
        }
    }
}
