//! The resolver's pid file, `NETWORK.pid`: it holds a POSIX write lock on it for as long as it
//! runs. The lock, not the text, says whether a resolver runs and which process it is
//! (`F_GETLK` names the holder's pid), so a stale file or a reused pid is never mistaken for a
//! live resolver; the kernel drops the lock when the process ends, however it ends.
//!
//! A POSIX lock belongs to a process and goes when that process closes any descriptor of the
//! file, so [`holder`] must not be called by the process that holds the lock (the resolver
//! never does; tests that run a resolver on a thread pass no pid file).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

pub struct PidLock {
    file: File,
    path: PathBuf,
    identity: (u64, u64),
}

fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain data; zero is a valid start for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

impl PidLock {
    /// Lock the pid file and write our pid in it; an error naming the holder when another
    /// resolver has it.
    pub fn acquire(path: &Path) -> Result<PidLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| Error::path("open pid file", path, &e))?;
        let fl = whole_file_lock(libc::F_WRLCK);
        // SAFETY: fcntl with a flock that lives across the call.
        let r =
            sys::retry(|| sys::cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) }));
        if let Err(e) = r {
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
                let who = holder(path)
                    .ok()
                    .flatten()
                    .map_or("another process".into(), |p| format!("pid {p}"));
                return Err(Error::path("lock pid file", path, &e)
                    .with_hint(format!("a resolver already runs for this network ({who})")));
            }
            return Err(Error::path("lock pid file", path, &e));
        }
        file.set_len(0).map_err(|e| Error::path("truncate pid file", path, &e))?;
        writeln!(file, "{}", std::process::id())
            .map_err(|e| Error::path("write pid file", path, &e))?;
        let identity = sys::fd_identity(file.as_raw_fd())
            .map_err(|e| Error::path("stat pid file", path, &e))?;
        Ok(PidLock { file, path: path.to_owned(), identity })
    }

    /// Whether the path still names the file we locked: a pid file removed, or replaced by
    /// another resolver's, means this one was taken over and must go.
    pub fn still_ours(&self) -> bool {
        let Ok(path) = sys::cstring(&self.path) else { return false };
        match sys::stamp(&path) {
            Ok(Some(s)) => (s.dev, s.ino) == self.identity,
            Ok(None) => false,
            // Cannot tell (EACCES, EIO): keep running rather than exit on a hiccup.
            Err(_) => true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The pid of the process holding the pid file's lock: the running resolver, if any.
pub fn holder(path: &Path) -> Result<Option<i32>> {
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::path("open pid file", path, &e)),
    };
    let mut fl = whole_file_lock(libc::F_WRLCK);
    // SAFETY: F_GETLK writes into our flock.
    sys::retry(|| sys::cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) }))
        .map_err(|e| Error::path("query pid file lock", path, &e))?;
    if fl.l_type as libc::c_int == libc::F_UNLCK {
        return Ok(None);
    }
    Ok(Some(fl.l_pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The lock seen from another process (holder names the resolver's pid, a second resolver
    // is refused) is tested with the real resolver in tests/resolver.rs.
    #[test]
    fn a_pid_without_the_lock_is_stale_and_a_removed_file_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("ns-dns-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.pid");
        assert_eq!(holder(&path).unwrap(), None);
        std::fs::write(&path, "1\n").unwrap();
        assert_eq!(holder(&path).unwrap(), None, "a pid in the file without the lock is stale");
        let lock = PidLock::acquire(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        assert!(lock.still_ours());
        std::fs::remove_file(&path).unwrap();
        assert!(!lock.still_ours(), "a removed pid file means taken over");
        drop(lock);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
