//! The state of one extraction into one layer directory, the dispatch of each tar entry to what
//! makes it, and the directories' metadata set at the end, deepest first.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ns_runtime::sys::Errno;

use super::meta::Meta;
use super::path::{clean, split_last, BENEATH_NO_LINKS};
use super::types::{Chown, OverlayXattrs, Owners, Stats};
use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

struct DirMeta {
    path: Vec<u8>,
    meta: Meta,
}

/// The state of one extraction into one layer directory.
pub struct Extractor {
    pub(super) root: OwnedFd,
    pub(super) owners: Owners,
    pub(super) xattrs: OverlayXattrs,
    pub(super) euid: u32,
    pub(super) egid: u32,
    /// The last parent directory resolved (tar streams list a directory's files together).
    pub(super) cache: Option<(Vec<u8>, OwnedFd)>,
    dirs: Vec<DirMeta>,
    dir_at: HashMap<Vec<u8>, usize>,
    pub chowns: Vec<Chown>,
    pub stats: Stats,
    pub(super) buf: Vec<u8>,
}

impl Extractor {
    /// Extract into the directory `root` (opened O_RDONLY | O_DIRECTORY).
    pub fn new(root: OwnedFd, owners: Owners, xattrs: OverlayXattrs) -> Self {
        // SAFETY: plain syscalls.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Extractor {
            root,
            owners,
            xattrs,
            euid,
            egid,
            cache: None,
            dirs: Vec::new(),
            dir_at: HashMap::new(),
            chowns: Vec::new(),
            stats: Stats::default(),
            buf: vec![0u8; 512 * 1024],
        }
    }

    pub fn root(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// Apply one entry of the stream.
    pub fn apply<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() || kind.as_byte() == b'V' {
            // Global PAX records (a comment, a default) and volume labels make nothing.
            return Ok(());
        }
        let path = clean(&raw).map_err(|r| ImageError::unsafe_entry(&raw, r))?;
        let meta = Meta::read(e, &raw)?;
        self.stats.entries += 1;
        let (parent, name) = split_last(&path);

        if let Some(rest) = name.strip_prefix(b".wh.") {
            return self.whiteout(parent, rest, &raw);
        }
        if path.is_empty() {
            if !kind.is_dir() {
                return Err(ImageError::bad_entry(
                    &raw,
                    "it names the layer's root but is not a directory",
                ));
            }
            self.defer_dir(path, meta);
            return Ok(());
        }
        let pfd = self.parent(parent, &raw)?;
        let cname = c(name).map_err(|e| ImageError::entry_sys("extract", &raw, e))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(pfd, &cname, &path, &raw, e, meta, kind.is_gnu_sparse())
            }
            tar::EntryType::Directory => self.dir(pfd, &cname, path, &raw, meta),
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ImageError::bad_entry(&raw, "a symlink without a target"))?;
                let target = c(&target).map_err(|e| ImageError::entry_sys("extract", &raw, e))?;
                self.create(pfd, &cname, &raw, || fs::symlinkat(&target, pfd, &cname))?;
                self.finish_node(pfd, &cname, &path, &raw, meta, true)
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ImageError::bad_entry(&raw, "a hard link without a target"))?;
                self.hardlink(pfd, &cname, &path, &raw, &target)
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.node(pfd, &cname, &path, &raw, e, kind, meta)
            }
            other => Err(ImageError::bad_entry(
                &raw,
                &format!("entry type {:?} is not supported", char::from(other.as_byte())),
            )),
        }
    }

    /// A directory's owner, mode, attributes and times are set at the end, deepest first: its
    /// files are written into it before it becomes read-only, and its mtime is the layer's.
    pub(super) fn defer_dir(&mut self, path: Vec<u8>, meta: Meta) {
        match self.dir_at.get(&path) {
            Some(&i) => self.dirs[i].meta = meta,
            None => {
                self.dir_at.insert(path.clone(), self.dirs.len());
                self.dirs.push(DirMeta { path, meta });
            }
        }
    }

    /// The deferred directory metadata, deepest directories first.
    pub fn finish(&mut self) -> Result<()> {
        self.cache = None;
        let mut dirs = std::mem::take(&mut self.dirs);
        self.dir_at.clear();
        dirs.sort_by_key(|d| {
            std::cmp::Reverse(
                d.path.iter().filter(|&&b| b == b'/').count() + !d.path.is_empty() as usize,
            )
        });
        for d in dirs {
            let raw = if d.path.is_empty() { b"./".to_vec() } else { d.path.clone() };
            let fd = if d.path.is_empty() {
                fs::openat(self.root(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
            } else {
                let cp = c(&d.path).map_err(|e| ImageError::entry_sys("extract", &raw, e))?;
                fs::openat2(
                    self.root(),
                    &cp,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    BENEATH_NO_LINKS,
                )
            };
            let fd = match fd {
                Ok(fd) => fd,
                // Replaced by a later entry that is not a directory.
                Err(Errno(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => continue,
                Err(e) => return Err(ImageError::entry_sys("open", &raw, e)),
            };
            let f = fd.as_raw_fd();
            self.owner(&d.path, &d.meta, true, |u, g| fs::fchown(f, u, g), &raw)?;
            fs::fchmod(f, d.meta.mode)
                .map_err(|e| ImageError::entry_sys("set the mode of", &raw, e))?;
            self.xattrs_of(&d.meta, &d.path, &raw, |n, v| fs::fsetxattr(f, n, v))?;
            fs::futimens(f, &d.meta.times)
                .map_err(|e| ImageError::entry_sys("set the times of", &raw, e))?;
        }
        Ok(())
    }
}
