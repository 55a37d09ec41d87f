//! User namespace id maps: written by the parent, outside the container, once the child exists.
//!
//! Order matters. `/proc/PID/setgroups` must say `deny` before an unprivileged writer may write
//! `gid_map` (otherwise a process could drop supplementary groups it was denied by), and each map
//! file takes exactly one write. When the caller may not write the maps itself (ranges beyond its
//! own id), the setuid helpers `newuidmap`/`newgidmap` do it from /etc/subuid and /etc/subgid.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::{Result, SetupError};
use crate::spec::IdMapping;
use crate::sys;

/// Ranges leased to root's containers by default (`io.ns.userns: auto`): 65536 ids each, from
/// 0x60000000 up to 0x6fffffff, inside the span systemd sets aside for containers' ids
/// (524288-1879048191), above what /etc/subuid usually hands out.
pub const AUTO_FIRST: u32 = 0x6000_0000;
pub const AUTO_SIZE: u32 = 65536;
pub const AUTO_SLOTS: u32 = 4095;
/// Where the leases are: one lock file a range, held (flock) as long as the container lives.
pub const LEASE_DIR: &str = "/run/ns-userns";

/// A range of host ids that is this container's alone while the lease is held. The lock is
/// released when the last holder of the descriptor (the helper, then the monitor) ends, even
/// if it is killed: a crash frees the range rather than leaking it.
#[derive(Debug)]
pub struct Lease {
    pub first: u32,
    pub lock: OwnedFd,
}

/// Ranges of /etc/subuid or /etc/subgid: given to users, never leased.
fn subordinate_ranges(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':').skip(1);
            let start: u64 = f.next()?.parse().ok()?;
            let count: u64 = f.next()?.parse().ok()?;
            Some((start, start + count))
        })
        .collect()
}

/// The first free range: each is tried with a non-blocking lock on its file.
pub fn lease_range() -> Result<Lease> {
    let mut taken = Vec::new();
    for f in ["/etc/subuid", "/etc/subgid"] {
        taken.extend(subordinate_ranges(&std::fs::read_to_string(f).unwrap_or_default()));
    }
    if let Err(e) = std::fs::create_dir_all(LEASE_DIR) {
        return Err(SetupError::sys(
            "lease a range of ids in",
            Some(LEASE_DIR),
            sys::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        )
        .with_hint("give the container explicit uid/gid mappings, or run it with userns=host"));
    }
    for slot in 0..AUTO_SLOTS {
        let first = AUTO_FIRST + slot * AUTO_SIZE;
        let (a, b) = (first as u64, first as u64 + AUTO_SIZE as u64);
        if taken.iter().any(|(s, e)| a < *e && *s < b) {
            continue;
        }
        let path = format!("{LEASE_DIR}/{first}");
        let fd = sys::open_mode(&path, libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW, 0o600)
            .map_err(|e| SetupError::sys("lease a range of ids in", Some(&path), e))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Lease { first, lock: fd });
        }
    }
    Err(SetupError::sys("lease a range of ids in", Some(LEASE_DIR), sys::Errno(libc::ENOSPC))
        .with_hint(format!("all {AUTO_SLOTS} ranges are in use by running containers")))
}

