//! The container's side of the set-up, run in the cloned child, in this order:
//!
//! 1. die with the helper, and wait until it has written our uid/gid maps;
//! 2. become root of the new user namespace (the maps now say who that is on the host);
//! 3. enter a time namespace with its offsets (they must be written before anyone is inside);
//! 4. hostname and domainname; loopback up in a new network namespace;
//! 5. the root filesystem and pivot_root (see `rootfs`), or, without a mount namespace of its
//!    own (the caller's, or one joined, entered after step 1), a chroot into root.path;
//! 6. sysctls, then masked and read-only paths; oom score, rlimits, I/O priority, scheduling and
//!    personality, a session of our own;
//! 7. the container user, working directory, no_new_privs; a warm container (a pool's) stops
//!    here and waits for its command, stdio and working directory (`wait_for_command`);
//! 8. init as PID 1 (which starts the command), or exec the command directly.
//!
//! Every failure is sent to the helper as a `Report::Error` naming the step, then we exit 125.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Context, Result, SetupError};
use crate::helper::prepare::Prepared;
use crate::init;
use crate::namespaces::NsKind;
use crate::process::{self, Command};
use crate::proto::{self, Report, RunMessage};
use crate::rootfs;
use crate::sys::{self, Errno};

/// What a container created to live on its own (create mode) needs beyond the spec.
#[derive(Debug, Default, Clone, Copy)]
pub struct Detach {
    /// The exec fifo, opened O_PATH: after set-up the child blocks writing it until `start`.
    pub fifo: Option<RawFd>,
    /// Left to the caller's subreaper when the helper exits: no parent-death signal, and
    /// nobody to report to once created.
    pub orphan: bool,
    /// Descriptors that become stdin, stdout and stderr (a monitor's log pipes).
    pub stdio: Option<[RawFd; 3]>,
    /// With `process.terminal`: the socket the terminal's master is sent through.
    pub console: Option<RawFd>,
    /// With idmapped mounts: the socket they arrive on from the helper, once made.
    pub trees: Option<RawFd>,
    /// The helper's lease on the container's id range: not ours to hold.
    pub lease: Option<RawFd>,
    /// A warm container: the socket its command arrives on (`wait_for_command`).
    pub command: Option<RawFd>,
}

impl Detach {
    /// The helper's descriptors that the child goes on using.
    fn descriptors(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> =
            [self.fifo, self.console, self.trees, self.command].into_iter().flatten().collect();
        fds.extend(self.stdio.iter().flatten());
        fds
    }
}

/// The first thing a new container's process does: forget what the helper's caller gave the
/// helper. Its environment goes (the container's own is in `p.command`), and every descriptor
/// but stdio, those the spec preserves (3 .. 3+preserve_fds) and those the set-up uses: the
/// helper's control socket, its caller's pipes and anything else inherited by the clone are
/// closed before any code of the container's can run beside us.
fn forget_the_caller(p: &Prepared, keep: &[RawFd]) -> Result<()> {
    let mut fds: Vec<RawFd> = (0..3 + p.preserve_fds as RawFd).collect();
    fds.extend_from_slice(keep);
    sys::close_all_except(&fds).step("close the helper's descriptors", None)?;
    sys::scrub_environment();
    Ok(())
}

/// Our pid as the host sees it, which hooks are told: the helper's /proc is still the host's
/// (read before the container's own is mounted); our getpid() is the one of our pid namespace.
fn host_pid() -> i32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        // SAFETY: plain syscall.
        .unwrap_or_else(|| unsafe { libc::getpid() })
}

