//! From OCI `mounts[]` to a plan of mount operations: pure data, checked and unit-tested, that
//! `rootfs` then carries out inside the container's mount namespace.

use crate::error::{Result, SetupError};
use crate::spec::Mount;
use crate::sys::{
    MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of `source` (a host path, absolute after bundle resolution): a copy of its mount
    /// (`recursive`: with every mount below it, `rbind`). With `idmap`, the ids of its files
    /// are seen through the container's user namespace (an idmapped mount, made outside by the
    /// helper): host root's files are container root's; `idmap` maps the copied mount itself,
    /// `ridmap` (`idmap_recursive`) every mount of the copy, as runc and crun do.
    Bind { source: String, recursive: bool, idmap: bool, idmap_recursive: bool },
    /// A filesystem mounted fresh: proc, tmpfs, sysfs, devpts, mqueue, …
    Fs { fstype: String, source: String },
}

/// Mount attributes (`MOUNT_ATTR_*`) to set and to clear with `mount_setattr(2)`, and the atime
/// mode to switch to (one of relatime, noatime, strictatime), if an option names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clear: u64,
    pub atime: Option<u64>,
}

impl Attrs {
    /// Only set these.
    pub const fn setting(set: u64) -> Attrs {
        Attrs { set, clear: 0, atime: None }
    }

    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0 && self.atime.is_none()
    }

    /// What `mount_setattr` is given: the atime mode is a field of its own, changed by
    /// clearing the whole field and setting the mode.
    pub fn kernel(&self) -> (u64, u64) {
        match self.atime {
            Some(mode) => (self.set | mode, self.clear | MOUNT_ATTR_ATIME_MASK),
            None => (self.set, self.clear),
        }
    }

    /// The same without clearing anything: what is left to try when a clear is refused
    /// (the kernel locks the flags a less privileged mount namespace inherited).
    pub fn without_clears(&self) -> Attrs {
        Attrs { set: self.set, clear: 0, atime: self.atime }
    }

    fn apply(&mut self, change: AttrChange) {
        match change {
            AttrChange::Set(a) => {
                self.set |= a;
                self.clear &= !a;
            }
            AttrChange::Clear(a) => {
                self.clear |= a;
                self.set &= !a;
            }
            AttrChange::Atime(mode) => self.atime = Some(mode),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrChange {
    Set(u64),
    Clear(u64),
    Atime(u64),
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
    /// The attributes of the mount itself: of a bind's copy (`ro`, `nosuid`, `rw`, …), or, for
    /// a fresh filesystem, those its flags imply (for when the host's is bound instead).
    pub attrs: Attrs,
    /// On a bind: the attributes of every mount of the copy (`rro`, `rnosuid`, `rrw`, …), set
    /// with `AT_RECURSIVE` before those of the mount itself.
    pub rec_attrs: Attrs,
    /// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`, `MS_UNBINDABLE`, with `MS_REC` for the `r` forms
    /// (0: inherit).
    pub propagation: libc::c_ulong,
}

/// The propagation type named by an option, if it names one (`MS_REC` with the `r` forms).
pub fn propagation_flag(opt: &str) -> Option<libc::c_ulong> {
    let (recursive, name) = match opt.strip_prefix('r') {
        Some(rest @ ("private" | "slave" | "shared" | "unbindable")) => (true, rest),
        _ => (false, opt),
    };
    let flag = match name {
        "private" => libc::MS_PRIVATE,
        "slave" => libc::MS_SLAVE,
        "shared" => libc::MS_SHARED,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive { flag | libc::MS_REC } else { flag })
}

/// `MS_NOSYMFOLLOW` (5.10), missing from the libc crate's list.
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// A flag option: the `MS_*` flag it sets (`true`) or clears (`false`) on a fresh
/// filesystem, and what it changes of a bind's attributes (None: nothing `mount_setattr` can
/// set, so it is refused on a bind). Its `r` form (`rro`, `rnosuid`, …) is the same change
/// made to every mount of a bind's copy.
fn flag_option(opt: &str) -> Option<((bool, libc::c_ulong), Option<AttrChange>)> {
    use AttrChange::{Atime, Clear, Set};
    Some(match opt {
        "ro" => ((true, libc::MS_RDONLY), Some(Set(MOUNT_ATTR_RDONLY))),
        "rw" => ((false, libc::MS_RDONLY), Some(Clear(MOUNT_ATTR_RDONLY))),
        "nosuid" => ((true, libc::MS_NOSUID), Some(Set(MOUNT_ATTR_NOSUID))),
        "suid" => ((false, libc::MS_NOSUID), Some(Clear(MOUNT_ATTR_NOSUID))),
        "nodev" => ((true, libc::MS_NODEV), Some(Set(MOUNT_ATTR_NODEV))),
        "dev" => ((false, libc::MS_NODEV), Some(Clear(MOUNT_ATTR_NODEV))),
        "noexec" => ((true, libc::MS_NOEXEC), Some(Set(MOUNT_ATTR_NOEXEC))),
        "exec" => ((false, libc::MS_NOEXEC), Some(Clear(MOUNT_ATTR_NOEXEC))),
        "nosymfollow" => ((true, MS_NOSYMFOLLOW), Some(Set(MOUNT_ATTR_NOSYMFOLLOW))),
        "symfollow" => ((false, MS_NOSYMFOLLOW), Some(Clear(MOUNT_ATTR_NOSYMFOLLOW))),
        "noatime" => ((true, libc::MS_NOATIME), Some(Atime(MOUNT_ATTR_NOATIME))),
        "atime" => ((false, libc::MS_NOATIME), Some(Atime(MOUNT_ATTR_RELATIME))),
        "relatime" => ((true, libc::MS_RELATIME), Some(Atime(MOUNT_ATTR_RELATIME))),
        "norelatime" => ((false, libc::MS_RELATIME), Some(Atime(MOUNT_ATTR_STRICTATIME))),
        "strictatime" => ((true, libc::MS_STRICTATIME), Some(Atime(MOUNT_ATTR_STRICTATIME))),
        "nostrictatime" => ((false, libc::MS_STRICTATIME), Some(Atime(MOUNT_ATTR_RELATIME))),
        "nodiratime" => ((true, libc::MS_NODIRATIME), Some(Set(MOUNT_ATTR_NODIRATIME))),
        "diratime" => ((false, libc::MS_NODIRATIME), Some(Clear(MOUNT_ATTR_NODIRATIME))),
        "sync" => ((true, libc::MS_SYNCHRONOUS), None),
        "async" => ((false, libc::MS_SYNCHRONOUS), None),
        "dirsync" => ((true, libc::MS_DIRSYNC), None),
        "lazytime" => ((true, libc::MS_LAZYTIME), None),
        "nolazytime" => ((false, libc::MS_LAZYTIME), None),
        "iversion" => ((true, libc::MS_I_VERSION), None),
        "noiversion" => ((false, libc::MS_I_VERSION), None),
        "mand" => ((true, libc::MS_MANDLOCK), None),
        "nomand" => ((false, libc::MS_MANDLOCK), None),
        "silent" => ((true, libc::MS_SILENT), None),
        "loud" => ((false, libc::MS_SILENT), None),
        _ => return None,
    })
}

/// The flag options whose `r` form is a recursive change of a bind's attributes.
const RECURSIVE_FLAGS: [&str; 18] = [
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "nosymfollow",
    "symfollow",
    "noatime",
    "atime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nodiratime",
    "diratime",
];

/// The flag option an `r` option is the recursive form of (`rro` -> `ro`).
fn recursive_form(opt: &str) -> Option<&'static str> {
    let rest = opt.strip_prefix('r')?;
    RECURSIVE_FLAGS.iter().copied().find(|f| *f == rest)
}

/// Every option `plan_mounts` acts on itself: `bind`/`rbind`, `idmap`/`ridmap`, `defaults`,
/// the propagation types, the flags (each with its recursive form on binds). Any other option
/// is the filesystem's: it goes to the kernel as mount data (and is refused on a bind, where
/// nothing would read it).
pub const OPTIONS: [&str; 60] = [
    "bind",
    "rbind",
    "idmap",
    "ridmap",
    "defaults",
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
    "nosymfollow",
    "symfollow",
    "noatime",
    "atime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nodiratime",
    "diratime",
    "sync",
    "async",
    "dirsync",
    "lazytime",
    "nolazytime",
    "iversion",
    "noiversion",
    "mand",
    "nomand",
    "silent",
    "loud",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnosymfollow",
    "rsymfollow",
    "rnoatime",
    "ratime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "rnodiratime",
    "rdiratime",
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

/// Resolve a host path given in the spec: relative ones are taken from the bundle directory;
/// `.` components, doubled and trailing slashes go (`rootfs/.` is `<bundle>/rootfs`). A `..`
/// stays, for the kernel to resolve.
pub fn host_path(bundle: Option<&str>, p: &str) -> String {
    let joined =
        if p.starts_with('/') { p.to_owned() } else { format!("{}/{}", bundle.unwrap_or("."), p) };
    let absolute = joined.starts_with('/');
    let parts: Vec<&str> = joined.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_owned(),
        (false, false) => parts.join("/"),
    }
}

/// Build the plan of `mounts[]`, in order.
pub fn plan_mounts(mounts: &[Mount], bundle: Option<&str>) -> Result<Vec<MountOp>> {
    mounts.iter().enumerate().map(|(i, m)| plan_one(i, m, bundle)).collect()
}

fn plan_one(i: usize, m: &Mount, bundle: Option<&str>) -> Result<MountOp> {
    let destination = clean_destination(&format!("mounts[{i}].destination"), &m.destination)?;
    let options_field = format!("mounts[{i}].options");
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    let mut bind = None;
    let mut propagation = 0;
    let mut idmap = None;
    // What a bind's copy gets, in the order the options come (the last word wins): changes of
    // the mount itself, and of every mount of it (`r` forms). A bind refuses what it cannot
    // apply: a flag mount_setattr has no attribute for, or data no filesystem would read.
    let mut attrs = Attrs::default();
    let mut rec_attrs = Attrs::default();
    let mut not_for_binds: Vec<&str> = Vec::new();
    for opt in &m.options {
        match opt.as_str() {
            "bind" => bind = Some(bind.unwrap_or(false)),
            "rbind" => bind = Some(true),
            "idmap" => idmap = Some(false),
            "ridmap" => idmap = Some(true),
            "defaults" => {}
            o => {
                if let Some(p) = propagation_flag(o) {
                    propagation = p;
                } else if let Some(((set, f), change)) = flag_option(o) {
                    if set {
                        flags |= f
                    } else {
                        flags &= !f
                    }
                    match change {
                        Some(c) => attrs.apply(c),
                        None => not_for_binds.push(o),
                    }
                } else if let Some(((set, f), Some(change))) =
                    recursive_form(o).and_then(flag_option)
                {
                    // On a fresh filesystem the recursive form is the flag itself: it has no
                    // mounts below it yet.
                    if set {
                        flags |= f
                    } else {
                        flags &= !f
                    }
                    rec_attrs.apply(change);
                } else {
                    data.push(o.to_owned());
                    not_for_binds.push(o);
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
        if let Some(o) = not_for_binds.first() {
            return Err(SetupError::config(
                options_field,
                format!("{o:?} cannot be applied to a bind mount (a bind takes bind, rbind, idmap, ridmap, the propagation types and the flags mount_setattr sets: ro, nosuid, nodev, noexec, nosymfollow, the atime ones, and their recursive r forms)"),
            ));
        }
        MountKind::Bind {
            source: host_path(bundle, source),
            recursive,
            idmap: idmap.is_some(),
            idmap_recursive: idmap == Some(true),
        }
    } else {
        if idmap.is_some() {
            return Err(SetupError::config(options_field, "idmap applies to bind mounts only"));
        }
        if kind_name.is_empty() {
            return Err(SetupError::config(
                format!("mounts[{i}].type"),
                "is required unless options has bind or rbind",
            ));
        }
        attrs = Attrs::setting(attrs_of(flags));
        rec_attrs = Attrs::default();
        MountKind::Fs {
            fstype: kind_name.to_owned(),
            source: m.source.clone().unwrap_or_else(|| kind_name.to_owned()),
        }
    };
    check_destination(i, &destination, &kind)?;
    Ok(MountOp { destination, kind, flags, data: data.join(","), attrs, rec_attrs, propagation })
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

    fn bind(source: &str, recursive: bool, idmap: Option<bool>) -> MountKind {
        MountKind::Bind {
            source: source.into(),
            recursive,
            idmap: idmap.is_some(),
            idmap_recursive: idmap == Some(true),
        }
    }

    #[test]
    fn binds_resolve_relative_sources_against_the_bundle_and_carry_attributes() {
        let ops = plan_mounts(
            &[mount("/data/", None, Some("vol"), &["rbind", "ro", "nosuid", "rprivate"])],
            Some("/b"),
        )
        .unwrap();
        assert_eq!(ops[0].destination, "/data");
        assert_eq!(ops[0].kind, bind("/b/vol", true, None));
        assert_eq!(ops[0].attrs, Attrs::setting(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
        assert!(ops[0].rec_attrs.is_empty(), "ro, nosuid: the copied mount itself");
        assert_eq!(ops[0].propagation, libc::MS_PRIVATE | libc::MS_REC);
        let ops =
            plan_mounts(&[mount("/x", Some("bind"), Some("/h"), &["ro", "rw"])], None).unwrap();
        assert_eq!(ops[0].kind, bind("/h", false, None));
        assert_eq!(ops[0].attrs, Attrs { set: 0, clear: MOUNT_ATTR_RDONLY, atime: None });
        let ops = plan_mounts(&[mount("/x", None, Some("/h"), &["rbind", "idmap"])], None).unwrap();
        assert_eq!(ops[0].kind, bind("/h", true, Some(false)));
        let e = plan_mounts(&[mount("/t", Some("tmpfs"), None, &["idmap"])], None).unwrap_err();
        assert_eq!(e.message, "mounts[0].options: idmap applies to bind mounts only");
    }

    #[test]
    fn recursive_forms_change_every_mount_of_a_bind_and_the_plain_ones_the_mount_itself() {
        let op = |opts: &[&str]| {
            plan_mounts(&[mount("/x", None, Some("/h"), opts)], None).unwrap().remove(0)
        };
        let o = op(&["rbind", "rro", "rnosuid", "nodev", "rnoexec", "rexec", "nosymfollow"]);
        assert_eq!(
            o.rec_attrs,
            Attrs {
                set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                clear: MOUNT_ATTR_NOEXEC,
                atime: None
            }
        );
        assert_eq!(o.attrs, Attrs::setting(MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSYMFOLLOW));
        // The atime mode is one field: the last word wins, and the whole field is cleared.
        let o = op(&["rbind", "rnoatime", "strictatime", "rrelatime"]);
        assert_eq!(o.rec_attrs.atime, Some(MOUNT_ATTR_RELATIME));
        assert_eq!(o.attrs.kernel(), (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME_MASK));
        assert_eq!(o.rec_attrs.kernel(), (MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME_MASK));
        // rrw clears read-only everywhere; without_clears is what is left when it is locked.
        let o = op(&["rbind", "rrw", "ro"]);
        assert_eq!(o.rec_attrs.clear, MOUNT_ATTR_RDONLY);
        assert_eq!(o.rec_attrs.without_clears(), Attrs::default());
        assert_eq!(o.attrs.set, MOUNT_ATTR_RDONLY);
        // idmap maps the copied mount, ridmap every mount of the copy (runc's and crun's reading).
        assert_eq!(op(&["rbind", "ridmap"]).kind, bind("/h", true, Some(true)));
        assert_eq!(op(&["bind", "ridmap"]).kind, bind("/h", false, Some(true)));
        // On a fresh filesystem the r forms are its flags (nothing is below it yet).
        let t = plan_mounts(
            &[mount("/t", Some("tmpfs"), None, &["rro", "rnosuid", "nosymfollow"])],
            None,
        )
        .unwrap();
        assert_eq!(t[0].flags, libc::MS_RDONLY | libc::MS_NOSUID | 256);
        assert!(t[0].data.is_empty());
        assert_eq!(op(&["rbind", "runbindable"]).propagation, libc::MS_UNBINDABLE | libc::MS_REC);
        assert_eq!(op(&["rbind", "slave"]).propagation, libc::MS_SLAVE);
    }

    #[test]
    fn a_bind_refuses_what_it_cannot_apply_naming_the_option() {
        for o in ["sync", "lazytime", "mode=755", "size=1m", "rsync", "tmpcopyup", "remount"] {
            let e = plan_mounts(&[mount("/x", None, Some("/h"), &["rbind", o])], None).unwrap_err();
            assert_eq!(e.path.as_deref(), Some("mounts[0].options"), "{o}");
            assert!(
                e.message.contains(&format!("{o:?} cannot be applied to a bind mount")),
                "{o}: {}",
                e.message
            );
        }
        // A fresh filesystem takes them: the flags it knows, the rest as its data.
        let t = plan_mounts(
            &[mount("/t", Some("tmpfs"), None, &["sync", "lazytime", "mode=755"])],
            None,
        )
        .unwrap();
        assert_eq!(t[0].flags, libc::MS_SYNCHRONOUS | libc::MS_LAZYTIME);
        assert_eq!(t[0].data, "mode=755");
        assert!(plan_mounts(&[mount("/x", None, Some("/h"), &["rbind", "defaults"])], None).is_ok());
    }

    #[test]
    fn host_paths_are_taken_from_the_bundle_and_cleaned() {
        assert_eq!(host_path(Some("/b"), "rootfs"), "/b/rootfs");
        assert_eq!(host_path(Some("/b"), "rootfs/."), "/b/rootfs");
        assert_eq!(host_path(Some("/b/"), "./rootfs//"), "/b/rootfs");
        assert_eq!(host_path(Some("/b"), "/srv/r/."), "/srv/r");
        assert_eq!(host_path(Some("/b"), "../r"), "/b/../r");
        assert_eq!(host_path(None, "r"), "r");
        assert_eq!(host_path(Some("/b"), "/"), "/");
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
