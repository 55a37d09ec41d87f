//! Phase 2, the helper outside the container: lease the container's ids if it needs a range
//! of its own, check the host, join the namespaces to join, make the cgroup, clone the child
//! into its new namespaces (born in its cgroup on v2), write its id maps, move it into its
//! cgroup (v1), attach what comes from outside (an image's overlay, its idmapped mounts, then
//! the hooks that prepare its namespaces; networks to come), and release it into its own
//! set-up (`child`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;

use super::prepare::Prepared;
use super::signals::{install_forwarding, CHILD};
use crate::child::{self, Detach};
use crate::error::{Result, SetupError};
use crate::host;
use crate::idmap;
use crate::image_root::ImageRoot;
use crate::namespaces::{NsKind, NsPlan};
use crate::rootfs::IdmapSource;
use crate::spec::IdMapping;
use crate::sys::{self, Errno};
use crate::tty::socketpair;

/// A child that exists, has its id maps, and has been released into its own set-up.
pub(super) struct Launched {
    pub(super) pid: libc::pid_t,
    pub(super) reports: OwnedFd,
    pub(super) guard: ChildGuard,
    pub(super) cgroup: Option<crate::cgroup::Cgroup>,
    /// Its resctrl group (`linux.intelRdt`), given back with it.
    pub(super) rdt: Option<crate::resctrl::RdtGroup>,
    /// What was asked for and not done (best-effort limits), for the caller to hear.
    pub(super) warnings: Vec<String>,
    /// The container's network attachment: torn down when dropped (after the child).
    pub(super) network: Option<crate::network::Attached>,
}

impl Drop for Launched {
    /// Given up before it was handed on (its set-up failed): the child is killed and reaped,
    /// then its cgroup removed (not before: a cgroup with a process in it cannot be).
    fn drop(&mut self) {
        if self.guard.0 > 0 {
            drop(std::mem::replace(&mut self.guard, ChildGuard(0)));
            if let Some(cg) = self.cgroup.take() {
                cg.remove();
            }
            if let Some(g) = self.rdt.take() {
                g.remove();
            }
        }
        // The attachment outlives the child: a container's packets never find its address
        // handed to another.
        drop(self.network.take());
    }
}

/// Kills and reaps the child if set-up stops half-way.
pub(super) struct ChildGuard(pub(super) libc::pid_t);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = sys::kill(self.0, libc::SIGKILL);
            let _ = sys::waitpid(self.0, 0);
        }
    }
}

/// The first act of the launch, the first thing it takes: with `io.ns.userns: auto` (the
/// plan's `lease_needed`), a free range of host ids onto which the container's ids 0-65535 are
/// mapped, leased for as long as the container lives (held by the helper, and by the monitor
/// it forks). The modes take it before they record anything, so that a created container's
/// config.json carries the maps it really has.
pub(super) fn lease_ids(p: &mut Prepared) -> Result<()> {
    if !p.lease_needed || p.lease.is_some() {
        return Ok(());
    }
    let l = idmap::lease_range()?;
    let all = vec![IdMapping { container_id: 0, host_id: l.first, size: idmap::AUTO_SIZE }];
    p.uid_maps = all.clone();
    p.gid_maps = all;
    p.lease = Some(l);
    Ok(())
}

