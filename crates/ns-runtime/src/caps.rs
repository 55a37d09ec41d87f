//! Capabilities: the five sets of the runtime spec (bounding, effective, permitted,
//! inheritable, ambient), applied around the switch to the container's user:
//!
//! 1. drop from the bounding set what it does not list (needs CAP_SETPCAP, which we still have);
//! 2. keep the permitted set across setuid (PR_SET_KEEPCAPS), switch user;
//! 3. capset the effective, permitted and inheritable sets; raise the ambient ones.

use crate::error::{Result, SetupError};
use crate::sys::Errno;

/// Every capability this runtime knows, by the runtime spec's names; the position of a name is
/// the capability's number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability named as the runtime spec names them (`CAP_SYS_ADMIN`).
pub fn cap_number(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

pub fn cap_name(n: u32) -> &'static str {
    NAMES.get(n as usize).copied().unwrap_or("CAP_UNKNOWN")
}

/// The highest capability this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The five sets as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(field: &str, names: &[String]) -> Result<u64> {
    let mut m = 0u64;
    for (i, n) in names.iter().enumerate() {
        let c = cap_number(n).ok_or_else(|| {
            SetupError::config(format!("{field}[{i}]"), format!("unknown capability {n:?}"))
        })?;
        m |= 1 << c;
    }
    Ok(m)
}

impl CapSets {
    pub fn from_spec(c: &crate::spec::Capabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: mask("process.capabilities.bounding", &c.bounding)?,
            effective: mask("process.capabilities.effective", &c.effective)?,
            permitted: mask("process.capabilities.permitted", &c.permitted)?,
            inheritable: mask("process.capabilities.inheritable", &c.inheritable)?,
            ambient: mask("process.capabilities.ambient", &c.ambient)?,
        })
    }
}

/// Step 1, before the user switch.
pub fn drop_bounding(sets: &CapSets) -> Result<()> {
    for c in 0..=last_cap() {
        if sets.bounding & (1 << c) == 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) } != 0 {
                let e = Errno::last();
                if e.0 != libc::EINVAL {
                    return Err(SetupError::sys(
                        "drop from the bounding set",
                        Some(cap_name(c)),
                        e,
                    ));
                }
            }
        }
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Step 3, after the user switch.
pub fn apply(sets: &CapSets) -> Result<()> {
    const VERSION_3: u32 = 0x2008_0522;
    let hdr = CapHeader { version: VERSION_3, pid: 0 };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    // An ambient capability must be permitted and inheritable: specs often list it only as
    // ambient (runc's own `spec` does), so it is made inheritable here; one that is not
    // permitted cannot be ambient and is left out, as other runtimes do.
    let ambient = sets.ambient & sets.permitted;
    let inheritable = sets.inheritable | ambient;
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        CapData { effective: e0, permitted: p0, inheritable: i0 },
        CapData { effective: e1, permitted: p1, inheritable: i1 },
    ];
    // SAFETY: a version-3 header and two data words, as capset(2) takes them.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) } != 0 {
        return Err(SetupError::sys("set capabilities", None, Errno::last()).with_hint(
            "effective and inheritable capabilities must be in the permitted (and bounding) set",
        ));
    }
    for c in 0..=last_cap() {
        if ambient & (1 << c) != 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    c as libc::c_ulong,
                    0,
                    0,
                )
            } != 0
            {
                return Err(SetupError::sys(
                    "raise the ambient capability",
                    Some(cap_name(c)),
                    Errno::last(),
                )
                .with_hint("an ambient capability must also be permitted and inheritable"));
            }
        }
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// Make every permitted capability effective again (a change of the filesystem uid away from
/// 0 clears the effective ones of the filesystem; the helper needs them while it works as the
/// container's root, see `image_root`).
pub fn raise_permitted() -> Result<()> {
    const VERSION_3: u32 = 0x2008_0522;
    let hdr = CapHeader { version: VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: a version-3 header and two data words, as capget(2) and capset(2) take them.
    unsafe {
        if libc::syscall(libc::SYS_capget, &hdr as *const CapHeader, data.as_mut_ptr()) != 0 {
            return Err(SetupError::sys("read capabilities", None, Errno::last()));
        }
        for d in &mut data {
            d.effective = d.permitted;
        }
        if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
            return Err(SetupError::sys("set capabilities", None, Errno::last()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Capabilities;

    #[test]
    fn docker_default_set_is_the_well_known_mask() {
        let names: Vec<String> = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Capabilities { bounding: names.clone(), effective: names, ..Default::default() };
        let s = CapSets::from_spec(&c).unwrap();
        assert_eq!(s.bounding, 0xa80425fb);
        assert_eq!(s.effective, 0xa80425fb);
    }

    #[test]
    fn unknown_names_name_the_field() {
        let c = Capabilities {
            permitted: vec!["CAP_CHOWN".into(), "CAP_NOPE".into()],
            ..Default::default()
        };
        assert_eq!(
            CapSets::from_spec(&c).unwrap_err().message,
            "process.capabilities.permitted[1]: unknown capability \"CAP_NOPE\""
        );
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_name(40), "CAP_CHECKPOINT_RESTORE");
    }
}
