//! The helper's side (the parent, outside the container): check the request, join and create
//! namespaces, write the id maps, release the child, relay what happens to the caller, forward
//! signals, and report the exit status.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::child::{self, Detach};
use crate::error::{Result, SetupError};
use crate::host;
use crate::idmap::{self, Writer};
use crate::mounts::{self, plan_mounts};
use crate::namespaces::{NsKind, NsPlan};
use crate::process::{self, Command};
use crate::proto::{self, Event, LineReader, Report};
use crate::rootfs::RootfsPlan;
use crate::spec::{CreateRequest, IdMapping, Process, RunRequest};
use crate::state::{self, ContainerDir, ExitRecord, Record};
use crate::sys::{self, Errno};

/// Everything the child needs, checked and computed before the clone.
pub struct Prepared {
    pub ns: NsPlan,
    pub uid_maps: Vec<IdMapping>,
    pub gid_maps: Vec<IdMapping>,
    pub map_writer: Writer,
    pub time_offsets: String,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: Option<RootfsPlan>,
    pub sysctl: Vec<(String, String)>,
    pub process: Process,
    pub command: Command,
    pub init: bool,
    pub preserve_fds: u32,
    pub hooks: crate::spec::Hooks,
    /// The cgroup to make (relative to each hierarchy) and its limits, when there is one.
    pub cgroup: Option<(String, crate::cgroup::Resources)>,
    /// Limits that cannot be applied are a warning, not an error (`io.ns.limits: best-effort`).
    pub best_effort_limits: bool,
    pub caps: Option<crate::caps::CapSets>,
    /// The compiled seccomp filter, loaded last before the command runs.
    pub seccomp: Option<Vec<crate::seccomp::Insn>>,
    /// What hooks are told about the container.
    pub id: String,
    pub bundle: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The range of host ids leased for the container (`io.ns.userns: auto`), held while it lives.
    pub lease: Option<idmap::Lease>,
}

