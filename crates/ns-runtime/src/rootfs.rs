//! The container's root filesystem, built inside its own mount namespace:
//!
//! 1. make every mount private, so nothing we do propagates back to the host;
//! 2. open the sources of bind mounts while the host's tree is still in view;
//! 3. make the root a mount of its own: a recursive bind of `root.path`, a fresh tmpfs, or
//!    an image's overlay (`image_root`: made by the helper and received, or made here);
//! 4. carry out `mounts[]` in order, each target resolved inside the root (openat2 with
//!    RESOLVE_IN_ROOT), so a symlink in the rootfs cannot send a mount onto a host path;
//!    a tmpfs at `/dev` gets the default devices bound from the host and the usual links; then
//!    the nodes of `linux.devices` (made, or bound from the host's in a user namespace);
//! 5. pivot_root into the new root and detach the old one (never a bare chroot);
//! 6. after the sysctls: mask and write-protect paths, make the root read-only if asked, and
//!    give it the propagation `linux.rootfsPropagation` asks for (pivot_root refuses a shared one).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Context, Result, SetupError};
use crate::mounts::{Attrs, MountKind, MountOp};
use crate::sys::{self, Errno, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_RDONLY};

/// Where a fresh tmpfs root is mounted before we pivot into it.
const STAGING: &str = "/tmp";

/// Devices every container gets, bound from the host (a user namespace may not mknod).
pub const DEFAULT_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

#[derive(Debug, Clone, Default)]
pub struct RootfsPlan {
    /// Host directory of the root (None: a fresh tmpfs).
    pub root: Option<String>,
    pub readonly_root: bool,
    pub mounts: Vec<MountOp>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// Propagation of `/` inside the container (`linux.rootfsPropagation`; default private),
    /// with `MS_REC` for the `r` forms.
    pub propagation: libc::c_ulong,
    /// The root is an idmapped mount (made outside, by the helper).
    pub idmap_root: bool,
    /// `io.ns.bind.roots`: when not empty, the root and every bind source are opened beneath
    /// one of these, and mounted from that descriptor.
    pub bind_roots: Vec<String>,
    /// The nodes of `linux.devices`, made once the mounts are in place.
    pub devices: Vec<crate::devices::Node>,
    /// A user namespace may not make device nodes: each is bound from the host's node of the
    /// same path instead (its type, numbers, mode and owner are the host's).
    pub bind_devices: bool,
    /// `io.ns.image.overlay`: the root is the overlay of an image's layers (then `root` is
    /// None). Made outside by the helper (`ImageRoot::outside`, received first of `trees`)
    /// or here.
    pub image: Option<crate::image_root::ImageRoot>,
}

/// Open a host path of the spec (`field` names it in errors): as it is, or, with bind roots,
/// beneath the root it lies under (lexically), so that no symlink or `..` swapped in by
/// anyone meanwhile can lead it out. The descriptor is what gets mounted.
pub fn open_host_path(
    roots: &[String],
    path: &str,
    flags: libc::c_int,
    field: &str,
) -> Result<OwnedFd> {
    let step = if field == "root.path" { "open rootfs" } else { "open bind source" };
    if roots.is_empty() {
        return sys::open(path, flags).map_err(|e| SetupError::sys(step, Some(path), e));
    }
    let Some((root, rest)) = crate::mounts::under_root(roots, path) else {
        return Err(SetupError::config(
            field,
            format!("{path} is not under an allowed bind root ({})", roots.join(", ")),
        ));
    };
    let dir = sys::open(root, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| SetupError::sys("open the bind root", Some(root), e))?;
    if rest.is_empty() {
        return Ok(dir);
    }
    sys::openat2_beneath(dir.as_raw_fd(), &rest, flags).map_err(|e| {
        if e.0 == libc::EXDEV || e.0 == libc::ELOOP {
            let mut err = SetupError::config(
                field,
                format!("{path} resolves outside the allowed bind root {root}"),
            );
            err.errno = Some(e.0);
            err
        } else {
            SetupError::sys(step, Some(path), e)
        }
    })
}

