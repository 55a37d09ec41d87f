//! An image as a container's root: the overlay of the image's layers (unpacked once in the
//! image store, shared by every container of them, never written) and of a directory of the
//! container's own in the store, which holds its writable layer (`upper/`), overlayfs' work
//! directory (`work/`) and the store's record of the container (`container.json`). The spec
//! names them in the annotation `io.ns.image.overlay`:
//! `{"layers": [base/diff, …, top/diff], "dir": "<store>/containers/<id>", "rootless": bool}`.
//! The overlay replaces the bind of `root.path` (a spec with the annotation has no `root`) and
//! is mounted where the bind would be, before `pivot_root` (see `rootfs`).
//!
//! Who mounts it, and how the owners of the layers are seen:
//!
//! - root's containers in a user namespace (a leased range of host ids, or any map): the
//!   layers keep the owners of their tars (root's files are host uid 0), which the container's
//!   ids do not map. The helper makes each layer, and the container's directory, an idmapped
//!   detached mount through the child's user namespace (`open_idmapped`), and an overlay of
//!   those (overlayfs takes idmapped layers since 5.19, by descriptor since 6.13, by
//!   `/proc/self/fd` name before): uid 33 of the image is 33 inside, its root the container's
//!   root, and what the container writes lands in `upper/` with the image's own ids, as if
//!   written without a user namespace. overlayfs does its own work in `work/` (and copies up)
//!   with the credentials of whoever created it, so the helper creates it as the container's
//!   root (its filesystem ids set to the host ids the container's 0 maps to, its
//!   capabilities kept): host uid 0 has no id in the idmapped upper layer. The overlay
//!   belongs to the host's user namespace: its whiteouts are `trusted.overlay.*`, device
//!   nodes are refused (`nodev`: a container reaches devices only through its `/dev`).
//! - root's containers without a user namespace: the child mounts the layers by path.
//! - a normal user's (a rootless store): the layers' owners were written, when unpacked, as
//!   the ids the container's maps give them; the child mounts the overlay itself, inside its
//!   user namespace, with `userxattr` (whiteouts `user.overlay.*`, kernel 5.11).
//!
//! The container's directory is removed with the container (`remove_container_dir`): at the
//! end of a foreground run, by `delete`, by the monitor of a container that removes itself,
//! and by the image store's reconciliation after a crash.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, SetupError};
use crate::overlay::{self, Overlay};
use crate::spec::{IdMapping, Spec};
use crate::sys::{self, Errno, MOUNT_ATTR_NODEV};

/// The annotation that names an image's root filesystem.
pub const ANNOTATION: &str = "io.ns.image.overlay";
/// The store's record of the container, in its directory: `{"id": …, …}`.
pub const RECORD: &str = "container.json";
/// The container's writable layer, in its directory.
pub const UPPER: &str = "upper";
/// overlayfs' work directory, in its directory (on the upper's filesystem, as it must be).
pub const WORK: &str = "work";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotation {
    layers: Vec<String>,
    dir: String,
    #[serde(default)]
    rootless: bool,
}

/// An image's root filesystem, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRoot {
    /// Lower directories, base first.
    pub layers: Vec<PathBuf>,
    /// The container's directory: `upper/`, `work/`, the record.
    pub dir: PathBuf,
    /// The layers are a rootless store's (`user.overlay.*` whiteouts, owners mapped).
    pub rootless: bool,
    /// Made by the helper from idmapped layers, and sent to the child; else the child mounts
    /// it by path.
    pub outside: bool,
}

fn field(name: &str) -> String {
    format!("annotations.{ANNOTATION}{name}")
}

fn read(annotations: &BTreeMap<String, String>) -> Result<Option<Annotation>> {
    let Some(text) = annotations.get(ANNOTATION) else { return Ok(None) };
    serde_json::from_str(text).map(Some).map_err(|e| {
        SetupError::config(field(""), format!("is not a layer list and a directory: {e}"))
    })
}

