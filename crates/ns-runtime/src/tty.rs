//! The caller's side of a container's terminal: the helper copies its own stdin to the
//! terminal's master and the master to its stdout, with its terminal (if any) in raw mode,
//! and passes window size changes on. The master travels from the container over a socket
//! pair, and on to an engine's console socket when it asks for one.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Result, SetupError};
use crate::sys::{self, Errno};

/// The master being relayed, for the SIGWINCH handler (-1: none).
pub static MASTER: AtomicI32 = AtomicI32::new(-1);

/// Copy the window size of our terminal (stdin, else stdout) to the master. Only plain
/// syscalls: it runs in a signal handler.
pub fn sync_winsize() {
    let m = MASTER.load(Ordering::Relaxed);
    if m < 0 {
        return;
    }
    for fd in [0, 1] {
        match sys::get_winsize(fd) {
            // A terminal that does not know its size (0x0) leaves the container's as it is.
            Some(ws) if ws.ws_row == 0 && ws.ws_col == 0 => return,
            Some(ws) => {
                let _ = sys::set_winsize(m, ws.ws_row, ws.ws_col);
                return;
            }
            None => {}
        }
    }
}

/// Our terminal in raw mode while it lives: keys go to the container as typed (^C included).
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter(fd: RawFd) -> RawMode {
        // SAFETY: termios is written by tcgetattr before use.
        unsafe {
            if libc::isatty(fd) != 1 {
                return RawMode(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return RawMode(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            set_attr(fd, &t);
            RawMode(Some(saved))
        }
    }
}

/// tcsetattr with SIGTTOU blocked: from outside the terminal's foreground group it would
/// otherwise stop us (or, with a handler, be retried for ever).
fn set_attr(fd: RawFd, t: &libc::termios) {
    // SAFETY: signal-mask manipulation on local sets, and tcsetattr with a valid termios.
    unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGTTOU);
        libc::sigprocmask(libc::SIG_BLOCK, &block, &mut old);
        libc::tcsetattr(fd, libc::TCSANOW, t);
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            set_attr(0, &t);
        }
    }
}

/// Act on the messages waiting on the control socket: new window sizes.
fn apply_control(c: &mut crate::proto::LineReader, master: RawFd) {
    while let Some(line) = c.buffered_line() {
        if let Ok(crate::proto::ControlMessage { resize: Some(ws) }) = serde_json::from_slice(&line)
        {
            if ws.rows > 0 && ws.cols > 0 {
                let _ = sys::set_winsize(master, ws.rows, ws.cols);
            }
        }
    }
}

/// Relay until the terminal is gone (every holder of its slave closed) and `reports` reached
/// its end; each line on `reports` goes to `on_line`, and its end as `None` (without an init
/// that is the moment the command was executed, long before the terminal goes).
pub fn relay(master: OwnedFd, reports: RawFd, on_line: &mut dyn FnMut(Option<&[u8]>)) {
    let m = master.as_raw_fd();
    MASTER.store(m, Ordering::Relaxed);
    let _raw = RawMode::enter(0);
    sync_winsize();
    // The caller's control socket, if it has one: window sizes arrive there.
    let mut control = crate::proto::take_control();
    if let Some(c) = control.as_mut() {
        // What came with the request, before the terminal existed.
        apply_control(c, m);
    }
    let (mut rep_open, mut in_open, mut m_open) = (true, true, true);
    let mut pending = Vec::new();
    let mut buf = [0u8; 16384];
    while m_open || rep_open {
        let fd_if = |open: bool, fd: RawFd| if open { fd } else { -1 };
        let mut fds = [
            libc::pollfd { fd: fd_if(rep_open, reports), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: fd_if(in_open && m_open, 0), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: fd_if(m_open, m), events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                fd: control.as_ref().map_or(-1, |c| c.fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 4, -1) } < 0 {
            continue; // EINTR: a window size change
        }
        if fds[3].revents != 0 {
            if let Some(c) = control.as_mut() {
                let more = c.fill();
                apply_control(c, m);
                if !more {
                    control = None;
                }
            }
        }
        if fds[0].revents != 0 {
            match sys::read(reports, &mut buf) {
                Ok(0) | Err(_) => {
                    rep_open = false;
                    if !pending.is_empty() {
                        on_line(Some(&std::mem::take(&mut pending)));
                    }
                    on_line(None);
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                        let mut line: Vec<u8> = pending.drain(..=i).collect();
                        line.pop();
                        on_line(Some(&crate::proto::checked_report(line)));
                    }
                    // A report longer than any is a broken peer: it ends the reports.
                    if pending.len() > crate::proto::MAX_LINE {
                        pending = Vec::new();
                        rep_open = false;
                        on_line(Some(&crate::proto::broken_report("a report was too long")));
                        on_line(None);
                    }
                }
            }
        }
        if fds[1].revents != 0 {
            match sys::read(0, &mut buf) {
                Ok(0) | Err(_) => in_open = false,
                Ok(n) => {
                    let _ = sys::write_all(m, &buf[..n]);
                }
            }
        }
        if fds[2].revents != 0 {
            match sys::read(m, &mut buf) {
                // EIO: the last holder of the slave closed it.
                Ok(0) | Err(_) => m_open = false,
                Ok(n) => {
                    let _ = sys::write_all(1, &buf[..n]);
                }
            }
        }
    }
    MASTER.store(-1, Ordering::Relaxed);
}

/// A connected pair of unix sockets, close-on-exec: the way a terminal's master travels.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    } != 0
    {
        return Err(SetupError::sys("create a socket pair", None, Errno::last()));
    }
    // SAFETY: two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Hand a terminal's master to the engine listening on `path` (OCI `--console-socket`).
pub fn send_to_console_socket(path: &str, master: &OwnedFd) -> Result<()> {
    let sock = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        SetupError::sys(
            "connect to the console socket",
            Some(path),
            Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    sys::send_fd(sock.as_raw_fd(), master.as_raw_fd(), b"/dev/ptmx")
        .map_err(|e| SetupError::sys("send the terminal to", Some(path), e))
}
