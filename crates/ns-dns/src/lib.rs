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
//!
//! # Wiring it in
//!
//! **The process.** `ns-oci` gets a hidden verb, one line beside `init` and `zygote` in
//! `commands::main`: `if argv.first().map(String::as_str) == Some("dns") { ns_dns::main(&argv[1..]) }`
//! (it never returns). Nothing else calls it directly.
//!
//! **One directory for all networks**, e.g. `/run/ns/dns` (`$XDG_RUNTIME_DIR/ns/dns` rootless):
//! [`NetworkFiles::new(dir, network)`](NetworkFiles) names `NETWORK.json` (records),
//! `NETWORK.lock` (writers' flock), `NETWORK.pid` (the resolver's POSIX lock) and `NETWORK.log`.
//!
//! **When a container joins a network with DNS** (in the helper, once its address is known and
//! before its process is released), call [`join`] with its [`ContainerRecord`] (id, name,
//! `--network-alias`es, addresses, its `--dns` servers from [`container_resolv_conf`]'s
//! `upstreams`) and a [`ResolverSpec`]: `config` = `Config::new("", gateway addresses)` with
//! `internal` for `--internal` networks (and `host_loopback = false` if the resolver runs in a
//! namespace other than the host's), `domain` (e.g. `dns.ns`), `launcher` =
//! `Launcher::new("/proc/self/exe", &["dns"])`. Under the network's lock it writes the records
//! and, if no resolver holds the pid file, starts one (detached, double-forked, stderr to the
//! log) and waits until it listens; a resolver that fails to start (port 53 taken, say) is an
//! error with its own step/errno, and the container is taken back out of the records. The
//! gateway addresses must exist on the bridge by then (IP_FREEBIND lets an IPv6 one still in
//! DAD be bound); the firewall must accept UDP and TCP port 53 from the bridge to them.
//!
//! **When it leaves** (deleted, or its network disconnected), call [`leave`]: the last one
//! removes the records and stops the resolver (SIGTERM through a pidfd, then SIGKILL), and
//! waits for it. [`remove_network`] does the same regardless of the records, for
//! `network rm` and for a reconcile that finds a network gone. Should a helper die between
//! the two, the resolver still exits by itself within a second of finding its records removed
//! or empty. It is re-parented to init — or to the nearest sub-reaper: a helper that is one
//! (the monitor) may see it exit among its children and must just reap it.
//!
//! **Who writes the records**: only [`join`] and [`leave`] (the helper or the monitor), always
//! under the lock; the resolver only reads, and re-reads on every change (inotify; or a stat
//! per batch of queries where inotify is unavailable).
//!
//! **The container's files**: [`container_resolv_conf`] with [`DnsMode::Resolver`] (the
//! gateways of its DNS networks), [`DnsMode::Direct`] (`--network none`, no DNS) or
//! [`DnsMode::Host`], and [`container_hosts`] with `--add-host` values read by
//! [`parse_add_host`]; bind-mount what they return over the container's `/etc/resolv.conf`
//! and `/etc/hosts`.
//!
//! **Who is answered**: only a source address listed in the network's records, so a
//! container of one network (an internal one especially) learns nothing from another
//! network's resolver, nor uses its forwarding. A container on several networks is answered
//! with the names of all of them (the resolver reads its neighbours' records too).

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
