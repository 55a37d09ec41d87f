//! The terminal of a detached container. Its monitor holds the terminal's master: it copies
//! everything the container writes into the log, and serves a unix socket (`attach.sock` in
//! the container's folder) through which any number of clients see that output as it comes
//! and send keys and window sizes back.
//!
//! A client reads raw terminal output. It writes frames: one byte of kind, four bytes of
//! length (big endian), then the payload. Kind 0 is input for the terminal; kind 1 is a window
//! size, its payload two big-endian u16: rows, then columns. The monitor closes every client
//! once the terminal is gone (the container ended).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Result, SetupError};
use crate::sys::{self, Errno};

pub const ATTACH_SOCKET: &str = "attach.sock";

pub const FRAME_INPUT: u8 = 0;
pub const FRAME_RESIZE: u8 = 1;

/// Past this much unsent output a client that does not read is let go; past this much
/// pending input, keys are dropped (the container does not read its terminal).
const MAX_PENDING: usize = 1 << 20;
/// The largest frame a client may send (its payload, in bytes).
pub const MAX_FRAME: usize = 1 << 20;

/// Listen on `<dir>/attach.sock`, mode 0600. The path is reached through a descriptor of the
/// folder, so a long state root does not run into the 108 bytes of a socket address.
pub fn listen(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(ATTACH_SOCKET);
    let shown = path.display().to_string();
    let dirfd = sys::open(&dir.display().to_string(), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| SetupError::sys("open the container folder", Some(&shown), e))?;
    let _ = std::fs::remove_file(&path);
    // SAFETY: plain syscalls on fresh descriptors and a zeroed sockaddr_un filled within bounds.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if fd < 0 {
            return Err(SetupError::sys("create the attach socket", Some(&shown), Errno::last()));
        }
        let sock = OwnedFd::from_raw_fd(fd);
        let name = format!("/proc/self/fd/{}/{ATTACH_SOCKET}", dirfd.as_raw_fd());
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        let old = libc::umask(0o177);
        let r = libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as u32,
        );
        libc::umask(old);
        if r != 0 {
            return Err(SetupError::sys("bind the attach socket", Some(&shown), Errno::last()));
        }
        if libc::listen(fd, 16) != 0 {
            return Err(SetupError::sys(
                "listen on the attach socket",
                Some(&shown),
                Errno::last(),
            ));
        }
        Ok(sock)
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we hold.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Write what can be written now; keep the rest. False when the peer is gone.
fn flush(fd: RawFd, pending: &mut Vec<u8>) -> bool {
    while !pending.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, pending.as_ptr().cast(), pending.len()) };
        if n < 0 {
            return matches!(Errno::last().0, libc::EAGAIN | libc::EINTR);
        }
        pending.drain(..n as usize);
    }
    true
}

struct Client {
    fd: OwnedFd,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

/// A terminal, its clients, and the keys on their way to it.
pub struct Terminal {
    master: OwnedFd,
    listener: OwnedFd,
    clients: Vec<Client>,
    to_master: Vec<u8>,
    pub open: bool,
}

impl Terminal {
    pub fn new(master: OwnedFd, listener: OwnedFd) -> Terminal {
        set_nonblocking(master.as_raw_fd());
        Terminal { master, listener, clients: Vec::new(), to_master: Vec::new(), open: true }
    }

