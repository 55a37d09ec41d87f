//! `features`: what this runtime implements, as the runtime spec's features document
//! (`features.md`, `features-linux.md`) describes it. No list here is written by hand: each is
//! read from the table the runtime itself works from (the mount planner's options, the
//! capability names, the seccomp compiler's actions, operators and architectures, the namespace
//! kinds, the hook kinds a config keeps), and most "enabled" from whether the runtime reads the
//! part of `config.json` it is about. The tests below hold every claim against what the runtime
//! accepts and refuses.

use ns_runtime::cgroup::{Layout, Resources};
use ns_runtime::namespaces::NsKind;
use ns_runtime::spec::{Hooks, Linux, Process, ANNOTATION_PREFIX};
use ns_runtime::{caps, mounts, seccomp};
use serde::Serialize;
use serde_json::{json, Value};

use super::create::{self, OCI_VERSION_MIN};
use super::{Failure, Verb};
use crate::args::Parsed;
use crate::global::Ctx;

pub static VERB: Verb = Verb {
    name: "features",
    aliases: &[],
    args: "",
    about: "what this runtime implements (JSON)",
    flags: &[],
    flags_end_at_positional: false,
    main,
};

fn main(_: &Ctx, p: Parsed) -> Result<i32, Failure> {
    p.none(VERB.name)?;
    out!("{}", serde_json::to_string_pretty(&features()).unwrap_or_default());
    Ok(0)
}

/// The names of the fields the runtime reads into `T` (as `config.json` spells them).
fn fields<T: Serialize + Default>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn reads<T: Serialize + Default>(field: &str) -> bool {
    fields::<T>().iter().any(|f| f == field)
}

/// The hook kinds: the fields of `hooks` the runtime reads (and runs; see ns-runtime's hooks).
pub fn hooks() -> Vec<String> {
    fields::<Hooks>()
}

/// The cgroup layouts the runtime manages, by the features document's names. A new layout
/// does not compile until it is named here.
pub fn cgroup_layouts() -> Vec<(&'static str, Layout)> {
    let name = |l: Layout| match l {
        Layout::V1 => "v1",
        Layout::V2 => "v2",
    };
    [Layout::V1, Layout::V2].into_iter().map(|l| (name(l), l)).collect()
}

/// Whether this build compiles seccomp profiles at all (x86_64 only).
pub fn seccomp_enabled() -> bool {
    let allow = seccomp::Profile { default_action: "SCMP_ACT_ALLOW".into(), ..Default::default() };
    seccomp::compile(&allow).is_ok()
}

