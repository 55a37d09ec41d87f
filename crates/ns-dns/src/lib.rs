//! ns-dns: names on container networks. On a bridge network each container must find the
//! others by name, as Docker's embedded DNS and podman's aardvark-dns make possible: a resolver
//! answers for the containers of its network (names, ids, aliases, and the reverse), is
//! updated as they join and leave, and forwards every other question to the host's resolvers.
//!
//! - `wire`: the DNS message codec (names and compression, records, EDNS0, truncation, TCP).
//! - `records`: a network's records file (its format, written atomically under the network's
//!   lock), the lookup table, and how the resolver notices changes (inotify, or a stat per batch).
//! - `resolve`: what to do with one query — answer, refuse or forward — as a pure function.
//! - `server`: the resolver's event loop (one thread, epoll, UDP and TCP on port 53 of the
//!   network's gateway addresses) and its forwarding; `upstream`: which servers it forwards
//!   to; `entry`: the process around it (`main`, `run`).
//! - `network`: `join` and `leave`, what the helper calls per container; `launch` starts and
//!   stops a resolver process; `pidfile` says whether one runs.
//! - `resolvconf` and `hosts`: the container's `/etc/resolv.conf` and `/etc/hosts`, as Docker
//!   makes them (pure functions).

pub mod config;
pub mod entry;
pub mod error;
pub mod hosts;
pub mod launch;
mod log;
pub mod network;
pub mod pidfile;
pub mod records;
pub mod resolvconf;
pub mod resolve;
pub mod server;
mod sys;
pub mod upstream;
pub mod wire;

pub use config::Config;
pub use entry::{main, run};
pub use error::Error;
pub use hosts::{container_hosts, parse_add_host, HostsSpec};
pub use launch::Launcher;
pub use network::{join, leave, remove_network, Joined, Left, ResolverSpec};
pub use records::{ContainerRecord, NetworkFiles};
pub use resolvconf::{container_resolv_conf, DnsMode, DnsOverrides, ResolvConf};
