//! A container's `/etc/hosts`, as Docker writes it: the localhost lines (the IPv6 ones only
//! when the container has IPv6), then one line per `--add-host`, then one line per address of
//! the container with its names — `FQDN HOSTNAME` when it has a domain name (Docker), followed
//! by its container name and network aliases (podman does the same; with them a program that
//! reads only /etc/hosts finds the container under every name the resolver answers to).
//!
//! `--add-host` takes `NAME:IP` (split at the first colon, so `h:2001:db8::1` works),
//! `NAME=IP` and `NAME=[IPv6]` (Docker 25's forms), several names joined by `;` (podman's), and
//! `host-gateway` for the IP: the host's address as the container sees it (the gateway of its
//! first bridge network).

use std::net::IpAddr;

use crate::error::{Error, Result};

/// One `--add-host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraHost {
    pub names: Vec<String>,
    pub addr: HostAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAddr {
    Ip(IpAddr),
    /// `host-gateway`: resolved when the file is made.
    HostGateway,
}

pub const HOST_GATEWAY: &str = "host-gateway";

/// A host name in /etc/hosts: letters, digits, `-`, `_`, `.`, not starting with `-` or `.`.
fn check_host_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(Error::config(field, format!("{name:?} is not a valid host name")));
    }
    Ok(())
}

/// Read one `--add-host` value; `field` names it in errors (`addHost[2]`).
pub fn parse_add_host(field: &str, value: &str) -> Result<ExtraHost> {
    let split = if value.contains('=') { value.split_once('=') } else { value.split_once(':') };
    let Some((names, addr)) = split else {
        return Err(Error::config(field, format!("{value:?} must be NAME:IP or NAME=IP")));
    };
    let names: Vec<String> = names.split(';').map(str::to_owned).collect();
    for n in &names {
        check_host_name(field, n)?;
    }
    let addr = addr.trim();
    let addr = if addr == HOST_GATEWAY {
        HostAddr::HostGateway
    } else {
        let bare = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
        HostAddr::Ip(bare.parse().map_err(|_| {
            Error::config(field, format!("invalid IP address {addr:?} in {value:?}"))
        })?)
    };
    Ok(ExtraHost { names, addr })
}

/// What a container's /etc/hosts is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsSpec {
    pub hostname: String,
    pub domainname: Option<String>,
    /// The container's addresses on its networks (a line each), first network first.
    pub addresses: Vec<IpAddr>,
    /// Its other names: the container's name, its network aliases.
    pub names: Vec<String>,
    pub extra_hosts: Vec<ExtraHost>,
    /// What `host-gateway` stands for.
    pub host_gateway: Option<IpAddr>,
    /// Whether the container has IPv6 (the `::1` and multicast lines).
    pub ipv6: bool,
}

