//! Operations on networks: what `@ns/core`'s `networks` calls (through the addon, one JSON in
//! and one out). The definitions are its own to store; the kernel's side of each operation is
//! here.

use std::collections::HashSet;

use ns_net::{BridgeDriver, Network};
use serde::{Deserialize, Serialize};

use super::drivers::{dns_error, driver, net_error};
use crate::error::{Result, SetupError};
use crate::sys::Errno;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewArgs {
    name: String,
    #[serde(default)]
    bridge: Option<String>,
    #[serde(default)]
    subnets: Vec<ns_net::SubnetSpec>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    mtu: Option<u32>,
    /// Subnets taken already (by other networks): a default range must not overlap them.
    #[serde(default)]
    avoid: Vec<ns_net::cidr::Cidr>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetArgs {
    network: Network,
    state_dir: String,
    #[serde(default)]
    dns_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReconcileArgs {
    networks: Vec<Network>,
    /// Containers that exist (in a state directory): theirs is not stale, lock or not.
    live: Vec<String>,
    state_dir: String,
    dns_dir: String,
    /// The folder of the containers' network folders (`Plan::dir`'s parent).
    containers_dir: String,
}

fn args<T: serde::de::DeserializeOwned>(op: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| SetupError::config(op, format!("bad arguments: {e}")))
}

fn root_only(op: &str) -> Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Err(SetupError::sys(op, None, Errno(libc::EPERM)).with_hint(
            "bridge networks need root; rootless networking (pasta, slirp4netns) is not supported yet: use --network none or --network host",
        ));
    }
    Ok(())
}

fn ipam_holders(d: &BridgeDriver, net: &Network) -> Result<Vec<(ns_net::ipam::Holder, bool)>> {
    d.ipam(net).holders().map_err(net_error)
}

/// One operation on networks, its arguments and its answer as JSON:
///
/// - `new` `{name, bridge?, subnets, internal, mtu?}`: the network checked, its bridge named
///   (no kernel call); with no subnet, the default network's choice: the first of ns's
///   ranges that no route of the host touches;
/// - `ensure` `{network, stateDir}`: its bridge, gateways, sysctls and rules in place; the
///   status (`sysctls` set, with what they were);
/// - `status` `{network, stateDir}`: the bridge as it is (or `null`) and the allocations:
///   `{bridge: {name, up, mtu}|null, containers: [{id, addresses, live}]}`;
/// - `remove` `{network, stateDir, dnsDir}`: refused (`EBUSY`) while a container holds an
///   allocation; else its rules, bridge, allocations and resolver gone;
/// - `reconcile` `{networks, live, stateDir, dnsDir, containersDir}`: what containers that
///   are gone left (allocations, published ports, host veths, DNS entries, folders) removed.
pub fn call(op: &str, json: &str) -> Result<serde_json::Value> {
    match op {
        "new" => {
            let a: NewArgs = args(op, json)?;
            let net = if a.subnets.is_empty() {
                default_range(&a)?
            } else {
                Network::new(&a.name, a.bridge.as_deref(), &a.subnets, a.internal, a.mtu)
                    .map_err(net_error)?
            };
            Ok(json_of(&net))
        }
        "ensure" => {
            root_only("create the network's bridge")?;
            let a: NetArgs = args(op, json)?;
            let st = driver(&a.state_dir).ensure_network(&a.network).map_err(net_error)?;
            Ok(json_of(&st))
        }
        "status" => {
            let a: NetArgs = args(op, json)?;
            let d = driver(&a.state_dir);
            let bridge = ns_net::netlink::Netlink::open()
                .and_then(|mut nl| nl.link(&a.network.bridge))
                .ok()
                .flatten()
                .map(|l| serde_json::json!({ "name": l.name, "up": l.is_up(), "mtu": l.mtu }));
            let containers: Vec<serde_json::Value> = ipam_holders(&d, &a.network)?
                .into_iter()
                .map(|(h, live)| {
                    serde_json::json!({ "id": h.container, "addresses": h.addresses, "live": live })
                })
                .collect();
            Ok(serde_json::json!({ "bridge": bridge, "containers": containers }))
        }
        "remove" => {
            root_only("remove the network")?;
            let a: NetArgs = args(op, json)?;
            let d = driver(&a.state_dir);
            d.remove_network(&a.network).map_err(|list| {
                list.0.into_iter().next().map(net_error).unwrap_or_else(|| {
                    SetupError::sys("remove the network", Some(&a.network.name), Errno(libc::EIO))
                })
            })?;
            if let Some(dns_dir) = &a.dns_dir {
                if let Ok(files) = ns_dns::NetworkFiles::new(dns_dir, &a.network.name) {
                    ns_dns::remove_network(&files).map_err(dns_error)?;
                }
            }
            Ok(serde_json::Value::Null)
        }
        "reconcile" => {
            root_only("reconcile the networks")?;
            let a: ReconcileArgs = args(op, json)?;
            Ok(reconcile(&a))
        }
        _ => Err(SetupError::config("op", format!("unknown network operation {op:?}"))),
    }
}

