//! The state directory: one folder per container (`<root>/<id>/`), readable by any process.
//!
//! - `state.json`: what `create` recorded (pid, bundle, creation time, …), written atomically
//!   (a temporary file renamed over the old one);
//! - `exec.fifo`: present between `create` and `start`; the container's process blocks writing
//!   it until `start` reads;
//! - `exit.json`: the exit status, written by the monitor when there is one;
//! - `container.log`: the output of a detached container, written by the monitor;
//! - `.lock`: `flock`ed around every operation that changes the folder.
//!
//! The status is not stored: it is read off the kernel each time (is the recorded process, with
//! the recorded start time, still alive? is the fifo still there?), so it cannot go stale.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
pub use crate::files::{default_root, process_start_time, write_atomic};
use crate::sys::{self, Errno};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "container.log";
/// The runtime spec the container was created with.
pub const CONFIG_FILE: &str = "config.json";

/// Container ids: letters, digits and `_ + - .`, not starting with a dot, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SetupError::config(
            "id",
            format!("{id:?} is not a valid container id (letters, digits, _ + - .)"),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Frozen by `pause`, until `resume`.
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `create` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    /// Host PID of the container's first process.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), so a reused PID is never taken for it.
    pub start_time: u64,
    pub bundle: String,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Host uid of whoever created it.
    pub owner: u32,
    /// PID of the monitor that waits for it and keeps its log, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// Its cgroup folders, removed at delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroup::Cgroup>,
    /// Its resctrl group (`linux.intelRdt`), removed at delete if it made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdt: Option<crate::resctrl::RdtGroup>,
}

/// How it ended, written by the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub finished: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// The state as the runtime spec's `state` command prints it, plus what ns adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: String,
    pub annotations: BTreeMap<String, String>,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitRecord>,
    /// Stopped with no exit record, and none will come: why its exit status is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_unknown: Option<String>,
}

/// The longest entry of a container's log: longer output without a newline is cut into entries
/// of this size (as docker's 16 KiB), so that neither the monitor's memory nor a reader of the
/// log has to hold a line of unbounded length.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// Write out (`out`) whole entries of `MAX_LOG_LINE` bytes from the front of `partial`, what a
/// stream wrote without a newline, until less than that is left.
pub fn split_long_log_line(partial: &mut Vec<u8>, out: &mut dyn FnMut(&[u8])) {
    while partial.len() >= MAX_LOG_LINE {
        let part: Vec<u8> = partial.drain(..MAX_LOG_LINE).collect();
        out(&part);
    }
}

/// The parent of a process and its start time (fields 4 and 22 of /proc/PID/stat, readable by
/// anyone), or None when there is no such process.
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// A process whose namespaces (/proc/PID/ns/*) can be read for the container whose first
/// process is `pid`: that process itself when it can be; otherwise the oldest of its children.
/// The init that is a container's PID 1 is undumpable and was not executed inside, so only
/// CAP_SYS_PTRACE in the host's user namespace reads its /proc files: a rootless caller cannot.
/// Its children were executed inside the container (the command first), and their owner may
/// read theirs. `pid` itself when it has no child.
pub fn namespace_anchor(pid: i32) -> i32 {
    if fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok() {
        return pid;
    }
    let Ok(rd) = fs::read_dir("/proc") else { return pid };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| match parent_and_start(p) {
            Some((parent, start)) if parent == pid => Some((start, p)),
            _ => None,
        })
        .min()
        .map_or(pid, |(_, p)| p)
}

/// Is `child` (still) a child of `parent`?
pub fn is_child_of(child: i32, parent: i32) -> bool {
    parent_and_start(child).is_some_and(|(p, _)| p == parent)
}

/// UTC now as RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// One container's folder.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