    /// Wait up to `timeout_ms` for something to do and do it; output read from the terminal
    /// goes to `on_output` (the log) as well as to every client.
    pub fn step(&mut self, timeout_ms: i32, on_output: &mut dyn FnMut(&[u8])) {
        let mut fds = vec![
            libc::pollfd {
                fd: if self.open { self.master.as_raw_fd() } else { -1 },
                events: libc::POLLIN | if self.to_master.is_empty() { 0 } else { libc::POLLOUT },
                revents: 0,
            },
            libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        for c in &self.clients {
            let out = if c.outbuf.is_empty() { 0 } else { libc::POLLOUT };
            fds.push(libc::pollfd { fd: c.fd.as_raw_fd(), events: libc::POLLIN | out, revents: 0 });
        }
        // SAFETY: a valid array of pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) } <= 0 {
            return;
        }
        let mut buf = [0u8; 16384];
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match sys::read(self.master.as_raw_fd(), &mut buf) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    on_output(&buf[..n]);
                    for c in &mut self.clients {
                        c.outbuf.extend_from_slice(&buf[..n]);
                    }
                }
                Err(Errno(libc::EAGAIN | libc::EINTR)) => {}
                // EIO: the last holder of the slave closed it.
                Err(_) => self.open = false,
            }
        }
        if fds[0].revents & libc::POLLOUT != 0
            && !flush(self.master.as_raw_fd(), &mut self.to_master)
        {
            self.to_master.clear();
        }
        if fds[1].revents & libc::POLLIN != 0 {
            // SAFETY: accepting on our listener; a fresh descriptor is returned.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd >= 0 {
                // SAFETY: a descriptor we now own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                self.clients.push(Client { fd, inbuf: Vec::new(), outbuf: Vec::new() });
            }
        }
        let mut gone = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            let Some(pfd) = fds.get(2 + i) else { continue };
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match sys::read(c.fd.as_raw_fd(), &mut buf) {
                    Ok(0) => gone.push(i),
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(Errno(libc::EAGAIN | libc::EINTR)) => {}
                    Err(_) => gone.push(i),
                }
                if !take_frames(&mut c.inbuf, self.master.as_raw_fd(), &mut self.to_master) {
                    gone.push(i);
                }
            }
            if !flush(c.fd.as_raw_fd(), &mut c.outbuf) || c.outbuf.len() > MAX_PENDING {
                gone.push(i);
            }
        }
        gone.sort_unstable();
        gone.dedup();
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        if !self.to_master.is_empty() && !flush(self.master.as_raw_fd(), &mut self.to_master) {
            self.to_master.clear();
        }
    }

    /// The terminal is gone: give each client what it has not read yet (a moment at most),
    /// then close them all.
    pub fn close_clients(&mut self) {
        for c in &mut self.clients {
            for _ in 0..20 {
                if c.outbuf.is_empty() || !flush(c.fd.as_raw_fd(), &mut c.outbuf) {
                    break;
                }
                let mut p =
                    libc::pollfd { fd: c.fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 10) };
            }
        }
        self.clients.clear();
    }
}

/// Act on the whole frames in `inbuf`. False when a frame is malformed (the client is let go).
fn take_frames(inbuf: &mut Vec<u8>, master: RawFd, to_master: &mut Vec<u8>) -> bool {
    loop {
        if inbuf.len() < 5 {
            return true;
        }
        let len = u32::from_be_bytes([inbuf[1], inbuf[2], inbuf[3], inbuf[4]]) as usize;
        if len > MAX_FRAME {
            return false;
        }
        if inbuf.len() < 5 + len {
            return true;
        }
        let payload = &inbuf[5..5 + len];
        match inbuf[0] {
            FRAME_INPUT => {
                if to_master.len() + payload.len() <= MAX_PENDING {
                    to_master.extend_from_slice(payload);
                }
            }
            FRAME_RESIZE if len == 4 => {
                let rows = u16::from_be_bytes([payload[0], payload[1]]);
                let cols = u16::from_be_bytes([payload[2], payload[3]]);
                if rows > 0 && cols > 0 {
                    let _ = sys::set_winsize(master, rows, cols);
                }
            }
            _ => return false,
        }
        inbuf.drain(..5 + len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_become_input_and_window_sizes() {
        let (master, _slave) = sys::open_pty().unwrap();
        let mut inbuf = frame(FRAME_INPUT, b"ls\n");
        inbuf.extend(frame(FRAME_RESIZE, &[0, 33, 0, 120]));
        inbuf.extend(&frame(FRAME_INPUT, b"partial")[..6]);
        let mut to_master = Vec::new();
        assert!(take_frames(&mut inbuf, master.as_raw_fd(), &mut to_master));
        assert_eq!(to_master, b"ls\n");
        let ws = sys::get_winsize(master.as_raw_fd()).unwrap();
        assert_eq!((ws.ws_row, ws.ws_col), (33, 120));
        // The incomplete frame waits for the rest.
        assert_eq!(inbuf.len(), 6);
        inbuf.extend(b"artial");
        assert!(take_frames(&mut inbuf, master.as_raw_fd(), &mut to_master));
        assert_eq!(to_master, b"ls\npartial");
        assert!(inbuf.is_empty());
    }

    #[test]
    fn malformed_frames_let_the_client_go() {
        let (master, _slave) = sys::open_pty().unwrap();
        let mut to_master = Vec::new();
        assert!(!take_frames(&mut frame(7, b"x"), master.as_raw_fd(), &mut to_master));
        let mut huge = vec![FRAME_INPUT];
        huge.extend_from_slice(&(u32::MAX).to_be_bytes());
        assert!(!take_frames(&mut huge, master.as_raw_fd(), &mut to_master));
        assert!(to_master.is_empty());
    }
}
