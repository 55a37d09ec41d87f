//! Descriptors a process holds: closed or marked close-on-exec past a point, all but some, and
//! stdio let go.

use std::os::fd::{AsRawFd, RawFd};

use super::errno::{Errno, SysResult};
use super::file::open;

/// Mark every descriptor from `first` up close-on-exec, so nothing of the runtime's leaks into
/// the container's process.
pub fn cloexec_from(first: u32) -> SysResult<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    close_range_from(first, CLOSE_RANGE_CLOEXEC)
}

/// Close every descriptor from `first` up.
pub fn close_from(first: u32) -> SysResult<()> {
    close_range_from(first, 0)
}

/// Close every descriptor but those in `keep`: what a process holds of its parent's and does
/// not need is gone, rather than left for whoever could reach it.
pub fn close_all_except(keep: &[RawFd]) -> SysResult<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|fd| **fd >= 0).map(|fd| *fd as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 0u32;
    for k in keep {
        if k > from {
            close_range(from, k - 1)?;
        }
        from = k + 1;
    }
    close_range_from(from, 0)
}

/// close_range(first, last, 0), or a walk of the open descriptors where the kernel lacks it.
fn close_range(first: u32, last: u32) -> SysResult<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0 {
        return Ok(());
    }
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::last())?;
    let fds: Vec<RawFd> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if (first..=last).contains(&(fd as u32)) {
            // SAFETY: descriptor numbers of this process, closed on purpose.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// close_range(first, ~0, flags) (0: close; CLOSE_RANGE_CLOEXEC: mark), with a walk of the open
/// descriptors where the kernel lacks it.
fn close_range_from(first: u32, flags: libc::c_uint) -> SysResult<()> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if r == 0 {
        return Ok(());
    }
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::last())?;
    let fds: Vec<RawFd> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd as u32 >= first {
            // SAFETY: descriptor numbers of this process; failure on one closed meanwhile (the
            // directory's own) is harmless.
            unsafe {
                if flags == 0 {
                    libc::close(fd);
                } else {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
    }
    Ok(())
}

/// Close every descriptor from 3 up except `keep`, and point 0, 1 and 2 at /dev/null: what a
/// process that outlives its caller does so it holds none of the caller's files.
pub fn detach_descriptors(keep: RawFd) {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    for fd in fds {
        if fd >= 3 && fd != keep {
            // SAFETY: closing descriptors this process no longer uses.
            unsafe { libc::close(fd) };
        }
    }
    detach_stdio();
}

/// Stdin, stdout and stderr onto /dev/null: what they were (pipes of a caller) is let go.
pub fn detach_stdio() {
    if let Ok(null) = open("/dev/null", libc::O_RDWR) {
        for i in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), i) };
        }
    }
}
