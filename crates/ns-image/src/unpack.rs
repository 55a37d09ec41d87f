//! One layer blob into one layer directory: streamed, verified, extracted into a staging
//! directory beside the destination, made durable, then renamed into place.
//!
//! Two threads share the work: one reads the blob, hashes it (its digest), decompresses it and
//! hashes the tar stream (its `diff_id`); the other parses the tar and writes the files. They
//! pass buffers of 256 KiB through a bounded channel, so memory stays flat whatever the size.
//!
//! Layout of a layer directory `dest`:
//! - `dest/diff/`: the layer's files, an overlayfs lower directory (`LAYER_ROOT`);
//! - `dest/layer.json`: what was unpacked (`MARKER`), written before the rename, so a `dest`
//!   that exists is complete.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use ns_runtime::spec::IdMapping;
use ns_runtime::sys::Errno;

use crate::digest::{self, Hasher, HashingReader};
use crate::error::{ImageError, Result};
use crate::extract::{Extractor, OverlayXattrs, Owners};
use crate::fsops::{self as fs, c};
use crate::media::{self, Compression};
use crate::userns;

/// The directory inside a layer directory that holds its files (the overlay lower dir).
pub const LAYER_ROOT: &str = "diff";
/// The record of a complete layer directory.
pub const MARKER: &str = "layer.json";

const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct UnpackRequest {
    pub blob: PathBuf,
    /// The layer's media type; `None` leaves the compression to the blob's first bytes.
    pub media_type: Option<String>,
    /// The layer directory to make (its parent must exist).
    pub dest: PathBuf,
    /// The blob's digest (`sha256:...`), checked against what is read.
    pub digest: String,
    /// The uncompressed digest the image config names (`rootfs.diff_ids[i]`), when known.
    pub diff_id: Option<String>,
    pub owners: Owners,
    pub xattrs: OverlayXattrs,
}

impl UnpackRequest {
    /// A request for a store of the calling user: a root store keeps owners and uses
    /// `trusted.overlay.*`; any other user's store maps owners through its subordinate ranges
    /// (see `userns`) and uses `user.overlay.*`.
    pub fn for_caller(
        blob: PathBuf,
        media_type: Option<String>,
        dest: PathBuf,
        digest: String,
        diff_id: Option<String>,
    ) -> Self {
        // SAFETY: plain syscall.
        let rootless = unsafe { libc::geteuid() } != 0;
        let (owners, xattrs) = if rootless {
            let (uids, gids) = userns::maps_for_caller();
            (Owners::Map { uids, gids }, OverlayXattrs::User)
        } else {
            (Owners::Keep, OverlayXattrs::Trusted)
        };
        UnpackRequest { blob, media_type, dest, digest, diff_id, owners, xattrs }
    }
}

/// What was unpacked (also the content of `layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpacked {
    pub digest: String,
    pub diff_id: String,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
    /// Entries applied.
    pub files: u64,
    /// Entries or attributes left out (see `extract::Stats`).
    pub skipped: u64,
    /// `tar`, `tar+gzip` or `tar+zstd`, as read from the blob.
    pub compression: String,
    /// Whether the owners were mapped for a rootless store (`user.overlay.*` attributes).
    pub rootless: bool,
    /// Set (not stored) when `dest` held this layer already and nothing was unpacked.
    #[serde(default, skip_serializing)]
    pub reused: bool,
}

struct Produced {
    /// The blob's digest and length (always computed to the end of the file).
    blob: std::io::Result<(String, u64)>,
    /// The tar stream's digest and length, or why decompression failed (`None`: it stopped
    /// because the extraction did, which says why).
    diff: std::result::Result<(String, u64), Option<ImageError>>,
}