impl RootfsPlan {
    /// What the helper must make into idmapped mounts, in the order the child takes them.
    pub fn idmapped_sources(&self) -> Vec<IdmapSource> {
        let root = self.root.iter().filter(|_| self.idmap_root).map(|r| IdmapSource {
            path: r.clone(),
            root: true,
            recursive: true,
            idmap_recursive: true,
            attrs: Attrs::default(),
            rec_attrs: Attrs::default(),
            field: "root.path".into(),
            bind_roots: self.bind_roots.clone(),
        });
        let binds = self.mounts.iter().enumerate().filter_map(|(i, op)| match &op.kind {
            MountKind::Bind { source, recursive, idmap: true, idmap_recursive } => {
                Some(IdmapSource {
                    path: source.clone(),
                    root: false,
                    recursive: *recursive,
                    idmap_recursive: *idmap_recursive,
                    attrs: op.attrs,
                    rec_attrs: op.rec_attrs,
                    field: format!("mounts[{i}].source"),
                    bind_roots: self.bind_roots.clone(),
                })
            }
            _ => None,
        });
        root.chain(binds).collect()
    }
}

/// A host path to be seen through the container's id maps.
#[derive(Debug, Clone)]
pub struct IdmapSource {
    pub path: String,
    /// The root filesystem (a directory), rather than the source of a bind.
    pub root: bool,
    /// The copy holds every mount below the source (`rbind`).
    pub recursive: bool,
    /// Every mount of the copy is idmapped (`ridmap`), not only the copied mount (`idmap`).
    pub idmap_recursive: bool,
    /// Read-only, nosuid, … of the copied mount, and of every mount of it, set after the map.
    pub attrs: Attrs,
    pub rec_attrs: Attrs,
    /// The spec's field that gave the path.
    pub field: String,
    pub bind_roots: Vec<String>,
}

impl IdmapSource {
    /// The source, opened once (beneath its bind root when there are some).
    pub fn open(&self) -> Result<OwnedFd> {
        let flags = if self.root { libc::O_PATH | libc::O_DIRECTORY } else { libc::O_PATH };
        open_host_path(&self.bind_roots, &self.path, flags, &self.field)
    }
}

