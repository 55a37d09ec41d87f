//! The owner of each node: set with `chown` in a root store, or listed (with the mode and
//! capabilities the change of owner clears) for the user namespace of a rootless store, after
//! checking that the ids are mapped.

use super::extractor::Extractor;
use super::meta::Meta;
use super::types::{map_id, Chown, Owners};
use crate::error::{ImageError, Result};
use crate::fsops::c;

impl Extractor {
    /// The owner of a node: set now with `chown` (a root store) or listed for the user
    /// namespace (a rootless store), after checking that the ids are mapped.
    pub(super) fn owner(
        &mut self,
        path: &[u8],
        meta: &Meta,
        is_dir: bool,
        chown: impl FnOnce(u32, u32) -> ns_runtime::sys::SysResult<()>,
        raw: &[u8],
    ) -> Result<()> {
        match &self.owners {
            Owners::Keep => {
                if (meta.uid, meta.gid) != (self.euid, self.egid) {
                    chown(meta.uid, meta.gid)
                        .map_err(|e| ImageError::entry_sys("set the owner of", raw, e))?;
                }
                Ok(())
            }
            Owners::Map { uids, gids } => {
                let (hu, hg) = match (map_id(uids, meta.uid), map_id(gids, meta.gid)) {
                    (Some(u), Some(g)) => (u, g),
                    _ => {
                        let mut e = ImageError::bad_entry(
                            raw,
                            &format!(
                                "its owner {}:{} is outside the ids this user may map",
                                meta.uid, meta.gid
                            ),
                        );
                        e.code = "EOVERFLOW".into();
                        return Err(e.with_hint(
                            "a rootless store maps your id as 0 and your /etc/subuid and /etc/subgid ranges from 1: make those ranges large enough (65536 ids)",
                        ));
                    }
                };
                let caps = meta
                    .xattrs
                    .iter()
                    .find(|(n, _)| n.as_bytes() == b"security.capability")
                    .map(|(_, v)| v.clone());
                if (hu, hg) != (self.euid, self.egid) || caps.is_some() {
                    let setid = !is_dir && meta.mode & 0o6000 != 0;
                    self.chowns.push(Chown {
                        path: c(path).map_err(|e| ImageError::entry_sys("extract", raw, e))?,
                        uid: meta.uid,
                        gid: meta.gid,
                        mode: setid.then_some(meta.mode),
                        caps,
                    });
                }
                Ok(())
            }
        }
    }
}
