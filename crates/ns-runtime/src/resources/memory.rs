//! `linux.resources.memory`: the memory controller's limits, and their writes on v1 and v2.

use serde::{Deserialize, Serialize};

use super::write::{absent, w, Layout, Write};
use crate::error::{Result, SetupError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub reservation: Option<i64>,
    #[serde(default)]
    pub swap: Option<i64>,
    #[serde(default)]
    pub kernel: Option<i64>,
    #[serde(default, rename = "kernelTCP")]
    pub kernel_tcp: Option<i64>,
    /// 0 to 100; the spec's type is unsigned, and engines write -1 (or its unsigned form) for
    /// "as the host's".
    #[serde(default)]
    pub swappiness: Option<serde_json::Number>,
    #[serde(default, rename = "disableOOMKiller")]
    pub disable_oom_killer: Option<bool>,
    #[serde(default)]
    pub use_hierarchy: Option<bool>,
    #[serde(default)]
    pub check_before_update: Option<bool>,
}

impl Memory {
    /// The swappiness asked for, None for "as the host's" (absent, -1, or -1 written unsigned).
    pub fn swappiness(&self) -> Result<Option<u64>> {
        let Some(n) = &self.swappiness else { return Ok(None) };
        if n.as_i64() == Some(-1) || n.as_u64() == Some(u64::MAX) {
            return Ok(None);
        }
        match n.as_u64() {
            Some(v) if v <= 100 => Ok(Some(v)),
            _ => Err(SetupError::config(
                "linux.resources.memory.swappiness",
                "must be from 0 to 100",
            )),
        }
    }
}

/// The smallest memory limit a container may have.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The writes of `m`, checked first against each other and the floor.
pub(super) fn plan_memory(layout: Layout, m: &Memory, out: &mut Vec<Write>) -> Result<()> {
    let v1 = layout == Layout::V1;
    let f = |k: &str| format!("linux.resources.memory.{k}");
    if let (Some(l), Some(s)) = (m.limit, m.swap) {
        if s != -1 && s < l {
            return Err(SetupError::config(
                f("swap"),
                "must be at least the memory limit (it counts memory plus swap), or -1",
            ));
        }
    }
    // Below this no process starts (the runtime's own init is OOM-killed before the
    // command runs): docker's floor. -1 is "unlimited".
    if let Some(l) = m.limit.filter(|l| *l != -1 && *l < MIN_MEMORY) {
        return Err(SetupError::config(
            f("limit"),
            format!("must be at least {MIN_MEMORY} bytes (6 MiB): {l} cannot start a process"),
        ));
    }
    let swappiness = m.swappiness()?;
    if v1 {
        if let Some(l) = m.limit {
            out.push(w("memory", "memory.limit_in_bytes", l, &f("limit")));
        }
        if let Some(v) = m.reservation {
            out.push(w("memory", "memory.soft_limit_in_bytes", v, &f("reservation")));
        }
        if let Some(s) = m.swap {
            out.push(w("memory", "memory.memsw.limit_in_bytes", s, &f("swap")));
        }
        if let Some(k) = m.kernel {
            out.push(w("memory", "memory.kmem.limit_in_bytes", k, &f("kernel")));
        }
        if let Some(k) = m.kernel_tcp {
            out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", k, &f("kernelTCP")));
        }
        if let Some(s) = swappiness {
            out.push(w("memory", "memory.swappiness", s, &f("swappiness")));
        }
        if m.disable_oom_killer == Some(true) {
            out.push(w("memory", "memory.oom_control", 1, &f("disableOOMKiller")));
        }
        if let Some(h) = m.use_hierarchy {
            out.push(w("memory", "memory.use_hierarchy", u8::from(h), &f("useHierarchy")));
        }
    } else {
        if let Some(l) = m.limit {
            let v = if l < 0 { "max".into() } else { l.to_string() };
            out.push(w("memory", "memory.max", v, &f("limit")));
        }
        if let Some(v) = m.reservation {
            out.push(w("memory", "memory.low", v, &f("reservation")));
        }
        if let Some(s) = m.swap {
            // v2 limits swap alone; the spec's figure is memory plus swap.
            let v = match (s, m.limit) {
                (-1, _) => "max".to_string(),
                (s, Some(l)) if l >= 0 => (s - l).to_string(),
                (s, _) => s.to_string(),
            };
            out.push(w("memory", "memory.swap.max", v, &f("swap")));
        }
        if m.kernel.is_some() {
            return Err(absent(
                layout,
                &f("kernel"),
                "kernel memory limit (it is counted in memory.max)",
            ));
        }
        if m.kernel_tcp.is_some() {
            return Err(absent(
                layout,
                &f("kernelTCP"),
                "kernel TCP memory limit (it is counted in memory.max)",
            ));
        }
        if swappiness.is_some() {
            return Err(absent(layout, &f("swappiness"), "swappiness per cgroup"));
        }
        if m.disable_oom_killer == Some(true) {
            return Err(absent(layout, &f("disableOOMKiller"), "switch for the OOM killer"));
        }
        if m.use_hierarchy == Some(false) {
            return Err(absent(
                layout,
                &f("useHierarchy"),
                "flat hierarchy (every cgroup counts its children)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_memory_limit_too_small_to_start_a_process_is_refused() {
        let plan = |layout, limit: i64| {
            let m: Memory = serde_json::from_value(json!({ "limit": limit })).unwrap();
            plan_memory(layout, &m, &mut Vec::new())
        };
        let e = plan(Layout::V1, 0).unwrap_err();
        assert_eq!(
            e.message,
            "linux.resources.memory.limit: must be at least 6291456 bytes (6 MiB): 0 cannot start a process"
        );
        assert!(plan(Layout::V2, MIN_MEMORY - 1).is_err());
        assert!(plan(Layout::V2, MIN_MEMORY).is_ok());
        assert!(plan(Layout::V2, -1).is_ok());
    }
}