/// Steps 1 to 5; `before_pivot` runs between the mounts and pivot_root (createContainer hooks).
/// `trees` are the mounts the helper made: an image's overlay first (when made outside), then
/// the idmapped mounts in the order of `idmapped_sources`.
pub fn setup_rootfs(
    plan: &RootfsPlan,
    mut trees: std::collections::VecDeque<OwnedFd>,
    before_pivot: &dyn Fn() -> Result<()>,
) -> Result<()> {
    // 1. Stop mount events flowing from us to the host: every mount private, or a slave of
    // the host's (events still flow in) when the root is to be a slave or shared. pivot_root
    // refuses a shared root or parent, so a shared root is made shared only after the switch.
    let (first, step) = if plan.propagation & (libc::MS_SLAVE | libc::MS_SHARED) != 0 {
        (libc::MS_REC | libc::MS_SLAVE, "make mounts slaves of the host's under")
    } else {
        (libc::MS_REC | libc::MS_PRIVATE, "make mounts private under")
    };
    sys::mount(None, "/", None, first, None).step(step, Some("/"))?;

    // 2. Sources first: a later mount may cover them (the tmpfs root is staged on /tmp).
    let image_outside = plan.image.as_ref().is_some_and(|i| i.outside);
    let root_tree = if plan.idmap_root || image_outside { trees.pop_front() } else { None };
    let mut sources = Vec::with_capacity(plan.mounts.len());
    for (i, op) in plan.mounts.iter().enumerate() {
        sources.push(match &op.kind {
            MountKind::Bind { idmap: true, source, .. } => {
                Some(trees.pop_front().ok_or_else(|| {
                    SetupError::sys(
                        "receive the idmapped mount of",
                        Some(source),
                        Errno(libc::EBADF),
                    )
                })?)
            }
            MountKind::Bind { source, .. } if !plan.bind_roots.is_empty() => Some(open_host_path(
                &plan.bind_roots,
                source,
                libc::O_PATH,
                &format!("mounts[{i}].source"),
            )?),
            MountKind::Bind { source, .. } => {
                Some(sys::open(source, libc::O_PATH).step("open bind source", Some(source))?)
            }
            MountKind::Fs { .. } => None,
        });
    }
    // The host's nodes of linux.devices, when they are bound rather than made.
    let mut host_nodes = Vec::new();
    if plan.bind_devices {
        for (i, d) in plan.devices.iter().enumerate() {
            if d.file_type == libc::S_IFIFO {
                host_nodes.push(None);
                continue;
            }
            let fd = sys::open(&d.path, libc::O_PATH).map_err(|e| {
                let err = SetupError::sys("open the host's device", Some(&d.path), e);
                if e.0 == libc::ENOENT {
                    err.with_hint(format!("linux.devices[{i}]: in a user namespace a device node cannot be made, only bound from the host's, and the host has none at {}", d.path))
                } else {
                    err
                }
            })?;
            host_nodes.push(Some(fd));
        }
    }
    let wants_dev = plan.mounts.iter().any(|m| m.destination == "/dev");
    let mut devices = Vec::new();
    if wants_dev {
        for name in DEFAULT_DEVICES {
            let p = format!("/dev/{name}");
            match sys::open(&p, libc::O_PATH) {
                Ok(fd) => devices.push((name, fd)),
                Err(Errno(libc::ENOENT)) => {}
                Err(e) => return Err(SetupError::sys("open device", Some(&p), e)),
            }
        }
    }

    // 3. The root becomes a mount of its own, as pivot_root requires.
    let mut root_fd = None;
    let root_dir = match &plan.root {
        // An image's overlay, received or made now (its layers named by path, resolved before
        // the staging point is covered), goes on the staging point as an idmapped root does.
        _ if plan.image.is_some() => {
            let tree = match (root_tree, &plan.image) {
                (Some(t), _) => t,
                (None, Some(img)) if !img.outside => img.open_in_place()?,
                _ => {
                    return Err(SetupError::sys(
                        "receive the overlay of the image",
                        None,
                        Errno(libc::EBADF),
                    ))
                }
            };
            let staging =
                sys::open(STAGING, libc::O_PATH | libc::O_DIRECTORY).step("open", Some(STAGING))?;
            sys::move_mount(tree.as_raw_fd(), staging.as_raw_fd())
                .step("mount the image's overlay on", Some(STAGING))?;
            STAGING.to_owned()
        }
        // An idmapped root arrives ready: it is put on the staging point, so the host path
        // (and the folders above it, which its new owner may not enter) is not walked again.
        Some(path) if plan.idmap_root => {
            let tree = root_tree.ok_or_else(|| {
                SetupError::sys("receive the idmapped mount of", Some(path), Errno(libc::EBADF))
            })?;
            let staging =
                sys::open(STAGING, libc::O_PATH | libc::O_DIRECTORY).step("open", Some(STAGING))?;
            sys::move_mount(tree.as_raw_fd(), staging.as_raw_fd())
                .step("mount the idmapped rootfs on", Some(STAGING))?;
            STAGING.to_owned()
        }
        // Confined to bind roots: the root opened once beneath its root, and a copy of its
        // mount put back on that very directory (by descriptor). The copy's own descriptor is
        // the root from here on, so the path is never walked again, and nothing of the host
        // is covered (host paths that later mounts name, an overlay's lowerdir, stay visible).
        Some(path) if !plan.bind_roots.is_empty() => {
            let fd = open_host_path(
                &plan.bind_roots,
                path,
                libc::O_PATH | libc::O_DIRECTORY,
                "root.path",
            )?;
            let tree =
                sys::open_tree_clone(fd.as_raw_fd(), true).step("bind rootfs", Some(path))?;
            sys::move_mount(tree.as_raw_fd(), fd.as_raw_fd()).step("bind rootfs", Some(path))?;
            root_fd = Some(tree);
            path.clone()
        }
        Some(path) => {
            let fd = sys::open(path, libc::O_PATH | libc::O_DIRECTORY)
                .step("open rootfs", Some(path))?;
            bind_all(fd.as_raw_fd(), fd.as_raw_fd(), true, 0).step("bind rootfs", Some(path))?;
            path.clone()
        }
        None => {
            sys::mount(
                Some("tmpfs"),
                STAGING,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some("mode=0755"),
            )
            .step("mount tmpfs root on", Some(STAGING))?;
            STAGING.to_owned()
        }
    };
    let root = match root_fd {
        Some(fd) => fd,
        None => sys::open(&root_dir, libc::O_PATH | libc::O_DIRECTORY)
            .step("open rootfs", Some(&root_dir))?,
    };

    // 4. The mounts, in the order given.
    for (op, src) in plan.mounts.iter().zip(sources) {
        mount_one(root.as_raw_fd(), op, src)?;
        if op.destination == "/dev" {
            populate_dev(root.as_raw_fd(), &devices)?;
        }
    }

    // The nodes of linux.devices, over the mounts (a /dev tmpfs among them).
    for (i, d) in plan.devices.iter().enumerate() {
        make_node(root.as_raw_fd(), i, d, host_nodes.get_mut(i).and_then(Option::take))?;
    }

    before_pivot()?;

    // 5. Into the new root; the old one is detached, not merely hidden.
    sys::fchdir(root.as_raw_fd()).step("chdir into", Some(&root_dir))?;
    sys::pivot_root(".", ".").step("pivot_root into", Some(&root_dir))?;
    sys::umount2(".", libc::MNT_DETACH).step("detach the old root", None)?;
    sys::chdir("/").step("chdir to", Some("/"))?;
    drop(root);
    Ok(())
}

