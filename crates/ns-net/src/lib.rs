//! The kernel side of ns's container networks: Docker/netavark-style bridge networks for a
//! synchronous, single-threaded helper. No Node, no async runtime, no `ip` subprocess; `nft`
//! is the one program run, and only for firewall changes.
//!
//! | module | what |
//! | --- | --- |
//! | [`netlink`] | rtnetlink over `AF_NETLINK`: links (bridge, veth with its peer born in another namespace), addresses, routes, dumps; [`netlink::Netlink::open_in`] works inside another namespace |
//! | [`netns`] | namespace descriptors; run a step inside one on this thread |
//! | [`ipam`] | subnets, gateways, ranges; allocation files with an `flock` per container |
//! | [`firewall`] | the `inet ns` nftables table as data, rendered and applied in one batch |
//! | [`sysctl`] | forwarding, `route_localnet`, DAD: set per namespace and reported |
//! | [`types`] | the contract: [`Network`], [`AttachRequest`], [`Attachment`], [`PortMapping`] |
//! | [`bridge`] | the driver: [`BridgeDriver`] |
//!
//! # For the integrator: what the helper calls, in which order
//!
//! Networks are created, persisted and listed by the TypeScript side (`ns network create web
//! --subnet 10.89.0.0/24`), which builds a [`Network`] with [`Network::new`] (through the addon)
//! and calls [`BridgeDriver::ensure_network`] once (it checks the subnet against every route of
//! the host and reports the sysctls it set for `ns network inspect`). The default network
//! comes from [`bridge::default_network`]. Bridge networks need root.
//!
//! Starting a container on networks `nets` (in the helper, `launch()` of ns-runtime):
//!
//! 1. Before cloning: nothing. (Validation that needs no namespace, [`BridgeDriver::validate`],
//!    can run early to fail fast; `setup` runs it again.)
//! 2. Clone the child with `CLONE_NEWNET`; write its id maps; the child waits on its `go` pipe.
//! 3. Open the child's namespace: [`netns::of_pid`]`(pid)`.
//! 4. For each network, in order (the first with `default_route: true`, the next ones
//!    `false`; interfaces `eth0`, `eth1`, …): [`BridgeDriver::setup`]. It creates the veth
//!    from the host side with its peer born inside the child's namespace under its final name,
//!    then configures that interface (up, addresses, default route) **from the helper**, through
//!    a netlink socket opened inside the child's namespace. If a later network fails, tear down
//!    the ones already set up (then the child is killed, as on any set-up failure).
//! 5. Persist every [`Attachment`] (JSON) with the container's state, and keep every
//!    [`ipam::Lease`] descriptor open for as long as the container lives: in the helper, then
//!    in the monitor (they are `O_CLOEXEC`; the container's process must not inherit them).
//! 6. Release the child. It finds `eth0` configured and only brings `lo` up, as today.
//!
//! Why the helper configures `eth0` and not the child: the helper already holds everything the
//! configuration needs (the allocation, the gateway, the MTU), so the child needs no new
//! protocol message, no netlink code and no error path of its own; every step of an attachment
//! fails in one place (the helper) where it is undone in order and reported with its step; the
//! attachment record is complete before the container runs a single instruction; and setup
//! costs two `setns` calls on the helper's single thread (µs), not a round trip to the child.
//! The child would need `CAP_NET_ADMIN` in its user namespace before dropping capabilities,
//! which it has, but gains nothing by doing the work.
//!
//! Deleting a container (`delete`, or the monitor when it ends): for each attachment,
//! [`BridgeDriver::teardown`] (published ports, host veth, allocation: it goes on past errors
//! and returns them all), then close the lease. The veth may already be gone with the
//! container's namespace; that is not an error.
//!
//! Reconcile ([`BridgeDriver::reconcile`]): with the ids of every container that still exists
//! (from the state directory), at `ns` start-up, before `ns network rm`, and after a crash. It
//! removes allocations whose lock is free and whose container is not live, DNAT elements whose
//! owner (`ns:<id>` comment) is neither live nor holding a lock, and host veths (alias
//! `ns:<id>`) of such containers. [`BridgeDriver::setup`] also reclaims what dead holders left
//! before it reuses an address, so a crash never leaves a DNAT rule that shadows a new one.
//!
//! Errors are [`NetError`] (step, path, errno, code, message, hint), the shape of
//! `ns_runtime::SetupError`: the helper converts field by field. This crate does not depend on
//! ns-runtime (ns-runtime will depend on it).
//!
//! # The firewall
//!
//! One table, `inet ns`; nothing else is touched. See [`firewall`] for its shape. A bridge
//! attachment without published ports runs no `nft` at all; one with ports runs one batch.
//! IPv6 published ports are reached from other hosts and from the host's own addresses, not
//! from `[::1]` (the kernel does not route `::1` off loopback; `validate` refuses it).

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