impl Prepared {
    pub fn hook_state<'a>(&'a self, status: &'a str, pid: i32) -> crate::hooks::HookState<'a> {
        crate::hooks::HookState {
            oci_version: crate::SPEC_VERSION,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }
}

pub fn prepare(req: &RunRequest) -> Result<Prepared> {
    let spec = &req.config;
    let bundle = req.bundle.as_deref();
    let ns = NsPlan::from_spec(spec)?;
    let joined = |k: NsKind| ns.join.iter().any(|(j, _)| *j == k);
    let linux = spec.linux.clone().unwrap_or_default();
    let process =
        spec.process.clone().ok_or_else(|| SetupError::config("process", "is required"))?;
    if process.args.is_empty() {
        return Err(SetupError::config("process.args", "must not be empty"));
    }
    if !process.cwd.starts_with('/') {
        return Err(SetupError::config("process.cwd", "must be an absolute path"));
    }
    process::validate_rlimits(&process.rlimits)?;
    let command = Command::new(&process.args, &process.env)?;
    let caps = process.capabilities.as_ref().map(crate::caps::CapSets::from_spec).transpose()?;

    // Root's default: a range of host ids of the container's own, so root inside is nobody
    // outside. Leased here, held until the container is gone.
    let mut linux = linux;
    let mut lease = None;
    match spec.annotations.get("io.ns.userns").map(String::as_str) {
        None | Some("") => {}
        Some("auto") => {
            if !ns.has_new(NsKind::User) {
                return Err(SetupError::config(
                    "annotations.io.ns.userns",
                    "auto needs a new user namespace",
                ));
            }
            if !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty() {
                return Err(SetupError::config(
                    "annotations.io.ns.userns",
                    "auto leases the id maps itself: give no linux.uidMappings",
                ));
            }
            // SAFETY: plain syscall.
            if unsafe { libc::geteuid() } != 0 {
                return Err(SetupError::config(
                    "annotations.io.ns.userns",
                    "auto needs root (others map their own id and /etc/subuid range)",
                ));
            }
            let l = idmap::lease_range()?;
            let all = vec![IdMapping { container_id: 0, host_id: l.first, size: idmap::AUTO_SIZE }];
            linux.uid_mappings = all.clone();
            linux.gid_mappings = all;
            lease = Some(l);
        }
        Some(other) => {
            return Err(SetupError::config(
                "annotations.io.ns.userns",
                format!("unknown mode {other:?} (auto is the only one)"),
            ))
        }
    }

    idmap::validate("linux.uidMappings", &linux.uid_mappings)?;
    idmap::validate("linux.gidMappings", &linux.gid_mappings)?;
    if ns.has_new(NsKind::User) {
        if linux.uid_mappings.is_empty() {
            return Err(SetupError::config(
                "linux.uidMappings",
                "is required with a new user namespace",
            ));
        }
    } else if !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty() {
        return Err(SetupError::config("linux.uidMappings", "needs a new user namespace"));
    }
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let map_writer = idmap::choose_writer(euid, egid, &linux.uid_mappings, &linux.gid_mappings);

    let mut time_offsets = String::new();
    for (clock, off) in &linux.time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(SetupError::config(
                format!("linux.timeOffsets.{clock}"),
                "only monotonic and boottime have offsets",
            ));
        }
        if off.nanosecs >= 1_000_000_000 {
            return Err(SetupError::config(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                "must be below 1000000000",
            ));
        }
        time_offsets.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
    }
    if !time_offsets.is_empty() && !ns.has_new(NsKind::Time) {
        return Err(SetupError::config("linux.timeOffsets", "needs a new time namespace"));
    }

    let hostname = spec.hostname.clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname.clone().filter(|h| !h.is_empty());
    for (field, v) in [("hostname", &hostname), ("domainname", &domainname)] {
        if let Some(v) = v {
            if !ns.has_new(NsKind::Uts) && !joined(NsKind::Uts) {
                return Err(SetupError::config(field, "needs a new uts namespace"));
            }
            if v.len() > 64 {
                return Err(SetupError::config(field, "must be at most 64 bytes"));
            }
        }
    }

    let propagation = match linux.rootfs_propagation.as_deref() {
        None | Some("") => 0,
        Some(p) => mounts::propagation_flag(p).ok_or_else(|| {
            SetupError::config("linux.rootfsPropagation", format!("unknown propagation {p:?}"))
        })?,
    };
    let rootfs = if ns.has_new(NsKind::Mount) {
        let root = spec.root.as_ref().map(|r| mounts::host_path(bundle, &r.path));
        Some(RootfsPlan {
            root,
            // Without root.path the root is a fresh tmpfs; an annotation makes it read-only.
            readonly_root: match &spec.root {
                Some(r) => r.readonly,
                None => spec.annotations.get("io.ns.root.readonly").is_some_and(|v| v == "true"),
            },
            mounts: plan_mounts(&spec.mounts, bundle)?,
            masked_paths: linux.masked_paths.clone(),
            readonly_paths: linux.readonly_paths.clone(),
            propagation,
            idmap_root: spec.annotations.get("io.ns.root.idmap").is_some_and(|v| v == "true")
                && spec.root.is_some(),
            bind_roots: mounts::bind_roots(&spec.annotations)?,
        })
    } else {
        if spec.root.is_some() || !spec.mounts.is_empty() {
            return Err(SetupError::config(
                if spec.root.is_some() { "root" } else { "mounts" },
                "needs a new mount namespace",
            ));
        }
        None
    };

    if rootfs.as_ref().is_some_and(|r| !r.idmapped_sources().is_empty())
        && !ns.has_new(NsKind::User)
    {
        return Err(SetupError::config(
            "mounts",
            "idmapped mounts need a new user namespace (their ids are seen through it)",
        ));
    }

    // A cgroup when limits are asked for (then also OOM reporting and stats). Without limits
    // none is made: on a v1 host that is eight folders made and removed per container, the
    // better part of a container's start-up time.
    let resources = linux.resources.clone().unwrap_or_default();
    let id_for_cgroup = req
        .create
        .as_ref()
        .map(|c| c.id.clone())
        .or_else(|| spec.annotations.get("io.ns.id").cloned());
    let cgroup = if !resources.is_empty() {
        crate::cgroup::plan_writes(crate::cgroup::layout(), &resources)?;
        let rel = match linux.cgroups_path.as_deref() {
            Some(p) if !p.is_empty() && !p.contains(':') && !p.split('/').any(|c| c == "..") => {
                p.trim_start_matches('/').to_owned()
            }
            _ => format!(
                "ns/{}",
                id_for_cgroup.unwrap_or_else(|| format!("run-{}", std::process::id()))
            ),
        };
        Some((rel, resources))
    } else {
        None
    };

    let sysctl = crate::sysctl::plan(&linux.sysctl, &ns)?;

    Ok(Prepared {
        ns,
        uid_maps: linux.uid_mappings.clone(),
        gid_maps: linux.gid_mappings.clone(),
        map_writer,
        time_offsets,
        hostname,
        domainname,
        rootfs,
        sysctl,
        process,
        command,
        init: req.init,
        preserve_fds: req.preserve_fds,
        hooks: spec.hooks.clone().unwrap_or_default(),
        cgroup,
        caps,
        seccomp: linux.seccomp.as_ref().map(crate::seccomp::compile).transpose()?,
        id: req
            .create
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| spec.annotations.get("io.ns.id").cloned())
            .unwrap_or_default(),
        bundle: req.bundle.clone().unwrap_or_default(),
        annotations: spec.annotations.clone(),
        lease,
        best_effort_limits: match spec.annotations.get("io.ns.limits").map(String::as_str) {
            None | Some("") | Some("required") => false,
            Some("best-effort") => true,
            Some(other) => {
                return Err(SetupError::config(
                    "annotations.io.ns.limits",
                    format!("unknown mode {other:?} (required or best-effort)"),
                ))
            }
        },
    })
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    // With a terminal, a window size change is passed on as a new size for it: the kernel
    // then signals the container's foreground group itself.
    if sig == libc::SIGWINCH && crate::tty::MASTER.load(Ordering::Relaxed) >= 0 {
        crate::tty::sync_winsize();
        return;
    }
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Signals the helper passes on to the container's first process. (Not SIGTTIN and SIGTTOU:
/// those are the caller's terminal telling the helper itself to wait.)
const FORWARDED: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
    libc::SIGTSTP,
];

