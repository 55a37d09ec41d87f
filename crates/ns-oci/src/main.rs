//! ns-oci: the native binary of ns. A command line compatible with runc's, for engines
//! (containerd's shim, podman's conmon): one file a command under `commands/`, on the grammar
//! of `args` and the global flags of `global`. And the helper modes that `@ns/core` starts for
//! its containers: `ns-oci init` (a request on fd 3) and `ns-oci zygote` (which forks helpers).
//! All of them run on `ns-runtime`.

// SetupError is returned once per command; see ns-runtime.
#![allow(clippy::result_large_err)]

/// `println!` and `eprintln!` that do not panic when stdout or stderr is gone
/// (`ns-oci list | head`): what is left to print is dropped.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

mod args;
mod commands;
mod global;

fn main() {
    let mut argv = Vec::new();
    for (i, a) in std::env::args_os().skip(1).enumerate() {
        match a.into_string() {
            Ok(a) => argv.push(a),
            Err(a) => {
                err!("ns-oci: argument {} ({a:?}) is not valid UTF-8", i + 1);
                std::process::exit(1);
            }
        }
    }
    let code = match argv.first().map(String::as_str) {
        Some("init") => ns_runtime::helper::helper_main(3),
        Some("zygote") => ns_runtime::zygote::zygote_main(3),
        _ => commands::main(&argv),
    };
    std::process::exit(code);
}
