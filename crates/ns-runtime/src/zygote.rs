//! The zygote: a long-lived `ns-oci zygote` that forks helpers for a caller that starts many
//! containers (a server), so that each container costs a fork of a small static process instead
//! of a spawn and an exec of the helper: no loader, no libc start-up, no page faults of a fresh
//! image, nothing for the caller's threads to do but send one message.
//!
//! The caller holds the other end of a SOCK_SEQPACKET socket (fd 3 here); one JSON message a
//! packet:
//! - caller -> zygote: `Start` with the helper's stdin, stdout, stderr and control socket as
//!   SCM_RIGHTS; `Release` once the caller has the exit status of a helper; `Retire`.
//! - zygote -> caller: `Forked` (the helper's pid, or why there is none), `Exited`.
//!
//! A forked helper is exactly what `ns-oci init` would be: descriptors 0-3 and nothing else,
//! default signal dispositions and an empty mask, the caller's working directory, umask and
//! environment, a process group of its own. Its exit stays a zombie until the caller releases
//! it, so a pid the caller holds never names another process, as with a child of its own.
//! The zygote ends when the caller's end closes (the caller is gone: helpers that were asked to
//! die with their parent then die with it), or once retired and without children.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::sys;

/// The descriptors a `Start` carries, in order: stdin, stdout, stderr, control.
pub const START_FDS: usize = 4;

/// The largest message either side sends (a `Start` with an environment of its own).
pub const MAX_MESSAGE: usize = 128 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// Fork a helper. `env` is sent when it differs from the previous one (None: the same).
    #[serde(rename_all = "camelCase")]
    Start { token: u32, cwd: String, umask: u32, env: Option<Vec<String>> },
    /// The caller has the exit status of `pid`: reap it.
    Release { pid: i32 },
    /// Fork nothing more; end once every helper is released.
    Retire,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    /// The helper of `token` runs as `pid`; or `error` says why it could not be forked.
    Forked { token: u32, pid: Option<i32>, error: Option<String> },
    /// Helper `pid` ended (it stays a zombie until released).
    Exited { pid: i32, code: Option<i32>, signal: Option<i32> },
}

fn send(sock: RawFd, reply: &Reply) -> bool {
    serde_json::to_vec(reply).is_ok_and(|data| sys::send_msg(sock, &data).is_ok())
}

/// The zygote's loop, on the socket `sock`. Returns its exit code.
pub fn zygote_main(sock: RawFd) -> i32 {
    // Nothing of the caller's but the socket and the standard descriptors (the helpers close
    // the rest anyway, should this fail).
    let _ = sys::close_from((sock + 1) as u32);
    // SAFETY: signal-set manipulation on local sets; the process is single-threaded.
    let sigfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if sigfd < 0 {
        return 1;
    }
    let mut env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    // Helpers that run, and those that ended and wait to be released (with their status sent).
    let mut running: BTreeSet<i32> = BTreeSet::new();
    let mut ended: BTreeSet<i32> = BTreeSet::new();
    let mut retired = false;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        if retired && running.is_empty() && ended.is_empty() {
            return 0;
        }
        let mut fds = [
            libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sigfd, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: fds is a valid array of two pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            drain(sigfd);
            // Each running helper asked in turn (WNOWAIT: reported, not reaped), so one that
            // waits to be released never hides another that ended.
            let done: Vec<(i32, Option<i32>, Option<i32>)> = running
                .iter()
                .filter_map(|&pid| ended_status(pid).map(|(c, s)| (pid, c, s)))
                .collect();
            for (pid, code, signal) in done {
                running.remove(&pid);
                ended.insert(pid);
                if !send(sock, &Reply::Exited { pid, code, signal }) {
                    return 0;
                }
            }
        }
        if fds[0].revents == 0 {
            continue;
        }
        let (len, received) = match sys::recv_fds(sock, &mut buf, START_FDS) {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(e) if e.0 == libc::EMSGSIZE => continue,
            Err(_) => return 0,
        };
        let Ok(req) = serde_json::from_slice::<Request>(&buf[..len]) else { continue };
        match req {
            Request::Start { token, cwd, umask, env: new_env } => {
                if let Some(e) = new_env {
                    env = e;
                }
                let reply = if retired {
                    Reply::Forked {
                        token,
                        pid: None,
                        error: Some("EINVAL: the zygote is retired".into()),
                    }
                } else if received.len() != START_FDS {
                    Reply::Forked {
                        token,
                        pid: None,
                        error: Some(format!(
                            "EINVAL: {} descriptors instead of {START_FDS}",
                            received.len()
                        )),
                    }
                } else {
                    match fork_helper(&received, &cwd, umask, &env) {
                        Ok(pid) => {
                            running.insert(pid);
                            Reply::Forked { token, pid: Some(pid), error: None }
                        }
                        Err(e) => Reply::Forked {
                            token,
                            pid: None,
                            error: Some(format!(
                                "{}: failed to fork the helper: {}",
                                e.name(),
                                e.describe()
                            )),
                        },
                    }
                };
                // The helper has its copies; ours close here.
                drop(received);
                if !send(sock, &reply) {
                    return 0;
                }
            }
            Request::Release { pid } => {
                if ended.remove(&pid) {
                    let _ = sys::waitpid(pid, 0);
                }
            }
            Request::Retire => retired = true,
        }
    }
}

