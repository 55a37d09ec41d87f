//! Phase 1, before anything is touched: check the request and compute the plan (`Prepared`)
//! that the launch carries out and the child follows. Every refusal names the field at fault.
//!
//! `prepare` is a pure function of the request and of the facts the mode's entry point reads
//! once (`HostFacts`: who the caller is, the host's cgroup layout): it makes no system call and
//! takes nothing. What needs taking is left for the launch and said in the plan: with
//! `io.ns.userns: auto` the plan says a range of host ids is to be leased
//! (`Prepared::lease_needed`), and `launch::lease_ids` leases it and fills in the maps.

use crate::cgroup::Layout;
use crate::error::{Result, SetupError};
use crate::idmap::{self, Writer};
use crate::mounts::{self, plan_mounts};
use crate::namespaces::{NsKind, NsPlan};
use crate::process::{self, Command};
use crate::request::RunRequest;
use crate::rootfs::RootfsPlan;
use crate::spec::{IdMapping, Linux, Process, Spec};

/// Who asks: the helper's effective ids (what it may map and join) and its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub euid: u32,
    pub egid: u32,
    /// Names the cgroup of a container that has no id (`ns/run-PID`).
    pub pid: u32,
}

/// What `prepare` needs to know of the caller and of the host, read once per container by the
/// mode's entry point (`foreground`, `create`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    pub caller: Caller,
    /// Which files limits are written to (v1 controllers or the unified hierarchy).
    pub cgroup_layout: Layout,
}

impl HostFacts {
    /// The facts of this process and this host, now.
    pub fn read() -> HostFacts {
        // SAFETY: plain syscalls.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        HostFacts {
            caller: Caller { euid, egid, pid: std::process::id() },
            cgroup_layout: crate::cgroup::layout(),
        }
    }
}

/// Everything the child needs, checked and computed before the clone.
pub struct Prepared {
    pub ns: NsPlan,
    /// The maps written for a new user namespace. With `lease_needed`, empty until
    /// `launch::lease_ids` fills them with the leased range.
    pub uid_maps: Vec<IdMapping>,
    pub gid_maps: Vec<IdMapping>,
    pub map_writer: Writer,
    pub time_offsets: String,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: Option<RootfsPlan>,
    /// Without a mount namespace of its own: the root the container is chrooted into.
    pub chroot: Option<String>,
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
    /// I/O priority, CPU scheduling and execution domain of the container's process.
    pub attributes: process::Attributes,
    /// The resctrl group the container runs in (`linux.intelRdt`).
    pub rdt: Option<crate::resctrl::RdtPlan>,
    /// The compiled seccomp filter, loaded last before the command runs.
    pub seccomp: Option<Vec<crate::seccomp::Insn>>,
    /// What hooks are told about the container.
    pub id: String,
    pub bundle: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `io.ns.userns: auto`: the container's ids are a range of host ids of its own, leased by
    /// the launch step (`launch::lease_ids`) and held as long as the container lives.
    pub lease_needed: bool,
    /// The range of host ids leased for the container (`io.ns.userns: auto`), held while it lives;
    /// None until `launch::lease_ids` has taken it.
    pub lease: Option<idmap::Lease>,
    /// The networks to attach (`io.ns.network`), attached at the launch's seam.
    pub network: Option<crate::network::Plan>,
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

/// Check `req` and plan its container, for the caller and host that `host` describes.
pub fn prepare(req: &RunRequest, host: &HostFacts) -> Result<Prepared> {
    let spec = &req.config;
    let bundle = req.bundle.as_deref();
    let ns = NsPlan::from_spec(spec)?;
    let joined = |k: NsKind| ns.join.iter().any(|(j, _)| *j == k);
    let linux = spec.linux.clone().unwrap_or_default();
    // The runtime spec lets a config leave `process` to `start`, which has no way to give it:
    // as runc, create refuses it.
    let process = spec.process.clone().ok_or_else(|| {
        SetupError::config(
            "process",
            "must not be empty: the container's process is needed at create (as runc needs it)",
        )
    })?;
    // A warm container's command comes later (it may be given here too, and is not used).
    if process.args.is_empty() && !req.warm {
        return Err(SetupError::config("process.args", "must not be empty"));
    }
    if !process.cwd.starts_with('/') {
        return Err(SetupError::config("process.cwd", "must be an absolute path"));
    }
    if req.warm && (req.create.is_some() || req.exec.is_some()) {
        return Err(SetupError::config("warm", "is a foreground run: not with create or exec"));
    }
    if req.warm && process.terminal {
        return Err(SetupError::config("process.terminal", "a warm container has no terminal"));
    }
    if req.warm && req.preserve_fds > 0 {
        return Err(SetupError::config(
            "preserveFds",
            "a warm container's stdio comes with its command",
        ));
    }
    process::validate_rlimits(&process.rlimits)?;
    let command =
        if req.warm { Command::pending() } else { Command::new(&process.args, &process.env)? };
    let caps = process.capabilities.as_ref().map(crate::caps::CapSets::from_spec).transpose()?;
    let attributes = process::Attributes::plan(
        "process",
        process.io_priority.as_ref(),
        process.scheduler.as_ref(),
        linux.personality.as_ref(),
    )?;
    let rdt = linux.intel_rdt.as_ref().map(crate::resctrl::plan).transpose()?;

    // Root's default: a range of host ids of the container's own, so root inside is nobody
    // outside. Leased by the launch step, held until the container is gone.
    let mut lease_needed = false;
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
            if host.caller.euid != 0 {
                return Err(SetupError::config(
                    "annotations.io.ns.userns",
                    "auto needs root (others map their own id and /etc/subuid range)",
                ));
            }
            lease_needed = true;
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
        if linux.uid_mappings.is_empty() && !lease_needed {
            return Err(SetupError::config(
                "linux.uidMappings",
                "is required with a new user namespace",
            ));
        }
    } else if !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty() {
        return Err(SetupError::config("linux.uidMappings", "needs a new user namespace"));
    }
    let Caller { euid, egid, .. } = host.caller;
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

