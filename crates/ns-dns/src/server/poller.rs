//! epoll, level-triggered, one token per descriptor. The token says what the descriptor is
//! (its kind), which slot holds it and that slot's generation, so an event left over from a
//! closed descriptor is never taken for the one that reused its slot.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::cvt;

pub(crate) const READ: u32 = libc::EPOLLIN as u32;
pub(crate) const WRITE: u32 = libc::EPOLLOUT as u32;
/// Reported with any interest: the peer hung up or the socket has an error.
pub(crate) const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: u8,
    pub gen: u32,
    pub index: u32,
}

impl Token {
    pub(crate) fn new(kind: u8, gen: u32, index: usize) -> Token {
        Token { kind, gen: gen & 0xFF_FFFF, index: index as u32 }
    }

    fn pack(self) -> u64 {
        ((self.kind as u64) << 56) | (((self.gen & 0xFF_FFFF) as u64) << 32) | self.index as u64
    }

    fn unpack(v: u64) -> Token {
        Token { kind: (v >> 56) as u8, gen: ((v >> 32) & 0xFF_FFFF) as u32, index: v as u32 }
    }
}

pub(crate) struct Poller {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscall; the result is checked before it is owned.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd is a fresh descriptor nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epfd, buf: vec![libc::epoll_event { events: 0, u64: 0 }; 256] })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: Token, interest: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: interest, u64: token.pack() };
        // SAFETY: ev lives across the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    pub(crate) fn add(&self, fd: RawFd, token: Token, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    pub(crate) fn modify(&self, fd: RawFd, token: Token, interest: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    pub(crate) fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in ctl; a descriptor already gone is fine (closing removes it anyway).
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Wait up to `timeout_ms` (-1: forever) and return the ready tokens with their events.
    pub(crate) fn wait(&mut self, timeout_ms: i32, out: &mut Vec<(Token, u32)>) -> io::Result<()> {
        out.clear();
        // SAFETY: the buffer holds buf.len() events; the kernel writes at most that many.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                self.buf.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        for ev in &self.buf[..n as usize] {
            let (events, data) = (ev.events, ev.u64);
            out.push((Token::unpack(data), events));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_pack_and_unpack_and_wrap_their_generation() {
        let t = Token::new(3, 0x1234_5678, 99);
        assert_eq!(Token::unpack(t.pack()), Token { kind: 3, gen: 0x34_5678, index: 99 });
    }

    #[test]
    fn a_readable_socket_is_reported_with_its_token() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let mut p = Poller::new().unwrap();
        p.add(b.as_raw_fd(), Token::new(1, 2, 3), READ).unwrap();
        let mut out = Vec::new();
        p.wait(0, &mut out).unwrap();
        assert!(out.is_empty());
        a.send(b"x").unwrap();
        p.wait(1000, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Token::new(1, 2, 3));
        assert_ne!(out[0].1 & READ, 0);
    }
}
