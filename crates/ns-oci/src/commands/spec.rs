//! `spec [--rootless] [--bundle DIR]`: write a default `config.json` for a bundle whose root
//! filesystem is `rootfs/` (with `--rootless`, one a user without privileges can run: a user
//! namespace mapping them to root, sysfs bound from the host).

use std::path::PathBuf;

use ns_runtime::state;
use ns_runtime::SetupError;

use super::create::BUNDLE;
use super::{Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

const ROOTLESS: Flag = Flag::switch("rootless", None, "a config for a user without privileges");

pub static VERB: Verb = Verb {
    name: "spec",
    aliases: &[],
    args: "",
    about: "write a default config.json",
    flags: &[ROOTLESS, BUNDLE],
    flags_end_at_positional: false,
    main,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecCmd {
    pub bundle: PathBuf,
    pub rootless: bool,
}

impl SpecCmd {
    pub fn from(p: &Parsed) -> Result<SpecCmd, UsageError> {
        p.none(VERB.name)?;
        Ok(SpecCmd {
            bundle: PathBuf::from(p.value(BUNDLE.long).unwrap_or(".")),
            rootless: p.switch(ROOTLESS.long),
        })
    }
}

fn main(_: &Ctx, p: Parsed) -> Result<i32, Failure> {
    write_spec(&SpecCmd::from(&p)?)?;
    Ok(0)
}

/// `spec`: a default config.json for a bundle whose root filesystem is `rootfs/`.
fn write_spec(s: &SpecCmd) -> Result<(), SetupError> {
    let dir = &s.bundle;
    let path = dir.join("config.json");
    if path.exists() {
        return Err(SetupError::config(
            "config.json",
            format!("{} already exists", path.display()),
        ));
    }
    let rootless = s.rootless;
    // SAFETY: plain syscalls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount", "cgroup"];
    if rootless {
        namespaces.push("user");
    }
    let mut linux = serde_json::json!({
        "namespaces": namespaces.iter().map(|n| serde_json::json!({ "type": n })).collect::<Vec<_>>(),
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if !rootless {
        // As runc writes it: every device denied, then the defaults the runtime appends.
        linux["resources"] =
            serde_json::json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    }
    if rootless {
        linux["uidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    }
    let mut pts = vec!["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
    if !rootless {
        pts.push("gid=5");
    }
    let spec = serde_json::json!({
        "ociVersion": ns_runtime::SPEC_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }]
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "ns",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": pts },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": if rootless { "none" } else { "sysfs" }, "source": if rootless { "/sys" } else { "sysfs" },
              "options": if rootless { vec!["rbind", "nosuid", "noexec", "nodev", "ro"] } else { vec!["nosuid", "noexec", "nodev", "ro"] } }
        ],
        "linux": linux
    });
    state::write_atomic(&path, serde_json::to_string_pretty(&spec).unwrap_or_default().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

    fn spec(args: &[&str]) -> Result<SpecCmd, UsageError> {
        SpecCmd::from(&parsed(&VERB, args)?)
    }

    #[test]
    fn spec_takes_rootless_and_a_bundle() {
        assert_eq!(spec(&[]).unwrap(), SpecCmd { bundle: ".".into(), rootless: false });
        assert_eq!(
            spec(&["--rootless", "-b", "/b"]).unwrap(),
            SpecCmd { bundle: "/b".into(), rootless: true }
        );
        assert_eq!(spec(&["/b"]).unwrap_err().0, "spec takes no arguments, not \"/b\"");
        assert_eq!(spec(&["--root", "/b"]).unwrap_err().0, "unknown flag --root");
    }
}
