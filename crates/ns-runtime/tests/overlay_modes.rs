//! Every way the runtime gives overlayfs its layers (`overlay::Mode`), mounted for real: paths
//! by `lowerdir+` and as one `lowerdir` string, descriptors by `FSCONFIG_SET_FD` and by their
//! `/proc/self/fd` names, each in a child of its own mount namespace, and what the mount shows
//! checked (the top layer wins, a whiteout hides, the upper layer takes a write). A test binary
//! without the threaded harness (`harness = false`): the children fork from one thread.
//! Needs root (overlayfs with `trusted.*` whiteouts); skipped with the reason otherwise.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ns_runtime::overlay::{self, Mode, Overlay};
use ns_runtime::sys;

fn dir_fd(p: &Path) -> OwnedFd {
    sys::open(p.to_str().unwrap(), libc::O_PATH | libc::O_DIRECTORY).unwrap()
}

/// A detached copy of the directory's mount (what the helper gives overlayfs, less the idmap).
fn tree(p: &Path) -> OwnedFd {
    let fd = dir_fd(p);
    sys::open_tree_clone(fd.as_raw_fd(), false).unwrap()
}

fn check(base: &Path, mode: Mode) -> Result<(), String> {
    let case = base.join(format!("{mode:?}"));
    for d in ["l1/etc", "l2/etc", "c/upper", "c/work", "merged"] {
        std::fs::create_dir_all(case.join(d)).unwrap();
    }
    std::fs::write(case.join("l1/etc/a"), "lower").unwrap();
    std::fs::write(case.join("l1/etc/gone"), "gone").unwrap();
    std::fs::write(case.join("l2/etc/a"), "upper layer").unwrap();
    let wh = std::ffi::CString::new(case.join("l2/etc/gone").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; a 0/0 character device is an overlayfs whiteout.
    assert_eq!(unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR, 0) }, 0);
    let by_fd = matches!(mode, Mode::Fd | Mode::ProcPlus | Mode::ProcJoined);
    // The detached tree the upper and work directories are opened in stays open while the
    // overlay is made: closing it dissolves the tree (and overlayfs cannot clone its mount).
    let c = tree(&case.join("c"));
    let ov = if by_fd {
        let sub = |n: &str| {
            sys::openat2_beneath(c.as_raw_fd(), n, libc::O_PATH | libc::O_DIRECTORY).unwrap()
        };
        let (u, w) = (sub("upper"), sub("work"));
        Overlay::from_fds(vec![tree(&case.join("l1")), tree(&case.join("l2"))], Some((u, w)), false)
    } else {
        let layers: Vec<PathBuf> = vec![case.join("l1"), case.join("l2")];
        Overlay::from_paths(&layers, Some((&case.join("c/upper"), &case.join("c/work"))), false)
            .unwrap()
    };
    let m = ov
        .mount_with(mode, sys::MOUNT_ATTR_NODEV)
        .map_err(|f| format!("{}: errno {} {}", f.step, f.errno, f.log()))?;
    let target = std::ffi::CString::new(case.join("merged").to_str().unwrap()).unwrap();
    overlay::attach(m.as_raw_fd(), &target)
        .map_err(|f| format!("{}: errno {}", f.step, f.errno))?;
    let merged = case.join("merged");
    let a = std::fs::read_to_string(merged.join("etc/a")).map_err(|e| e.to_string())?;
    if a != "upper layer" {
        return Err(format!("etc/a shows {a:?}"));
    }
    if merged.join("etc/gone").exists() {
        return Err("the whiteout does not hide etc/gone".into());
    }
    std::fs::write(merged.join("etc/new"), "w").map_err(|e| e.to_string())?;
    if std::fs::read_to_string(case.join("c/upper/etc/new")).ok().as_deref() != Some("w") {
        return Err("the write did not land in the upper directory".into());
    }
    Ok(())
}

fn main() {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP overlay_modes: needs root (overlayfs with trusted.* whiteouts in a mount namespace)");
        return;
    }
    let base = std::env::temp_dir().join(format!("ns-overlay-modes-{}", std::process::id()));
    let mut failed = Vec::new();
    for mode in [Mode::PathPlus, Mode::PathJoined, Mode::Fd, Mode::ProcPlus, Mode::ProcJoined] {
        let (r, w) = sys::pipe().unwrap();
        let pid = sys::clone_fork(libc::CLONE_NEWNS as u64).unwrap();
        if pid == 0 {
            drop(r);
            let code = match sys::mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None) {
                Err(e) => {
                    let _ = sys::write_all(
                        w.as_raw_fd(),
                        format!("make mounts private: {}", e.name()).as_bytes(),
                    );
                    1
                }
                Ok(()) => match check(&base, mode) {
                    Ok(()) => 0,
                    Err(why) => {
                        let _ = sys::write_all(w.as_raw_fd(), why.as_bytes());
                        1
                    }
                },
            };
            // SAFETY: the child ends here.
            unsafe { libc::_exit(code) };
        }
        drop(w);
        let why = String::from_utf8_lossy(&sys::read_to_end(r.as_raw_fd()).unwrap_or_default())
            .into_owned();
        let (_, status) = sys::waitpid(pid, 0).unwrap();
        let ok = sys::decode_status(status).0 == Some(0);
        println!(
            "overlay mode {mode:?}: {}",
            if ok { "ok".to_owned() } else { format!("FAILED: {why}") }
        );
        if !ok {
            failed.push(mode);
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(failed.is_empty(), "overlay modes failed: {failed:?}");
}
