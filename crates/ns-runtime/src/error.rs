//! One error type for the whole set-up: which step failed, on which path, with which errno,
//! and what the user can do about it. It crosses process boundaries as JSON (child -> helper ->
//! Node), so it is plain data.

use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct SetupError {
    /// The set-up step that failed, e.g. `pivot_root`, `write uid_map`, `exec`.
    pub step: String,
    /// The path the step worked on, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The errno the kernel returned, when the failure came from a system call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The symbolic errno (`EPERM`), or `EINVAL` for invalid configuration.
    pub code: String,
    /// One line a person can read: `failed to pivot_root into /srv/x: EINVAL (invalid argument)`.
    pub message: String,
    /// What to do about it, when we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl SetupError {
    /// A failed system call during `step` on `path`.
    pub fn sys(step: impl Into<String>, path: Option<&str>, errno: Errno) -> Self {
        let step = step.into();
        let message = match path {
            Some(p) => format!("failed to {step} {p}: {} ({})", errno.name(), errno.describe()),
            None => format!("failed to {step}: {} ({})", errno.name(), errno.describe()),
        };
        SetupError {
            step,
            path: path.map(str::to_owned),
            errno: Some(errno.0),
            code: errno.name().to_owned(),
            message,
            hint: None,
        }
    }

    /// Invalid configuration: `field` names the offending field of the runtime spec.
    pub fn config(field: impl Into<String>, reason: impl AsRef<str>) -> Self {
        let field = field.into();
        SetupError {
            message: format!("{field}: {}", reason.as_ref()),
            step: "validate config".into(),
            path: Some(field),
            errno: None,
            code: "EINVAL".into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

pub type Result<T, E = SetupError> = std::result::Result<T, E>;

/// Attach the step and path to a raw errno result.
pub trait Context<T> {
    fn step(self, step: &str, path: Option<&str>) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn step(self, step: &str, path: Option<&str>) -> Result<T> {
        self.map_err(|e| SetupError::sys(step, path, e))
    }
}
