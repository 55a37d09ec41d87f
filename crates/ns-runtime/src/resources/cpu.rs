//! `linux.resources.cpu`: the cpu controller's shares, quota and realtime budget, and the
//! cpuset's cpus and memory nodes.

use serde::{Deserialize, Serialize};

use super::write::{absent, w, Layout, Write};
use crate::error::{Result, SetupError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default)]
    pub shares: Option<u64>,
    #[serde(default)]
    pub quota: Option<i64>,
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub realtime_runtime: Option<i64>,
    #[serde(default)]
    pub realtime_period: Option<u64>,
    #[serde(default)]
    pub cpus: Option<String>,
    #[serde(default)]
    pub mems: Option<String>,
    #[serde(default)]
    pub idle: Option<i64>,
}

/// The writes of `c` (v2 converts shares to a weight and quota with period to `cpu.max`).
pub(super) fn plan_cpu(layout: Layout, c: &Cpu, out: &mut Vec<Write>) -> Result<()> {
    let v1 = layout == Layout::V1;
    let f = |k: &str| format!("linux.resources.cpu.{k}");
    if v1 {
        if let Some(s) = c.shares {
            out.push(w("cpu", "cpu.shares", s, &f("shares")));
        }
        if let Some(p) = c.period {
            out.push(w("cpu", "cpu.cfs_period_us", p, &f("period")));
        }
        if let Some(q) = c.quota {
            out.push(w("cpu", "cpu.cfs_quota_us", q, &f("quota")));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu", "cpu.cfs_burst_us", b, &f("burst")));
        }
        // The period first: a runtime is checked against it.
        if let Some(p) = c.realtime_period {
            out.push(w("cpu", "cpu.rt_period_us", p, &f("realtimePeriod")));
        }
        if let Some(rt) = c.realtime_runtime {
            out.push(w("cpu", "cpu.rt_runtime_us", rt, &f("realtimeRuntime")));
        }
    } else {
        if let Some(s) = c.shares {
            // shares 2..262144 onto weight 1..10000, as the kernel documents it.
            let s = s.clamp(2, 262_144);
            out.push(w("cpu", "cpu.weight", 1 + ((s - 2) * 9999) / 262_142, &f("shares")));
        }
        if c.quota.is_some() || c.period.is_some() {
            let q = c.quota.filter(|q| *q > 0).map_or("max".to_string(), |q| q.to_string());
            out.push(w(
                "cpu",
                "cpu.max",
                format!("{q} {}", c.period.unwrap_or(100_000)),
                &f("quota"),
            ));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu", "cpu.max.burst", b, &f("burst")));
        }
        if c.realtime_runtime.is_some() || c.realtime_period.is_some() {
            let k = if c.realtime_runtime.is_some() { "realtimeRuntime" } else { "realtimePeriod" };
            return Err(absent(layout, &f(k), "realtime budget per cgroup"));
        }
    }
    if let Some(i) = c.idle {
        if !(0..=1).contains(&i) {
            return Err(SetupError::config(f("idle"), "must be 0 or 1"));
        }
        out.push(w("cpu", "cpu.idle", i, &f("idle")));
    }
    if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
        out.push(w("cpuset", "cpuset.cpus", cpus, &f("cpus")));
    }
    if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
        out.push(w("cpuset", "cpuset.mems", mems, &f("mems")));
    }
    Ok(())
}
