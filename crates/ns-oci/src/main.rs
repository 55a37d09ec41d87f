//! ns-oci: the native binary of ns. A command line compatible with runc's, for engines
//! (containerd's shim, podman's conmon), and the helper mode that `@ns/core` starts for every
//! container (`ns-oci init`, request on fd 3). Both run on `ns-runtime`.

// SetupError is returned once per command; see ns-runtime.
#![allow(clippy::result_large_err)]

mod args;
mod commands;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(commands::main(&argv));
}
