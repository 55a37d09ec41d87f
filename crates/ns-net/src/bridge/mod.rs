//! The bridge driver: networks are Linux bridges with the gateway addresses, containers hang
//! on them by a veth pair, and the firewall table does NAT, isolation and published ports.
//!
//! Contract (each call synchronous, for a single-threaded helper):
//! - [`BridgeDriver::ensure_network`]: bridge up with its gateways, sysctls, base and network
//!   rules; idempotent. [`BridgeDriver::remove_network`] undoes it.
//! - [`BridgeDriver::validate`]: every check of a request, before anything is made.
//! - [`BridgeDriver::setup`]: allocation, veth (peer born in the container's namespace),
//!   addresses and routes inside, published ports; undone on failure, never half made.
//! - [`BridgeDriver::teardown`]: goes on past errors and returns them all.
//! - [`BridgeDriver::reconcile`]: given the live containers, removes stale allocations,
//!   published ports and host veths.
//!
//! One file per job: `driver` holds the driver, its state folder and names; `network` makes
//! and removes a network's bridge; `routes` reads the host's routes (free subnets, the default
//! network, the MTU); `validate` checks a request; `attach` sets a container up and tears it
//! down; `inside` configures the container's side of its veth; `carrier` waits until the
//! host's side forwards; `publish` plans published ports; `reconcile` removes what dead
//! containers left.

mod attach;
mod carrier;
mod driver;
mod inside;
mod network;
mod publish;
mod reconcile;
mod routes;
mod validate;

pub use driver::{BridgeDriver, BRIDGE_ALIAS_PREFIX, STATE_DIR, VETH_ALIAS_PREFIX};
pub use network::NetworkStatus;
pub use publish::plan_published;
pub use reconcile::ReconcileReport;
pub use routes::{check_subnets_free, default_network, default_route_mtu};
