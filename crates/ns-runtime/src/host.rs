//! What the host allows, and the exact fix when it forbids what we need.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsernsBlock {
    pub reason: String,
    pub fix: String,
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Why user namespaces cannot be used by a caller with effective uid `euid`, if they cannot.
pub fn userns_block(euid: u32) -> Option<UsernsBlock> {
    userns_block_from(euid, read_sysctl)
}

pub fn userns_block_from(euid: u32, read: impl Fn(&str) -> Option<String>) -> Option<UsernsBlock> {
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some(UsernsBlock {
            reason: "user namespaces are disabled on this host (user.max_user_namespaces = 0)"
                .into(),
            fix: "sudo sysctl -w user.max_user_namespaces=15000".into(),
        });
    }
    if euid == 0 {
        return None;
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(UsernsBlock {
            reason:
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                    .into(),
            fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1".into(),
        });
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some(UsernsBlock {
            reason: "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)".into(),
            fix: "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into(),
        });
    }
    None
}

/// The cgroup layout of the host.
pub fn cgroup_layout() -> &'static str {
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        "v2"
    } else if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        "hybrid"
    } else {
        "v1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host<'a>(vals: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |p| vals.iter().find(|(k, _)| p.ends_with(k)).map(|(_, v)| v.to_string())
    }

    #[test]
    fn each_known_block_gives_its_fix() {
        let b = userns_block_from(1000, host(&[("apparmor_restrict_unprivileged_userns", "1")]))
            .unwrap();
        assert_eq!(b.fix, "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0");
        let b = userns_block_from(0, host(&[("max_user_namespaces", "0")])).unwrap();
        assert_eq!(b.fix, "sudo sysctl -w user.max_user_namespaces=15000");
        let b = userns_block_from(1000, host(&[("unprivileged_userns_clone", "0")])).unwrap();
        assert!(b.reason.contains("unprivileged_userns_clone"));
    }

    #[test]
    fn root_is_not_bound_by_the_unprivileged_switches() {
        assert_eq!(
            userns_block_from(0, host(&[("apparmor_restrict_unprivileged_userns", "1")])),
            None
        );
        assert_eq!(userns_block_from(1000, host(&[("max_user_namespaces", "15000")])), None);
    }
}
