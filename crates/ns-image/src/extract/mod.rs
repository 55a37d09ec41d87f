//! Tar entries into a layer directory, safely: every name is cleaned (no `..`), every parent is
//! resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` from the
//! layer's root descriptor, and every node is made with one name in a directory descriptor,
//! never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, linkat without AT_SYMLINK_FOLLOW). A
//! symlink of the layer that points outside cannot be written through: the kernel refuses the
//! walk (EXDEV) and the entry is refused by name. OCI whiteouts become overlayfs whiteouts.
//!
//! One file per job: `extractor` holds the state of an extraction and applies each entry,
//! `path` cleans names, `meta` reads an entry's header, `parents` resolves and makes the
//! parent directories beneath the root, `nodes` makes each kind of node, `whiteout` turns
//! OCI whiteouts into overlayfs ones, `owners` and `xattrs` set or list owners and
//! attributes, and `types` holds what callers give and get back.

mod extractor;
mod meta;
mod nodes;
mod owners;
mod parents;
mod path;
mod types;
mod whiteout;
mod xattrs;

pub use extractor::Extractor;
pub use path::clean;
pub use types::{map_id, Chown, OverlayXattrs, Owners, Stats};
