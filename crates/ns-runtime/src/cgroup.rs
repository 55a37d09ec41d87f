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

pub use crate::resources::{
    plan_writes, BlockIo, Cpu, Layout, Memory, Pids, Resources, Write, MIN_MEMORY,
};

pub fn layout() -> Layout {
    if Path::new(ROOT).join("cgroup.controllers").exists() {
        Layout::V2
    } else {
        Layout::V1
    }
}

/// Give the cgroup v2 folder `dir` the device program of `state`, in place of those it had:
/// the new one is attached first (with several attached, each must allow), then the old ones
/// are detached, so there is no moment without rules.
pub fn set_device_program(dir: &Path, state: &crate::devices::DeviceState) -> Result<()> {
    let field = "linux.resources.devices";
    let path = dir.display().to_string();
    let fd = crate::sys::open(&path, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| SetupError::sys("open the cgroup", Some(&path), e))?;
    let old = crate::bpf::attached_device_programs(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| SetupError::sys("list the device programs of", Some(&path), e))?;
    let prog = crate::bpf::load_device_program(&state.program()).map_err(|(e, log)| {
        let err =
            SetupError::sys(format!("load the device rules ({field}) as a BPF program"), None, e);
        match e.0 {
            libc::EPERM => err.with_hint(
                "loading a cgroup device program needs root (CAP_SYS_ADMIN, or CAP_BPF)",
            ),
            _ if !log.is_empty() => err.with_hint(format!("the verifier said: {log}")),
            _ => err,
        }
    })?;
    crate::bpf::attach_device_program(std::os::fd::AsRawFd::as_raw_fd(&fd), &prog).map_err(
        |e| SetupError::sys(format!("attach the device rules ({field}) to"), Some(&path), e),
    )?;
    for id in old {
        crate::bpf::detach_device_program(std::os::fd::AsRawFd::as_raw_fd(&fd), id)
            .map_err(|e| SetupError::sys("detach the former device rules of", Some(&path), e))?;
    }
    Ok(())
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

/// Make the cgroup2 folder `rel` under `root`, `enable` written to each ancestor's
/// cgroup.subtree_control on the way (so that the leaf has those controllers).
fn make_v2(root: &Path, rel: &str, enable: &str) -> Result<PathBuf> {
    let d = root.join(rel);
    let mut at = root.to_path_buf();
    for part in Path::new(rel).parent().into_iter().flat_map(|p| p.components()) {
        if !enable.is_empty() {
            let _ = fs::write(at.join("cgroup.subtree_control"), enable);
        }
        at.push(part);
        match fs::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create cgroup", &at, e)),
        }
    }
    if !enable.is_empty() {
        let _ = fs::write(at.join("cgroup.subtree_control"), enable);
    }
    fs::create_dir(&d).map_err(|e| io("create cgroup", &d, e))?;
    Ok(d)
}

