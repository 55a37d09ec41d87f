//! OCI whiteouts as overlayfs whiteouts: `.wh.NAME` becomes a 0:0 character device, `.wh..wh..opq`
//! (and a directory made again over a deleted one) an opaque directory.

use std::os::fd::RawFd;

use ns_runtime::sys::Errno;

use super::extractor::Extractor;
use super::types::OverlayXattrs;
use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

pub(super) fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

impl Extractor {
    pub(super) fn set_opaque(&mut self, dirfd: RawFd, raw: &[u8]) -> Result<()> {
        let x = self.xattrs.opaque();
        fs::fsetxattr(dirfd, x, b"y").map_err(|e| {
            let mut err = ImageError::entry_sys(&format!("set {} on", x.to_string_lossy()), raw, e);
            if self.xattrs == OverlayXattrs::Trusted && e.0 == libc::EPERM {
                err = err.with_hint(
                    "trusted.* attributes need root; a rootless store uses user.overlay.*",
                );
            }
            err
        })
    }

    /// `.wh.NAME`: NAME of the lower layers is deleted; `.wh..wh..opq`: the directory hides
    /// what the lower layers hold in it. Other `.wh..wh.*` names (aufs' own) make nothing.
    pub(super) fn whiteout(&mut self, parent: &[u8], rest: &[u8], raw: &[u8]) -> Result<()> {
        if rest == b".wh..opq" {
            let pfd = self.parent(parent, raw)?;
            return self.set_opaque(pfd, raw);
        }
        if rest.starts_with(b".wh.") {
            return Ok(());
        }
        if rest.is_empty() {
            return Err(ImageError::bad_entry(raw, "a whiteout that names nothing"));
        }
        let pfd = self.parent(parent, raw)?;
        let name = c(rest).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
        match fs::mknodat(pfd, &name, libc::S_IFCHR, 0) {
            Ok(()) => Ok(()),
            // NAME is in this layer itself: a whiteout applies only to the layers below, which
            // that entry hides already.
            Err(Errno(libc::EEXIST)) => Ok(()),
            Err(e) => Err(ImageError::entry_sys("create the whiteout", raw, e)),
        }
    }
}
