//! Paths resolved under a directory descriptor: openat2 in a root or beneath one, and what is made
//! at a descriptor (directories, nodes, files, links).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::errno::{check, check_long, cstr, retry, Errno, SysResult};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(2)` resolving `path` as if `dirfd` were the root: `..` and absolute symlinks cannot
/// leave it. This is how mount targets inside a rootfs are found.
pub fn openat2_in_root(dirfd: RawFd, path: &str, flags: libc::c_int) -> SysResult<OwnedFd> {
    openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

pub const RESOLVE_BENEATH: u64 = 0x08;

/// `openat2(2)` of `path` (relative) beneath `dirfd`: a `..` or a symlink that would leave it
/// (any absolute one, any magic link) fails with EXDEV instead of being followed out.
pub fn openat2_beneath(dirfd: RawFd, path: &str, flags: libc::c_int) -> SysResult<OwnedFd> {
    // EAGAIN: a rename or mount anywhere raced with a `..` of the walk; the kernel asks for a
    // retry rather than risk a wrong answer.
    let mut tries = 0;
    loop {
        match openat2(dirfd, path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) {
            Err(Errno(libc::EAGAIN)) if tries < 1000 => tries += 1,
            r => return r,
        }
    }
}

fn openat2(dirfd: RawFd, path: &str, flags: libc::c_int, resolve: u64) -> SysResult<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    // SAFETY: how is valid for its size; c is a valid C string.
    let r = retry(|| {
        check_long(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        })
    })?;
    // SAFETY: the kernel returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn mkdirat(dirfd: RawFd, name: &str, mode: libc::mode_t) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dirfd, c.as_ptr(), mode) })?;
    Ok(())
}

/// `mknodat(2)`: a device node or fifo `name` in `dirfd` (`mode` holds its type and bits).
pub fn mknodat(dirfd: RawFd, name: &str, mode: libc::mode_t, dev: libc::dev_t) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dirfd, c.as_ptr(), mode, dev) })?;
    Ok(())
}

pub fn create_file_at(dirfd: RawFd, name: &str, mode: libc::mode_t) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    let fd = check(unsafe {
        libc::openat(
            dirfd,
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn symlinkat(target: &str, dirfd: RawFd, name: &str) -> SysResult<()> {
    let t = cstr(target)?;
    let n = cstr(name)?;
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(t.as_ptr(), dirfd, n.as_ptr()) })?;
    Ok(())
}

/// The path `/proc/self/fd/N` through which the kernel reaches an open descriptor.
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

pub fn is_dir_fd(fd: RawFd) -> SysResult<bool> {
    // SAFETY: st is written by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}
