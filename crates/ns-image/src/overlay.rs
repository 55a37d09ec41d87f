//! Overlay mounts of image layers, for callers of the image store: the options of `mount(2)`
//! for a few layers, a detached mount of any number (the new mount API, one `lowerdir+` a
//! layer, from `ns_runtime::overlay`, which containers' roots are made with too), and a probe
//! that mounts an overlay for real, in a child of its own, and checks what it shows.
//!
//! Layers are given in image order (base first, as the manifest and `rootfs.diff_ids` list
//! them); overlayfs wants the topmost lower layer first, which the runtime's module does.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use ns_runtime::idmap;
use ns_runtime::overlay::{self as ovl, MountFailure, Overlay};
use ns_runtime::spec::IdMapping;
use ns_runtime::sys::{self, Errno};

use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

/// The page `mount(2)` copies its options into: longer options are cut by the kernel.
pub const MOUNT_DATA_MAX: usize = ovl::MOUNT_DATA_MAX;

#[derive(Debug, Clone, Default)]
pub struct OverlaySpec {
    /// Lower directories in image order, base first (for a layer directory: its `diff/`).
    pub layers: Vec<PathBuf>,
    /// The container's writable layer and overlayfs' work directory (same filesystem); both
    /// absent for a read-only overlay (which needs at least two layers).
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    /// `userxattr`: overlay attributes in `user.overlay.*` (a mount inside a user namespace).
    pub userxattr: bool,
}

impl OverlaySpec {
    fn upper_work(&self) -> Result<Option<(&Path, &Path)>> {
        match (&self.upper, &self.work) {
            (Some(u), Some(w)) => Ok(Some((u.as_path(), w.as_path()))),
            (None, None) => Ok(None),
            _ => Err(ImageError::invalid("work", "upper and work go together")),
        }
    }

    /// The options of `mount(2)`: `lowerdir=top:...:base,upperdir=U,workdir=W[,userxattr]`.
    /// Refused past the page size, with the way out.
    pub fn mount_options(&self) -> Result<String> {
        ovl::mount_options(&self.layers, self.upper_work()?, self.userxattr).map_err(|(f, why)| {
            let e = ImageError::invalid(&f, why.clone());
            if why.contains("mount(2) accepts") {
                e.with_hint("mount with the new mount API (one lowerdir+ per layer: mount_overlay), or shorter layer paths")
            } else {
                e
            }
        })
    }

    fn prepared(&self) -> Result<Overlay> {
        Overlay::from_paths(&self.layers, self.upper_work()?, self.userxattr)
            .map_err(|(f, why)| ImageError::invalid(&f, why))
    }
}

fn failure(f: MountFailure, path: Option<&str>) -> ImageError {
    let mut e = ImageError::sys(f.step, path, Errno(f.errno));
    let log = f.log();
    if !log.is_empty() {
        e.message = format!("{} ({log})", e.message);
    }
    e
}

/// A detached overlay mount of `spec` (attach it with `move_mount`, e.g. under a rootfs). With
/// one `lowerdir+` a layer; on kernels before 6.8 (no `lowerdir+`), one `lowerdir` string.
pub fn open_overlay(spec: &OverlaySpec) -> Result<OwnedFd> {
    spec.prepared()?.open(0).map_err(|f| failure(f, None))
}

/// Mount `spec` on `target` in the caller's mount namespace.
pub fn mount_overlay(spec: &OverlaySpec, target: &Path) -> Result<()> {
    let fd = open_overlay(spec)?;
    let shown = target.display().to_string();
    let t = c(target.as_os_str().as_encoded_bytes())
        .map_err(|e| ImageError::sys("mount overlay on", Some(&shown), e))?;
    ovl::attach(fd.as_raw_fd(), &t).map_err(|f| failure(f, Some(&shown)))
}

/// What a path of a mounted overlay shows: its stat, and for a file its first bytes or for a
/// directory its names (one a line, in directory order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub data: Vec<u8>,
}

const SEEN_DATA: usize = 2048;
const RECORD: usize = 4 + 4 + 4 + 4 + 8 + 4 + SEEN_DATA;

