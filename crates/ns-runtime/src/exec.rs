//! exec: start another process inside a running container. It joins every namespace of the
//! container's first process — with one `setns` on a pidfd, so all are joined at once and the
//! process cannot be swapped for another with a recycled PID — then forks (the pid namespace
//! takes effect for children) and the child takes the container user's identity and execs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Context, Result, SetupError};
use crate::namespaces::NsKind;
use crate::process::{self, Command};
use crate::proto::{self, Event, Report};
use crate::request::{ExecRequest, Sink};
use crate::spec::Process;
use crate::state::{ContainerDir, Status};
use crate::sys::{self, Errno};

fn pidfd_open(pid: i32) -> sys::SysResult<OwnedFd> {
    // SAFETY: plain syscall; a fresh descriptor is returned.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// The namespaces in which process `pid` differs from us. One of theirs that cannot be read is
/// an error: taken for ours, the process would run outside the container.
fn namespaces_of(pid: i32) -> Result<Vec<NsKind>> {
    let mut out = Vec::new();
    for k in NsKind::ALL {
        let path = format!("/proc/{pid}/ns/{}", k.proc_name());
        let theirs = match std::fs::read_link(&path) {
            Ok(t) => t,
            // A kernel without this kind of namespace.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(SetupError::sys(
                    "read the namespaces of",
                    Some(&path),
                    Errno(e.raw_os_error().unwrap_or(libc::EACCES)),
                ))
            }
        };
        let ours = std::fs::read_link(format!("/proc/self/ns/{}", k.proc_name()));
        if ours.map_or(true, |o| o != theirs) {
            out.push(k);
        }
    }
    Ok(out)
}

/// Join the namespaces of `pid`: all at once through its pidfd; where the kernel cannot (before
/// 5.8), one by one through /proc, the user namespace first unless we are root.
fn join(pid: i32, pidfd: &OwnedFd, kinds: &[NsKind]) -> Result<()> {
    let flags = kinds.iter().fold(0, |f, k| f | k.clone_flag());
    if flags == 0 {
        return Ok(());
    }
    match sys::setns(pidfd.as_raw_fd(), flags) {
        Ok(()) => return Ok(()),
        Err(Errno(libc::EINVAL)) => {}
        Err(e) => {
            return Err(SetupError::sys("join the namespaces of pid", Some(&pid.to_string()), e))
        }
    }
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let mut order = kinds.to_vec();
    order.sort_by_key(|k| (*k == NsKind::User) == root);
    let fds = order
        .iter()
        .map(|k| {
            let p = format!("/proc/{pid}/ns/{}", k.proc_name());
            sys::open(&p, libc::O_RDONLY).map(|fd| (*k, p.clone(), fd)).step("open", Some(&p))
        })
        .collect::<Result<Vec<_>>>()?;
    for (k, p, fd) in fds {
        sys::setns(fd.as_raw_fd(), k.clone_flag())
            .step(&format!("join {} namespace", k.oci_name()), Some(&p))?;
    }
    Ok(())
}

