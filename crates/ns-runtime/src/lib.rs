//! ns-runtime: the kernel side of ns. It turns an OCI runtime spec into an isolated process:
//! namespaces (`namespaces`), id maps (`idmap`), the root filesystem (`mounts`, `rootfs`),
//! the process itself (`process`, `init`), run by a single-threaded helper (`helper`, `child`).
//! It never links Node: the napi crate and the `ns-oci` binary sit on top of it.

// SetupError carries the step, path, errno and a hint; it is returned only on the set-up path,
// once per container, so its size does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod attach;
pub mod bpf;
pub mod caps;
pub mod cgroup;
pub mod cgroup_owners;
pub mod cgroup_stats;
pub mod child;
pub mod devices;
pub mod error;
pub mod exec;
// The TypeScript module of the facts shared with @ns/core, rendered and checked by its tests.
#[cfg(test)]
mod facts;
pub mod files;
pub mod helper;
pub mod hooks;
pub mod host;
pub mod idmap;
pub mod image_root;
pub mod init;
pub mod lifecycle;
pub mod mapped;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod overlay;
pub mod process;
pub mod proto;
pub mod request;
pub mod resctrl;
pub mod resources;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod syscalls;
pub mod sysctl;
pub mod tty;
pub mod zygote;

pub use error::SetupError;
pub use request::RunRequest;
pub use spec::Spec;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The OCI runtime spec version this runtime implements.
pub const SPEC_VERSION: &str = "1.2.0";
