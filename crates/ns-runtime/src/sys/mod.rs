//! Thin, typed wrappers over the system calls the runtime makes. Each returns the errno on
//! failure and never panics; the callers attach the step and path (see `error::Context`).
//!
//! One file per kind of call; everything is re-exported here, so callers write `sys::open`.

mod errno;
mod fds;
mod file;
mod mount;
mod path;
mod process;
mod pty;
mod socket;

pub use errno::*;
pub use fds::*;
pub use file::*;
pub use mount::*;
pub use path::*;
pub use process::*;
pub use pty::*;
pub use socket::*;