/// Step 6: hide and protect paths, and make the root read-only if asked. Runs after the sysctls
/// are written (they live under /proc/sys, which is usually made read-only here).
pub fn finish_rootfs(plan: &RootfsPlan) -> Result<()> {
    let root = sys::open("/", libc::O_PATH | libc::O_DIRECTORY).step("open new root", Some("/"))?;
    for p in &plan.masked_paths {
        mask_path(root.as_raw_fd(), p)?;
    }
    for p in &plan.readonly_paths {
        readonly_path(root.as_raw_fd(), p)?;
    }
    if plan.readonly_root {
        sys::mount_setattr(libc::AT_FDCWD, "/", 0, MOUNT_ATTR_RDONLY, 0)
            .step("make read-only the root", Some("/"))?;
    }
    // Last, the root's own propagation (linux.rootfsPropagation), now that it is the root and
    // nothing more is bound from it: shared (a peer of the mount namespaces made from the
    // container's, still a slave of the host's) or unbindable. Private and slave are what step
    // 1 made it.
    if plan.propagation & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0 {
        sys::mount(None, "/", None, plan.propagation, None)
            .step("set the propagation (linux.rootfsPropagation) of", Some("/"))?;
    }
    Ok(())
}

/// Set the attributes of a detached copy: `rec` on every mount of it, then `top` on the mount
/// itself. A clear the kernel refuses (it locks what a less privileged mount namespace
/// inherited: a read-only host mount stays read-only there) is dropped and the rest applied, as
/// runc keeps locked flags.
pub fn set_tree_attrs(tree: RawFd, rec: &Attrs, top: &Attrs) -> sys::SysResult<()> {
    for (a, flags) in [(rec, libc::AT_RECURSIVE as libc::c_uint), (top, 0)] {
        if a.is_empty() {
            continue;
        }
        let flags = flags | libc::AT_EMPTY_PATH as libc::c_uint;
        let (set, clear) = a.kernel();
        match sys::mount_setattr(tree, "", flags, set, clear) {
            Err(Errno(libc::EPERM)) if clear != 0 => {
                let (set, clear) = a.without_clears().kernel();
                sys::mount_setattr(tree, "", flags, set, clear & MOUNT_ATTR_ATIME_MASK)?
            }
            r => r?,
        }
    }
    Ok(())
}

