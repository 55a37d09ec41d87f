//! resolv.conf as Docker reads it — `nameserver` lines (an address, an IPv6 one with an optional
//! `%zone`; anything else is kept aside as invalid), `search` and the obsolete `domain` (the
//! last of them wins), `options` (accumulated), comments (`#`, `;`) dropped, every other line
//! kept as it is — and a container's resolv.conf made from the host's as Docker makes it:
//!
//! - **On networks with a resolver** ([`DnsMode::Resolver`]): `nameserver` is the resolver (the
//!   gateway of each such network the container is on); the servers it would have used (the
//!   host's, or `--dns`) go to the resolver instead: `--dns` ones are returned, for the
//!   container's records entry (`dns`), the host's are the resolver's own upstreams. `options`
//!   gets `ndots:0` unless an `ndots` option is there (Docker's internal resolver does the
//!   same; an invalid `ndots` is dropped first). The network's domain goes first in `search`.
//! - **Without one** ([`DnsMode::Direct`]: `--network none`, a network without DNS): the host's
//!   servers minus the loopback ones (unreachable from the container's own namespace) and,
//!   without IPv6, minus the IPv6 ones; if none remains, Docker's fallback, Google's public
//!   servers (8.8.8.8, 8.8.4.4, and 2001:4860:4860::8888/8844 with IPv6). `--dns` servers are
//!   taken as they are.
//! - **In the host's network namespace** ([`DnsMode::Host`]): the host's file as it is.
//!
//! In every mode `--dns-search` replaces `search` (`.` alone: no search list) and
//! `--dns-option` replaces `options`; other lines of the host's file are kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nameserver {
    pub addr: IpAddr,
    /// The interface of a link-local IPv6 server (`fe80::1%eth0`).
    pub zone: Option<String>,
}

impl Nameserver {
    pub fn new(addr: IpAddr) -> Nameserver {
        Nameserver { addr, zone: None }
    }

    /// A loopback address: reachable only from the network namespace it is in.
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        }
    }
}

impl std::fmt::Display for Nameserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.zone {
            Some(z) => write!(f, "{}%{z}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<Nameserver>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    /// Lines with another directive (`sortlist …`), kept verbatim.
    pub other: Vec<String>,
    /// `nameserver` values that are not addresses.
    pub invalid: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let Some(directive) = fields.next() else { continue };
            if directive.starts_with('#') || directive.starts_with(';') {
                continue;
            }
            let rest: Vec<&str> = fields.collect();
            match directive {
                "nameserver" => {
                    let Some(value) = rest.first() else { continue };
                    match parse_nameserver(value) {
                        Some(ns) => rc.nameservers.push(ns),
                        None => rc.invalid.push((*value).to_owned()),
                    }
                }
                "search" | "domain" => {
                    if !rest.is_empty() {
                        rc.search = rest.iter().map(|s| s.to_string()).collect();
                    }
                }
                "options" => rc.options.extend(rest.iter().map(|s| s.to_string())),
                _ => rc.other.push(line.to_owned()),
            }
        }
        rc
    }

    /// The value of the last option named `name` (`ndots` in `ndots:2`); `Some("")` for a
    /// flag (`edns0`).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find_map(|o| {
            let (k, v) = o.split_once(':').unwrap_or((o.as_str(), ""));
            (k == name).then_some(v)
        })
    }
}

/// A container's own DNS settings: `--dns`, `--dns-search`, `--dns-option` (`None`: not given;
/// Docker's meaning of an empty list is "not given" too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsOverrides {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// How the container reaches DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsMode<'a> {
    /// Through the resolvers of its networks at these addresses (their gateways), with the
    /// networks' search domain, if any.
    Resolver { nameservers: &'a [IpAddr], domain: Option<&'a str> },
    /// Straight to the host's servers; `ipv6` when the container has IPv6.
    Direct { ipv6: bool },
    /// The host's network namespace.
    Host,
}

/// What [`container_resolv_conf`] makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerResolvConf {
    /// The file's text.
    pub content: String,
    /// In resolver mode, the container's own upstream servers (its `--dns`) for its records
    /// entry; empty: the network's.
    pub upstreams: Vec<IpAddr>,
}

const DEFAULT_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];
const DEFAULT_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844),
];

/// Check the overrides: search domains must be domains (or `.`), options single words.
pub fn validate_overrides(o: &DnsOverrides) -> Result<()> {
    for (i, d) in o.search.iter().enumerate() {
        if d == "." {
            continue;
        }
        let labels_ok = d.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
        if !labels_ok || d.len() > 253 || !d.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Err(Error::config(
                &format!("dnsSearch[{i}]"),
                format!("{d:?} is not a valid domain"),
            ));
        }
    }
    for (i, opt) in o.options.iter().enumerate() {
        if opt.is_empty() || opt.chars().any(char::is_whitespace) {
            return Err(Error::config(
                &format!("dnsOption[{i}]"),
                format!("{opt:?} must be one word, like ndots:2"),
            ));
        }
    }
    Ok(())
}