/// In a child of its own (a new mount namespace; with `userns`, a new user namespace too,
/// mapping the caller's own id as 0), mount `spec` on `target` and look at `paths` (relative
/// to the mount). The mount goes with the child. For each path: what it shows, or the errno.
pub fn look_in_overlay(
    spec: &OverlaySpec,
    target: &Path,
    userns: bool,
    paths: &[&str],
) -> Result<Vec<std::result::Result<Seen, Errno>>> {
    let p = spec.prepared()?;
    let shown = target.display().to_string();
    let t = c(target.as_os_str().as_encoded_bytes())
        .map_err(|e| ImageError::sys("mount overlay on", Some(&shown), e))?;
    let mut queries = Vec::new();
    for q in paths {
        let mut full = target.as_os_str().as_encoded_bytes().to_vec();
        full.push(b'/');
        full.extend_from_slice(q.trim_start_matches('/').as_bytes());
        queries.push(
            CString::new(full).map_err(|_| ImageError::invalid("paths", "contains a NUL byte"))?,
        );
    }
    let (go_r, go_w) = sys::pipe().map_err(|e| ImageError::sys("create a pipe", None, e))?;
    let (rep_r, rep_w) = sys::pipe().map_err(|e| ImageError::sys("create a pipe", None, e))?;
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut flags = libc::CLONE_NEWNS as u64;
    if userns {
        flags |= libc::CLONE_NEWUSER as u64;
    }
    let pid = sys::clone_fork(flags).map_err(|e| {
        ImageError::sys(
            if userns { "create a user and mount namespace" } else { "create a mount namespace" },
            None,
            e,
        )
    })?;
    if pid == 0 {
        drop(go_w);
        drop(rep_r);
        child_look(&p, &t, &queries, go_r.as_raw_fd(), rep_w.as_raw_fd());
    }
    drop(go_r);
    drop(rep_w);
    let mapped = if userns {
        let own = |id| [IdMapping { container_id: 0, host_id: id, size: 1 }];
        idmap::write_id_maps(
            pid,
            &own(euid),
            &own(egid),
            idmap::Writer::Direct { deny_setgroups: euid != 0 },
        )
        .map_err(|e| {
            ImageError::sys(e.step, e.path.as_deref(), Errno(e.errno.unwrap_or(libc::EPERM)))
        })
    } else {
        Ok(())
    };
    if mapped.is_ok() {
        let _ = sys::write_all(go_w.as_raw_fd(), b"g");
    }
    drop(go_w);
    let report = sys::read_to_end(rep_r.as_raw_fd()).unwrap_or_default();
    let _ = sys::waitpid(pid, 0);
    mapped?;
    // The report: a mount failure (step index, errno, kernel log), or one record a path.
    if report.first() == Some(&b'F') {
        let errno =
            i32::from_ne_bytes(report.get(2..6).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]));
        let step = report.get(1).copied().unwrap_or(0);
        let log = String::from_utf8_lossy(report.get(6..).unwrap_or(&[])).trim().to_owned();
        let what = if step == 1 { "attach the overlay on" } else { "mount an overlay on" };
        let mut e = ImageError::sys(what, Some(&shown), Errno(errno));
        if !log.is_empty() {
            e.message = format!("{} ({log})", e.message);
        }
        return Err(e);
    }
    if report.first() != Some(&b'R') || report.len() != 1 + RECORD * paths.len() {
        return Err(ImageError::format(
            "look into the overlay on",
            Some(&shown),
            "the child ended without a report",
        ));
    }
    let u32_at = |r: &[u8], o: usize| u32::from_ne_bytes(r[o..o + 4].try_into().unwrap_or([0; 4]));
    Ok(report[1..]
        .chunks(RECORD)
        .map(|r| {
            let errno = u32_at(r, 0) as i32;
            if errno != 0 {
                return Err(Errno(errno));
            }
            let len = (u32_at(r, 24) as usize).min(SEEN_DATA);
            Ok(Seen {
                mode: u32_at(r, 4),
                uid: u32_at(r, 8),
                gid: u32_at(r, 12),
                size: u64::from_ne_bytes(r[16..24].try_into().unwrap_or([0; 8])),
                data: r[28..28 + len].to_vec(),
            })
        })
        .collect())
}

