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
        let pid = libc::fork();
        if pid < 0 {
            fail(
                report,
                crate::error::SetupError::sys("fork the command", None, sys::Errno::last()),
            );
        }
        if pid == 0 {
            drop(exec_r);
            drop(started);
            if terminal {
                // The command's group owns the terminal, so ^C reaches it (and not the init,
                // which would forward it a second time). Signals are still blocked here, so
                // tcsetpgrp from outside the foreground group does not stop us.
                libc::setpgid(0, 0);
                libc::tcsetpgrp(0, libc::getpid());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            let (err, code) = cmd.exec();
            let _ = proto::send(exec_w.as_raw_fd(), &Report::Error { error: err });
            libc::_exit(code);
        }
        drop(exec_w);
        // The init keeps nothing but its report pipe (and the exec pipe, for a moment): the
        // command has its own copies of stdio and of the preserved descriptors.
        let _ = sys::close_all_except(&[
            report,
            exec_r.as_raw_fd(),
            started.as_ref().map_or(-1, |s| s.as_raw_fd()),
        ]);
        // The exec pipe closes on a successful exec; anything written is why it failed.
        let out = sys::read_to_end(exec_r.as_raw_fd()).unwrap_or_default();
        if out.is_empty() {
            let _ = proto::send(report, &Report::Started);
        } else {
            let _ = sys::write_all(report, &out);
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
