//! The nodes of a layer, one per entry type: regular (and GNU sparse) files with their data,
//! directories, hard links, device nodes and fifos, and the owner, attributes and times of
//! nodes without a descriptor of their own. A name already taken by an earlier entry is replaced.

use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};

use ns_runtime::sys::Errno;

use super::extractor::Extractor;
use super::meta::Meta;
use super::path::{clean, split_last, BENEATH};
use super::whiteout::is_whiteout;
use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

impl Extractor {
    /// Make a node with `make`; if the name is taken (by an earlier entry of the layer), the
    /// old one goes (a whole tree if it is a directory) and `make` is tried once more.
    pub(super) fn create<T>(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        raw: &[u8],
        mut make: impl FnMut() -> ns_runtime::sys::SysResult<T>,
    ) -> Result<T> {
        match make() {
            Ok(t) => Ok(t),
            Err(Errno(libc::EEXIST)) => {
                self.cache = None;
                fs::remove_tree_at(pfd, name)
                    .map_err(|e| ImageError::entry_sys("replace", raw, e))?;
                make().map_err(|e| ImageError::entry_sys("create", raw, e))
            }
            Err(e) => Err(ImageError::entry_sys("create", raw, e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn file<R: Read>(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        path: &[u8],
        raw: &[u8],
        e: &mut tar::Entry<'_, R>,
        meta: Meta,
        sparse: bool,
    ) -> Result<()> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = self.create(pfd, name, raw, || fs::openat(pfd, name, flags, 0o600))?;
        let mut buf = std::mem::take(&mut self.buf);
        let written = copy_data(e, fd.as_raw_fd(), &mut buf, sparse, raw);
        self.buf = buf;
        let total = written?;
        if sparse {
            fs::ftruncate(fd.as_raw_fd(), total)
                .map_err(|e| ImageError::entry_sys("write", raw, e))?;
        }
        let fd = fd.as_raw_fd();
        self.owner(path, &meta, false, |u, g| fs::fchown(fd, u, g), raw)?;
        fs::fchmod(fd, meta.mode).map_err(|e| ImageError::entry_sys("set the mode of", raw, e))?;
        self.xattrs_of(&meta, path, raw, |n, v| fs::fsetxattr(fd, n, v))?;
        fs::futimens(fd, &meta.times).map_err(|e| ImageError::entry_sys("set the times of", raw, e))
    }

    pub(super) fn dir(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        path: Vec<u8>,
        raw: &[u8],
        meta: Meta,
    ) -> Result<()> {
        let mut opaque = false;
        match fs::mkdirat(pfd, name, 0o700) {
            Ok(()) => {}
            Err(Errno(libc::EEXIST)) => {
                let st =
                    fs::lstatat(pfd, name).map_err(|e| ImageError::entry_sys("create", raw, e))?;
                if !fs::is_dir(&st) {
                    // A directory deleted (whiteout) and made again in the same layer hides
                    // the lower one: it is opaque.
                    opaque = is_whiteout(&st);
                    self.create(pfd, name, raw, || fs::mkdirat(pfd, name, 0o700))?;
                }
            }
            Err(e) => return Err(ImageError::entry_sys("create", raw, e)),
        }
        if opaque {
            let fd =
                fs::openat(pfd, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                    .map_err(|e| ImageError::entry_sys("open", raw, e))?;
            self.set_opaque(fd.as_raw_fd(), raw)?;
        }
        self.defer_dir(path, meta);
        Ok(())
    }

    pub(super) fn hardlink(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        path: &[u8],
        raw: &[u8],
        target: &[u8],
    ) -> Result<()> {
        let tpath = clean(target).map_err(|r| {
            ImageError::unsafe_entry(
                raw,
                &format!("its hard link target {:?}: {r}", crate::error::show(target)),
            )
        })?;
        if tpath.is_empty() {
            return Err(ImageError::bad_entry(raw, "a hard link to the layer's root"));
        }
        if tpath == path {
            return Ok(());
        }
        let (tdir, tname) = split_last(&tpath);
        let tdirfd = if tdir.is_empty() {
            None
        } else {
            let cdir = c(tdir).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
            Some(
                fs::openat2(self.root(), &cdir, libc::O_PATH | libc::O_DIRECTORY, BENEATH)
                    .map_err(|e| match e.0 {
                        libc::ENOENT | libc::ENOTDIR => {
                            ImageError::bad_entry(raw, "its hard link target is not in this layer")
                        }
                        _ => self.walk_error(raw, e),
                    })?,
            )
        };
        let tfd = tdirfd.as_ref().map_or(self.root(), |f| f.as_raw_fd());
        let ctname = c(tname).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
        match fs::lstatat(tfd, &ctname) {
            Ok(st) if fs::is_dir(&st) => {
                return Err(ImageError::bad_entry(raw, "its hard link target is a directory"))
            }
            Ok(_) => {}
            Err(_) => {
                return Err(ImageError::bad_entry(raw, "its hard link target is not in this layer"))
            }
        }
        self.create(pfd, name, raw, || fs::linkat(tfd, &ctname, pfd, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn node<R: Read>(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        path: &[u8],
        raw: &[u8],
        e: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        meta: Meta,
    ) -> Result<()> {
        let (ty, dev) = match kind {
            tar::EntryType::Fifo => (libc::S_IFIFO, 0),
            _ => {
                let h = e.header();
                let bad = || ImageError::bad_entry(raw, "its device numbers are invalid");
                let major = h.device_major().map_err(|_| bad())?.unwrap_or(0);
                let minor = h.device_minor().map_err(|_| bad())?.unwrap_or(0);
                let ty = if kind == tar::EntryType::Char { libc::S_IFCHR } else { libc::S_IFBLK };
                (ty, libc::makedev(major, minor))
            }
        };
        match fs::mknodat(pfd, name, ty | 0o600, dev) {
            Ok(()) => {}
            Err(Errno(libc::EEXIST)) => {
                self.create(pfd, name, raw, || fs::mknodat(pfd, name, ty | 0o600, dev))?;
            }
            // No CAP_MKNOD (a rootless store): device nodes are left out, as Docker does in a
            // user namespace; a container gets its /dev from the runtime anyway.
            Err(Errno(libc::EPERM)) if ty != libc::S_IFIFO => {
                self.stats.skipped += 1;
                return Ok(());
            }
            Err(e) => return Err(ImageError::entry_sys("create", raw, e)),
        }
        fs::fchmodat(pfd, name, meta.mode)
            .map_err(|e| ImageError::entry_sys("set the mode of", raw, e))?;
        self.finish_node(pfd, name, path, raw, meta, false)
    }

    /// Owner, attributes and times of a node that has no descriptor of its own (symlink,
    /// device, fifo): set through its parent, never following it.
    pub(super) fn finish_node(
        &mut self,
        pfd: RawFd,
        name: &CStr,
        path: &[u8],
        raw: &[u8],
        meta: Meta,
        symlink: bool,
    ) -> Result<()> {
        self.owner(path, &meta, false, |u, g| fs::lchownat(pfd, name, u, g), raw)?;
        let nb = name.to_bytes();
        self.xattrs_of(&meta, path, raw, |n, v| {
            if symlink && n.to_bytes().starts_with(b"user.") {
                // The kernel keeps user.* attributes off symlinks.
                return Err(Errno(libc::EPERM));
            }
            fs::lsetxattrat(pfd, nb, n, v)
        })?;
        fs::lutimensat(pfd, name, &meta.times)
            .map_err(|e| ImageError::entry_sys("set the times of", raw, e))
    }
}

/// The data of a regular entry into `fd`; with `sparse`, runs of zero blocks become holes.
fn copy_data<R: Read>(
    e: &mut R,
    fd: RawFd,
    buf: &mut [u8],
    sparse: bool,
    raw: &[u8],
) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match e.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(ImageError::io(
                    "read the layer stream at",
                    Some(&crate::error::show(raw)),
                    &err,
                ))
            }
        };
        total += n as u64;
        let data = &buf[..n];
        if sparse {
            for chunk in data.chunks(4096) {
                if chunk.iter().all(|&b| b == 0) {
                    fs::lseek_cur(fd, chunk.len() as i64)
                        .map_err(|e| ImageError::entry_sys("write", raw, e))?;
                } else {
                    fs::write_all(fd, chunk).map_err(|e| ImageError::entry_sys("write", raw, e))?;
                }
            }
        } else {
            fs::write_all(fd, data).map_err(|e| ImageError::entry_sys("write", raw, e))?;
        }
    }
}
