//! The socket: one rtnetlink socket, its requests and replies. The message kinds (links,
//! addresses, routes) build on it; this module uses only the attribute codec beside it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::attr::{self, Attrs, Request, NLMSG_HDRLEN};
use crate::error::{Errno, NetError, Result};
use crate::netns;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

/// How long a reply may take before the request is given up (`ETIMEDOUT`): the kernel answers
/// at once, so this only guards against a bug leaving the helper blocked forever.
const REPLY_TIMEOUT_SECS: libc::time_t = 10;

/// The failure of one request: the errno and the kernel's own words (extended ack), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: Errno,
    pub detail: Option<String>,
}

impl NlError {
    fn of(errno: Errno) -> Self {
        NlError { errno, detail: None }
    }

    /// The error of a named step: `failed to <step> <what>: EEXIST (file exists)`, with the
    /// kernel's explanation as the hint when it gave one.
    pub fn context(self, step: &str, what: Option<&str>) -> NetError {
        let e = NetError::sys(step, what, self.errno);
        match self.detail {
            Some(d) => e.with_hint(format!("the kernel says: {d}")),
            None => e,
        }
    }
}

pub type NlResult<T> = std::result::Result<T, NlError>;

/// One rtnetlink socket, bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in this thread's network namespace.
    pub fn open() -> Result<Netlink> {
        Self::socket().map_err(|e| e.context("open netlink socket", None))
    }

    /// A socket in the network namespace `ns` (an fd of `/proc/PID/ns/net`): this thread
    /// enters it, creates the socket and returns to its own namespace before this returns.
    pub fn open_in(ns: BorrowedFd<'_>) -> Result<Netlink> {
        netns::run_in(ns, || Self::socket().map_err(|e| e.context("open netlink socket", None)))?
    }

    fn socket() -> NlResult<Netlink> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
        };
        if fd < 0 {
            return Err(NlError::of(Errno::last()));
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        for opt in [NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK] {
            // SAFETY: setsockopt reads an int from a valid pointer. Failure is harmless (an
            // older kernel without extended acks or strict checking).
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        let tv = libc::timeval { tv_sec: REPLY_TIMEOUT_SECS, tv_usec: 0 };
        // SAFETY: setsockopt reads a timeval from a valid pointer.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        // SAFETY: a zeroed sockaddr_nl is valid: the kernel picks the port id.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: bind reads a sockaddr_nl of the size given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(NlError::of(Errno::last()));
        }
        Ok(Netlink { fd, seq: 0, buf: vec![0; 64 * 1024] })
    }

    fn send(&mut self, req: Request) -> NlResult<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = req.finish(seq);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel (port 0).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: sendto reads msg.len() bytes of msg and a sockaddr_nl.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    msg.as_ptr() as *const libc::c_void,
                    msg.len(),
                    0,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(seq);
            }
            let e = Errno::last();
            if e.0 != libc::EINTR {
                return Err(NlError::of(e));
            }
        }
    }

    /// One datagram into `self.buf`; its length.
    fn recv(&mut self) -> NlResult<usize> {
        loop {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = Errno::last();
                match e.0 {
                    libc::EINTR => continue,
                    libc::EAGAIN => return Err(NlError::of(Errno(libc::ETIMEDOUT))),
                    _ => return Err(NlError::of(e)),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                // A datagram larger than the buffer: grow it and let the kernel resend? It
                // does not; the message is lost, so say so.
                self.buf.resize(n.next_power_of_two(), 0);
                return Err(NlError {
                    errno: Errno(libc::EMSGSIZE),
                    detail: Some("a netlink reply was larger than the receive buffer".into()),
                });
            }
            return Ok(n);
        }
    }

    /// Sends a request that asks for an acknowledgement and waits for it.
    pub fn request(&mut self, req: Request) -> NlResult<()> {
        self.exchange(req, NLM_F_ACK, &mut |_, _| Ok(()))
    }

    /// Sends a request for one object (a link by name) and returns the replies' payloads.
    pub fn get(&mut self, req: Request) -> NlResult<Vec<(u16, Vec<u8>)>> {
        let mut out = Vec::new();
        self.exchange(req, NLM_F_ACK, &mut |ty, p| {
            out.push((ty, p.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Sends a dump request and hands each reply (its type and payload) to `each`.
    pub fn dump(
        &mut self,
        req: Request,
        each: &mut dyn FnMut(u16, &[u8]) -> NlResult<()>,
    ) -> NlResult<()> {
        self.exchange(req, NLM_F_DUMP, each)
    }

    fn exchange(
        &mut self,
        mut req: Request,
        flags: u16,
        each: &mut dyn FnMut(u16, &[u8]) -> NlResult<()>,
    ) -> NlResult<()> {
        req.add_flags(NLM_F_REQUEST | flags);
        let seq = self.send(req)?;
        loop {
            let n = self.recv()?;
            let buf = std::mem::take(&mut self.buf);
            let r = walk(&buf[..n], seq, each);
            self.buf = buf;
            match r? {
                Walk::Acked | Walk::Done => return Ok(()),
                Walk::More => continue,
            }
        }
    }
}

enum Walk {
    /// An acknowledgement (error 0) for our request.
    Acked,
    /// The end of a dump.
    Done,
    /// Nothing final in this datagram: read another.
    More,
}

/// Walks the messages of one datagram. Messages of other sequence numbers (a late reply to an
/// earlier request that timed out) are skipped.
fn walk(
    mut buf: &[u8],
    seq: u32,
    each: &mut dyn FnMut(u16, &[u8]) -> NlResult<()>,
) -> NlResult<Walk> {
    let proto =
        || NlError { errno: Errno(libc::EPROTO), detail: Some("malformed netlink reply".into()) };
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let flags = u16::from_ne_bytes([buf[6], buf[7]]);
        let mseq = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(proto());
        }
        let payload = &buf[NLMSG_HDRLEN..len];
        let next = attr::align(len).min(buf.len());
        buf = &buf[next..];
        if mseq != seq {
            continue;
        }
        match ty {
            NLMSG_DONE => return Ok(Walk::Done),
            NLMSG_ERROR => {
                if payload.len() < 4 {
                    return Err(proto());
                }
                let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if code == 0 {
                    return Ok(Walk::Acked);
                }
                return Err(NlError { errno: Errno(-code), detail: ack_message(payload, flags) });
            }
            _ => each(ty, payload)?,
        }
    }
    Ok(Walk::More)
}

/// The kernel's message in an extended ack: after the error code and the echoed request
/// (its header only, when capped), the TLVs.
fn ack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let rest = payload.get(4..)?;
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let l = rest.get(..4)?;
        attr::align(u32::from_ne_bytes([l[0], l[1], l[2], l[3]]) as usize)
    };
    let tlvs = rest.get(echoed..)?;
    Attrs::new(tlvs).find(|(t, _)| *t == NLMSGERR_ATTR_MSG).map(|(_, v)| attr::string(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    #[test]
    fn an_error_reply_gives_the_errno_and_the_kernels_message() {
        let mut p = Vec::new();
        p.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
        p.extend_from_slice(&msg(16, 0, 7, &[])); // echoed header (capped)
        let text = b"File exists\0";
        p.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(text);
        let m = msg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 7, &p);
        let Err(e) = walk(&m, 7, &mut |_, _| Ok(())) else { panic!("an error is an error") };
        assert_eq!(e.errno, Errno(libc::EEXIST));
        assert_eq!(e.detail.as_deref(), Some("File exists"));
    }

    #[test]
    fn replies_to_other_requests_are_skipped_and_an_ack_ends_the_wait() {
        let mut m = msg(NLMSG_ERROR, 0, 3, &(-libc::EPERM).to_ne_bytes());
        m.extend(msg(NLMSG_ERROR, 0, 4, &0i32.to_ne_bytes()));
        assert!(matches!(walk(&m, 4, &mut |_, _| Ok(())), Ok(Walk::Acked)));
    }

    #[test]
    fn malformed_replies_are_errors_never_panics() {
        let good = msg(16, 0x2, 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
        for cut in 0..good.len() {
            let mut bad = good[..cut].to_vec();
            let _ = walk(&bad, 1, &mut |_, _| Ok(()));
            bad.extend_from_slice(&[0xff; 5]);
            let _ = walk(&bad, 1, &mut |_, _| Ok(()));
        }
        // A length that runs past the datagram.
        let mut lie = good.clone();
        lie[0] = 200;
        assert_eq!(
            walk(&lie, 1, &mut |_, _| Ok(())).err().map(|e| e.errno),
            Some(Errno(libc::EPROTO))
        );
        // A length smaller than a header.
        lie[0] = 3;
        assert!(walk(&lie, 1, &mut |_, _| Ok(())).is_err());
    }
}