/// The image root a spec's annotations name, for a caller of effective uid `euid` whose child
/// has a user namespace (`userns`: new or joined) or not. None without the annotation.
pub fn plan(
    annotations: &BTreeMap<String, String>,
    userns: bool,
    euid: u32,
) -> Result<Option<ImageRoot>> {
    let Some(a) = read(annotations)? else { return Ok(None) };
    if a.layers.is_empty() {
        return Err(SetupError::config(field(".layers"), "must name at least one layer"));
    }
    let mut layers = Vec::with_capacity(a.layers.len());
    for (i, l) in a.layers.iter().enumerate() {
        let p = PathBuf::from(l);
        if let Some(why) = overlay::layer_path_problem(&p) {
            return Err(SetupError::config(field(&format!(".layers[{i}]")), why));
        }
        layers.push(p);
    }
    let dir = PathBuf::from(&a.dir);
    if let Some(why) = overlay::layer_path_problem(&dir) {
        return Err(SetupError::config(field(".dir"), why));
    }
    if a.rootless && euid == 0 {
        return Err(SetupError::config(
            field(".rootless"),
            "root's containers cannot use a rootless store's layers (their owners are a normal user's subordinate ids)",
        ));
    }
    if !a.rootless && euid != 0 {
        return Err(SetupError::config(
            field(".rootless"),
            "a root store's layers need root (their whiteouts are trusted.overlay.* attributes): use your own store",
        ));
    }
    Ok(Some(ImageRoot { layers, dir, rootless: a.rootless, outside: euid == 0 && userns }))
}

impl ImageRoot {
    pub fn upper(&self) -> PathBuf {
        self.dir.join(UPPER)
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join(WORK)
    }

    /// The child's way: an overlay of the layers by path (a rootless store, with `userxattr`
    /// inside the user namespace; root without a user namespace, with `trusted.*`).
    pub fn open_in_place(&self) -> Result<OwnedFd> {
        let (upper, work) = (self.upper(), self.work());
        let ov = Overlay::from_paths(&self.layers, Some((&upper, &work)), self.rootless)
            .map_err(|(f, why)| SetupError::config(field(&format!(".{f}")), why))?;
        ov.open(MOUNT_ATTR_NODEV).map_err(|f| {
            let e = f.into_setup_error(Some(&self.dir.display().to_string()));
            if self.rootless {
                e.with_hint("overlayfs in a user namespace needs kernel 5.11 or later and a store on a filesystem that takes user.* attributes (ns images can probe it)")
            } else {
                e
            }
        })
    }

    /// The helper's way, for a child `pid` in a user namespace: every layer, and the
    /// container's directory, an idmapped detached mount through that namespace, and the
    /// overlay of them created as the container's root (see the module's notes).
    pub fn open_idmapped(&self, pid: libc::pid_t) -> Result<OwnedFd> {
        let ns_path = format!("/proc/{pid}/ns/user");
        let userns = sys::open(&ns_path, libc::O_RDONLY)
            .map_err(|e| SetupError::sys("open the user namespace", Some(&ns_path), e))?;
        let idmapped = |path: &Path| -> Result<OwnedFd> {
            let shown = path.display().to_string();
            let fd = sys::open(&shown, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .map_err(|e| SetupError::sys("open the image layer", Some(&shown), e))?;
            let tree = sys::open_tree_clone(fd.as_raw_fd(), false)
                .map_err(|e| SetupError::sys("copy the mount of", Some(&shown), e))?;
            sys::idmap_tree(tree.as_raw_fd(), false, 0, userns.as_raw_fd()).map_err(|e| {
                let err = SetupError::sys("make an idmapped mount of", Some(&shown), e);
                match e.0 {
                    libc::EINVAL | libc::EOPNOTSUPP => err.with_hint("the image store's filesystem (or the kernel) does not support idmapped mounts; run the image with --userns host, or keep the store on ext4, xfs or btrfs"),
                    _ => err,
                }
            })?;
            Ok(tree)
        };
        let mut lowers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            lowers.push(idmapped(l)?);
        }
        // Held until the overlay is made: closing the detached tree dissolves it, and overlayfs
        // could no longer take the upper and work directories opened in it.
        let dir = idmapped(&self.dir)?;
        let sub = |name: &str| {
            sys::openat2_beneath(dir.as_raw_fd(), name, libc::O_PATH | libc::O_DIRECTORY).map_err(
                |e| SetupError::sys("open", Some(&self.dir.join(name).display().to_string()), e),
            )
        };
        let upper_work = (sub(UPPER)?, sub(WORK)?);
        let ov = Overlay::from_fds(lowers, Some(upper_work), false);
        let (uid, gid) = (root_of(pid, "uid_map")?, root_of(pid, "gid_map")?);
        let creds = AsContainerRoot::become_(uid, gid)?;
        let made = ov.open(MOUNT_ATTR_NODEV);
        creds.restore()?;
        made.map_err(|f| {
            let e = f.into_setup_error(Some(&self.dir.display().to_string()));
            if e.errno == Some(libc::EINVAL) {
                e.with_hint("overlayfs takes idmapped layers from kernel 5.19 on; on an older kernel run the image with --userns host")
            } else {
                e
            }
        })
    }
}

