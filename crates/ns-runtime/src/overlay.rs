//! Overlay mounts of image layers with the new mount API: `fsopen("overlay")`, one `fsconfig`
//! a layer, `fsmount`. The layers are given either as paths or as descriptors (idmapped
//! detached mounts made by the helper, see `image_root`), in image order, base first;
//! overlayfs wants the topmost lower layer first, which this module does.
//!
//! How a layer reaches the kernel, newest way first, each tried when the kernel refuses the
//! one before with `EINVAL`:
//!
//! - descriptors: `FSCONFIG_SET_FD` with `lowerdir+`, `upperdir`, `workdir` (kernel 6.13);
//!   then `/proc/self/fd/N` names with `lowerdir+` (6.8); then one `lowerdir` string of them;
//! - paths: `lowerdir+` a layer (6.8), so the page that limits `mount(2)` options does not
//!   limit the layers; then one `lowerdir` string.
//!
//! `mount_with` makes only system calls on memory prepared beforehand for paths (a forked
//! child of a threaded process may use it, as ns-image's probe does); descriptors named by
//! `/proc/self/fd` need their names made, which only the single-threaded helper does.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::SetupError;
use crate::sys::Errno;

/// The page `mount(2)` copies its options into: longer options are cut by the kernel.
pub const MOUNT_DATA_MAX: usize = 4095;

/// Why a layer path cannot be given to overlayfs, or None. The characters refused are those
/// that separate or escape layers in overlayfs' options.
pub fn layer_path_problem(p: &Path) -> Option<String> {
    let b = p.as_os_str().as_encoded_bytes();
    if b.is_empty() || b[0] != b'/' {
        return Some(format!("{:?} must be an absolute path", p));
    }
    if b.iter().any(|&ch| matches!(ch, b',' | b':' | b'\\' | b'\n' | 0)) {
        return Some(format!("{:?} must not contain ',', ':', '\\' or a newline", p));
    }
    None
}

/// One layer (or the upper or the work directory) as overlayfs is told of it.
pub enum Layer {
    Path(CString),
    Fd(OwnedFd),
}

/// An overlay to make: its lower layers (top first, as overlayfs wants them), its upper and
/// work directories (absent: read-only), and `userxattr` (overlay attributes in `user.*`, for
/// a mount inside a user namespace).
pub struct Overlay {
    lowers: Vec<Layer>,
    upper: Option<(Layer, Layer)>,
    userxattr: bool,
    /// For paths: the lowers as one `lowerdir` string, made beforehand.
    joined: Option<CString>,
}

/// How the layers are given: see the module's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Paths, one `lowerdir+` each (kernel 6.8).
    PathPlus,
    /// Paths, one `lowerdir` string.
    PathJoined,
    /// Descriptors, `FSCONFIG_SET_FD` (kernel 6.13).
    Fd,
    /// Descriptors as `/proc/self/fd/N`, one `lowerdir+` each.
    ProcPlus,
    /// Descriptors as `/proc/self/fd/N`, one `lowerdir` string.
    ProcJoined,
}

/// Why a mount system call failed: which step, the errno, and the kernel's own words (the
/// filesystem context's log, e.g. `overlayfs: failed to resolve '/x': -2`).
pub struct MountFailure {
    pub step: &'static str,
    pub errno: i32,
    log: [u8; 256],
    log_len: usize,
}

impl MountFailure {
    fn new(step: &'static str, errno: i32) -> MountFailure {
        MountFailure { step, errno, log: [0; 256], log_len: 0 }
    }

    /// What the kernel logged, trimmed (may be empty).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log[..self.log_len]).trim().to_owned()
    }

    /// Raw bytes of the log, for a child that reports without allocating.
    pub fn log_bytes(&self) -> &[u8] {
        &self.log[..self.log_len]
    }

    /// As a set-up error, the kernel's log added to the message.
    pub fn into_setup_error(self, path: Option<&str>) -> SetupError {
        let mut e = SetupError::sys(self.step, path, Errno(self.errno));
        let log = self.log();
        if !log.is_empty() {
            e.message = format!("{} ({log})", e.message);
        }
        e
    }
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn path_c(field: &str, p: &Path) -> Result<CString, (String, String)> {
    if let Some(why) = layer_path_problem(p) {
        return Err((field.to_owned(), why));
    }
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| (field.to_owned(), "contains a NUL byte".to_owned()))
}

