//! Images: layer blobs unpacked into layer directories and the overlay helpers of
//! `ns-image`, off the event loop. Errors reject with a JS `Error` whose `code` is the
//! image error's (`EDIGEST`, `EUNSAFE`, `EFORMAT`, `EINVAL`, an errno name) and which carries
//! `step`, `path`, `entry`, `errno`, `hint`, `expected` and `got` where they apply.

// The napi registrations that use these items are not compiled into the test build.
#![cfg_attr(test, allow(dead_code))]
// ImageError is returned only on the failure path (as ns-image itself says).
#![allow(clippy::result_large_err)]

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use ns_image::overlay::{self, OverlaySpec};
use ns_image::{ImageError, OverlayXattrs, Owners, UnpackRequest};
use ns_runtime::spec::IdMapping;

#[napi(object)]
#[derive(Clone)]
pub struct LayerIdMapping {
    #[napi(js_name = "containerID")]
    pub container_id: u32,
    #[napi(js_name = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[napi(object)]
pub struct UnpackLayerOptions {
    /// The blob file (`<store>/blobs/sha256/<hex>`).
    pub blob: String,
    /// The layer's media type (`application/vnd.oci.image.layer.v1.tar+gzip`, Docker's
    /// `...rootfs.diff.tar.gzip`); absent: the blob's first bytes decide.
    pub media_type: Option<String>,
    /// The layer directory to make; its parent must exist. The files go to `<dest>/diff`.
    pub dest: String,
    /// The blob's digest, `sha256:<hex>`, checked while it streams.
    pub digest: String,
    /// The uncompressed digest the image config names (`rootfs.diff_ids[i]`), when known.
    pub diff_id: Option<String>,
    /// A rootless store (owners mapped through the caller's subordinate ids, `user.overlay.*`
    /// attributes). Default: true unless the caller is root.
    pub rootless: Option<bool>,
    /// For a rootless store: the maps of the user namespace its containers run in. Default:
    /// the caller's id as 0 and its /etc/subuid (/etc/subgid) range from 1.
    pub uid_mappings: Option<Vec<LayerIdMapping>>,
    pub gid_mappings: Option<Vec<LayerIdMapping>>,
}

#[napi(object)]
pub struct UnpackedLayer {
    pub digest: String,
    /// The sha256 of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of the uncompressed tar stream.
    pub size: i64,
    /// Entries applied.
    pub files: i64,
    /// Entries or attributes left out (device nodes in a rootless store, attributes the
    /// caller may not set, overlay attributes the layer carried).
    pub skipped: i64,
    /// `tar`, `tar+gzip` or `tar+zstd`, as read from the blob.
    pub compression: String,
    pub rootless: bool,
    /// True when `dest` held this layer already and nothing was unpacked.
    pub reused: bool,
    /// The overlay lower directory: `<dest>/diff`.
    pub root: String,
}

fn maps(v: Option<Vec<LayerIdMapping>>) -> Option<Vec<IdMapping>> {
    v.map(|m| {
        m.into_iter()
            .map(|m| IdMapping { container_id: m.container_id, host_id: m.host_id, size: m.size })
            .collect()
    })
}

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// The store flavour asked for: a root store keeps owners; a rootless one maps them.
fn owners_for(
    rootless: Option<bool>,
    uids: Option<Vec<LayerIdMapping>>,
    gids: Option<Vec<LayerIdMapping>>,
) -> (Owners, OverlayXattrs) {
    if !rootless.unwrap_or(!is_root()) {
        return (Owners::Keep, OverlayXattrs::Trusted);
    }
    let (du, dg) = ns_image::userns::maps_for_caller();
    let owners = Owners::Map { uids: maps(uids).unwrap_or(du), gids: maps(gids).unwrap_or(dg) };
    (owners, OverlayXattrs::User)
}

/// The rejection: a JS Error with the image error's fields.
fn reject(env: &Env, e: ImageError) -> Error {
    let make = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.message.clone()))?;
        obj.set("code", e.code.as_str())?;
        obj.set("step", e.step.as_str())?;
        for (k, v) in [
            ("path", &e.path),
            ("entry", &e.entry),
            ("hint", &e.hint),
            ("expected", &e.expected),
            ("got", &e.got),
        ] {
            if let Some(v) = v {
                obj.set(k, v.as_str())?;
            }
        }
        if let Some(n) = e.errno {
            obj.set("errno", n)?;
        }
        Ok(Error::from(obj.to_unknown()))
    };
    make().unwrap_or_else(|_| Error::new(Status::GenericFailure, e.message.clone()))
}

