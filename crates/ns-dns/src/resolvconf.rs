//! resolv.conf as Docker reads it: `nameserver` lines (an address, an IPv6 one with an optional
//! `%zone`; anything else is kept aside as invalid), `search` and the obsolete `domain` (the
//! last of them wins), `options` (accumulated), comments (`#`, `;`) dropped, every other line
//! kept as it is.

use std::net::IpAddr;

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