impl Overlay {
    /// An overlay of paths: `layers` base first; `upper_work` both or neither. Refusals name
    /// the field (`layers[2]`, `upper`) and say why.
    pub fn from_paths(
        layers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        userxattr: bool,
    ) -> Result<Overlay, (String, String)> {
        if layers.is_empty() {
            return Err(("layers".into(), "an overlay needs at least one lower layer".into()));
        }
        if upper_work.is_none() && layers.len() < 2 {
            return Err(("layers".into(), "a read-only overlay needs at least two layers".into()));
        }
        let mut lowers = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate().rev() {
            lowers.push(path_c(&format!("layers[{i}]"), l)?);
        }
        let upper = match upper_work {
            Some((u, w)) => {
                Some((Layer::Path(path_c("upper", u)?), Layer::Path(path_c("work", w)?)))
            }
            None => None,
        };
        let joined: Vec<&[u8]> = lowers.iter().map(|l| l.as_bytes()).collect();
        let joined = CString::new(joined.join(&b':'))
            .map_err(|_| ("layers".to_owned(), "contains a NUL byte".to_owned()))?;
        Ok(Overlay {
            lowers: lowers.into_iter().map(Layer::Path).collect(),
            upper,
            userxattr,
            joined: Some(joined),
        })
    }

    /// An overlay of descriptors (directories, or detached mounts of them): `layers` base
    /// first. The upper and work directories must lie on one mount.
    pub fn from_fds(
        layers: Vec<OwnedFd>,
        upper_work: Option<(OwnedFd, OwnedFd)>,
        userxattr: bool,
    ) -> Overlay {
        Overlay {
            lowers: layers.into_iter().rev().map(Layer::Fd).collect(),
            upper: upper_work.map(|(u, w)| (Layer::Fd(u), Layer::Fd(w))),
            userxattr,
            joined: None,
        }
    }

    fn by_fd(&self) -> bool {
        matches!(self.lowers.first(), Some(Layer::Fd(_)))
    }