/// An exclusive `flock` on a container's folder, released on drop.
pub struct Lock(#[allow(dead_code)] OwnedFd);

fn io_err(step: &str, p: &Path, e: std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&p.display().to_string()),
        Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

impl ContainerDir {
    pub fn new(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        Ok(ContainerDir { id: id.to_owned(), path: root.join(id) })
    }

    /// Make the folder of a new container; EEXIST if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        let dir = ContainerDir::new(root, id)?;
        fs::create_dir_all(root).map_err(|e| io_err("create state root", root, e))?;
        match fs::create_dir(&dir.path) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut err = io_err("create container", &dir.path, e);
                err.message = format!("container {id:?} already exists");
                Err(err)
            }
            Err(e) => Err(io_err("create container state in", &dir.path, e)),
        }
    }

    /// The folder of an existing container; ENOENT if there is none.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        let dir = ContainerDir::new(root, id)?;
        if !dir.path.join(STATE_FILE).exists() {
            let mut e = SetupError::sys("find container", Some(id), Errno(libc::ENOENT));
            e.message = format!("container {id:?} does not exist");
            return Err(e);
        }
        Ok(dir)
    }

    pub fn lock(&self) -> Result<Lock> {
        let p = self.path.join(".lock");
        let fd = sys::open(&p.display().to_string(), libc::O_RDWR | libc::O_CREAT)
            .map_err(|e| SetupError::sys("open lock", Some(&p.display().to_string()), e))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(SetupError::sys("lock", Some(&p.display().to_string()), Errno::last()));
        }
        Ok(Lock(fd))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_record(&self, r: &Record) -> Result<()> {
        let data = serde_json::to_vec_pretty(r).unwrap_or_default();
        write_atomic(&self.file(STATE_FILE), &data)
    }

    pub fn read_record(&self) -> Result<Record> {
        let p = self.file(STATE_FILE);
        let data = fs::read(&p).map_err(|e| io_err("read", &p, e))?;
        serde_json::from_slice(&data).map_err(|e| {
            let mut err =
                SetupError::sys("parse", Some(&p.display().to_string()), Errno(libc::EINVAL));
            err.message = format!("state of {:?} is damaged: {e}", self.id);
            err
        })
    }

    /// The runtime spec the container was created with (kept as config.json).
    pub fn read_config(&self) -> Option<crate::spec::Spec> {
        serde_json::from_slice(&fs::read(self.file("config.json")).ok()?).ok()
    }

    pub fn read_exit(&self) -> Option<ExitRecord> {
        serde_json::from_slice(&fs::read(self.file(EXIT_FILE)).ok()?).ok()
    }

    pub fn write_exit(&self, e: &ExitRecord) -> Result<()> {
        write_atomic(&self.file(EXIT_FILE), &serde_json::to_vec(e).unwrap_or_default())
    }

    /// Is the recorded process still the one alive?
    pub fn alive(r: &Record) -> bool {
        r.pid > 0 && process_start_time(r.pid) == Some(r.start_time)
    }

    pub fn status(&self, r: &Record) -> Status {
        if !Self::alive(r) {
            Status::Stopped
        } else if r.cgroup.as_ref().is_some_and(|c| c.frozen()) {
            Status::Paused
        } else if self.file(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// For a stopped container without an exit record: why none will come (its monitor is gone,
    /// or it never had one); None while a living monitor may still write it.
    pub fn exit_unknown(&self, r: &Record) -> Option<String> {
        match r.monitor_pid {
            Some(m) if process_start_time(m).is_some() => None,
            Some(m) => Some(format!(
                "its exit status is unknown: its monitor (pid {m}) ended without recording it"
            )),
            None => Some(
                "its exit status is unknown: no monitor watched it (it was left to its engine)"
                    .to_owned(),
            ),
        }
    }

    pub fn view(&self) -> Result<StateView> {
        let r = self.read_record()?;
        let status = self.status(&r);
        let exit = if status == Status::Stopped { self.read_exit() } else { None };
        let exit_unknown =
            if status == Status::Stopped && exit.is_none() { self.exit_unknown(&r) } else { None };
        Ok(StateView {
            oci_version: r.oci_version.clone(),
            id: r.id.clone(),
            status,
            pid: (status != Status::Stopped).then_some(r.pid),
            bundle: r.bundle.clone(),
            annotations: r.annotations.clone(),
            created: r.created.clone(),
            owner: user_name(r.owner),
            exit,
            exit_unknown,
        })
    }

    pub fn remove(self) -> Result<()> {
        // A straggler writing into the folder makes one pass fail with ENOTEMPTY: try again.
        let mut last = None;
        for _ in 0..5 {
            match fs::remove_dir_all(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(io_err(
            "remove state of",
            &self.path,
            last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EIO)),
        ))
    }
}

fn user_name(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_owned())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Every container under `root`, sorted by id.
pub fn list(root: &Path) -> Vec<ContainerDir> {
    let mut out: Vec<ContainerDir> = fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| validate_id(id).is_ok())
                .map(|id| ContainerDir { path: root.join(&id), id })
                .filter(|d| d.file(STATE_FILE).exists())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "../x"] {
            assert_eq!(validate_id(bad).unwrap_err().path.as_deref(), Some("id"), "{bad}");
        }
    }

    #[test]
    fn output_without_newlines_is_cut_into_bounded_log_entries() {
        let mut partial = vec![b'x'; 2 * MAX_LOG_LINE + 5];
        let mut entries = Vec::new();
        split_long_log_line(&mut partial, &mut |p| entries.push(p.len()));
        assert_eq!(entries, vec![MAX_LOG_LINE, MAX_LOG_LINE]);
        assert_eq!(partial.len(), 5);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951782400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1795909189, 0), "2026-11-28T23:39:49.000000000Z");
    }

    fn record(id: &str, pid: i32, start_time: u64) -> Record {
        Record {
            oci_version: "1.2.0".into(),
            id: id.into(),
            pid,
            start_time,
            bundle: "/b".into(),
            created: now_rfc3339(),
            annotations: BTreeMap::new(),
            owner: 0,
            monitor_pid: None,
            cgroup: None,
            rdt: None,
        }
    }

    #[test]
    fn a_readable_process_is_its_own_anchor_and_its_children_are_its_children() {
        let me = std::process::id() as i32;
        assert_eq!(namespace_anchor(me), me);
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert!(is_child_of(child.id() as i32, me));
        assert!(!is_child_of(me, child.id() as i32));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let mut r = record("x", me, process_start_time(me).unwrap());
        assert!(ContainerDir::alive(&r));
        r.start_time += 1;
        assert!(!ContainerDir::alive(&r));
    }

    #[test]
    fn create_then_open_then_list_then_remove() {
        let root = std::env::temp_dir().join(format!("ns-state-test-{}", std::process::id()));
        let d = ContainerDir::create(&root, "c1").unwrap();
        assert!(ContainerDir::create(&root, "c1").unwrap_err().message.contains("already exists"));
        assert!(ContainerDir::open(&root, "c1").is_err()); // no state.json yet
        d.write_record(&record("c1", 999_999_999, 1)).unwrap();
        let d = ContainerDir::open(&root, "c1").unwrap();
        let v = d.view().unwrap();
        assert_eq!(v.status, Status::Stopped);
        assert!(v.exit_unknown.unwrap().contains("no monitor watched it"));
        // A monitor that is gone (no such pid) recorded nothing: unknown, not a made-up status.
        d.write_record(&Record { monitor_pid: Some(999_999_998), ..record("c1", 999_999_999, 1) })
            .unwrap();
        assert!(d.view().unwrap().exit_unknown.unwrap().contains("monitor (pid 999999998) ended"));
        d.write_exit(&ExitRecord {
            exit_code: Some(3),
            signal: None,
            finished: now_rfc3339(),
            oom_killed: false,
        })
        .unwrap();
        let v = d.view().unwrap();
        assert_eq!(v.exit.unwrap().exit_code, Some(3));
        assert!(v.exit_unknown.is_none());
        assert_eq!(list(&root).iter().map(|d| d.id.clone()).collect::<Vec<_>>(), vec!["c1"]);
        d.remove().unwrap();
        assert!(list(&root).is_empty());
        let _ = fs::remove_dir_all(&root);
    }
}
