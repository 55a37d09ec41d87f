//! The system calls of extraction, each working on a directory descriptor and one name (never a
//! path that the kernel would walk through links), or on `openat2` resolved beneath the layer.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use ns_runtime::sys::{Errno, SysResult};

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;

fn check(r: libc::c_int) -> SysResult<libc::c_int> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn retry(mut f: impl FnMut() -> libc::c_int) -> SysResult<libc::c_int> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// A C string of a name from a layer (a NUL inside is EINVAL, as the kernel would say).
pub fn c(name: &[u8]) -> SysResult<CString> {
    CString::new(name).map_err(|_| Errno(libc::EINVAL))
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`: `path` resolved from `dirfd` under the `resolve` rules (always close-on-exec).
pub fn openat2(dirfd: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> SysResult<OwnedFd> {
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    let r = retry(|| {
        // SAFETY: how is a valid open_how of the size passed; path is a valid C string.
        unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            ) as libc::c_int
        }
    })?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// `openat(2)` of one name in `dirfd`, close-on-exec.
pub fn openat(dirfd: RawFd, name: &CStr, flags: libc::c_int, mode: u32) -> SysResult<OwnedFd> {
    // SAFETY: name is a valid C string.
    let r = retry(|| unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

pub fn mkdirat(dirfd: RawFd, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dirfd: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> SysResult<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dirfd, name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dirfd: RawFd, name: &CStr) -> SysResult<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dirfd, name.as_ptr()) }).map(drop)
}

/// A hard link `newdir/newname` to `olddir/oldname`; a symlink there is linked, not followed.
pub fn linkat(olddir: RawFd, oldname: &CStr, newdir: RawFd, newname: &CStr) -> SysResult<()> {
    // SAFETY: valid C strings; flags 0: the last component is never followed.
    check(unsafe { libc::linkat(olddir, oldname.as_ptr(), newdir, newname.as_ptr(), 0) }).map(drop)
}

pub fn unlinkat(dirfd: RawFd, name: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::unlinkat(dirfd, name.as_ptr(), flags) }).map(drop)
}

/// `fstatat(2)` of one name, not following a symlink there (`""` with AT_EMPTY_PATH: `dirfd`).
pub fn lstatat(dirfd: RawFd, name: &CStr) -> SysResult<libc::stat> {
    // SAFETY: st is written by the kernel; name is a valid C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    check(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor.
    check(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

pub fn lchownat(dirfd: RawFd, name: &CStr, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: valid C string; the last component is not followed.
    check(unsafe { libc::fchownat(dirfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

pub fn fchmod(fd: RawFd, mode: u32) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor.
    check(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// chmod of one name in `dirfd` that is known not to be a symlink (a node just made).
pub fn fchmodat(dirfd: RawFd, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::fchmodat(dirfd, name.as_ptr(), mode, 0) }).map(drop)
}

pub fn timespec(secs: i64, nsec: i64) -> libc::timespec {
    libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: nsec as libc::c_long }
}

pub fn futimens(fd: RawFd, t: &[libc::timespec; 2]) -> SysResult<()> {
    // SAFETY: t points to two timespecs.
    check(unsafe { libc::futimens(fd, t.as_ptr()) }).map(drop)
}

pub fn lutimensat(dirfd: RawFd, name: &CStr, t: &[libc::timespec; 2]) -> SysResult<()> {
    // SAFETY: valid C string; t points to two timespecs.
    check(unsafe { libc::utimensat(dirfd, name.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

pub fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> SysResult<()> {
    // SAFETY: valid C string; value is a valid slice of its length.
    check(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

/// setxattr on one name of `dirfd` without following it (symlinks, devices, fifos, which have
/// no descriptor to write through): the kernel walks `/proc/self/fd/N` to the directory itself.
pub fn lsetxattrat(dirfd: RawFd, name: &[u8], xname: &CStr, value: &[u8]) -> SysResult<()> {
    let mut p = format!("/proc/self/fd/{dirfd}/").into_bytes();
    p.extend_from_slice(name);
    let p = c(&p)?;
    // SAFETY: valid C strings; value is a valid slice of its length.
    check(unsafe {
        libc::lsetxattr(p.as_ptr(), xname.as_ptr(), value.as_ptr().cast(), value.len(), 0)
    })
    .map(drop)
}

/// Write all of `buf` at the descriptor's offset.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub fn lseek_cur(fd: RawFd, off: i64) -> SysResult<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::lseek(fd, off as libc::off_t, libc::SEEK_CUR) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

pub fn ftruncate(fd: RawFd, len: u64) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::ftruncate(fd, len as libc::off_t) }).map(drop)
}

pub fn syncfs(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::syncfs(fd) }).map(drop)
}

pub fn fsync(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fsync(fd) }).map(drop)
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Remove `name` in `dirfd`, a whole tree if it is a directory, without ever following a link:
/// each directory is opened with O_NOFOLLOW from its parent's descriptor.
pub fn remove_tree_at(dirfd: RawFd, name: &CStr) -> SysResult<()> {
    let st = match lstatat(dirfd, name) {
        Ok(st) => st,
        Err(e) if e.0 == libc::ENOENT => return Ok(()),
        Err(e) => return Err(e),
    };
    if !is_dir(&st) {
        return unlinkat(dirfd, name, 0);
    }
    let dir = openat(dirfd, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
    empty_dir(&dir)?;
    unlinkat(dirfd, name, libc::AT_REMOVEDIR)
}

/// Remove everything inside the directory `dir`.
pub fn empty_dir(dir: &OwnedFd) -> SysResult<()> {
    loop {
        let names = list_dir(dir.as_raw_fd())?;
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            remove_tree_at(dir.as_raw_fd(), &n)?;
        }
    }
}

/// The names in a directory (without `.` and `..`), read through a duplicate of `fd`.
pub fn list_dir(fd: RawFd) -> SysResult<Vec<CString>> {
    // SAFETY: the duplicate is handed to fdopendir, which owns it until closedir.
    let dup = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: dup is a fresh descriptor of a directory.
    let d = unsafe { libc::fdopendir(dup) };
    if d.is_null() {
        let e = Errno::last();
        // SAFETY: dup is still ours when fdopendir failed.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    // SAFETY: d is a valid DIR*; rewind so a reused descriptor lists from the start.
    unsafe { libc::rewinddir(d) };
    let mut out = Vec::new();
    loop {
        // SAFETY: d is valid; readdir returns null at the end.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated array inside the entry.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            out.push(name.to_owned());
        }
    }
    // SAFETY: d is valid and closed once.
    unsafe { libc::closedir(d) };
    Ok(out)
}