pub fn child_main(p: &Prepared, go: OwnedFd, report: OwnedFd, detach: Detach) -> ! {
    // In a pid namespace joined by path, processes already there could take the helper's
    // descriptors before they are closed: undumpable meanwhile. (In a new pid namespace nobody
    // else sees us yet; and an unprivileged helper must still write our uid_map, which an
    // undumpable child's /proc would refuse it.)
    if p.ns.join.iter().any(|(k, _)| *k == NsKind::Pid) {
        let _ = sys::set_dumpable(false);
    }
    let me = host_pid();
    let mut keep = detach.descriptors();
    keep.extend([go.as_raw_fd(), report.as_raw_fd()]);
    if let Err(e) = forget_the_caller(p, &keep) {
        let _ = proto::send(report.as_raw_fd(), &Report::Error { error: e });
        // SAFETY: ends the process.
        unsafe { libc::_exit(125) }
    }
    let mut report = Some(report);
    let fd = |r: &Option<OwnedFd>| r.as_ref().map_or(-1, |r| r.as_raw_fd());
    // The exec fifo is reopened for writing through our descriptors' folder in /proc, opened
    // now: a container chrooted without a mount namespace of its own has no /proc of its own.
    let own_fds =
        match detach.fifo.map(|_| sys::open("/proc/self/fd", libc::O_PATH | libc::O_DIRECTORY)) {
            Some(Err(e)) => {
                let e = SetupError::sys("open", Some("/proc/self/fd"), e);
                let _ = proto::send(fd(&report), &Report::Error { error: e });
                // SAFETY: ends the process.
                unsafe { libc::_exit(125) }
            }
            Some(Ok(d)) => Some(d),
            None => None,
        };
    // A warm container's command came after its set-up; any other's is in the plan.
    let sent = match set_up(p, go, &detach, me, fd(&report)) {
        Ok(sent) => sent,
        Err(e) => {
            let _ = proto::send(fd(&report), &Report::Error { error: e });
            // SAFETY: ends the process.
            unsafe { libc::_exit(125) }
        }
    };
    let command = sent.as_ref().unwrap_or(&p.command);
    let mut started = None;
    if let Some(fifo) = detach.fifo {
        if let Err((e, code)) = p.command.preflight() {
            let _ = proto::send(fd(&report), &Report::Error { error: e });
            // SAFETY: ends the process.
            unsafe { libc::_exit(code) }
        }
        let _ = proto::send(fd(&report), &Report::Created);
        if detach.orphan {
            report = None;
        }
        let opened = wait_for_start(fifo, own_fds.as_ref().map_or(-1, |d| d.as_raw_fd()));
        drop(own_fds);
        match opened {
            Ok(w) => started = Some(w),
            Err(e) => {
                let _ = proto::send(fd(&report), &Report::Error { error: e });
                // SAFETY: ends the process.
                unsafe { libc::_exit(125) }
            }
        }
    }
    let rfd = fd(&report);
    // startContainer hooks, once `start` has opened the fifo: what it reads back is the
    // go-ahead byte, or why the hooks failed (and `start` fails with it).
    let hooked = crate::hooks::run_hooks(
        "startContainer",
        &p.hooks.start_container,
        &p.hook_state("created", me),
    );
    if let Some(w) = &started {
        let answer = match &hooked {
            Ok(()) => b"0".to_vec(),
            Err(e) => [b"E".as_slice(), &serde_json::to_vec(e).unwrap_or_default()].concat(),
        };
        let _ = sys::write_all(w.as_raw_fd(), &answer);
    }
    if let Err(e) = hooked {
        let _ = proto::send(rfd, &Report::Error { error: e });
        // SAFETY: ends the process.
        unsafe { libc::_exit(125) }
    }
    if p.init {
        init::run_init(command, rfd, p.process.terminal, started)
    }
    let (err, code) = command.exec();
    let _ = proto::send(rfd, &Report::Error { error: err });
    // SAFETY: ends the process.
    unsafe { libc::_exit(code) }
}

/// A terminal from the container's own devpts: /dev/console becomes it, its master goes to the
/// helper through `console`, and the slave is returned to become our stdio.
pub fn allocate_terminal(
    size: Option<(u16, u16)>,
    console: Option<RawFd>,
    bind_console: bool,
) -> Result<OwnedFd> {
    let sock = console.ok_or_else(|| {
        SetupError::config("process.terminal", "needs a console socket to hand the terminal to")
    })?;
    let (master, slave) = sys::open_pty().step("allocate a terminal from", Some("/dev/ptmx"))?;
    // /dev/console is the terminal, as programs expect (best effort: a read-only /dev has none).
    if bind_console
        && (sys::create_file_at(libc::AT_FDCWD, "/dev/console", 0o600).is_ok()
            || std::path::Path::new("/dev/console").exists())
    {
        sys::mount(
            Some(&sys::fd_path(slave.as_raw_fd())),
            "/dev/console",
            None,
            libc::MS_BIND,
            None,
        )
        .step("bind the terminal onto", Some("/dev/console"))?;
    }
    if let Some((rows, cols)) = size {
        sys::set_winsize(master.as_raw_fd(), rows, cols).step("set the terminal size", None)?;
    }
    sys::send_fd(sock, master.as_raw_fd(), b"/dev/ptmx").step("hand over the terminal", None)?;
    Ok(slave)
}

/// After setsid: the terminal becomes our controlling terminal and our stdin, stdout, stderr.
pub fn become_terminal_owner(slave: RawFd) -> Result<()> {
    // SAFETY: ioctl and dup2 on descriptors we own.
    unsafe {
        if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
            return Err(SetupError::sys("make the terminal controlling", None, Errno::last()));
        }
        for i in 0..3 {
            if libc::dup2(slave, i) < 0 {
                return Err(SetupError::sys("set up stdio", None, Errno::last()));
            }
        }
    }
    Ok(())
}

