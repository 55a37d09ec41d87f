//! Which resolvers the network's resolver forwards to.
//!
//! By default the host's: the nameservers of its resolv.conf (`/etc/resolv.conf`), port 53,
//! re-read when the file changes. Loopback servers (systemd-resolved's `127.0.0.53`, a local
//! dnsmasq) need thought: they answer only inside the network namespace they listen in. The
//! resolver runs in the host's namespace (it listens on the bridge's gateway there), so for a
//! rootful ns they are reachable and kept — they are often the only way to the host's split
//! DNS and VPN names, which Docker keeps for the same reason (`host(127.0.0.53)` in its
//! ExtServers). A resolver run in a namespace of its own (a rootless network namespace, as
//! podman's rootless-netns) cannot reach them: start it with `host_loopback = false`
//! (`--no-host-loopback`) and they are left out. A container's own `--dns` servers are
//! always reached from the host's namespace, so a loopback one among them (which, for Docker,
//! means the container's own loopback) cannot be honoured and is left out too.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use crate::resolvconf::{Nameserver, ResolvConf};

pub const DNS_PORT: u16 = 53;

/// The servers to forward to, in order, and those left out (to say so in the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upstreams {
    pub servers: Vec<SocketAddr>,
    pub left_out: Vec<String>,
}

/// The upstream servers a resolv.conf gives.
pub fn from_resolv_conf(text: &str, host_loopback: bool) -> Upstreams {
    let rc = ResolvConf::parse(text);
    let mut u = Upstreams::default();
    for ns in &rc.nameservers {
        if ns.is_loopback() && !host_loopback {
            u.left_out.push(format!("{ns} (loopback of the host, not reachable from here)"));
            continue;
        }
        match socket_addr(ns) {
            Some(a) => u.servers.push(a),
            None => u.left_out.push(format!("{ns} (no such interface)")),
        }
    }
    u.left_out.extend(rc.invalid.iter().map(|v| format!("{v} (not an address)")));
    u
}

/// A container's own servers (`--dns`): port 53, loopback ones left out.
pub fn for_container(dns: &[IpAddr]) -> Vec<SocketAddr> {
    dns.iter()
        .filter(|a| !Nameserver::new(**a).is_loopback())
        .map(|a| SocketAddr::new(*a, DNS_PORT))
        .collect()
}

