//! A container on a network: set up (allocation, veth, addresses and routes inside, published
//! ports; undone on failure, never half made) and torn down.

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::error::{Errno, ErrorList, NetError, Result};
use crate::firewall::Op;
use crate::ipam::{self, Lease};
use crate::netlink::{self, Netlink, Veth};
use crate::types::{self, AttachRequest, Attachment, Network};

use super::carrier::wait_forwarding;
use super::driver::{random_mac, BridgeDriver, VETH_ALIAS_PREFIX};
use super::inside::configure_inside;
use super::publish::plan_published;

impl BridgeDriver {
    /// Attaches a container: validated, then allocated, wired and published; everything done
    /// so far undone if a step fails. The caller keeps the [`Lease`] open for as long as the
    /// container lives (it is what tells a live allocation from a stale one) and persists the
    /// [`Attachment`] for teardown.
    pub fn setup(&self, net: &Network, req: &AttachRequest<'_>) -> Result<(Attachment, Lease)> {
        self.validate(net, req)?;
        let mut nl = Netlink::open()?;
        let br = match nl.link(&net.bridge)? {
            Some(b) if b.is_up() => b,
            // Gone (a reboot emptied /run and the bridges) or never made: made now, once.
            _ => {
                self.ensure_network(net)?;
                nl.link(&net.bridge)?.ok_or_else(|| {
                    NetError::sys("look up bridge", Some(&net.bridge), Errno(libc::ENODEV))
                })?
            }
        };
        let host_veth = types::host_veth_name(&net.name, req.container_id);
        let mac = req.mac.unwrap_or_else(random_mac);
        let mut att = Attachment {
            network: net.name.clone(),
            container_id: req.container_id.to_owned(),
            bridge: net.bridge.clone(),
            host_veth: host_veth.clone(),
            interface: req.interface.to_owned(),
            mac: netlink::format_mac(&mac),
            mtu: br.mtu,
            addresses: Vec::new(),
            gateways: net.subnets.iter().map(|p| p.gateway).collect(),
            published: Vec::new(),
        };
        // 1. Addresses. The record is written before anything else is made, so a crash at any
        //    later point leaves a stale allocation that names what to clean up.
        let wants: Vec<(&ipam::Pool, Option<IpAddr>)> = net
            .subnets
            .iter()
            .map(|p| (p, req.ips.iter().find(|ip| ip.is_ipv6() == p.subnet.is_ipv6()).copied()))
            .collect();
        let ipam = self.ipam(net);
        let planned = serde_json::to_value(&att).unwrap_or_default();
        let (lease, stale) = ipam.allocate(req.container_id, &wants, &planned)?;
        // What a dead holder left is cleaned before its addresses are used again.
        if !stale.is_empty() {
            let mut ignored = ErrorList::default();
            self.clean_stale(&mut nl, &stale, &mut ignored);
        }
        att.addresses = lease
            .addresses
            .iter()
            .zip(&net.subnets)
            .map(|(a, p)| Cidr { addr: *a, prefix: p.subnet.prefix })
            .collect();
        att.published = plan_published(req.container_id, &req.ports, &lease.addresses);
        let undo = |nl: &mut Netlink, veth: bool| {
            if veth {
                let _ = nl.delete_link(&host_veth);
            }
            let _ = ipam.release(req.container_id);
        };
        if let Err(e) = ipam.update_record(&lease, &serde_json::to_value(&att).unwrap_or_default())
        {
            undo(&mut nl, false);
            return Err(e);
        }
        // 2. The veth: host end on the bridge and up, the peer born in the container under
        //    its final name.
        let alias = format!("{VETH_ALIAS_PREFIX}{}", req.container_id);
        if let Err(e) = nl.create_veth(&Veth {
            name: &host_veth,
            peer: req.interface,
            peer_netns: Some(req.netns),
            master: Some(br.index),
            mtu: Some(br.mtu),
            mac: None,
            peer_mac: Some(mac),
            up: true,
            alias: Some(&alias),
            hairpin: true,
        }) {
            // EEXIST may be our own veth from a failed create: only delete what we made.
            undo(&mut nl, e.code != "EEXIST");
            return Err(e);
        }
        // 3. Inside: the interface up, its addresses, the default routes.
        if let Err(e) = configure_inside(req, &att) {
            undo(&mut nl, true);
            return Err(e);
        }
        // 4. Frames pass: the host end forwards on the bridge and the bridge has its carrier.
        if let Err(e) = wait_forwarding(&mut nl, &host_veth, &net.bridge) {
            undo(&mut nl, true);
            return Err(e);
        }
        // 5. Published ports, in one batch; nothing at all without them.
        if !att.published.is_empty() {
            if let Err(e) = self.nft.apply(
                &format!("publish ports of container {}", req.container_id),
                &[Op::Publish(att.published.clone())],
            ) {
                let e = self.explain_publish_failure(e, &att.published);
                undo(&mut nl, true);
                return Err(e);
            }
        }
        Ok((att, lease))
    }

    /// Detaches a container: its published ports, its veth, its allocation. Goes on past
    /// errors and returns them all. The caller closes the lease afterwards (or has lost it).
    pub fn teardown(&self, net: &Network, att: &Attachment) -> Result<(), ErrorList> {
        let mut errs = ErrorList::default();
        if !att.published.is_empty() {
            errs.keep(self.nft.apply(
                &format!("remove published ports of container {}", att.container_id),
                &[Op::Unpublish(att.published.clone())],
            ));
        }
        match Netlink::open() {
            Ok(mut nl) => {
                errs.keep(nl.delete_link(&att.host_veth));
            }
            Err(e) => errs.push(e),
        }
        errs.keep(self.ipam(net).release(&att.container_id));
        errs.into_result()
    }
}