/// A new cpuset is empty: from the top down, each empty one takes its parent's cpus and
/// memory nodes.
fn inherit_cpuset(base: &Path, rel: &str) {
    let mut at = base.to_path_buf();
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

/// A v1 realtime budget cannot exceed its parent's, and a new folder has none: the folders
/// between the hierarchy's root and `file`'s are given at least `value` first.
fn raise_rt_runtime(base: &Path, file: &Path, value: &str) {
    let Ok(want) = value.trim().parse::<i64>() else { return };
    let Some(leaf) = file.parent() else { return };
    let Ok(rel) = leaf.strip_prefix(base) else { return };
    let mut at = base.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(part);
        let f = at.join("cpu.rt_runtime_us");
        let have = fs::read_to_string(&f).ok().and_then(|s| s.trim().parse::<i64>().ok());
        if have.is_some_and(|h| h >= 0 && h < want) {
            let _ = fs::write(&f, want.to_string());
        }
    }
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
        let mut dirs: Vec<PathBuf> = Vec::new();
        match lay {
            Layout::V2 => {
                let d = make_v2(root, rel, "+memory +pids +cpu +cpuset +io +hugetlb +rdma +misc")?;
                // Every controller a limit needs must be there (enabled, and delegated to us).
                let have = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
                if let Some(wr) = writes.iter().find(|w| {
                    !w.controller.is_empty() && !have.split_whitespace().any(|h| h == w.controller)
                }) {
                    let _ = fs::remove_dir(&d);
                    return Err(SetupError::sys("apply the limits in", Some(&d.display().to_string()), Errno(libc::ENOENT)).with_hint(format!(
                        "{}: the {} controller is not available there (not enabled in the parent's cgroup.subtree_control, or not delegated to this user)", wr.field, wr.controller
                    )));
                }
                dirs.push(d);
            }
            Layout::V1 => {
                // The usual controllers, and those a limit needs besides (where the host has
                // them: a limit on one it lacks is refused when it is written).
                let extra: Vec<&str> = writes
                    .iter()
                    .map(|w| w.controller)
                    .filter(|c| !c.is_empty() && !V1_CONTROLLERS.contains(c))
                    .collect();
                for c in V1_CONTROLLERS.iter().copied().chain(extra.iter().copied()) {
                    let base = root.join(c);
                    let d = base.join(rel);
                    if !base.join("cgroup.procs").exists() || dirs.contains(&d) {
                        continue;
                    }
                    fs::create_dir_all(&d).map_err(|e| io("create cgroup", &d, e))?;
                    if c == "cpuset" {
                        inherit_cpuset(&base, rel);
                    }
                    dirs.push(d);
                }
                // A hybrid host's cgroup2 hierarchy, for what v1 has no hierarchy for here.
                let unified = root.join("unified");
                let needs_unified = writes.iter().any(|w| {
                    w.hybrid.is_some()
                        && (w.file.is_empty()
                            || !root.join(w.controller).join("cgroup.procs").exists())
                });
                if needs_unified && unified.join("cgroup.controllers").exists() {
                    let enable: Vec<String> = writes
                        .iter()
                        .filter(|w| w.hybrid.is_some() && !w.controller.is_empty())
                        .map(|w| format!("+{}", w.controller))
                        .collect();
                    match make_v2(&unified, rel, &enable.join(" ")) {
                        Ok(d) => dirs.push(d),
                        Err(e) => {
                            Cgroup { dirs: dirs.iter().map(|d| d.display().to_string()).collect() }
                                .remove();
                            return Err(e);
                        }
                    }
                }
            }
        }
        let cg = Cgroup { dirs: dirs.iter().map(|d| d.display().to_string()).collect() };
        if let Err(e) = cg.apply_under(root, lay, &writes, r) {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// Write the limits `writes` (planned from `r`) into the cgroup's folders under `root`, and
    /// on v2 give it the device program of `r`'s rules in place of any it had.
    fn apply_under(&self, root: &Path, lay: Layout, writes: &[Write], r: &Resources) -> Result<()> {
        let unified = root.join("unified");
        for wr in writes {
            let v1_dir = |c: &str| {
                self.dirs
                    .iter()
                    .map(PathBuf::from)
                    .find(|d| d.starts_with(root.join(c)) && !c.is_empty())
            };
            let target = match lay {
                Layout::V2 => self.dirs.first().map(|d| PathBuf::from(d).join(&wr.file)),
                Layout::V1 => match (v1_dir(wr.controller), &wr.hybrid) {
                    (Some(d), _) if !wr.file.is_empty() => Some(d.join(&wr.file)),
                    (_, Some(h)) => self
                        .dirs
                        .iter()
                        .map(PathBuf::from)
                        .find(|d| d.starts_with(&unified))
                        .map(|d| d.join(h)),
                    _ => None,
                },
            };
            let Some(mut file) = target else {
                let what = if wr.controller.is_empty() {
                    "cgroup2 hierarchy".to_owned()
                } else {
                    format!("{} controller", wr.controller)
                };
                return Err(SetupError::config(
                    &wr.field,
                    format!("this host has no {what} to apply it with"),
                ));
            };
            if let Some(bfq) = bfq_variant(&wr.file) {
                // The weight lives in the BFQ scheduler's file where the other has none.
                if !file.exists() {
                    let alt = file.with_file_name(bfq);
                    if !alt.exists() {
                        return Err(SetupError::config(
                            &wr.field,
                            format!("this host's I/O schedulers take no weight (neither {} nor {bfq} exists)", wr.file),
                        )
                        .with_hint("use the bfq I/O scheduler on the disks, or leave the weight out"));
                    }
                    file = alt;
                }
            }
            if !file.exists() {
                return Err(SetupError::config(
                    &wr.field,
                    format!(
                        "this host's kernel has no {} to apply it with",
                        file.file_name().unwrap_or_default().to_string_lossy()
                    ),
                ));
            }
            if wr.file == "cpu.rt_runtime_us" {
                raise_rt_runtime(&root.join("cpu"), &file, &wr.value);
            }
            if let Err(e) = fs::write(&file, &wr.value) {
                let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let mut err = io(&format!("set {name} to {} in", wr.value), &file, e);
                err.message = format!("{}: {}", wr.field, err.message);
                return Err(err);
            }
            // Linux 5.16 and later take a kernel memory limit and ignore it: said, not dropped.
            if wr.file == "memory.kmem.limit_in_bytes" {
                let now = fs::read_to_string(&file).unwrap_or_default();
                let asked: i64 = wr.value.parse().unwrap_or(-1);
                let page = 4096;
                if asked >= 0 && now.trim().parse::<i64>().is_ok_and(|n| n / page != asked / page) {
                    return Err(SetupError::config(
                        &wr.field,
                        "this kernel does not enforce kernel memory limits any more (memory.kmem.limit_in_bytes ignores them since Linux 5.16): leave it out, memory.limit counts kernel memory",
                    ));
                }
            }
        }
        if let (Layout::V2, Some(state), Some(dir)) = (lay, r.device_state()?, self.dirs.first()) {
            set_device_program(Path::new(dir), &state)?;
        }
        Ok(())
    }

    /// Apply `r` to the cgroup of a living container (`update`): only what `r` gives is
    /// written. On v1 a raised memory-plus-swap limit is written before a memory limit above
    /// its old value (the kernel keeps memory <= memory+swap at every step); with
    /// `checkBeforeUpdate`, a memory limit below what is used now is refused.
    pub fn update(&self, r: &Resources) -> Result<()> {
        let lay = if self.v2_dir().is_some() { Layout::V2 } else { layout() };
        let mut writes = plan_writes(lay, r)?;
        let mem = r.memory.as_ref();
        if mem.is_some_and(|m| m.check_before_update == Some(true)) {
            if let Some(limit) = mem.and_then(|m| m.limit).filter(|l| *l >= 0) {
                let used = self.stats().memory_bytes.unwrap_or(0);
                if (limit as u64) < used {
                    return Err(SetupError::config(
                        "linux.resources.memory.limit",
                        format!("{limit} is below what the container uses now ({used} bytes), and checkBeforeUpdate is set"),
                    ));
                }
            }
        }
        if lay == Layout::V1 {
            let current = |f: &str| {
                self.find(f)
                    .and_then(|p| fs::read_to_string(p).ok())
                    .and_then(|v| v.trim().parse::<i64>().ok())
            };
            let raised = |f: &str, w: &Write| {
                w.value.parse::<i64>().is_ok_and(|v| v == -1 || current(f).is_some_and(|c| v > c))
            };
            let swap = writes.iter().position(|w| w.file == "memory.memsw.limit_in_bytes");
            let limit = writes.iter().position(|w| w.file == "memory.limit_in_bytes");
            if let (Some(s), Some(l)) = (swap, limit) {
                if s > l && raised("memory.memsw.limit_in_bytes", &writes[s]) {
                    writes.swap(s, l);
                }
            }
        }
        self.apply_under(Path::new(ROOT), lay, &writes, r)
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

    /// The freezer of the cgroup: v1's freezer.state, or a cgroup2 folder's cgroup.freeze.
    fn freezer(&self) -> Option<(PathBuf, bool)> {
        let v1 =
            self.find("freezer.state").filter(|p| !p.starts_with(Path::new(ROOT).join("unified")));
        if let Some(p) = v1 {
            return Some((p, true));
        }
        self.dirs
            .iter()
            .map(|d| Path::new(d).join("cgroup.freeze"))
            .find(|p| p.exists())
            .map(|p| (p, false))
    }

    /// Whether its processes are frozen (paused).
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some((p, true)) => fs::read_to_string(p).is_ok_and(|s| s.trim() == "FROZEN"),
            Some((p, false)) => fs::read_to_string(p.with_file_name("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1")),
            None => false,
        }
    }

    /// Freeze (`true`) or thaw its processes, and wait until the kernel says it is done.
    pub fn freeze(&self, on: bool) -> Result<()> {
        let what = if on { "freeze" } else { "thaw" };
        let Some((file, v1)) = self.freezer() else {
            return Err(SetupError::sys(what, None, Errno(libc::ENOENT)).with_hint(
                "this host's cgroups have no freezer (no v1 freezer controller, no cgroup.freeze)",
            ));
        };
        let value = match (v1, on) {
            (true, true) => "FROZEN",
            (true, false) => "THAWED",
            (false, true) => "1",
            (false, false) => "0",
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // v1 may stay FREEZING while a task is busy in the kernel: write again until FROZEN.
            fs::write(&file, value)
                .map_err(|e| io(&format!("{what} the cgroup through"), &file, e))?;
            if self.frozen() == on {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(SetupError::sys(
                    what,
                    Some(&file.display().to_string()),
                    Errno(libc::EBUSY),
                )
                .with_hint(format!("its processes did not {what} within 10s")));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
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

    /// The device program for real, on a cgroup2 hierarchy (the hybrid layout's unified one
    /// has no controller, but programs attach to its folders all the same): a child born in
    /// the cgroup opens what the rules allow and is refused what they do not.
    #[test]
    fn v2_a_device_program_lets_through_what_the_rules_allow_and_nothing_else() {
        let root = [Path::new(ROOT), &Path::new(ROOT).join("unified")]
            .into_iter()
            .find(|r| r.join("cgroup.controllers").exists())
            .map(Path::to_path_buf);
        // SAFETY: plain syscall.
        let (Some(root), true) = (root, unsafe { libc::geteuid() } == 0) else {
            eprintln!("SKIP v2_a_device_program: needs root and a cgroup2 hierarchy");
            return;
        };
        let rule = |allow, kind: &str, major, minor, access: &str| crate::devices::SpecRule {
            allow,
            kind: Some(kind.into()),
            major: Some(major),
            minor: Some(minor),
            access: Some(access.into()),
        };
        // Deny everything, then allow /dev/kmsg (1:11) read-only; runc's defaults follow.
        let r = Resources {
            devices: vec![
                crate::devices::SpecRule { allow: false, ..Default::default() },
                rule(true, "c", 1, 11, "r"),
            ],
            ..Resources::default()
        };
        let rel = format!("ns-test/devices-{}", std::process::id());
        let cg = Cgroup::create_under(&root, Layout::V2, &rel, &r).unwrap();
        let dir = cg.v2_dir().expect("a v2 cgroup has one folder").to_owned();
        let attached = crate::bpf::attached_device_programs(
            crate::sys::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap().as_raw_fd(),
        )
        .unwrap();
        let fd = crate::sys::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let pid = crate::sys::clone_fork_into(0, Some(fd.as_raw_fd())).unwrap();
        if pid == 0 {
            // Bit 0: /dev/kmsg read-only opened; bit 1: /dev/kmsg for writing refused; bit 2:
            // /dev/loop0 (a block device) refused; bit 3: /dev/null (a default) opened read-write.
            let opens = |p: &str, flags| crate::sys::open(p, flags).map(|_| ()).map_err(|e| e.0);
            let mut bits = 0;
            if opens("/dev/kmsg", libc::O_RDONLY).is_ok() {
                bits |= 1;
            }
            if opens("/dev/kmsg", libc::O_WRONLY) == Err(libc::EPERM) {
                bits |= 2;
            }
            if opens("/dev/loop0", libc::O_RDONLY) == Err(libc::EPERM) {
                bits |= 4;
            }
            if opens("/dev/null", libc::O_RDWR).is_ok() {
                bits |= 8;
            }
            // SAFETY: ends the child.
            unsafe { libc::_exit(bits) }
        }
        let (_, status) = crate::sys::waitpid(pid, 0).unwrap();
        // Replaced, not added to: a second set of rules takes the place of the first.
        let again = Resources { devices: vec![rule(true, "c", 1, 1, "r")], ..Resources::default() };
        set_device_program(Path::new(&dir), &again.device_state().unwrap().unwrap()).unwrap();
        let after = crate::bpf::attached_device_programs(fd.as_raw_fd()).unwrap();
        drop(fd);
        cg.remove();
        let _ = fs::remove_dir(root.join("ns-test"));
        assert_eq!(attached.len(), 1, "one program attached");
        assert_eq!(libc::WEXITSTATUS(status), 15, "what the child could open (bits)");
        assert_eq!(after.len(), 1);
        assert_ne!(after, attached);
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
}
