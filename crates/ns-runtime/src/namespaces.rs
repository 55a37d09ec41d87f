//! Which namespaces a container gets: new ones (clone flags) and joined ones (paths to setns).

use crate::error::{Result, SetupError};
use crate::spec::Spec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NsKind {
    User,
    Mount,
    Pid,
    Net,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Mount,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The name the OCI runtime spec uses in `linux.namespaces[].type`.
    pub fn from_oci(name: &str) -> Option<NsKind> {
        Some(match name {
            "user" => NsKind::User,
            "mount" => NsKind::Mount,
            "pid" => NsKind::Pid,
            "network" => NsKind::Net,
            "uts" => NsKind::Uts,
            "ipc" => NsKind::Ipc,
            "cgroup" => NsKind::Cgroup,
            "time" => NsKind::Time,
            _ => return None,
        })
    }

    pub fn oci_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mount",
            NsKind::Pid => "pid",
            NsKind::Net => "network",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The file name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Mount => libc::CLONE_NEWNS,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => 0x80, // CLONE_NEWTIME
        }
    }
}

/// The namespaces of one container, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsPlan {
    /// Namespaces created fresh for the container.
    pub new: Vec<NsKind>,
    /// Namespaces joined: the kind and the path of an existing one (`/proc/PID/ns/net`).
    pub join: Vec<(NsKind, String)>,
}

impl NsPlan {
    pub fn from_spec(spec: &Spec) -> Result<NsPlan> {
        let mut plan = NsPlan::default();
        let list = spec.linux.as_ref().map(|l| l.namespaces.as_slice()).unwrap_or(&[]);
        let mut seen = Vec::new();
        for (i, ns) in list.iter().enumerate() {
            let field = format!("linux.namespaces[{i}].type");
            let kind = NsKind::from_oci(&ns.kind).ok_or_else(|| {
                SetupError::config(&field, format!("unknown namespace type {:?}", ns.kind))
            })?;
            if seen.contains(&kind) {
                return Err(SetupError::config(
                    &field,
                    format!("namespace {:?} is listed twice", ns.kind),
                ));
            }
            seen.push(kind);
            match ns.path.as_deref() {
                Some("") | None => plan.new.push(kind),
                Some(p) if p.starts_with('/') => plan.join.push((kind, p.to_owned())),
                Some(_) => {
                    return Err(SetupError::config(
                        format!("linux.namespaces[{i}].path"),
                        "must be an absolute path",
                    ))
                }
            }
        }
        plan.new.sort();
        // User namespace last among joins: once in it, we lose privilege over the others.
        plan.join.sort_by_key(|(k, _)| (*k == NsKind::User, *k));
        Ok(plan)
    }

    pub fn has_new(&self, kind: NsKind) -> bool {
        self.new.contains(&kind)
    }

    /// Flags for clone3. Left out, and unshared by the child itself: the time namespace (its
    /// offsets must be written before any process enters it) and the cgroup namespace (its root
    /// is the cgroup of whoever creates it: the child, once moved into its own cgroup).
    pub fn clone_flags(&self) -> u64 {
        self.new
            .iter()
            .filter(|k| !matches!(k, NsKind::Time | NsKind::Cgroup))
            .fold(0u64, |f, k| f | k.clone_flag() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Linux, Namespace};

    fn spec(ns: &[(&str, Option<&str>)]) -> Spec {
        Spec {
            linux: Some(Linux {
                namespaces: ns
                    .iter()
                    .map(|(k, p)| Namespace { kind: k.to_string(), path: p.map(str::to_owned) })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn new_namespaces_become_clone_flags_without_time_and_cgroup() {
        let plan = NsPlan::from_spec(&spec(&[
            ("pid", None),
            ("user", None),
            ("time", None),
            ("network", None),
            ("cgroup", None),
        ]))
        .unwrap();
        assert_eq!(
            plan.new,
            vec![NsKind::User, NsKind::Pid, NsKind::Net, NsKind::Cgroup, NsKind::Time]
        );
        let f = plan.clone_flags();
        assert_eq!(f, (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET) as u64);
        assert_eq!(f & 0x80, 0);
        assert_eq!(f & libc::CLONE_NEWCGROUP as u64, 0);
    }

    #[test]
    fn joined_namespaces_keep_their_path_and_user_comes_last() {
        let plan = NsPlan::from_spec(&spec(&[
            ("user", Some("/proc/1/ns/user")),
            ("network", Some("/proc/1/ns/net")),
        ]))
        .unwrap();
        assert_eq!(plan.join[0], (NsKind::Net, "/proc/1/ns/net".to_string()));
        assert_eq!(plan.join[1].0, NsKind::User);
        assert!(plan.new.is_empty());
    }

    #[test]
    fn unknown_or_duplicate_types_name_the_field() {
        let e = NsPlan::from_spec(&spec(&[("pid", None), ("bogus", None)])).unwrap_err();
        assert_eq!(e.message, "linux.namespaces[1].type: unknown namespace type \"bogus\"");
        let e = NsPlan::from_spec(&spec(&[("pid", None), ("pid", None)])).unwrap_err();
        assert!(e
            .message
            .starts_with("linux.namespaces[1].type: namespace \"pid\" is listed twice"));
        let e = NsPlan::from_spec(&spec(&[("net", None)])).unwrap_err();
        assert!(e.message.contains("unknown namespace type"));
        let e = NsPlan::from_spec(&spec(&[("network", Some("relative"))])).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("linux.namespaces[0].path"));
    }
}
