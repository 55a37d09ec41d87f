//! cgroups, v1 and v2. The layout is read once: a cgroup2 at /sys/fs/cgroup is v2 (modern
//! distributions, GitHub's runners); otherwise each controller has a v1 hierarchy under
//! /sys/fs/cgroup/<controller> (and a cgroup2 at /sys/fs/cgroup/unified, the "hybrid" layout,
//! holds nothing we use). A container gets `ns/<id>` in every hierarchy, its limits written
//! before its process is released, and the folders removed when it is deleted.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
use crate::sys::Errno;

const ROOT: &str = "/sys/fs/cgroup";
/// v1 controllers a container is placed in, when the host has them.
const V1_CONTROLLERS: [&str; 8] =
    ["memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "blkio", "devices"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
}

pub fn layout() -> Layout {
    if Path::new(ROOT).join("cgroup.controllers").exists() {
        Layout::V2
    } else {
        Layout::V1
    }
}

/// `linux.resources` of the runtime spec (the parts ns applies).
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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlockIo {
    /// Relative weight of the container's block I/O, 10 to 1000.
    #[serde(default)]
    pub weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub reservation: Option<i64>,
    #[serde(default)]
    pub swap: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cpu {
    #[serde(default)]
    pub shares: Option<u64>,
    #[serde(default)]
    pub quota: Option<i64>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub cpus: Option<String>,
    #[serde(default)]
    pub mems: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory
            .as_ref()
            .is_none_or(|m| m.limit.is_none() && m.reservation.is_none() && m.swap.is_none())
            && self.cpu.as_ref().is_none_or(|c| {
                c.shares.is_none()
                    && c.quota.is_none()
                    && c.period.is_none()
                    && c.cpus.is_none()
                    && c.mems.is_none()
            })
            && self.pids.is_none()
            && self.block_io.as_ref().is_none_or(|b| b.weight.is_none())
    }
}

/// One write of a limit: the file (relative to a controller's folder, v1, or to the one
/// folder, v2) and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write { controller, file, value: value.to_string() }
}

