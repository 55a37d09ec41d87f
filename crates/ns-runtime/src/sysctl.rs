//! Which `linux.sysctl` keys a container may set: only those its own namespaces hold, so that
//! a write can never reach the host's kernel. A key is namespaced by the IPC namespace
//! (`kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`), the network namespace (`net.*`)
//! or the UTS namespace (`kernel.hostname`, `kernel.domainname`); every other key is the whole
//! machine's, and refused. A namespace counts when the container gets a new one, or joins one
//! that is not the host's.

use std::collections::BTreeMap;

use crate::error::{Result, SetupError};
use crate::namespaces::{NsKind, NsPlan};

/// The IPC namespace's keys under `kernel.` (those of `fs.mqueue.` are matched by prefix).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace that holds `key`, or None when the key is the whole machine's.
pub fn namespace_of(key: &str) -> Option<NsKind> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(NsKind::Ipc)
    } else if key.starts_with("net.") {
        Some(NsKind::Net)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(NsKind::Uts)
    } else {
        None
    }
}

/// Whether the container has a namespace of `kind` of its own: a new one, or a joined one that
/// is not the one this process (the host side) is in.
fn owns(ns: &NsPlan, kind: NsKind, is_host: &dyn Fn(NsKind, &str) -> bool) -> bool {
    ns.has_new(kind) || ns.join.iter().any(|(k, path)| *k == kind && !is_host(kind, path))
}

/// Whether the namespace at `path` is the one this process is in (same device and inode).
fn is_host_namespace(kind: NsKind, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(format!("/proc/self/ns/{}", kind.proc_name()));
    let theirs = std::fs::metadata(path);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        // Unreadable: not known to be the host's; joining it fails later if it is not there.
        _ => false,
    }
}

/// Check `linux.sysctl` against the namespaces and give the files to write, in key order.
pub fn plan(sysctl: &BTreeMap<String, String>, ns: &NsPlan) -> Result<Vec<(String, String)>> {
    plan_with(sysctl, ns, &is_host_namespace)
}

