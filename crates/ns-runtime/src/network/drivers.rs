//! How the network parts reach the two libraries they drive: ns-net's bridge driver over an
//! allocations folder, ns-dns's resolver launcher (this binary, `dns`), and the errors of
//! both (and of the files made here) as the runtime's `SetupError`.

use std::path::Path;

use ns_net::BridgeDriver;

use crate::error::SetupError;
use crate::sys::Errno;

pub(super) fn driver(state_dir: &str) -> BridgeDriver {
    BridgeDriver::new(state_dir)
}

pub(super) fn launcher() -> ns_dns::Launcher {
    ns_dns::Launcher::new("/proc/self/exe", &["dns"])
}

pub fn net_error(e: ns_net::NetError) -> SetupError {
    SetupError {
        step: e.step,
        path: e.path,
        errno: e.errno,
        code: e.code,
        message: e.message,
        hint: e.hint,
    }
}

pub fn dns_error(e: ns_dns::Error) -> SetupError {
    let code = match e.errno {
        Some(n) => Errno(n).name().to_owned(),
        None => "EINVAL".to_owned(),
    };
    SetupError {
        step: e.step,
        path: e.path,
        errno: e.errno,
        code,
        message: e.message,
        hint: e.hint,
    }
}

pub(super) fn io_error(step: &str, path: &Path, e: &std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&path.display().to_string()),
        Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}