/// The text of a map file: one `inside outside count` line per range.
pub fn format_map(maps: &[IdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
}

/// The kernel's limits on a map file: at most 340 lines (UID_GID_MAP_MAX_EXTENTS), written in
/// one write shorter than a page.
pub const MAX_RANGES: usize = 340;

fn page_size() -> usize {
    // SAFETY: plain libc call.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Checks the ranges: within the kernel's limits, non-empty sizes and no overlap on either side.
pub fn validate(field: &str, maps: &[IdMapping]) -> Result<()> {
    if maps.len() > MAX_RANGES {
        return Err(SetupError::config(
            field,
            format!("has {} ranges; the kernel takes at most {MAX_RANGES}", maps.len()),
        ));
    }
    let text = format_map(maps).len();
    let page = page_size();
    if text >= page {
        return Err(SetupError::config(
            field,
            format!(
                "its {} ranges take {text} bytes as a map file; the kernel takes fewer than {page} (one page): use fewer, larger ranges",
                maps.len()
            ),
        ));
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return Err(SetupError::config(format!("{field}[{i}].size"), "must be > 0"));
        }
        for (what, start) in [("containerID", m.container_id), ("hostID", m.host_id)] {
            if (start as u64) + (m.size as u64) > u32::MAX as u64 + 1 {
                return Err(SetupError::config(
                    format!("{field}[{i}].{what}"),
                    "range runs past 4294967295",
                ));
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| {
                (a as u64) < (b as u64 + o.size as u64) && (b as u64) < (a as u64 + m.size as u64)
            };
            if overlap(m.container_id, o.container_id) {
                return Err(SetupError::config(
                    format!("{field}[{i}].containerID"),
                    format!("overlaps {field}[{j}]"),
                ));
            }
            if overlap(m.host_id, o.host_id) {
                return Err(SetupError::config(
                    format!("{field}[{i}].hostID"),
                    format!("overlaps {field}[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

/// How the maps get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The caller writes the files itself (root, or its own single id).
    Direct { deny_setgroups: bool },
    /// Through the setuid helpers newuidmap/newgidmap.
    Helpers,
}

/// Decide who writes the maps for a caller with effective ids `euid`/`egid`.
pub fn choose_writer(euid: u32, egid: u32, uids: &[IdMapping], gids: &[IdMapping]) -> Writer {
    if euid == 0 {
        return Writer::Direct { deny_setgroups: false };
    }
    let only_self =
        |maps: &[IdMapping], id: u32| maps.len() == 1 && maps[0].host_id == id && maps[0].size == 1;
    if only_self(uids, euid) && (gids.is_empty() || only_self(gids, egid)) {
        Writer::Direct { deny_setgroups: true }
    } else {
        Writer::Helpers
    }
}

/// Write the maps of process `pid` (parent side, before the child goes on).
pub fn write_id_maps(
    pid: libc::pid_t,
    uids: &[IdMapping],
    gids: &[IdMapping],
    writer: Writer,
) -> Result<()> {
    match writer {
        Writer::Direct { deny_setgroups } => {
            let uid_path = format!("/proc/{pid}/uid_map");
            sys::write_file(&uid_path, &format_map(uids))
                .map_err(|e| SetupError::sys("write uid_map", Some(&uid_path), e))?;
            if deny_setgroups {
                let p = format!("/proc/{pid}/setgroups");
                sys::write_file(&p, "deny")
                    .map_err(|e| SetupError::sys("write setgroups", Some(&p), e))?;
            }
            if !gids.is_empty() {
                let p = format!("/proc/{pid}/gid_map");
                sys::write_file(&p, &format_map(gids))
                    .map_err(|e| SetupError::sys("write gid_map", Some(&p), e))?;
            }
            Ok(())
        }
        Writer::Helpers => {
            run_map_helper("newuidmap", pid, uids)?;
            if !gids.is_empty() {
                run_map_helper("newgidmap", pid, gids)?;
            }
            Ok(())
        }
    }
}

fn run_map_helper(tool: &str, pid: libc::pid_t, maps: &[IdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.arg(m.container_id.to_string()).arg(m.host_id.to_string()).arg(m.size.to_string());
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| {
        SetupError::sys(format!("run {tool}"), None, sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT))).with_hint(
            format!("mapping more than your own id needs {tool} (package uidmap) and ranges in /etc/subuid and /etc/subgid"),
        )
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let mut e = SetupError::sys(format!("run {tool}"), None, sys::Errno(libc::EPERM));
        e.message = format!("failed to run {tool} for pid {pid}: {msg}");
        return Err(e.with_hint(
            "check that /etc/subuid and /etc/subgid grant the requested ranges to your user",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_read_as_half_open_spans() {
        assert_eq!(
            subordinate_ranges("nstest:100000:65536\nbad line\n\nci:165536:10\n"),
            vec![(100000, 165536), (165536, 165546)]
        );
    }

    fn m(c: u32, h: u32, s: u32) -> IdMapping {
        IdMapping { container_id: c, host_id: h, size: s }
    }

    #[test]
    fn formats_one_line_per_range() {
        assert_eq!(format_map(&[m(0, 1000, 1), m(1, 100000, 65536)]), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn rejects_empty_and_overlapping_ranges() {
        assert_eq!(
            validate("linux.uidMappings", &[m(0, 0, 0)]).unwrap_err().message,
            "linux.uidMappings[0].size: must be > 0"
        );
        let e = validate("linux.uidMappings", &[m(0, 0, 10), m(5, 100, 10)]).unwrap_err();
        assert_eq!(e.message, "linux.uidMappings[1].containerID: overlaps linux.uidMappings[0]");
        let e = validate("linux.gidMappings", &[m(0, 0, 10), m(10, 5, 10)]).unwrap_err();
        assert_eq!(e.message, "linux.gidMappings[1].hostID: overlaps linux.gidMappings[0]");
        assert!(validate("x", &[m(0, u32::MAX, 2)]).is_err());
        assert!(validate("x", &[m(0, 1000, 1), m(1, 100000, 65536)]).is_ok());
    }

    #[test]
    fn refuses_what_the_kernel_would_refuse_naming_the_field() {
        // 341 lines: over the kernel's count.
        let many: Vec<IdMapping> = (0..341).map(|i| m(i, 100_000 + i, 1)).collect();
        assert_eq!(
            validate("linux.uidMappings", &many).unwrap_err().message,
            "linux.uidMappings: has 341 ranges; the kernel takes at most 340"
        );
        // 340 lines, but more than a page of text: the kernel's write fails with EINVAL.
        let long: Vec<IdMapping> = (0..340).map(|i| m(i, 1_000_000 + i, 1)).collect();
        assert!(format_map(&long).len() >= page_size());
        let e = validate("linux.gidMappings", &long).unwrap_err();
        assert!(e.message.starts_with("linux.gidMappings: its 340 ranges take"), "{}", e.message);
        // 340 short lines fit.
        let short: Vec<IdMapping> = (0..340).map(|i| m(i, i, 1)).collect();
        assert!(format_map(&short).len() < page_size());
        assert!(validate("linux.uidMappings", &short).is_ok());
    }

    #[test]
    fn root_writes_directly_and_others_need_helpers_beyond_their_own_id() {
        assert_eq!(
            choose_writer(0, 0, &[m(0, 0, 65536)], &[m(0, 0, 65536)]),
            Writer::Direct { deny_setgroups: false }
        );
        assert_eq!(
            choose_writer(1000, 1000, &[m(0, 1000, 1)], &[m(0, 1000, 1)]),
            Writer::Direct { deny_setgroups: true }
        );
        assert_eq!(
            choose_writer(1000, 1000, &[m(0, 1000, 1), m(1, 100000, 65536)], &[m(0, 1000, 1)]),
            Writer::Helpers
        );
        assert_eq!(choose_writer(1000, 1000, &[m(0, 1001, 1)], &[]), Writer::Helpers);
    }
}
