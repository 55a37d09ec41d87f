//! The records file of a network: what its resolver answers from. JSON, one file per network,
//! written by the helper (or the monitor) when a container joins or leaves, under the
//! network's lock, to a temporary name in the same directory and then renamed over the old
//! file, so a reader sees the old or the new file whole, never half of one.
//!
//! ```json
//! { "version": 1, "network": "web", "domain": "dns.ns",
//!   "containers": [
//!     { "id": "4f3a…", "name": "db", "aliases": ["database"],
//!       "ipv4": ["198.51.100.2"], "ipv6": ["2001:db8:a::2"], "dns": ["192.0.2.53"] } ] }
//! ```
//!
//! A container answers to its `name`, its `aliases`, its `id` (when it fits in a DNS label)
//! and its short id (the id's first 12 characters), case-insensitively, and to each of those
//! followed by `domain` when there is one (`db.dns.ns`). `dns` (optional) are the upstream
//! resolvers of that container alone (`--dns`), asked instead of the network's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys;
use crate::wire::Name;

/// The version this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsDoc {
    pub version: u32,
    /// The network's name (for messages; the file's name is what finds it).
    pub network: String,
    /// The network's search domain, when names should also answer as `NAME.DOMAIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<Ipv6Addr>,
    /// This container's own upstream resolvers (`--dns`); empty: the network's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
}

impl ContainerRecord {
    /// Every address of the container.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4.iter().map(|a| IpAddr::V4(*a)).chain(self.ipv6.iter().map(|a| IpAddr::V6(*a)))
    }

    /// The names it answers to, without the domain: name, aliases, id when it fits a label,
    /// short id.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![self.name.as_str()];
        names.extend(self.aliases.iter().map(String::as_str));
        if self.id.len() <= crate::wire::MAX_LABEL {
            names.push(&self.id);
        }
        if let Some(short) = self.id.get(..12).filter(|_| self.id.len() > 12) {
            names.push(short);
        }
        names
    }

    /// Check what a writer is about to publish; `field` prefixes the names in errors
    /// (`containers[2]`).
    pub fn validate(&self, field: &str) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(Error::config(
                &format!("{field}.id"),
                format!("must be 1 to 128 letters, digits, '-' or '_', got {:?}", self.id),
            ));
        }
        check_name(&format!("{field}.name"), &self.name)?;
        for (i, alias) in self.aliases.iter().enumerate() {
            check_name(&format!("{field}.aliases[{i}]"), alias)?;
        }
        if self.ipv4.is_empty() && self.ipv6.is_empty() {
            return Err(Error::config(&format!("{field}.ipv4"), "a container needs an address"));
        }
        Ok(())
    }
}

/// A container name, alias or domain: a DNS name of letters, digits, '-', '_' and dots.
pub(crate) fn check_name(field: &str, name: &str) -> Result<()> {
    let chars_ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !chars_ok {
        return Err(Error::config(
            field,
            format!("must be letters, digits, '-', '_' and '.', got {name:?}"),
        ));
    }
    Name::from_ascii(name).map(drop).map_err(|e| Error::config(field, e.to_string()))
}

impl RecordsDoc {
    pub fn new(network: &str, domain: Option<&str>) -> RecordsDoc {
        RecordsDoc {
            version: FORMAT_VERSION,
            network: network.to_owned(),
            domain: domain.map(str::to_owned),
            containers: Vec::new(),
        }
    }

    /// Read a records file's text. Entries are not validated here: the resolver skips the
    /// names it cannot use rather than refusing a whole network for one bad entry.
    pub fn parse(text: &str, path: &Path) -> Result<RecordsDoc> {
        let doc: RecordsDoc = serde_json::from_str(text).map_err(|e| {
            Error::other("parse records", Some(&path.display().to_string()), e.to_string())
        })?;
        if doc.version > FORMAT_VERSION {
            return Err(Error::other(
                "parse records",
                Some(&path.display().to_string()),
                format!("format version {} is newer than {FORMAT_VERSION}", doc.version),
            )
            .with_hint("a newer ns wrote this file; run the resolver of the same version"));
        }
        Ok(doc)
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(d) = &self.domain {
            check_name("domain", d)?;
        }
        for (i, c) in self.containers.iter().enumerate() {
            c.validate(&format!("containers[{i}]"))?;
        }
        Ok(())
    }

    /// Put `record` in, replacing the container of the same id.
    pub fn upsert(&mut self, record: ContainerRecord) {
        self.containers.retain(|c| c.id != record.id);
        self.containers.push(record);
    }

    /// Take the container `id` out; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.containers.len();
        self.containers.retain(|c| c.id != id);
        self.containers.len() != before
    }
}

/// Read the records file; `None` when there is none.
pub fn read_records(path: &Path) -> Result<Option<RecordsDoc>> {
    match fs::read_to_string(path) {
        Ok(text) => RecordsDoc::parse(&text, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("read records", path, &e)),
    }
}