/// Bind the mount tree at `src` onto `target`, with `rec` (every mount of the copy) and `top`
/// (the copied mount itself) set on the copy before it is attached.
fn bind_fd(
    src: RawFd,
    target: RawFd,
    recursive: bool,
    rec: &Attrs,
    top: &Attrs,
) -> sys::SysResult<()> {
    let tree = sys::open_tree_clone(src, recursive)?;
    set_tree_attrs(tree.as_raw_fd(), rec, top)?;
    sys::move_mount(tree.as_raw_fd(), target)
}

/// A bind with `attrs` on every mount it copies (the fall-backs that show the host's own).
fn bind_all(src: RawFd, target: RawFd, recursive: bool, attrs: u64) -> sys::SysResult<()> {
    let a = Attrs::setting(attrs);
    let none = Attrs::default();
    if recursive {
        bind_fd(src, target, true, &a, &none)
    } else {
        bind_fd(src, target, false, &none, &a)
    }
}

fn mount_one(root: RawFd, op: &MountOp, src: Option<OwnedFd>) -> Result<()> {
    let dest = op.destination.as_str();
    match (&op.kind, src) {
        (MountKind::Bind { recursive, source, idmap, .. }, Some(src)) => {
            let dir = sys::is_dir_fd(src.as_raw_fd()).step("stat bind source", Some(source))?;
            let target = ensure_path(root, dest, dir)?;
            if *idmap {
                // Already a detached tree, its attributes set by the helper.
                sys::move_mount(src.as_raw_fd(), target.as_raw_fd())
                    .step("mount the idmapped bind onto", Some(dest))?;
            } else {
                bind_fd(src.as_raw_fd(), target.as_raw_fd(), *recursive, &op.rec_attrs, &op.attrs)
                    .step("bind mount onto", Some(dest))?;
            }
        }
        (MountKind::Fs { fstype, .. }, _) if fstype == "cgroup" || fstype == "cgroup2" => {
            // The cgroup filesystem as the container should see it: on a cgroup v2 host a fresh
            // cgroup2 mount (rooted at our cgroup namespace); on v1 and hybrid hosts, or where the
            // kernel refuses, the host's tree bound with the mount's flags (read-only as a rule).
            let target = ensure_path(root, dest, true)?;
            let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            let fresh = v2
                && sys::mount(
                    Some("cgroup2"),
                    &sys::fd_path(target.as_raw_fd()),
                    Some("cgroup2"),
                    op.flags,
                    None,
                )
                .is_ok();
            if !fresh {
                match sys::open("/sys/fs/cgroup", libc::O_PATH | libc::O_DIRECTORY) {
                    Ok(host) => bind_all(host.as_raw_fd(), target.as_raw_fd(), true, op.attrs.set)
                        .step("bind the host's cgroups onto", Some(dest))?,
                    Err(Errno(libc::ENOENT)) => {}
                    Err(e) => return Err(SetupError::sys("open", Some("/sys/fs/cgroup"), e)),
                }
            }
        }
        (MountKind::Fs { fstype, source }, _) => {
            let target = ensure_path(root, dest, true)?;
            let data = (!op.data.is_empty()).then_some(op.data.as_str());
            let r = sys::mount(
                Some(source),
                &sys::fd_path(target.as_raw_fd()),
                Some(fstype),
                op.flags,
                data,
            );
            match r {
                Ok(()) => {}
                // proc needs our own pid namespace, sysfs our own network namespace, mqueue our
                // own IPC namespace; without them, show the host's, read-only.
                Err(Errno(libc::EPERM))
                    if matches!(fstype.as_str(), "proc" | "sysfs" | "mqueue") =>
                {
                    let host = match sys::open(dest, libc::O_PATH) {
                        Ok(fd) => fd,
                        // Nothing to show (hosts without /dev/mqueue): leave the directory empty.
                        Err(Errno(libc::ENOENT)) => return Ok(()),
                        Err(e) => return Err(SetupError::sys("open host path for", Some(dest), e)),
                    };
                    let attrs = if fstype == "sysfs" {
                        op.attrs.set | MOUNT_ATTR_RDONLY
                    } else {
                        op.attrs.set
                    };
                    bind_all(host.as_raw_fd(), target.as_raw_fd(), true, attrs)
                        .step(&format!("bind host {fstype} onto"), Some(dest))?;
                }
                Err(e) => return Err(SetupError::sys(format!("mount {fstype} on"), Some(dest), e)),
            }
        }
        (MountKind::Bind { source, .. }, None) => {
            return Err(SetupError::sys("open bind source", Some(source), Errno(libc::EBADF)))
        }
    }
    if op.propagation != 0 {
        let target =
            sys::openat2_in_root(root, dest, libc::O_PATH).step("open mount", Some(dest))?;
        sys::mount(None, &sys::fd_path(target.as_raw_fd()), None, op.propagation, None)
            .step("set propagation of", Some(dest))?;
    }
    Ok(())
}

