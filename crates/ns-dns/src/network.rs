//! What the helper calls when a container joins or leaves a network with DNS: the records
//! update and the resolver's start and stop, together under the network's lock.
//!
//! - [`join`]: lock; add (or replace) the container in `NETWORK.json`; if no resolver holds
//!   `NETWORK.pid`, start one ([`crate::launch::start`]) and wait until it listens; unlock. Two
//!   containers joining at once start one resolver: the second finds the first's running.
//!   A resolver that fails to start takes the container back out, so the records never list a
//!   container nobody answers for.
//! - [`leave`]: lock; take the container out; when none is left, remove `NETWORK.json` and
//!   stop the resolver (and wait for it to be gone); unlock.
//! - A running resolver picks up every change by itself, and exits on its own when it finds
//!   its records removed or empty (checked once a second, under the same lock) — the safety
//!   net when the helper that should have called `leave` died.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::launch::{self, Launcher};
use crate::pidfile;
use crate::records::{
    read_records, write_records, ContainerRecord, NetworkFiles, RecordsDoc, RecordsLock,
};

/// How long a resolver has to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the resolver of a network is told, besides its files (filled in by [`join`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSpec {
    /// Settings of the resolver; `records` and `pid_file` are set by [`join`].
    pub config: Config,
    /// The network's search domain (`dns.ns`), written into its records.
    pub domain: Option<String>,
    pub launcher: Launcher,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// This join started the network's resolver, with this pid.
    Started(i32),
    /// It was running already (this pid) and picks up the new container by itself.
    Running(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// Other containers remain; the resolver goes on.
    Remaining(usize),
    /// It was the last container: the records are removed and the resolver stopped.
    Stopped,
}

/// The resolver's configuration with the network's files filled in.
pub fn resolver_config(files: &NetworkFiles, spec: &ResolverSpec) -> Config {
    let mut c = spec.config.clone();
    c.records = files.records();
    c.pid_file = Some(files.pid_file());
    c.ready_fd = None;
    c
}

pub fn join(
    files: &NetworkFiles,
    container: ContainerRecord,
    spec: &ResolverSpec,
) -> Result<Joined> {
    container.validate("container")?;
    fs::create_dir_all(files.dir()).map_err(|e| Error::path("create", files.dir(), &e))?;
    let _lock = RecordsLock::acquire(&files.lock())?;
    let mut doc =
        read_records(&files.records())?.unwrap_or_else(|| RecordsDoc::new(files.network(), None));
    doc.domain = spec.domain.clone();
    let id = container.id.clone();
    doc.upsert(container);
    write_records(&files.records(), &doc)?;
    if let Some(pid) = pidfile::holder(&files.pid_file())? {
        return Ok(Joined::Running(pid));
    }
    match launch::start(&resolver_config(files, spec), &spec.launcher, &files.log()) {
        Ok(pid) => Ok(Joined::Started(pid)),
        Err(e) => {
            doc.remove(&id);
            let _ = if doc.containers.is_empty() {
                remove_if_present(&files.records())
            } else {
                write_records(&files.records(), &doc)
            };
            Err(e)
        }
    }
}

pub fn leave(files: &NetworkFiles, id: &str) -> Result<Left> {
    let _lock = RecordsLock::acquire(&files.lock())?;
    let mut doc =
        read_records(&files.records())?.unwrap_or_else(|| RecordsDoc::new(files.network(), None));
    doc.remove(id);
    if !doc.containers.is_empty() {
        write_records(&files.records(), &doc)?;
        return Ok(Left::Remaining(doc.containers.len()));
    }
    remove_if_present(&files.records())?;
    launch::stop(&files.pid_file(), STOP_GRACE)?;
    remove_if_present(&files.pid_file())?;
    Ok(Left::Stopped)
}

/// For a network being removed: stop its resolver whatever its records say, and remove its
/// records, pid file and log (the lock file stays: another process may be waiting on it).
pub fn remove_network(files: &NetworkFiles) -> Result<()> {
    let _lock = RecordsLock::acquire(&files.lock())?;
    remove_if_present(&files.records())?;
    launch::stop(&files.pid_file(), STOP_GRACE)?;
    remove_if_present(&files.pid_file())?;
    remove_if_present(&files.log())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path("remove", path, &e)),
    }
}