/// The steps both modes share: check the host, join namespaces, make the cgroup, clone, write
/// the id maps (parent side, outside the container), place the child in its cgroup, attach
/// what comes from outside (`attach_before_release`), release the child. The plan's ids are
/// leased already (`lease_ids`).
pub(super) fn launch(p: &Prepared, detach: Detach, forward_signals: bool) -> Result<Launched> {
    // SAFETY: plain syscall.
    let euid = unsafe { libc::geteuid() };
    if p.ns.has_new(NsKind::User) {
        if let Some(b) = host::userns_block(euid) {
            let mut e = SetupError::sys("create user namespace", None, Errno(libc::EPERM));
            e.message = format!("cannot create a user namespace: {}", b.reason);
            return Err(e.with_hint(format!("run: {}", b.fix)));
        }
    }
    join_namespaces(&p.ns, euid)?;

    let (go_r, go_w) = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
    let (rep_r, rep_w) = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
    if forward_signals {
        install_forwarding();
    }

    let idmapped = p.rootfs.as_ref().map(|r| r.idmapped_sources()).unwrap_or_default();
    let image = p.rootfs.as_ref().and_then(|r| r.image.as_ref()).filter(|i| i.outside);
    let trees = if idmapped.is_empty() && image.is_none() { None } else { Some(socketpair()?) };
    let mut detach = detach;
    detach.trees = trees.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
    detach.lease = p.lease.as_ref().map(|l| l.lock.as_raw_fd());

    // The cgroup exists before the child: on cgroup v2 the child is born in it
    // (CLONE_INTO_CGROUP); on v1 it is moved there before it is released. Either way it never
    // runs an instruction of its set-up outside.
    let mut warnings = Vec::new();
    let made = match &p.cgroup {
        Some((rel, res)) if euid == 0 => crate::cgroup::Cgroup::create(rel, res).map(Some),
        Some((rel, res)) => crate::cgroup::Cgroup::create_delegated(rel, res).map(Some).map_err(|e| {
            if e.hint.is_none() {
                e.with_hint("limits need cgroups delegated to your user (cgroup v2 with systemd's Delegate=yes); run as root or without limits")
            } else {
                e
            }
        }),
        None => Ok(None),
    };
    let cgroup = match made {
        Ok(c) => c,
        // Asked for on a best-effort basis: the container runs without its limits, and is told.
        Err(e) if p.best_effort_limits => {
            let hint = e.hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
            warnings.push(format!("limits not applied: {}{hint}", e.message));
            None
        }
        Err(e) => return Err(e),
    };
    let born_in = cgroup
        .as_ref()
        .and_then(|c| c.v2_dir())
        .and_then(|d| sys::open(d, libc::O_RDONLY | libc::O_DIRECTORY).ok());
    let cloned =
        match sys::clone_fork_into(p.ns.clone_flags(), born_in.as_ref().map(|f| f.as_raw_fd())) {
            // A kernel before 5.7 has no CLONE_INTO_CGROUP: placed after the clone, as on v1.
            Err(Errno(libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP)) if born_in.is_some() => {
                sys::clone_fork_into(p.ns.clone_flags(), None).map(|pid| (pid, false))
            }
            r => r.map(|pid| (pid, born_in.is_some())),
        };
    let (pid, placed) = match cloned {
        Ok(v) => v,
        Err(e) => {
            if let Some(cg) = &cgroup {
                cg.remove();
            }
            return Err(clone_error(e, &p.ns));
        }
    };
    if pid == 0 {
        drop(go_w);
        drop(rep_r);
        child::child_main(p, go_r, rep_w, detach);
    }
    drop(born_in);
    if forward_signals {
        CHILD.store(pid, Ordering::Relaxed);
    }
    drop(go_r);
    drop(rep_w);
    let mut guard = ChildGuard(pid);

    // The child waits on `go` until its ids mean something, until it is in its cgroup, and
    // until what comes from outside is attached.
    let mut rdt = None;
    let prepared = (|| {
        if p.ns.has_new(NsKind::User) {
            idmap::write_id_maps(pid, &p.uid_maps, &p.gid_maps, p.map_writer)?;
        }
        if let (Some(cg), false) = (&cgroup, placed) {
            cg.add(pid)?;
        }
        if let Some(plan) = &p.rdt {
            rdt = Some(crate::resctrl::RdtGroup::join(plan, &p.id, pid)?);
        }
        let trees = trees.as_ref().map(|(ours, _)| ours.as_raw_fd());
        let network = attach_before_release(p, pid, image, &idmapped, trees)?;
        sys::write_all(go_w.as_raw_fd(), b"G")
            .map_err(|e| SetupError::sys("release the container", None, e))?;
        Ok(network)
    })();
    let network = match prepared {
        Ok(n) => n,
        Err(e) => {
            // The child first (a cgroup with a process in it cannot be removed), then its
            // cgroup. An attachment made before the failure was undone as it was dropped.
            drop(std::mem::replace(&mut guard, ChildGuard(0)));
            if let Some(cg) = &cgroup {
                cg.remove();
            }
            if let Some(g) = rdt.take() {
                g.remove();
            }
            return Err(e);
        }
    };
    Ok(Launched { pid, reports: rep_r, guard, cgroup, rdt, warnings, network })
}

