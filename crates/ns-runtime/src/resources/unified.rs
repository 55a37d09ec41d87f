//! `linux.resources.unified`: cgroup v2 files and their values, written as they are (on v1, to
//! a hybrid host's cgroup2 folder).

use std::collections::BTreeMap;

use super::write::{w, Layout, Write};
use crate::error::{Result, SetupError};

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

/// The writes of the `unified` keys, each checked to be a file of a cgroup the runtime leaves
/// to the spec.
pub(super) fn plan_unified(
    layout: Layout,
    unified: &BTreeMap<String, String>,
    out: &mut Vec<Write>,
) -> Result<()> {
    let v1 = layout == Layout::V1;
    for (key, value) in unified {
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
    Ok(())
}