pub fn features() -> Value {
    let layouts = cgroup_layouts();
    let has_layout = |n: &str| layouts.iter().any(|(name, _)| *name == n);
    let seccomp = if seccomp_enabled() {
        json!({
            "enabled": true,
            "actions": seccomp::ACTIONS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            "operators": &seccomp::OPERATORS[..],
            "archs": &seccomp::ARCHITECTURES[..],
            // The profile's `flags` are not read: none is known, none supported.
            "knownFlags": if reads::<seccomp::Profile>("flags") { Value::Null } else { json!([]) },
            "supportedFlags": if reads::<seccomp::Profile>("flags") { Value::Null } else { json!([]) },
        })
    } else {
        json!({ "enabled": false })
    };
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": ns_runtime::SPEC_VERSION,
        "hooks": hooks(),
        "mountOptions": &mounts::OPTIONS[..],
        "linux": {
            "namespaces": NsKind::ALL.iter().map(|k| k.oci_name()).collect::<Vec<_>>(),
            "capabilities": &caps::NAMES[..],
            "cgroup": {
                "v1": has_layout("v1"),
                "v2": has_layout("v2"),
                // The cgroups are made and written directly; no systemd manager is asked.
                "systemd": false,
                "systemdUser": false,
                "rdma": reads::<Resources>("rdma"),
            },
            "seccomp": seccomp,
            "apparmor": { "enabled": reads::<Process>("apparmorProfile") },
            "selinux": { "enabled": reads::<Process>("selinuxLabel") },
            "intelRdt": { "enabled": reads::<Linux>("intelRdt") },
            // A mount's own `uidMappings`/`gidMappings`, read by `create` (taken when they are
            // the container's own id maps, refused otherwise).
            "mountExtensions": { "idmap": { "enabled": create::MOUNT_ID_MAPS } },
        },
        "annotations": { "io.ns.version": ns_runtime::VERSION },
        "potentiallyUnsafeConfigAnnotations": [ANNOTATION_PREFIX],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ns_runtime::caps::CapSets;
    use ns_runtime::namespaces::NsPlan;
    use ns_runtime::spec::{Capabilities, Mount, Namespace, Spec};

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    fn listed(path: &str) -> Vec<String> {
        strings(features().pointer(path).unwrap_or(&Value::Null))
    }

    /// Every name in `universe` (names the runtime spec knows) and every listed name: listed
    /// exactly when the runtime takes it.
    fn listed_iff_taken(path: &str, universe: &[&str], taken: impl Fn(&str) -> bool) {
        let listed = listed(path);
        assert!(!listed.is_empty(), "{path} lists nothing");
        let mut all: Vec<String> = universe.iter().map(|s| s.to_string()).collect();
        all.extend(listed.iter().cloned());
        for name in all {
            assert_eq!(
                listed.contains(&name),
                taken(&name),
                "{path}: {name:?} is {} but the runtime {} it",
                if listed.contains(&name) { "listed" } else { "not listed" },
                if taken(&name) { "takes" } else { "refuses" },
            );
        }
    }

    /// The mount options the runtime spec names (features.md), and the idmap ones of 1.2.
    const SPEC_MOUNT_OPTIONS: &[&str] = &[
        "acl",
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noacl",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "ratime",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "rnoatime",
        "rnodev",
        "rnodiratime",
        "rnoexec",
        "rnorelatime",
        "rnostrictatime",
        "rnosuid",
        "rnosymfollow",
        "ro",
        "rprivate",
        "rrelatime",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "rsymfollow",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "tmpcopyup",
        "unbindable",
        "idmap",
        "ridmap",
    ];

    #[test]
    fn mount_options_are_those_the_planner_acts_on_and_no_other() {
        // Taken: the planner consumes the option itself, on a bind or on a fresh filesystem;
        // any other goes to the kernel as a filesystem's data (and is refused on a bind).
        let plan = |kind: Option<&str>, opts: &[&str]| {
            let m = Mount {
                destination: "/m".into(),
                kind: kind.map(Into::into),
                source: Some("/h".into()),
                options: opts.iter().map(|o| o.to_string()).collect(),
            };
            mounts::plan_mounts(&[m], None)
        };
        listed_iff_taken("/mountOptions", SPEC_MOUNT_OPTIONS, |opt| {
            plan(None, &["rbind", opt]).is_ok()
                || plan(Some("tmpfs"), &[opt]).is_ok_and(|ops| ops[0].data.is_empty())
        });
        // A bind takes nothing else: what the planner does not act on is refused there.
        for opt in
            SPEC_MOUNT_OPTIONS.iter().filter(|o| !listed("/mountOptions").contains(&o.to_string()))
        {
            let e = plan(None, &["rbind", opt]).unwrap_err();
            assert_eq!(e.path.as_deref(), Some("mounts[0].options"), "{opt}");
        }
    }

    #[test]
    fn capabilities_are_those_a_spec_may_name_and_no_other() {
        let universe = ["CAP_SYS_ADMIN", "CAP_NOPE", "SYS_ADMIN", "cap_chown", "CAP_LAST_CAP"];
        listed_iff_taken("/linux/capabilities", &universe, |name| {
            let c = Capabilities { bounding: vec![name.into()], ..Default::default() };
            CapSets::from_spec(&c).is_ok()
        });
        let all = listed("/linux/capabilities");
        let c = Capabilities { permitted: all.clone(), ..Default::default() };
        assert_eq!(CapSets::from_spec(&c).unwrap().permitted.count_ones() as usize, all.len());
    }

    #[test]
    fn namespaces_are_those_a_spec_may_name_and_no_other() {
        let universe =
            ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time", "net", "mnt"];
        let plan = |types: &[String]| {
            let linux = Linux {
                namespaces: types
                    .iter()
                    .map(|t| Namespace { kind: t.clone(), path: None })
                    .collect(),
                ..Default::default()
            };
            NsPlan::from_spec(&Spec { linux: Some(linux), ..Default::default() })
        };
        listed_iff_taken("/linux/namespaces", &universe, |t| plan(&[t.to_owned()]).is_ok());
        let all = listed("/linux/namespaces");
        assert_eq!(plan(&all).unwrap().new.len(), all.len());
    }

    #[test]
    fn seccomp_actions_operators_and_architectures_compile_and_others_do_not() {
        if !seccomp_enabled() {
            assert_eq!(features()["linux"]["seccomp"], json!({ "enabled": false }));
            return;
        }
        let rule = |action: &str, op: &str| seccomp::Rule {
            names: vec!["getpid".into()],
            action: action.into(),
            errno_ret: Some(1),
            args: vec![seccomp::Arg { index: 0, value: 1, value_two: 1, op: op.into() }],
        };
        let profile = |default: &str, rules: Vec<seccomp::Rule>, archs: &[&str]| seccomp::Profile {
            default_action: default.into(),
            default_errno_ret: None,
            architectures: archs.iter().map(|a| a.to_string()).collect(),
            syscalls: rules,
        };
        // libseccomp's actions; SCMP_ACT_NOTIFY needs a listener, which no caller hands over.
        let actions = [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_NOPE",
        ];
        listed_iff_taken("/linux/seccomp/actions", &actions, |a| {
            seccomp::compile(&profile(a, vec![], &[])).is_ok()
                && seccomp::compile(&profile("SCMP_ACT_ALLOW", vec![rule(a, "SCMP_CMP_EQ")], &[]))
                    .is_ok()
        });
        let operators = [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NOPE",
        ];
        listed_iff_taken("/linux/seccomp/operators", &operators, |op| {
            seccomp::compile(&profile("SCMP_ACT_ALLOW", vec![rule("SCMP_ACT_ERRNO", op)], &[]))
                .is_ok()
        });
        // Every listed architecture compiles; a name that is none is refused. (Other
        // SCMP_ARCH_ names are taken too, and their calls refused with ENOSYS: see ARCHITECTURES.)
        let archs = listed("/linux/seccomp/archs");
        let archs: Vec<&str> = archs.iter().map(String::as_str).collect();
        assert!(seccomp::compile(&profile("SCMP_ACT_ALLOW", vec![], &archs)).is_ok());
        for bad in ["X86_64", "x86_64", "SCMP_ARCH"] {
            assert!(seccomp::compile(&profile("SCMP_ACT_ALLOW", vec![], &[bad])).is_err(), "{bad}");
        }
        assert!(!reads::<seccomp::Profile>("flags"));
        assert_eq!(features()["linux"]["seccomp"]["knownFlags"], json!([]));
    }

    #[test]
    fn hooks_are_the_kinds_a_config_keeps_and_no_other() {
        let universe = [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
            "prestop",
        ];
        listed_iff_taken("/hooks", &universe, |kind| {
            let config =
                json!({ "ociVersion": "1.2.0", "hooks": { kind: [{ "path": "/bin/true" }] } });
            let spec: Spec = serde_json::from_value(config).unwrap();
            let kept = serde_json::to_value(spec.hooks.unwrap_or_default()).unwrap();
            kept[kind].as_array().is_some_and(|a| a.len() == 1)
        });
    }

    #[test]
    fn cgroup_layouts_listed_are_planned_and_what_is_not_read_is_not_claimed() {
        let r: Resources = serde_json::from_value(json!({
            "memory": { "limit": 1 << 26 }, "pids": { "limit": 64 }, "cpu": { "quota": 50000, "period": 100000 }
        }))
        .unwrap();
        for (name, layout) in cgroup_layouts() {
            assert_eq!(features()["linux"]["cgroup"][name], json!(true));
            let writes = ns_runtime::cgroup::plan_writes(layout, &r).unwrap();
            assert!(writes.len() >= 3, "{name}: {writes:?}");
        }
        let f = features();
        for off in [
            "/linux/cgroup/systemd",
            "/linux/cgroup/systemdUser",
            "/linux/apparmor/enabled",
            "/linux/selinux/enabled",
        ] {
            assert_eq!(f.pointer(off), Some(&json!(false)), "{off}");
        }
        // linux.resources.rdma is read (and applied where the host has the rdma controller).
        assert_eq!(f.pointer("/linux/cgroup/rdma"), Some(&json!(true)));
        // linux.intelRdt is read (and refused, naming it, where the host has no resctrl).
        assert_eq!(f.pointer("/linux/intelRdt/enabled"), Some(&json!(true)));
    }

    #[test]
    fn the_idmap_extension_is_claimed_because_create_reads_a_mount_s_id_maps() {
        assert_eq!(features().pointer("/linux/mountExtensions/idmap/enabled"), Some(&json!(true)));
        let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        let other = json!([{ "containerID": 0, "hostID": 1, "size": 1 }]);
        let config = |uids: &Value| {
            json!({
                "ociVersion": "1.2.0",
                "linux": { "uidMappings": maps, "gidMappings": maps },
                "mounts": [{ "destination": "/m", "source": "/h", "options": ["rbind", "idmap"],
                             "uidMappings": uids, "gidMappings": maps }],
            })
        };
        let check = |raw: Value| {
            let spec: Spec = serde_json::from_value(raw.clone()).unwrap();
            create::check_mount_id_maps(&raw, &spec)
        };
        assert!(check(config(&maps)).is_ok());
        assert_eq!(
            check(config(&other)).unwrap_err().path.as_deref(),
            Some("mounts[0].uidMappings")
        );
    }

    #[test]
    fn the_versions_and_properties_are_the_runtime_spec_s() {
        let f = features();
        for v in [&f["ociVersionMin"], &f["ociVersionMax"]] {
            assert!(super::super::create::check_oci_version(v.as_str().unwrap()).is_ok());
        }
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&f),
            [
                "annotations",
                "hooks",
                "linux",
                "mountOptions",
                "ociVersionMax",
                "ociVersionMin",
                "potentiallyUnsafeConfigAnnotations"
            ]
        );
        assert_eq!(
            keys(&f["linux"]),
            [
                "apparmor",
                "capabilities",
                "cgroup",
                "intelRdt",
                "mountExtensions",
                "namespaces",
                "seccomp",
                "selinux"
            ]
        );
    }

    /// Every annotation key the runtime's code looks up.
    fn annotations_read(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                annotations_read(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                // The runtime's code, not its tests (which read annotations of their own).
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for piece in code.split("annotations.get(\"").skip(1) {
                    out.push(piece.split('"').next().unwrap_or_default().to_owned());
                }
            }
        }
    }

    #[test]
    fn every_annotation_the_runtime_acts_on_is_under_the_unsafe_prefix() {
        let prefixes = listed("/potentiallyUnsafeConfigAnnotations");
        assert!(prefixes.iter().all(|p| p.ends_with('.')), "{prefixes:?}");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ns-runtime/src");
        let mut keys = Vec::new();
        annotations_read(&src, &mut keys);
        assert!(keys.contains(&"io.ns.userns".to_owned()), "{keys:?}");
        for k in keys {
            assert!(
                prefixes.iter().any(|p| k.starts_with(p.as_str())),
                "{k} is not under {prefixes:?}"
            );
        }
    }
}