/// A network on the first of ns's ranges that no route of the host touches and no other
/// network has (docker's default pools are chosen the same way).
fn default_range(a: &NewArgs) -> Result<Network> {
    let mut nl = ns_net::netlink::Netlink::open().map_err(net_error)?;
    for s in ns_net::types::DEFAULT_SUBNETS {
        let Ok(subnet) = s.parse::<ns_net::cidr::Cidr>() else { continue };
        if a.avoid.iter().any(|c| c.overlaps(&subnet)) {
            continue;
        }
        let spec = ns_net::SubnetSpec { subnet, gateway: None, ip_range: None };
        let net = Network::new(&a.name, a.bridge.as_deref(), &[spec], a.internal, a.mtu)
            .map_err(net_error)?;
        if ns_net::bridge::check_subnets_free(&mut nl, &net, None).is_ok() {
            return Ok(net);
        }
    }
    Err(SetupError::config(
        "subnet",
        "every default range overlaps a route of the host or another network",
    )
    .with_hint("give one: --subnet"))
}

fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn reconcile(a: &ReconcileArgs) -> serde_json::Value {
    let d = driver(&a.state_dir);
    let live: HashSet<String> = a.live.iter().cloned().collect();
    // Who still holds an allocation (a container starting, or a foreground run) is alive too.
    let mut alive = live.clone();
    for n in &a.networks {
        if let Ok(hs) = ipam_holders(&d, n) {
            alive.extend(hs.into_iter().filter(|(_, held)| *held).map(|(h, _)| h.container));
        }
    }
    let rep = d.reconcile(&a.networks, &live);
    let mut errors: Vec<SetupError> = rep.errors.0.iter().cloned().map(net_error).collect();
    // Names of containers that are gone, out of every network's records.
    let mut dns = Vec::new();
    for n in &a.networks {
        let Ok(files) = ns_dns::NetworkFiles::new(&a.dns_dir, &n.name) else { continue };
        let Ok(Some(doc)) = ns_dns::records::read_records(&files.records()) else { continue };
        for c in doc.containers.iter().filter(|c| !alive.contains(&c.id)) {
            match ns_dns::leave(&files, &c.id) {
                Ok(_) => dns.push(format!("{}/{}", n.name, c.id)),
                Err(e) => errors.push(dns_error(e)),
            }
        }
    }
    // The folders (records, files) of containers that are gone.
    let mut folders = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&a.containers_dir) {
        for e in rd.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_owned) else { continue };
            if !alive.contains(&id) && std::fs::remove_dir_all(e.path()).is_ok() {
                folders.push(id);
            }
        }
    }
    serde_json::json!({
        "allocations": rep.allocations,
        "published": rep.published,
        "devices": rep.devices,
        "dns": dns,
        "folders": folders,
        "errors": errors,
    })
}
