//! `features`: what this runtime implements, as the runtime spec's features document describes
//! it.

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

pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": super::create::OCI_VERSION_MIN,
        "ociVersionMax": ns_runtime::SPEC_VERSION,
        "hooks": [],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "noatime", "nodev",
                         "nodiratime", "noexec", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
                         "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
                         "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                             "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
                             "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
                             "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
                             "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
                             "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
                             "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"],
            "cgroup": { "v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "io.ns.version": ns_runtime::VERSION
        }
    })
}