/// The child of `look_in_overlay`: system calls only, on memory made before the clone.
fn child_look(p: &Overlay, target: &CStr, queries: &[CString], go: RawFd, rep: RawFd) -> ! {
    // SAFETY: system calls on stack buffers and memory prepared by the parent; the child ends
    // with _exit and never returns into the parent's code.
    unsafe {
        let mut b = [0u8; 1];
        if libc::read(go, b.as_mut_ptr().cast(), 1) != 1 {
            libc::_exit(3);
        }
        // Mounts made here must not propagate back to the host.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            libc::_exit(4);
        }
        let report_failure = |step: u8, f: MountFailure| {
            let mut out = [0u8; 6 + 256];
            out[0] = b'F';
            out[1] = step;
            out[2..6].copy_from_slice(&f.errno.to_ne_bytes());
            let log = f.log_bytes();
            out[6..6 + log.len()].copy_from_slice(log);
            libc::write(rep, out.as_ptr().cast(), 6 + log.len());
            libc::_exit(1);
        };
        // System calls only: the paths were made into C strings before the clone.
        let mfd = match p.mount_with(ovl::Mode::PathPlus, 0) {
            Ok(fd) => fd,
            Err(f) => report_failure(0, f),
        };
        if let Err(f) = ovl::attach(mfd.as_raw_fd(), target) {
            report_failure(1, f);
        }
        libc::write(rep, b"R".as_ptr().cast(), 1);
        for q in queries {
            let mut rec = [0u8; RECORD];
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstatat(libc::AT_FDCWD, q.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
                rec[0..4].copy_from_slice(&(errno as u32).to_ne_bytes());
            } else {
                rec[4..8].copy_from_slice(&st.st_mode.to_ne_bytes());
                rec[8..12].copy_from_slice(&st.st_uid.to_ne_bytes());
                rec[12..16].copy_from_slice(&st.st_gid.to_ne_bytes());
                rec[16..24].copy_from_slice(&(st.st_size as u64).to_ne_bytes());
                let len = look_data(q, &st, &mut rec[28..]);
                rec[24..28].copy_from_slice(&(len as u32).to_ne_bytes());
            }
            libc::write(rep, rec.as_ptr().cast(), rec.len());
        }
        libc::_exit(0)
    }
}

/// The first bytes of a file, or the names of a directory, into `out`.
///
/// # Safety
/// System calls only; `q` is a valid C string.
unsafe fn look_data(q: &CStr, st: &libc::stat, out: &mut [u8]) -> usize {
    let ty = st.st_mode & libc::S_IFMT;
    if ty == libc::S_IFREG {
        let fd = libc::open(q.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if fd < 0 {
            return 0;
        }
        let n = libc::read(fd, out.as_mut_ptr().cast(), out.len());
        libc::close(fd);
        return n.max(0) as usize;
    }
    if ty == libc::S_IFLNK {
        let n = libc::readlinkat(libc::AT_FDCWD, q.as_ptr(), out.as_mut_ptr().cast(), out.len());
        return n.max(0) as usize;
    }
    if ty != libc::S_IFDIR {
        return 0;
    }
    let fd = libc::open(q.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        let n = libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len());
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        while off < n as usize {
            // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = CStr::from_ptr(buf.as_ptr().add(off + 19).cast()).to_bytes();
            if name != b"." && name != b".." && len + name.len() < out.len() {
                out[len..len + name.len()].copy_from_slice(name);
                len += name.len();
                out[len] = b'\n';
                len += 1;
            }
            off += reclen;
        }
    }
    libc::close(fd);
    len
}

/// Whether an overlay works for this caller on the filesystem of `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    /// Mounted inside a user namespace with `userxattr` (a rootless caller).
    pub userns: bool,
    /// What failed, and what to do about it, when `ok` is false.
    pub reason: Option<String>,
    pub hint: Option<String>,
}

/// Mount a small overlay for real (two layers with a whiteout and an opaque directory, an
/// upper with a write and a delete) under `dir`, in a child of its own, and check what it
/// shows. With `userns` (what a rootless caller needs) inside a user namespace, `userxattr`.
pub fn probe(dir: &Path, userns: bool) -> Probe {
    let result = probe_in(dir, userns);
    let (ok, reason, hint) = match result {
        Ok(()) => (true, None, None),
        Err(e) => {
            let hint = e.hint.clone().or_else(|| {
                Some(if userns {
                    "overlayfs in a user namespace needs kernel 5.11 or later (userxattr) and a filesystem that allows user.* attributes; unprivileged user namespaces must be allowed".into()
                } else {
                    "overlayfs must be available (modprobe overlay) and the store on a filesystem it takes as layers (not overlayfs itself, not a network filesystem)".into()
                })
            });
            (false, Some(e.message), hint)
        }
    };
    Probe { ok, userns, reason, hint }
}

