//! The owners of a rootless store, set from inside a user namespace that maps the caller's
//! `/etc/subuid` and `/etc/subgid` ranges the way its containers will (0 -> the caller, 1.. ->
//! the subordinate range): a file that is uid 33 in the layer is then host uid `start + 32`
//! on disk, which a container of that user sees as 33 through the same maps.
//!
//! The Node process has threads, so it cannot enter a user namespace itself; a child is made
//! with `clone(CLONE_NEWUSER)`, its maps are written from outside (newuidmap/newgidmap for a
//! normal user), and it runs only system calls on memory prepared before the clone (no
//! allocation, no lock), then exits (`ns_runtime::mapped`, which also removes such a tree: a
//! child made the same way executes `rm -rf`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ns_runtime::spec::IdMapping;
use ns_runtime::sys::Errno;

use crate::error::{ImageError, Result};
use crate::extract::Chown;
use crate::fsops::{RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};

/// The id maps of a rootless store for the calling user: its own id as 0, and its
/// subordinate range (if `/etc/subuid` grants one and newuidmap is installed) from 1, as
/// `@ns/core` maps a rootless container.
pub fn maps_for_caller() -> (Vec<IdMapping>, Vec<IdMapping>) {
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut uids = vec![IdMapping { container_id: 0, host_id: euid, size: 1 }];
    let mut gids = vec![IdMapping { container_id: 0, host_id: egid, size: 1 }];
    let name = user_name(euid);
    let helpers = ["newuidmap", "newgidmap"].iter().all(|t| on_path(t));
    if helpers {
        if let Some((s, n)) = subordinate("/etc/subuid", name.as_deref(), euid) {
            uids.push(IdMapping { container_id: 1, host_id: s, size: n });
        }
        if let Some((s, n)) = subordinate("/etc/subgid", name.as_deref(), euid) {
            gids.push(IdMapping { container_id: 1, host_id: s, size: n });
        }
    }
    (uids, gids)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// The first range of an /etc/subuid-style file for the user (by name or number).
fn subordinate(file: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if Some(who) != name && who != uid.to_string() {
            return None;
        }
        let start = f.next()?.parse().ok()?;
        let count = f.next()?.parse().ok()?;
        (count > 0).then_some((start, count))
    })
}

/// The runtime's child in a user namespace (`ns_runtime::mapped`), its errors as image errors.
fn in_userns(
    uids: &[IdMapping],
    gids: &[IdMapping],
    body: impl FnOnce(RawFd),
) -> Result<(i32, Vec<u8>)> {
    ns_runtime::mapped::in_userns(uids, gids, body).map_err(from_setup)
}

fn from_setup(e: ns_runtime::SetupError) -> ImageError {
    let mut ie =
        ImageError::sys(e.step.clone(), e.path.as_deref(), Errno(e.errno.unwrap_or(libc::EPERM)));
    ie.message = e.message;
    ie.hint = e.hint;
    ie
}

const O_PATH_FLAGS: libc::c_int = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
const O_READ_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Set the owners listed in `chowns` on the tree at `root` (the layer's root, a directory
/// descriptor) from inside a user namespace with these maps.
pub fn apply_owners(
    root: &OwnedFd,
    chowns: &[Chown],
    uids: &[IdMapping],
    gids: &[IdMapping],
) -> Result<()> {
    if chowns.is_empty() {
        return Ok(());
    }
    let rootfd = root.as_raw_fd();
    let (code, report) = in_userns(uids, gids, |rep| {
        for (i, ch) in chowns.iter().enumerate() {
            let fail = |step: u32, errno: i32| -> ! {
                let mut rec = [0u8; 12];
                rec[..4].copy_from_slice(&(i as u32).to_ne_bytes());
                rec[4..8].copy_from_slice(&step.to_ne_bytes());
                rec[8..].copy_from_slice(&errno.to_ne_bytes());
                // SAFETY: write of a stack buffer, then exit without unwinding.
                unsafe {
                    libc::write(rep, rec.as_ptr().cast(), rec.len());
                    libc::_exit(1)
                }
            };
            let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            let flags =
                if ch.mode.is_some() || ch.caps.is_some() { O_READ_FLAGS } else { O_PATH_FLAGS };
            let fd = if ch.path.is_empty() {
                // SAFETY: duplicate of a descriptor we hold.
                unsafe { libc::fcntl(rootfd, libc::F_DUPFD_CLOEXEC, 0) }
            } else {
                let how = OpenHow {
                    flags: flags as u64,
                    mode: 0,
                    resolve: RESOLVE_BENEATH
                        | RESOLVE_NO_SYMLINKS
                        | RESOLVE_NO_MAGICLINKS
                        | RESOLVE_NO_XDEV,
                };
                // SAFETY: how is valid for its size; the path is a C string made before the clone.
                unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        rootfd,
                        ch.path.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    ) as libc::c_int
                }
            };
            if fd < 0 {
                fail(0, errno());
            }
            // SAFETY: chown of the node the descriptor names (AT_EMPTY_PATH).
            if unsafe {
                libc::fchownat(
                    fd,
                    c"".as_ptr(),
                    ch.uid,
                    ch.gid,
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            } < 0
            {
                fail(1, errno());
            }
            if let Some(mode) = ch.mode {
                // SAFETY: fchmod of a descriptor opened for reading.
                if unsafe { libc::fchmod(fd, mode) } < 0 {
                    fail(2, errno());
                }
            }
            if let Some(caps) = &ch.caps {
                // SAFETY: the attribute value is memory made before the clone.
                if unsafe {
                    libc::fsetxattr(
                        fd,
                        c"security.capability".as_ptr(),
                        caps.as_ptr().cast(),
                        caps.len(),
                        0,
                    )
                } < 0
                {
                    fail(3, errno());
                }
            }
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
        }
        // SAFETY: exit without running the parent's destructors.
        unsafe { libc::_exit(0) }
    })?;
    if code == 0 {
        return Ok(());
    }
    if report.len() == 12 {
        let at =
            |r: std::ops::Range<usize>| u32::from_ne_bytes(report[r].try_into().unwrap_or([0; 4]));
        let (i, step, errno) = (at(0..4) as usize, at(4..8), at(8..12) as i32);
        let name = chowns.get(i).map(|c| c.path.as_bytes().to_vec()).unwrap_or_default();
        let step = ["open", "set the owner of", "set the mode of", "set security.capability of"]
            [step.min(3) as usize];
        let mut e = ImageError::entry_sys(step, &name, Errno(errno));
        if errno == libc::EINVAL {
            e = e.with_hint("the owner is not mapped in the store's user namespace; check /etc/subuid and /etc/subgid");
        }
        return Err(e);
    }
    Err(ImageError::format(
        "set the owners of the layer",
        None,
        format!("the user namespace child exited with {code}"),
    ))
}

/// Remove the tree at `path` (owned by ids of the maps) from inside a user namespace with
/// these maps, by `rm -rf`.
pub fn remove_tree(path: &std::path::Path, uids: &[IdMapping], gids: &[IdMapping]) -> Result<()> {
    ns_runtime::mapped::remove_tree(path, uids, gids).map_err(from_setup)
}