    /// The ways to try, newest first.
    pub fn modes(&self) -> &'static [Mode] {
        if self.by_fd() {
            &[Mode::Fd, Mode::ProcPlus, Mode::ProcJoined]
        } else {
            &[Mode::PathPlus, Mode::PathJoined]
        }
    }

    /// `fsopen` / `fsconfig` / `fsmount` in each way the kernel may take, newest first, until
    /// one is not refused as unknown (`EINVAL` from a layer's `fsconfig`). The mount gets
    /// `attrs` (`MOUNT_ATTR_NODEV`, …). A detached mount, to attach with `move_mount`.
    pub fn open(&self, attrs: u64) -> Result<OwnedFd, MountFailure> {
        let mut last =
            MountFailure::new("open an overlay filesystem context (fsopen)", libc::EINVAL);
        for &mode in self.modes() {
            match self.mount_with(mode, attrs) {
                Ok(fd) => return Ok(fd),
                Err(f) if f.errno == libc::EINVAL && f.step.starts_with("set an overlay") => {
                    last = f
                }
                Err(f) => return Err(f),
            }
        }
        Err(last)
    }

    /// One way of `open`. For `Mode::PathPlus` and `Mode::PathJoined`: system calls only.
    pub fn mount_with(&self, mode: Mode, attrs: u64) -> Result<OwnedFd, MountFailure> {
        // The names of descriptors, for the ways that give them as paths (made here: the
        // helper is single-threaded; no forked child of a threaded process comes here).
        let proc_name = |l: &Layer| match l {
            Layer::Fd(fd) => CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok(),
            Layer::Path(p) => Some(p.clone()),
        };
        let proc_lowers: Vec<CString> = match mode {
            Mode::ProcPlus | Mode::ProcJoined => self.lowers.iter().filter_map(proc_name).collect(),
            _ => Vec::new(),
        };
        let proc_joined = match mode {
            Mode::ProcJoined => {
                let parts: Vec<&[u8]> = proc_lowers.iter().map(|l| l.as_bytes()).collect();
                CString::new(parts.join(&b':')).ok()
            }
            _ => None,
        };
        let proc_upper = match (mode, &self.upper) {
            (Mode::ProcPlus | Mode::ProcJoined, Some((u, w))) => proc_name(u).zip(proc_name(w)),
            _ => None,
        };

        let ctx = FsContext::open()?;
        match mode {
            Mode::PathPlus => {
                for l in &self.lowers {
                    if let Layer::Path(p) = l {
                        ctx.set_string(c"lowerdir+", p, "set an overlay lower layer (lowerdir+)")?;
                    }
                }
            }
            Mode::PathJoined => {
                if let Some(j) = &self.joined {
                    ctx.set_string(c"lowerdir", j, "set an overlay's lower layers (lowerdir)")?;
                }
            }
            Mode::Fd => {
                for l in &self.lowers {
                    if let Layer::Fd(fd) = l {
                        ctx.set_fd(
                            c"lowerdir+",
                            fd.as_raw_fd(),
                            "set an overlay lower layer (by descriptor)",
                        )?;
                    }
                }
            }
            Mode::ProcPlus => {
                for p in &proc_lowers {
                    ctx.set_string(c"lowerdir+", p, "set an overlay lower layer (lowerdir+)")?;
                }
            }
            Mode::ProcJoined => {
                if let Some(j) = &proc_joined {
                    ctx.set_string(c"lowerdir", j, "set an overlay's lower layers (lowerdir)")?;
                }
            }
        }
        match (mode, &self.upper) {
            (_, None) => {}
            (Mode::Fd, Some((Layer::Fd(u), Layer::Fd(w)))) => {
                ctx.set_fd(
                    c"upperdir",
                    u.as_raw_fd(),
                    "set an overlay upper directory (by descriptor)",
                )?;
                ctx.set_fd(
                    c"workdir",
                    w.as_raw_fd(),
                    "set an overlay work directory (by descriptor)",
                )?;
            }
            (Mode::ProcPlus | Mode::ProcJoined, Some(_)) => {
                if let Some((u, w)) = &proc_upper {
                    ctx.set_string(c"upperdir", u, "set the overlay upper directory (upperdir)")?;
                    ctx.set_string(c"workdir", w, "set the overlay work directory (workdir)")?;
                }
            }
            (_, Some((Layer::Path(u), Layer::Path(w)))) => {
                ctx.set_string(c"upperdir", u, "set the overlay upper directory (upperdir)")?;
                ctx.set_string(c"workdir", w, "set the overlay work directory (workdir)")?;
            }
            (_, Some(_)) => {
                return Err(MountFailure::new("set the overlay upper directory", libc::EINVAL))
            }
        }
        if self.userxattr {
            ctx.set_flag(c"userxattr", "set userxattr on the overlay")?;
        }
        ctx.create()?;
        ctx.mount(attrs)
    }
}

/// A filesystem context of overlayfs (`fsopen`), closed on drop.
struct FsContext(RawFd);

impl Drop for FsContext {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours.
        unsafe { libc::close(self.0) };
    }
}

impl FsContext {
    fn open() -> Result<FsContext, MountFailure> {
        // SAFETY: a literal C string.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
        if fd < 0 {
            return Err(MountFailure::new(
                "open an overlay filesystem context (fsopen)",
                Errno::last().0,
            ));
        }
        Ok(FsContext(fd as RawFd))
    }

    /// The failure of the last call, with what the kernel logged in the context.
    fn failed(&self, step: &'static str) -> MountFailure {
        let mut f = MountFailure::new(step, Errno::last().0);
        // SAFETY: reads the context's log into a stack buffer; the descriptor is ours.
        let n = unsafe { libc::read(self.0, f.log.as_mut_ptr().cast(), f.log.len()) };
        f.log_len = n.max(0) as usize;
        f
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: *const libc::c_char,
        value: *const libc::c_char,
        aux: libc::c_int,
        step: &'static str,
    ) -> Result<(), MountFailure> {
        // SAFETY: key and value are C strings (or null), aux a descriptor or 0, as fsconfig
        // takes them for `cmd`.
        if unsafe { libc::syscall(libc::SYS_fsconfig, self.0, cmd, key, value, aux) } < 0 {
            return Err(self.failed(step));
        }
        Ok(())
    }

