//! Mounts: mount(2), the new mount API (open_tree, move_mount, mount_setattr, idmapped trees),
//! pivot_root, chroot and the working directory.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::errno::{check, check_long, cstr, SysResult};

pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> SysResult<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are valid C strings or null.
    check(unsafe { libc::mount(p(&source), target.as_ptr(), p(&fstype), flags, p(&data).cast()) })?;
    Ok(())
}

pub fn umount2(target: &str, flags: libc::c_int) -> SysResult<()> {
    let t = cstr(target)?;
    // SAFETY: t is a valid C string.
    check(unsafe { libc::umount2(t.as_ptr(), flags) })?;
    Ok(())
}

pub fn pivot_root(new_root: &str, put_old: &str) -> SysResult<()> {
    let n = cstr(new_root)?;
    let o = cstr(put_old)?;
    // SAFETY: both are valid C strings.
    check_long(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) })?;
    Ok(())
}

pub fn chroot(path: &str) -> SysResult<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid C string.
    check(unsafe { libc::chroot(c.as_ptr()) })?;
    Ok(())
}

pub fn chdir(path: &str) -> SysResult<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid C string.
    check(unsafe { libc::chdir(c.as_ptr()) })?;
    Ok(())
}

pub fn fchdir(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall on an fd.
    check(unsafe { libc::fchdir(fd) })?;
    Ok(())
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The atime mode, a field of three bits: relatime (0), noatime, strictatime.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)`: set and clear mount attributes (read-only, nosuid, …) of the mount at
/// `dirfd`/`path`. Unlike a bind remount it keeps the flags the kernel locked, so it works
/// inside a user namespace.
pub fn mount_setattr(
    dirfd: RawFd,
    path: &str,
    flags: libc::c_uint,
    set: u64,
    clear: u64,
) -> SysResult<()> {
    let c = cstr(path)?;
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    // SAFETY: attr is a valid struct of the size we pass; c is a valid C string.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Make the detached tree `tree` an idmapped mount through the user namespace `userns` (the
/// ids of its files are seen as that namespace maps them), with `attrs` set at the same time.
pub fn idmap_tree(tree: RawFd, recursive: bool, attrs: u64, userns: RawFd) -> SysResult<()> {
    let empty = c"";
    let flags = libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    let attr = MountAttr {
        attr_set: attrs | MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    // SAFETY: attr is a valid struct of the size we pass; empty is a valid C string.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            empty.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

pub const OPEN_TREE_CLONE: libc::c_uint = 1;
pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount tree at `fd`.
pub fn open_tree_clone(fd: RawFd, recursive: bool) -> SysResult<OwnedFd> {
    let empty = c"";
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: empty is a valid C string.
    let r = check_long(unsafe { libc::syscall(libc::SYS_open_tree, fd, empty.as_ptr(), flags) })?;
    // SAFETY: the kernel returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `move_mount(2)` of the detached tree `from` onto the directory or file `to`.
pub fn move_mount(from: RawFd, to: RawFd) -> SysResult<()> {
    let empty = c"";
    // SAFETY: valid descriptors and C strings.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            empty.as_ptr(),
            to,
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}
