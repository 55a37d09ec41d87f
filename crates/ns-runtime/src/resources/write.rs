//! What every controller's plan shares: the layout written to, one write of a limit, and the
//! error for a field no cgroup of the layout has.

use serde::{Deserialize, Serialize};

use crate::error::SetupError;

/// Which files limits are written to: a controller's folder each (v1; the hybrid layout's
/// cgroup2 at /sys/fs/cgroup/unified takes what has no v1 hierarchy), or the one folder (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
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

/// A write of `value` to `file` in `controller`'s folder, for `field` (no hybrid file).
pub(super) fn w(
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
pub(super) fn absent(layout: Layout, field: &str, what: &str) -> SetupError {
    let v = match layout {
        Layout::V1 => "cgroup v1",
        Layout::V2 => "cgroup v2",
    };
    SetupError::config(field, format!("{v} has no {what}"))
}