/// Forward the helper's signals to `pid` from now on (0: to nobody).
pub fn forward_signals_to(pid: libc::pid_t) {
    if pid > 0 {
        install_forwarding();
    }
    CHILD.store(pid, Ordering::Relaxed);
}

fn install_forwarding() {
    for sig in FORWARDED {
        // SAFETY: installing a handler that only calls kill.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Kills and reaps the child if set-up stops half-way.
struct ChildGuard(libc::pid_t);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = sys::kill(self.0, libc::SIGKILL);
            let _ = sys::waitpid(self.0, 0);
        }
    }
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

/// Where events go: the control socket (helper mode) or the ns-oci command line.
pub type Sink<'a> = &'a mut dyn FnMut(&Event);

/// The helper's entry point: the request arrives on `control`, events leave on it.
/// Returns the helper's exit code.
pub fn helper_main(control: libc::c_int) -> i32 {
    // SAFETY: ignoring SIGPIPE so a vanished caller shows up as EPIPE, not death.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut reader = LineReader::with_limit(control, proto::MAX_REQUEST);
    let Some(line) = reader.next_line() else { return 125 };
    let mut sink = |e: &Event| {
        let _ = proto::send(control, e);
    };
    let req: RunRequest = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let err = SetupError::config("config", format!("is not a valid runtime spec: {e}"));
            sink(&Event::Error { error: err });
            sink(&Event::Exited { exit_code: Some(125), signal: None, oom_killed: false });
            return 125;
        }
    };
    proto::keep_control(reader);
    if req.die_with_parent {
        let _ = sys::set_pdeathsig(libc::SIGKILL);
        // SAFETY: plain syscall.
        if unsafe { libc::getppid() } == 1 {
            return 125;
        }
    }
    let result = match (&req.exec, &req.create) {
        (Some(ex), _) => crate::exec::exec(ex, &mut sink).map(|_| ()),
        (None, Some(cr)) => create(&req, cr, &mut sink),
        (None, None) => foreground(&req, &mut sink).map(|_| ()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            sink(&Event::Error { error: e });
            sink(&Event::Exited { exit_code: Some(125), signal: None, oom_killed: false });
            125
        }
    }
}

