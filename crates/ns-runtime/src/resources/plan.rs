//! `linux.resources` as a whole, and the plan of the cgroup writes that apply it: each
//! controller's plan in turn (memory, cpu, pids, blockIO, hugepageLimits, network, rdma,
//! unified, devices). The pids limit, one line, and the device rules, planned in `devices`,
//! are written here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::blkio::{plan_block_io, BlockIo};
use super::cpu::{plan_cpu, Cpu};
use super::hugetlb::{plan_hugepages, HugepageLimit};
use super::memory::{plan_memory, Memory};
use super::network::{plan_network, plan_rdma, Network, Rdma};
use super::unified::plan_unified;
use super::write::{w, Layout, Write};
use crate::error::Result;

/// `linux.resources`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(default)]
    pub pids: Option<Pids>,
    #[serde(default, rename = "blockIO")]
    pub block_io: Option<BlockIo>,
    #[serde(default, rename = "hugepageLimits")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(default)]
    pub network: Option<Network>,
    /// Per device (`mlx5_1`): the limits of the rdma controller.
    #[serde(default)]
    pub rdma: BTreeMap<String, Rdma>,
    /// cgroup v2 files and their values, written as they are.
    #[serde(default)]
    pub unified: BTreeMap<String, String>,
    /// The device controller's rules, in order (runc's defaults are appended to them).
    #[serde(default)]
    pub devices: Vec<crate::devices::SpecRule>,
    /// The paths `linux.devices` makes nodes at: their default rules give way (not a field of
    /// the spec; the plan fills it in).
    #[serde(skip)]
    pub device_nodes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory.as_ref().is_none_or(|m| {
            m.limit.is_none()
                && m.reservation.is_none()
                && m.swap.is_none()
                && m.kernel.is_none()
                && m.kernel_tcp.is_none()
                && m.swappiness().ok().flatten().is_none()
                && m.swappiness.as_ref().is_none_or(|_| m.swappiness().is_ok())
                && m.disable_oom_killer != Some(true)
                && m.use_hierarchy.is_none()
        }) && self.cpu.as_ref().is_none_or(|c| {
            c.shares.is_none()
                && c.quota.is_none()
                && c.burst.is_none()
                && c.period.is_none()
                && c.realtime_runtime.is_none()
                && c.realtime_period.is_none()
                && c.cpus.as_deref().is_none_or(str::is_empty)
                && c.mems.as_deref().is_none_or(str::is_empty)
                && c.idle.is_none()
        }) && self.pids.is_none()
            && self.block_io.as_ref().is_none_or(|b| {
                b.weight.is_none()
                    && b.leaf_weight.is_none()
                    && b.weight_device.is_empty()
                    && b.throttle_read_bps_device.is_empty()
                    && b.throttle_write_bps_device.is_empty()
                    && b.throttle_read_iops_device.is_empty()
                    && b.throttle_write_iops_device.is_empty()
            })
            && self.hugepage_limits.is_empty()
            && self.network.as_ref().is_none_or(|n| n.class_id.is_none() && n.priorities.is_empty())
            && self.rdma.is_empty()
            && self.unified.is_empty()
            && self.devices.is_empty()
    }

    /// What the device rules come to, with runc's defaults (None without rules: the device
    /// controller is left as it is).
    pub fn device_state(&self) -> Result<Option<crate::devices::DeviceState>> {
        if self.devices.is_empty() {
            return Ok(None);
        }
        let rules = crate::devices::effective_rules(&self.devices, &self.device_nodes)?;
        crate::devices::DeviceState::from_rules(&rules).map(Some)
    }
}