/// Make the node `d` (the `i`th of linux.devices) inside `root`: with mknod, its mode and
/// owner set; or, given the host's node (in a user namespace), bound from it. A node already
/// there is taken if it is the same device, and refused otherwise, as the runtime spec asks.
fn make_node(root: RawFd, i: usize, d: &crate::devices::Node, host: Option<OwnedFd>) -> Result<()> {
    let path = d.path.as_str();
    let same = |fd: RawFd| -> Result<bool> {
        let st = sys::fstat(fd).step("stat device node", Some(path))?;
        Ok(st.st_mode & libc::S_IFMT == d.file_type
            && (d.file_type == libc::S_IFIFO || st.st_rdev == d.rdev()))
    };
    if let Ok(fd) = sys::openat2_in_root(root, path, libc::O_PATH | libc::O_NOFOLLOW) {
        if same(fd.as_raw_fd())? {
            return Ok(());
        }
        if host.is_none() {
            return Err(SetupError::config(
                format!("linux.devices[{i}].path"),
                format!("{path} exists in the container and is not that device"),
            ));
        }
    }
    if let Some(host) = host {
        if !same(host.as_raw_fd())? {
            return Err(SetupError::config(
                format!("linux.devices[{i}]"),
                format!(
                    "the host's {path}, which a user namespace can only bind, is not that device"
                ),
            ));
        }
        let target = ensure_path(root, path, false)?;
        return bind_all(host.as_raw_fd(), target.as_raw_fd(), false, 0)
            .step("bind device", Some(path));
    }
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = if parent.is_empty() { "/" } else { parent };
    let dir = ensure_path(root, parent, true)?;
    sys::mknodat(dir.as_raw_fd(), name, d.file_type | d.mode, d.rdev())
        .step("make device node", Some(path))?;
    let node = sys::openat(dir.as_raw_fd(), name, libc::O_PATH | libc::O_NOFOLLOW)
        .step("open device node", Some(path))?;
    let magic = sys::fd_path(node.as_raw_fd());
    let c = sys::cstr(&magic).step("set the mode of", Some(path))?;
    // SAFETY: c is a valid C string; the magic link is the node itself (never followed further).
    if unsafe { libc::chmod(c.as_ptr(), d.mode) } != 0 {
        return Err(SetupError::sys("set the mode of", Some(path), Errno::last()));
    }
    // SAFETY: as above.
    if unsafe { libc::chown(c.as_ptr(), d.uid, d.gid) } != 0 {
        return Err(SetupError::sys("set the owner of", Some(path), Errno::last()));
    }
    Ok(())
}

