//! Tar streams written by hand (so that every odd or hostile entry can be made), blobs of them,
//! and scratch directories.

#![allow(dead_code, clippy::result_large_err)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ns_image::digest::Hasher;
use ns_image::{unpack_layer, ImageError, OverlayXattrs, Owners, UnpackRequest, Unpacked};

pub fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// Skip (with the reason printed) unless root.
#[macro_export]
macro_rules! root_only {
    () => {
        if !common::is_root() {
            eprintln!("SKIP {}: needs root", std::thread::current().name().unwrap_or("test"));
            return;
        }
    };
}

pub struct Entry<'a> {
    pub name: &'a [u8],
    pub kind: u8,
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub link: &'a [u8],
    pub dev: (u32, u32),
}

impl Default for Entry<'_> {
    fn default() -> Self {
        Entry {
            name: b"",
            kind: b'0',
            data: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: b"",
            dev: (0, 0),
        }
    }
}

#[derive(Default)]
pub struct Tar {
    pub buf: Vec<u8>,
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

impl Tar {
    pub fn raw(&mut self, e: &Entry) {
        let mut h = [0u8; 512];
        let n = e.name.len().min(100);
        h[..n].copy_from_slice(&e.name[..n]);
        octal(&mut h[100..108], e.mode as u64);
        octal(&mut h[108..116], e.uid as u64);
        octal(&mut h[116..124], e.gid as u64);
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], e.mtime);
        h[156] = e.kind;
        let l = e.link.len().min(100);
        h[157..157 + l].copy_from_slice(&e.link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], e.dev.0 as u64);
        octal(&mut h[337..345], e.dev.1 as u64);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{:06o}\0 ", sum);
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(&Entry { name: name.as_bytes(), data, ..Default::default() });
        self
    }
    pub fn file_as(&mut self, name: &str, data: &[u8], mode: u32, uid: u32, gid: u32) -> &mut Self {
        self.raw(&Entry { name: name.as_bytes(), data, mode, uid, gid, ..Default::default() });
        self
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(&Entry { name: name.as_bytes(), kind: b'5', mode: 0o755, ..Default::default() });
        self
    }
    pub fn dir_as(&mut self, name: &str, mode: u32, uid: u32, gid: u32) -> &mut Self {
        self.raw(&Entry {
            name: name.as_bytes(),
            kind: b'5',
            mode,
            uid,
            gid,
            ..Default::default()
        });
        self
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(&Entry {
            name: name.as_bytes(),
            kind: b'2',
            mode: 0o777,
            link: target.as_bytes(),
            ..Default::default()
        });
        self
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(&Entry {
            name: name.as_bytes(),
            kind: b'1',
            link: target.as_bytes(),
            ..Default::default()
        });
        self
    }
    /// A PAX extended header (`x`) with these records, for the entry that follows.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + body.to_string().len();
            if len.to_string().len() + body != len {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.raw(&Entry { name: b"./PaxHeaders/x", kind: b'x', data: &data, ..Default::default() });
        self
    }
    /// A GNU long name (`L`) for the entry that follows.
    pub fn gnu_longname(&mut self, name: &str) -> &mut Self {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        self.raw(&Entry { name: b"././@LongLink", kind: b'L', data: &data, ..Default::default() });
        self
    }
    pub fn finish(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.buf);
        b.extend(std::iter::repeat_n(0u8, 1024));
        b
    }
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 3).unwrap()
}

pub fn sha(b: &[u8]) -> String {
    let mut h = Hasher::default();
    h.update(b);
    h.finish()
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("ns-image-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    /// Names in the scratch directory (staging directories left behind would show here).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Give the owner back every directory under `p` (overlayfs leaves `work/work` with mode 0,
/// which an unprivileged owner could not empty).
fn open_up(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if lstat(p).is_some_and(|m| m.is_dir()) {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            open_up(&e.path());
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.0).is_err() {
            open_up(&self.0);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The store's flavour for this caller's tests: a root store, or (unprivileged) a store with
/// user.* attributes whose owners all stay the caller's.
pub fn caller_store() -> (Owners, OverlayXattrs) {
    if is_root() {
        (Owners::Keep, OverlayXattrs::Trusted)
    } else {
        let (uids, gids) = ns_image::userns::maps_for_caller();
        (Owners::Map { uids, gids }, OverlayXattrs::User)
    }
}

/// Write `blob` into `s` and unpack it into `s/<dest>`.
pub fn unpack_blob(
    s: &Scratch,
    blob: &[u8],
    dest: &str,
    media: Option<&str>,
    diff_id: Option<String>,
    owners: Owners,
    xattrs: OverlayXattrs,
) -> Result<Unpacked, ImageError> {
    let bp = s.path(&format!("{dest}.blob"));
    std::fs::write(&bp, blob).unwrap();
    let req = UnpackRequest {
        blob: bp.clone(),
        media_type: media.map(str::to_owned),
        dest: s.path(dest),
        digest: sha(blob),
        diff_id,
        owners,
        xattrs,
    };
    let r = unpack_layer(&req);
    std::fs::remove_file(&bp).unwrap();
    r
}

/// Unpack an uncompressed tar as this caller's store would.
pub fn unpack_tar(s: &Scratch, tar: &[u8], dest: &str) -> Result<Unpacked, ImageError> {
    let (o, x) = caller_store();
    unpack_blob(
        s,
        &gzip(tar),
        dest,
        Some("application/vnd.oci.image.layer.v1.tar+gzip"),
        Some(sha(tar)),
        o,
        x,
    )
}

pub fn lstat(p: &Path) -> Option<std::fs::Metadata> {
    std::fs::symlink_metadata(p).ok()
}

pub fn mode(p: &Path) -> u32 {
    lstat(p).unwrap().mode()
}

pub fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let cp = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let cn = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and buffer.
    let n =
        unsafe { libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}
