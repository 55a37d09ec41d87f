//! Processes and namespaces: clone3, wait, kill, the parent-death signal, host and domain names,
//! unshare, setns, dumpability, the environment block and the memory a sleeping process keeps.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::errno::{check, check_long, retry, Errno, SysResult};

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

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) })?;
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
