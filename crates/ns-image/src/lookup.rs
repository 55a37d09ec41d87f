//! A path of an image as its container will see it, read from the unpacked layers without
//! mounting them: the layers are looked at from the top down, as overlayfs does, so that a
//! whiteout (a 0/0 character device) hides what is below it, a directory marked opaque hides
//! the lower layers' entries under it, and a file or a directory of an upper layer shadows a
//! lower one. Symbolic links met on the way are followed within the image (an absolute
//! target from the image's root, never the host's), at most 16 of them. Used to resolve user
//! and group names in the image's `/etc/passwd` and `/etc/group`, and to give a volume the
//! owner of the image's directory.
//!
//! Every name is opened beneath its layer's root descriptor (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), one component at a time: nothing of the host is
//! reached, whatever a layer holds.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use ns_runtime::sys::Errno;

use crate::error::{ImageError, Result};
use crate::extract::OverlayXattrs;
use crate::fsops::{
    self as fs, c, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};

/// What a path of the image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A regular file's first bytes (at most the limit asked for).
    pub data: Option<Vec<u8>>,
}

const MAX_LINKS: usize = 16;

/// Look `path` up in the layers (base first) as the overlay of them shows it; `read` bytes of
/// it are read when it is a regular file. None: the image has nothing there.
pub fn lookup(
    layers: &[PathBuf],
    path: &str,
    xattrs: OverlayXattrs,
    read: usize,
) -> Result<Option<Found>> {
    let roots: Vec<OwnedFd> = layers
        .iter()
        .rev()
        .map(|l| {
            let shown = l.display().to_string();
            let cl = c(l.as_os_str().as_encoded_bytes())
                .map_err(|e| ImageError::sys("open layer", Some(&shown), e))?;
            fs::openat(libc::AT_FDCWD, &cl, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| ImageError::sys("open layer", Some(&shown), e))
        })
        .collect::<Result<_>>()?;
    let mut want: Vec<String> = split(path);
    for _ in 0..=MAX_LINKS {
        match find(&roots, &want, xattrs)? {
            Step::Missing => return Ok(None),
            Step::Found(layer, st) => {
                let data = if st.st_mode & libc::S_IFMT == libc::S_IFREG && read > 0 {
                    Some(read_file(&roots[layer], &want, read)?)
                } else {
                    None
                };
                return Ok(Some(Found { mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, data }));
            }
            Step::Link { at, target } => {
                // The link replaces the components up to it: absolute from the image's root,
                // relative from the directory that holds it.
                let rest = want.split_off(at + 1);
                want.pop();
                let base = if target.starts_with('/') { String::new() } else { want.join("/") };
                want = split(&format!("{base}/{target}/{}", rest.join("/")));
            }
        }
    }
    Err(ImageError::sys("resolve in the image", Some(path), Errno(libc::ELOOP)))
}

/// The components of `path`, `..` taken lexically (never above the image's root).
fn split(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_owned()),
        }
    }
    out
}

enum Step {
    Missing,
    /// In the layer of this index (top first), with its stat.
    Found(usize, libc::stat),
    /// The component at `at` is a symbolic link to `target`.
    Link {
        at: usize,
        target: String,
    },
}

fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

fn stat_at(dir: &OwnedFd, name: &str) -> Result<Option<libc::stat>> {
    let cn = c(name.as_bytes()).map_err(|e| ImageError::sys("look up", Some(name), e))?;
    // SAFETY: a zeroed stat is a valid buffer for fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor, C string and buffer.
    let r =
        unsafe { libc::fstatat(dir.as_raw_fd(), cn.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        let e = Errno::last();
        return match e.0 {
            libc::ENOENT | libc::ENOTDIR => Ok(None),
            _ => Err(ImageError::sys("look up", Some(name), e)),
        };
    }
    Ok(Some(st))
}

/// Beneath `dir`, never through a link, never onto another filesystem.
const BENEATH: u64 =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

fn open_dir(dir: &OwnedFd, name: &str) -> Result<OwnedFd> {
    let cn = c(name.as_bytes()).map_err(|e| ImageError::sys("open", Some(name), e))?;
    fs::openat2(dir.as_raw_fd(), &cn, libc::O_RDONLY | libc::O_DIRECTORY, BENEATH)
        .map_err(|e| ImageError::sys("open", Some(name), e))
}

fn opaque(dir: &OwnedFd, xattrs: OverlayXattrs) -> bool {
    let mut v = [0u8; 4];
    // SAFETY: reads an attribute into a stack buffer.
    let n = unsafe {
        libc::fgetxattr(dir.as_raw_fd(), xattrs.opaque().as_ptr(), v.as_mut_ptr().cast(), v.len())
    };
    n == 1 && v[0] == b'y'
}

/// The top layer that has `want`, honouring whiteouts and opaque directories on the way.
fn find(roots: &[OwnedFd], want: &[String], xattrs: OverlayXattrs) -> Result<Step> {
    'layers: for (i, root) in roots.iter().enumerate() {
        let mut dir =
            fs::openat2(root.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, BENEATH)
                .map_err(|e| ImageError::sys("open layer", None, e))?;
        let mut stop_below = opaque(&dir, xattrs);
        if want.is_empty() {
            // SAFETY: a zeroed stat is a valid buffer for fstat.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a valid descriptor and buffer.
            unsafe { libc::fstat(dir.as_raw_fd(), &mut st) };
            return Ok(Step::Found(i, st));
        }
        for (k, part) in want.iter().enumerate() {
            let last = k + 1 == want.len();
            let Some(st) = stat_at(&dir, part)? else {
                if stop_below {
                    return Ok(Step::Missing);
                }
                continue 'layers;
            };
            if is_whiteout(&st) {
                return Ok(Step::Missing);
            }
            let ty = st.st_mode & libc::S_IFMT;
            if ty == libc::S_IFLNK {
                let target = read_link(&dir, part)?;
                return Ok(Step::Link { at: k, target });
            }
            if last {
                return Ok(Step::Found(i, st));
            }
            if ty != libc::S_IFDIR {
                // A file where a directory should be: nothing below it, in any layer.
                return Ok(Step::Missing);
            }
            dir = open_dir(&dir, part)?;
            if opaque(&dir, xattrs) {
                stop_below = true;
            }
        }
    }
    Ok(Step::Missing)
}