fn join_namespaces(ns: &NsPlan, euid: u32) -> Result<()> {
    // Root joins the user namespace last (joining it first would lose the privilege it holds
    // over namespaces owned by the host); anyone else joins it first, since it is the user
    // namespace that gives them the privilege to join the rest.
    let mut order: Vec<&(NsKind, String)> = ns.join.iter().collect();
    if euid != 0 {
        order.sort_by_key(|(k, _)| *k != NsKind::User);
    }
    let mut fds: Vec<(NsKind, String, OwnedFd)> = Vec::new();
    for (kind, path) in order {
        let fd = sys::open(path, libc::O_RDONLY).map_err(|e| {
            SetupError::sys(format!("open {} namespace", kind.oci_name()), Some(path), e)
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

/// A child that exists, has its id maps, and has been released into its own set-up.
struct Launched {
    pid: libc::pid_t,
    reports: OwnedFd,
    guard: ChildGuard,
    cgroup: Option<crate::cgroup::Cgroup>,
    /// What was asked for and not done (best-effort limits), for the caller to hear.
    warnings: Vec<String>,
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
        }
    }
}

/// The steps both modes share: check the host, join namespaces, clone, write the id maps
/// (parent side, outside the container), release the child.
fn launch(p: &Prepared, detach: Detach, forward_signals: bool) -> Result<Launched> {
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
    let trees = if idmapped.is_empty() { None } else { Some(socketpair()?) };
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

    // The child waits on `go` until its ids mean something, and until it is in its cgroup.
    let prepared = (|| {
        if p.ns.has_new(NsKind::User) {
            idmap::write_id_maps(pid, &p.uid_maps, &p.gid_maps, p.map_writer)?;
        }
        if let Some((ours, _)) = &trees {
            make_idmapped_mounts(pid, &idmapped, ours.as_raw_fd())?;
        }
        if let (Some(cg), false) = (&cgroup, placed) {
            cg.add(pid)?;
        }
        // The namespaces exist and set-up has not begun: the hooks that prepare them (networks).
        let state = p.hook_state("creating", pid);
        crate::hooks::run_hooks("prestart", &p.hooks.prestart, &state)?;
        crate::hooks::run_hooks("createRuntime", &p.hooks.create_runtime, &state)?;
        sys::write_all(go_w.as_raw_fd(), b"G")
            .map_err(|e| SetupError::sys("release the container", None, e))
    })();
    if let Err(e) = prepared {
        // The child first (a cgroup with a process in it cannot be removed), then its cgroup.
        drop(std::mem::replace(&mut guard, ChildGuard(0)));
        if let Some(cg) = &cgroup {
            cg.remove();
        }
        return Err(e);
    }
    Ok(Launched { pid, reports: rep_r, guard, cgroup, warnings })
}

/// Idmapped mounts are made here, outside: the child, inside its user namespace, may not make
/// one of a host filesystem. Each is a detached copy of the source whose ids are seen through
/// the child's user namespace, sent to the child to attach where it belongs.
fn make_idmapped_mounts(
    pid: libc::pid_t,
    sources: &[crate::rootfs::IdmapSource],
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
        sys::idmap_tree(tree.as_raw_fd(), s.recursive, s.attrs, userns.as_raw_fd()).map_err(|e| {
            let err = SetupError::sys("make an idmapped mount of", Some(path), e);
            match e.0 {
                libc::EINVAL | libc::EOPNOTSUPP => err.with_hint("its filesystem (or the kernel) does not support idmapped mounts; drop the idmap option, or use userns=host"),
                libc::EPERM => err.with_hint("idmapped mounts of host files need root"),
                _ => err,
            }
        })?;
        sys::send_fd(sock, tree.as_raw_fd(), b"tree")
            .map_err(|e| SetupError::sys("hand over the idmapped mount of", Some(path), e))?;
    }
    Ok(())
}

/// Run in the foreground: relay events, forward signals, return the exit status.
pub fn foreground(req: &RunRequest, sink: Sink) -> Result<(Option<i32>, Option<i32>)> {
    let p = prepare(req)?;
    let console = if p.process.terminal { Some(socketpair()?) } else { None };
    let detach =
        Detach { console: console.as_ref().map(|(_, c)| c.as_raw_fd()), ..Detach::default() };
    let mut l = launch(&p, detach, true)?;
    l.guard.0 = 0;
    let pid = l.pid;
    for message in std::mem::take(&mut l.warnings) {
        sink(&Event::Warning { message });
    }
    // The terminal's master arrives once the child has made it (or never, if it failed first).
    let master = console.and_then(|(ours, theirs)| {
        drop(theirs);
        sys::recv_fd(ours.as_raw_fd()).ok().flatten()
    });

    let mut started = false;
    let mut failed = false;
    let mut exit = None;
    let poststart = |p: &Prepared| {
        if let Err(e) =
            crate::hooks::run_hooks("poststart", &p.hooks.poststart, &p.hook_state("running", pid))
        {
            eprintln!("ns: {}", e.message);
        }
    };
    // Lines from the child, then None at their end: without init, the report pipe closes
    // when exec succeeds, and that is the start.
    let mut on_line = |line: Option<&[u8]>| match line.map(serde_json::from_slice::<Report>) {
        Some(Ok(Report::Started)) => {
            started = true;
            sink(&Event::Started { pid });
            poststart(&p);
        }
        Some(Ok(Report::Error { error })) => {
            failed = true;
            sink(&Event::Error { error });
        }
        Some(Ok(Report::Exit { code, signal })) => exit = Some((code, signal)),
        Some(Ok(Report::Created) | Err(_)) => {}
        None if !started && !failed => {
            started = true;
            sink(&Event::Started { pid });
            poststart(&p);
        }
        None => {}
    };
    match master {
        Some(m) => crate::tty::relay(m, l.reports.as_raw_fd(), &mut on_line),
        None => proto::each_line(l.reports.as_raw_fd(), &mut on_line),
    }
    let (_, status) =
        sys::waitpid(pid, 0).map_err(|e| SetupError::sys("wait for the container", None, e))?;
    CHILD.store(0, Ordering::Relaxed);
    let (code, signal) = crate::init::trusted_exit(exit, status);
    let oom_killed = l.cgroup.as_ref().is_some_and(|c| c.oom_killed());
    if let Some(cg) = l.cgroup.take() {
        cg.remove();
    }
    if let Err(e) =
        crate::hooks::run_hooks("poststop", &p.hooks.poststop, &p.hook_state("stopped", pid))
    {
        eprintln!("ns: {}", e.message);
    }
    sink(&Event::Exited { exit_code: code, signal, oom_killed });
    Ok((code, signal))
}

/// A connected pair of unix sockets, close-on-exec: the way a terminal's master travels.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    } != 0
    {
        return Err(SetupError::sys("create a socket pair", None, Errno::last()));
    }
    // SAFETY: two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Hand a terminal's master to the engine listening on `path` (OCI `--console-socket`).
pub fn send_to_console_socket(path: &str, master: &OwnedFd) -> Result<()> {
    let sock = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        SetupError::sys(
            "connect to the console socket",
            Some(path),
            Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    sys::send_fd(sock.as_raw_fd(), master.as_raw_fd(), b"/dev/ptmx")
        .map_err(|e| SetupError::sys("send the terminal to", Some(path), e))
}

/// Create a container that waits for `start` (OCI `create`): record it in the state directory,
/// then either leave it to the caller's subreaper or stay as its monitor.
pub fn create(req: &RunRequest, cr: &CreateRequest, sink: Sink) -> Result<()> {
    let p = prepare(req)?;
    if p.lease.is_some() && !cr.monitor {
        // Nobody would hold the lease once this process is gone.
        return Err(SetupError::config(
            "annotations.io.ns.userns",
            "auto needs a monitored container (ns's own create), not one left to an engine",
        ));
    }
    let dir = ContainerDir::create(Path::new(&cr.root), &cr.id)?;
    let mut saved = req.config.clone();
    if p.lease.is_some() {
        // The maps the container really has, for exec and inspect.
        let linux = saved.linux.get_or_insert_with(Default::default);
        linux.uid_mappings = p.uid_maps.clone();
        linux.gid_mappings = p.gid_maps.clone();
    }
    if let Ok(config) = serde_json::to_vec_pretty(&saved) {
        let _ = state::write_atomic(&dir.file("config.json"), &config);
    }
    if cr.monitor {
        return create_monitored(&p, req, cr, dir, sink);
    }
    let result = create_in(&p, req, cr, &dir, sink);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir.path);
    }
    result
}