    let rootfs = plan_rootfs(spec, &linux, &ns, bundle, host.caller.euid)?;
    // Without a mount namespace of its own (the caller's shared, or one joined by path), the
    // root is not built: the container is chrooted into root.path (resolved in the mount
    // namespace it runs in), as runc and crun do without one.
    let chroot = if ns.has_new(NsKind::Mount) {
        None
    } else {
        spec.root.as_ref().map(|r| mounts::host_path(bundle, &r.path)).filter(|r| r != "/")
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
    let mut resources = linux.resources.clone().unwrap_or_default();
    resources.device_nodes = rootfs
        .as_ref()
        .map(|r| r.devices.iter().map(|d| d.path.clone()).collect())
        .unwrap_or_default();
    if let Some(state) = resources.device_state()? {
        if host.caller.euid != 0 {
            // Without root no device controller is ours to set (nor a BPF program to load), and
            // none is needed if the rules allow what the container has: its user namespace may
            // not make a node, so what it can open is the nodes bound in (the defaults and
            // linux.devices), which are checked here instead.
            check_devices_without_root(&state, rootfs.as_ref())?;
            resources.devices.clear();
        }
    }
    let id_for_cgroup = req
        .create
        .as_ref()
        .map(|c| c.id.clone())
        .or_else(|| spec.annotations.get("io.ns.id").cloned());
    // An engine names the cgroup (linux.cgroupsPath) and expects it to exist: root makes it
    // even when nothing in it is limited (its processes are counted, frozen, watched for OOM).
    let named =
        host.caller.euid == 0 && linux.cgroups_path.as_deref().is_some_and(|p| !p.is_empty());
    let cgroup = if !resources.is_empty() || named {
        crate::cgroup::plan_writes(host.cgroup_layout, &resources)?;
        let rel = match linux.cgroups_path.as_deref() {
            Some(p) if !p.is_empty() && !p.contains(':') && !p.split('/').any(|c| c == "..") => {
                p.trim_start_matches('/').to_owned()
            }
            _ => format!(
                "ns/{}",
                id_for_cgroup.unwrap_or_else(|| format!("run-{}", host.caller.pid))
            ),
        };
        Some((rel, resources))
    } else {
        None
    };

    let sysctl = crate::sysctl::plan(&linux.sysctl, &ns)?;
    let network =
        crate::network::plan(&spec.annotations, ns.has_new(NsKind::Net), host.caller.euid)?;

    Ok(Prepared {
        network,
        ns,
        uid_maps: linux.uid_mappings.clone(),
        gid_maps: linux.gid_mappings.clone(),
        map_writer,
        time_offsets,
        hostname,
        domainname,
        rootfs,
        chroot,
        sysctl,
        process,
        command,
        init: req.init,
        preserve_fds: req.preserve_fds,
        hooks: spec.hooks.clone().unwrap_or_default(),
        cgroup,
        caps,
        attributes,
        rdt,
        seccomp: linux.seccomp.as_ref().map(crate::seccomp::compile).transpose()?,
        id: req
            .create
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| spec.annotations.get("io.ns.id").cloned())
            .unwrap_or_default(),
        bundle: req.bundle.clone().unwrap_or_default(),
        annotations: spec.annotations.clone(),
        lease_needed,
        lease: None,
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

/// Without root the device rules are not enforced by a controller: they must allow (read and
/// write) every node the container has, the default ones and those of linux.devices.
fn check_devices_without_root(
    state: &crate::devices::DeviceState,
    rootfs: Option<&RootfsPlan>,
) -> Result<()> {
    use crate::devices::{Kind, READ, WRITE};
    let defaults = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let has_dev = rootfs.is_some_and(|r| r.mounts.iter().any(|m| m.destination == "/dev"));
    let mut nodes: Vec<(String, Kind, u32, u32)> = if has_dev {
        defaults.iter().map(|(p, ma, mi)| (p.to_string(), Kind::Char, *ma, *mi)).collect()
    } else {
        Vec::new()
    };
    for d in rootfs.map(|r| r.devices.as_slice()).unwrap_or_default() {
        let kind = match d.file_type {
            libc::S_IFCHR => Kind::Char,
            libc::S_IFBLK => Kind::Block,
            _ => continue,
        };
        nodes.push((d.path.clone(), kind, d.major, d.minor));
    }
    match nodes.iter().find(|(_, k, ma, mi)| !state.permits(*k, *ma, *mi, READ | WRITE)) {
        Some((path, ..)) => Err(SetupError::config(
            "linux.resources.devices",
            format!("denies {path}, which the container has: without root the device controller cannot enforce that (leave the node out instead)"),
        )),
        None => Ok(()),
    }
}

/// The plan of the root filesystem, with a new mount namespace (without one the container
/// sees the tree of the mount namespace it shares or joins, chrooted into `root.path` if it
/// is given, and nothing that would change that namespace may be asked for).
///
/// The root is a recursive bind of `root.path` (resolved against the bundle), which the launch
/// makes an idmapped mount with `io.ns.root.idmap`, or a fresh tmpfs when there is no `root`.
/// An image's root filesystem (`io.ns.image.overlay`, see `image_root`) replaces the bind:
/// the plan names the image's layers (read-only lower directories) and the container's own
/// directory (its upper and work directories); for root's containers in a user namespace the
/// launch mounts that overlay, outside, at its attachment seam
/// (`launch::attach_before_release`) from idmapped layers and hands it to the child as it
/// hands over an idmapped root; otherwise the child mounts it by path. The child's steps after
/// the root (mounts, pivot_root, masked and read-only paths) stay as they are.
fn plan_rootfs(
    spec: &Spec,
    linux: &Linux,
    ns: &NsPlan,
    bundle: Option<&str>,
    euid: u32,
) -> Result<Option<RootfsPlan>> {
    let propagation = match linux.rootfs_propagation.as_deref() {
        None | Some("") => 0,
        Some(p) => mounts::propagation_flag(p).ok_or_else(|| {
            SetupError::config("linux.rootfsPropagation", format!("unknown propagation {p:?}"))
        })?,
    };
    let userns = ns.has_new(NsKind::User) || ns.join.iter().any(|(k, _)| *k == NsKind::User);
    let image = crate::image_root::plan(&spec.annotations, userns, euid)?;
    if image.is_some() && spec.root.is_some() {
        return Err(SetupError::config(
            "root",
            "an image's root filesystem is the overlay of its layers: give no root.path with io.ns.image.overlay",
        ));
    }
    if image.is_some() && !ns.has_new(NsKind::Mount) {
        return Err(SetupError::config(
            "annotations.io.ns.image.overlay",
            "an image's root filesystem needs a new mount namespace",
        ));
    }
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
            devices: crate::devices::plan_nodes(&linux.devices)?,
            // A user namespace (new or joined) may not make device nodes.
            bind_devices: ns.has_new(NsKind::User)
                || ns.join.iter().any(|(k, _)| *k == NsKind::User),
            image,
        })
    } else {
        // The mount namespace is the caller's, or one joined that others live in: what would
        // change it is refused rather than done to them (or left undone).
        let why = if ns.join.iter().any(|(k, _)| *k == NsKind::Mount) {
            "needs a mount namespace of its own (the joined one is shared with the processes already in it)"
        } else {
            "needs a mount namespace of its own (without one the container shares the caller's mounts)"
        };
        let refused = [
            ("mounts", !spec.mounts.is_empty()),
            ("linux.maskedPaths", !linux.masked_paths.is_empty()),
            ("linux.readonlyPaths", !linux.readonly_paths.is_empty()),
            ("linux.rootfsPropagation", propagation != 0),
            ("linux.devices", !linux.devices.is_empty()),
            ("root.readonly", spec.root.as_ref().is_some_and(|r| r.readonly)),
            (
                "annotations.io.ns.root.idmap",
                spec.annotations.get("io.ns.root.idmap").is_some_and(|v| v == "true"),
            ),
        ];
        if let Some((field, _)) = refused.iter().find(|(_, given)| *given) {
            return Err(SetupError::config(*field, why));
        }
        if !mounts::bind_roots(&spec.annotations)?.is_empty() && spec.root.is_some() {
            return Err(SetupError::config(
                "root",
                format!("{why}: a root confined to io.ns.bind.roots is bound from a descriptor"),
            ));
        }
        None
    };
    Ok(rootfs)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::request::CreateRequest;

