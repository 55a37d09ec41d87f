//! Container networks from the helper's side: the plan a spec carries (`io.ns.network`), the
//! attachment made at the launch's seam (`helper::launch::attach_before_release`), and its
//! teardown (end of a foreground run, the monitor seeing the container end, `delete`).
//!
//! One config model: whoever starts a container (`@ns/core`, the CLI, a bundle given to
//! `ns-oci`) writes the whole plan into the spec's `io.ns.network` annotation: the networks'
//! definitions as they are stored, the addresses asked for, aliases, published ports, DNS
//! settings, and the directories where the runtime's state goes. The runtime reads no
//! network store of its own.
//!
//! The attachment, per network in order (interfaces `eth0`, `eth1`, …; the first network
//! gets the default routes and the published ports): `ns_net::BridgeDriver::setup` (address
//! allocation, veth with its peer born in the child's namespace, the inside configured from
//! here), then `ns_dns::join` on a network with DNS. Then the container's `hosts`,
//! `resolv.conf` and `hostname` are written into the plan's directory; the spec binds them
//! over the container's own files (its `mounts`, which the child makes after it is released).
//! The attachment record, `DIR/attachments.json`, says exactly what teardown must undo; it
//! is written after each step, so a crash leaves a record of everything made.
//!
//! What the container holds while it lives: the allocations' locks (`ns_net::ipam::Lease`)
//! and a socket bound to each published host port (so that no program of the host takes a
//! port the container publishes, and a port one already uses is refused). All are
//! close-on-exec: the container never inherits them. They live in the helper, then in the
//! monitor of a created container; a lock that is free with no live container is what
//! `ns network prune` (reconcile) recognises as stale.
//!
//! A file a part:
//!
//! - `plan`: the plan of `io.ns.network` and its checks (pure, before anything is made);
//! - `attach`: the attachment at the launch's seam, and what the container holds while
//!   attached ([`Attached`]);
//! - `ports`: the sockets that hold the published host ports;
//! - `files`: the container's `hosts`, `resolv.conf` and `hostname`;
//! - `record`: the attachment record and the teardown it drives;
//! - `ops`: the operations on networks `@ns/core` calls through the addon ([`call`]);
//! - `drivers`: how the others reach ns-net and ns-dns, and their errors as `SetupError`.

mod attach;
mod drivers;
mod files;
mod ops;
mod plan;
mod ports;
mod record;

pub use attach::{attach, Attached, RESOLVER_IDLE};
pub use drivers::{dns_error, net_error};
pub use files::{DNS_DOMAIN, FILES};
pub use ops::call;
pub use plan::{plan, Join, Plan, ANNOTATION};
pub use record::{teardown, teardown_recorded, Record, Recorded, RECORD};