/// With a monitor, the caller should not have to wait for the container to end: the monitor
/// is a process of its own (forked before the clone, so that it is the container's parent),
/// and this one returns as soon as the container is created.
fn create_monitored(
    p: &Prepared,
    req: &RunRequest,
    cr: &CreateRequest,
    dir: ContainerDir,
    sink: Sink,
) -> Result<()> {
    let (r, w) = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
    // SAFETY: the helper is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SetupError::sys("fork the monitor", None, Errno::last()));
    }
    if pid == 0 {
        drop(r);
        // The monitor leaves the caller's session and files; the caller may exit at any time.
        sys::detach_descriptors(w.as_raw_fd());
        // SAFETY: plain syscalls.
        unsafe {
            libc::setsid();
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let _ = sys::set_pdeathsig(0);
        let mut to_caller = |e: &Event| {
            let _ = proto::send(w.as_raw_fd(), e);
        };
        let code = match create_in(p, req, cr, &dir, &mut to_caller) {
            Ok(()) => 0,
            Err(e) => {
                to_caller(&Event::Error { error: e });
                let _ = std::fs::remove_dir_all(&dir.path);
                125
            }
        };
        if cr.remove_on_exit {
            let _ = std::fs::remove_dir_all(&dir.path);
        }
        // SAFETY: ends the monitor.
        unsafe { libc::_exit(code) }
    }
    drop(w);
    // Relay until the container is created (or set-up failed); then leave the monitor be.
    let mut rd = LineReader::new(r.as_raw_fd());
    let mut result = Err(SetupError::sys("create the container", None, Errno(libc::ECHILD))
        .with_hint("the monitor ended during set-up"));
    while let Some(line) = rd.next_line() {
        match serde_json::from_slice::<Event>(&line) {
            Ok(Event::Error { error }) => {
                result = Err(error);
                break;
            }
            Ok(e @ Event::Created { .. }) => {
                sink(&e);
                result = Ok(());
                break;
            }
            Ok(e @ Event::Warning { .. }) => sink(&e),
            _ => {}
        }
    }
    if result.is_err() {
        let _ = sys::waitpid(pid, 0);
    }
    result
}

