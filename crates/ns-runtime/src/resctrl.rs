//! `linux.intelRdt`: the container's resctrl group (Intel RDT, or AMD's QoS, through the
//! resctrl filesystem at /sys/fs/resctrl): a class of service named by `closID` (or the
//! container's id), with the cache and memory bandwidth schemata the spec gives, and, with
//! `enableMonitoring`, a monitoring group of the container's own below it. The container's
//! first process is placed in it before it is released (what it starts inherits it); a group
//! the container made is removed with it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
use crate::spec::IntelRdt;
use crate::sys::Errno;

const ROOT: &str = "/sys/fs/resctrl";

/// What `linux.intelRdt` asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdtPlan {
    /// The class of service's folder name (None: the container's id).
    pub clos: Option<String>,
    /// Lines for its `schemata` file.
    pub schemata: Vec<String>,
    pub monitoring: bool,
}

/// Check `linux.intelRdt` (a pure function: where resctrl is, is the launch's to find).
pub fn plan(rdt: &IntelRdt) -> Result<RdtPlan> {
    if let Some(c) = &rdt.clos_id {
        if c.is_empty() || c == "." || c == ".." || c.contains('/') || c == "info" {
            return Err(SetupError::config(
                "linux.intelRdt.closID",
                format!("{c:?} is not a resctrl group name"),
            ));
        }
    }
    let mut schemata = Vec::new();
    for (field, v) in [("l3CacheSchema", &rdt.l3_cache_schema), ("memBwSchema", &rdt.mem_bw_schema)]
    {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            schemata.extend(v.lines().map(str::to_owned));
            if v.contains('\0') {
                return Err(SetupError::config(
                    format!("linux.intelRdt.{field}"),
                    "has a NUL byte",
                ));
            }
        }
    }
    schemata.extend(rdt.schemata.iter().cloned());
    Ok(RdtPlan { clos: rdt.clos_id.clone(), schemata, monitoring: rdt.enable_monitoring })
}

/// A container's place in resctrl: its group's folder (and monitoring group), and whether the
/// container made them (then they go with it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RdtGroup {
    pub dir: String,
    pub created: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
}

fn io(step: &str, p: &Path, e: std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&p.display().to_string()),
        Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

impl RdtGroup {
    /// Make (or find) the group and put `pid` in it.
    pub fn join(plan: &RdtPlan, id: &str, pid: i32) -> Result<RdtGroup> {
        Self::join_under(Path::new(ROOT), plan, id, pid)
    }

    pub fn join_under(root: &Path, plan: &RdtPlan, id: &str, pid: i32) -> Result<RdtGroup> {
        if !root.join("schemata").exists() {
            return Err(SetupError::config(
                "linux.intelRdt",
                format!("this host has no resctrl filesystem at {} (it needs a CPU with Intel RDT or AMD QoS, and `mount -t resctrl resctrl {}`)", root.display(), root.display()),
            ));
        }
        let name = plan.clos.clone().unwrap_or_else(|| id.to_owned());
        let dir: PathBuf = root.join(&name);
        let created = match fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io("create the resctrl group", &dir, e)),
        };
        let mut group = RdtGroup { dir: dir.display().to_string(), created, monitor: None };
        let result = (|| {
            let file = dir.join("schemata");
            if created {
                for line in &plan.schemata {
                    fs::write(&file, format!("{line}\n"))
                        .map_err(|e| io(&format!("write {line:?} to"), &file, e))?;
                }
            } else if !plan.schemata.is_empty() {
                // A group of others': it is shared as it is, so what is asked must be what it has.
                let have = fs::read_to_string(&file).map_err(|e| io("read", &file, e))?;
                let norm = |l: &str| l.split_whitespace().collect::<String>();
                let lines: Vec<String> = have.lines().map(norm).collect();
                if let Some(l) = plan.schemata.iter().find(|l| !lines.contains(&norm(l))) {
                    return Err(SetupError::config(
                        "linux.intelRdt.closID",
                        format!("the existing group {name:?} has other schemata than {l:?}"),
                    ));
                }
            }
            let tasks = if plan.monitoring {
                let m = dir.join("mon_groups").join(id);
                fs::create_dir(&m).map_err(|e| io("create the resctrl monitoring group", &m, e))?;
                group.monitor = Some(m.display().to_string());
                m.join("tasks")
            } else {
                dir.join("tasks")
            };
            fs::write(&tasks, pid.to_string()).map_err(|e| io("move the container into", &tasks, e))
        })();
        if let Err(e) = result {
            group.remove();
            return Err(e);
        }
        Ok(group)
    }

    /// Remove what the container made (a group of others' stays).
    pub fn remove(&self) {
        if let Some(m) = &self.monitor {
            let _ = fs::remove_dir(m);
        }
        if self.created {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemata_are_gathered_and_bad_names_refused() {
        let rdt = IntelRdt {
            clos_id: Some("gold".into()),
            l3_cache_schema: Some("L3:0=ff".into()),
            mem_bw_schema: Some("MB:0=50".into()),
            schemata: vec!["L2:0=f".into()],
            enable_monitoring: true,
        };
        let p = plan(&rdt).unwrap();
        assert_eq!(p.schemata, ["L3:0=ff", "MB:0=50", "L2:0=f"]);
        assert!(p.monitoring);
        for bad in ["", "..", "a/b", "info"] {
            let r = IntelRdt { clos_id: Some(bad.into()), ..Default::default() };
            assert_eq!(plan(&r).unwrap_err().path.as_deref(), Some("linux.intelRdt.closID"));
        }
    }

    #[test]
    fn without_resctrl_the_error_names_the_field_and_says_what_is_missing() {
        let root = std::env::temp_dir().join(format!("ns-no-resctrl-{}", std::process::id()));
        let e =
            RdtGroup::join_under(&root, &plan(&IntelRdt::default()).unwrap(), "c1", 1).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("linux.intelRdt"));
        assert!(e.message.contains("no resctrl filesystem"), "{}", e.message);
    }

    #[test]
    fn a_group_is_made_written_and_joined_then_removed() {
        // A folder shaped as resctrl's root (the kernel's files are plain files here).
        let root = std::env::temp_dir().join(format!("ns-resctrl-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("schemata"), "L3:0=fff\n").unwrap();
        let p = RdtPlan { clos: None, schemata: vec!["L3:0=f".into()], monitoring: false };
        let g = RdtGroup::join_under(&root, &p, "c1", 42).unwrap();
        assert!(g.created);
        assert_eq!(fs::read_to_string(root.join("c1/schemata")).unwrap(), "L3:0=f\n");
        assert_eq!(fs::read_to_string(root.join("c1/tasks")).unwrap(), "42");
        // An existing group with other schemata is refused.
        let other = RdtPlan { clos: Some("c1".into()), schemata: vec!["L3:0=3".into()], ..p };
        let e = RdtGroup::join_under(&root, &other, "c2", 43).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("linux.intelRdt.closID"));
        fs::remove_file(root.join("c1/schemata")).unwrap();
        fs::remove_file(root.join("c1/tasks")).unwrap();
        g.remove();
        assert!(!root.join("c1").exists());
        let _ = fs::remove_dir_all(&root);
    }
}