/// The tar stream handed over by the reading thread, buffer by buffer.
struct ChunkReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    back: mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.eof {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    let old = std::mem::replace(&mut self.cur, v);
                    let _ = self.back.send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => self.eof = true,
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl ChunkReader {
    /// Read to the end of the stream (what follows the tar's end blocks is hashed too).
    fn drain(&mut self) -> std::io::Result<()> {
        loop {
            self.pos = self.cur.len();
            let mut b = [0u8; 1];
            if self.read(&mut b)? == 0 {
                return Ok(());
            }
        }
    }
}

type Src = BufReader<HashingReader<File>>;

fn produce(
    mut src: Src,
    comp: Compression,
    tx: mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    pool: mpsc::Receiver<Vec<u8>>,
    shown: &str,
) -> Produced {
    let diff = (|| {
        let mut hasher = (comp != Compression::None).then(Hasher::default);
        let mut dec: Box<dyn Read + '_> = match comp {
            Compression::None => Box::new(&mut src),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(&mut src)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut src)
                    .map_err(|e| Some(ImageError::io("start decompressing", Some(shown), &e)))?,
            ),
        };
        let mut total = 0u64;
        loop {
            let mut chunk = pool.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let mut n = 0;
            while n < CHUNK {
                match dec.read(&mut chunk[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let what = if comp == Compression::None { "read" } else { "decompress" };
                        let err = ImageError::io(what, Some(shown), &e);
                        let _ = tx.send(Err(std::io::Error::other(err.message.clone())));
                        return Err(Some(err));
                    }
                }
            }
            if n == 0 {
                return Ok(hasher.map(|h| (h.finish(), total)));
            }
            chunk.truncate(n);
            total += n as u64;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if tx.send(Ok(chunk)).is_err() {
                // The extraction stopped (it will say why).
                return Err(None);
            }
        }
    })();
    drop(tx);
    // Whatever happened, the whole blob is hashed: a corrupt blob is named as such.
    let blob = src.get_mut().drain().map(|_| {
        let h = std::mem::take(&mut src.get_mut().hasher);
        let len = h.len;
        (h.finish(), len)
    });
    let diff = match (diff, &blob) {
        (Ok(Some(d)), _) => Ok(d),
        (Ok(None), Ok(b)) => Ok(b.clone()),
        (Ok(None), Err(e)) => Err(Some(ImageError::io("read", Some(shown), e))),
        (Err(e), _) => Err(e),
    };
    Produced { blob, diff }
}

fn dirfd_of(path: &Path, what: &str) -> Result<OwnedFd> {
    let shown = path.display().to_string();
    let cp = c(path.as_os_str().as_encoded_bytes())
        .map_err(|e| ImageError::sys(what, Some(&shown), e))?;
    fs::openat(libc::AT_FDCWD, &cp, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| ImageError::sys(what, Some(&shown), e))
}

