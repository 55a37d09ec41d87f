//! Reconciling with the live containers: stale allocations, published ports and host veths
//! of containers that are gone are removed.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::ErrorList;
use crate::firewall::{self, Op, Publish};
use crate::ipam::Holder;
use crate::netlink::Netlink;
use crate::types::{Attachment, Network};

use super::driver::{BridgeDriver, VETH_ALIAS_PREFIX};

/// What reconcile removed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Containers whose allocations were stale and are gone.
    pub allocations: Vec<String>,
    pub published: Vec<Publish>,
    pub devices: Vec<String>,
    pub errors: ErrorList,
}

impl BridgeDriver {
    pub(super) fn clean_stale(
        &self,
        nl: &mut Netlink,
        stale: &[Holder],
        errs: &mut ErrorList,
    ) -> (Vec<Publish>, Vec<String>) {
        let mut unpublish = Vec::new();
        let mut devices = Vec::new();
        for h in stale {
            let Ok(att) = serde_json::from_value::<Attachment>(h.record.clone()) else { continue };
            unpublish.extend(att.published);
            if let Some(true) = errs.keep(nl.delete_link(&att.host_veth)) {
                devices.push(att.host_veth);
            }
        }
        if !unpublish.is_empty() {
            errs.keep(
                self.nft.apply("remove stale published ports", &[Op::Unpublish(unpublish.clone())]),
            );
        }
        (unpublish, devices)
    }

    /// Removes what containers that are gone left behind: allocations whose lock is free and
    /// whose container is not in `live`, published ports owned by no live or held container,
    /// and host veths (alias `ns:<id>`) of such containers. Goes on past errors.
    pub fn reconcile(&self, nets: &[Network], live: &HashSet<String>) -> ReconcileReport {
        let mut rep = ReconcileReport::default();
        let mut nl = match Netlink::open() {
            Ok(n) => n,
            Err(e) => {
                rep.errors.push(e);
                return rep;
            }
        };
        let mut held: HashSet<String> = HashSet::new();
        for net in nets {
            let ipam = self.ipam(net);
            let Some(stale) = rep.errors.keep(ipam.reclaim(&|id| live.contains(id))) else {
                continue;
            };
            let mut errs = ErrorList::default();
            let (_, devs) = self.clean_stale(&mut nl, &stale, &mut errs);
            rep.errors.0.extend(errs.0);
            rep.devices.extend(devs);
            rep.allocations.extend(stale.into_iter().map(|h| h.container));
            if let Some(hs) = rep.errors.keep(ipam.holders()) {
                held.extend(hs.into_iter().filter(|(_, h)| *h).map(|(h, _)| h.container));
            }
        }
        let alive = |id: &str| live.contains(id) || held.contains(id);
        // Published ports whose owner is gone (also those a stale record did not name).
        match self.nft.list() {
            Ok(Some(t)) => {
                let gone: Vec<Publish> =
                    firewall::published(&t).into_iter().filter(|p| !alive(&p.container)).collect();
                if !gone.is_empty()
                    && rep
                        .errors
                        .keep(
                            self.nft.apply(
                                "remove stale published ports",
                                &[Op::Unpublish(gone.clone())],
                            ),
                        )
                        .is_some()
                {
                    rep.published.extend(gone);
                }
            }
            Ok(None) => {}
            Err(e) => rep.errors.push(e),
        }
        // Host veths of containers that are gone (their namespace still alive somewhere).
        if let Some(links) = rep.errors.keep(nl.links()) {
            for l in links {
                let Some(id) = l.alias.as_deref().and_then(|a| a.strip_prefix(VETH_ALIAS_PREFIX))
                else {
                    continue;
                };
                if l.kind.as_deref() == Some("veth") && !alive(id) {
                    if let Some(true) = rep.errors.keep(nl.delete_link(&l.name)) {
                        rep.devices.push(l.name);
                    }
                }
            }
        }
        rep
    }
}
