//! Where a network's DNS files live: one directory (e.g. `/run/ns/dns`) holds, for each
//! network with DNS, `NETWORK.json` (the records), `NETWORK.lock` (the writers' lock),
//! `NETWORK.pid` (the resolver's pid, locked while it runs) and `NETWORK.log` (its messages).
//! The resolver of one network reads the other networks' records in the same directory to
//! answer a container that is on several networks.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFiles {
    dir: PathBuf,
    network: String,
}

/// A network name as docker allows them: a letter or digit, then letters, digits, `_`, `.`,
/// `-`; here also at most 128 characters, so the files' names stay short.
pub fn check_network_name(network: &str) -> Result<()> {
    let mut bytes = network.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || network.len() > 128 {
        return Err(Error::config(
            "network",
            format!("must be a letter or digit then letters, digits, '_', '.' or '-' (at most 128), got {network:?}"),
        ));
    }
    Ok(())
}

impl NetworkFiles {
    pub fn new(dir: impl Into<PathBuf>, network: &str) -> Result<NetworkFiles> {
        check_network_name(network)?;
        Ok(NetworkFiles { dir: dir.into(), network: network.to_owned() })
    }

    /// The files of the network whose records file is `records` (`DIR/NETWORK.json`).
    pub fn from_records(records: &Path) -> Result<NetworkFiles> {
        let network = records.file_name().and_then(network_of_records_file).ok_or_else(|| {
            Error::config(
                "records",
                format!("must be a file named NETWORK.json, got {}", records.display()),
            )
        })?;
        let dir = records.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        NetworkFiles::new(dir, network)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn records(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.network))
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.network))
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.network))
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.network))
    }
}

/// The network a file in the directory holds the records of: `web` for `web.json`; nothing for
/// the writers' temporary files (`.web.json.123.0.tmp`) or any other file.
pub fn network_of_records_file(name: &OsStr) -> Option<&str> {
    let network = name.to_str()?.strip_suffix(".json")?;
    check_network_name(network).ok().map(|_| network)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_of_a_network_sit_side_by_side() {
        let f = NetworkFiles::new("/run/ns/dns", "web").unwrap();
        assert_eq!(f.records(), Path::new("/run/ns/dns/web.json"));
        assert_eq!(f.lock(), Path::new("/run/ns/dns/web.lock"));
        assert_eq!(f.pid_file(), Path::new("/run/ns/dns/web.pid"));
        assert_eq!(f.log(), Path::new("/run/ns/dns/web.log"));
        assert_eq!(NetworkFiles::from_records(&f.records()).unwrap(), f);
    }

    #[test]
    fn only_network_json_files_are_records() {
        assert_eq!(network_of_records_file(OsStr::new("web.json")), Some("web"));
        assert_eq!(network_of_records_file(OsStr::new("my.net-1.json")), Some("my.net-1"));
        assert_eq!(network_of_records_file(OsStr::new(".web.json.12.0.tmp")), None);
        assert_eq!(network_of_records_file(OsStr::new(".web.json")), None);
        assert_eq!(network_of_records_file(OsStr::new("web.lock")), None);
        assert_eq!(network_of_records_file(OsStr::new(".json")), None);
    }

    #[test]
    fn bad_network_names_are_refused() {
        for bad in ["", "-x", "a/b", "..", "a b", &"n".repeat(129)] {
            let e = NetworkFiles::new("/run/ns/dns", bad).unwrap_err();
            assert_eq!(e.path.as_deref(), Some("network"), "{bad:?}");
        }
        assert!(NetworkFiles::from_records(Path::new("/run/ns/dns/web.txt")).is_err());
    }
}