/// The smallest memory limit a container may have.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The writes that apply `r` under `layout`: pure, so that both layouts are unit-tested here.
pub fn plan_writes(layout: Layout, r: &Resources) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(m) = &r.memory {
        if let (Some(l), Some(s)) = (m.limit, m.swap) {
            if s != -1 && s < l {
                return Err(SetupError::config(
                    "linux.resources.memory.swap",
                    "must be at least the memory limit (it counts memory plus swap), or -1",
                ));
            }
        }
        // Below this no process starts (the runtime's own init is OOM-killed before the
        // command runs): docker's floor. -1 is "unlimited".
        if let Some(l) = m.limit.filter(|l| *l != -1 && *l < MIN_MEMORY) {
            return Err(SetupError::config(
                "linux.resources.memory.limit",
                format!("must be at least {MIN_MEMORY} bytes (6 MiB): {l} cannot start a process"),
            ));
        }
        match layout {
            Layout::V1 => {
                if let Some(l) = m.limit {
                    out.push(w("memory", "memory.limit_in_bytes", l));
                }
                if let Some(v) = m.reservation {
                    out.push(w("memory", "memory.soft_limit_in_bytes", v));
                }
                if let Some(s) = m.swap {
                    out.push(w("memory", "memory.memsw.limit_in_bytes", s));
                }
            }
            Layout::V2 => {
                if let Some(l) = m.limit {
                    out.push(w(
                        "memory",
                        "memory.max",
                        if l < 0 { "max".into() } else { l.to_string() },
                    ));
                }
                if let Some(v) = m.reservation {
                    out.push(w("memory", "memory.low", v));
                }
                if let Some(s) = m.swap {
                    // v2 limits swap alone; the spec's figure is memory plus swap.
                    let v = match (s, m.limit) {
                        (-1, _) => "max".to_string(),
                        (s, Some(l)) if l >= 0 => (s - l).to_string(),
                        (s, _) => s.to_string(),
                    };
                    out.push(w("memory", "memory.swap.max", v));
                }
            }
        }
    }
    if let Some(c) = &r.cpu {
        match layout {
            Layout::V1 => {
                if let Some(s) = c.shares {
                    out.push(w("cpu", "cpu.shares", s));
                }
                if let Some(p) = c.period {
                    out.push(w("cpu", "cpu.cfs_period_us", p));
                }
                if let Some(q) = c.quota {
                    out.push(w("cpu", "cpu.cfs_quota_us", q));
                }
            }
            Layout::V2 => {
                if let Some(s) = c.shares {
                    // shares 2..262144 onto weight 1..10000, as the kernel documents it.
                    let s = s.clamp(2, 262_144);
                    out.push(w("cpu", "cpu.weight", 1 + ((s - 2) * 9999) / 262_142));
                }
                if c.quota.is_some() || c.period.is_some() {
                    let q = c.quota.filter(|q| *q > 0).map_or("max".to_string(), |q| q.to_string());
                    out.push(w("cpu", "cpu.max", format!("{q} {}", c.period.unwrap_or(100_000))));
                }
            }
        }
        if let Some(cpus) = &c.cpus {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = &c.mems {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = &r.pids {
        out.push(w(
            "pids",
            "pids.max",
            if p.limit <= 0 { "max".into() } else { p.limit.to_string() },
        ));
    }
    if let Some(weight) = r.block_io.as_ref().and_then(|b| b.weight) {
        if !(10..=1000).contains(&weight) {
            return Err(SetupError::config(
                "linux.resources.blockIO.weight",
                "must be from 10 to 1000",
            ));
        }
        out.push(match layout {
            Layout::V1 => w("blkio", "blkio.weight", weight),
            // io.weight takes 1..10000 ("default N"); the spec's 10..1000 scale onto it as runc does.
            Layout::V2 => w(
                "io",
                "io.weight",
                format!("default {}", 1 + (u32::from(weight) - 10) * 9999 / 990),
            ),
        });
    }
    Ok(out)
}

fn access_w(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: c is a valid C string.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The folder a caller without root may make cgroups under, from its /proc/self/cgroup: the
/// parent of its own cgroup v2, if it may write there (and make folders in it) — never the root.
pub fn delegated_parent(
    proc_self_cgroup: &str,
    writable: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let own = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    let parent = Path::new(ROOT).join(own).parent()?.to_path_buf();
    if parent == Path::new(ROOT) || own.split('/').any(|c| c == "..") {
        return None;
    }
    (writable(&parent) && writable(&parent.join("cgroup.subtree_control"))).then_some(parent)
}

/// Where the BFQ scheduler keeps a weight the generic file may lack.
fn bfq_variant(file: &str) -> Option<&'static str> {
    match file {
        "blkio.weight" => Some("blkio.bfq.weight"),
        "io.weight" => Some("io.bfq.weight"),
        _ => None,
    }
}

/// A container's cgroup: its folder in each hierarchy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<String>,
}

fn io(step: &str, p: &Path, e: std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&p.display().to_string()),
        Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

impl Cgroup {
    /// Make `rel` (like `ns/<id>`) in every hierarchy and write the limits.
    pub fn create(rel: &str, r: &Resources) -> Result<Cgroup> {
        crate::cgroup_owners::reconcile();
        let cg = Self::create_under(Path::new(ROOT), layout(), rel, r)?;
        crate::cgroup_owners::record(&cg.dirs);
        Ok(cg)
    }

    /// `create` for a caller without root: on cgroup v2, under the folder delegated to it (the
    /// parent of its own cgroup, when it may write there, as systemd's Delegate=yes gives a
    /// user's session); elsewhere nothing can be made, and the error says so.
    pub fn create_delegated(rel: &str, r: &Resources) -> Result<Cgroup> {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let parent = match layout() {
            Layout::V2 => delegated_parent(&own, access_w),
            Layout::V1 => None,
        };
        match parent {
            Some(parent) => {
                crate::cgroup_owners::reconcile();
                let cg = Self::create_under(&parent, Layout::V2, rel, r)?;
                crate::cgroup_owners::record(&cg.dirs);
                Ok(cg)
            }
            None => Err(SetupError::sys(
                "create a cgroup for the limits",
                Some(ROOT),
                Errno(libc::EACCES),
            )),
        }
    }

    /// `create` with the hierarchies under `root` (a cgroup2 mount for v2; a folder of v1
    /// controllers' mounts for v1).
    pub fn create_under(root: &Path, lay: Layout, rel: &str, r: &Resources) -> Result<Cgroup> {
        let writes = plan_writes(lay, r)?;
        let mut dirs: Vec<(String, PathBuf)> = Vec::new();
        match lay {
            Layout::V2 => {
                let d = root.join(rel);
                // The controllers must be enabled in each ancestor for the leaf to have them.
                let mut at = root.to_path_buf();
                for part in Path::new(rel).parent().into_iter().flat_map(|p| p.components()) {
                    let _ = fs::write(
                        at.join("cgroup.subtree_control"),
                        "+memory +pids +cpu +cpuset +io",
                    );
                    at.push(part);
                    match fs::create_dir(&at) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io("create cgroup", &at, e)),
                    }
                }
                let _ =
                    fs::write(at.join("cgroup.subtree_control"), "+memory +pids +cpu +cpuset +io");
                fs::create_dir(&d).map_err(|e| io("create cgroup", &d, e))?;
                // Every controller a limit needs must be there (enabled, and delegated to us).
                let have = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
                if let Some(missing) = writes
                    .iter()
                    .map(|w| w.controller)
                    .find(|c| !have.split_whitespace().any(|h| h == *c))
                {
                    let _ = fs::remove_dir(&d);
                    return Err(SetupError::sys("apply the limits in", Some(&d.display().to_string()), Errno(libc::ENOENT)).with_hint(format!(
                        "the {missing} controller is not available there (not enabled in the parent's cgroup.subtree_control, or not delegated to this user)"
                    )));
                }
                dirs.push(("".into(), d));
            }
            Layout::V1 => {
                for c in V1_CONTROLLERS {
                    let base = root.join(c);
                    if !base.join("cgroup.procs").exists() {
                        continue;
                    }
                    let d = base.join(rel);
                    fs::create_dir_all(&d).map_err(|e| io("create cgroup", &d, e))?;
                    if c == "cpuset" {
                        // A new cpuset is empty: from the top down, each empty one takes its
                        // parent's cpus and memory nodes.
                        let mut at = base.clone();
                        for part in Path::new(rel).components() {
                            let parent = at.clone();
                            at.push(part);
                            for f in ["cpuset.cpus", "cpuset.mems"] {
                                let mine = fs::read_to_string(at.join(f)).unwrap_or_default();
                                if mine.trim().is_empty() {
                                    if let Ok(v) = fs::read_to_string(parent.join(f)) {
                                        let _ = fs::write(at.join(f), v.trim());
                                    }
                                }
                            }
                        }
                    }
                    dirs.push((c.to_string(), d));
                }
            }
        }
        let cg = Cgroup { dirs: dirs.iter().map(|(_, d)| d.display().to_string()).collect() };
        for wr in &writes {
            let dir = match lay {
                Layout::V2 => Some(&dirs[0].1),
                Layout::V1 => dirs.iter().find(|(c, _)| c == wr.controller).map(|(_, d)| d),
            };
            let Some(dir) = dir else {
                cg.remove();
                return Err(SetupError::sys("apply the limit", Some(wr.file), Errno(libc::ENOENT))
                    .with_hint(format!("this host has no {} controller", wr.controller)));
            };
            let mut file = dir.join(wr.file);
            if let Some(bfq) = bfq_variant(wr.file) {
                // The weight lives in the BFQ scheduler's file where the other has none.
                if !file.exists() {
                    file = dir.join(bfq);
                    if !file.exists() {
                        cg.remove();
                        return Err(SetupError::config(
                            "linux.resources.blockIO.weight",
                            format!("this host's I/O schedulers take no weight (neither {} nor {bfq} exists)", wr.file),
                        )
                        .with_hint("use the bfq I/O scheduler on the disks, or leave the weight out"));
                    }
                }
            }
            if let Err(e) = fs::write(&file, &wr.value) {
                cg.remove();
                return Err(io(&format!("set {} to {} in", wr.file, wr.value), &file, e));
            }
        }
        Ok(cg)
    }

    /// The one folder of a cgroup v2, where a process can be born (CLONE_INTO_CGROUP).
    pub fn v2_dir(&self) -> Option<&str> {
        match self.dirs.as_slice() {
            [d] if Path::new(d).join("cgroup.controllers").exists() => Some(d),
            _ => None,
        }
    }

    /// Put process `pid` in every folder.
    pub fn add(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            let f = Path::new(d).join("cgroup.procs");
            fs::write(&f, pid.to_string()).map_err(|e| io("move the container into", &f, e))?;
        }
        Ok(())
    }

    fn find(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| Path::new(d).join(file)).find(|p| p.exists())
    }

    /// Did the kernel's OOM killer kill something in it?
    pub fn oom_killed(&self) -> bool {
        ["memory.events", "memory.oom_control"].iter().any(|f| {
            self.find(f)
                .and_then(|p| fs::read_to_string(p).ok())
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse::<u64>().ok())
                    })
                })
                .is_some_and(|n| n > 0)
        })
    }

    /// Remove the folders (empty once its processes are gone; retried while the kernel catches up).
    pub fn remove(&self) {
        let mut all = true;
        for d in self.dirs.iter().rev() {
            let mut gone = false;
            for _ in 0..50 {
                match fs::remove_dir(d) {
                    Ok(()) => gone = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone = true,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
                if gone {
                    break;
                }
            }
            all &= gone;
        }
        // What could not be removed stays recorded: whoever comes next tries again.
        if all {
            crate::cgroup_owners::release(&self.dirs);
        }
    }

    /// One-shot figures straight from the cgroup files.
    pub fn stats(&self) -> Stats {
        let num = |f: &str| {
            self.find(f)
                .and_then(|p| fs::read_to_string(p).ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        let key = |f: &str, k: &str| {
            self.find(f).and_then(|p| fs::read_to_string(p).ok()).and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<u64>().ok()))
            })
        };
        Stats {
            memory_bytes: num("memory.current").or_else(|| num("memory.usage_in_bytes")),
            memory_peak_bytes: num("memory.peak").or_else(|| num("memory.max_usage_in_bytes")),
            memory_limit_bytes: self
                .find("memory.max")
                .and_then(|p| fs::read_to_string(p).ok())
                .and_then(|s| s.trim().parse().ok())
                .or_else(|| num("memory.limit_in_bytes")),
            cpu_usage_ns: key("cpu.stat", "usage_usec ")
                .map(|u| u * 1000)
                .or_else(|| num("cpuacct.usage")),
            pids: num("pids.current"),
            pids_limit: self
                .find("pids.max")
                .and_then(|p| fs::read_to_string(p).ok())
                .and_then(|s| s.trim().parse().ok()),
            oom_killed: self.oom_killed(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub memory_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
    pub oom_killed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The v2 code for real where there is a cgroup2 hierarchy: the whole of a v2 host, or the
    /// hybrid layout's /sys/fs/cgroup/unified (no controllers there, but folders, placement
    /// and CLONE_INTO_CGROUP work the same).
    #[test]
    fn v2_a_child_is_born_in_its_cgroup_which_is_removed_after() {
        let root = [Path::new(ROOT), &Path::new(ROOT).join("unified")]
            .into_iter()
            .find(|r| r.join("cgroup.controllers").exists())
            .map(Path::to_path_buf);
        // SAFETY: plain syscall.
        let (Some(root), true) = (root, unsafe { libc::geteuid() } == 0) else {
            eprintln!("SKIP v2_a_child_is_born_in_its_cgroup: needs root and a cgroup2 hierarchy");
            return;
        };
        let rel = format!("ns-test/born-{}", std::process::id());
        let cg = Cgroup::create_under(&root, Layout::V2, &rel, &Resources::default()).unwrap();
        let dir = cg.v2_dir().expect("a v2 cgroup has one folder").to_owned();
        let fd = crate::sys::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let (r, w) = crate::sys::pipe().unwrap();
        let pid = crate::sys::clone_fork_into(0, Some(fd.as_raw_fd())).unwrap();
        if pid == 0 {
            // The child only waits for the parent to look at it.
            drop(w);
            let mut b = [0u8; 1];
            let _ = crate::sys::read(r.as_raw_fd(), &mut b);
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) }
        }
        let seen = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let procs = fs::read_to_string(Path::new(&dir).join("cgroup.procs")).unwrap();
        drop(w);
        crate::sys::waitpid(pid, 0).unwrap();
        cg.remove();
        let _ = fs::remove_dir(root.join("ns-test"));
        assert!(seen.lines().any(|l| l == format!("0::/{rel}")), "{seen}");
        assert_eq!(procs.trim(), pid.to_string());
        assert!(!Path::new(&dir).exists());
    }

    #[test]
    fn rootless_cgroups_go_under_the_parent_of_ones_own_when_it_is_writable() {
        let own = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope\n";
        let parent =
            PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice");
        assert_eq!(delegated_parent(own, |p| p.starts_with(&parent)), Some(parent.clone()));
        assert_eq!(delegated_parent(own, |_| false), None);
        // Never the root, nor a v1-only host (no 0:: line), nor a path that climbs.
        assert_eq!(delegated_parent("0::/init.scope\n", |_| true), None);
        assert_eq!(delegated_parent("4:memory:/x\n", |_| true), None);
        assert_eq!(delegated_parent("0::/a/../b/c\n", |_| true), None);
    }

    fn res() -> Resources {
        Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                reservation: Some(32 << 20),
                swap: Some(128 << 20),
            }),
            cpu: Some(Cpu {
                shares: Some(1024),
                quota: Some(50_000),
                period: Some(100_000),
                cpus: Some("0".into()),
                mems: None,
            }),
            pids: Some(Pids { limit: 100 }),
            block_io: Some(BlockIo { weight: Some(500) }),
        }
    }

    #[test]
    fn v1_writes_per_controller() {
        let ws = plan_writes(Layout::V1, &res()).unwrap();
        let got: Vec<(&str, &str, &str)> =
            ws.iter().map(|w| (w.controller, w.file, w.value.as_str())).collect();
        assert_eq!(
            got,
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
        let out_of_range =
            Resources { block_io: Some(BlockIo { weight: Some(5) }), ..Resources::default() };
        assert_eq!(
            plan_writes(Layout::V2, &out_of_range).unwrap_err().message,
            "linux.resources.blockIO.weight: must be from 10 to 1000"
        );
        assert_eq!(bfq_variant("io.weight"), Some("io.bfq.weight"));
    }

    #[test]
    fn a_memory_limit_too_small_to_start_a_process_is_refused() {
        let r = |limit| Resources {
            memory: Some(Memory { limit: Some(limit), swap: None, reservation: None }),
            ..Default::default()
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
        let r = Resources {
            memory: Some(Memory { limit: Some(100), swap: Some(50), reservation: None }),
            ..Default::default()
        };
        assert_eq!(
            plan_writes(Layout::V1, &r).unwrap_err().path.as_deref(),
            Some("linux.resources.memory.swap")
        );
        assert!(Resources::default().is_empty());
        assert!(plan_writes(Layout::V2, &Resources::default()).unwrap().is_empty());
    }
}
