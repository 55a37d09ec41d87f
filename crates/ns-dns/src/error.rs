//! The crate's error: which step failed, on which path, with which errno, and what to do about
//! it — the fields of ns-runtime's `SetupError`, so the helper can pass it on unchanged. It
//! crosses from the resolver process to its starter as JSON.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct Error {
    /// The step that failed: `bind udp socket`, `read records`, `lock pid file`.
    pub step: String,
    /// The path (or address) the step worked on, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The errno, when the failure came from a system call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// One line a person can read: `failed to bind udp socket 198.51.100.1:53: …`.
    pub message: String,
    /// What to do about it, when we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Error {
    /// A failed operation on `what` (a path or an address).
    pub fn io(step: &str, what: Option<&str>, err: &io::Error) -> Error {
        let message = match what {
            Some(w) => format!("failed to {step} {w}: {}", describe(err)),
            None => format!("failed to {step}: {}", describe(err)),
        };
        Error {
            step: step.to_owned(),
            path: what.map(str::to_owned),
            errno: err.raw_os_error(),
            message,
            hint: None,
        }
    }

    pub fn path(step: &str, path: &Path, err: &io::Error) -> Error {
        Error::io(step, Some(&path.display().to_string()), err)
    }

    /// Invalid input: `field` names what was wrong (`containers[1].ipv4[0]`, `--listen`).
    pub fn config(field: &str, reason: impl AsRef<str>) -> Error {
        Error {
            step: "validate".into(),
            path: Some(field.to_owned()),
            errno: None,
            message: format!("{field}: {}", reason.as_ref()),
            hint: None,
        }
    }

    /// A failure that is not a system call's: `failed to {step}: {reason}`.
    pub fn other(step: &str, what: Option<&str>, reason: impl AsRef<str>) -> Error {
        let message = match what {
            Some(w) => format!("failed to {step} {w}: {}", reason.as_ref()),
            None => format!("failed to {step}: {}", reason.as_ref()),
        };
        Error {
            step: step.to_owned(),
            path: what.map(str::to_owned),
            errno: None,
            message,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
}

/// `EADDRINUSE (address already in use)`, or the error's own text when it has no errno.
fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_lowercase();
            format!("{} ({text})", errno_name(code))
        }
        None => err.to_string(),
    }
}

fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => "EUNKNOWN",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_step_the_target_and_the_errno() {
        let e = Error::io(
            "bind udp socket",
            Some("198.51.100.1:53"),
            &io::Error::from_raw_os_error(libc::EADDRINUSE),
        );
        assert_eq!(
            e.message,
            "failed to bind udp socket 198.51.100.1:53: EADDRINUSE (address already in use)"
        );
        assert_eq!(e.errno, Some(libc::EADDRINUSE));
        assert_eq!(e.path.as_deref(), Some("198.51.100.1:53"));
        let c = Error::config("--listen", "not an IP address: \"x\"");
        assert_eq!(c.to_string(), "--listen: not an IP address: \"x\"");
        let j = serde_json::to_value(c.with_hint("give an address")).unwrap();
        assert_eq!(j["hint"], "give an address");
        assert!(j.get("errno").is_none());
    }
}
