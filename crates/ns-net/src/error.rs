//! Errors are values: which step failed, on what, with which errno, and what to do about it.
//!
//! The shape is the one `ns_runtime::SetupError` has (step, path, errno, code, message, hint),
//! so the helper converts one into the other field by field. This crate does not depend on
//! `ns-runtime`: the runtime's helper calls into it, not the other way round.

use std::ffi::CStr;

use serde::{Deserialize, Serialize};

/// A raw errno from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub fn last() -> Self {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    pub fn from_io(e: &std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The symbolic name (`EEXIST`), `EUNKNOWN` for an uncommon one.
    pub fn name(&self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EINVAL => "EINVAL",
            libc::ENFILE => "ENFILE",
            libc::EMFILE => "EMFILE",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::EADDRINUSE => "EADDRINUSE",
            libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            libc::ENETUNREACH => "ENETUNREACH",
            libc::ENOBUFS => "ENOBUFS",
            libc::EMSGSIZE => "EMSGSIZE",
            libc::EPROTO => "EPROTO",
            libc::EAFNOSUPPORT => "EAFNOSUPPORT",
            libc::ETIMEDOUT => "ETIMEDOUT",
            libc::ENOTCONN => "ENOTCONN",
            _ => "EUNKNOWN",
        }
    }

    /// The C library's description, lowercased: `file exists`.
    pub fn describe(&self) -> String {
        // SAFETY: strerror returns a pointer to a static or thread-local string.
        let s = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        s.to_string_lossy().to_lowercase()
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.describe())
    }
}

/// One failure of a network operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct NetError {
    /// The step that failed: `create veth`, `add address`, `apply firewall rules`.
    pub step: String,
    /// What the step worked on (a device, an address, a file), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The errno the kernel returned, when the failure came from a system call or netlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The symbolic errno (`EEXIST`), or `EINVAL` for invalid configuration.
    pub code: String,
    /// One line a person can read: `failed to add veth ns3f2a to bridge ns-web: EEXIST (file exists)`.
    pub message: String,
    /// What to do about it, when we know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl NetError {
    /// A failed system call: `failed to <step> <what>: EEXIST (file exists)`.
    pub fn sys(step: impl Into<String>, what: Option<&str>, errno: Errno) -> Self {
        let step = step.into();
        let message = match what {
            Some(w) => format!("failed to {step} {w}: {errno}"),
            None => format!("failed to {step}: {errno}"),
        };
        NetError {
            step,
            path: what.map(str::to_owned),
            errno: Some(errno.0),
            code: errno.name().to_owned(),
            message,
            hint: None,
        }
    }

    /// Invalid configuration: `field` names what was wrong (`subnets[0].gateway`).
    pub fn config(field: impl Into<String>, reason: impl AsRef<str>) -> Self {
        let field = field.into();
        NetError {
            message: format!("{field}: {}", reason.as_ref()),
            step: "validate network".into(),
            path: Some(field),
            errno: None,
            code: "EINVAL".into(),
            hint: None,
        }
    }

    /// A failure that is not an errno: a tool that said no, a reply that made no sense.
    pub fn other(step: impl Into<String>, what: Option<&str>, code: &str, detail: &str) -> Self {
        let step = step.into();
        let message = match what {
            Some(w) => format!("failed to {step} {w}: {detail}"),
            None => format!("failed to {step}: {detail}"),
        };
        NetError {
            step,
            path: what.map(str::to_owned),
            errno: None,
            code: code.to_owned(),
            message,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The errno, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        self.errno.map(Errno)
    }
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;

/// Every failure of an operation that goes on past errors (teardown, reconcile): a half-removed
/// network is the worst state, so each step is tried and each failure kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorList(pub Vec<NetError>);

impl ErrorList {
    pub fn push(&mut self, e: NetError) {
        self.0.push(e);
    }

    /// Keeps the error of a step, if it failed.
    pub fn keep<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ErrorList> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for ErrorList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.0.iter().map(|e| e.message.as_str()).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for ErrorList {}

/// Attach the step and its object to a raw errno result.
pub trait Context<T> {
    fn step(self, step: &str, what: Option<&str>) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn step(self, step: &str, what: Option<&str>) -> Result<T> {
        self.map_err(|e| NetError::sys(step, what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_names_the_step_the_object_and_the_errno() {
        let e = NetError::sys("add veth ns3f2a to bridge", Some("ns-web"), Errno(libc::EEXIST));
        assert_eq!(e.message, "failed to add veth ns3f2a to bridge ns-web: EEXIST (file exists)");
        assert_eq!(e.code, "EEXIST");
        assert_eq!(e.errno(), Some(Errno(libc::EEXIST)));
    }

    #[test]
    fn an_error_list_keeps_every_failure_in_order() {
        let mut l = ErrorList::default();
        assert_eq!(l.keep(Ok::<_, NetError>(1)), Some(1));
        l.keep::<()>(Err(NetError::config("a", "bad")));
        l.keep::<()>(Err(NetError::config("b", "worse")));
        assert_eq!(l.to_string(), "a: bad; b: worse");
        assert!(l.into_result().is_err());
    }
}