/// Run `req.process` in the container. In the foreground, returns its exit status.
pub fn exec(req: &ExecRequest, sink: Sink) -> Result<(Option<i32>, Option<i32>)> {
    let dir = ContainerDir::open(Path::new(&req.root), &req.id)?;
    let rec = dir.read_record()?;
    let status = dir.status(&rec);
    if status == Status::Stopped || status == Status::Paused {
        let mut e = SetupError::sys("exec in", Some(&req.id), Errno(libc::ESRCH));
        e.message = format!("cannot exec in container {:?}: it is {}", req.id, status.as_str());
        return Err(e);
    }
    let pr = &req.process;
    if !pr.cwd.starts_with('/') {
        return Err(SetupError::config("process.cwd", "must be an absolute path"));
    }
    process::validate_rlimits(&pr.rlimits)?;
    if let Some(c) = &pr.capabilities {
        crate::caps::CapSets::from_spec(c)?;
    }
    let command = Command::new(&pr.args, &pr.env)?;
    // The container's seccomp profile applies to what is executed in it too, and so does its
    // execution domain (linux.personality).
    let config = dir.read_config();
    // Without a mount namespace of its own (the caller's, or one joined) the container is
    // chrooted into its root: so is what is executed in it.
    let chrooted = config.as_ref().is_some_and(|c| {
        c.root.is_some()
            && !c.linux.as_ref().is_some_and(|l| {
                l.namespaces
                    .iter()
                    .any(|n| n.kind == "mount" && n.path.as_deref().unwrap_or("").is_empty())
            })
    });
    let linux = config.and_then(|s| s.linux).unwrap_or_default();
    let seccomp = linux.seccomp.as_ref().map(crate::seccomp::compile).transpose()?;
    let attributes = process::Attributes::plan(
        "process",
        pr.io_priority.as_ref(),
        pr.scheduler.as_ref(),
        linux.personality.as_ref(),
    )?;

    // Whose namespaces are joined: the first process's, or (an init we may not read, rootless)
    // its oldest child's, see `state::namespace_anchor`.
    let anchor = crate::state::namespace_anchor(rec.pid);
    let pidfd = pidfd_open(anchor).step("open a pidfd for", Some(&anchor.to_string()))?;
    // The pidfd pins the process: if it is still the one recorded now (or a child of it), it
    // is the one we join.
    if !ContainerDir::alive(&rec)
        || (anchor != rec.pid && !crate::state::is_child_of(anchor, rec.pid))
    {
        return Err(SetupError::sys("exec in", Some(&req.id), Errno(libc::ESRCH)));
    }
    // Into the container's cgroup first (while its paths are still the host's): the process
    // forked below is born there, under the container's limits.
    if let Some(cg) = &rec.cgroup {
        cg.add(std::process::id() as i32)?;
    }
    let kinds = namespaces_of(anchor)?;
    // Paths given by the caller (the pid file) are the host's: keep a handle on the host's root
    // before joining the container's mount namespace.
    let host_root = sys::open("/", libc::O_PATH | libc::O_DIRECTORY).step("open", Some("/"))?;
    let their_root = if chrooted {
        let p = format!("/proc/{anchor}/root");
        Some(sys::open(&p, libc::O_PATH | libc::O_DIRECTORY).step("open the root of", Some(&p))?)
    } else {
        None
    };
    join(anchor, &pidfd, &kinds)?;
    drop(pidfd);
    if let Some(r) = their_root {
        sys::fchdir(r.as_raw_fd()).step("chdir into the container's root", None)?;
        sys::chroot(".").step("chroot into the container's root", None)?;
    }

    if pr.terminal && req.detach && req.console_socket.is_none() {
        return Err(SetupError::config(
            "process.terminal",
            "a detached exec with a terminal needs --console-socket",
        ));
    }
    let console = if pr.terminal { Some(crate::tty::socketpair()?) } else { None };
    let (rep_r, rep_w) = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
    // The child is born in the container's pid namespace as a copy of this process (its
    // environment, its caller's descriptors, the host's root): undumpable from birth, so that
    // nothing inside can read or take any of it before it executes the command (which makes
    // it dumpable again, as any program).
    sys::set_dumpable(false).step("make the process undumpable", None)?;
    let pid =
        sys::clone_fork(0).map_err(|e| SetupError::sys("fork into the container", None, e))?;
    if pid == 0 {
        drop(rep_r);
        sys::scrub_environment();
        let console_fd = console.as_ref().map_or(-1, |(_, c)| c.as_raw_fd());
        let _ = sys::close_all_except(&[0, 1, 2, rep_w.as_raw_fd(), console_fd]);
        let fd = rep_w.as_raw_fd();
        let (err, code) = match exec_child(
            pr,
            req.detach,
            console.as_ref().map(|(_, c)| c.as_raw_fd()),
            seccomp.as_deref(),
            &attributes,
        ) {
            Ok(()) => command.exec(),
            Err(e) => (e, 125),
        };
        let _ = proto::send(fd, &Report::Error { error: err });
        // SAFETY: ends the process.
        unsafe { libc::_exit(code) }
    }
    drop(rep_w);
    crate::helper::signals::forward_signals_to(if req.detach { 0 } else { pid });
    let master = console.and_then(|(ours, theirs)| {
        drop(theirs);
        sys::recv_fd(ours.as_raw_fd()).ok().flatten()
    });
    // The report pipe closes when exec succeeds (then it has started: its pid file is written
    // and the caller told, while a terminal may still be relayed for long); anything on it
    // says why it did not.
    let mut failed = false;
    let mut started: Option<Result<()>> = None;
    let mut on_line = |line: Option<&[u8]>| match line {
        Some(line) => {
            if let Ok(Report::Error { error }) = serde_json::from_slice::<Report>(line) {
                failed = true;
                sink(&Event::Error { error });
            }
        }
        None if !failed && started.is_none() => {
            let written = match &req.pid_file {
                Some(pf) => write_host_file(&host_root, pf, &pid.to_string()),
                None => Ok(()),
            };
            if written.is_ok() {
                sink(&Event::Started { pid });
            }
            started = Some(written);
        }
        None => {}
    };
    match (master, &req.console_socket) {
        (Some(m), Some(path)) if req.detach => {
            crate::tty::send_to_console_socket(path, &m)?;
            drop(m);
            proto::each_line(rep_r.as_raw_fd(), &mut on_line);
        }
        (Some(m), _) => crate::tty::relay(m, rep_r.as_raw_fd(), &mut on_line),
        (None, _) => proto::each_line(rep_r.as_raw_fd(), &mut on_line),
    }
    match started {
        Some(Err(e)) => return Err(e),
        Some(Ok(())) if req.detach => return Ok((None, None)),
        _ => {}
    }
    let (_, st) =
        sys::waitpid(pid, 0).map_err(|e| SetupError::sys("wait for the process", None, e))?;
    crate::helper::signals::forward_signals_to(0);
    let (code, signal) = sys::decode_status(st);
    sink(&Event::Exited { exit_code: code, signal, oom_killed: false });
    Ok((code, signal))
}

