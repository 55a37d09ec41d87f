//! A network's bridge: made (with its gateway addresses, sysctls and firewall rules) or found
//! under the driver's lock, and removed with its rules and allocations.

use std::os::fd::AsRawFd;

use serde::{Deserialize, Serialize};

use crate::error::{Errno, ErrorList, NetError, Result};
use crate::firewall::Op;
use crate::netlink::Netlink;
use crate::sysctl::{self, Sysctl};
use crate::types::Network;

use super::driver::{random_mac, BridgeDriver, BRIDGE_ALIAS_PREFIX};
use super::routes::{check_subnets_free, default_route_mtu};

/// What ensure_network found or made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    pub bridge: String,
    /// The bridge was made by this call (not found).
    pub created: bool,
    pub mtu: u32,
    /// The sysctls routing needs, as they are now, with what they were.
    pub sysctls: Vec<Sysctl>,
}

impl BridgeDriver {
    /// The bridge up with its gateway addresses, the sysctls set, the base and network rules
    /// in place. Idempotent; a bridge it makes is removed again if a later step fails.
    pub fn ensure_network(&self, net: &Network) -> Result<NetworkStatus> {
        // One at a time: two containers started at once on a network that has no bridge yet
        // would both try to make it.
        let _lock = self.lock()?;
        let mut nl = Netlink::open()?;
        let found = nl.link(&net.bridge)?;
        let created = found.is_none();
        let br = match found {
            Some(l) if l.kind.as_deref() != Some("bridge") => {
                return Err(NetError::sys("create bridge", Some(&net.bridge), Errno(libc::EEXIST))
                    .with_hint(format!(
                        "a {} device of that name exists and is not a bridge",
                        l.kind.as_deref().unwrap_or("physical")
                    )))
            }
            Some(l) => l,
            None => {
                check_subnets_free(&mut nl, net, None)?;
                let mtu = match net.mtu {
                    Some(m) => m,
                    None => default_route_mtu(&mut nl)?.unwrap_or(1500),
                };
                let alias = format!("{BRIDGE_ALIAS_PREFIX}{}", net.name);
                nl.create_bridge(&net.bridge, Some(mtu), Some(random_mac()), Some(&alias))?;
                match nl.link(&net.bridge)? {
                    Some(l) => l,
                    None => {
                        return Err(NetError::sys(
                            "look up bridge",
                            Some(&net.bridge),
                            Errno(libc::ENODEV),
                        ))
                    }
                }
            }
        };
        let r = (|| {
            let have = nl.addresses()?;
            for p in &net.subnets {
                if !have.iter().any(|a| a.index == br.index && a.address == p.gateway) {
                    nl.add_address(&net.bridge, br.index, p.gateway, p.subnet.prefix)?;
                }
            }
            let sysctls = self.set_sysctls(net)?;
            if !br.is_up() {
                nl.set_up(&net.bridge, true)?;
            }
            self.nft.apply(
                &format!("set up the firewall of network {}", net.name),
                &[Op::EnsureBase, Op::AddNetwork(net.rules())],
            )?;
            Ok(sysctls)
        })();
        match r {
            Ok(sysctls) => {
                Ok(NetworkStatus { bridge: net.bridge.clone(), created, mtu: br.mtu, sysctls })
            }
            Err(e) => {
                if created {
                    let _ = nl.delete_link(&net.bridge);
                }
                Err(e)
            }
        }
    }

    /// An exclusive lock on `STATE_DIR/.lock`, held while a bridge is made or removed.
    fn lock(&self) -> Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_dir.join(".lock");
        let fail = |step: &str, e: std::io::Error| {
            NetError::sys(step, Some(&path.display().to_string()), Errno::from_io(&e))
        };
        std::fs::create_dir_all(&self.state_dir).map_err(|e| fail("create", e))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| fail("open", e))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(fail("lock", e));
            }
        }
    }

    fn set_sysctls(&self, net: &Network) -> Result<Vec<Sysctl>> {
        let mut out = Vec::new();
        let v4 = net.pool(false).is_some();
        let v6 = net.pool(true).is_some();
        if v4 && !net.internal {
            out.push(sysctl::set(&["net", "ipv4", "ip_forward"], "1")?);
        }
        if v6 && !net.internal {
            out.push(sysctl::set(&["net", "ipv6", "conf", "all", "forwarding"], "1")?);
        }
        if v6 {
            // No duplicate address detection on the bridge: its link-local address would stay
            // tentative for a second after it comes up, and a neighbour solicitation for a
            // container sent meanwhile goes out from :: (a DAD probe), which the container
            // does not answer as a question: the first packets to it would wait a second.
            out.push(sysctl::set(&["net", "ipv6", "conf", &net.bridge, "accept_dad"], "0")?);
        }
        if v4 {
            // The host reaches its published ports on 127.0.0.1: DNATed, such packets leave by
            // the bridge with a loopback source, which only route_localnet allows (and the
            // raw-pre rule keeps others from sending 127.0.0.1 in).
            out.push(sysctl::set(&["net", "ipv4", "conf", &net.bridge, "route_localnet"], "1")?);
        }
        Ok(out)
    }

    /// Removes a network: its rules, its bridge, its allocation folder; the whole table when it
    /// was the last network. Refused while a container holds an allocation on it.
    pub fn remove_network(&self, net: &Network) -> Result<(), ErrorList> {
        let mut errs = ErrorList::default();
        let _lock = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                errs.push(e);
                return Err(errs);
            }
        };
        let ipam = self.ipam(net);
        if let Ok(holders) = ipam.holders() {
            let held: Vec<String> =
                holders.into_iter().filter(|(_, h)| *h).map(|(h, _)| h.container).collect();
            if !held.is_empty() {
                errs.push(
                    NetError::sys("remove network", Some(&net.name), Errno(libc::EBUSY))
                        .with_hint(format!("containers are attached to it: {}", held.join(", "))),
                );
                return Err(errs);
            }
        }
        errs.keep(self.nft.apply(
            &format!("remove the firewall of network {}", net.name),
            &[Op::RemoveNetwork(net.rules())],
        ));
        // The last network takes the table with it.
        match self.nft.list() {
            Ok(Some(t)) if bridges_in(&t).is_empty() => {
                errs.keep(self.nft.apply("remove the firewall table", &[Op::DeleteTable]));
            }
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
        match Netlink::open() {
            Ok(mut nl) => {
                errs.keep(nl.delete_link(&net.bridge));
            }
            Err(e) => errs.push(e),
        }
        let dir = ipam.dir().to_path_buf();
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errs.push(NetError::sys(
                    "remove allocations of",
                    Some(&dir.display().to_string()),
                    Errno::from_io(&e),
                ));
            }
        }
        errs.into_result()
    }
}

fn bridges_in(t: &serde_json::Value) -> Vec<String> {
    let items = t.get("nftables").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|i| i.get("set"))
        .filter(|s| s.get("name").and_then(|n| n.as_str()) == Some("bridges"))
        .flat_map(|s| s.get("elem").and_then(|e| e.as_array()).cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}
