//! The plan a spec carries in its `io.ns.network` annotation, and its checks: everything the
//! attachment needs is in it (the networks' definitions, addresses, aliases, published ports,
//! DNS settings, the state directories), read and checked before anything is made.

use std::collections::HashSet;
use std::net::IpAddr;

use ns_net::{Network, PortMapping};
use serde::{Deserialize, Serialize};

use super::drivers::{dns_error, net_error};
use crate::error::{Result, SetupError};

/// The annotation that carries the plan.
pub const ANNOTATION: &str = "io.ns.network";

/// One network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Join {
    pub network: Network,
    /// Fixed addresses (`--ip`), at most one per family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// Further names the network's resolver answers for (`--network-alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The network has a resolver: names on it, and forwarding unless it is internal.
    #[serde(default)]
    pub dns: bool,
}

/// The plan of `io.ns.network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// The container's id on its networks: its allocations, its DNS records, the owner of its
    /// published ports.
    pub id: String,
    /// The name the resolvers answer for (and the hosts file lists).
    pub name: String,
    /// Where the attachment record and the container's files go (one folder per container).
    pub dir: String,
    /// The allocations' folder (one sub-folder per network).
    pub state_dir: String,
    /// The resolvers' folder (`NETWORK.json`, `.pid`, `.lock`, `.log`).
    pub dns_dir: String,
    pub networks: Vec<Join>,
    /// Published ports, on the first network; a host port 0 is one the kernel picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--add-host` values (`NAME:IP`, `NAME:host-gateway`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<String>,
}

fn field(reason: impl AsRef<str>) -> SetupError {
    SetupError::config(format!("annotations.{ANNOTATION}"), reason)
}

/// The plan of a spec's annotations, checked; `None` without one. Pure: what needs the
/// kernel (a subnet against the host's routes, a port in use) is checked when attaching.
pub fn plan(
    annotations: &std::collections::BTreeMap<String, String>,
    new_netns: bool,
    euid: u32,
) -> Result<Option<Plan>> {
    let Some(text) = annotations.get(ANNOTATION) else { return Ok(None) };
    let p: Plan =
        serde_json::from_str(text).map_err(|e| field(format!("is not a network plan: {e}")))?;
    if !new_netns {
        return Err(field("needs a new network namespace (linux.namespaces: network)"));
    }
    if euid != 0 {
        return Err(field("bridge networks need root").with_hint(
            "rootless networking (pasta, slirp4netns) is not supported yet: run as root, or use --network none or --network host",
        ));
    }
    ns_net::ipam::check_container_id(&p.id).map_err(net_error)?;
    for (k, d) in [("dir", &p.dir), ("stateDir", &p.state_dir), ("dnsDir", &p.dns_dir)] {
        if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
            return Err(field(format!("{k} must be an absolute path without ..")));
        }
    }
    if p.networks.is_empty() {
        return Err(field("names no network"));
    }
    let mut seen = HashSet::new();
    for (i, j) in p.networks.iter().enumerate() {
        if !seen.insert(&j.network.name) {
            return Err(field(format!("networks[{i}]: network {} is named twice", j.network.name)));
        }
        // The definition is checked as a new one would be (name, bridge, subnets, MTU).
        let specs: Vec<ns_net::SubnetSpec> = j
            .network
            .subnets
            .iter()
            .map(|s| ns_net::SubnetSpec {
                subnet: s.subnet,
                gateway: Some(s.gateway),
                ip_range: s.ip_range,
            })
            .collect();
        Network::new(
            &j.network.name,
            Some(&j.network.bridge),
            &specs,
            j.network.internal,
            j.network.mtu,
        )
        .map_err(|e| field(format!("networks[{i}].network: {}", e.message)))?;
    }
    if p.ports.iter().any(|m| m.host_port == 0 && m.count != 1) {
        return Err(field("a range of ports needs its host ports given"));
    }
    let overrides = ns_dns::DnsOverrides {
        servers: p.dns.clone(),
        search: p.dns_search.clone(),
        options: p.dns_options.clone(),
    };
    ns_dns::resolvconf::validate_overrides(&overrides).map_err(dns_error)?;
    for (i, h) in p.add_hosts.iter().enumerate() {
        ns_dns::parse_add_host(&format!("addHost[{i}]"), h).map_err(dns_error)?;
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(plan: serde_json::Value) -> std::collections::BTreeMap<String, String> {
        [(ANNOTATION.to_owned(), plan.to_string())].into_iter().collect()
    }

    fn plan_json() -> serde_json::Value {
        serde_json::json!({
            "id": "c1", "name": "c1", "dir": "/run/ns/net/containers/c1",
            "stateDir": "/run/ns/net/ipam", "dnsDir": "/run/ns/dns",
            "networks": [{ "network": {
                "name": "web", "bridge": "ns-web", "internal": false,
                "subnets": [{ "subnet": "10.89.0.0/24", "gateway": "10.89.0.1" }] }, "dns": true }],
            "ports": [{ "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }],
        })
    }

    #[test]
    fn a_plan_is_read_from_its_annotation_and_every_refusal_names_why() {
        let p = plan(&annotations(plan_json()), true, 0).unwrap().expect("a plan");
        assert_eq!((p.id.as_str(), p.networks.len(), p.ports[0].count), ("c1", 1, 1));
        assert!(plan(&Default::default(), true, 0).unwrap().is_none(), "no annotation, no plan");
        let refused = |v: serde_json::Value, netns: bool, euid: u32| {
            plan(&annotations(v), netns, euid).unwrap_err().message
        };
        assert!(refused(plan_json(), false, 0).contains("needs a new network namespace"));
        assert!(refused(plan_json(), true, 1000).contains("bridge networks need root"));
        let mut v = plan_json();
        v["networks"][0]["network"]["subnets"][0]["subnet"] = "10.89.0.1/24".into();
        assert!(refused(v, true, 0).contains("networks[0].network: subnets[0].subnet:"));
        let mut v = plan_json();
        v["addHosts"] = serde_json::json!(["db:nope"]);
        assert!(refused(v, true, 0).starts_with("addHost[0]: "));
        let mut v = plan_json();
        v["dir"] = "rel/dir".into();
        assert!(refused(v, true, 0).contains("dir must be an absolute path"));
        let mut v = plan_json();
        let first = v["networks"][0].clone();
        v["networks"].as_array_mut().unwrap().push(first);
        assert!(refused(v, true, 0).contains("network web is named twice"));
        let mut v = plan_json();
        v["surprise"] = true.into();
        assert!(refused(v, true, 0).contains("unknown field `surprise`"));
        let mut v = plan_json();
        v["ports"][0] = serde_json::json!({ "hostPort": 0, "containerPort": 80, "count": 2, "protocol": "udp" });
        assert!(refused(v, true, 0).contains("a range of ports needs its host ports given"));
    }
}
