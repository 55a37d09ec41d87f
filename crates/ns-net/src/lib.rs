//! The kernel side of ns's container networks.

// Errors are plain data carried by value, as in ns-runtime.
#![allow(clippy::result_large_err)]

pub mod bridge;
pub mod cidr;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod sysctl;
pub mod types;

pub use bridge::{BridgeDriver, NetworkStatus, ReconcileReport};
pub use error::{Errno, ErrorList, NetError, Result};
pub use types::{AttachRequest, Attachment, Network, PortMapping, SubnetSpec};
