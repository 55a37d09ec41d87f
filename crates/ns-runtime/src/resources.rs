//! `linux.resources` of the runtime spec, and the plan of the cgroup writes that apply it:
//! pure data, unit-tested here for both layouts, carried out by `cgroup`. Every field the spec
//! defines is read; what this host's cgroups cannot apply is refused when the write is made,
//! naming the field (never dropped). A write names the spec field it comes from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};

/// Which files limits are written to: a controller's folder each (v1; the hybrid layout's
/// cgroup2 at /sys/fs/cgroup/unified takes what has no v1 hierarchy), or the one folder (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
}

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
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    /// Relative weight of the container's block I/O, 10 to 1000.
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub leaf_weight: Option<u16>,
    #[serde(default)]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default)]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default)]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleReadIOPSDevice")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleWriteIOPSDevice")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default, rename = "classID")]
    pub class_id: Option<u32>,
    #[serde(default)]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default)]
    pub hca_handles: Option<u32>,
    #[serde(default)]
    pub hca_objects: Option<u32>,
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

/// One write of a limit: the file (relative to a controller's folder, v1, or to the one
/// folder, v2) and the value, and the spec field it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller whose folder holds `file` ("" for the files of every cgroup2 folder).
    pub controller: &'static str,
    /// The file; on v1, empty when only a cgroup2 folder has one (`hybrid`).
    pub file: String,
    pub value: String,
    pub field: String,
    /// On v1: the file of a hybrid host's cgroup2 hierarchy (/sys/fs/cgroup/unified) that
    /// takes the write when the v1 controller is missing (hugetlb), or always (`unified`).
    pub hybrid: Option<String>,
}

fn w(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    field: &str,
) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        field: field.into(),
        hybrid: None,
    }
}

/// What no cgroup of this layout has: the field refused.
fn absent(layout: Layout, field: &str, what: &str) -> SetupError {
    let v = match layout {
        Layout::V1 => "cgroup v1",
        Layout::V2 => "cgroup v2",
    };
    SetupError::config(field, format!("{v} has no {what}"))
}

/// The smallest memory limit a container may have.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The huge page sizes the kernel names its hugetlb files by (`2MB`, `1GB`, `64KB`).
fn check_page_size(i: usize, s: &str) -> Result<()> {
    let field = format!("linux.resources.hugepageLimits[{i}].pageSize");
    let digits = s.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(SetupError::config(
            field,
            format!("{s:?} is not a page size (such as 2MB or 1GB)"),
        ));
    }
    Ok(())
}

/// A `unified` key: a file of the cgroup's own folder (`memory.high`, `cgroup.max.depth`).
fn unified_controller(key: &str) -> Result<&'static str> {
    let field = format!("linux.resources.unified.{key}");
    if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
        return Err(SetupError::config(field, "is not a file of a cgroup (such as memory.high)"));
    }
    let prefix = key.split('.').next().unwrap_or_default();
    // The files ns writes itself are refused: the cgroup's membership is its own business.
    if matches!(
        key,
        "cgroup.procs"
            | "cgroup.threads"
            | "cgroup.subtree_control"
            | "cgroup.type"
            | "cgroup.kill"
            | "cgroup.freeze"
    ) {
        return Err(SetupError::config(field, "is the runtime's to write"));
    }
    Ok(match prefix {
        "cgroup" => "",
        "memory" => "memory",
        "cpu" => "cpu",
        "cpuset" => "cpuset",
        "io" => "io",
        "pids" => "pids",
        "hugetlb" => "hugetlb",
        "rdma" => "rdma",
        "misc" => "misc",
        _ => {
            return Err(SetupError::config(
                field,
                format!("names no controller cgroup v2 has ({prefix})"),
            ))
        }
    })
}

/// The writes that apply `r` under `layout`: pure, so that both layouts are unit-tested here.
pub fn plan_writes(layout: Layout, r: &Resources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let v1 = layout == Layout::V1;
    if let Some(m) = &r.memory {
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
    }
    if let Some(c) = &r.cpu {
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
                let k =
                    if c.realtime_runtime.is_some() { "realtimeRuntime" } else { "realtimePeriod" };
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
    }
    if let Some(p) = &r.pids {
        let v = if p.limit <= 0 { "max".into() } else { p.limit.to_string() };
        out.push(w("pids", "pids.max", v, "linux.resources.pids.limit"));
    }
    if let Some(b) = &r.block_io {
        plan_block_io(layout, b, &mut out)?;
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        check_page_size(i, &h.page_size)?;
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let v2 = format!("hugetlb.{}.max", h.page_size);
        if v1 {
            let mut wr =
                w("hugetlb", format!("hugetlb.{}.limit_in_bytes", h.page_size), h.limit, &field);
            wr.hybrid = Some(v2);
            out.push(wr);
        } else {
            out.push(w("hugetlb", v2, h.limit, &field));
        }
    }
    if let Some(n) = &r.network {
        let f = |k: &str| format!("linux.resources.network.{k}");
        if let Some(id) = n.class_id {
            if !v1 {
                return Err(absent(
                    layout,
                    &f("classID"),
                    "net_cls controller (mark the traffic with a firewall rule instead)",
                ));
            }
            out.push(w("net_cls", "net_cls.classid", id, &f("classID")));
        }
        for (i, p) in n.priorities.iter().enumerate() {
            let field = format!("{}[{i}]", f("priorities"));
            if !v1 {
                return Err(absent(layout, &field, "net_prio controller"));
            }
            if p.name.is_empty() || p.name.contains([' ', '/', '\n']) || p.name.len() > 15 {
                return Err(SetupError::config(
                    format!("{field}.name"),
                    format!("{:?} is not an interface name", p.name),
                ));
            }
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name, p.priority),
                &field,
            ));
        }
    }
    for (dev, l) in &r.rdma {
        let field = format!("linux.resources.rdma.{dev}");
        if dev.is_empty() || dev.contains([' ', '/', '\n']) {
            return Err(SetupError::config(field, "is not an rdma device name"));
        }
        let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
        out.push(w(
            "rdma",
            "rdma.max",
            format!("{dev} hca_handle={} hca_object={}", n(l.hca_handles), n(l.hca_objects)),
            &field,
        ));
    }
    for (key, value) in &r.unified {
        let controller = unified_controller(key)?;
        let field = format!("linux.resources.unified.{key}");
        if value.contains('\n') {
            return Err(SetupError::config(field, "must be one line"));
        }
        let mut wr = w(controller, if v1 { String::new() } else { key.clone() }, value, &field);
        if v1 {
            wr.hybrid = Some(key.clone());
        }
        out.push(wr);
    }
    // The device rules: v1 writes them; v2 has no file for them (a BPF program, `cgroup`).
    let devices = r.device_state()?;
    if let (true, Some(state)) = (v1, devices) {
        for (file, line) in state.v1_writes() {
            out.push(w("devices", file, line, "linux.resources.devices"));
        }
    }
    Ok(out)
}