    const ROOT: HostFacts =
        HostFacts { caller: Caller { euid: 0, egid: 0, pid: 4242 }, cgroup_layout: Layout::V2 };

    fn user(id: u32) -> HostFacts {
        HostFacts { caller: Caller { euid: id, egid: id, pid: 4242 }, ..ROOT }
    }

    /// A request for `config`, which `extra` (a JSON object) is merged into.
    fn request(extra: Value) -> RunRequest {
        let mut config = json!({
            "process": { "args": ["/bin/true"], "cwd": "/" },
            "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount" }] },
        });
        merge(&mut config, extra);
        let mut req: RunRequest =
            serde_json::from_value(json!({ "config": config, "bundle": "/srv/bundle" }))
                .expect("a valid request");
        req.init = true;
        req
    }

    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn userns(extra: Value) -> Value {
        let mut v = json!({ "linux": { "namespaces": [
            { "type": "user" }, { "type": "pid" }, { "type": "mount" }
        ] } });
        merge(&mut v, extra);
        v
    }

    fn plan(req: &RunRequest, host: &HostFacts) -> Prepared {
        match prepare(req, host) {
            Ok(p) => p,
            Err(e) => panic!("refused: {}", e.message),
        }
    }

    /// The field a refusal names (`SetupError::config` keeps it as the path).
    fn refused(req: &RunRequest, host: &HostFacts) -> String {
        match prepare(req, host) {
            Ok(_) => panic!("accepted"),
            Err(e) => {
                assert_eq!(e.code, "EINVAL", "{}", e.message);
                e.path.unwrap_or_default()
            }
        }
    }

    #[test]
    fn auto_userns_for_root_plans_a_lease_and_takes_none() {
        let req = request(userns(json!({
            "root": { "path": "rootfs" },
            "annotations": { "io.ns.userns": "auto", "io.ns.root.idmap": "true" },
        })));
        let p = plan(&req, &ROOT);
        assert!(p.lease_needed);
        assert!(p.lease.is_none(), "prepare must not lease: the launch does");
        assert!(p.uid_maps.is_empty() && p.gid_maps.is_empty());
        assert_eq!(p.map_writer, Writer::Direct { deny_setgroups: false });
        assert!(p.ns.has_new(NsKind::User) && p.ns.has_new(NsKind::Mount));
        let rootfs = p.rootfs.expect("a root filesystem plan");
        assert_eq!(rootfs.root.as_deref(), Some("/srv/bundle/rootfs"));
        assert!(rootfs.idmap_root, "the leased range owns the root through an idmapped mount");
        assert!(p.init);
    }

    #[test]
    fn auto_userns_is_refused_by_the_callers_ids_not_the_processs() {
        // The tests may run as root: the refusal comes from the facts passed in.
        let req = request(userns(json!({ "annotations": { "io.ns.userns": "auto" } })));
        assert_eq!(refused(&req, &user(1000)), "annotations.io.ns.userns");
        assert!(plan(&req, &ROOT).lease_needed);
    }

    #[test]
    fn auto_userns_refusals_name_the_annotation() {
        let auto = json!({ "annotations": { "io.ns.userns": "auto" } });
        // No new user namespace to map.
        assert_eq!(refused(&request(auto.clone()), &ROOT), "annotations.io.ns.userns");
        // Maps of its own as well.
        let mut both = userns(auto);
        merge(
            &mut both,
            json!({ "linux": { "uidMappings": [{ "containerID": 0, "hostID": 0, "size": 1 }] } }),
        );
        assert_eq!(refused(&request(both), &ROOT), "annotations.io.ns.userns");
        // A mode that does not exist.
        let other = userns(json!({ "annotations": { "io.ns.userns": "keep-id" } }));
        assert_eq!(refused(&request(other), &ROOT), "annotations.io.ns.userns");
    }

    #[test]
    fn a_user_mapping_only_itself_writes_its_maps_and_a_range_needs_the_setuid_helpers() {
        let own = json!({ "containerID": 0, "hostID": 1000, "size": 1 });
        let req =
            request(userns(json!({ "linux": { "uidMappings": [own], "gidMappings": [own] } })));
        let p = plan(&req, &user(1000));
        assert!(!p.lease_needed);
        assert_eq!(p.uid_maps, vec![IdMapping { container_id: 0, host_id: 1000, size: 1 }]);
        assert_eq!(p.map_writer, Writer::Direct { deny_setgroups: true });

        let range = json!({ "containerID": 0, "hostID": 100000, "size": 65536 });
        let req =
            request(userns(json!({ "linux": { "uidMappings": [range], "gidMappings": [range] } })));
        assert_eq!(plan(&req, &user(1000)).map_writer, Writer::Helpers);
        assert_eq!(plan(&req, &ROOT).map_writer, Writer::Direct { deny_setgroups: false });
    }

    #[test]
    fn id_maps_are_refused_without_a_user_namespace_and_required_with_one() {
        let map = json!({ "containerID": 0, "hostID": 0, "size": 1 });
        let req = request(json!({ "linux": { "uidMappings": [map] } }));
        assert_eq!(refused(&req, &ROOT), "linux.uidMappings");
        assert_eq!(refused(&request(userns(json!({}))), &ROOT), "linux.uidMappings");
        let overlapping = json!({ "linux": { "uidMappings": [
            { "containerID": 0, "hostID": 100000, "size": 10 },
            { "containerID": 5, "hostID": 200000, "size": 10 },
        ] } });
        assert_eq!(
            refused(&request(userns(overlapping)), &ROOT),
            "linux.uidMappings[1].containerID"
        );
    }

    #[test]
    fn the_process_must_have_args_and_an_absolute_cwd() {
        let mut no_process = request(json!({}));
        no_process.config.process = None;
        assert_eq!(refused(&no_process, &ROOT), "process");
        assert_eq!(refused(&request(json!({ "process": { "args": [] } })), &ROOT), "process.args");
        assert_eq!(refused(&request(json!({ "process": { "cwd": "tmp" } })), &ROOT), "process.cwd");
        let nul = request(json!({ "process": { "args": ["/bin/echo", "a\u{0}b"] } }));
        assert_eq!(refused(&nul, &ROOT), "process.args");
        let rlimit = json!({ "process": { "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1, "soft": 2 }] } });
        assert_eq!(refused(&request(rlimit), &ROOT), "process.rlimits[0].soft");
        let caps = json!({ "process": { "capabilities": { "bounding": ["CAP_NOPE"] } } });
        assert_eq!(refused(&request(caps), &ROOT), "process.capabilities.bounding[0]");
    }

    #[test]
    fn namespaces_must_be_known_and_joined_by_absolute_path() {
        let unknown = json!({ "linux": { "namespaces": [{ "type": "pid" }, { "type": "nope" }] } });
        assert_eq!(refused(&request(unknown), &ROOT), "linux.namespaces[1].type");
        let relative =
            json!({ "linux": { "namespaces": [{ "type": "network", "path": "ns/net" }] } });
        assert_eq!(refused(&request(relative), &ROOT), "linux.namespaces[0].path");
    }

    #[test]
    fn time_offsets_become_the_text_of_timens_offsets() {
        let req = request(json!({ "linux": {
            "namespaces": [{ "type": "time" }],
            "timeOffsets": {
                "monotonic": { "secs": -3, "nanosecs": 500 },
                "boottime": { "secs": 86400 },
            },
        } }));
        assert_eq!(plan(&req, &ROOT).time_offsets, "boottime 86400 0\nmonotonic -3 500\n");
    }

    #[test]
    fn time_offset_refusals_name_the_clock() {
        let with = |offsets: Value| {
            request(json!({ "linux": {
                "namespaces": [{ "type": "time" }], "timeOffsets": offsets,
            } }))
        };
        assert_eq!(
            refused(&with(json!({ "realtime": { "secs": 1 } })), &ROOT),
            "linux.timeOffsets.realtime"
        );
        assert_eq!(
            refused(&with(json!({ "monotonic": { "nanosecs": 1_000_000_000u32 } })), &ROOT),
            "linux.timeOffsets.monotonic.nanosecs"
        );
        let no_timens =
            request(json!({ "linux": { "timeOffsets": { "monotonic": { "secs": 1 } } } }));
        assert_eq!(refused(&no_timens, &ROOT), "linux.timeOffsets");
    }

    #[test]
    fn hostname_and_domainname_need_a_uts_namespace_new_or_joined_and_at_most_64_bytes() {
        assert_eq!(refused(&request(json!({ "hostname": "box" })), &ROOT), "hostname");
        assert_eq!(refused(&request(json!({ "domainname": "example" })), &ROOT), "domainname");
        let joined = request(json!({
            "hostname": "box",
            "linux": { "namespaces": [{ "type": "uts", "path": "/proc/1/ns/uts" }] },
        }));
        assert_eq!(plan(&joined, &ROOT).hostname.as_deref(), Some("box"));
        let long = request(json!({
            "hostname": "h".repeat(65), "linux": { "namespaces": [{ "type": "uts" }] },
        }));
        assert_eq!(refused(&long, &ROOT), "hostname");
        // An empty name is no name.
        assert_eq!(plan(&request(json!({ "hostname": "" })), &ROOT).hostname, None);
    }

    #[test]
    fn the_root_filesystem_plan_resolves_against_the_bundle_and_a_missing_root_is_a_tmpfs() {
        let req = request(json!({
            "root": { "path": "/srv/rootfs", "readonly": true },
            "mounts": [{ "destination": "/proc", "type": "proc", "source": "proc" }],
            "linux": { "maskedPaths": ["/proc/kcore"], "rootfsPropagation": "slave" },
        }));
        let r = plan(&req, &ROOT).rootfs.expect("a plan");
        assert_eq!(r.root.as_deref(), Some("/srv/rootfs"));
        assert!(r.readonly_root && !r.idmap_root);
        assert_eq!(r.mounts.len(), 1);
        assert_eq!(r.mounts[0].destination, "/proc");
        assert_eq!(r.masked_paths, vec!["/proc/kcore".to_string()]);
        assert_eq!(r.propagation, libc::MS_SLAVE);

        // No root: a fresh tmpfs, read-only by annotation, never idmapped.
        let sandbox = request(json!({
            "annotations": { "io.ns.root.readonly": "true", "io.ns.root.idmap": "true" },
        }));
        let r = plan(&sandbox, &ROOT).rootfs.expect("a plan");
        assert_eq!(r.root, None);
        assert!(r.readonly_root && !r.idmap_root);
    }

    #[test]
    fn root_and_mounts_refusals_name_their_field() {
        let propagation = request(json!({ "linux": { "rootfsPropagation": "sideways" } }));
        assert_eq!(refused(&propagation, &ROOT), "linux.rootfsPropagation");
        let host_tree = json!({ "linux": { "namespaces": [{ "type": "pid" }] } });
        let mut with_mounts = host_tree.clone();
        merge(&mut with_mounts, json!({ "mounts": [{ "destination": "/tmp", "type": "tmpfs" }] }));
        assert_eq!(refused(&request(with_mounts), &ROOT), "mounts");
        assert_eq!(plan(&request(host_tree.clone()), &ROOT).rootfs.map(|_| ()), None);
        assert_eq!(plan(&request(host_tree.clone()), &ROOT).chroot, None);
        let mut masked = host_tree.clone();
        merge(&mut masked, json!({ "linux": { "maskedPaths": ["/proc/kcore"] } }));
        assert_eq!(refused(&request(masked), &ROOT), "linux.maskedPaths");
        let idmapped = request(json!({ "mounts": [
            { "destination": "/data", "source": "/srv/data", "options": ["bind", "idmap"] }
        ] }));
        assert_eq!(refused(&idmapped, &ROOT), "mounts");
        let relative = request(json!({ "mounts": [{ "destination": "data", "type": "tmpfs" }] }));
        assert_eq!(refused(&relative, &ROOT), "mounts[0].destination");
    }

    #[test]
    fn without_a_mount_namespace_of_its_own_the_root_is_a_chroot_and_nothing_is_mounted() {
        // The caller's mount namespace, shared: root.path (from the bundle) is chrooted into.
        let shared = json!({ "linux": { "namespaces": [{ "type": "pid" }] }, "root": { "path": "rootfs/." } });
        let p = plan(&request(shared.clone()), &ROOT);
        assert_eq!(p.chroot.as_deref(), Some("/srv/bundle/rootfs"));
        assert!(p.rootfs.is_none());
        let mut ro = shared.clone();
        merge(&mut ro, json!({ "root": { "readonly": true } }));
        assert_eq!(refused(&request(ro), &ROOT), "root.readonly");
        // One joined by path: the same, and what would change it is refused.
        let joined = json!({
            "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount", "path": "/proc/7/ns/mnt" }] },
            "root": { "path": "/" },
        });
        let p = plan(&request(joined.clone()), &ROOT);
        assert_eq!(p.chroot, None, "its own root: nothing to chroot into");
        assert_eq!(p.ns.join, vec![(NsKind::Mount, "/proc/7/ns/mnt".to_string())]);
        let mut propagated = joined.clone();
        merge(&mut propagated, json!({ "linux": { "rootfsPropagation": "shared" } }));
        let e = prepare(&request(propagated), &ROOT).err().unwrap();
        assert_eq!(e.path.as_deref(), Some("linux.rootfsPropagation"));
        assert!(e.message.contains("the joined one is shared"), "{}", e.message);
    }

    #[test]
    fn sysctls_map_to_proc_sys_and_bad_names_are_refused() {
        let netns = |sysctl: Value| {
            request(json!({ "linux": {
                "namespaces": [{ "type": "pid" }, { "type": "mount" }, { "type": "network" }],
                "sysctl": sysctl,
            } }))
        };
        let req = netns(json!({ "net.ipv4.ip_forward": "1" }));
        assert_eq!(
            plan(&req, &ROOT).sysctl,
            vec![("/proc/sys/net/ipv4/ip_forward".to_string(), "1".to_string())]
        );
        for bad in ["net..ipv4", "net/ipv4", "kernel.", ".."] {
            let req = netns(json!({ bad: "1" }));
            assert_eq!(refused(&req, &ROOT), format!("linux.sysctl.{bad}"));
        }
    }

    #[test]
    fn limits_get_a_cgroup_named_by_cgroups_path_the_id_or_the_helpers_pid() {
        let limits = |extra: Value| {
            let mut v = json!({ "linux": { "resources": { "memory": { "limit": 67108864 } } } });
            merge(&mut v, extra);
            request(v)
        };
        let rel = |req: &RunRequest| plan(req, &ROOT).cgroup.map(|(rel, _)| rel);
        assert_eq!(rel(&limits(json!({}))).as_deref(), Some("ns/run-4242"));
        let named = limits(json!({ "annotations": { "io.ns.id": "web" } }));
        assert_eq!(rel(&named).as_deref(), Some("ns/web"));
        let mut created = named.clone();
        created.create = Some(CreateRequest { id: "c1".into(), ..CreateRequest::default() });
        assert_eq!(rel(&created).as_deref(), Some("ns/c1"));
        let path = limits(json!({ "linux": { "cgroupsPath": "/custom/box" } }));
        assert_eq!(rel(&path).as_deref(), Some("custom/box"));
        // A systemd-style or escaping path is not a folder of ours: the default name is used.
        for bad in ["system.slice:ns:box", "/a/../../b"] {
            let req = limits(json!({ "linux": { "cgroupsPath": bad } }));
            assert_eq!(rel(&req).as_deref(), Some("ns/run-4242"));
        }
        // No limits: no cgroup, unless an engine names one (and root can make it).
        let named = request(json!({ "linux": { "cgroupsPath": "/custom/box" } }));
        assert_eq!(plan(&named, &ROOT).cgroup.map(|c| c.0).as_deref(), Some("custom/box"));
        assert!(plan(&named, &user(1000)).cgroup.is_none());
        assert!(plan(&request(json!({})), &ROOT).cgroup.is_none());
    }

    #[test]
    fn device_rules_need_root_unless_they_allow_every_node_the_container_has() {
        let with_dev = |rules: Value, devices: Value| {
            request(json!({
                "mounts": [{ "destination": "/dev", "type": "tmpfs" }],
                "linux": { "resources": { "devices": rules }, "devices": devices },
            }))
        };
        let deny_all = json!([{ "allow": false, "access": "rwm" }]);
        let fuse = json!([{ "type": "c", "path": "/dev/fuse", "major": 10, "minor": 229 }]);
        // Root: the rules (with runc's defaults) go to the cgroup.
        let p = plan(&with_dev(deny_all.clone(), json!([])), &ROOT);
        let (_, res) = p.cgroup.expect("a cgroup for the rules");
        assert!(!res.device_state().unwrap().unwrap().default_allow);
        // Without root they hold by themselves when they allow what is bound in...
        let p = plan(&with_dev(deny_all.clone(), json!([])), &user(1000));
        assert!(p.cgroup.is_none(), "nothing left for a cgroup to do");
        // ...and are refused when they deny a node the container has.
        assert_eq!(
            refused(&with_dev(deny_all.clone(), fuse.clone()), &user(1000)),
            "linux.resources.devices"
        );
        let allow_fuse = json!([{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" }]);
        assert!(plan(&with_dev(allow_fuse, fuse.clone()), &user(1000)).cgroup.is_none());
        // The node's path makes its default rule give way.
        let p = plan(
            &with_dev(
                deny_all,
                json!([{ "type": "c", "path": "/dev/null", "major": 1, "minor": 3 }]),
            ),
            &ROOT,
        );
        assert_eq!(p.cgroup.unwrap().1.device_nodes, vec!["/dev/null".to_string()]);
    }

    #[test]
    fn limits_are_checked_for_the_hosts_layout_and_their_mode_named() {
        let swap =
            json!({ "linux": { "resources": { "memory": { "limit": 2048, "swap": 1024 } } } });
        for layout in [Layout::V1, Layout::V2] {
            let host = HostFacts { cgroup_layout: layout, ..ROOT };
            assert_eq!(refused(&request(swap.clone()), &host), "linux.resources.memory.swap");
        }
        let mode = |m: &str| request(json!({ "annotations": { "io.ns.limits": m } }));
        assert!(plan(&mode("best-effort"), &ROOT).best_effort_limits);
        assert!(!plan(&mode("required"), &ROOT).best_effort_limits);
        assert!(!plan(&request(json!({})), &ROOT).best_effort_limits);
        assert_eq!(refused(&mode("optional"), &ROOT), "annotations.io.ns.limits");
    }

    #[test]
    fn hooks_are_told_the_id_the_bundle_and_the_annotations() {
        let mut req = request(json!({
            "annotations": { "io.ns.id": "from-annotation", "org.example": "yes" },
            "hooks": { "poststop": [{ "path": "/bin/true" }] },
        }));
        let p = plan(&req, &ROOT);
        assert_eq!(p.id, "from-annotation");
        assert_eq!(p.hooks.poststop.len(), 1);
        let state = p.hook_state("created", 77);
        assert_eq!((state.id, state.status, state.pid), ("from-annotation", "created", 77));
        assert_eq!(state.bundle, "/srv/bundle");
        assert_eq!(state.annotations.get("org.example").map(String::as_str), Some("yes"));
        req.create = Some(CreateRequest { id: "c1".into(), ..CreateRequest::default() });
        assert_eq!(plan(&req, &ROOT).id, "c1", "create's id wins over the annotation");
    }

    #[test]
    fn the_same_request_and_facts_give_the_same_plan() {
        let req = request(userns(json!({
            "hostname": "box",
            "annotations": { "io.ns.userns": "auto" },
            "linux": {
                "namespaces": [{ "type": "user" }, { "type": "uts" }, { "type": "mount" }, { "type": "ipc" }],
                "sysctl": { "kernel.msgmax": "8192" },
                "resources": { "pids": { "limit": 64 } },
            },
        })));
        let (a, b) = (plan(&req, &ROOT), plan(&req, &ROOT));
        assert_eq!(a.ns, b.ns);
        assert_eq!((a.lease_needed, a.map_writer), (b.lease_needed, b.map_writer));
        assert_eq!(a.sysctl, b.sysctl);
        assert_eq!(a.cgroup.map(|c| c.0), b.cgroup.map(|c| c.0));
        assert_eq!(a.hostname, b.hostname);
    }
}