fn create_in(
    p: &Prepared,
    req: &RunRequest,
    cr: &CreateRequest,
    dir: &ContainerDir,
    sink: Sink,
) -> Result<()> {
    let fifo_path = dir.file(state::EXEC_FIFO).display().to_string();
    let c = sys::cstr(&fifo_path)
        .map_err(|e| SetupError::sys("create the exec fifo", Some(&fifo_path), e))?;
    // SAFETY: c is a valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } != 0
        || unsafe { libc::chmod(c.as_ptr(), 0o622) } != 0
    {
        return Err(SetupError::sys("create the exec fifo", Some(&fifo_path), Errno::last()));
    }
    let fifo = sys::open(&fifo_path, libc::O_PATH)
        .map_err(|e| SetupError::sys("open the exec fifo", Some(&fifo_path), e))?;

    // A monitor takes the container's output into the log; the container reads nothing.
    let mut pipes = None;
    if cr.monitor && !p.process.terminal {
        let out = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
        let err = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
        let null = sys::open("/dev/null", libc::O_RDWR)
            .map_err(|e| SetupError::sys("open", Some("/dev/null"), e))?;
        pipes = Some((out, err, null));
    }
    let console = match (p.process.terminal, &cr.console_socket, cr.monitor) {
        (false, _, _) => None,
        (true, Some(_), false) | (true, None, true) => Some(socketpair()?),
        (true, None, false) => {
            return Err(SetupError::config(
                "process.terminal",
                "needs --console-socket to hand the terminal to",
            ))
        }
        (true, Some(_), true) => {
            return Err(SetupError::config(
                "consoleSocket",
                "a monitored container keeps its terminal: attach to it instead",
            ))
        }
    };
    // The monitor serves the terminal to attached clients from the moment the container exists.
    let listener = if console.is_some() && cr.monitor {
        Some(crate::attach::listen(&dir.path)?)
    } else {
        None
    };
    let detach = Detach {
        fifo: Some(fifo.as_raw_fd()),
        orphan: !cr.monitor,
        stdio: pipes.as_ref().map(|(o, e, n)| [n.as_raw_fd(), o.1.as_raw_fd(), e.1.as_raw_fd()]),
        console: console.as_ref().map(|(_, c)| c.as_raw_fd()),
        ..Detach::default()
    };
    let mut l = launch(p, detach, false)?;
    drop(fifo);
    for message in std::mem::take(&mut l.warnings) {
        sink(&Event::Warning { message });
    }
    let mut terminal = None;
    if let Some((ours, theirs)) = console {
        drop(theirs);
        if let Ok(Some(master)) = sys::recv_fd(ours.as_raw_fd()) {
            match (&cr.console_socket, listener) {
                (Some(path), _) => send_to_console_socket(path, &master)?,
                (None, Some(l)) => terminal = Some(crate::attach::Terminal::new(master, l)),
                (None, None) => {}
            }
        }
    }
    let logs = pipes.map(|(o, e, _null)| (o.0, e.0));

    let mut rd = LineReader::new(l.reports.as_raw_fd());
    loop {
        match rd.next_line().map(|l| serde_json::from_slice::<Report>(&l)) {
            Some(Ok(Report::Created)) => break,
            Some(Ok(Report::Error { error })) => return Err(error),
            Some(_) => continue,
            None => {
                return Err(SetupError::sys("create the container", None, Errno(libc::ECHILD))
                    .with_hint("its process ended during set-up"))
            }
        }
    }
    let pid = l.pid;
    let record = Record {
        oci_version: if req.config.oci_version.is_empty() {
            crate::SPEC_VERSION.into()
        } else {
            req.config.oci_version.clone()
        },
        id: cr.id.clone(),
        pid,
        start_time: state::process_start_time(pid).unwrap_or(0),
        bundle: req.bundle.clone().unwrap_or_default(),
        created: state::now_rfc3339(),
        annotations: req.config.annotations.clone(),
        // SAFETY: plain syscalls.
        owner: unsafe { libc::geteuid() },
        monitor_pid: cr.monitor.then(|| std::process::id() as i32),
        cgroup: l.cgroup.clone(),
    };
    dir.write_record(&record)?;
    if let Some(pf) = &cr.pid_file {
        state::write_atomic(Path::new(pf), pid.to_string().as_bytes())?;
    }
    sink(&Event::Created { pid });
    l.guard.0 = 0;
    match (logs, terminal) {
        (_, Some(term)) => monitor_terminal(dir, pid, term, rd, l.cgroup.as_ref(), sink),
        (Some((out, err)), None) => monitor(dir, pid, [out, err], rd, l.cgroup.as_ref(), sink),
        (None, None) => {}
    }
    Ok(())
}

