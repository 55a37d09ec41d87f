//! From OCI `mounts[]` to a plan of mount operations: pure data, checked and unit-tested, that
//! `rootfs` then carries out inside the container's mount namespace.

use crate::error::{Result, SetupError};
use crate::spec::Mount;
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of `source` (a host path, absolute after bundle resolution). With `idmap`, the
    /// ids of its files are seen through the container's user namespace (an idmapped mount,
    /// made outside by the helper): host root's files are container root's.
    Bind { source: String, recursive: bool, idmap: bool },
    /// A filesystem mounted fresh: proc, tmpfs, sysfs, devpts, mqueue, …
    Fs { fstype: String, source: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    /// Absolute path inside the container.
    pub destination: String,
    pub kind: MountKind,
    /// `MS_*` flags for a fresh filesystem.
    pub flags: libc::c_ulong,
    /// Options the kernel takes as data (`mode=755`, `size=65536k`, …), comma-joined.
    pub data: String,
    /// `MOUNT_ATTR_*` to set on a bind (read-only, nosuid, nodev, noexec).
    pub attrs: u64,
    /// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`, `MS_UNBINDABLE` (0: inherit).
    pub propagation: libc::c_ulong,
}

/// The propagation type named by an option, if it names one.
pub fn propagation_flag(opt: &str) -> Option<libc::c_ulong> {
    Some(match opt {
        "private" | "rprivate" => libc::MS_PRIVATE,
        "slave" | "rslave" => libc::MS_SLAVE,
        "shared" | "rshared" => libc::MS_SHARED,
        "unbindable" | "runbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    })
}

/// Flags set (`true`) or cleared (`false`) by a mount option.
fn flag_option(opt: &str) -> Option<(bool, libc::c_ulong)> {
    Some(match opt {
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "nosuid" => (true, libc::MS_NOSUID),
        "suid" => (false, libc::MS_NOSUID),
        "nodev" => (true, libc::MS_NODEV),
        "dev" => (false, libc::MS_NODEV),
        "noexec" => (true, libc::MS_NOEXEC),
        "exec" => (false, libc::MS_NOEXEC),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        "async" => (false, libc::MS_SYNCHRONOUS),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "noatime" => (true, libc::MS_NOATIME),
        "atime" => (false, libc::MS_NOATIME),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "diratime" => (false, libc::MS_NODIRATIME),
        "relatime" => (true, libc::MS_RELATIME),
        "norelatime" => (false, libc::MS_RELATIME),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        _ => return None,
    })
}

/// Every option `plan_mounts` acts on itself: `bind`/`rbind`, `idmap`/`ridmap`, the
/// propagation types and the flags above. Any other option is the filesystem's: it goes to the
/// kernel as mount data.
pub const OPTIONS: [&str; 31] = [
    "bind",
    "rbind",
    "idmap",
    "ridmap",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

fn attrs_of(flags: libc::c_ulong) -> u64 {
    let mut a = 0;
    if flags & libc::MS_RDONLY != 0 {
        a |= MOUNT_ATTR_RDONLY;
    }
    if flags & libc::MS_NOSUID != 0 {
        a |= MOUNT_ATTR_NOSUID;
    }
    if flags & libc::MS_NODEV != 0 {
        a |= MOUNT_ATTR_NODEV;
    }
    if flags & libc::MS_NOEXEC != 0 {
        a |= MOUNT_ATTR_NOEXEC;
    }
    a
}

/// A clean absolute path: no `.` or `..` components, no doubled slashes.
pub fn clean_destination(field: &str, dest: &str) -> Result<String> {
    if !dest.starts_with('/') {
        return Err(SetupError::config(field, "must be an absolute path"));
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(SetupError::config(field, "must not contain '..'")),
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Files under /proc that may be covered by a bind: what lxcfs-style tools emulate, so that a
/// container sees its own limits there.
pub const PROC_FILES_COVERABLE: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Mounts that would break the set-up, or the isolation it builds: the root is `root.path`;
/// `/proc` is the container's own proc (the set-up reaches its descriptors and masks through
/// `/proc/self`, and masked paths hide the host's secrets there); `/dev` gets the default
/// devices added, which on a bind would land in a host folder.
fn check_destination(i: usize, dest: &str, kind: &MountKind) -> Result<()> {
    let field = format!("mounts[{i}].destination");
    let is_fs = |t: &str| matches!(kind, MountKind::Fs { fstype, .. } if fstype == t);
    if dest == "/" {
        return Err(SetupError::config(field, "must not be / (the container's root is root.path)"));
    }
    if dest == "/proc" && !is_fs("proc") {
        return Err(SetupError::config(
            field,
            "only a proc filesystem may be mounted on /proc (the set-up and the masked paths rely on it)",
        ));
    }
    if dest.starts_with("/proc/")
        && !(matches!(kind, MountKind::Bind { .. }) && PROC_FILES_COVERABLE.contains(&dest))
    {
        return Err(SetupError::config(
            field,
            "is inside /proc, where only a bind over one of its emulated files (/proc/meminfo, /proc/cpuinfo, ...) is allowed",
        ));
    }
    if dest == "/dev" && matches!(kind, MountKind::Bind { .. }) {
        return Err(SetupError::config(
            field,
            "a bind on /dev is refused: the set-up adds devices to /dev, which would land in the source (use a tmpfs)",
        ));
    }
    Ok(())
}

/// The annotation that confines the host paths of a spec (bind sources and `root.path`) to
/// some directories: a JSON array of absolute paths, set by a server that allows binds only
/// there. Each such path is then opened beneath its root, once, and mounted from that very
/// descriptor (see `rootfs::open_host_path`): what is checked is what is mounted.
pub const BIND_ROOTS: &str = "io.ns.bind.roots";

/// The directories of `io.ns.bind.roots`, checked (empty without the annotation).
pub fn bind_roots(annotations: &std::collections::BTreeMap<String, String>) -> Result<Vec<String>> {
    let field = format!("annotations.{BIND_ROOTS}");
    let Some(v) = annotations.get(BIND_ROOTS) else { return Ok(Vec::new()) };
    let roots: Vec<String> = serde_json::from_str(v)
        .map_err(|_| SetupError::config(&field, "must be a JSON array of absolute paths"))?;
    if roots.is_empty() {
        return Err(SetupError::config(&field, "must name at least one directory"));
    }
    roots.iter().map(|r| clean_destination(&field, r)).collect()
}

/// Which of `roots` `path` lies under, lexically, and the rest of it (relative; empty for the
/// root itself). A `..` anywhere is refused: it would be resolved later, by someone else.
pub fn under_root<'a>(roots: &'a [String], path: &str) -> Option<(&'a str, String)> {
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return None;
    }
    let clean: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    roots.iter().find_map(|r| {
        let parts: Vec<&str> = r.split('/').filter(|c| !c.is_empty()).collect();
        (clean.len() >= parts.len() && clean[..parts.len()] == parts[..])
            .then(|| (r.as_str(), clean[parts.len()..].join("/")))
    })
}

/// Resolve a host path given in the spec: relative ones are taken from the bundle directory.
pub fn host_path(bundle: Option<&str>, p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{}/{}", bundle.unwrap_or("."), p)
    }
}

/// Build the plan of `mounts[]`, in order.
pub fn plan_mounts(mounts: &[Mount], bundle: Option<&str>) -> Result<Vec<MountOp>> {
    mounts.iter().enumerate().map(|(i, m)| plan_one(i, m, bundle)).collect()
}

fn plan_one(i: usize, m: &Mount, bundle: Option<&str>) -> Result<MountOp> {
    let destination = clean_destination(&format!("mounts[{i}].destination"), &m.destination)?;
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    let mut bind = None;
    let mut propagation = 0;
    let mut idmap = false;
    for opt in &m.options {
        match opt.as_str() {
            "bind" => bind = Some(bind.unwrap_or(false)),
            "rbind" => bind = Some(true),
            "idmap" | "ridmap" => idmap = true,
            o => {
                if let Some(p) = propagation_flag(o) {
                    propagation = p;
                } else if let Some((set, f)) = flag_option(o) {
                    if set {
                        flags |= f
                    } else {
                        flags &= !f
                    }
                } else {
                    data.push(o.to_owned());
                }
            }
        }
    }
    let kind_name = m.kind.as_deref().unwrap_or("");
    if kind_name == "bind" && bind.is_none() {
        bind = Some(false);
    }
    let kind = if let Some(recursive) = bind {
        let source = m.source.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            SetupError::config(format!("mounts[{i}].source"), "a bind mount needs a source")
        })?;
        MountKind::Bind { source: host_path(bundle, source), recursive, idmap }
    } else {
        if idmap {
            return Err(SetupError::config(
                format!("mounts[{i}].options"),
                "idmap applies to bind mounts only",
            ));
        }
        if kind_name.is_empty() {
            return Err(SetupError::config(
                format!("mounts[{i}].type"),
                "is required unless options has bind or rbind",
            ));
        }
        MountKind::Fs {
            fstype: kind_name.to_owned(),
            source: m.source.clone().unwrap_or_else(|| kind_name.to_owned()),
        }
    };
    check_destination(i, &destination, &kind)?;
    let attrs = attrs_of(flags);
    Ok(MountOp { destination, kind, flags, data: data.join(","), attrs, propagation })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(dest: &str, kind: Option<&str>, source: Option<&str>, opts: &[&str]) -> Mount {
        Mount {
            destination: dest.into(),
            kind: kind.map(Into::into),
            source: source.map(Into::into),
            options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn fresh_filesystems_split_flags_from_data() {
        let ops = plan_mounts(
            &[mount(
                "/dev",
                Some("tmpfs"),
                Some("tmpfs"),
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            )],
            None,
        )
        .unwrap();
        assert_eq!(ops[0].flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(ops[0].data, "mode=755,size=65536k");
        assert_eq!(ops[0].kind, MountKind::Fs { fstype: "tmpfs".into(), source: "tmpfs".into() });
    }

    #[test]
    fn binds_resolve_relative_sources_against_the_bundle_and_carry_attributes() {
        let ops = plan_mounts(
            &[mount("/data/", None, Some("vol"), &["rbind", "ro", "nosuid", "rprivate"])],
            Some("/b"),
        )
        .unwrap();
        assert_eq!(ops[0].destination, "/data");
        assert_eq!(
            ops[0].kind,
            MountKind::Bind { source: "/b/vol".into(), recursive: true, idmap: false }
        );
        assert_eq!(ops[0].attrs, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(ops[0].propagation, libc::MS_PRIVATE);
        let ops =
            plan_mounts(&[mount("/x", Some("bind"), Some("/h"), &["ro", "rw"])], None).unwrap();
        assert_eq!(
            ops[0].kind,
            MountKind::Bind { source: "/h".into(), recursive: false, idmap: false }
        );
        assert_eq!(ops[0].attrs, 0);
        let ops = plan_mounts(&[mount("/x", None, Some("/h"), &["rbind", "idmap"])], None).unwrap();
        assert_eq!(
            ops[0].kind,
            MountKind::Bind { source: "/h".into(), recursive: true, idmap: true }
        );
        let e = plan_mounts(&[mount("/t", Some("tmpfs"), None, &["idmap"])], None).unwrap_err();
        assert_eq!(e.message, "mounts[0].options: idmap applies to bind mounts only");
    }

    #[test]
    fn bad_mounts_name_the_field() {
        let e = plan_mounts(&[mount("data", Some("tmpfs"), None, &[])], None).unwrap_err();
        assert_eq!(e.message, "mounts[0].destination: must be an absolute path");
        let e = plan_mounts(&[mount("/a/../etc", Some("tmpfs"), None, &[])], None).unwrap_err();
        assert_eq!(e.message, "mounts[0].destination: must not contain '..'");
        let e = plan_mounts(
            &[mount("/a", None, Some("/x"), &[]), mount("/b", None, None, &["bind"])],
            None,
        )
        .unwrap_err();
        assert_eq!(e.message, "mounts[0].type: is required unless options has bind or rbind");
        let e = plan_mounts(&[mount("/b", None, None, &["bind"])], None).unwrap_err();
        assert_eq!(e.message, "mounts[0].source: a bind mount needs a source");
    }

    #[test]
    fn bind_roots_are_absolute_and_paths_lie_under_them_lexically() {
        let ann = |v: &str| [(BIND_ROOTS.to_string(), v.to_string())].into_iter().collect();
        assert_eq!(
            bind_roots(&ann(r#"["/srv/data/", "/home/u"]"#)).unwrap(),
            vec!["/srv/data".to_string(), "/home/u".to_string()]
        );
        assert!(bind_roots(&Default::default()).unwrap().is_empty());
        for bad in [r#""/srv""#, r#"["srv"]"#, "[]", r#"["/a/../b"]"#] {
            let e = bind_roots(&ann(bad)).unwrap_err();
            assert!(
                e.message.starts_with("annotations.io.ns.bind.roots: "),
                "{bad}: {}",
                e.message
            );
        }
        let roots = vec!["/srv/data".to_string()];
        assert_eq!(under_root(&roots, "/srv/data"), Some(("/srv/data", String::new())));
        assert_eq!(under_root(&roots, "/srv/data//a/./b"), Some(("/srv/data", "a/b".into())));
        assert_eq!(under_root(&roots, "/srv/database"), None);
        assert_eq!(under_root(&roots, "/srv/data/../etc"), None);
        assert_eq!(under_root(&roots, "/etc"), None);
    }

    #[test]
    fn mounts_over_the_roots_the_set_up_relies_on_are_refused() {
        let refused = |m: Mount| plan_mounts(&[m], None).unwrap_err().message;
        assert!(refused(mount("/", None, Some("/h"), &["rbind"]))
            .starts_with("mounts[0].destination: must not be /"));
        assert!(refused(mount("/proc", None, Some("/h"), &["rbind"]))
            .starts_with("mounts[0].destination: only a proc filesystem may be mounted on /proc"));
        assert!(refused(mount("/proc", Some("tmpfs"), Some("tmpfs"), &[]))
            .starts_with("mounts[0].destination: only a proc filesystem"));
        assert!(refused(mount("/proc/sys", None, Some("/h"), &["rbind"]))
            .starts_with("mounts[0].destination: is inside /proc"));
        assert!(refused(mount("/proc/self", Some("tmpfs"), None, &[]))
            .starts_with("mounts[0].destination: is inside /proc"));
        assert!(refused(mount("/dev", None, Some("/h"), &["rbind"]))
            .starts_with("mounts[0].destination: a bind on /dev is refused"));
        // What the default spec mounts, and an lxcfs-style file, pass.
        let ok = plan_mounts(
            &[
                mount("/proc", Some("proc"), Some("proc"), &[]),
                mount("/dev", Some("tmpfs"), Some("tmpfs"), &[]),
                mount("/sys", Some("sysfs"), Some("sysfs"), &["ro"]),
                mount("/proc/meminfo", None, Some("/var/lib/lxcfs/proc/meminfo"), &["bind"]),
            ],
            None,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
}