/// The host id that id 0 of `pid`'s user namespace is (from its `uid_map` or `gid_map`).
fn root_of(pid: libc::pid_t, map: &str) -> Result<u32> {
    let path = format!("/proc/{pid}/{map}");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        SetupError::sys("read", Some(&path), Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    })?;
    for line in text.lines() {
        let f: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [inside, outside, count] = f[..] {
            if inside == 0 && count > 0 {
                return u32::try_from(outside).map_err(|_| {
                    SetupError::config("linux.uidMappings", "maps container id 0 past 2^32")
                });
            }
        }
    }
    Err(SetupError::config(
        if map == "uid_map" { "linux.uidMappings" } else { "linux.gidMappings" },
        "must map container id 0 for an image's root (it owns the image's files)",
    ))
}

/// The helper working as the container's root on the filesystem: its filesystem ids set to
/// the host ids of the container's 0, its capabilities (which that change clears from the
/// effective set) raised again. `restore` goes back to 0.
struct AsContainerRoot {
    restored: bool,
}

impl AsContainerRoot {
    fn become_(uid: u32, gid: u32) -> Result<AsContainerRoot> {
        // SAFETY: plain syscalls (this thread's filesystem ids).
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        let me = AsContainerRoot { restored: false };
        crate::caps::raise_permitted()?;
        Ok(me)
    }

    fn restore(mut self) -> Result<()> {
        self.restored = true;
        Self::back();
        crate::caps::raise_permitted()
    }

    fn back() {
        // SAFETY: plain syscalls.
        unsafe {
            libc::setfsuid(0);
            libc::setfsgid(0);
        }
    }
}

impl Drop for AsContainerRoot {
    fn drop(&mut self) {
        if !self.restored {
            Self::back();
            let _ = crate::caps::raise_permitted();
        }
    }
}

#[derive(Deserialize)]
struct Record {
    id: String,
}

/// Remove the container's directory of a spec with an image root, if it has one and it is
/// this container's (its record names `id`); the spec's id maps are those its files were
/// written with (a normal user removes them from inside a user namespace of those maps). The
/// directory is first renamed aside (`.<name>.<pid>.gone`), so the store never sees half of
/// one; what a crash leaves aside, the store's reconciliation removes.
pub fn remove_container_dir(spec: &Spec, id: &str) -> Result<()> {
    let Some(a) = read(&spec.annotations)? else { return Ok(()) };
    let dir = PathBuf::from(&a.dir);
    let shown = dir.display().to_string();
    let record = match std::fs::read(dir.join(RECORD)) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(()),
        Err(e) => {
            return Err(SetupError::sys(
                "read the record of",
                Some(&shown),
                Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            ))
        }
    };
    match serde_json::from_slice::<Record>(&record) {
        Ok(r) if r.id == id => {}
        _ => {
            return Err(SetupError::config(
                field(".dir"),
                format!("{shown} is not the directory of container {id:?}: left as it is"),
            ))
        }
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(SetupError::config(field(".dir"), "must name a directory"));
    };
    let aside = parent.join(format!(".{}.{}.gone", name.to_string_lossy(), std::process::id()));
    std::fs::rename(&dir, &aside).map_err(|e| {
        SetupError::sys("move aside", Some(&shown), Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    })?;
    remove_tree(&aside, a.rootless, spec)
}

