//! A container's figures as runc's `events` prints them (its `types.Stats`: cpu, memory,
//! pids, blkio, hugetlb), read from the cgroup's files of either layout, and the OOM kills
//! counted by the kernel (what `events` reports as `oom`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::cgroup::Cgroup;

/// The cgroup's files, looked up by name across its folders.
struct Files<'a>(&'a Cgroup);

impl Files<'_> {
    fn path(&self, file: &str) -> Option<PathBuf> {
        self.0.dirs.iter().map(|d| Path::new(d).join(file)).find(|p| p.exists())
    }
    fn text(&self, file: &str) -> Option<String> {
        self.path(file).and_then(|p| fs::read_to_string(p).ok())
    }
    fn num(&self, file: &str) -> Option<u64> {
        self.text(file).and_then(|s| s.trim().parse().ok())
    }
    /// `key value` lines (memory.stat, cpu.stat, memory.events).
    fn keyed(&self, file: &str) -> BTreeMap<String, u64> {
        self.text(file)
            .map(|t| {
                t.lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        Some((k.to_owned(), v.trim().parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// A limit file: a number, or `max` (no limit, 0 as runc prints it... the kernel's
    /// largest value for v1, which is a number already).
    fn limit(&self, file: &str) -> u64 {
        self.text(file).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
}

/// Drop the zeros and empties runc leaves out (`omitempty`), but the keys it always prints.
fn prune(v: Value, keep: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| {
                    let v = prune(v, keep);
                    let empty = match &v {
                        Value::Number(n) => n.as_u64() == Some(0),
                        Value::Array(a) => a.is_empty(),
                        Value::Object(o) => o.is_empty(),
                        Value::Null => true,
                        _ => false,
                    };
                    (!empty || keep.contains(&k.as_str())).then_some((k, v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| prune(v, keep)).collect()),
        v => v,
    }
}

fn v1_entry(f: &Files, prefix: &str) -> Value {
    json!({
        "usage": f.num(&format!("{prefix}.usage_in_bytes")).unwrap_or(0),
        "max": f.num(&format!("{prefix}.max_usage_in_bytes")).unwrap_or(0),
        "failcnt": f.num(&format!("{prefix}.failcnt")).unwrap_or(0),
        "limit": f.limit(&format!("{prefix}.limit_in_bytes")),
    })
}

/// runc's `types.Stats` of the cgroup, now.
pub fn runc_stats(cg: &Cgroup) -> Value {
    let f = Files(cg);
    let v2 = cg.v2_dir().is_some();
    let (cpu, memory) = if v2 {
        let s = f.keyed("cpu.stat");
        let us = |k: &str| s.get(k).copied().unwrap_or(0) * 1000;
        let cpu = json!({
            "usage": { "total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec") },
            "throttling": {
                "periods": s.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": s.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": us("throttled_usec"),
            },
        });
        let raw = f.keyed("memory.stat");
        let events = f.keyed("memory.events");
        let memory = json!({
            "cache": raw.get("file").copied().unwrap_or(0),
            "usage": {
                "usage": f.num("memory.current").unwrap_or(0),
                "max": f.num("memory.peak").unwrap_or(0),
                "failcnt": events.get("max").copied().unwrap_or(0),
                "limit": f.limit("memory.max"),
            },
            "swap": {
                "usage": f.num("memory.swap.current").unwrap_or(0),
                "max": f.num("memory.swap.peak").unwrap_or(0),
                "failcnt": 0,
                "limit": f.limit("memory.swap.max"),
            },
            "raw": raw,
        });
        (cpu, memory)
    } else {
        let percpu = |file: &str| -> Vec<u64> {
            f.text(file)
                .map(|t| t.split_whitespace().filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default()
        };
        // cpuacct.stat counts in clock ticks (USER_HZ, 100 a second).
        let ticks = f.keyed("cpuacct.stat");
        let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * 10_000_000;
        let s = f.keyed("cpu.stat");
        let cpu = json!({
            "usage": {
                "total": f.num("cpuacct.usage").unwrap_or(0),
                "percpu": percpu("cpuacct.usage_percpu"),
                "percpu_kernel": percpu("cpuacct.usage_percpu_sys"),
                "percpu_user": percpu("cpuacct.usage_percpu_user"),
                "kernel": ns("system"),
                "user": ns("user"),
            },
            "throttling": {
                "periods": s.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": s.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": s.get("throttled_time").copied().unwrap_or(0),
            },
        });
        let raw = f.keyed("memory.stat");
        let memory = json!({
            "cache": raw.get("cache").copied().unwrap_or(0),
            "usage": v1_entry(&f, "memory"),
            "swap": v1_entry(&f, "memory.memsw"),
            "kernel": v1_entry(&f, "memory.kmem"),
            "kernelTCP": v1_entry(&f, "memory.kmem.tcp"),
            "raw": raw,
        });
        (cpu, memory)
    };
    let pids = json!({
        "current": f.num("pids.current").unwrap_or(0),
        "limit": f.limit("pids.max"),
    });
    let mut hugetlb = Map::new();
    for size in hugepage_sizes() {
        let entry = if v2 {
            let ev = f.keyed(&format!("hugetlb.{size}.events"));
            json!({
                "usage": f.num(&format!("hugetlb.{size}.current")).unwrap_or(0),
                "failcnt": ev.get("max").copied().unwrap_or(0),
            })
        } else {
            json!({
                "usage": f.num(&format!("hugetlb.{size}.usage_in_bytes")).unwrap_or(0),
                "max": f.num(&format!("hugetlb.{size}.max_usage_in_bytes")).unwrap_or(0),
                "failcnt": f.num(&format!("hugetlb.{size}.failcnt")).unwrap_or(0),
            })
        };
        if f.path(&format!("hugetlb.{size}.{}", if v2 { "current" } else { "usage_in_bytes" }))
            .is_some()
        {
            hugetlb.insert(size, entry);
        }
    }
    let keep = ["limit", "failcnt", "kernel", "user"];
    json!({
        "cpu": prune(cpu, &keep),
        "memory": prune(memory, &keep),
        "pids": prune(pids, &keep),
        "blkio": prune(blkio(&f, v2), &keep),
        "hugetlb": hugetlb,
    })
}

/// The huge page sizes of this kernel, as hugetlb files name them (`2MB`, `1GB`).
fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = fs::read_dir("/sys/kernel/mm/hugepages") else { return Vec::new() };
    let mut out: Vec<String> = rd
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kb: u64 = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
            Some(match kb {
                k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            })
        })
        .collect();
    out.sort();
    out
}

fn blkio(f: &Files, v2: bool) -> Value {
    let entry = |major: u64, minor: u64, op: &str, value: u64| json!({ "major": major, "minor": minor, "op": op, "value": value });
    let dev = |s: &str| -> Option<(u64, u64)> {
        let (a, b) = s.split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    if v2 {
        let (mut bytes, mut ios) = (Vec::new(), Vec::new());
        for line in f.text("io.stat").unwrap_or_default().lines() {
            let mut parts = line.split_whitespace();
            let Some((ma, mi)) = parts.next().and_then(dev) else { continue };
            let kv: BTreeMap<&str, u64> = parts
                .filter_map(|p| p.split_once('='))
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            let g = |k: &str| kv.get(k).copied().unwrap_or(0);
            bytes.push(entry(ma, mi, "Read", g("rbytes")));
            bytes.push(entry(ma, mi, "Write", g("wbytes")));
            ios.push(entry(ma, mi, "Read", g("rios")));
            ios.push(entry(ma, mi, "Write", g("wios")));
        }
        return json!({ "ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios });
    }
    let list = |file: &str| -> Vec<Value> {
        f.text(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let p: Vec<&str> = l.split_whitespace().collect();
                let (ma, mi) = dev(p.first()?)?;
                Some(entry(ma, mi, p.get(1)?, p.get(2)?.parse().ok()?))
            })
            .collect()
    };
    json!({
        "ioServiceBytesRecursive": list("blkio.throttle.io_service_bytes_recursive"),
        "ioServicedRecursive": list("blkio.throttle.io_serviced_recursive"),
    })
}

/// How many times the kernel's OOM killer has killed in the cgroup (v1 memory.oom_control's
/// `oom_kill`, v2 memory.events'); 0 when neither is there.
pub fn oom_kills(cg: &Cgroup) -> u64 {
    let f = Files(cg);
    ["memory.events", "memory.oom_control"]
        .iter()
        .find_map(|file| f.keyed(file).get("oom_kill").copied())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_empties_go_but_the_keys_runc_always_prints_stay() {
        let v = json!({ "usage": { "usage": 0, "limit": 0, "failcnt": 0, "max": 5 }, "raw": {}, "list": [] });
        assert_eq!(
            prune(v, &["limit", "failcnt"]),
            json!({ "usage": { "limit": 0, "failcnt": 0, "max": 5 } })
        );
    }

    #[test]
    fn the_figures_of_a_cgroup_folder_are_read_into_runc_s_shape() {
        let dir = std::env::temp_dir().join(format!("ns-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let put = |f: &str, v: &str| fs::write(dir.join(f), v).unwrap();
        // A v2 folder, as its files read.
        put("cgroup.controllers", "cpu memory pids io\n");
        put("memory.current", "4096\n");
        put("memory.max", "max\n");
        put("memory.peak", "8192\n");
        put("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        put("memory.stat", "anon 100\nfile 200\n");
        put("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n");
        put("pids.current", "3\n");
        put("pids.max", "64\n");
        put("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        let cg = Cgroup { dirs: vec![dir.display().to_string()] };
        let s = runc_stats(&cg);
        assert_eq!(s["cpu"]["usage"], json!({ "total": 5000, "kernel": 2000, "user": 3000 }));
        assert_eq!(
            s["cpu"]["throttling"],
            json!({ "periods": 7, "throttled_periods": 1, "throttled_time": 4000 })
        );
        assert_eq!(
            s["memory"]["usage"],
            json!({ "usage": 4096, "max": 8192, "failcnt": 2, "limit": 0 })
        );
        assert_eq!(s["memory"]["cache"], json!(200));
        assert_eq!(s["memory"]["raw"]["anon"], json!(100));
        assert_eq!(s["pids"], json!({ "current": 3, "limit": 64 }));
        assert_eq!(
            s["blkio"]["ioServiceBytesRecursive"][1],
            json!({ "major": 8, "op": "Write", "value": 20 })
        );
        assert_eq!(oom_kills(&cg), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