/// Open `dest` inside `root`, creating what is missing: directories, and the last component as
/// an empty file when `dir` is false (a bind of a file needs a file to land on).
fn ensure_path(root: RawFd, dest: &str, dir: bool) -> Result<OwnedFd> {
    match sys::openat2_in_root(root, dest, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno(libc::ENOENT)) => {}
        Err(e) => return Err(SetupError::sys("resolve mount target", Some(dest), e)),
    }
    let parts: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    let mut prefix = String::new();
    for (i, name) in parts.iter().enumerate() {
        let parent = if prefix.is_empty() { "/".to_owned() } else { prefix.clone() };
        prefix.push('/');
        prefix.push_str(name);
        match sys::openat2_in_root(root, &prefix, libc::O_PATH) {
            Ok(_) => continue,
            Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(SetupError::sys("resolve mount target", Some(&prefix), e)),
        }
        let pfd = sys::openat2_in_root(root, &parent, libc::O_PATH | libc::O_DIRECTORY)
            .step("resolve mount target", Some(&parent))?;
        let last = i + 1 == parts.len();
        let r = if last && !dir {
            sys::create_file_at(pfd.as_raw_fd(), name, 0o644)
        } else {
            sys::mkdirat(pfd.as_raw_fd(), name, 0o755)
        };
        match r {
            Ok(()) | Err(Errno(libc::EEXIST)) => {}
            Err(e) => return Err(SetupError::sys("create mount point", Some(&prefix), e)),
        }
    }
    sys::openat2_in_root(root, dest, libc::O_PATH).step("resolve mount target", Some(dest))
}

fn populate_dev(root: RawFd, devices: &[(&str, OwnedFd)]) -> Result<()> {
    for (name, fd) in devices {
        let path = format!("/dev/{name}");
        let target = ensure_path(root, &path, false)?;
        bind_all(fd.as_raw_fd(), target.as_raw_fd(), false, 0).step("bind device", Some(&path))?;
    }
    let dev = sys::openat2_in_root(root, "/dev", libc::O_PATH | libc::O_DIRECTORY)
        .step("open", Some("/dev"))?;
    for (name, target) in DEV_LINKS {
        match sys::symlinkat(target, dev.as_raw_fd(), name) {
            Ok(()) | Err(Errno(libc::EEXIST)) => {}
            Err(e) => return Err(SetupError::sys("create link", Some(&format!("/dev/{name}")), e)),
        }
    }
    Ok(())
}

fn mask_path(root: RawFd, path: &str) -> Result<()> {
    let target = match sys::openat2_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT)) => return Ok(()),
        Err(e) => return Err(SetupError::sys("open masked path", Some(path), e)),
    };
    if sys::is_dir_fd(target.as_raw_fd()).step("stat masked path", Some(path))? {
        sys::mount(
            Some("tmpfs"),
            &sys::fd_path(target.as_raw_fd()),
            Some("tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("size=0"),
        )
        .step("mask", Some(path))
    } else {
        let null = sys::open("/dev/null", libc::O_PATH).step("open", Some("/dev/null"))?;
        bind_all(null.as_raw_fd(), target.as_raw_fd(), false, MOUNT_ATTR_RDONLY)
            .step("mask", Some(path))
    }
}

fn readonly_path(root: RawFd, path: &str) -> Result<()> {
    let target = match sys::openat2_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT)) => return Ok(()),
        Err(e) => return Err(SetupError::sys("open read-only path", Some(path), e)),
    };
    bind_all(target.as_raw_fd(), target.as_raw_fd(), true, MOUNT_ATTR_RDONLY)
        .step("make read-only", Some(path))
}