fn socket_addr(ns: &Nameserver) -> Option<SocketAddr> {
    match (ns.addr, &ns.zone) {
        (IpAddr::V6(a), Some(zone)) => {
            let name = CString::new(zone.as_str()).ok()?;
            // SAFETY: if_nametoindex reads a NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            (index != 0).then(|| SocketAddr::V6(SocketAddrV6::new(a, DNS_PORT, 0, index)))
        }
        (addr, _) => Some(SocketAddr::new(addr, DNS_PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_servers_are_kept_in_order_with_loopback_ones_only_where_reachable() {
        let text = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n";
        let kept = from_resolv_conf(text, true);
        let s: Vec<String> = kept.servers.iter().map(|a| a.to_string()).collect();
        assert_eq!(s, vec!["127.0.0.53:53", "192.0.2.53:53", "[2001:db8::53]:53"]);
        let rootless = from_resolv_conf(text, false);
        assert_eq!(rootless.servers.len(), 2);
        assert_eq!(rootless.servers[0].to_string(), "192.0.2.53:53");
        assert!(rootless.left_out[0].starts_with("127.0.0.53 (loopback"));
    }

    #[test]
    fn a_link_local_server_gets_its_interface_and_an_unknown_one_is_left_out() {
        let u = from_resolv_conf(
            "nameserver fe80::1%lo\nnameserver fe80::2%nosuchif0\nnameserver x\n",
            true,
        );
        assert_eq!(u.servers.len(), 1);
        let SocketAddr::V6(v6) = u.servers[0] else { panic!() };
        assert_ne!(v6.scope_id(), 0);
        assert_eq!(u.left_out.len(), 2);
    }

    #[test]
    fn a_containers_own_loopback_servers_are_left_out() {
        let dns: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "192.0.2.54".parse().unwrap()];
        assert_eq!(for_container(&dns), vec!["192.0.2.54:53".parse::<SocketAddr>().unwrap()]);
    }
}

/// The network's upstream servers while the resolver runs: given explicitly, or read from a
/// resolv.conf and re-read when it changes (checked once a tick); the server that answered
/// last is asked first, so a dead first server costs one timeout, not one per query.
pub struct UpstreamSet {
    source: Option<(std::path::PathBuf, CString)>,
    stamp: Option<crate::sys::FileStamp>,
    host_loopback: bool,
    servers: Vec<SocketAddr>,
    preferred: usize,
}

impl UpstreamSet {
    /// `explicit` non-empty: those, always. Otherwise the nameservers of `resolv_conf`.
    pub fn new(
        explicit: &[SocketAddr],
        resolv_conf: &std::path::Path,
        host_loopback: bool,
    ) -> UpstreamSet {
        let source = if explicit.is_empty() {
            crate::sys::cstring(resolv_conf).ok().map(|c| (resolv_conf.to_owned(), c))
        } else {
            None
        };
        let mut set = UpstreamSet {
            source,
            stamp: None,
            host_loopback,
            servers: explicit.to_vec(),
            preferred: 0,
        };
        set.reload();
        set
    }

    fn reload(&mut self) {
        let Some((path, cpath)) = &self.source else { return };
        self.stamp = crate::sys::stamp(cpath).ok().flatten();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                crate::log::line(&format!(
                    "cannot read {}: {e}; forwarding to no server",
                    path.display()
                ));
                String::new()
            }
        };
        let u = from_resolv_conf(&text, self.host_loopback);
        for l in &u.left_out {
            crate::log::line(&format!("upstream {l} left out"));
        }
        if u.servers.is_empty() {
            crate::log::line(&format!(
                "no upstream server in {}: names outside the networks get SERVFAIL",
                path.display()
            ));
        }
        if u.servers != self.servers {
            self.preferred = 0;
        }
        self.servers = u.servers;
    }

    /// Re-read the resolv.conf if it changed.
    pub fn refresh(&mut self) {
        let Some((_, cpath)) = &self.source else { return };
        if crate::sys::stamp(cpath).ok().flatten() != self.stamp {
            self.reload();
        }
    }

    /// The servers, the one that answered last first.
    pub fn ordered(&self) -> Vec<SocketAddr> {
        let mut s = self.servers.clone();
        if self.preferred < s.len() {
            s.rotate_left(self.preferred);
        }
        s
    }

    /// `server` answered: ask it first from now on.
    pub fn answered(&mut self, server: SocketAddr) {
        if let Some(i) = self.servers.iter().position(|s| *s == server) {
            self.preferred = i;
        }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }
}

#[cfg(test)]
mod set_tests {
    use super::*;

    #[test]
    fn the_server_that_answered_is_asked_first_and_a_changed_file_is_reread() {
        let dir = std::env::temp_dir().join(format!("ns-dns-up-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("resolv.conf");
        std::fs::write(&path, "nameserver 192.0.2.99\nnameserver 192.0.2.54\n").unwrap();
        let mut set = UpstreamSet::new(&[], &path, true);
        let a: SocketAddr = "192.0.2.99:53".parse().unwrap();
        let b: SocketAddr = "192.0.2.54:53".parse().unwrap();
        assert_eq!(set.ordered(), vec![a, b]);
        set.answered(b);
        assert_eq!(set.ordered(), vec![b, a]);
        std::fs::write(dir.join("new"), "nameserver 192.0.2.53\n").unwrap();
        std::fs::rename(dir.join("new"), &path).unwrap();
        set.refresh();
        assert_eq!(set.ordered(), vec!["192.0.2.53:53".parse::<SocketAddr>().unwrap()]);
        let explicit = UpstreamSet::new(&[a], &path, true);
        assert_eq!(explicit.servers(), &[a]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
