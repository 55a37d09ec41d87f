//! A minimal init for PID 1: starts the command, forwards every catchable signal to it, reaps
//! every orphan that the namespace hands it, and ends with the command's status.
//!
//! Signals are blocked and taken synchronously with sigwaitinfo, so no handler ever runs.

use std::os::fd::AsRawFd;

use crate::process::Command;
use crate::proto::{self, Report};
use crate::sys;

/// `started`: the exec fifo's write end (create mode), closed once the command runs.
pub fn run_init(
    cmd: &Command,
    report: libc::c_int,
    terminal: bool,
    started: Option<std::os::fd::OwnedFd>,
) -> ! {
    // SAFETY: signal-set manipulation on local sets; fork in a single-threaded process.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);

        let (exec_r, exec_w) = match sys::pipe() {
            Ok(p) => p,
            Err(e) => fail(report, crate::error::SetupError::sys("create pipe", None, e)),
        };
        let pid = spawn_command(cmd, terminal, exec_w.as_raw_fd());
        if pid < 0 {
            fail(
                report,
                crate::error::SetupError::sys("fork the command", None, sys::Errno::last()),
            );
        }
        drop(exec_w);
        // The init keeps nothing but its report pipe (and the exec pipe, for a moment): the
        // command has its own copies of stdio and of the preserved descriptors.
        let _ = sys::close_all_except(&[
            report,
            exec_r.as_raw_fd(),
            started.as_ref().map_or(-1, |s| s.as_raw_fd()),
        ]);
        // The exec pipe closes on a successful exec; what is written is the errno of a failure.
        let out = sys::read_to_end(exec_r.as_raw_fd()).unwrap_or_default();
        if out.is_empty() {
            let _ = proto::send(report, &Report::Started);
        } else {
            let errno =
                out.get(..4).and_then(|b| b.try_into().ok()).map_or(libc::EIO, i32::from_ne_bytes);
            let (err, _) = cmd.failure(sys::Errno(errno));
            let _ = proto::send(report, &Report::Error { error: err });
        }
        drop(exec_r);
        drop(started);

        let mut main_status = None;
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                loop {
                    let mut status = 0;
                    let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
                    if r <= 0 {
                        break;
                    }
                    if r == pid {
                        main_status = Some(status);
                    }
                }
                if let Some(status) = main_status {
                    let (code, signal) = sys::decode_status(status);
                    let _ = proto::send(report, &Report::Exit { code, signal });
                    libc::_exit(code.unwrap_or_else(|| 128 + signal.unwrap_or(0)));
                }
            } else {
                libc::kill(pid, sig);
            }
        }
    }
}

/// What the command's process is given between its spawn and its `execve`.
struct Spawn<'a> {
    cmd: &'a Command,
    exec: &'a crate::process::ExecPointers,
    terminal: bool,
    /// The exec pipe's write end: the errno of a failed `execve` goes there.
    exec_w: libc::c_int,
}

/// The size of the stack the command's process starts on, until its `execve`.
const SPAWN_STACK: usize = 64 * 1024;

/// Start the command as a process that shares the init's memory until it executes (and the
/// init waits meanwhile), as `posix_spawn` does: nothing of the init's is copied, and nothing
/// the init writes afterwards has to be. Its pid, or -1 (errno set).
fn spawn_command(cmd: &Command, terminal: bool, exec_w: libc::c_int) -> libc::pid_t {
    let exec = cmd.pointers();
    let args = Spawn { cmd, exec: &exec, terminal, exec_w };
    // SAFETY: a fresh anonymous mapping, unmapped below once the child no longer runs on it
    // (CLONE_VFORK: clone returns when it has executed or exited).
    unsafe {
        let stack = libc::mmap(
            std::ptr::null_mut(),
            SPAWN_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            return -1;
        }
        let top = (stack as *mut u8).add(SPAWN_STACK) as *mut libc::c_void;
        let pid = libc::clone(
            spawned,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const Spawn as *mut libc::c_void,
        );
        let errno = sys::Errno::last();
        libc::munmap(stack, SPAWN_STACK);
        if pid < 0 {
            *libc::__errno_location() = errno.0;
        }
        pid
    }
}

/// The command's process until its `execve`: it runs on its own stack in the init's memory,
/// so it allocates nothing, takes no lock and changes no memory of the init's but its own
/// stack; its descriptors are its own.
extern "C" fn spawned(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Spawn of `spawn_command`, alive until clone returns, which is not
    // before this process executes or exits; only syscalls follow.
    unsafe {
        let a = &*(arg as *const Spawn);
        if a.terminal {
            // The command's group owns the terminal, so ^C reaches it (and not the init, which
            // would forward it a second time). Signals are still blocked here, so tcsetpgrp
            // from outside the foreground group does not stop us.
            libc::setpgid(0, 0);
            libc::tcsetpgrp(0, libc::getpid());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let e = a.cmd.exec_with(a.exec);
        let code = a.cmd.failure_code(e);
        let bytes = e.0.to_ne_bytes();
        libc::write(a.exec_w, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(code)
    }
}

/// How the container ended, from what its first process `reported` (the init's `Exit`) and
/// its real wait `status`. The report is taken only where it agrees with the status: the init
/// exits with the command's code, or 128 + the signal that killed the command; a report that
/// says otherwise is not the init's and is ignored (nothing inside can write the report pipe,
/// this is the second line of defence). A first process killed by a signal ended that way.
pub fn trusted_exit(
    reported: Option<(Option<i32>, Option<i32>)>,
    status: libc::c_int,
) -> (Option<i32>, Option<i32>) {
    let real = sys::decode_status(status);
    match (real, reported) {
        ((Some(code), _), Some((Some(c), _))) if c == code => (Some(c), None),
        ((Some(code), _), Some((None, Some(sig)))) if 128 + sig == code => (None, Some(sig)),
        _ => real,
    }
}

fn fail(report: libc::c_int, e: crate::error::SetupError) -> ! {
    let _ = proto::send(report, &Report::Error { error: e });
    // SAFETY: ends the process.
    unsafe { libc::_exit(125) }
}

#[cfg(test)]
mod tests {
    use super::trusted_exit;

    // Wait statuses as the kernel encodes them.
    fn exited(code: i32) -> libc::c_int {
        code << 8
    }

    #[test]
    fn a_report_is_believed_only_where_the_real_status_agrees() {
        // The init's own reports.
        assert_eq!(trusted_exit(Some((Some(3), None)), exited(3)), (Some(3), None));
        assert_eq!(trusted_exit(Some((None, Some(9))), exited(137)), (None, Some(9)));
        // Forged: "exited 0" from a container that exited 42 is not believed.
        assert_eq!(trusted_exit(Some((Some(0), None)), exited(42)), (Some(42), None));
        assert_eq!(trusted_exit(Some((None, Some(15))), exited(42)), (Some(42), None));
        // No report: the status; a first process killed by a signal: the signal.
        assert_eq!(trusted_exit(None, exited(7)), (Some(7), None));
        assert_eq!(trusted_exit(Some((Some(0), None)), libc::SIGKILL), (None, Some(9)));
    }
}