/// Block until `start` opens the exec fifo for reading. The returned descriptor is where the
/// go-ahead is written (once the startContainer hooks have run), and it stays open until the
/// command is executed (it is close-on-exec): `start` reads to its end, so it returns — and
/// runs poststart hooks — only once the command runs.
fn wait_for_start(fifo: RawFd, own_fds: RawFd) -> Result<OwnedFd> {
    let name = fifo.to_string();
    let w = sys::retry(|| sys::openat(own_fds, &name, libc::O_WRONLY))
        .step("open the exec fifo", None)?;
    // SAFETY: the O_PATH descriptor is ours and no longer needed.
    unsafe { libc::close(fifo) };
    Ok(w)
}

/// Default dispositions and an empty signal mask, as a new program should start.
pub fn reset_signals() {
    // SAFETY: restoring default dispositions and an empty mask.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// The system calls a warm container makes from its wait until its command runs (the hand-over
/// of its mount namespace, the report, receiving the command and its stdio, the allocator, the
/// working directory, the init and the spawn of the command, `execve`), with the arguments that
/// decide for the filters that look at any (the spawn's clone flags: no new namespace; anonymous
/// read-write memory, its stack).
const WARM_CALLS: [(&str, [u64; 6]); 26] = [
    ("openat", [0; 6]),
    ("sendmsg", [0; 6]),
    ("sendto", [0; 6]),
    ("write", [0; 6]),
    ("recvmsg", [0; 6]),
    ("read", [0; 6]),
    ("close", [0; 6]),
    ("brk", [0; 6]),
    ("mmap", [0, 4096, 3, 0x22, u64::MAX, 0]),
    ("mmap", [0, 65536, 3, 0x2_0022, u64::MAX, 0]),
    ("munmap", [0; 6]),
    ("mremap", [0; 6]),
    ("madvise", [0, 4096, 4, 0, 0, 0]),
    ("chdir", [0; 6]),
    ("dup2", [0; 6]),
    ("close_range", [0; 6]),
    ("getpid", [0; 6]),
    ("rt_sigprocmask", [0; 6]),
    ("pipe2", [0, 0x80000, 0, 0, 0, 0]),
    ("clone", [0x4111, 0, 0, 0, 0, 0]),
    ("execve", [0; 6]),
    ("rt_sigtimedwait", [0; 6]),
    ("wait4", [0; 6]),
    ("kill", [0; 6]),
    ("exit_group", [0; 6]),
    ("exit", [0; 6]),
];

/// A warm container's wait, once it is set up but for what only its command brings: tell the
/// helper (`Report::Waiting`), then take the command it passes on (`RunMessage`, with stdin,
/// stdout and stderr): the descriptors become ours, and its working directory our own (as the
/// container user, so permissions apply). The socket is closed after it: one command per
/// container. Should the helper close it first (its pool was shut down), there is nothing to run.
fn wait_for_command(sock: RawFd, report: RawFd) -> Result<Command> {
    // Our mount namespace, for the helper to hold: once the container has ended, its mounts
    // are taken down when the helper lets go of it, after it has told how the container ended,
    // rather than while the first process exits (best effort: without a /proc, nothing).
    let held = match sys::open("/proc/self/ns/mnt", libc::O_RDONLY) {
        Ok(ns) => sys::send_fd(sock, ns.as_raw_fd(), b"mnt"),
        Err(_) => sys::send_msg(sock, b"none"),
    };
    held.step("hand over the mount namespace", None)?;
    proto::send(report, &Report::Waiting).step("report the container ready", None)?;
    let got = proto::recv_line(sock, proto::MAX_LINE, proto::RUN_FDS);
    // SAFETY: our end of the socket, not used again.
    unsafe { libc::close(sock) };
    let (line, fds) = match got {
        Ok(Some(m)) => m,
        // SAFETY: ends the process.
        Ok(None) => unsafe { libc::_exit(0) },
        Err(e) => return Err(SetupError::sys("receive the command", None, e)),
    };
    let msg: RunMessage = serde_json::from_slice(&line)
        .map_err(|e| SetupError::config("command", format!("is not a run message: {e}")))?;
    if msg.check_stdio(fds.len()).is_err() {
        return Err(SetupError::sys("receive the command's stdio", None, Errno(libc::EBADF)));
    }
    let command = Command::new(&msg.args, &msg.env)?;
    process::enter_cwd(&msg.cwd)?;
    for (fd, to) in fds.iter().zip(&msg.stdio) {
        // SAFETY: dup2 onto one of the standard descriptors.
        if unsafe { libc::dup2(fd.as_raw_fd(), *to as libc::c_int) } < 0 {
            return Err(SetupError::sys("set up stdio", None, Errno::last()));
        }
    }
    Ok(command)
}

/// The set-up; a warm container's command (`detach.command`) is returned once it has come.
fn set_up(
    p: &Prepared,
    go: OwnedFd,
    detach: &Detach,
    me: i32,
    report: RawFd,
) -> Result<Option<Command>> {
    // The helper's lease on the id range (`detach.lease`) was closed with the rest of its
    // descriptors: the helper's copy holds the lock.
    reset_signals();
    // 1. If the helper dies, so do we (and, as PID 1, everything in our pid namespace) —
    // unless we are made to outlive it.
    if !detach.orphan {
        sys::set_pdeathsig(libc::SIGKILL).step("set parent-death signal", None)?;
    }
    let mut b = [0u8; 1];
    if !matches!(sys::read(go.as_raw_fd(), &mut b), Ok(1)) {
        // The helper failed before releasing us and reports why itself.
        // SAFETY: ends the process.
        unsafe { libc::_exit(125) }
    }
    drop(go);
    // A mount namespace joined by path: entered here, not by the helper (which works with the
    // host's paths until the end). Paths from now on are that namespace's.
    if let Some((_, path)) = p.ns.join.iter().find(|(k, _)| *k == NsKind::Mount) {
        let fd = sys::open(path, libc::O_RDONLY).step("open mount namespace", Some(path))?;
        sys::setns(fd.as_raw_fd(), libc::CLONE_NEWNS).step("join mount namespace", Some(path))?;
    }
    let mut trees = std::collections::VecDeque::new();
    if let (Some(sock), Some(plan)) = (detach.trees, &p.rootfs) {
        // An image's overlay made outside comes first.
        if plan.image.as_ref().is_some_and(|i| i.outside) {
            match sys::recv_fd(sock) {
                Ok(Some(fd)) => trees.push_back(fd),
                _ => {
                    return Err(SetupError::sys(
                        "receive the overlay of the image",
                        None,
                        Errno(libc::EBADF),
                    ))
                }
            }
        }
        for src in plan.idmapped_sources() {
            match sys::recv_fd(sock) {
                Ok(Some(fd)) => trees.push_back(fd),
                _ => {
                    return Err(SetupError::sys(
                        "receive the idmapped mount of",
                        Some(&src.path),
                        Errno(libc::EBADF),
                    ))
                }
            }
        }
        // SAFETY: our end of the socket, no longer needed.
        unsafe { libc::close(sock) };
    }

    // 2. Root of our user namespace (a new one, or one joined). Until now our ids were those
    // of the host caller, which the namespace may not even map.
    if p.ns.has_new(NsKind::User) || p.ns.join.iter().any(|(k, _)| *k == NsKind::User) {
        // SAFETY: plain syscalls.
        if unsafe { libc::setresgid(0, 0, 0) } != 0 || unsafe { libc::setresuid(0, 0, 0) } != 0 {
            return Err(SetupError::sys("become root of the user namespace", None, Errno::last())
                .with_hint("linux.uidMappings and linux.gidMappings must map container id 0"));
        }
        // Changing ids made us undumpable, and our /proc files the host root's: the set-up
        // writes some (timens_offsets, oom_score_adj). Dumpable until those are written, and
        // not a moment longer (see step 6).
        sys::set_dumpable(true).step("make the set-up's /proc files its own", None)?;
    }

    // The helper has moved us into our cgroup: a cgroup namespace made now is rooted there.
    if p.ns.has_new(NsKind::Cgroup) {
        sys::unshare(libc::CLONE_NEWCGROUP).step("create cgroup namespace", None)?;
    }

    // 3. Time: unshare gives our children (and us, at exec) the new clocks.
    if p.ns.has_new(NsKind::Time) {
        sys::unshare(NsKind::Time.clone_flag()).step("create time namespace", None)?;
        if !p.time_offsets.is_empty() {
            sys::write_file("/proc/self/timens_offsets", &p.time_offsets)
                .step("write", Some("/proc/self/timens_offsets"))?;
        }
    }

    // 4. Names and the network.
    if let Some(h) = &p.hostname {
        sys::sethostname(h).step("set hostname to", Some(h))?;
    }
    if let Some(d) = &p.domainname {
        sys::setdomainname(d).step("set domainname to", Some(d))?;
    }
    if p.ns.has_new(NsKind::Net) {
        sys::loopback_up().step("bring up", Some("lo"))?;
    }

    // 5. The filesystem.
    let create_container = || {
        crate::hooks::run_hooks(
            "createContainer",
            &p.hooks.create_container,
            &p.hook_state("created", me),
        )
    };
    match (&p.rootfs, &p.chroot) {
        (Some(plan), _) => rootfs::setup_rootfs(plan, trees, &create_container)?,
        // Without a mount namespace of its own, a chroot into root.path (as runc and crun).
        (None, Some(root)) => {
            create_container()?;
            sys::chroot(root).step("chroot into", Some(root))?;
            sys::chdir("/").step("chdir to", Some("/"))?;
        }
        (None, None) => create_container()?,
    }

    // 6. Kernel knobs and limits.
    for (path, value) in &p.sysctl {
        sys::write_file(path, value).step("write sysctl", Some(path))?;
    }
    if let Some(plan) = &p.rootfs {
        rootfs::finish_rootfs(plan)?;
    }
    if let Some(adj) = p.process.oom_score_adj {
        sys::write_file("/proc/self/oom_score_adj", &adj.to_string())
            .step("write", Some("/proc/self/oom_score_adj"))?;
    }
    // Undumpable from now on. This process was not executed inside the container: its memory
    // belongs to the user namespace the helper was started in (the host's), so ptrace, reading
    // /proc/PID/{environ,fd,maps,mem} and pidfd_getfd need CAP_SYS_PTRACE there, which nothing
    // in the container has, whatever capabilities it is given. As PID 1 (the init) it keeps
    // the report pipe to the helper: nobody inside can take it. A command executed directly
    // is dumpable again by execve, as any program is.
    sys::set_dumpable(false).step("make the container's first process undumpable", None)?;
    let tty = if p.process.terminal {
        Some(allocate_terminal(
            p.process.console_size.map(|c| (c.height, c.width)),
            detach.console,
            true,
        )?)
    } else {
        None
    };
    process::apply_rlimits(&p.process.rlimits)?;
    // I/O priority, scheduling, execution domain: while we still hold the privileges they need,
    // inherited by the init's command.
    p.attributes.apply()?;
    // A session of our own: signals from the caller's terminal reach the container only
    // through the helper, once.
    // SAFETY: plain syscall.
    unsafe { libc::setsid() };
    if let Some(slave) = &tty {
        become_terminal_owner(slave.as_raw_fd())?;
    }

    // 7. Who runs, where, with which privileges.
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have
    // it (the profile then also covers the user switch); with no_new_privs, load it last.
    if !p.process.no_new_privileges {
        if let Some(prog) = &p.seccomp {
            crate::seccomp::load(prog)?;
        }
    }
    process::take_identity(&p.process.user, p.caps.as_ref())?;
    process::enter_cwd(&p.process.cwd)?;
    if p.process.no_new_privileges {
        process::set_no_new_privs()?;
    }
    // Changing credentials cleared the parent-death signal: set it again.
    if !detach.orphan {
        sys::set_pdeathsig(libc::SIGKILL).step("set parent-death signal", None)?;
    }
    // A warm container waits here: all that is left needs its command, or is done per run.
    // Its filter is loaded first where it allows what the rest of the way to the command does
    // (`WARM_CALLS`), so that a run does not wait for the kernel to load it.
    let filtered = detach.command.is_some()
        && p.process.no_new_privileges
        && p.hooks.start_container.is_empty()
        && p.seccomp.as_ref().is_some_and(|prog| crate::seccomp::allows(prog, &WARM_CALLS));
    if filtered {
        if let Some(prog) = &p.seccomp {
            crate::seccomp::load(prog)?;
        }
    }
    let sent = match detach.command {
        Some(sock) => Some(wait_for_command(sock, report)?),
        None => None,
    };
    if let (Some(stdio), None) = (detach.stdio, &tty) {
        for (i, fd) in stdio.iter().enumerate() {
            // SAFETY: dup2 onto the standard descriptors.
            if unsafe { libc::dup2(*fd, i as libc::c_int) } < 0 {
                return Err(SetupError::sys("set up stdio", None, Errno::last()));
            }
        }
    }
    sys::cloexec_from(3 + p.preserve_fds).step("close inherited descriptors", None)?;
    // Last: from here on the system calls the profile forbids fail.
    if p.process.no_new_privileges && !filtered {
        if let Some(prog) = &p.seccomp {
            crate::seccomp::load(prog)?;
        }
    }
    Ok(sent)
}
