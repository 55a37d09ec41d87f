//! The sockets, made by hand where std cannot set what is needed before `bind`: IP_FREEBIND
//! (the gateway's address may not be usable yet — an IPv6 address still in duplicate address
//! detection, a bridge without carrier — and the resolver must not fail for that),
//! IPV6_V6ONLY, SO_REUSEADDR for TCP; all non-blocking and close-on-exec.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::cvt;

/// `addr` as a sockaddr for the kernel.
pub(crate) fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn socket(addr: &SocketAddr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; the result is checked before it is owned.
    let fd =
        cvt(unsafe { libc::socket(family, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is fresh and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is a c_int that lives across the call.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn bind_fd(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    if addr.is_ipv4() {
        set_int(fd, libc::IPPROTO_IP, libc::IP_FREEBIND, 1)?;
    } else {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1)?;
    }
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa holds a sockaddr of length len.
    cvt(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len) }).map(drop)
}

/// A UDP socket bound to `addr`, non-blocking.
pub(crate) fn bind_udp(addr: &SocketAddr) -> io::Result<UdpSocket> {
    let fd = socket(addr, libc::SOCK_DGRAM)?;
    bind_fd(fd.as_raw_fd(), addr)?;
    Ok(UdpSocket::from(fd))
}

/// A TCP socket listening on `addr`, non-blocking.
pub(crate) fn bind_tcp(addr: &SocketAddr) -> io::Result<TcpListener> {
    let fd = socket(addr, libc::SOCK_STREAM)?;
    set_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    bind_fd(fd.as_raw_fd(), addr)?;
    // SAFETY: plain syscall on our socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    Ok(TcpListener::from(fd))
}

fn connect_fd(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa holds a sockaddr of length len.
    match cvt(unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A UDP socket connected to an upstream server, on a port the kernel picks at random (so an
/// answer cannot be forged by guessing the id alone), non-blocking. Being connected, it only
/// receives from that server, and an ICMP "port unreachable" comes back as ECONNREFUSED.
pub(crate) fn udp_to(upstream: &SocketAddr) -> io::Result<UdpSocket> {
    let fd = socket(upstream, libc::SOCK_DGRAM)?;
    connect_fd(fd.as_raw_fd(), upstream)?;
    Ok(UdpSocket::from(fd))
}

/// A TCP connection to an upstream server, being made (non-blocking: writable once connected,
/// or with the error in SO_ERROR).
pub(crate) fn tcp_to(upstream: &SocketAddr) -> io::Result<TcpStream> {
    let fd = socket(upstream, libc::SOCK_STREAM)?;
    connect_fd(fd.as_raw_fd(), upstream)?;
    Ok(TcpStream::from(fd))
}