/// Run `f`, a panic turned into an error (none should happen; none may cross into Node).
fn guarded<T>(
    step: &str,
    f: impl FnOnce() -> ns_image::error::Result<T>,
) -> ns_image::error::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(ImageError::format(step, None, "an internal error occurred (a bug of ns)"))
    })
}

pub struct UnpackLayer {
    req: Option<UnpackRequest>,
    dest: PathBuf,
}

impl Task for UnpackLayer {
    type Output = ns_image::error::Result<ns_image::Unpacked>;
    type JsValue = UnpackedLayer;

    fn compute(&mut self) -> Result<Self::Output> {
        let req = self.req.take();
        Ok(guarded("unpack layer", || match req {
            Some(r) => ns_image::unpack_layer(&r),
            None => Err(ImageError::invalid("task", "already run")),
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        let u = out.map_err(|e| reject(&env, e))?;
        Ok(UnpackedLayer {
            digest: u.digest,
            diff_id: u.diff_id,
            size: u.size as i64,
            files: u.files as i64,
            skipped: u.skipped as i64,
            compression: u.compression,
            rootless: u.rootless,
            reused: u.reused,
            root: self.dest.join(ns_image::LAYER_ROOT).display().to_string(),
        })
    }
}

/// Unpack a layer blob into the layer directory `dest` (files in `dest/diff`, an overlay
/// lower directory), verifying its digest and diff_id as it streams; nothing is left at
/// `dest` unless all of it is there. A `dest` holding this layer already is reused.
#[napi(ts_return_type = "Promise<UnpackedLayer>")]
pub fn unpack_layer(opts: UnpackLayerOptions) -> AsyncTask<UnpackLayer> {
    let (owners, xattrs) = owners_for(opts.rootless, opts.uid_mappings, opts.gid_mappings);
    let dest = PathBuf::from(opts.dest);
    let req = UnpackRequest {
        blob: opts.blob.into(),
        media_type: opts.media_type,
        dest: dest.clone(),
        digest: opts.digest,
        diff_id: opts.diff_id,
        owners,
        xattrs,
    };
    AsyncTask::new(UnpackLayer { req: Some(req), dest })
}

/// A job of the image module on a thread of the pool, its error a rich rejection.
pub struct Job<T: Send + 'static> {
    step: &'static str,
    f: Option<Box<dyn FnOnce() -> ns_image::error::Result<T> + Send>>,
}

impl<T: Send + 'static> Job<T> {
    fn new(
        step: &'static str,
        f: impl FnOnce() -> ns_image::error::Result<T> + Send + 'static,
    ) -> Self {
        Job { step, f: Some(Box::new(f)) }
    }
}

impl<T: Send + ToNapiValue + TypeName + 'static> Task for Job<T> {
    type Output = ns_image::error::Result<T>;
    type JsValue = T;

