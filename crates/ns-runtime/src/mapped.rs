//! Work done as the ids of a user namespace: a child in a new user namespace whose maps are
//! written from outside (newuidmap/newgidmap for a normal user), which runs only system calls
//! on memory prepared before the clone (no allocation, no lock: the caller may be a threaded
//! process, Node), then exits. A tree owned by the subordinate ids of a normal user (a
//! rootless image layer, a rootless container's writable layer) can only be removed this way.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use crate::error::{Result, SetupError};
use crate::idmap;
use crate::spec::IdMapping;
use crate::sys::{self, Errno};

/// A child in a new user namespace with `uids`/`gids` written, running `body` (which must
/// only make system calls; the child exits with `_exit` after it). Returns its exit status
/// (128 + N for a signal) and what it wrote to its report descriptor.
pub fn in_userns(
    uids: &[IdMapping],
    gids: &[IdMapping],
    body: impl FnOnce(RawFd),
) -> Result<(i32, Vec<u8>)> {
    let err = |step: &str, e: Errno| SetupError::sys(step, None, e);
    let (go_r, go_w) = sys::pipe().map_err(|e| err("create a pipe", e))?;
    let (rep_r, rep_w) = sys::pipe().map_err(|e| err("create a pipe", e))?;
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let writer = idmap::choose_writer(euid, egid, uids, gids);
    let pid = sys::clone_fork(libc::CLONE_NEWUSER as u64).map_err(|e| {
        err("create a user namespace", e).with_hint(
            "user namespaces must be allowed (user.max_user_namespaces > 0, and no AppArmor restriction)",
        )
    })?;
    if pid == 0 {
        // Child: wait until the maps are written (EOF: the parent gave up), then work.
        drop(go_w);
        let mut b = [0u8; 1];
        // SAFETY: read into a stack buffer.
        let n = unsafe { libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if n != 1 {
            // SAFETY: leaving the child without running anything of the parent's.
            unsafe { libc::_exit(3) };
        }
        body(rep_w.as_raw_fd());
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    drop(go_r);
    drop(rep_w);
    let mapped = idmap::write_id_maps(pid, uids, gids, writer);
    if mapped.is_ok() {
        let _ = sys::write_all(go_w.as_raw_fd(), b"g");
    }
    drop(go_w);
    let report = sys::read_to_end(rep_r.as_raw_fd()).unwrap_or_default();
    let (_, status) =
        sys::waitpid(pid, 0).map_err(|e| err("wait for the user namespace child", e))?;
    mapped?;
    let code = match sys::decode_status(status) {
        (Some(c), _) => c,
        (_, Some(sig)) => 128 + sig,
        _ => 255,
    };
    Ok((code, report))
}

/// Remove the tree at `path` (owned by ids of the maps) from inside a user namespace with
/// these maps, by `rm -rf --one-file-system`.
pub fn remove_tree(path: &Path, uids: &[IdMapping], gids: &[IdMapping]) -> Result<()> {
    let shown = path.display().to_string();
    let rm = ["/usr/bin/rm", "/bin/rm"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| SetupError::sys("find rm to remove", Some(&shown), Errno(libc::ENOENT)))?;
    let prog = CString::new(rm).map_err(|_| SetupError::config("path", "contains a NUL byte"))?;
    let target = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| SetupError::config("path", "contains a NUL byte"))?;
    let args = [
        c"rm".as_ptr(),
        c"-rf".as_ptr(),
        c"--one-file-system".as_ptr(),
        c"--".as_ptr(),
        target.as_ptr(),
        std::ptr::null(),
    ];
    let env = [c"PATH=/usr/bin:/bin".as_ptr(), c"LC_ALL=C".as_ptr(), std::ptr::null()];
    let (code, _) = in_userns(uids, gids, |_| {
        // SAFETY: every pointer is a C string (or array) made before the clone.
        unsafe {
            libc::execve(prog.as_ptr(), args.as_ptr(), env.as_ptr());
            libc::_exit(127)
        }
    })?;
    if code != 0 {
        let mut e = SetupError::sys("remove", Some(&shown), Errno(libc::EIO));
        e.message =
            format!("failed to remove {shown}: rm -rf exited with {code} in its user namespace");
        return Err(e);
    }
    Ok(())
}
