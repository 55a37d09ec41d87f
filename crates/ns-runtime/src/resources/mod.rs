//! `linux.resources` of the runtime spec, and the plan of the cgroup writes that apply it:
//! pure data, unit-tested here for both layouts, carried out by `cgroup`. Every field the spec
//! defines is read; what this host's cgroups cannot apply is refused when the write is made,
//! naming the field (never dropped). A write names the spec field it comes from.
//!
//! One file per controller (its part of the spec and its writes), `write` for what they share
//! and `plan` for the whole; everything callers use is re-exported here.

mod blkio;
mod cpu;
mod hugetlb;
mod memory;
mod network;
mod plan;
mod unified;
mod write;

pub use blkio::{BlockIo, ThrottleDevice, WeightDevice};
pub use cpu::Cpu;
pub use hugetlb::HugepageLimit;
pub use memory::{Memory, MIN_MEMORY};
pub use network::{InterfacePriority, Network, Rdma};
pub use plan::{plan_writes, Pids, Resources};
pub use write::{Layout, Write};
