//! Which extended attributes of an entry are set, deferred to the user namespace or left out
//! (overlayfs attributes of the layer, host-only namespaces in a rootless store), and setting them.

use std::ffi::CStr;

use ns_runtime::sys::Errno;

use super::extractor::Extractor;
use super::meta::Meta;
use super::types::Owners;
use crate::error::{ImageError, Result};

enum XattrUse {
    Set,
    /// `security.capability` of a rootless store: set from inside the user namespace.
    Defer,
    Skip,
}

impl Extractor {
    fn xattr_use(&self, name: &[u8]) -> XattrUse {
        let rootless = matches!(self.owners, Owners::Map { .. });
        // A layer never decides how overlayfs reads it (opaque, redirect, metacopy).
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            return XattrUse::Skip;
        }
        if name == b"security.capability" {
            return if rootless { XattrUse::Defer } else { XattrUse::Set };
        }
        if name.starts_with(b"user.") || !rootless {
            return XattrUse::Set;
        }
        // trusted.* needs CAP_SYS_ADMIN of the host; ACLs name host ids: neither fits a
        // rootless store.
        XattrUse::Skip
    }

    pub(super) fn xattrs_of(
        &mut self,
        meta: &Meta,
        _path: &[u8],
        raw: &[u8],
        mut set: impl FnMut(&CStr, &[u8]) -> ns_runtime::sys::SysResult<()>,
    ) -> Result<()> {
        for (n, v) in &meta.xattrs {
            match self.xattr_use(n.as_bytes()) {
                XattrUse::Set => match set(n, v) {
                    Ok(()) => {}
                    Err(Errno(libc::EOPNOTSUPP | libc::EPERM | libc::EACCES)) => {
                        self.stats.skipped += 1
                    }
                    Err(e) => {
                        return Err(ImageError::entry_sys(
                            &format!("set the attribute {} of", n.to_string_lossy()),
                            raw,
                            e,
                        ))
                    }
                },
                XattrUse::Defer => {}
                XattrUse::Skip => self.stats.skipped += 1,
            }
        }
        Ok(())
    }
}