fn drain(fd: RawFd) {
    let mut info = [0u8; 128];
    // SAFETY: reading into a buffer of the size passed; the descriptor is non-blocking.
    while unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) } > 0 {}
}

/// The status of `pid` if it has ended, leaving it a zombie.
fn ended_status(pid: i32) -> Option<(Option<i32>, Option<i32>)> {
    // SAFETY: info is a valid siginfo_t; plain syscall.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r < 0 {
            // Not ours any more (cannot happen: only a release reaps): treat as gone.
            return Some((None, None));
        }
        if info.si_pid() == 0 {
            return None;
        }
        let status = info.si_status();
        match info.si_code {
            libc::CLD_EXITED => Some((Some(status), None)),
            _ => Some((None, Some(status))),
        }
    }
}

/// Fork one helper with `fds` as its 0-3 and run `ns-oci init` in it.
fn fork_helper(fds: &[OwnedFd], cwd: &str, umask: u32, env: &[String]) -> sys::SysResult<i32> {
    // Everything the child needs is made before the fork: after it, no allocation.
    let cwd = sys::cstr(cwd).ok();
    let env: Vec<std::ffi::CString> =
        env.iter().filter_map(|e| std::ffi::CString::new(e.as_bytes()).ok()).collect();
    let mut envp: Vec<*mut libc::c_char> =
        env.iter().map(|e| e.as_ptr() as *mut libc::c_char).collect();
    envp.push(std::ptr::null_mut());
    // SAFETY: fork in a single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys::Errno::last());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // The child. SAFETY: plain syscalls on descriptors and sets of this process.
    unsafe {
        // Above every number that dup2 is about to take, then onto 0-3; the rest closes (the
        // socket to the caller, the signalfd, the descriptors' first copies).
        let mut high = [0; START_FDS];
        for (i, fd) in fds.iter().enumerate() {
            high[i] = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 16);
            if high[i] < 0 {
                libc::_exit(125);
            }
        }
        for (i, fd) in high.iter().enumerate() {
            if libc::dup2(*fd, i as libc::c_int) < 0 {
                libc::_exit(125);
            }
        }
        let _ = sys::close_from(START_FDS as u32);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::setpgid(0, 0);
        libc::umask(umask as libc::mode_t);
        if let Some(cwd) = &cwd {
            libc::chdir(cwd.as_ptr());
        }
        extern "C" {
            static mut environ: *mut *mut libc::c_char;
        }
        environ = envp.as_mut_ptr();
        name_helper();
        std::process::exit(crate::helper::helper_main(3));
    }
}

/// Show a forked helper as `ns-oci init` (what a spawned one is), not as a zygote: the second
/// word of the command line, "zygote", is overwritten in place with "init" and padding NULs.
fn name_helper() {
    extern "C" {
        static program_invocation_name: *mut libc::c_char;
    }
    // SAFETY: argv[0] and argv[1] are contiguous NUL-terminated strings in memory of the
    // process; argv[1] is checked to be "zygote" before its 6 bytes are overwritten.
    unsafe {
        let arg0 = program_invocation_name;
        if arg0.is_null() {
            return;
        }
        let arg1 = arg0.add(libc::strlen(arg0) + 1) as *mut u8;
        if std::slice::from_raw_parts(arg1, 7) == b"zygote\0" {
            let init: [u8; 6] = [b'i', b'n', b'i', b't', 0, 0];
            std::ptr::copy_nonoverlapping(init.as_ptr(), arg1, 6);
        }
    }
}