fn read_link(dir: &OwnedFd, name: &str) -> Result<String> {
    let cn = c(name.as_bytes()).map_err(|e| ImageError::sys("read link", Some(name), e))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: a valid descriptor, C string and buffer of its length.
    let n = unsafe {
        libc::readlinkat(dir.as_raw_fd(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    };
    if n < 0 {
        return Err(ImageError::sys("read link", Some(name), Errno::last()));
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn read_file(root: &OwnedFd, want: &[String], limit: usize) -> Result<Vec<u8>> {
    let joined = want.join("/");
    let shown = format!("/{joined}");
    let cn =
        CString::new(joined).map_err(|_| ImageError::invalid("path", "contains a NUL byte"))?;
    let fd = fs::openat2(root.as_raw_fd(), &cn, libc::O_RDONLY | libc::O_NOFOLLOW, BENEATH)
        .map_err(|e| ImageError::sys("open", Some(&shown), e))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    while out.len() < limit {
        let want = buf.len().min(limit - out.len());
        // SAFETY: reads into a stack buffer of at least `want` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
        if n < 0 {
            return Err(ImageError::sys("read", Some(&shown), Errno::last()));
        }
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn upper_layers_shadow_and_links_stay_in_the_image() {
        let s = Scratch(std::env::temp_dir().join(format!("ns-lookup-{}", std::process::id())));
        let (l1, l2) = (s.0.join("l1"), s.0.join("l2"));
        for d in ["l1/etc", "l1/opt/a", "l2/etc", "l2/usr"] {
            std::fs::create_dir_all(s.0.join(d)).unwrap();
        }
        std::fs::write(l1.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(l1.join("etc/group"), "old\n").unwrap();
        std::fs::write(l2.join("etc/group"), "new\n").unwrap();
        std::fs::write(l1.join("opt/a/f"), "f").unwrap();
        std::os::unix::fs::symlink("../etc", l2.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("/etc/group", l2.join("abs")).unwrap();
        let layers = vec![l1, l2.clone()];
        let read =
            |p: &str| lookup(&layers, p, OverlayXattrs::User, 100).unwrap().and_then(|f| f.data);
        assert_eq!(read("/etc/group").as_deref(), Some(&b"new\n"[..]));
        assert_eq!(read("/etc/passwd").as_deref(), Some(&b"root:x:0:0::/root:/bin/sh\n"[..]));
        assert_eq!(read("/usr/etc/group").as_deref(), Some(&b"new\n"[..]));
        assert_eq!(read("/abs").as_deref(), Some(&b"new\n"[..]));
        assert_eq!(read("/opt/a/f").as_deref(), Some(&b"f"[..]));
        assert!(lookup(&layers, "/nope", OverlayXattrs::User, 0).unwrap().is_none());
        // A link that climbs out of the root stays at the image's root.
        std::os::unix::fs::symlink("../../../../etc/group", l2.join("climb")).unwrap();
        assert_eq!(read("/climb").as_deref(), Some(&b"new\n"[..]));
        // A file of an upper layer where a lower one has a directory hides what is below.
        std::fs::write(l2.join("opt"), "x").unwrap();
        assert!(lookup(&layers, "/opt/a/f", OverlayXattrs::User, 0).unwrap().is_none());
        let dir = lookup(&layers, "/etc", OverlayXattrs::User, 0).unwrap().unwrap();
        assert_eq!(dir.mode & libc::S_IFMT, libc::S_IFDIR);
    }
}
