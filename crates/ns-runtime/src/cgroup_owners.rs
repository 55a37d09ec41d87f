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
use std::path::{Path, PathBuf};

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
fn record_path(registry: &Path, dirs: &[String]) -> Option<PathBuf> {
    let first = dirs.first()?;
    Some(registry.join(first.trim_start_matches('/').replace('/', "%")))
}

/// Record this process as the owner of the cgroup with these folders (best effort: without a record the folders are
/// still removed by their owner, only not by someone else after a crash).
pub fn record(dirs: &[String]) {
    record_in(&registry(), dirs)
}

fn record_in(registry: &Path, dirs: &[String]) {
    let me = std::process::id() as i32;
    let Some(start_time) = files::process_start_time(me) else { return };
    write_record(registry, &Owner { pid: me, start_time, cgroup: Folders { dirs: dirs.to_vec() } });
}

fn write_record(registry: &Path, owner: &Owner) {
    let Some(path) = record_path(registry, &owner.cgroup.dirs) else { return };
    if fs::create_dir_all(registry).is_ok() {
        if let Ok(data) = serde_json::to_vec(owner) {
            let _ = files::write_atomic(&path, &data);
        }
    }
}

/// Forget the record of the cgroup with these folders (they are gone).
pub fn release(dirs: &[String]) {
    if let Some(path) = record_path(&registry(), dirs) {
        let _ = fs::remove_file(path);
    }
}

/// Remove the folders of every cgroup whose owner is gone (those still holding a process stay,
/// and so does their record). Returns how many cgroups were given back.
pub fn reconcile() -> usize {
    reconcile_in(&registry())
}

fn reconcile_in(registry: &Path) -> usize {
    let Ok(entries) = fs::read_dir(registry) else { return 0 };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder standing for a cgroup hierarchy (reconcile only removes folders, which
    /// works alike on any filesystem; the end-to-end kill tests use real cgroups).
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ns-owners-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn folders(base: &Path, name: &str) -> Vec<String> {
        let (a, b) = (base.join("memory").join(name), base.join("pids").join(name));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        vec![a.display().to_string(), b.display().to_string()]
    }

    #[test]
    fn a_gone_owners_folders_are_given_back_a_living_ones_and_busy_ones_stay() {
        let base = scratch("reconcile");
        let reg = base.join("records");
        let me = std::process::id() as i32;
        let start = files::process_start_time(me).unwrap();

        let mine = folders(&base, "mine");
        record_in(&reg, &mine);
        // A pid of a process that has ended (reaped), and this pid with another start time (reused).
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id() as i32;
        dead.wait().unwrap();
        let gone = folders(&base, "gone");
        write_record(
            &reg,
            &Owner { pid: dead_pid, start_time: 1, cgroup: Folders { dirs: gone.clone() } },
        );
        let reused = folders(&base, "reused");
        let owner =
            Owner { pid: me, start_time: start + 1, cgroup: Folders { dirs: reused.clone() } };
        write_record(&reg, &owner);
        // Gone owner, but a folder the kernel will not remove yet (here: not empty).
        let busy = folders(&base, "busy");
        fs::write(Path::new(&busy[1]).join("cgroup.procs"), "1\n").unwrap();
        write_record(
            &reg,
            &Owner { pid: dead_pid, start_time: 1, cgroup: Folders { dirs: busy.clone() } },
        );
        // A temporary left by a crash, and a damaged record.
        fs::write(reg.join("x.tmp"), "{").unwrap();
        fs::write(reg.join("damaged"), "not json").unwrap();

        assert_eq!(reconcile_in(&reg), 2);
        for d in gone.iter().chain(&reused) {
            assert!(!Path::new(d).exists(), "{d} given back");
        }
        for d in &mine {
            assert!(Path::new(d).exists(), "{d} kept: its owner lives");
        }
        assert!(Path::new(&busy[1]).exists(), "a folder that cannot be removed stays");
        let mut left: Vec<String> = fs::read_dir(&reg)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let name = |dirs: &[String]| {
            record_path(&reg, dirs).unwrap().file_name().unwrap().to_string_lossy().into_owned()
        };
        let mut want = vec![name(&mine), name(&busy), "damaged".to_owned()];
        want.sort();
        assert_eq!(left, want, "the records of what is still there, and nothing else");

        // Once the busy folder can go, the next reconcile gives it back.
        fs::remove_file(Path::new(&busy[1]).join("cgroup.procs")).unwrap();
        assert_eq!(reconcile_in(&reg), 1);
        assert!(!Path::new(&busy[0]).exists() && !Path::new(&busy[1]).exists());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_record_is_named_by_the_first_folder_and_nothing_is_recorded_without_one() {
        let reg = Path::new("/run/ns/.cgroups");
        let dirs = vec!["/sys/fs/cgroup/memory/ns/abc".to_owned()];
        assert_eq!(
            record_path(reg, &dirs).unwrap(),
            Path::new("/run/ns/.cgroups/sys%fs%cgroup%memory%ns%abc")
        );
        assert_eq!(record_path(reg, &[]), None);
    }
}
