//! The container's `hosts`, `resolv.conf` and `hostname`, made from the plan and the
//! attachment record into the plan's directory; the spec binds them over the container's own.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use super::drivers::{dns_error, io_error};
use super::plan::Plan;
use super::record::Record;
use crate::error::Result;

/// The search domain of the networks' resolvers: `web` is also `web.dns.ns`.
pub const DNS_DOMAIN: &str = "dns.ns";
/// The files made for the container, in the plan's directory, and where each is bound.
pub const FILES: [(&str, &str); 3] =
    [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")];

fn overrides(plan: &Plan) -> ns_dns::DnsOverrides {
    ns_dns::DnsOverrides {
        servers: plan.dns.clone(),
        search: plan.dns_search.clone(),
        options: plan.dns_options.clone(),
    }
}

fn read_host_resolv_conf() -> ns_dns::ResolvConf {
    ns_dns::ResolvConf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

/// The gateways of the container's networks with a resolver, in order: its nameservers.
fn resolver_addresses(record: &Record) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for r in record.attachments.iter().filter(|r| r.dns) {
        for g in &r.attachment.gateways {
            if r.attachment.addresses.iter().any(|a| a.addr.is_ipv6() == g.is_ipv6()) {
                out.push(*g);
            }
        }
    }
    out
}

/// The container's `hosts`, `resolv.conf` and `hostname`, written into the plan's folder
/// (in place: a file already bound keeps its inode).
pub(super) fn write_files(plan: &Plan, record: &Record, hostname: Option<&str>) -> Result<()> {
    let ipv6 =
        record.attachments.iter().any(|r| r.attachment.addresses.iter().any(|a| a.addr.is_ipv6()));
    let host = read_host_resolv_conf();
    let nameservers = resolver_addresses(record);
    let mode = if nameservers.is_empty() {
        ns_dns::DnsMode::Direct { ipv6 }
    } else {
        ns_dns::DnsMode::Resolver { nameservers: &nameservers, domain: Some(DNS_DOMAIN) }
    };
    let resolv =
        ns_dns::container_resolv_conf(&host, &overrides(plan), &mode).map_err(dns_error)?;
    let hostname = hostname.unwrap_or(&plan.name);
    let mut extra = Vec::new();
    for (i, h) in plan.add_hosts.iter().enumerate() {
        extra.push(ns_dns::parse_add_host(&format!("addHost[{i}]"), h).map_err(dns_error)?);
    }
    let mut names = vec![plan.name.clone()];
    for j in &plan.networks {
        for a in &j.aliases {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
    }
    let hosts = ns_dns::container_hosts(&ns_dns::HostsSpec {
        hostname: hostname.to_owned(),
        domainname: None,
        addresses: record
            .attachments
            .iter()
            .flat_map(|r| r.attachment.addresses.iter().map(|a| a.addr))
            .collect(),
        names,
        extra_hosts: extra,
        host_gateway: record
            .attachments
            .first()
            .and_then(|r| r.attachment.gateways.iter().find(|g| g.is_ipv4()).copied()),
        ipv6,
    })
    .map_err(dns_error)?;
    let dir = Path::new(&plan.dir);
    for (name, text) in
        [("hosts", hosts), ("resolv.conf", resolv.content), ("hostname", format!("{hostname}\n"))]
    {
        write_in_place(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

fn write_in_place(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error("write", path, &e))?;
    f.write_all(data).map_err(|e| io_error("write", path, &e))
}