/// The writes that apply `r` under `layout`: pure, so that both layouts are unit-tested here.
pub fn plan_writes(layout: Layout, r: &Resources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let v1 = layout == Layout::V1;
    if let Some(m) = &r.memory {
        plan_memory(layout, m, &mut out)?;
    }
    if let Some(c) = &r.cpu {
        plan_cpu(layout, c, &mut out)?;
    }
    if let Some(p) = &r.pids {
        let v = if p.limit <= 0 { "max".into() } else { p.limit.to_string() };
        out.push(w("pids", "pids.max", v, "linux.resources.pids.limit"));
    }
    if let Some(b) = &r.block_io {
        plan_block_io(layout, b, &mut out)?;
    }
    plan_hugepages(layout, &r.hugepage_limits, &mut out)?;
    if let Some(n) = &r.network {
        plan_network(layout, n, &mut out)?;
    }
    plan_rdma(&r.rdma, &mut out)?;
    plan_unified(layout, &r.unified, &mut out)?;
    // The device rules: v1 writes them; v2 has no file for them (a BPF program, `cgroup`).
    let devices = r.device_state()?;
    if let (true, Some(state)) = (v1, devices) {
        for (file, line) in state.v1_writes() {
            out.push(w("devices", file, line, "linux.resources.devices"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res() -> Resources {
        serde_json::from_value(json!({
            "memory": { "limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20 },
            "cpu": { "shares": 1024, "quota": 50_000, "period": 100_000, "cpus": "0" },
            "pids": { "limit": 100 },
            "blockIO": { "weight": 500 },
        }))
        .unwrap()
    }

    fn got(ws: &[Write]) -> Vec<(&str, &str, &str)> {
        ws.iter().map(|w| (w.controller, w.file.as_str(), w.value.as_str())).collect()
    }

    #[test]
    fn v1_writes_per_controller() {
        assert_eq!(
            got(&plan_writes(Layout::V1, &res()).unwrap()),
            vec![
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
                ("cpu", "cpu.shares", "1024"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("cpuset", "cpuset.cpus", "0"),
                ("pids", "pids.max", "100"),
                ("blkio", "blkio.weight", "500"),
            ]
        );
    }

    #[test]
    fn v2_converts_swap_weight_and_quota() {
        let ws = plan_writes(Layout::V2, &res()).unwrap();
        let get = |f: &str| ws.iter().find(|w| w.file == f).map(|w| w.value.clone());
        assert_eq!(get("memory.max").as_deref(), Some("67108864"));
        assert_eq!(get("memory.low").as_deref(), Some("33554432"));
        assert_eq!(get("memory.swap.max").as_deref(), Some("67108864")); // 128M total - 64M memory
        assert_eq!(get("cpu.weight").as_deref(), Some("39"));
        assert_eq!(get("cpu.max").as_deref(), Some("50000 100000"));
        assert_eq!(get("pids.max").as_deref(), Some("100"));
        assert_eq!(get("io.weight").as_deref(), Some("default 4950"));
        let out_of_range: Resources =
            serde_json::from_value(json!({ "blockIO": { "weight": 5 } })).unwrap();
        assert_eq!(
            plan_writes(Layout::V2, &out_of_range).unwrap_err().message,
            "linux.resources.blockIO.weight: must be from 10 to 1000"
        );
    }

    #[test]
    fn swap_below_memory_is_refused_and_empty_resources_write_nothing() {
        let r: Resources =
            serde_json::from_value(json!({ "memory": { "limit": 100, "swap": 50 } })).unwrap();
        assert_eq!(
            plan_writes(Layout::V1, &r).unwrap_err().path.as_deref(),
            Some("linux.resources.memory.swap")
        );
        assert!(Resources::default().is_empty());
        assert!(plan_writes(Layout::V2, &Resources::default()).unwrap().is_empty());
        // What engines write for "not set" is nothing to write.
        let unset: Resources = serde_json::from_value(json!({
            "memory": { "swappiness": -1, "disableOOMKiller": false },
            "cpu": { "cpus": "", "mems": "" },
        }))
        .unwrap();
        assert!(unset.is_empty());
        let unsigned: Resources =
            serde_json::from_value(json!({ "memory": { "swappiness": u64::MAX } })).unwrap();
        assert!(unsigned.is_empty());
        assert!(plan_writes(Layout::V2, &unset).unwrap().is_empty());
    }

    #[test]
    fn the_rest_of_memory_and_cpu_on_v1_and_where_v2_has_nothing_the_field_is_named() {
        let r: Resources = serde_json::from_value(json!({
            "memory": { "kernel": 1 << 26, "kernelTCP": 1 << 24, "swappiness": 10, "disableOOMKiller": true, "useHierarchy": true },
            "cpu": { "burst": 1000, "realtimePeriod": 1_000_000, "realtimeRuntime": 10_000, "idle": 1 },
        }))
        .unwrap();
        assert_eq!(
            got(&plan_writes(Layout::V1, &r).unwrap()),
            vec![
                ("memory", "memory.kmem.limit_in_bytes", "67108864"),
                ("memory", "memory.kmem.tcp.limit_in_bytes", "16777216"),
                ("memory", "memory.swappiness", "10"),
                ("memory", "memory.oom_control", "1"),
                ("memory", "memory.use_hierarchy", "1"),
                ("cpu", "cpu.cfs_burst_us", "1000"),
                ("cpu", "cpu.rt_period_us", "1000000"),
                ("cpu", "cpu.rt_runtime_us", "10000"),
                ("cpu", "cpu.idle", "1"),
            ]
        );
        for (field, value) in [
            ("kernel", json!({ "memory": { "kernel": 1 } })),
            ("kernelTCP", json!({ "memory": { "kernelTCP": 1 } })),
            ("swappiness", json!({ "memory": { "swappiness": 60 } })),
            ("disableOOMKiller", json!({ "memory": { "disableOOMKiller": true } })),
        ] {
            let r: Resources = serde_json::from_value(value).unwrap();
            let e = plan_writes(Layout::V2, &r).unwrap_err();
            assert_eq!(e.path.as_deref(), Some(format!("linux.resources.memory.{field}").as_str()));
            assert!(e.message.contains("cgroup v2 has no"), "{}", e.message);
        }
        let rt: Resources =
            serde_json::from_value(json!({ "cpu": { "realtimeRuntime": 1 } })).unwrap();
        assert_eq!(
            plan_writes(Layout::V2, &rt).unwrap_err().path.as_deref(),
            Some("linux.resources.cpu.realtimeRuntime")
        );
        let bad: Resources =
            serde_json::from_value(json!({ "memory": { "swappiness": 101 } })).unwrap();
        assert_eq!(
            plan_writes(Layout::V1, &bad).unwrap_err().path.as_deref(),
            Some("linux.resources.memory.swappiness")
        );
    }

    #[test]
    fn hugepages_network_rdma_unified_and_throttles() {
        let r: Resources = serde_json::from_value(json!({
            "hugepageLimits": [{ "pageSize": "2MB", "limit": 1 << 21 }],
            "network": { "classID": 1048577, "priorities": [{ "name": "eth0", "priority": 5 }] },
            "rdma": { "mlx5_1": { "hcaHandles": 3 } },
            "unified": { "memory.high": "1073741824", "cgroup.max.depth": "2" },
            "blockIO": { "throttleReadBpsDevice": [{ "major": 8, "minor": 0, "rate": 1048576 }] },
        }))
        .unwrap();
        let ws = plan_writes(Layout::V1, &r).unwrap();
        assert!(ws.contains(&Write {
            controller: "hugetlb",
            file: "hugetlb.2MB.limit_in_bytes".into(),
            value: "2097152".into(),
            field: "linux.resources.hugepageLimits[0]".into(),
            hybrid: Some("hugetlb.2MB.max".into()),
        }));
        let by_file = |ws: &[Write], f: &str| {
            ws.iter().find(|w| w.file == f || w.hybrid.as_deref() == Some(f)).cloned().unwrap()
        };
        assert_eq!(by_file(&ws, "net_cls.classid").value, "1048577");
        assert_eq!(by_file(&ws, "net_prio.ifpriomap").value, "eth0 5");
        assert_eq!(by_file(&ws, "rdma.max").value, "mlx5_1 hca_handle=3 hca_object=max");
        assert_eq!(by_file(&ws, "blkio.throttle.read_bps_device").value, "8:0 1048576");
        // On v1 the unified keys go to a hybrid host's cgroup2 folder only.
        let high = by_file(&ws, "memory.high");
        assert_eq!((high.file.as_str(), high.controller), ("", "memory"));
        assert_eq!(by_file(&ws, "cgroup.max.depth").controller, "");
        // v2: the same, where v2 has them.
        let v2: Resources = serde_json::from_value(json!({
            "hugepageLimits": [{ "pageSize": "1GB", "limit": 0 }],
            "unified": { "memory.high": "max" },
            "blockIO": { "throttleWriteIOPSDevice": [{ "major": 8, "minor": 0, "rate": 0 }] },
        }))
        .unwrap();
        let ws = plan_writes(Layout::V2, &v2).unwrap();
        assert_eq!(by_file(&ws, "hugetlb.1GB.max").value, "0");
        assert_eq!(by_file(&ws, "io.max").value, "8:0 wiops=max");
        assert_eq!(by_file(&ws, "memory.high").value, "max");
        let refused = |layout, v: serde_json::Value| {
            let r: Resources = serde_json::from_value(v).unwrap();
            plan_writes(layout, &r).unwrap_err().path.unwrap()
        };
        assert_eq!(
            refused(Layout::V2, json!({ "network": { "classID": 1 } })),
            "linux.resources.network.classID"
        );
        assert_eq!(
            refused(
                Layout::V2,
                json!({ "network": { "priorities": [{ "name": "lo", "priority": 1 }] } })
            ),
            "linux.resources.network.priorities[0]"
        );
        assert_eq!(
            refused(Layout::V1, json!({ "hugepageLimits": [{ "pageSize": "2M", "limit": 1 }] })),
            "linux.resources.hugepageLimits[0].pageSize"
        );
        assert_eq!(
            refused(Layout::V2, json!({ "unified": { "../x": "1" } })),
            "linux.resources.unified.../x"
        );
        assert_eq!(
            refused(Layout::V2, json!({ "unified": { "cgroup.procs": "1" } })),
            "linux.resources.unified.cgroup.procs"
        );
        assert_eq!(
            refused(Layout::V2, json!({ "unified": { "nope.x": "1" } })),
            "linux.resources.unified.nope.x"
        );
    }
}