/// The container's resolv.conf, from the host's and the container's own settings.
pub fn container_resolv_conf(
    host: &ResolvConf,
    overrides: &DnsOverrides,
    mode: &DnsMode<'_>,
) -> Result<ContainerResolvConf> {
    validate_overrides(overrides)?;
    let mut search = if overrides.search.is_empty() {
        host.search.clone()
    } else {
        overrides.search.iter().filter(|d| d.as_str() != ".").cloned().collect()
    };
    let mut options =
        if overrides.options.is_empty() { host.options.clone() } else { overrides.options.clone() };
    let mut upstreams = Vec::new();
    let nameservers: Vec<String> = match mode {
        DnsMode::Resolver { nameservers, domain } => {
            upstreams = overrides.servers.clone();
            options.retain(|o| match o.strip_prefix("ndots:") {
                Some(v) => v.parse::<u32>().is_ok(),
                None => true,
            });
            if !options.iter().any(|o| o.starts_with("ndots:")) {
                options.push("ndots:0".into());
            }
            if let Some(d) = domain {
                if overrides.search.is_empty() && !search.iter().any(|s| s == d) {
                    search.insert(0, (*d).to_owned());
                }
            }
            nameservers.iter().map(IpAddr::to_string).collect()
        }
        DnsMode::Direct { ipv6 } => {
            if !overrides.servers.is_empty() {
                overrides.servers.iter().map(IpAddr::to_string).collect()
            } else {
                let kept: Vec<String> = host
                    .nameservers
                    .iter()
                    .filter(|n| !n.is_loopback() && n.zone.is_none() && (*ipv6 || n.addr.is_ipv4()))
                    .map(Nameserver::to_string)
                    .collect();
                if kept.is_empty() {
                    let mut d: Vec<String> = DEFAULT_V4.iter().map(|a| a.to_string()).collect();
                    if *ipv6 {
                        d.extend(DEFAULT_V6.iter().map(|a| a.to_string()));
                    }
                    d
                } else {
                    kept
                }
            }
        }
        DnsMode::Host => {
            if overrides.servers.is_empty() {
                host.nameservers.iter().map(Nameserver::to_string).collect()
            } else {
                overrides.servers.iter().map(IpAddr::to_string).collect()
            }
        }
    };
    let mut content = String::new();
    for ns in &nameservers {
        content.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        content.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        content.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in &host.other {
        content.push_str(line);
        content.push('\n');
    }
    Ok(ContainerResolvConf { content, upstreams })
}

fn parse_nameserver(value: &str) -> Option<Nameserver> {
    let (addr, zone) = match value.split_once('%') {
        Some((a, z)) if !z.is_empty() => (a, Some(z.to_owned())),
        Some(_) => return None,
        None => (value, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    if zone.is_some() && addr.is_ipv4() {
        return None;
    }
    Some(Nameserver { addr, zone })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_file_is_read_as_docker_reads_it() {
        let rc = ResolvConf::parse(
            "# generated\n; also a comment\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nnameserver bogus\n\
             domain old.example\nsearch example.test corp.example\noptions ndots:2 edns0\noptions timeout:1\n\
             sortlist 192.0.2.0/24\nnameserver 2001:db8::53\n",
        );
        assert_eq!(
            rc.nameservers.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            vec!["192.0.2.53", "fe80::1%eth0", "2001:db8::53"]
        );
        assert_eq!(rc.search, vec!["example.test", "corp.example"]);
        assert_eq!(rc.options, vec!["ndots:2", "edns0", "timeout:1"]);
        assert_eq!(rc.option("ndots"), Some("2"));
        assert_eq!(rc.option("edns0"), Some(""));
        assert_eq!(rc.option("rotate"), None);
        assert_eq!(rc.other, vec!["sortlist 192.0.2.0/24"]);
        assert_eq!(rc.invalid, vec!["bogus"]);
    }

    const HOST: &str = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n\
                        nameserver fe80::1%eth0\nsearch corp.example\noptions edns0 trust-ad\n";

    fn make(host: &str, o: &DnsOverrides, mode: DnsMode<'_>) -> ContainerResolvConf {
        container_resolv_conf(&ResolvConf::parse(host), o, &mode).unwrap()
    }

    fn gw() -> Vec<IpAddr> {
        vec!["198.51.100.1".parse().unwrap()]
    }

    #[test]
    fn on_a_network_with_a_resolver_it_is_the_nameserver_with_ndots_0_as_dockers_embedded_dns() {
        let r = make(
            HOST,
            &DnsOverrides::default(),
            DnsMode::Resolver { nameservers: &gw(), domain: None },
        );
        assert_eq!(
            r.content,
            "nameserver 198.51.100.1\nsearch corp.example\noptions edns0 trust-ad ndots:0\n"
        );
        assert!(
            r.upstreams.is_empty(),
            "the host's servers are the resolver's own, not the container's"
        );
        // An ndots of the host's is kept; an invalid one is dropped and replaced.
        let r = make(
            "nameserver 192.0.2.53\noptions ndots:3\n",
            &DnsOverrides::default(),
            DnsMode::Resolver { nameservers: &gw(), domain: None },
        );
        assert_eq!(r.content, "nameserver 198.51.100.1\noptions ndots:3\n");
        let r = make(
            "options ndots:x\n",
            &DnsOverrides::default(),
            DnsMode::Resolver { nameservers: &gw(), domain: None },
        );
        assert_eq!(r.content, "nameserver 198.51.100.1\noptions ndots:0\n");
    }

    #[test]
    fn dns_flags_override_as_docker_documents_and_dns_servers_go_to_the_resolver() {
        let o = DnsOverrides {
            servers: vec!["192.0.2.54".parse().unwrap()],
            search: vec!["example.test".into()],
            options: vec!["ndots:2".into(), "timeout:1".into()],
        };
        let r = make(HOST, &o, DnsMode::Resolver { nameservers: &gw(), domain: Some("dns.ns") });
        assert_eq!(
            r.content,
            "nameserver 198.51.100.1\nsearch example.test\noptions ndots:2 timeout:1\n"
        );
        assert_eq!(r.upstreams, o.servers);
        // --dns-search . empties the search list.
        let dot = DnsOverrides { search: vec![".".into()], ..DnsOverrides::default() };
        let r = make(HOST, &dot, DnsMode::Resolver { nameservers: &gw(), domain: Some("dns.ns") });
        assert_eq!(r.content, "nameserver 198.51.100.1\noptions edns0 trust-ad ndots:0\n");
        // The network's domain is searched first when --dns-search is not given.
        let r = make(
            HOST,
            &DnsOverrides::default(),
            DnsMode::Resolver { nameservers: &gw(), domain: Some("dns.ns") },
        );
        assert!(r.content.contains("search dns.ns corp.example\n"), "{}", r.content);
        // --dns without a resolver is the nameserver list, as given.
        let r = make(HOST, &o, DnsMode::Direct { ipv6: false });
        assert_eq!(
            r.content,
            "nameserver 192.0.2.54\nsearch example.test\noptions ndots:2 timeout:1\n"
        );
    }

    #[test]
    fn without_a_resolver_the_hosts_loopback_and_unreachable_servers_are_left_out_with_googles_as_the_fallback(
    ) {
        let r = make(HOST, &DnsOverrides::default(), DnsMode::Direct { ipv6: false });
        assert_eq!(
            r.content,
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        let r = make(HOST, &DnsOverrides::default(), DnsMode::Direct { ipv6: true });
        assert!(
            r.content.starts_with("nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch"),
            "{}",
            r.content
        );
        let r = make(
            "nameserver 127.0.0.53\n",
            &DnsOverrides::default(),
            DnsMode::Direct { ipv6: false },
        );
        assert_eq!(r.content, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let r = make(
            "nameserver 127.0.0.53\n",
            &DnsOverrides::default(),
            DnsMode::Direct { ipv6: true },
        );
        assert_eq!(
            r.content,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
        );
    }

    #[test]
    fn in_the_hosts_namespace_the_hosts_servers_stay_and_other_lines_are_kept() {
        let r = make(
            "nameserver 127.0.0.53\nsortlist 192.0.2.0/24\n",
            &DnsOverrides::default(),
            DnsMode::Host,
        );
        assert_eq!(r.content, "nameserver 127.0.0.53\nsortlist 192.0.2.0/24\n");
    }

    #[test]
    fn bad_overrides_name_their_field() {
        let e = |o: DnsOverrides| {
            container_resolv_conf(&ResolvConf::default(), &o, &DnsMode::Host)
                .unwrap_err()
                .path
                .unwrap()
        };
        assert_eq!(
            e(DnsOverrides {
                search: vec!["ok.example".into(), "not a domain".into()],
                ..Default::default()
            }),
            "dnsSearch[1]"
        );
        assert_eq!(
            e(DnsOverrides { search: vec!["123".into()], ..Default::default() }),
            "dnsSearch[0]"
        );
        assert_eq!(
            e(DnsOverrides { options: vec!["ndots:1 rotate".into()], ..Default::default() }),
            "dnsOption[0]"
        );
    }

    #[test]
    fn loopback_servers_are_told_apart() {
        let rc = ResolvConf::parse("nameserver 127.0.0.53\nnameserver ::1\nnameserver ::ffff:127.0.0.1\nnameserver 192.0.2.1\n");
        let lo: Vec<bool> = rc.nameservers.iter().map(Nameserver::is_loopback).collect();
        assert_eq!(lo, vec![true, true, true, false]);
        assert_eq!(
            ResolvConf::parse("nameserver 192.0.2.1%eth0\nnameserver fe80::1%\n").invalid.len(),
            2
        );
    }
}