fn join_namespaces(ns: &NsPlan, euid: u32) -> Result<()> {
    // Root joins the user namespace last (joining it first would lose the privilege it holds
    // over namespaces owned by the host); anyone else joins it first, since it is the user
    // namespace that gives them the privilege to join the rest. A mount namespace is joined by
    // the child itself (see `child`): the helper goes on working with the host's paths (the
    // cgroup, the state directory, the id maps, the hooks).
    let mut order: Vec<&(NsKind, String)> =
        ns.join.iter().filter(|(k, _)| *k != NsKind::Mount).collect();
    if euid != 0 {
        order.sort_by_key(|(k, _)| *k != NsKind::User);
    }
    let mut fds: Vec<(NsKind, String, OwnedFd)> = Vec::new();
    for (kind, path) in order {
        let fd = sys::open(path, libc::O_RDONLY).map_err(|e| {
            let err = SetupError::sys(format!("open {} namespace", kind.oci_name()), Some(path), e);
            if e.0 == libc::EACCES && euid != 0 {
                // A container's PID 1 is not dumpable: its /proc files are not its user's.
                err.with_hint("if this names a container's PID 1, name another of its processes (its command, a child of PID 1): PID 1 keeps its /proc entries to itself")
            } else {
                err
            }
        })?;
        fds.push((*kind, path.clone(), fd));
    }
    for (kind, path, fd) in &fds {
        sys::setns(fd.as_raw_fd(), kind.clone_flag()).map_err(|e| {
            SetupError::sys(format!("join {} namespace", kind.oci_name()), Some(path), e)
        })?;
    }
    Ok(())
}

fn clone_error(e: Errno, ns: &NsPlan) -> SetupError {
    let err = SetupError::sys("create namespaces (clone3)", None, e);
    // SAFETY: plain syscall.
    let euid = unsafe { libc::geteuid() };
    match e.0 {
        libc::EPERM | libc::ENOSPC | libc::EUSERS if ns.has_new(NsKind::User) => match host::userns_block(euid) {
            Some(b) => err.with_hint(format!("{}; to allow them: {}", b.reason, b.fix)),
            None if e.0 == libc::EPERM => err.with_hint("creating these namespaces needs a user namespace or root"),
            None => err.with_hint("the limit on user namespaces was reached (user.max_user_namespaces, or 32 levels of nesting)"),
        },
        libc::EPERM => err.with_hint("creating namespaces without a user namespace needs root (CAP_SYS_ADMIN)"),
        libc::EINVAL => err.with_hint("this kernel lacks one of the requested namespaces"),
        _ => err,
    }
}

