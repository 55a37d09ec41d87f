//! The helper's side (the parent, outside the container): check the request, join and create
//! namespaces, write the id maps, release the child, relay what happens to the caller, forward
//! signals, and report the exit status.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::child;
use crate::error::{Result, SetupError};
use crate::host;
use crate::idmap::{self, Writer};
use crate::mounts::{self, plan_mounts};
use crate::namespaces::{NsKind, NsPlan};
use crate::process::{self, Command};
use crate::proto::{self, Event, LineReader, Report};
use crate::rootfs::RootfsPlan;
use crate::spec::{IdMapping, Process, RunRequest};
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
}

pub fn prepare(req: &RunRequest) -> Result<Prepared> {
    let spec = &req.config;
    let bundle = req.bundle.as_deref();
    let ns = NsPlan::from_spec(spec)?;
    let joined = |k: NsKind| ns.join.iter().any(|(j, _)| *j == k);
    let linux = spec.linux.clone().unwrap_or_default();
    let process = spec.process.clone().ok_or_else(|| SetupError::config("process", "is required"))?;
    if process.args.is_empty() {
        return Err(SetupError::config("process.args", "must not be empty"));
    }
    if !process.cwd.starts_with('/') {
        return Err(SetupError::config("process.cwd", "must be an absolute path"));
    }
    process::validate_rlimits(&process.rlimits)?;
    let command = Command::new(&process.args, &process.env)?;

    idmap::validate("linux.uidMappings", &linux.uid_mappings)?;
    idmap::validate("linux.gidMappings", &linux.gid_mappings)?;
    if ns.has_new(NsKind::User) {
        if linux.uid_mappings.is_empty() {
            return Err(SetupError::config("linux.uidMappings", "is required with a new user namespace"));
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
            return Err(SetupError::config(format!("linux.timeOffsets.{clock}"), "only monotonic and boottime have offsets"));
        }
        if off.nanosecs >= 1_000_000_000 {
            return Err(SetupError::config(format!("linux.timeOffsets.{clock}.nanosecs"), "must be below 1000000000"));
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

    let mut sysctl = Vec::new();
    for (k, v) in &linux.sysctl {
        if k.is_empty() || k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(SetupError::config(format!("linux.sysctl.{k}"), "is not a valid sysctl name"));
        }
        sysctl.push((format!("/proc/sys/{}", k.replace('.', "/")), v.clone()));
    }

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
    })
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Signals the helper passes on to the container's first process.
const FORWARDED: [libc::c_int; 12] = [
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
    libc::SIGTTIN,
    libc::SIGTTOU,
];

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

/// The helper's entry point: the request arrives on `control`, events leave on it.
/// Returns the helper's exit code.
pub fn helper_main(control: libc::c_int) -> i32 {
    // SAFETY: ignoring SIGPIPE so a vanished caller shows up as EPIPE, not death.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut reader = LineReader::new(control);
    let Some(line) = reader.next_line() else { return 125 };
    let req: RunRequest = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let err = SetupError::config("config", format!("is not a valid runtime spec: {e}"));
            let _ = proto::send(control, &Event::Error { error: err });
            let _ = proto::send(control, &Event::Exited { exit_code: Some(125), signal: None });
            return 125;
        }
    };
    if req.die_with_parent {
        let _ = sys::set_pdeathsig(libc::SIGKILL);
        // SAFETY: plain syscall.
        if unsafe { libc::getppid() } == 1 {
            return 125;
        }
    }
    match run_foreground(&req, control) {
        Ok(()) => 0,
        Err(e) => {
            let _ = proto::send(control, &Event::Error { error: e });
            let _ = proto::send(control, &Event::Exited { exit_code: Some(125), signal: None });
            125
        }
    }
}

/// Join existing namespaces. Root joins the user namespace last (joining it first would lose the
/// privilege it holds over namespaces owned by the host); anyone else joins it first, since it
/// is the user namespace that gives them the privilege to join the rest.
fn join_namespaces(ns: &NsPlan, euid: u32) -> Result<()> {
    let mut order: Vec<&(NsKind, String)> = ns.join.iter().collect();
    if euid != 0 {
        order.sort_by_key(|(k, _)| *k != NsKind::User);
    }
    let mut fds: Vec<(NsKind, String, OwnedFd)> = Vec::new();
    for (kind, path) in order {
        let fd = sys::open(path, libc::O_RDONLY).map_err(|e| SetupError::sys(format!("open {} namespace", kind.oci_name()), Some(path), e))?;
        fds.push((*kind, path.clone(), fd));
    }
    for (kind, path, fd) in &fds {
        sys::setns(fd.as_raw_fd(), kind.clone_flag())
            .map_err(|e| SetupError::sys(format!("join {} namespace", kind.oci_name()), Some(path), e))?;
    }
    Ok(())
}

fn run_foreground(req: &RunRequest, control: libc::c_int) -> Result<()> {
    let p = prepare(req)?;
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
    install_forwarding();

    let pid = sys::clone_fork(p.ns.clone_flags()).map_err(|e| clone_error(e, &p.ns))?;
    if pid == 0 {
        drop(go_w);
        drop(rep_r);
        child::child_main(&p, go_r, rep_w);
    }
    CHILD.store(pid, Ordering::Relaxed);
    drop(go_r);
    drop(rep_w);
    let mut guard = ChildGuard(pid);

    // Parent, outside the container: the child waits on `go` until its ids mean something.
    if p.ns.has_new(NsKind::User) {
        idmap::write_id_maps(pid, &p.uid_maps, &p.gid_maps, p.map_writer)?;
    }
    sys::write_all(go_w.as_raw_fd(), b"G").map_err(|e| SetupError::sys("release the container", None, e))?;
    drop(go_w);
    guard.0 = 0;

    let mut started = false;
    let mut failed = false;
    let mut exit = None;
    let mut rd = LineReader::new(rep_r.as_raw_fd());
    while let Some(line) = rd.next_line() {
        match serde_json::from_slice::<Report>(&line) {
            Ok(Report::Started) => {
                started = true;
                let _ = proto::send(control, &Event::Started { pid });
            }
            Ok(Report::Error { error }) => {
                failed = true;
                let _ = proto::send(control, &Event::Error { error });
            }
            Ok(Report::Exit { code, signal }) => exit = Some((code, signal)),
            Err(_) => {}
        }
    }
    // Without init, the report pipe closes when exec succeeds.
    if !started && !failed {
        let _ = proto::send(control, &Event::Started { pid });
    }
    let (_, status) = sys::waitpid(pid, 0).map_err(|e| SetupError::sys("wait for the container", None, e))?;
    CHILD.store(0, Ordering::Relaxed);
    let (code, signal) = exit.unwrap_or_else(|| sys::decode_status(status));
    let _ = proto::send(control, &Event::Exited { exit_code: code, signal });
    Ok(())
}
