//! The sysctls routing needs, set in the caller's network namespace (`/proc/sys/net` is per
//! namespace) and reported, so that `ns network inspect` can name what ns changed.

use serde::{Deserialize, Serialize};

use crate::error::{Errno, NetError, Result};

/// A sysctl ns set: its dotted name, the value it has now, and the one it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sysctl {
    pub key: String,
    pub value: String,
    pub previous: String,
}

/// Sets `/proc/sys/<parts…>` to `value` (written only when it differs). Parts are separate so
/// that an interface name with a dot stays one part.
pub fn set(parts: &[&str], value: &str) -> Result<Sysctl> {
    let path = format!("/proc/sys/{}", parts.join("/"));
    let key = parts.join(".");
    let previous = std::fs::read_to_string(&path)
        .map_err(|e| NetError::sys("read sysctl", Some(&key), Errno::from_io(&e)))?
        .trim()
        .to_owned();
    if previous != value {
        std::fs::write(&path, value).map_err(|e| {
            NetError::sys(format!("set sysctl {key} to"), Some(value), Errno::from_io(&e))
        })?;
    }
    Ok(Sysctl { key, value: value.to_owned(), previous })
}

/// Reads one, for tests and inspect.
pub fn get(parts: &[&str]) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{}", parts.join("/")))
        .ok()
        .map(|s| s.trim().to_owned())
}
