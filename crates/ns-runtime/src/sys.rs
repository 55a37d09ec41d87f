//! Thin, typed wrappers over the system calls the runtime makes. Each returns the errno on
//! failure and never panics; the callers attach the step and path (see `error::Context`).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub fn last() -> Self {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    /// The symbolic name of the errno, `E?` followed by the number when it is not a common one.
    pub fn name(&self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::E2BIG => "E2BIG",
            libc::ENOEXEC => "ENOEXEC",
            libc::EBADF => "EBADF",
            libc::ECHILD => "ECHILD",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::EXDEV => "EXDEV",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::ETXTBSY => "ETXTBSY",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ELOOP => "ELOOP",
            libc::EUSERS => "EUSERS",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            _ => "EUNKNOWN",
        }
    }

    /// The C library's description, lowercased: `invalid argument`.
    pub fn describe(&self) -> String {
        // SAFETY: strerror returns a pointer to a static or thread-local string.
        let s = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        s.to_string_lossy().to_lowercase()
    }
}

pub type SysResult<T> = Result<T, Errno>;

fn check(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

pub fn cstr(s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| Errno(libc::EINVAL))
}

/// Retry a call while it is interrupted by a signal.
pub fn retry<T>(mut f: impl FnMut() -> SysResult<T>) -> SysResult<T> {
    loop {
        match f() {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

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

/// `fstat(2)`.
pub fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: st is written by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
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

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(2)` used like `fork(2)` (no new stack): returns 0 in the child, the child's pid in the
/// parent. Only call this from a single-threaded process. Falls back to `clone(2)` where clone3
/// is missing.
pub fn clone_fork(flags: u64) -> SysResult<libc::pid_t> {
    clone_fork_into(flags, None)
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone_fork`, the child born in the cgroup v2 folder `cgroup` (CLONE_INTO_CGROUP) if given.
pub fn clone_fork_into(flags: u64, cgroup: Option<RawFd>) -> SysResult<libc::pid_t> {
    let mut args = CloneArgs { flags, exit_signal: libc::SIGCHLD as u64, ..Default::default() };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args of the size we pass; with no stack the child continues
    // on a copy of ours, exactly like fork.
    let r = unsafe {
        libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>())
    };
    if r >= 0 {
        return Ok(r as libc::pid_t);
    }
    let e = Errno::last();
    if e.0 != libc::ENOSYS || cgroup.is_some() {
        return Err(e);
    }
    // SAFETY: clone with a null stack behaves like fork.
    let r = unsafe {
        libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0usize, 0usize, 0usize, 0usize)
    };
    check_long(r).map(|r| r as libc::pid_t)
}

pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> SysResult<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: status is a valid int.
    let r = retry(|| check(unsafe { libc::waitpid(pid, &mut status, flags) }))?;
    Ok((r, status))
}

/// Split a wait status into (exit code, terminating signal).
pub fn decode_status(status: libc::c_int) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

pub fn set_pdeathsig(sig: libc::c_int) -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

pub fn sethostname(name: &str) -> SysResult<()> {
    // SAFETY: pointer and length of a valid buffer.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

pub fn setdomainname(name: &str) -> SysResult<()> {
    // SAFETY: pointer and length of a valid buffer.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

pub fn unshare(flags: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::unshare(flags) })?;
    Ok(())
}

pub fn setns(fd: RawFd, nstype: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setns(fd, nstype) })?;
    Ok(())
}

/// Bring the loopback interface of the current network namespace up.
pub fn loopback_up() -> SysResult<()> {
    // SAFETY: socket/ioctl on a struct we own; the fd is wrapped at once.
    let sock =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

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

/// Forget the environment this process was started with: libc's copy is cleared, and the
/// block the kernel shows as /proc/PID/environ (the initial stack's strings) is zeroed, so
/// that nothing of the caller's variables can be read from this process any more.
pub fn scrub_environment() {
    // SAFETY: single-threaded here (a fresh clone); clearenv only resets libc's table.
    unsafe { libc::clearenv() };
    let Some((start, end)) = environment_block() else { return };
    if end > start {
        // SAFETY: [start, end) is the environment block of this process's initial stack, as
        // the kernel reports it: mapped and writable, and no longer referenced by libc.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    }
}

/// Where the kernel says this process's environment strings are: fields 50 and 51 of
/// /proc/self/stat (env_start, env_end).
fn environment_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let start = fields.get(50 - 3)?.parse().ok()?;
    let end = fields.get(51 - 3)?.parse().ok()?;
    Some((start, end))
}

/// PR_SET_DUMPABLE: whether processes of the same user may ptrace this one, read its memory,
/// environment and descriptors through /proc, or take its descriptors (pidfd_getfd). Once
/// off, only CAP_SYS_PTRACE in the user namespace that owns the process's memory allows it.
pub fn set_dumpable(on: bool) -> SysResult<()> {
    // SAFETY: plain prctl.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) })?;
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

/// Send `data` as one message on the socket `sock` (MSG_NOSIGNAL: a gone peer is EPIPE).
pub fn send_msg(sock: RawFd, data: &[u8]) -> SysResult<()> {
    // SAFETY: sending a valid buffer of the length passed.
    retry(|| {
        check_long(
            unsafe { libc::send(sock, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) }
                as libc::c_long,
        )
    })?;
    Ok(())
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) })?;
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