fn probe_in(dir: &Path, userns: bool) -> Result<()> {
    let shown = dir.display().to_string();
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = dir.join(format!(".overlay-probe-{}-{seq}", std::process::id()));
    let at = shown.as_str();
    let io = move |step: &'static str| move |e: std::io::Error| ImageError::io(step, Some(at), &e);
    std::fs::create_dir(&base).map_err(io("create a probe directory in"))?;
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            // overlayfs leaves work/work with mode 0: open it up, or its owner cannot empty it.
            use std::os::unix::fs::PermissionsExt;
            let ww = self.0.join("work/work");
            let _ = std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o700));
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(base.clone());
    for d in ["l1/d", "l2/d", "upper", "work", "merged"] {
        std::fs::create_dir_all(base.join(d)).map_err(io("create a probe directory in"))?;
    }
    for (f, body) in [("l1/a", "a"), ("l1/b", "b"), ("l1/d/x", "x"), ("l2/d/y", "y")] {
        std::fs::write(base.join(f), body).map_err(io("write a probe file in"))?;
    }
    let l2 = dirfd(&base.join("l2"))?;
    fs::mknodat(l2.as_raw_fd(), c"b", libc::S_IFCHR, 0)
        .map_err(|e| ImageError::sys("create a whiteout in", Some(&shown), e))?;
    let d = dirfd(&base.join("l2/d"))?;
    let x = if userns { c"user.overlay.opaque" } else { c"trusted.overlay.opaque" };
    fs::fsetxattr(d.as_raw_fd(), x, b"y")
        .map_err(|e| ImageError::sys("mark a probe directory opaque in", Some(&shown), e))?;
    let spec = OverlaySpec {
        layers: vec![base.join("l1"), base.join("l2")],
        upper: Some(base.join("upper")),
        work: Some(base.join("work")),
        userxattr: userns,
    };
    let seen = look_in_overlay(&spec, &base.join("merged"), userns, &["a", "b", "d/x", "d/y"])?;
    let fail = |what: &str| Err(ImageError::format("probe overlayfs in", Some(&shown), what));
    if seen[0].as_ref().map(|s| s.data.clone()) != Ok(b"a".to_vec()) {
        return fail("a file of the lower layer is not visible");
    }
    if seen[1] != Err(Errno(libc::ENOENT)) {
        return fail("a whiteout does not hide the lower file");
    }
    if seen[2] != Err(Errno(libc::ENOENT)) {
        return fail("an opaque directory does not hide the lower one");
    }
    if seen[3].is_err() {
        return fail("a file of the upper lower layer is not visible");
    }
    Ok(())
}

fn dirfd(p: &Path) -> Result<OwnedFd> {
    let shown = p.display().to_string();
    let cp = c(p.as_os_str().as_encoded_bytes())
        .map_err(|e| ImageError::sys("open", Some(&shown), e))?;
    fs::openat(libc::AT_FDCWD, &cp, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| ImageError::sys("open", Some(&shown), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_top_layer_first_and_refuse_what_breaks_them() {
        let spec = OverlaySpec {
            layers: vec!["/s/base/diff".into(), "/s/top/diff".into()],
            upper: Some("/c/upper".into()),
            work: Some("/c/work".into()),
            userxattr: true,
        };
        assert_eq!(
            spec.mount_options().unwrap(),
            "lowerdir=/s/top/diff:/s/base/diff,upperdir=/c/upper,workdir=/c/work,userxattr"
        );
        let bad = OverlaySpec { layers: vec!["/s/a:b".into()], ..spec.clone() };
        assert_eq!(bad.mount_options().unwrap_err().path.as_deref(), Some("layers[0]"));
        let long = OverlaySpec {
            layers: (0..200)
                .map(|i| PathBuf::from(format!("/var/lib/ns/images/layers/sha256/{:064x}/diff", i)))
                .collect(),
            ..spec.clone()
        };
        let e = long.mount_options().unwrap_err();
        assert!(e.message.contains("more than the 4095"), "{}", e.message);
        assert!(e.hint.unwrap().contains("lowerdir+"));
        let lone =
            OverlaySpec { layers: vec!["/s/a".into()], upper: None, work: None, userxattr: false };
        assert!(lone.mount_options().is_err());
    }
}
