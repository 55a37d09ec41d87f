//! Starting and stopping a network's resolver process.
//!
//! [`start`] runs `PROGRAM ARGS… <config as flags> --ready-fd 3` detached: forked twice, so it
//! is nobody's child to reap (it is re-parented to init, or to the nearest sub-reaper — the
//! helper of the starting container, if it is one, must then reap it like any orphan); in a
//! session of its own; stdin and stdout on /dev/null and stderr appended to the network's log
//! file; signal mask and dispositions reset; no descriptor but 0–3; an environment of `PATH`
//! alone (the caller's may hold what a long-lived daemon should not keep). It returns once the resolver
//! says it listens (`ready PID` on fd 3), or with the resolver's own error (`error JSON`).
//!
//! [`stop`] signals the process holding the pid file's lock through a pidfd (so a pid reused
//! meanwhile is never signalled), and waits for it to be gone.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pidfile;
use crate::sys;

/// How to run the resolver: the program (`/proc/self/exe` for `ns-oci` itself) and the
/// arguments before its flags (the hidden verb, `["dns"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// How long a resolver may take to say it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

impl Launcher {
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Launcher {
        Launcher { program: program.into(), args: args.iter().map(OsString::from).collect() }
    }
}

fn cstr(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::config(what, "contains a NUL byte"))
}

/// Start the resolver of `config` (its `ready_fd` is set here), writing its messages to
/// `log`. Returns its pid once it listens.
pub fn start(config: &Config, launcher: &Launcher, log: &Path) -> Result<i32> {
    let mut config = config.clone();
    config.ready_fd = Some(3);
    config.validate()?;
    let program = cstr(launcher.program.as_os_str().as_bytes(), "program")?;
    let mut argv = vec![program.clone()];
    for a in &launcher.args {
        argv.push(cstr(a.as_bytes(), "args")?);
    }
    for a in config.to_args() {
        argv.push(cstr(a.as_bytes(), "args")?);
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env: Vec<CString> = std::env::var_os("PATH")
        .and_then(|p| CString::new([b"PATH=", p.as_bytes()].concat()).ok())
        .into_iter()
        .collect();
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());

    let log_file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(log)
        .map_err(|e| Error::path("open resolver log", log, &e))?;
    let log_start = log_file.metadata().map_or(0, |m| m.len() as usize);
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")
        .map_err(|e| Error::path("open", Path::new("/dev/null"), &e))?;
    let (ready_r, ready_w) = pipe().map_err(|e| Error::io("create ready pipe", None, &e))?;

    // Everything the children touch is ready; between fork and exec they only make
    // async-signal-safe system calls (the caller may have threads).
    // SAFETY: fork; the child branch below calls only async-signal-safe functions.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(Error::io("fork resolver", None, &std::io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: in the forked child: only async-signal-safe calls, then _exit or exec.
        unsafe {
            exec_detached(
                &program,
                &argv_ptrs,
                &env_ptrs,
                null.as_raw_fd(),
                log_file.as_raw_fd(),
                ready_w.as_raw_fd(),
            )
        }
    }
    drop(ready_w);
    let mut status = 0;
    // SAFETY: waiting for our own child (the intermediate one, which exits at once).
    sys::retry(|| sys::cvt(unsafe { libc::waitpid(child, &mut status, 0) }))
        .map_err(|e| Error::io("wait for resolver start", None, &e))?;
    let line =
        read_ready_line(ready_r).map_err(|e| Error::io("read resolver readiness", None, &e))?;
    if let Some(pid) = line.strip_prefix("ready ") {
        return pid.trim().parse().map_err(|_| {
            Error::other("start resolver", None, format!("unexpected answer {line:?}"))
        });
    }
    if let Some(json) = line.strip_prefix("error ") {
        if let Ok(e) = serde_json::from_str::<Error>(json.trim()) {
            return Err(e);
        }
    }
    let text = std::fs::read(log).unwrap_or_default();
    let new = String::from_utf8_lossy(text.get(log_start..).unwrap_or_default());
    let last = new.lines().last().unwrap_or("no message").to_owned();
    Err(Error::other(
        "start resolver",
        Some(&launcher.program.display().to_string()),
        format!("it exited before it was ready: {last}"),
    )
    .with_hint(format!("see {}", log.display())))
}

/// The forked child: a new session, fork again (the grandchild is the resolver; this child
/// exits so that nobody has to reap the resolver), descriptors 0–3 set, the rest closed, signals
/// reset, exec.
///
/// # Safety
/// Call only in a freshly forked child; every pointer must stay valid (they point into the
/// parent's memory, which the child has a copy of).
unsafe fn exec_detached(
    program: &CString,
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    null: RawFd,
    log: RawFd,
    ready: RawFd,
) -> ! {
    libc::setsid();
    match libc::fork() {
        0 => {}
        -1 => libc::_exit(126),
        _ => libc::_exit(0),
    }
    // Move the three descriptors above 3 first, so placing them cannot overwrite one another.
    let null = libc::fcntl(null, libc::F_DUPFD_CLOEXEC, 10);
    let log = libc::fcntl(log, libc::F_DUPFD_CLOEXEC, 10);
    let ready = libc::fcntl(ready, libc::F_DUPFD_CLOEXEC, 10);
    if null < 0 || log < 0 || ready < 0 {
        libc::_exit(126);
    }
    if libc::dup2(null, 0) < 0
        || libc::dup2(null, 1) < 0
        || libc::dup2(log, 2) < 0
        || libc::dup2(ready, 3) < 0
    {
        libc::_exit(126);
    }
    if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) < 0 {
        for fd in 4..1024 {
            libc::close(fd);
        }
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    libc::execve(program.as_ptr(), argv.as_ptr(), env.as_ptr());
    libc::_exit(127)
}

fn pipe() -> std::io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into fds.
    sys::cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both are fresh descriptors owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The first line the resolver writes on its ready pipe, or what it wrote before exiting.
fn read_ready_line(mut r: File) -> std::io::Result<String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the resolver did not say it was ready in time",
            ));
        }
        let mut pfd = libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => text.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(String::from_utf8_lossy(line).into_owned())
}

/// Stop the resolver holding `pid_file`'s lock: SIGTERM, then SIGKILL if it is still there
/// after `grace`; returns once it is gone. `Ok(false)` when none was running.
pub fn stop(pid_file: &Path, grace: Duration) -> Result<bool> {
    let Some(pid) = pidfile::holder(pid_file)? else { return Ok(false) };
    // SAFETY: plain syscall; the result is checked before it is owned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(Error::io("open pidfd of resolver", Some(&pid.to_string()), &e));
    }
    // SAFETY: fd is a fresh pidfd owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // The pidfd names the process that held the lock when we looked; if the lock is no longer
    // that process's, it ended meanwhile and its pid may be another's: signal nothing.
    if pidfile::holder(pid_file)? != Some(pid) {
        return Ok(false);
    }
    for (sig, wait) in [(libc::SIGTERM, grace), (libc::SIGKILL, Duration::from_secs(5))] {
        // SAFETY: pidfd_send_signal on our pidfd, no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<u8>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(true);
            }
            return Err(Error::io("signal resolver", Some(&pid.to_string()), &e));
        }
        if wait_gone(&pidfd, wait) {
            return Ok(true);
        }
    }
    Err(Error::other("stop resolver", Some(&pid.to_string()), "it is still running after SIGKILL"))
}

/// Wait until the pidfd's process has ended (the pidfd becomes readable).
fn wait_gone(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if n > 0 {
            return true;
        }
        if n == 0 || left.is_zero() {
            return false;
        }
    }
}