/// Write `path` (absolute, on the host) through a descriptor of the host's root: atomically, by
/// renaming a temporary file over it.
fn write_host_file(host_root: &OwnedFd, path: &str, data: &str) -> Result<()> {
    let rel = path.trim_start_matches('/');
    let tmp = format!("{rel}.tmp");
    let c_tmp = sys::cstr(&tmp).step("write", Some(path))?;
    let c_rel = sys::cstr(rel).step("write", Some(path))?;
    // SAFETY: valid C strings and a directory descriptor we own.
    let fd = unsafe {
        libc::openat(
            host_root.as_raw_fd(),
            c_tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(SetupError::sys("write", Some(path), Errno::last()));
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    sys::write_all(fd.as_raw_fd(), data.as_bytes()).step("write", Some(path))?;
    drop(fd);
    // SAFETY: as above.
    if unsafe {
        libc::renameat(host_root.as_raw_fd(), c_tmp.as_ptr(), host_root.as_raw_fd(), c_rel.as_ptr())
    } != 0
    {
        return Err(SetupError::sys("write", Some(path), Errno::last()));
    }
    Ok(())
}

fn exec_child(
    pr: &Process,
    detach: bool,
    console: Option<std::os::fd::RawFd>,
    seccomp: Option<&[crate::seccomp::Insn]>,
    attributes: &process::Attributes,
) -> Result<()> {
    crate::child::reset_signals();
    let tty = if pr.terminal {
        Some(crate::child::allocate_terminal(
            pr.console_size.map(|c| (c.height, c.width)),
            console,
            false,
        )?)
    } else {
        None
    };
    process::apply_rlimits(&pr.rlimits)?;
    attributes.apply()?;
    // SAFETY: plain syscall.
    unsafe { libc::setsid() };
    if let Some(slave) = &tty {
        crate::child::become_terminal_owner(slave.as_raw_fd())?;
    }
    let caps = pr.capabilities.as_ref().map(crate::caps::CapSets::from_spec).transpose()?;
    if !pr.no_new_privileges {
        if let Some(prog) = seccomp {
            crate::seccomp::load(prog)?;
        }
    }
    process::take_identity(&pr.user, caps.as_ref())?;
    process::enter_cwd(&pr.cwd)?;
    if pr.no_new_privileges {
        process::set_no_new_privs()?;
    }
    if !detach {
        sys::set_pdeathsig(libc::SIGKILL).step("set parent-death signal", None)?;
    }
    sys::cloexec_from(3).step("close inherited descriptors", None)?;
    if pr.no_new_privileges {
        if let Some(prog) = seccomp {
            crate::seccomp::load(prog)?;
        }
    }
    Ok(())
}
