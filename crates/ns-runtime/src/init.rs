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

fn fail(report: libc::c_int, e: crate::error::SetupError) -> ! {
    let _ = proto::send(report, &Report::Error { error: e });
    // SAFETY: ends the process.
    unsafe { libc::_exit(125) }
}
