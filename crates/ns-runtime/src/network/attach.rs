//! The attachment made at the launch's seam (`helper::launch::attach_before_release`): the
//! host ports held, each network set up in order, its resolver joined, the container's files
//! written; and [`Attached`], what the container holds while it lives, which tears the
//! attachment down when dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use super::drivers::{dns_error, driver, io_error, launcher, net_error};
use super::files::{write_files, DNS_DOMAIN};
use super::plan::Plan;
use super::ports::hold_ports;
use super::record::{save, teardown, Record, Recorded};
use crate::error::{Result, SetupError};
use crate::sys;

/// How long a network's resolver stays with no container before it exits: containers run one
/// after another keep one resolver (starting and stopping one costs 10 to 30 ms a container).
pub const RESOLVER_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// What a container holds while attached. Dropped, it tears the attachment down (the end
/// of a foreground run, of a monitor); [`Attached::keep`] leaves it for `delete` instead.
pub struct Attached {
    dir: PathBuf,
    record: Record,
    leases: Vec<OwnedFd>,
    sockets: Vec<OwnedFd>,
    keep: bool,
}

impl Attached {
    /// Gives the attachment up without undoing it (a container left to an engine, whose
    /// `delete` tears it down): the locks and the port sockets are closed, the record kept.
    pub fn keep(mut self) {
        self.keep = true;
        self.leases.clear();
        self.sockets.clear();
    }

    pub fn record(&self) -> &Record {
        &self.record
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for e in teardown(&self.dir, &self.record) {
            eprintln!("ns: {}", e.message);
        }
        // The locks go last: until then the allocation is not anyone else's to reclaim.
        self.leases.clear();
        self.sockets.clear();
    }
}

/// Attaches the container whose process is `pid` (its network namespace exists, it has not
/// been released) to the plan's networks. On failure, everything made so far is undone.
pub fn attach(plan: &Plan, pid: libc::pid_t, hostname: Option<&str>) -> Result<Attached> {
    let dir = PathBuf::from(&plan.dir);
    std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e))?;
    // Readable by the container's root, whoever it is on the host: the child opens the files
    // to bind them (their contents are no secret).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    }
    let mut att = Attached {
        dir: dir.clone(),
        record: Record {
            id: plan.id.clone(),
            state_dir: plan.state_dir.clone(),
            dns_dir: plan.dns_dir.clone(),
            attachments: Vec::new(),
        },
        leases: Vec::new(),
        sockets: Vec::new(),
        keep: false,
    };
    // Host ports first: one in use is refused before anything is made, and a port 0 becomes
    // the one the kernel picked.
    let mut ports = plan.ports.clone();
    for (i, m) in ports.iter_mut().enumerate() {
        att.sockets.extend(hold_ports(i, m)?);
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = sys::open(&ns_path, libc::O_RDONLY)
        .map_err(|e| SetupError::sys("open the network namespace", Some(&ns_path), e))?;
    let d = driver(&plan.state_dir);
    for (i, j) in plan.networks.iter().enumerate() {
        let ifname = format!("eth{i}");
        let req = ns_net::AttachRequest {
            container_id: &plan.id,
            netns: netns.as_fd(),
            interface: &ifname,
            ips: j.ips.clone(),
            ports: if i == 0 { ports.clone() } else { Vec::new() },
            mac: None,
            default_route: i == 0,
        };
        let (a, lease) = d.setup(&j.network, &req).map_err(|e| {
            let mut e = net_error(e);
            if e.step == "validate config" {
                // The driver names the request's fields; say which network's.
                e.message = format!("networks[{i}].{}", e.message);
            }
            e
        })?;
        att.leases.push(lease.into_fd());
        att.record.attachments.push(Recorded {
            network: j.network.clone(),
            attachment: a,
            dns: false,
        });
        save(&dir, &att.record)?;
    }
    // Names: each network with a resolver learns the container (and starts its resolver),
    // which forwards its questions to its own `--dns` servers if it has some.
    let upstreams = plan.dns.clone();
    for (i, j) in plan.networks.iter().enumerate().filter(|(_, j)| j.dns) {
        let a = &att.record.attachments[i].attachment;
        let files = ns_dns::NetworkFiles::new(&plan.dns_dir, &j.network.name).map_err(dns_error)?;
        let rec = ns_dns::ContainerRecord {
            id: plan.id.clone(),
            name: plan.name.clone(),
            aliases: j.aliases.clone(),
            ipv4: a.addresses.iter().filter_map(|c| v4(c.addr)).collect(),
            ipv6: a.addresses.iter().filter_map(|c| v6(c.addr)).collect(),
            dns: upstreams.clone(),
        };
        let mut config = ns_dns::Config::new("", a.gateways.clone());
        config.internal = j.network.internal;
        config.idle = RESOLVER_IDLE;
        let spec = ns_dns::ResolverSpec {
            config,
            domain: Some(DNS_DOMAIN.to_owned()),
            launcher: launcher(),
        };
        ns_dns::join(&files, rec, &spec).map_err(dns_error)?;
        att.record.attachments[i].dns = true;
        save(&dir, &att.record)?;
    }
    write_files(plan, &att.record, hostname)?;
    Ok(att)
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn v6(a: IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    }
}
