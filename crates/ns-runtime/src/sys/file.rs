//! Files and pipes: open, read, write.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::errno::{check, check_long, cstr, retry, SysResult};

pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice.
        let n = retry(|| {
            check_long(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as libc::c_long)
        })?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid mutable slice.
    retry(|| {
        check_long(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as libc::c_long)
    })
    .map(|n| n as usize)
}

/// Read until end of file.
pub fn read_to_end(fd: RawFd) -> SysResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = read(fd, &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn open(path: &str, flags: libc::c_int) -> SysResult<OwnedFd> {
    open_mode(path, flags, 0o644)
}

/// `openat(2)` of `name` in the directory `dirfd` (close-on-exec).
pub fn openat(dirfd: RawFd, name: &str, flags: libc::c_int) -> SysResult<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: c is a valid C string.
    let fd = check(unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: openat returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open` with the mode a created file gets.
pub fn open_mode(path: &str, flags: libc::c_int, mode: libc::mode_t) -> SysResult<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: c is a valid C string.
    let fd =
        check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    // SAFETY: open returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn write_file(path: &str, data: &str) -> SysResult<()> {
    let fd = open(path, libc::O_WRONLY)?;
    write_all(fd.as_raw_fd(), data.as_bytes())
}

/// `fstat(2)`.
pub fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: st is written by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}