/// Stay as the container's parent: copy its output into the log, one JSON object per line
/// (`{"time","stream","log"}`), then record how it ended.
fn monitor(
    dir: &ContainerDir,
    pid: libc::pid_t,
    streams: [OwnedFd; 2],
    reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let mut log = ContainerLog::open(dir);
    let names = ["stdout", "stderr"];
    let mut open = [true, true];
    let mut status = None;
    let mut grace = 0;
    sys::release_file_pages();
    while open.iter().any(|o| *o) {
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .zip(open)
            .map(|(s, o)| libc::pollfd {
                fd: if o { s.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        for i in 0..2 {
            if fds[i].revents == 0 {
                continue;
            }
            let mut buf = [0u8; 16384];
            match sys::read(streams[i].as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => log.feed(i, names[i], &buf[..n]),
            }
        }
        if gone_long_enough(pid, &mut status, &mut grace) {
            break;
        }
    }
    log.flush(&names);
    finish(dir, pid, status, reports, cgroup, sink);
}

/// Reap the container's process if it has ended; once it has, whatever still holds its output
/// (a process of a shared pid namespace) gets about a second. True when that is over.
fn gone_long_enough(pid: libc::pid_t, status: &mut Option<libc::c_int>, grace: &mut u32) -> bool {
    if status.is_none() {
        if let Ok((r, s)) = sys::waitpid(pid, libc::WNOHANG) {
            if r == pid {
                *status = Some(s);
            }
        }
        return false;
    }
    *grace += 1;
    *grace > 10
}

/// Record how the container ended, once it has: its exit code or signal, and whether the
/// OOM killer ended it.
fn finish(
    dir: &ContainerDir,
    pid: libc::pid_t,
    status: Option<libc::c_int>,
    mut reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let status = match status {
        Some(s) => s,
        None => sys::waitpid(pid, 0).map(|(_, s)| s).unwrap_or(0),
    };
    let mut exit = None;
    while let Some(line) = reports.next_line() {
        if let Ok(Report::Exit { code, signal }) = serde_json::from_slice::<Report>(&line) {
            exit = Some((code, signal));
        }
    }
    let (code, signal) = crate::init::trusted_exit(exit, status);
    let oom_killed = cgroup.is_some_and(|c| c.oom_killed());
    let _ = dir.write_exit(&ExitRecord {
        exit_code: code,
        signal,
        finished: state::now_rfc3339(),
        oom_killed,
    });
    sink(&Event::Exited { exit_code: code, signal, oom_killed });
}

/// The monitor of a container with a terminal: the terminal's output goes into the log (as
/// stdout) and to whoever is attached; attached clients type into it and resize it.
fn monitor_terminal(
    dir: &ContainerDir,
    pid: libc::pid_t,
    mut term: crate::attach::Terminal,
    reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let mut log = ContainerLog::open(dir);
    let mut status = None;
    let mut grace = 0;
    sys::release_file_pages();
    while term.open {
        term.step(100, &mut |bytes| log.feed(0, "stdout", bytes));
        if gone_long_enough(pid, &mut status, &mut grace) {
            break;
        }
    }
    log.flush(&["stdout"]);
    term.close_clients();
    let _ = std::fs::remove_file(dir.file(crate::attach::ATTACH_SOCKET));
    finish(dir, pid, status, reports, cgroup, sink);
}

/// A container's log file, written a whole line at a time: what a stream wrote after its last
/// newline waits for the rest (or for the end).
struct ContainerLog {
    file: Option<std::fs::File>,
    partial: [Vec<u8>; 2],
}

impl ContainerLog {
    fn open(dir: &ContainerDir) -> ContainerLog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.file(state::LOG_FILE))
            .ok();
        ContainerLog { file, partial: [Vec::new(), Vec::new()] }
    }

    /// Bytes of stream `i` (named `name` in the log).
    fn feed(&mut self, i: usize, name: &str, bytes: &[u8]) {
        self.partial[i].extend_from_slice(bytes);
        while let Some(nl) = self.partial[i].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=nl).collect();
            write_log_line(&mut self.file, name, &line);
        }
        crate::state::split_long_log_line(&mut self.partial[i], &mut |part| {
            write_log_line(&mut self.file, name, part)
        });
    }

    /// The end: what is left of each stream, without its newline.
    fn flush(&mut self, names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            if !self.partial[i].is_empty() {
                let rest = std::mem::take(&mut self.partial[i]);
                write_log_line(&mut self.file, name, &rest);
            }
        }
    }
}

/// One entry of a container's log: `{"time","stream","log"}` on a line.
fn write_log_line(log: &mut Option<std::fs::File>, stream: &str, bytes: &[u8]) {
    if let Some(f) = log.as_mut() {
        let entry = serde_json::json!({
            "time": state::now_rfc3339(),
            "stream": stream,
            "log": String::from_utf8_lossy(bytes),
        });
        let _ = writeln!(f, "{entry}");
    }
}
