//! The published host ports, held: a socket bound to each (close-on-exec) while the container
//! lives, so that a port in use is refused and no program of the host takes one it publishes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;

use ns_net::firewall::Proto;
use ns_net::PortMapping;

use crate::error::{Result, SetupError};
use crate::sys::Errno;

/// Binds the host ports of one published mapping (each port of a range) and keeps the
/// sockets: a port a program of the host uses is refused, and no program takes it while the
/// container publishes it. A host port 0 is set to the one the kernel gave.
pub(super) fn hold_ports(i: usize, m: &mut PortMapping) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for k in 0..m.count {
        let port = if m.host_port == 0 { 0 } else { m.host_port.saturating_add(k) };
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let proto = m.protocol.as_str();
        let (fd, got) = bind_port(SocketAddr::new(ip, port), m.protocol).map_err(|e| {
            let what =
                format!("{}{port}/{proto}", m.host_ip.map(|h| format!("{h}:")).unwrap_or_default());
            let field = format!("ports[{i}]");
            let reason = match e.0 {
                libc::EADDRINUSE => match publisher(port, m.protocol) {
                    Some(c) => format!("host port {what} is published by container {c} already"),
                    None => format!("host port {what} is in use on the host"),
                },
                libc::EADDRNOTAVAIL => format!("{ip} is no address of this host"),
                _ => format!("host port {what} cannot be bound: {} ({})", e.name(), e.describe()),
            };
            SetupError {
                step: "publish host port".into(),
                path: Some(field.clone()),
                errno: Some(e.0),
                code: e.name().to_owned(),
                message: format!("{field}: {reason}"),
                hint: None,
            }
        })?;
        if m.host_port == 0 {
            m.host_port = got;
        }
        out.push(fd);
    }
    Ok(out)
}

/// The container that publishes host port `port` already, by the firewall's elements.
fn publisher(port: u16, proto: Proto) -> Option<String> {
    let table = ns_net::firewall::Nft::default().list().ok()??;
    ns_net::firewall::published(&table)
        .into_iter()
        .find(|p| p.host_port == port && p.proto == proto)
        .map(|p| p.container)
}

/// A socket of `proto` bound to `addr` (close-on-exec), and the port it got.
fn bind_port(addr: SocketAddr, proto: Proto) -> std::result::Result<(OwnedFd, u16), Errno> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let ty = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    let fam = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; the descriptor is owned below.
    let raw = unsafe { libc::socket(fam, ty | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: raw is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed sockaddr_storage is a valid (empty) address of any family.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*a.ip()).to_be() };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads an int from a valid pointer. An IPv6 port stays IPv6
            // only: the IPv4 one is bound by a mapping of its own.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: bind reads `len` bytes of a valid address.
    if unsafe {
        libc::bind(fd.as_raw_fd(), &ss as *const _ as *const libc::sockaddr, len as libc::socklen_t)
    } != 0
    {
        return Err(Errno::last());
    }
    let mut got: libc::sockaddr_storage = ss;
    let mut glen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most glen bytes into got.
    if unsafe {
        libc::getsockname(fd.as_raw_fd(), &mut got as *mut _ as *mut libc::sockaddr, &mut glen)
    } != 0
    {
        return Err(Errno::last());
    }
    // SAFETY: the port sits at the same offset in sockaddr_in and sockaddr_in6.
    let port = u16::from_be(unsafe { (*(&got as *const _ as *const libc::sockaddr_in)).sin_port });
    Ok((fd, port))
}
