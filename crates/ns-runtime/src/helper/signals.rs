//! Signals, throughout: what the helper receives is passed on to the container's first
//! process (a window size change to its terminal), from the clone until it has been reaped.

use std::sync::atomic::{AtomicI32, Ordering};

/// The container's first process, which the helper's signals go to (0: nobody).
pub(super) static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    // With a terminal, a window size change is passed on as a new size for it: the kernel
    // then signals the container's foreground group itself.
    if sig == libc::SIGWINCH && crate::tty::MASTER.load(Ordering::Relaxed) >= 0 {
        crate::tty::sync_winsize();
        return;
    }
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Signals the helper passes on to the container's first process. (Not SIGTTIN and SIGTTOU:
/// those are the caller's terminal telling the helper itself to wait.)
const FORWARDED: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
    libc::SIGTSTP,
];

/// Forward the helper's signals to `pid` from now on (0: to nobody).
pub fn forward_signals_to(pid: libc::pid_t) {
    if pid > 0 {
        install_forwarding();
    }
    CHILD.store(pid, Ordering::Relaxed);
}

pub(super) fn install_forwarding() {
    for sig in FORWARDED {
        // SAFETY: installing a handler that only calls kill.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
