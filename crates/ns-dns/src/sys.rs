//! The few system calls the crate makes that std does not wrap: advisory locks, inotify, a
//! cheap stat, random bytes. Each returns an `io::Error` on failure and never panics; callers
//! attach the step and path.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retry a call interrupted by a signal.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub(crate) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `flock(LOCK_EX)`, waiting when `wait`; `Ok(false)` when not waiting and the lock is held
/// elsewhere. flock locks belong to the open file, so two threads of one process exclude each
/// other too (fcntl locks would not).
pub(crate) fn flock_exclusive(file: &File, wait: bool) -> io::Result<bool> {
    let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    // SAFETY: flock on a descriptor we own; no memory is passed.
    match retry(|| cvt(unsafe { libc::flock(file.as_raw_fd(), op) })) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Identity and version of a file: a write-then-rename gives a new inode, so comparing these
/// notices every replacement, even two within one timestamp tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: i64,
    pub mtime: (i64, i64),
}

/// `stat(path)`: `Ok(None)` when it does not exist.
pub(crate) fn stamp(path: &CString) -> io::Result<Option<FileStamp>> {
    // SAFETY: a zeroed stat is a valid out-parameter; the path is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; stat writes only into st.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(FileStamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size,
        mtime: (st.st_mtime, st.st_mtime_nsec),
    }))
}

/// `fstat(fd)`'s device and inode.
pub(crate) fn fd_identity(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only into st.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev, st.st_ino))
}

/// Random bytes from the kernel (query ids sent upstream must not be guessable).
pub(crate) fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most the given length into our buffer.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n <= 0 {
            // Never expected; fall back to something that still varies.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = (t >> ((i % 8) * 8)) as u8 ^ std::process::id() as u8;
            }
            return;
        }
        filled += n as usize;
    }
}

pub(crate) fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    random_bytes(&mut b);
    u16::from_ne_bytes(b)
}

/// An inotify instance watching one directory.
pub(crate) struct Inotify {
    fd: OwnedFd,
}

/// One event: its mask and the name in the directory it concerns (empty for the directory).
pub(crate) struct InotifyEvent {
    pub mask: u32,
    pub name: Vec<u8>,
}

impl Inotify {
    pub(crate) fn watch_dir(dir: &Path, mask: u32) -> io::Result<Inotify> {
        // SAFETY: plain syscall; the result is checked before it is owned.
        let fd = cvt(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = cstring(dir)?;
        // SAFETY: fd is an inotify instance; path is NUL-terminated.
        cvt(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) })?;
        Ok(Inotify { fd })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The events queued now (none when the queue is empty).
    pub(crate) fn read_events(&self) -> io::Result<Vec<InotifyEvent>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: read into our buffer, at most its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(out),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            let data = &buf[..n as usize];
            let header = std::mem::size_of::<libc::inotify_event>();
            let mut pos = 0;
            while pos + header <= data.len() {
                let field = |at: usize| {
                    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                };
                // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
                let mask = field(pos + 4);
                let len = field(pos + 12) as usize;
                let name_bytes = data.get(pos + header..pos + header + len).unwrap_or(&[]);
                let name = name_bytes.split(|&b| b == 0).next().unwrap_or(&[]).to_vec();
                out.push(InotifyEvent { mask, name });
                pos += header + len;
            }
            if n == 0 {
                return Ok(out);
            }
        }
    }
}
