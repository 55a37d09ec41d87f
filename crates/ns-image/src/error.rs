//! One error type for images: which step failed, on which path or layer entry, with which errno
//! or which digests, and what to do about it. It crosses into Node as JSON, in the shape of the
//! runtime's `SetupError` (`step`, `path`, `errno`, `code`, `message`, `hint`) plus the fields
//! only images have (`entry`, `expected`, `got`).

use serde::Serialize;

use ns_runtime::sys::Errno;

/// `code` of a digest that does not match (the blob's sha256 or its uncompressed `diff_id`).
pub const EDIGEST: &str = "EDIGEST";
/// `code` of a layer entry refused because it would reach outside the layer directory.
pub const EUNSAFE: &str = "EUNSAFE";
/// `code` of a blob that is not a well-formed (compressed) tar stream.
pub const EFORMAT: &str = "EFORMAT";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct ImageError {
    /// The step that failed: `open blob`, `verify blob digest`, `extract entry`, `mount overlay`.
    pub step: String,
    /// The host path the step worked on, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The name of the layer entry (as written in the tar) being extracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The symbolic errno (`ENOENT`), or `EDIGEST`, `EUNSAFE`, `EFORMAT`, `EINVAL`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For `EDIGEST`: the digest that was expected and the one computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<String>,
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// A name from a layer, printable in one line whatever bytes it holds.
pub fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).escape_debug().to_string()
}

impl ImageError {
    fn new(step: impl Into<String>, code: &str, message: String) -> Self {
        ImageError {
            step: step.into(),
            path: None,
            entry: None,
            errno: None,
            code: code.to_owned(),
            message,
            hint: None,
            expected: None,
            got: None,
        }
    }

    /// A failed system call during `step` on `path`: `failed to <step> <path>: ENOENT (...)`.
    pub fn sys(step: impl Into<String>, path: Option<&str>, errno: Errno) -> Self {
        let step = step.into();
        let message = match path {
            Some(p) => format!("failed to {step} {p}: {} ({})", errno.name(), errno.describe()),
            None => format!("failed to {step}: {} ({})", errno.name(), errno.describe()),
        };
        let mut e = ImageError::new(step, errno.name(), message);
        e.path = path.map(str::to_owned);
        e.errno = Some(errno.0);
        e
    }

    /// A failed system call while extracting the layer entry `entry`.
    pub fn entry_sys(step: &str, entry: &[u8], errno: Errno) -> Self {
        let name = show(entry);
        let mut e = ImageError::new(
            step,
            errno.name(),
            format!("failed to {step} {name:?}: {} ({})", errno.name(), errno.describe()),
        );
        e.entry = Some(name);
        e.errno = Some(errno.0);
        e
    }

    /// A layer entry refused: it would be written (or link) outside the layer directory.
    pub fn unsafe_entry(entry: &[u8], reason: &str) -> Self {
        let name = show(entry);
        let mut e = ImageError::new(
            "extract entry",
            EUNSAFE,
            format!("failed to extract layer entry {name:?}: {reason}"),
        );
        e.entry = Some(name);
        e.hint =
            Some("the layer tries to reach outside its directory; do not use this image".into());
        e
    }

    /// A layer entry that cannot be represented (bad type, bad field, unsupported feature).
    pub fn bad_entry(entry: &[u8], reason: &str) -> Self {
        let name = show(entry);
        let mut e = ImageError::new(
            "extract entry",
            EFORMAT,
            format!("failed to extract layer entry {name:?}: {reason}"),
        );
        e.entry = Some(name);
        e
    }

    /// The stream itself is not what it should be (corrupt compression, truncated tar).
    pub fn format(step: impl Into<String>, path: Option<&str>, reason: impl AsRef<str>) -> Self {
        let step = step.into();
        let message = match path {
            Some(p) => format!("failed to {step} {p}: {}", reason.as_ref()),
            None => format!("failed to {step}: {}", reason.as_ref()),
        };
        let mut e = ImageError::new(step, EFORMAT, message);
        e.path = path.map(str::to_owned);
        e
    }

    /// `what` (`blob`, `diff_id`) hashed to `got` where `expected` was asked for.
    pub fn digest(what: &str, path: &str, expected: &str, got: &str) -> Self {
        let mut e = ImageError::new(
            format!("verify {what}"),
            EDIGEST,
            format!("failed to verify {what} of {path}: expected {expected}, got {got}"),
        );
        e.path = Some(path.to_owned());
        e.expected = Some(expected.to_owned());
        e.got = Some(got.to_owned());
        e.hint = Some(if what == "diff_id" {
            "the layer's content is not the one the image config names; the image is corrupt or tampered with".into()
        } else {
            "the blob is corrupt or was tampered with; remove it from the store and pull it again"
                .into()
        });
        e
    }

    /// An invalid argument: `field` names it.
    pub fn invalid(field: &str, reason: impl AsRef<str>) -> Self {
        let mut e =
            ImageError::new("validate options", "EINVAL", format!("{field}: {}", reason.as_ref()));
        e.path = Some(field.to_owned());
        e
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// From an I/O error of a step on a path (read errors of the decoders included).
    pub fn io(step: &str, path: Option<&str>, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => ImageError::sys(step, path, Errno(n)),
            None => ImageError::format(step, path, e.to_string()),
        }
    }
}