fn plan_with(
    sysctl: &BTreeMap<String, String>,
    ns: &NsPlan,
    is_host: &dyn Fn(NsKind, &str) -> bool,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(sysctl.len());
    for (k, v) in sysctl {
        let field = format!("linux.sysctl.{k}");
        if k.is_empty() || k.contains('/') || k.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(SetupError::config(field, "is not a valid sysctl name"));
        }
        match namespace_of(k) {
            None => {
                return Err(SetupError::config(
                    field,
                    "is not namespaced: writing it would change the host's kernel",
                ))
            }
            Some(kind) if !owns(ns, kind, is_host) => {
                return Err(SetupError::config(
                    field,
                    format!(
                        "belongs to the {} namespace, and the container has none of its own",
                        kind.oci_name()
                    ),
                ))
            }
            Some(_) => {}
        }
        if v.contains('\n') || v.contains('\0') {
            return Err(SetupError::config(field, "must be a single line"));
        }
        out.push((format!("/proc/sys/{}", k.replace('.', "/")), v.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn plan_of(new: &[NsKind], join: &[(NsKind, &str)]) -> NsPlan {
        NsPlan { new: new.to_vec(), join: join.iter().map(|(k, p)| (*k, p.to_string())).collect() }
    }

    const NEVER_HOST: &dyn Fn(NsKind, &str) -> bool = &|_, _| false;

    #[test]
    fn keys_belong_to_the_namespace_that_holds_them() {
        assert_eq!(namespace_of("kernel.shmmax"), Some(NsKind::Ipc));
        assert_eq!(namespace_of("kernel.shm_rmid_forced"), Some(NsKind::Ipc));
        assert_eq!(namespace_of("kernel.sem"), Some(NsKind::Ipc));
        assert_eq!(namespace_of("fs.mqueue.msg_max"), Some(NsKind::Ipc));
        assert_eq!(namespace_of("net.ipv4.ip_forward"), Some(NsKind::Net));
        assert_eq!(namespace_of("kernel.hostname"), Some(NsKind::Uts));
        assert_eq!(namespace_of("kernel.domainname"), Some(NsKind::Uts));
        for host in ["kernel.printk_ratelimit_burst", "vm.swappiness", "fs.file-max", "kernel.msg"]
        {
            assert_eq!(namespace_of(host), None, "{host}");
        }
    }

    #[test]
    fn what_is_not_namespaced_is_refused_naming_the_key() {
        let all = plan_of(&NsKind::ALL, &[]);
        let e = plan_with(&keys(&[("kernel.printk_ratelimit_burst", "11")]), &all, NEVER_HOST)
            .unwrap_err();
        assert_eq!(
            e.message,
            "linux.sysctl.kernel.printk_ratelimit_burst: is not namespaced: writing it would change the host's kernel"
        );
    }

    #[test]
    fn namespaced_keys_need_the_namespace_of_their_own() {
        let none = plan_of(&[NsKind::User, NsKind::Mount], &[]);
        let e = plan_with(&keys(&[("net.ipv4.ip_forward", "1")]), &none, NEVER_HOST).unwrap_err();
        assert_eq!(
            e.message,
            "linux.sysctl.net.ipv4.ip_forward: belongs to the network namespace, and the container has none of its own"
        );
        let e = plan_with(&keys(&[("kernel.shmmax", "1")]), &none, NEVER_HOST).unwrap_err();
        assert!(e.message.starts_with("linux.sysctl.kernel.shmmax: belongs to the ipc"));
        let e = plan_with(&keys(&[("kernel.hostname", "x")]), &none, NEVER_HOST).unwrap_err();
        assert!(e.message.starts_with("linux.sysctl.kernel.hostname: belongs to the uts"));

        let own = plan_of(&[NsKind::Net, NsKind::Ipc, NsKind::Uts], &[]);
        let ok = plan_with(
            &keys(&[
                ("net.ipv4.ip_forward", "1"),
                ("kernel.shmmax", "4096"),
                ("fs.mqueue.msg_max", "9"),
            ]),
            &own,
            NEVER_HOST,
        )
        .unwrap();
        assert_eq!(
            ok,
            vec![
                ("/proc/sys/fs/mqueue/msg_max".to_string(), "9".to_string()),
                ("/proc/sys/kernel/shmmax".to_string(), "4096".to_string()),
                ("/proc/sys/net/ipv4/ip_forward".to_string(), "1".to_string()),
            ]
        );
    }

    #[test]
    fn a_joined_namespace_counts_unless_it_is_the_hosts() {
        let joined = plan_of(&[], &[(NsKind::Net, "/run/netns/x")]);
        assert!(plan_with(&keys(&[("net.core.somaxconn", "9")]), &joined, NEVER_HOST).is_ok());
        let host: &dyn Fn(NsKind, &str) -> bool = &|_, p| p == "/proc/1/ns/net";
        let joined_host = plan_of(&[], &[(NsKind::Net, "/proc/1/ns/net")]);
        assert!(plan_with(&keys(&[("net.core.somaxconn", "9")]), &joined_host, host).is_err());
        // The real check: our own namespace is the host's.
        assert!(is_host_namespace(NsKind::Net, "/proc/self/ns/net"));
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let all = plan_of(&NsKind::ALL, &[]);
        for bad in ["", "net..x", "net/ipv4", "net.ipv4.."] {
            let e = plan_with(&keys(&[(bad, "1")]), &all, NEVER_HOST).unwrap_err();
            assert!(e.message.ends_with("is not a valid sysctl name"), "{bad}: {}", e.message);
        }
        let e = plan_with(&keys(&[("net.core.somaxconn", "1\n2")]), &all, NEVER_HOST).unwrap_err();
        assert_eq!(e.message, "linux.sysctl.net.core.somaxconn: must be a single line");
    }
}