/// The seam between the namespaces and the container's own set-up: what the helper attaches to
/// the container from outside, in this order, once its namespaces exist (the child is cloned,
/// its id maps are written, it is in its cgroup) and before it is released. The child still
/// waits on `go`, so everything attached here is in place before the first step of its own
/// set-up (`child`):
///
/// 1. an image's root filesystem (root's containers in a user namespace): the overlay of its
///    layers (shared, read-only, owned by host ids) and of an upper directory of the
///    container's own, each an idmapped mount through the child's user namespace (which needs
///    the child and its maps, see `image_root`), sent first down `trees`; the child takes it
///    as its root in place of the bind of `root.path` (see `prepare::plan_rootfs`);
/// 2. idmapped mounts: detached copies of the root and of bind sources whose ids are seen
///    through the child's user namespace, sent down `trees` in the order of
///    `RootfsPlan::idmapped_sources`; the child attaches each where its plan puts it when it
///    builds its root filesystem;
/// 3. the network attachment (`io.ns.network`, see `crate::network`): per network a veth
///    whose peer is born in the child's network namespace, configured from here (addresses,
///    routes), its name on the network's resolver, and the container's hosts, resolv.conf and
///    hostname written for the spec's mounts to bind; the child, which brings its loopback
///    up before it builds its root, finds its interfaces there, configured (rootless
///    networking through pasta is to come);
/// 4. the hooks that prepare the namespaces (OCI `prestart`, `createRuntime`), last, so that
///    they see all of the above.
///
/// A failure ends the launch: the child is killed and reaped, then its cgroup removed; what an
/// attachment made outside is its own to give back.
fn attach_before_release(
    p: &Prepared,
    pid: libc::pid_t,
    image: Option<&ImageRoot>,
    idmapped: &[IdmapSource],
    trees: Option<RawFd>,
) -> Result<Option<crate::network::Attached>> {
    if let (Some(img), Some(sock)) = (image, trees) {
        let overlay = img.open_idmapped(pid)?;
        sys::send_fd(sock, overlay.as_raw_fd(), b"tree").map_err(|e| {
            SetupError::sys("hand over the overlay of", Some(&img.dir.display().to_string()), e)
        })?;
    }
    if let Some(sock) = trees {
        make_idmapped_mounts(pid, idmapped, sock)?;
    }
    let network = match &p.network {
        Some(plan) => Some(crate::network::attach(plan, pid, p.hostname.as_deref())?),
        None => None,
    };
    // The namespaces exist and set-up has not begun: the hooks that prepare them (networks).
    // Hooks see the state `created`, as the runtime spec's lifecycle (and crun) words it.
    let state = p.hook_state("created", pid);
    crate::hooks::run_hooks("prestart", &p.hooks.prestart, &state)?;
    crate::hooks::run_hooks("createRuntime", &p.hooks.create_runtime, &state)?;
    Ok(network)
}

/// Idmapped mounts are made here, outside: the child, inside its user namespace, may not make
/// one of a host filesystem. Each is a detached copy of the source whose ids are seen through
/// the child's user namespace, sent to the child to attach where it belongs.
fn make_idmapped_mounts(
    pid: libc::pid_t,
    sources: &[IdmapSource],
    sock: libc::c_int,
) -> Result<()> {
    let ns_path = format!("/proc/{pid}/ns/user");
    let userns = sys::open(&ns_path, libc::O_RDONLY)
        .map_err(|e| SetupError::sys("open the user namespace", Some(&ns_path), e))?;
    for s in sources {
        let path = &s.path;
        let src = s.open()?;
        let tree = sys::open_tree_clone(src.as_raw_fd(), s.recursive)
            .map_err(|e| SetupError::sys("copy the mount of", Some(path), e))?;
        sys::idmap_tree(tree.as_raw_fd(), s.idmap_recursive, 0, userns.as_raw_fd()).map_err(|e| {
            let err = SetupError::sys("make an idmapped mount of", Some(path), e);
            match e.0 {
                libc::EINVAL | libc::EOPNOTSUPP => err.with_hint("its filesystem (or the kernel) does not support idmapped mounts; drop the idmap option, or use userns=host"),
                libc::EPERM => err.with_hint("idmapped mounts of host files need root"),
                _ => err,
            }
        })?;
        crate::rootfs::set_tree_attrs(tree.as_raw_fd(), &s.rec_attrs, &s.attrs).map_err(|e| {
            SetupError::sys("set the attributes of the idmapped mount of", Some(path), e)
        })?;
        sys::send_fd(sock, tree.as_raw_fd(), b"tree")
            .map_err(|e| SetupError::sys("hand over the idmapped mount of", Some(path), e))?;
    }
    Ok(())
}
