//! What an extraction is given and gives back: where the store keeps its overlayfs attributes,
//! how the layer's owners are stored (kept, or mapped to the ranges of a rootless user), the
//! owners to set afterwards from inside the user namespace, and the counts of what was done.

use std::ffi::{CStr, CString};

use ns_runtime::spec::IdMapping;

/// Where the overlayfs attributes of this store live: `trusted.overlay.*` (root, the default
/// of overlayfs) or `user.overlay.*` (a store mounted with `-o userxattr` in a user namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayXattrs {
    Trusted,
    User,
}

impl OverlayXattrs {
    pub fn opaque(self) -> &'static CStr {
        match self {
            OverlayXattrs::Trusted => c"trusted.overlay.opaque",
            OverlayXattrs::User => c"user.overlay.opaque",
        }
    }
}

/// How the layer's owners are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owners {
    /// As the tar says (a root store: the caller may chown to anything).
    Keep,
    /// Through the id maps of the user namespace the containers will run in (container id ->
    /// host id): a rootless store. The owners are set afterwards, from inside a user namespace
    /// with these maps (see `userns`); here only the list of what to change is made.
    Map { uids: Vec<IdMapping>, gids: Vec<IdMapping> },
}

/// The host id of container id `id` under `maps`.
pub fn map_id(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id)?;
        (off < m.size).then(|| m.host_id.wrapping_add(off))
    })
}

/// An owner (and what the change of owner clears) to set from inside the user namespace.
#[derive(Debug, Clone)]
pub struct Chown {
    /// Path beneath the layer root (clean, relative; empty for the root itself).
    pub path: CString,
    /// Container-side ids (as in the tar).
    pub uid: u32,
    pub gid: u32,
    /// The mode to set again after the chown (which drops set-user-ID and set-group-ID bits).
    pub mode: Option<u32>,
    /// A `security.capability` attribute, set after the chown (which drops it) by the
    /// namespace's root, so that the kernel stores it for that root.
    pub caps: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Entries applied (files, directories, links, nodes, whiteouts, opaque markers).
    pub entries: u64,
    /// What could not be represented and was left out (device nodes without CAP_MKNOD,
    /// attributes of a namespace the caller may not write, overlayfs attributes of the layer).
    pub skipped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_through_ranges() {
        let m = |c, h, s| IdMapping { container_id: c, host_id: h, size: s };
        let maps = [m(0, 1000, 1), m(1, 100000, 65536)];
        assert_eq!(map_id(&maps, 0), Some(1000));
        assert_eq!(map_id(&maps, 1), Some(100000));
        assert_eq!(map_id(&maps, 65536), Some(165535));
        assert_eq!(map_id(&maps, 65537), None);
    }
}
