//! ns-dns: names on container networks. On a bridge network each container must find the
//! others by name, as Docker's embedded DNS and podman's aardvark-dns make possible: a resolver
//! answers for the containers of its network (names, ids, aliases, and the reverse), is
//! updated as they join and leave, and forwards every other question to the host's resolvers.
//!
//! - `wire`: the DNS message codec (names and compression, records, EDNS0, truncation, TCP).
//! - `records`: a network's records file (its format, written atomically under the network's
//!   lock), the lookup table, and how the resolver notices changes (inotify, or a stat per batch).

pub mod error;
pub mod records;
mod sys;
pub mod wire;

pub use error::Error;
