//! The bridge driver itself: where its allocations live, the aliases that mark what it made,
//! and the random addresses its bridges and veths get.

use std::path::PathBuf;

use crate::firewall::Nft;
use crate::ipam::Ipam;
use crate::types::Network;

/// Where allocations live by default: one folder per network.
pub const STATE_DIR: &str = "/run/ns-net";
/// The alias of a bridge ns made (`ns-network:<name>`) and of a host veth (`ns:<id>`).
pub const BRIDGE_ALIAS_PREFIX: &str = "ns-network:";
pub const VETH_ALIAS_PREFIX: &str = "ns:";

#[derive(Debug, Clone)]
pub struct BridgeDriver {
    pub state_dir: PathBuf,
    pub nft: Nft,
}

impl Default for BridgeDriver {
    fn default() -> Self {
        BridgeDriver { state_dir: PathBuf::from(STATE_DIR), nft: Nft::default() }
    }
}

pub(super) fn random_mac() -> [u8; 6] {
    let mut m = [0u8; 6];
    // SAFETY: getrandom writes at most 6 bytes into m. On failure m stays zero and is still
    // made a valid address below (a fixed one, told apart by nothing else: rare and harmless).
    unsafe { libc::getrandom(m.as_mut_ptr().cast(), m.len(), 0) };
    m[0] = (m[0] & 0xfe) | 0x02; // unicast, locally administered
    m
}

impl BridgeDriver {
    pub fn new(state_dir: impl Into<PathBuf>) -> BridgeDriver {
        BridgeDriver { state_dir: state_dir.into(), nft: Nft::default() }
    }

    pub fn ipam(&self, net: &Network) -> Ipam {
        Ipam::new(self.state_dir.join(&net.name))
    }
}