/// A message header over `iov` with room for `n` descriptors in `cbuf` (SCM_RIGHTS).
fn fd_msghdr(iov: &mut libc::iovec, cbuf: &mut Vec<u8>, n: usize) -> libc::msghdr {
    // SAFETY: CMSG_SPACE is a pure computation; a zeroed msghdr is a valid empty one.
    let space = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) } as usize;
    cbuf.resize(space, 0);
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    msg
}

/// Send `fd` over the unix socket `sock` (SCM_RIGHTS), with `payload` as the message.
pub fn send_fd(sock: RawFd, fd: RawFd, payload: &[u8]) -> SysResult<()> {
    send_fds(sock, &[fd], payload)
}

/// Send `fds` (at least one) over the unix socket `sock` in one message, with `payload`.
pub fn send_fds(sock: RawFd, fds: &[RawFd], payload: &[u8]) -> SysResult<()> {
    send_fds_counted(sock, fds, payload).map(|_| ())
}

/// `send_fds`, saying how much of `payload` went (a stream socket may take less at once).
pub fn send_fds_counted(sock: RawFd, fds: &[RawFd], payload: &[u8]) -> SysResult<usize> {
    let dummy = [0u8; 1];
    let data = if payload.is_empty() { &dummy[..] } else { payload };
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let mut cbuf = Vec::new();
    let msg = fd_msghdr(&mut iov, &mut cbuf, fds.len().max(1));
    // SAFETY: msg points at valid buffers for the duration of sendmsg; the control header is
    // filled through the CMSG macros within cbuf, which has room for every descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        let data = libc::CMSG_DATA(cmsg) as *mut RawFd;
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i), *fd);
        }
        let n =
            retry(|| check_long(libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) as libc::c_long))?;
        Ok(if payload.is_empty() { 0 } else { n as usize })
    }
}

/// Receive one descriptor sent with `send_fd`; None when the peer closed without sending.
pub fn recv_fd(sock: RawFd) -> SysResult<Option<OwnedFd>> {
    let mut buf = [0u8; 256];
    Ok(recv_fds(sock, &mut buf, 1)?.and_then(|(_, fds)| fds.into_iter().next()))
}

/// Receive one message into `buf` with the descriptors sent along (at most `max_fds`; they
/// are close-on-exec): its length and the descriptors, or None at the end of the stream.
/// A message longer than `buf` is an error (EMSGSIZE), its descriptors closed.
pub fn recv_fds(
    sock: RawFd,
    buf: &mut [u8],
    max_fds: usize,
) -> SysResult<Option<(usize, Vec<OwnedFd>)>> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cbuf = Vec::new();
    let mut msg = fd_msghdr(&mut iov, &mut cbuf, max_fds.max(1));
    // SAFETY: msg points at valid buffers; the control data is read through the CMSG macros,
    // each descriptor taken once into an OwnedFd.
    unsafe {
        let n = retry(|| {
            check_long(libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) as libc::c_long)
        })?;
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(Errno(libc::EMSGSIZE));
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        Ok(Some((n as usize, fds)))
    }
}

/// A new pseudo-terminal from the devpts instance behind `/dev/ptmx`: (master, slave).
pub fn open_pty() -> SysResult<(OwnedFd, OwnedFd)> {
    let master = open("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on the master we own with valid argument pointers.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // TIOCGPTPEER opens the slave without a path lookup that could be raced.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let slave = if slave >= 0 {
        // SAFETY: a fresh descriptor.
        unsafe { OwnedFd::from_raw_fd(slave) }
    } else {
        let mut n: libc::c_uint = 0;
        // SAFETY: as above.
        check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
        open(&format!("/dev/pts/{n}"), libc::O_RDWR | libc::O_NOCTTY)?
    };
    Ok((master, slave))
}

pub fn get_winsize(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: ws is written by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: a valid winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// Drop this process's references to the code pages of its file mappings (the binary, libc): a
/// process that will mostly sleep in poll gives back what set-up touched, and faults in again
/// only the little it runs. The pages stay in the page cache for everyone else.
pub fn release_file_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        // Only code (r-x, never written: no text relocations in PIE): its pages come back from
        // the file exactly as they were. Read-only data may hold relocations (RELRO): kept.
        if inode == "0" || perms != "r-xp" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: code mappings of our own: dropping their pages loses nothing, the next
        // access reads them again from the page cache.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}