/// Publish `doc` at `path`: validated, written to a temporary file beside it, renamed over it.
/// (No fsync: the records live in `/run`, a tmpfs, and mean nothing after a reboot.)
pub fn write_records(path: &Path, doc: &RecordsDoc) -> Result<()> {
    doc.validate()?;
    let mut text = serde_json::to_string_pretty(doc)
        .map_err(|e| Error::other("encode records", None, e.to_string()))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Write `data` to a temporary file in `path`'s directory (a dot-name readers skip), then
/// rename it to `path`.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| Error::path("create", &tmp, &e))?;
        f.write_all(data).map_err(|e| Error::path("write", &tmp, &e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::path("rename records into", path, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The network's lock, held while its records are read, changed and written, and while its
/// resolver is started or stopped: two containers joining at once start one resolver, and a
/// resolver never exits while a container is being added.
pub struct RecordsLock {
    _file: File,
    path: PathBuf,
}

impl RecordsLock {
    /// Wait for the lock.
    pub fn acquire(path: &Path) -> Result<RecordsLock> {
        let file = open_lock(path)?;
        sys::flock_exclusive(&file, true).map_err(|e| Error::path("lock", path, &e))?;
        Ok(RecordsLock { _file: file, path: path.to_owned() })
    }

    /// Take the lock only if it is free now.
    pub fn try_acquire(path: &Path) -> Result<Option<RecordsLock>> {
        let file = open_lock(path)?;
        let got = sys::flock_exclusive(&file, false).map_err(|e| Error::path("lock", path, &e))?;
        Ok(got.then(|| RecordsLock { _file: file, path: path.to_owned() }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::path("open lock", path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> ContainerRecord {
        ContainerRecord {
            id: "4f3a9c0d1e2b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29".into(),
            name: "db".into(),
            aliases: vec!["database".into()],
            ipv4: vec!["198.51.100.2".parse().unwrap()],
            ipv6: vec!["2001:db8:a::2".parse().unwrap()],
            dns: vec![],
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ns-dns-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_file_is_the_documented_json_and_reads_back_equal() {
        let mut doc = RecordsDoc::new("web", Some("dns.ns"));
        doc.upsert(db());
        let dir = tmpdir("rt");
        let path = dir.join("web.json");
        write_records(&path, &doc).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["domain"], "dns.ns");
        assert_eq!(v["containers"][0]["ipv4"][0], "198.51.100.2");
        assert_eq!(v["containers"][0]["ipv6"][0], "2001:db8:a::2");
        assert!(v["containers"][0].get("dns").is_none());
        assert_eq!(read_records(&path).unwrap(), Some(doc));
        assert_eq!(read_records(&dir.join("none.json")).unwrap(), None);
        // Only the file itself is left: the temporary name was renamed.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("web.json")]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_replaced_file_is_a_new_inode_so_readers_never_see_half_of_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tmpdir("inode");
        let path = dir.join("web.json");
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(db());
        write_records(&path, &doc).unwrap();
        let first = fs::metadata(&path).unwrap().ino();
        let held = fs::read_to_string(&path).unwrap();
        doc.remove(&db().id);
        write_records(&path, &doc).unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), first);
        assert!(held.contains("database"));
        assert!(!fs::read_to_string(&path).unwrap().contains("database"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_are_name_aliases_id_and_short_id() {
        let c = db();
        assert_eq!(c.names(), vec!["db", "database", "4f3a9c0d1e2b"]);
        let short = ContainerRecord { id: "abc123".into(), ..db() };
        assert_eq!(short.names(), vec!["db", "database", "abc123"]);
        let c32 = ContainerRecord { id: "0123456789abcdef0123456789abcdef".into(), ..db() };
        assert_eq!(c32.names()[2..], ["0123456789abcdef0123456789abcdef", "0123456789ab"]);
    }

    #[test]
    fn bad_entries_are_refused_by_the_writer_naming_the_field() {
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(ContainerRecord { name: "no spaces".into(), ..db() });
        let e = doc.validate().unwrap_err();
        assert_eq!(e.path.as_deref(), Some("containers[0].name"));
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(ContainerRecord { aliases: vec!["ok".into(), "a..b".into()], ..db() });
        assert_eq!(doc.validate().unwrap_err().path.as_deref(), Some("containers[0].aliases[1]"));
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(ContainerRecord { ipv4: vec![], ipv6: vec![], ..db() });
        assert_eq!(doc.validate().unwrap_err().path.as_deref(), Some("containers[0].ipv4"));
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(ContainerRecord { id: "../x".into(), ..db() });
        assert_eq!(doc.validate().unwrap_err().path.as_deref(), Some("containers[0].id"));
        let doc = RecordsDoc::new("web", Some("-bad domain"));
        assert_eq!(doc.validate().unwrap_err().path.as_deref(), Some("domain"));
        let dir = tmpdir("bad");
        assert!(write_records(&dir.join("web.json"), &doc).is_err());
        assert!(!dir.join("web.json").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_newer_format_or_broken_json_is_an_error_with_the_path() {
        let p = Path::new("/run/ns/dns/web.json");
        let e = RecordsDoc::parse(r#"{"version": 2, "network": "web"}"#, p).unwrap_err();
        assert!(e.message.contains("format version 2 is newer than 1"), "{}", e.message);
        assert!(e.hint.is_some());
        let e = RecordsDoc::parse("{", p).unwrap_err();
        assert!(
            e.message.starts_with("failed to parse records /run/ns/dns/web.json: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn upsert_replaces_the_container_of_the_same_id() {
        let mut doc = RecordsDoc::new("web", None);
        doc.upsert(db());
        doc.upsert(ContainerRecord { name: "db2".into(), ..db() });
        assert_eq!(doc.containers.len(), 1);
        assert_eq!(doc.containers[0].name, "db2");
        assert!(doc.remove(&db().id));
        assert!(!doc.remove(&db().id));
    }

    #[test]
    fn the_lock_excludes_a_second_holder_until_released() {
        let dir = tmpdir("lock");
        let p = dir.join("web.lock");
        let held = RecordsLock::acquire(&p).unwrap();
        assert!(RecordsLock::try_acquire(&p).unwrap().is_none());
        let waiter = std::thread::spawn({
            let p = p.clone();
            move || RecordsLock::acquire(&p).map(|_| ())
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(held);
        waiter.join().unwrap().unwrap();
        assert!(RecordsLock::try_acquire(&p).unwrap().is_some());
        fs::remove_dir_all(dir).unwrap();
    }
}
