//! The resolver as a process. The integrator's hidden verb is one line in `ns-oci`'s
//! `commands::main`: `if argv.first().map(String::as_str) == Some("dns") { ns_dns::main(&argv[1..]) }`;
//! [`crate::launch`] starts it with the arguments [`Config::to_args`] gives.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};

use crate::config::Config;
use crate::server::Server;

/// Parse the command line and [`run`]; a bad command line prints its error and exits 2.
pub fn main<I, S>(args: I) -> !
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<String> = args.into_iter().map(|s| s.as_ref().to_owned()).collect();
    match Config::from_args(&args) {
        Ok(config) => run(config),
        Err(e) => {
            eprintln!("ns-dns: {e}");
            eprintln!(
                "usage: --records DIR/NETWORK.json --listen IP [--listen IP]… [--port N] [--internal] \
                 [--resolv-conf PATH | --upstream IP[:PORT]…] [--no-host-loopback] [--timeout-ms N] \
                 [--watch inotify|stat] [--pid-file PATH] [--ready-fd N]"
            );
            std::process::exit(2)
        }
    }
}

/// Serve `config` until the network is gone, then exit 0; exit 1 if it cannot start (after
/// writing `error JSON` on the ready descriptor, when there is one).
pub fn run(config: Config) -> ! {
    let ready = config.ready_fd.map(take_fd);
    let server = match Server::bind(&config) {
        Ok(s) => s,
        Err(e) => {
            crate::log::line(&format!("cannot start: {e}"));
            if let Some(mut f) = ready {
                let _ = writeln!(f, "error {}", serde_json::to_string(&e).unwrap_or_default());
            }
            std::process::exit(1)
        }
    };
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    let upstreams: Vec<String> = server.upstreams().iter().map(|a| a.to_string()).collect();
    crate::log::line(&format!(
        "listening on {} (udp and tcp), pid {}, watching the records with {:?}, {}",
        addrs.join(", "),
        std::process::id(),
        server.watcher().mode(),
        if config.internal {
            "internal: nothing forwarded".to_owned()
        } else {
            format!(
                "forwarding to {}",
                if upstreams.is_empty() { "no server".to_owned() } else { upstreams.join(", ") }
            )
        }
    ));
    if let Some(mut f) = ready {
        let _ = writeln!(f, "ready {}", std::process::id());
    }
    match server.run() {
        Ok(exit) => {
            crate::log::line(&format!("exiting: {}", exit.reason.describe()));
            std::process::exit(0)
        }
        Err(e) => {
            crate::log::line(&format!("stopped: {e}"));
            std::process::exit(1)
        }
    }
}

fn take_fd(fd: RawFd) -> File {
    // SAFETY: the descriptor was handed to this process for this purpose (--ready-fd) and
    // nothing else in it uses it; the File closes it when dropped.
    unsafe { File::from_raw_fd(fd) }
}
