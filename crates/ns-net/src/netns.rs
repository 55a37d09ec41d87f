//! Network namespaces by descriptor: open one, and run a step inside one on this thread.
//!
//! `setns(CLONE_NEWNET)` moves only the calling thread, so a single-threaded helper can step
//! into a container's namespace, make a socket there, and step back; the socket stays bound to
//! the namespace it was made in.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Errno, NetError, Result};

fn open_path(path: &str) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(path)
        .map_err(|_| NetError::config("netns", "path holds a NUL byte"))?;
    // SAFETY: open with a valid C string; the fd is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(NetError::sys("open network namespace", Some(path), Errno::last()));
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The network namespace of process `pid` (`/proc/PID/ns/net`).
pub fn of_pid(pid: libc::pid_t) -> Result<OwnedFd> {
    open_path(&format!("/proc/{pid}/ns/net"))
}

/// The network namespace of a path (`/proc/PID/ns/net`, a bind mount of one).
pub fn open(path: &str) -> Result<OwnedFd> {
    open_path(path)
}

/// This thread's network namespace.
pub fn current() -> Result<OwnedFd> {
    open_path("/proc/thread-self/ns/net")
}

fn setns(fd: BorrowedFd<'_>) -> std::result::Result<(), Errno> {
    // SAFETY: plain syscall on a descriptor we borrow.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Runs `f` with this thread inside the network namespace `ns`, then returns to the
/// namespace it was in. If the way back fails the thread would be left in the wrong
/// namespace: that is reported as an error (and `f`'s result dropped), never ignored.
pub fn run_in<T>(ns: BorrowedFd<'_>, f: impl FnOnce() -> T) -> Result<T> {
    let home = current()?;
    setns(ns).map_err(|e| NetError::sys("enter network namespace", None, e))?;
    let out = f();
    setns(home.as_fd()).map_err(|e| {
        NetError::sys("return to the helper's network namespace", None, e)
            .with_hint("this thread is left in another network namespace and must not go on")
    })?;
    Ok(out)
}

/// The inode of a namespace fd: two fds name the same namespace when their inodes are equal.
pub fn inode(fd: BorrowedFd<'_>) -> Result<u64> {
    // SAFETY: fstat writes a stat of the size given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(NetError::sys("stat network namespace", None, Errno::last()));
    }
    Ok(st.st_ino)
}
