//! Small file and process facts shared by the state directory (`state`) and the cgroup
//! registry (`cgroup_owners`): where ns keeps its state, atomic writes, a process's start time.
//! Kept below both so that neither needs the other.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, SetupError};
use crate::sys::Errno;

/// The default state root: `/run/ns` for root, `$XDG_RUNTIME_DIR/ns` otherwise.
pub fn default_root() -> PathBuf {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/run/ns");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("ns"),
        // SAFETY: plain syscall.
        _ => PathBuf::from(format!("/tmp/ns-{}", unsafe { libc::geteuid() })),
    }
}

/// The start time of a process, or None when there is no such (living, non-zombie) process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); field 22 is starttime.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Write `data` to `path` atomically: readers see the old file or the new one, never half.
///
/// Not synced to disk: what ns writes this way (a container's state, exit status, pid file,
/// cgroup records) describes processes that do not survive a crash of the machine either, and
/// lives in `/run` as a rule. A sync there would only make every container wait for the
/// journal of a disk-backed state root (a commit per file: milliseconds) and gain nothing.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let fail = |step: &str, e: std::io::Error| {
        SetupError::sys(
            step,
            Some(&path.display().to_string()),
            Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| fail("write", e))?;
    f.write_all(data).map_err(|e| fail("write", e))?;
    fs::rename(&tmp, path).map_err(|e| fail("rename into place", e))
}