    fn set_string(&self, key: &CStr, v: &CStr, step: &'static str) -> Result<(), MountFailure> {
        self.config(FSCONFIG_SET_STRING, key.as_ptr(), v.as_ptr(), 0, step)
    }

    fn set_fd(&self, key: &CStr, fd: RawFd, step: &'static str) -> Result<(), MountFailure> {
        self.config(FSCONFIG_SET_FD, key.as_ptr(), std::ptr::null(), fd, step)
    }

    fn set_flag(&self, key: &CStr, step: &'static str) -> Result<(), MountFailure> {
        self.config(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null(), 0, step)
    }

    fn create(&self) -> Result<(), MountFailure> {
        self.config(
            FSCONFIG_CMD_CREATE,
            std::ptr::null(),
            std::ptr::null(),
            0,
            "create the overlay filesystem",
        )
    }

    fn mount(&self, attrs: u64) -> Result<OwnedFd, MountFailure> {
        // SAFETY: a filesystem context of ours, created.
        let m = unsafe { libc::syscall(libc::SYS_fsmount, self.0, FSMOUNT_CLOEXEC, attrs) };
        if m < 0 {
            return Err(self.failed("make the overlay mount (fsmount)"));
        }
        // SAFETY: a fresh mount descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
    }
}

/// Attach the detached mount `mfd` on `target` (a path of the caller's mount namespace).
/// System calls only.
pub fn attach(mfd: RawFd, target: &CStr) -> Result<(), MountFailure> {
    // SAFETY: valid descriptor and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(MountFailure::new("attach the overlay (move_mount)", Errno::last().0));
    }
    Ok(())
}

/// The options of `mount(2)` for an overlay of these paths (base first):
/// `lowerdir=top:...:base[,upperdir=U,workdir=W][,userxattr]`, or why not (field, reason).
pub fn mount_options(
    layers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    userxattr: bool,
) -> Result<String, (String, String)> {
    // Checked as an overlay of them would be.
    Overlay::from_paths(layers, upper_work, userxattr)?;
    let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
    let mut o = format!("lowerdir={}", lower.join(":"));
    if let Some((u, w)) = upper_work {
        o.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
    }
    if userxattr {
        o.push_str(",userxattr");
    }
    if o.len() > MOUNT_DATA_MAX {
        return Err((
            "layers".into(),
            format!(
                "the overlay options take {} bytes, more than the {MOUNT_DATA_MAX} mount(2) accepts",
                o.len()
            ),
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_given_top_first_and_what_breaks_the_options_is_refused() {
        let layers: Vec<PathBuf> = vec!["/s/base/diff".into(), "/s/top/diff".into()];
        let o = mount_options(&layers, Some((Path::new("/c/upper"), Path::new("/c/work"))), true);
        assert_eq!(
            o.unwrap(),
            "lowerdir=/s/top/diff:/s/base/diff,upperdir=/c/upper,workdir=/c/work,userxattr"
        );
        let ov = Overlay::from_paths(&layers, None, false).unwrap();
        assert_eq!(ov.modes(), &[Mode::PathPlus, Mode::PathJoined]);
        assert_eq!(ov.joined.as_deref(), Some(c"/s/top/diff:/s/base/diff"));
        let bad = Overlay::from_paths(&["/s/a:b".into(), "/s/c".into()], None, false);
        assert_eq!(bad.err().map(|e| e.0).as_deref(), Some("layers[0]"));
        let rel =
            Overlay::from_paths(&["rel".into()], Some((Path::new("/u"), Path::new("/w"))), false);
        assert!(rel.err().unwrap().1.contains("absolute"));
        assert!(Overlay::from_paths(&["/a".into()], None, false).is_err());
        assert!(Overlay::from_paths(&[], Some((Path::new("/u"), Path::new("/w"))), false).is_err());
    }

    #[test]
    fn descriptors_are_tried_by_fd_then_by_their_proc_names() {
        let a = crate::sys::open("/", libc::O_PATH | libc::O_DIRECTORY).unwrap();
        let ov = Overlay::from_fds(vec![a], None, false);
        assert_eq!(ov.modes(), &[Mode::Fd, Mode::ProcPlus, Mode::ProcJoined]);
    }
}