pub fn container_hosts(spec: &HostsSpec) -> Result<String> {
    check_host_name("hostname", &spec.hostname)?;
    let mut out = String::from("127.0.0.1\tlocalhost\n");
    if spec.ipv6 {
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    }
    for (i, h) in spec.extra_hosts.iter().enumerate() {
        let addr = match h.addr {
            HostAddr::Ip(a) => a,
            HostAddr::HostGateway => spec.host_gateway.ok_or_else(|| {
                Error::config(
                    &format!("addHost[{i}]"),
                    "host-gateway needs a network with a gateway (a bridge)",
                )
            })?,
        };
        out.push_str(&format!("{addr}\t{}\n", h.names.join(" ")));
    }
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !n.is_empty() && !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.to_owned());
        }
    };
    match spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => {
            add(&format!("{}.{d}", spec.hostname));
            add(&spec.hostname);
        }
        None => {
            add(&spec.hostname);
            if let Some((short, _)) = spec.hostname.split_once('.') {
                add(short);
            }
        }
    }
    for n in &spec.names {
        add(n);
    }
    for a in &spec.addresses {
        if a.is_ipv6() && !spec.ipv6 {
            continue;
        }
        out.push_str(&format!("{a}\t{}\n", names.join(" ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn add_host_takes_dockers_forms() {
        let p = |v: &str| parse_add_host("addHost[0]", v).unwrap();
        assert_eq!(
            p("db:192.0.2.9"),
            ExtraHost { names: vec!["db".into()], addr: HostAddr::Ip(ip("192.0.2.9")) }
        );
        assert_eq!(p("my-hostv6:2001:db8::33").addr, HostAddr::Ip(ip("2001:db8::33")));
        assert_eq!(p("my-host=[2001:db8::33]").addr, HostAddr::Ip(ip("2001:db8::33")));
        assert_eq!(p("my-host=192.0.2.9").addr, HostAddr::Ip(ip("192.0.2.9")));
        assert_eq!(p("host.docker.internal:host-gateway").addr, HostAddr::HostGateway);
        assert_eq!(p("a;b:192.0.2.9").names, vec!["a", "b"]);
        for bad in
            ["nocolon", ":192.0.2.9", "db:nope", "db:", "bad name:192.0.2.9", "a;;b:192.0.2.9"]
        {
            let e = parse_add_host("addHost[3]", bad).unwrap_err();
            assert_eq!(e.path.as_deref(), Some("addHost[3]"), "{bad}");
        }
    }

    #[test]
    fn the_file_has_localhost_then_extra_hosts_then_the_containers_own_lines() {
        let spec = HostsSpec {
            hostname: "4f3a9c0d1e2b".into(),
            addresses: vec![ip("198.51.100.3"), ip("2001:db8:a::3")],
            names: vec!["web".into(), "frontend".into(), "WEB".into()],
            extra_hosts: vec![
                parse_add_host("addHost[0]", "db.example:192.0.2.9").unwrap(),
                parse_add_host("addHost[1]", "host.docker.internal:host-gateway").unwrap(),
            ],
            host_gateway: Some(ip("198.51.100.1")),
            ipv6: true,
            ..HostsSpec::default()
        };
        assert_eq!(
            container_hosts(&spec).unwrap(),
            "127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
             192.0.2.9\tdb.example\n\
             198.51.100.1\thost.docker.internal\n\
             198.51.100.3\t4f3a9c0d1e2b web frontend\n\
             2001:db8:a::3\t4f3a9c0d1e2b web frontend\n"
        );
    }

    #[test]
    fn without_ipv6_the_ipv6_lines_go_and_a_domain_name_makes_the_fqdn_come_first() {
        let spec = HostsSpec {
            hostname: "box".into(),
            domainname: Some("example.test".into()),
            addresses: vec![ip("198.51.100.3"), ip("2001:db8:a::3")],
            ..HostsSpec::default()
        };
        assert_eq!(
            container_hosts(&spec).unwrap(),
            "127.0.0.1\tlocalhost\n198.51.100.3\tbox.example.test box\n"
        );
        let fqdn = HostsSpec {
            hostname: "box.example.test".into(),
            addresses: vec![ip("198.51.100.3")],
            ..HostsSpec::default()
        };
        assert!(container_hosts(&fqdn).unwrap().ends_with("198.51.100.3\tbox.example.test box\n"));
        let none = HostsSpec { hostname: "box".into(), ..HostsSpec::default() };
        assert_eq!(
            container_hosts(&none).unwrap(),
            "127.0.0.1\tlocalhost\n",
            "no network: no line of its own"
        );
    }

    #[test]
    fn host_gateway_without_a_gateway_and_a_bad_hostname_are_errors_naming_the_field() {
        let spec = HostsSpec {
            hostname: "box".into(),
            extra_hosts: vec![parse_add_host("addHost[0]", "h:host-gateway").unwrap()],
            ..HostsSpec::default()
        };
        assert_eq!(container_hosts(&spec).unwrap_err().path.as_deref(), Some("addHost[0]"));
        let bad = HostsSpec { hostname: "-x".into(), ..HostsSpec::default() };
        assert_eq!(container_hosts(&bad).unwrap_err().path.as_deref(), Some("hostname"));
    }
}
