//! The kernel side of ns's container networks.

// Errors are plain data carried by value, as in ns-runtime.
#![allow(clippy::result_large_err)]

pub mod cidr;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod sysctl;

pub use error::{Errno, ErrorList, NetError, Result};