fn plan_block_io(layout: Layout, b: &BlockIo, out: &mut Vec<Write>) -> Result<()> {
    let v1 = layout == Layout::V1;
    let f = |k: &str| format!("linux.resources.blockIO.{k}");
    let weight_range = |field: &str, v: u16| {
        if (10..=1000).contains(&v) {
            Ok(())
        } else {
            Err(SetupError::config(field, "must be from 10 to 1000"))
        }
    };
    // io.weight takes 1..10000 ("default N"); the spec's 10..1000 scale onto it as runc does.
    let v2_weight = |v: u16| 1 + (u32::from(v) - 10) * 9999 / 990;
    if let Some(weight) = b.weight {
        weight_range(&f("weight"), weight)?;
        out.push(if v1 {
            w("blkio", "blkio.weight", weight, &f("weight"))
        } else {
            w("io", "io.weight", format!("default {}", v2_weight(weight)), &f("weight"))
        });
    }
    if let Some(lw) = b.leaf_weight {
        weight_range(&f("leafWeight"), lw)?;
        if !v1 {
            return Err(absent(layout, &f("leafWeight"), "leaf weight"));
        }
        out.push(w("blkio", "blkio.leaf_weight", lw, &f("leafWeight")));
    }
    let dev = |field: &str, major: i64, minor: i64| -> Result<String> {
        if !(0..=0xfff).contains(&major) || !(0..=0xf_ffff).contains(&minor) {
            return Err(SetupError::config(field, format!("{major}:{minor} is not a device")));
        }
        Ok(format!("{major}:{minor}"))
    };
    for (i, d) in b.weight_device.iter().enumerate() {
        let field = format!("{}[{i}]", f("weightDevice"));
        let id = dev(&field, d.major, d.minor)?;
        if let Some(wt) = d.weight {
            weight_range(&format!("{field}.weight"), wt)?;
            out.push(if v1 {
                w("blkio", "blkio.weight_device", format!("{id} {wt}"), &field)
            } else {
                w("io", "io.weight", format!("{id} {}", v2_weight(wt)), &field)
            });
        }
        if let Some(lw) = d.leaf_weight {
            if !v1 {
                return Err(absent(layout, &format!("{field}.leafWeight"), "leaf weight"));
            }
            weight_range(&format!("{field}.leafWeight"), lw)?;
            out.push(w("blkio", "blkio.leaf_weight_device", format!("{id} {lw}"), &field));
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            &b.throttle_read_bps_device,
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            &b.throttle_write_bps_device,
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            &b.throttle_read_iops_device,
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            &b.throttle_write_iops_device,
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (name, list, file, key) in throttles {
        for (i, t) in list.iter().enumerate() {
            let field = format!("{}[{i}]", f(name));
            let id = dev(&field, t.major, t.minor)?;
            // 0 lifts the limit: v1 takes 0, v2 "max".
            out.push(if v1 {
                w("blkio", file, format!("{id} {}", t.rate), &field)
            } else {
                let rate = if t.rate == 0 { "max".to_string() } else { t.rate.to_string() };
                w("io", "io.max", format!("{id} {key}={rate}"), &field)
            });
        }
    }
    Ok(())
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
    fn a_memory_limit_too_small_to_start_a_process_is_refused() {
        let r = |limit: i64| -> Resources {
            serde_json::from_value(json!({ "memory": { "limit": limit } })).unwrap()
        };
        let e = plan_writes(Layout::V1, &r(0)).unwrap_err();
        assert_eq!(
            e.message,
            "linux.resources.memory.limit: must be at least 6291456 bytes (6 MiB): 0 cannot start a process"
        );
        assert!(plan_writes(Layout::V2, &r(MIN_MEMORY - 1)).is_err());
        assert!(plan_writes(Layout::V2, &r(MIN_MEMORY)).is_ok());
        assert!(plan_writes(Layout::V2, &r(-1)).is_ok());
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
