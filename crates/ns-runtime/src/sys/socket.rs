//! Messages on unix sockets, with descriptors (SCM_RIGHTS) or without.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::errno::{check_long, retry, Errno, SysResult};

/// Send `data` as one message on the socket `sock` (MSG_NOSIGNAL: a gone peer is EPIPE).
pub fn send_msg(sock: RawFd, data: &[u8]) -> SysResult<()> {
    // SAFETY: sending a valid buffer of the length passed.
    retry(|| {
        check_long(
            unsafe { libc::send(sock, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) }
                as libc::c_long,
        )
    })?;
    Ok(())
}

/// A message header over `iov` with room for `n` descriptors in `cbuf` (SCM_RIGHTS).
fn fd_msghdr(iov: &mut libc::iovec, cbuf: &mut Vec<u8>, n: usize) -> libc::msghdr {
    // SAFETY: CMSG_SPACE is a pure computation; a zeroed msghdr is a valid empty one.
    let space = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) } as usize;
    cbuf.resize(space, 0);
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    msg
}

/// Send `fd` over the unix socket `sock` (SCM_RIGHTS), with `payload` as the message.
pub fn send_fd(sock: RawFd, fd: RawFd, payload: &[u8]) -> SysResult<()> {
    send_fds(sock, &[fd], payload)
}

/// Send `fds` (at least one) over the unix socket `sock` in one message, with `payload`.
pub fn send_fds(sock: RawFd, fds: &[RawFd], payload: &[u8]) -> SysResult<()> {
    send_fds_counted(sock, fds, payload).map(|_| ())
}

/// `send_fds`, saying how much of `payload` went (a stream socket may take less at once).
pub fn send_fds_counted(sock: RawFd, fds: &[RawFd], payload: &[u8]) -> SysResult<usize> {
    let dummy = [0u8; 1];
    let data = if payload.is_empty() { &dummy[..] } else { payload };
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let mut cbuf = Vec::new();
    let msg = fd_msghdr(&mut iov, &mut cbuf, fds.len().max(1));
    // SAFETY: msg points at valid buffers for the duration of sendmsg; the control header is
    // filled through the CMSG macros within cbuf, which has room for every descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        let data = libc::CMSG_DATA(cmsg) as *mut RawFd;
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), *fd);
        }
        let n =
            retry(|| check_long(libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) as libc::c_long))?;
        Ok(if payload.is_empty() { 0 } else { n as usize })
    }
}

/// Receive one descriptor sent with `send_fd`; None when the peer closed without sending.
pub fn recv_fd(sock: RawFd) -> SysResult<Option<OwnedFd>> {
    let mut buf = [0u8; 256];
    Ok(recv_fds(sock, &mut buf, 1)?.and_then(|(_, fds)| fds.into_iter().next()))
}

/// Receive one message into `buf` with the descriptors sent along (at most `max_fds`; they
/// are close-on-exec): its length and the descriptors, or None at the end of the stream.
/// A message longer than `buf` is an error (EMSGSIZE), its descriptors closed.
pub fn recv_fds(
    sock: RawFd,
    buf: &mut [u8],
    max_fds: usize,
) -> SysResult<Option<(usize, Vec<OwnedFd>)>> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cbuf = Vec::new();
    let mut msg = fd_msghdr(&mut iov, &mut cbuf, max_fds.max(1));
    // SAFETY: msg points at valid buffers; the control data is read through the CMSG macros,
    // each descriptor taken once into an OwnedFd.
    unsafe {
        let n = retry(|| {
            check_long(libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) as libc::c_long)
        })?;
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(Errno(libc::EMSGSIZE));
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        Ok(Some((n as usize, fds)))
    }
}