fn read_marker(dest: &Path) -> Option<Unpacked> {
    let text = std::fs::read_to_string(dest.join(MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The staging directory, removed on drop unless it was renamed into place.
struct Staging {
    parent: OwnedFd,
    name: std::ffi::CString,
    path: PathBuf,
    /// Set once owners of the rootless maps are on disk: only that namespace can remove it.
    mapped: Option<(Vec<IdMapping>, Vec<IdMapping>)>,
    done: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some((u, g)) = &self.mapped {
            if userns::remove_tree(&self.path, u, g).is_ok() {
                return;
            }
        }
        let _ = fs::remove_tree_at(self.parent.as_raw_fd(), &self.name);
    }
}

/// Staging directories of this layer left by unpacks whose process is gone (killed midway).
fn remove_stale_staging(parent: &Path, name: &str, owners: &Owners) {
    let prefix = format!(".{name}.unpack-");
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let f = e.file_name();
        let Some(rest) = f.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = parent.join(&f);
        if std::fs::remove_dir_all(&p).is_err() {
            if let Owners::Map { uids, gids } = owners {
                let _ = userns::remove_tree(&p, uids, gids);
            }
        }
    }
}

/// Unpack the layer blob of `req` into `req.dest`.
pub fn unpack_layer(req: &UnpackRequest) -> Result<Unpacked> {
    let digest = digest::parse("digest", &req.digest)?;
    let diff_id = req.diff_id.as_deref().map(|d| digest::parse("diffId", d)).transpose()?;
    let declared = media::from_media_type(req.media_type.as_deref())?;
    let blob_shown = req.blob.display().to_string();
    let dest_shown = req.dest.display().to_string();
    let rootless = matches!(req.owners, Owners::Map { .. });

    // Unpacked once: a complete layer directory is reused.
    if let Some(m) = read_marker(&req.dest) {
        if m.digest == digest {
            return Ok(Unpacked { reused: true, ..m });
        }
    }
    if std::fs::symlink_metadata(&req.dest).is_ok() {
        return Err(ImageError::sys("unpack into", Some(&dest_shown), Errno(libc::EEXIST))
            .with_hint("the destination exists but is not this layer; remove it first"));
    }
    let name =
        req.dest.file_name().ok_or_else(|| ImageError::invalid("dest", "must name a directory"))?;
    let parent_path = match req.dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = dirfd_of(&parent_path, "open the parent of the layer directory")?;

    let file =
        File::open(&req.blob).map_err(|e| ImageError::io("open blob", Some(&blob_shown), &e))?;
    let mut src: Src = BufReader::with_capacity(CHUNK, HashingReader::new(file));
    let head = src.fill_buf().map_err(|e| ImageError::io("read blob", Some(&blob_shown), &e))?;
    let comp = media::choose(declared, head, &blob_shown)?;

    remove_stale_staging(&parent_path, &name.to_string_lossy(), &req.owners);
    // Staging beside the destination (same filesystem: the rename is atomic).
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sname = format!(".{}.unpack-{}-{seq}", name.to_string_lossy(), std::process::id());
    let cname = c(sname.as_bytes())
        .map_err(|e| ImageError::sys("create staging for", Some(&dest_shown), e))?;
    fs::mkdirat(parent.as_raw_fd(), &cname, 0o700).map_err(|e| {
        ImageError::sys(
            "create a staging directory in",
            Some(&parent_path.display().to_string()),
            e,
        )
    })?;
    let mut staging =
        Staging { parent, name: cname, path: parent_path.join(&sname), mapped: None, done: false };
    let sfd = fs::openat(
        staging.parent.as_raw_fd(),
        &staging.name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| ImageError::sys("open", Some(&staging.path.display().to_string()), e))?;
    let croot = c(LAYER_ROOT.as_bytes()).map_err(|e| ImageError::sys("create", None, e))?;
    fs::mkdirat(sfd.as_raw_fd(), &croot, 0o755)
        .map_err(|e| ImageError::sys("create", Some(&staging.path.display().to_string()), e))?;
    let _ = fs::fchmodat(sfd.as_raw_fd(), &croot, 0o755);
    let root = fs::openat(
        sfd.as_raw_fd(),
        &croot,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| ImageError::sys("open", Some(&staging.path.display().to_string()), e))?;
    let root_keep = fs::openat(
        sfd.as_raw_fd(),
        &croot,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| ImageError::sys("open", Some(&staging.path.display().to_string()), e))?;

    // Read, hash, decompress on one thread; parse and write on this one.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(8);
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    let shown = blob_shown.clone();
    let reader = std::thread::Builder::new()
        .name("ns-image-read".into())
        .spawn(move || produce(src, comp, tx, back_rx, &shown))
        .map_err(|e| ImageError::io("start the reading thread for", Some(&blob_shown), &e))?;
    let mut ex = Extractor::new(root, req.owners.clone(), req.xattrs);
    let extracted = (|| -> Result<()> {
        let mut stream = ChunkReader { rx, back: back_tx, cur: Vec::new(), pos: 0, eof: false };
        {
            let mut archive = tar::Archive::new(&mut stream);
            let entries = archive
                .entries()
                .map_err(|e| ImageError::io("read the tar stream of", Some(&blob_shown), &e))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| {
                    ImageError::format("read the tar stream of", Some(&blob_shown), e.to_string())
                })?;
                ex.apply(&mut entry)?;
            }
        }
        stream.drain().map_err(|e| {
            ImageError::format("read the tar stream of", Some(&blob_shown), e.to_string())
        })
    })();
    let produced = reader
        .join()
        .map_err(|_| ImageError::format("read", Some(&blob_shown), "the reading thread failed"))?;

    // The blob's digest first: a corrupt or tampered blob is named as such, whatever broke.
    let (got, _) = produced.blob.map_err(|e| ImageError::io("read blob", Some(&blob_shown), &e))?;
    if got != digest {
        return Err(ImageError::digest("blob digest", &blob_shown, &digest, &got));
    }
    // Then a stream that could not be decompressed, then what the extraction refused.
    let (got_diff, size) = match (produced.diff, extracted) {
        (Err(Some(e)), _) => return Err(e),
        (_, Err(e)) => return Err(e),
        (Err(None), Ok(())) => {
            return Err(ImageError::format("read", Some(&blob_shown), "the stream stopped early"))
        }
        (Ok(d), Ok(())) => d,
    };
    if let Some(want) = &diff_id {
        if &got_diff != want {
            return Err(ImageError::digest("diff_id", &blob_shown, want, &got_diff));
        }
    }

    ex.finish()?;
    if let Owners::Map { uids, gids } = &req.owners {
        if !ex.chowns.is_empty() {
            staging.mapped = Some((uids.clone(), gids.clone()));
            userns::apply_owners(&root_keep, &ex.chowns, uids, gids)?;
        }
    }
    let stats = ex.stats;
    drop(ex);

    let out = Unpacked {
        digest: digest.clone(),
        diff_id: got_diff,
        size,
        files: stats.entries,
        skipped: stats.skipped,
        compression: comp.name().into(),
        rootless,
        reused: false,
    };
    // Durable before it is visible: the files, the marker, then the rename.
    let sshown = staging.path.display().to_string();
    let marker = serde_json::to_vec_pretty(&out).unwrap_or_default();
    let cmarker = c(MARKER.as_bytes()).map_err(|e| ImageError::sys("write", Some(&sshown), e))?;
    let mfd = fs::openat(
        sfd.as_raw_fd(),
        &cmarker,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o644,
    )
    .map_err(|e| ImageError::sys("write the marker in", Some(&sshown), e))?;
    fs::write_all(mfd.as_raw_fd(), &marker)
        .map_err(|e| ImageError::sys("write the marker in", Some(&sshown), e))?;
    drop(mfd);
    fs::syncfs(sfd.as_raw_fd()).map_err(|e| ImageError::sys("sync", Some(&sshown), e))?;
    let cdest = c(name.as_encoded_bytes())
        .map_err(|e| ImageError::sys("rename into", Some(&dest_shown), e))?;
    // SAFETY: valid descriptors and C strings; RENAME_NOREPLACE never replaces another's layer.
    let r = unsafe {
        libc::renameat2(
            staging.parent.as_raw_fd(),
            staging.name.as_ptr(),
            staging.parent.as_raw_fd(),
            cdest.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r < 0 {
        let e = Errno::last();
        // Another unpack of the same layer finished first: its result stands.
        if e.0 == libc::EEXIST || e.0 == libc::ENOTEMPTY {
            if let Some(m) = read_marker(&req.dest) {
                if m.digest == digest {
                    return Ok(Unpacked { reused: true, ..m });
                }
            }
        }
        return Err(ImageError::sys("rename the staging directory to", Some(&dest_shown), e));
    }
    staging.done = true;
    fs::fsync(staging.parent.as_raw_fd())
        .map_err(|e| ImageError::sys("sync", Some(&parent_path.display().to_string()), e))?;
    Ok(out)
}

/// Remove a layer directory made by `unpack_layer`. A rootless one holds files of the
/// subordinate ids, which only its user namespace may remove.
pub fn remove_layer(dest: &Path, owners: &Owners) -> Result<()> {
    let shown = dest.display().to_string();
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io("remove", Some(&shown), &e)),
        Ok(m) if !m.is_dir() => {
            return Err(ImageError::sys("remove layer", Some(&shown), Errno(libc::ENOTDIR)))
        }
        Ok(_) => {}
    }
    // Not complete any more before anything else goes.
    let _ = std::fs::remove_file(dest.join(MARKER));
    match owners {
        Owners::Map { uids, gids } => userns::remove_tree(dest, uids, gids),
        Owners::Keep => {
            std::fs::remove_dir_all(dest).map_err(|e| ImageError::io("remove", Some(&shown), &e))
        }
    }
}