/// Remove a container's directory (moved aside already): root directly, a normal user from
/// inside a user namespace of the container's maps.
fn remove_tree(path: &Path, rootless: bool, spec: &Spec) -> Result<()> {
    let shown = path.display().to_string();
    // SAFETY: plain syscall.
    if !rootless && unsafe { libc::geteuid() } == 0 {
        // Never follows a link the container made: symlinks are removed, not walked.
        return std::fs::remove_dir_all(path).map_err(|e| {
            SetupError::sys("remove", Some(&shown), Errno(e.raw_os_error().unwrap_or(libc::EIO)))
        });
    }
    let linux = spec.linux.clone().unwrap_or_default();
    let (uids, gids): (Vec<IdMapping>, Vec<IdMapping>) = (linux.uid_mappings, linux.gid_mappings);
    if uids.is_empty() {
        return std::fs::remove_dir_all(path).map_err(|e| {
            SetupError::sys("remove", Some(&shown), Errno(e.raw_os_error().unwrap_or(libc::EIO)))
        });
    }
    crate::mapped::remove_tree(path, &uids, &gids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(ANNOTATION.to_owned(), v.to_owned())])
    }

    #[test]
    fn the_annotation_is_checked_and_who_mounts_follows_the_caller() {
        assert_eq!(plan(&BTreeMap::new(), true, 0).unwrap(), None);
        let good = r#"{"layers":["/s/l/a/diff","/s/l/b/diff"],"dir":"/s/containers/c"}"#;
        let p = plan(&ann(good), true, 0).unwrap().unwrap();
        assert!(p.outside && !p.rootless);
        assert_eq!(p.upper(), PathBuf::from("/s/containers/c/upper"));
        assert!(!plan(&ann(good), false, 0).unwrap().unwrap().outside);
        let rootless = r#"{"layers":["/h/l/a/diff"],"dir":"/h/containers/c","rootless":true}"#;
        let r = plan(&ann(rootless), true, 1000).unwrap().unwrap();
        assert!(!r.outside && r.rootless);
        let e = |v: &str, euid| plan(&ann(v), true, euid).unwrap_err().path.unwrap();
        assert_eq!(e(rootless, 0), "annotations.io.ns.image.overlay.rootless");
        assert_eq!(e(good, 1000), "annotations.io.ns.image.overlay.rootless");
        assert_eq!(e(r#"{"layers":[],"dir":"/x"}"#, 0), "annotations.io.ns.image.overlay.layers");
        assert_eq!(
            e(r#"{"layers":["/a:b"],"dir":"/x"}"#, 0),
            "annotations.io.ns.image.overlay.layers[0]"
        );
        assert_eq!(e(r#"{"layers":["/a"],"dir":"x"}"#, 0), "annotations.io.ns.image.overlay.dir");
        assert_eq!(
            e(r#"{"layers":["/a"],"dir":"/x","more":1}"#, 0),
            "annotations.io.ns.image.overlay"
        );
    }

    #[test]
    fn only_the_directory_whose_record_names_the_container_is_removed() {
        let base = std::env::temp_dir().join(format!("ns-image-root-{}", std::process::id()));
        let dir = base.join("c1");
        std::fs::create_dir_all(dir.join(UPPER).join("etc")).unwrap();
        std::fs::create_dir_all(dir.join(WORK)).unwrap();
        std::fs::write(dir.join(RECORD), r#"{"id":"c1"}"#).unwrap();
        // SAFETY: plain syscall.
        let rootless = unsafe { libc::geteuid() } != 0;
        let annotation =
            format!(r#"{{"layers":["/l"],"dir":"{}","rootless":{rootless}}}"#, dir.display());
        let spec = Spec { annotations: ann(&annotation), ..Default::default() };
        let other = remove_container_dir(&spec, "c2").unwrap_err();
        assert!(other.message.contains("is not the directory of container"), "{}", other.message);
        assert!(dir.exists());
        remove_container_dir(&spec, "c1").unwrap();
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0, "nothing left aside");
        // Gone already: nothing to do.
        remove_container_dir(&spec, "c1").unwrap();
        let _ = std::fs::remove_dir_all(&base);
    }
}
