//! The resolver's messages: one line each on stderr (the network's log file when started by
//! [`crate::launch`]), prefixed with the time and the network. It logs its start, its end, and
//! problems with the records — never a line per query.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static NETWORK: OnceLock<String> = OnceLock::new();

/// Name the network in every line from now on (once per process).
pub fn set_network(network: &str) {
    let _ = NETWORK.set(network.to_owned());
}

pub fn line(message: &str) {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let network = NETWORK.get().map_or("-", String::as_str);
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}.{:03} ns-dns[{network}]: {message}",
        t.as_secs(),
        t.subsec_millis()
    );
}
