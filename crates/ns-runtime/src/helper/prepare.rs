//! Phase 1, before anything is touched: check the request and compute the plan (`Prepared`)
//! that the launch carries out and the child follows. Every refusal names the field at fault.

use crate::error::{Result, SetupError};
use crate::idmap::{self, Writer};
use crate::mounts::{self, plan_mounts};
use crate::namespaces::{NsKind, NsPlan};
use crate::process::{self, Command};
use crate::request::RunRequest;
use crate::rootfs::RootfsPlan;
use crate::spec::{IdMapping, Process};

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

    let mut sysctl = Vec::new();
    for (k, v) in &linux.sysctl {
        if k.is_empty() || k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(SetupError::config(
                format!("linux.sysctl.{k}"),
                "is not a valid sysctl name",
            ));
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