    fn compute(&mut self) -> Result<Self::Output> {
        let f = self.f.take();
        Ok(guarded(self.step, || match f {
            Some(f) => f(),
            None => Err(ImageError::invalid("task", "already run")),
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<T> {
        out.map_err(|e| reject(&env, e))
    }
}

#[napi(object)]
pub struct RemoveLayerOptions {
    /// A layer directory made by `unpackLayer`.
    pub path: String,
    /// As given to `unpackLayer`: a rootless layer is removed from inside its user namespace
    /// (its files belong to subordinate ids the caller cannot remove as itself).
    pub rootless: Option<bool>,
    pub uid_mappings: Option<Vec<LayerIdMapping>>,
    pub gid_mappings: Option<Vec<LayerIdMapping>>,
}

/// Remove a layer directory (its marker first, so it is never taken for complete again).
#[napi(ts_return_type = "Promise<void>")]
pub fn remove_layer(opts: RemoveLayerOptions) -> AsyncTask<Job<()>> {
    let (owners, _) = owners_for(opts.rootless, opts.uid_mappings, opts.gid_mappings);
    let path = PathBuf::from(opts.path);
    AsyncTask::new(Job::new("remove layer", move || ns_image::remove_layer(&path, &owners)))
}

#[napi(object)]
pub struct ProbeOverlayOptions {
    /// A directory on the filesystem of the store (the probe works in a subdirectory it
    /// removes).
    pub dir: String,
    /// Probe the rootless way (a user namespace, `userxattr`). Default: true unless root.
    pub rootless: Option<bool>,
}

#[napi(object)]
pub struct OverlayProbe {
    /// An overlay with a whiteout, an opaque directory and an upper layer was mounted and
    /// showed what it should.
    pub ok: bool,
    /// Probed in a user namespace with `userxattr`.
    pub userns: bool,
    pub reason: Option<String>,
    pub hint: Option<String>,
}

/// Whether overlayfs works for this caller on the filesystem of `dir`: a real mount, in a
/// child's own mount (and user) namespace, so callers can say why instead of falling back.
#[napi(ts_return_type = "Promise<OverlayProbe>")]
pub fn probe_overlay(opts: ProbeOverlayOptions) -> AsyncTask<Job<OverlayProbe>> {
    let userns = opts.rootless.unwrap_or(!is_root());
    let dir = PathBuf::from(opts.dir);
    AsyncTask::new(Job::new("probe overlay", move || {
        let p = overlay::probe(&dir, userns);
        Ok(OverlayProbe { ok: p.ok, userns: p.userns, reason: p.reason, hint: p.hint })
    }))
}

#[napi(object)]
pub struct OverlayMountOptions {
    /// Lower directories in image order, base first (each layer's `root`).
    pub layers: Vec<String>,
    pub upper: Option<String>,
    pub work: Option<String>,
    /// `userxattr`: for a mount inside a user namespace (a rootless store).
    pub userxattr: Option<bool>,
}

/// The `mount(2)` options of an overlay of these layers (`lowerdir=top:...:base,upperdir=...,
/// workdir=...[,userxattr]`), for an OCI spec's mount entry. Throws (code `EINVAL`) past the
/// page `mount(2)` takes: mount those with the new mount API instead.
#[napi]
pub fn overlay_mount_options(env: Env, opts: OverlayMountOptions) -> Result<String> {
    let spec = OverlaySpec {
        layers: opts.layers.into_iter().map(PathBuf::from).collect(),
        upper: opts.upper.map(PathBuf::from),
        work: opts.work.map(PathBuf::from),
        userxattr: opts.userxattr.unwrap_or(false),
    };
    spec.mount_options().map_err(|e| reject(&env, e))
}

#[napi(object)]
pub struct LookupImagePathOptions {
    /// The image's layer directories (each layer's `root`, its `diff`), base first.
    pub layers: Vec<String>,
    /// An absolute path in the image (`/etc/passwd`).
    pub path: String,
    /// A rootless store (`user.overlay.opaque`); default: true unless root.
    pub rootless: Option<bool>,
    /// Read at most this many bytes of a regular file (default 0: only its stat).
    pub read: Option<u32>,
}

#[napi(object)]
pub struct ImagePath {
    /// False: the image has nothing at this path (or a whiteout hides it).
    pub found: bool,
    pub mode: u32,
    /// Owners as stored in the layer (a rootless store's are mapped host ids).
    pub uid: u32,
    pub gid: u32,
    /// The first bytes of a regular file, when asked for.
    pub data: Option<Buffer>,
}

/// A path of an image as the overlay of its layers shows it (whiteouts and opaque directories
/// honoured, links followed within the image), read from the layer directories without
/// mounting them.
#[napi(ts_return_type = "Promise<ImagePath>")]
pub fn lookup_image_path(opts: LookupImagePathOptions) -> AsyncTask<Job<ImagePath>> {
    let xattrs = if opts.rootless.unwrap_or(!is_root()) {
        OverlayXattrs::User
    } else {
        OverlayXattrs::Trusted
    };
    let layers: Vec<PathBuf> = opts.layers.into_iter().map(PathBuf::from).collect();
    let (path, read) = (opts.path, opts.read.unwrap_or(0) as usize);
    AsyncTask::new(Job::new("look up in the image", move || {
        Ok(match ns_image::lookup::lookup(&layers, &path, xattrs, read)? {
            Some(f) => ImagePath {
                found: true,
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
                data: f.data.map(Buffer::from),
            },
            None => ImagePath { found: false, mode: 0, uid: 0, gid: 0, data: None },
        })
    }))
}
