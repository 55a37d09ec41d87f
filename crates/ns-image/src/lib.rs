//! ns-image: the native side of OCI images.
//!
//! - [`unpack::unpack_layer`]: a layer blob (`tar`, `tar+gzip`, `tar+zstd`) streamed into a
//!   layer directory: its sha256 and its uncompressed `diff_id` verified while it streams,
//!   extracted into a staging directory beside the destination, synced, then renamed into
//!   place with its marker; on any failure the staging directory goes and nothing is left.
//! - [`extract`]: safe extraction. Every path is made beneath the layer's root descriptor:
//!   names with `..` are refused, absolute names are taken relative to the layer, parents are
//!   resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` (a
//!   symlink of the layer pointing out cannot be written through), nodes are made by one name
//!   in a directory descriptor and never followed, hard links must name a file of the layer.
//!   OCI whiteouts become overlayfs ones: `.wh.NAME` a 0/0 character device, `.wh..wh..opq` the
//!   `overlay.opaque` attribute (`trusted.` for root, `user.` for a rootless store), and a
//!   directory deleted and made again in one layer is opaque. Attributes of the layer that
//!   would steer overlayfs (`trusted.overlay.*`, `user.overlay.*`) are dropped.
//! - [`lookup`]: a path of an image read from its layers as the overlay of them shows it
//!   (whiteouts and opaque directories honoured), for user names and volume owners.
//! - [`overlay`]: the overlay mount of N layers (the new mount API, one `lowerdir+` a layer,
//!   so no page-size limit; or `mount(2)` options), and a probe that mounts one for real.
//!
//! # Owners
//!
//! A root store keeps the tar's owners as they are (its containers see them through their own
//! maps or an idmapped mount). A rootless store cannot: the kernel's overlayfs shows the
//! owners on disk, and a normal user may only own files as itself. So a rootless store writes
//! the owners a container of that user will see: the layer is extracted as the user, then the
//! entries owned by anyone but root are given their ids from inside a user namespace that maps
//! the user's own id as 0 and its `/etc/subuid` and `/etc/subgid` ranges from 1 (through
//! newuidmap/newgidmap), the maps `@ns/core` gives a rootless container. uid 33 of the layer
//! is then `subuid_start + 32` on disk and 33 in the container. Owners outside those ranges
//! are refused (`EOVERFLOW`, naming the entry). Set-user-ID bits and `security.capability`
//! (which a chown drops) are set again there, the latter stored by the kernel for the
//! namespace's root. Such a tree can only be removed from the same namespace
//! ([`unpack::remove_layer`]). The cost, measured by `tools/bench-unpack.mjs` on a 221 MB
//! layer of 13867 entries all owned by uid 33 (the worst case: every entry is chowned in the
//! namespace): in the quietest run, 1.64 s against 1.42 s for a root store (gzip) and 1.01 s
//! against 1.15 s (zstd); over five rounds on a machine shared with other work the two are
//! within each other's noise. Storing the owners in an attribute instead would need
//! fuse-overlayfs to show them; the kernel's overlayfs would show every file as the user's.
//! Device nodes cannot be made without CAP_MKNOD: a rootless store leaves them out (counted
//! in `skipped`), as Docker does in a user namespace; a container's `/dev` comes from the
//! runtime.

// ImageError carries the step, path, entry, digests and a hint; it is returned only on the
// failure path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod digest;
pub mod error;
pub mod extract;
pub mod fsops;
pub mod lookup;
pub mod media;
pub mod overlay;
pub mod unpack;
pub mod userns;

pub use error::ImageError;
pub use extract::{OverlayXattrs, Owners};
pub use unpack::{remove_layer, unpack_layer, UnpackRequest, Unpacked, LAYER_ROOT, MARKER};
