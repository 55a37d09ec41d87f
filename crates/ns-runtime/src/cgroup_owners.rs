//! Who made each of ns's cgroups, so that the folders of a container whose owner was killed
//! (SIGKILL leaves no time to remove anything) are given back by whoever comes next.
//!
//! Making a cgroup records its owner — the process that made it (the helper, or a detached
//! container's monitor), with its start time, so a reused pid is never taken for it — in a
//! file of `<state root>/.cgroups/`; removing the cgroup removes the record. `reconcile`, run
//! before every new cgroup is made and by `delete`, removes the folders of every record whose
//! owner is gone. A folder still holding a process cannot be removed (the kernel refuses), so a
//! container left running by its owner (an engine's, or one that outlived its monitor) keeps
//! its folders until it has ended.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::files;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owner {
    pid: i32,
    start_time: u64,
    cgroup: Folders,
}

/// A cgroup's folders, one per hierarchy (the shape of `cgroup::Cgroup`, which calls this
/// module: it is given the folders, not the type, so neither module needs the other's).
#[derive(Debug, Serialize, Deserialize)]
struct Folders {
    dirs: Vec<String>,
}

/// Where the records are (one folder per user, as the state root).
pub fn registry() -> PathBuf {
    files::default_root().join(".cgroups")
}

/// The record's file name: the cgroup's first folder, its slashes replaced.
fn record_path(dirs: &[String]) -> Option<PathBuf> {
    let first = dirs.first()?;
    Some(registry().join(first.trim_start_matches('/').replace('/', "%")))
}

/// Record this process as the owner of the cgroup with these folders (best effort: without a record the folders are
/// still removed by their owner, only not by someone else after a crash).
pub fn record(dirs: &[String]) {
    let Some(path) = record_path(dirs) else { return };
    let me = std::process::id() as i32;
    let Some(start_time) = files::process_start_time(me) else { return };
    let owner = Owner { pid: me, start_time, cgroup: Folders { dirs: dirs.to_vec() } };
    if fs::create_dir_all(registry()).is_ok() {
        if let Ok(data) = serde_json::to_vec(&owner) {
            let _ = files::write_atomic(&path, &data);
        }
    }
}

/// Forget the record of the cgroup with these folders (they are gone).
pub fn release(dirs: &[String]) {
    if let Some(path) = record_path(dirs) {
        let _ = fs::remove_file(path);
    }
}

/// Remove the folders of every cgroup whose owner is gone (those still holding a process stay,
/// and so does their record). Returns how many cgroups were given back.
pub fn reconcile() -> usize {
    let Ok(entries) = fs::read_dir(registry()) else { return 0 };
    let mut given_back = 0;
    for e in entries.flatten() {
        let path = e.path();
        let Some(owner) =
            fs::read(&path).ok().and_then(|d| serde_json::from_slice::<Owner>(&d).ok())
        else {
            // Damaged, or being written: a stale temporary is removed, a record is left alone.
            if path.extension().is_some_and(|x| x == "tmp") {
                let _ = fs::remove_file(&path);
            }
            continue;
        };
        if files::process_start_time(owner.pid) == Some(owner.start_time) {
            continue;
        }
        let gone = owner.cgroup.dirs.iter().rev().all(|d| match fs::remove_dir(d) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        });
        if gone {
            let _ = fs::remove_file(&path);
            given_back += 1;
        }
    }
    given_back
}
