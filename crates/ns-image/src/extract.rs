//! Tar entries into a layer directory, safely: every name is cleaned (no `..`), every parent is
//! resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` from the
//! layer's root descriptor, and every node is made with one name in a directory descriptor,
//! never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, linkat without AT_SYMLINK_FOLLOW). A
//! symlink of the layer that points outside cannot be written through: the kernel refuses the
//! walk (EXDEV) and the entry is refused by name. OCI whiteouts become overlayfs whiteouts.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ns_runtime::spec::IdMapping;
use ns_runtime::sys::Errno;

use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

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

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: [libc::timespec; 2],
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct DirMeta {
    path: Vec<u8>,
    meta: Meta,
}

/// The state of one extraction into one layer directory.
pub struct Extractor {
    root: OwnedFd,
    owners: Owners,
    xattrs: OverlayXattrs,
    euid: u32,
    egid: u32,
    /// The last parent directory resolved (tar streams list a directory's files together).
    cache: Option<(Vec<u8>, OwnedFd)>,
    dirs: Vec<DirMeta>,
    dir_at: HashMap<Vec<u8>, usize>,
    pub chowns: Vec<Chown>,
    pub stats: Stats,
    buf: Vec<u8>,
}

const BENEATH: u64 = fs::RESOLVE_BENEATH | fs::RESOLVE_NO_MAGICLINKS | fs::RESOLVE_NO_XDEV;
const BENEATH_NO_LINKS: u64 = BENEATH | fs::RESOLVE_NO_SYMLINKS;

/// The name of an entry as a clean relative path: components joined by `/`, without empty and
/// `.` components; a leading `/` is taken relative to the layer (as Docker and GNU tar do); a
/// `..` component is refused. The layer's root itself is the empty path.
pub fn clean(name: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    if name.contains(&0) {
        return Err("its name holds a NUL byte");
    }
    let mut out = Vec::with_capacity(name.len());
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("its name has a '..' component"),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(comp);
            }
        }
    }
    Ok(out)
}

fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

/// A PAX time (`1700000000.5`, possibly negative) as a timespec.
fn pax_time(v: &[u8]) -> Option<libc::timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    let mut ns: i64 = 0;
    for (i, ch) in frac.bytes().take(9).enumerate() {
        if !ch.is_ascii_digit() {
            return None;
        }
        ns += (ch - b'0') as i64 * 10i64.pow(8 - i as u32);
    }
    Some(if neg {
        if ns > 0 {
            fs::timespec(-secs - 1, 1_000_000_000 - ns)
        } else {
            fs::timespec(-secs, 0)
        }
    } else {
        fs::timespec(secs, ns)
    })
}

enum XattrUse {
    Set,
    /// `security.capability` of a rootless store: set from inside the user namespace.
    Defer,
    Skip,
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

    fn xattr_use(&self, name: &[u8]) -> XattrUse {
        let rootless = matches!(self.owners, Owners::Map { .. });
        // A layer never decides how overlayfs reads it (opaque, redirect, metacopy).
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            return XattrUse::Skip;
        }
        if name == b"security.capability" {
            return if rootless { XattrUse::Defer } else { XattrUse::Set };
        }
        if name.starts_with(b"user.") || !rootless {
            return XattrUse::Set;
        }
        // trusted.* needs CAP_SYS_ADMIN of the host; ACLs name host ids: neither fits a
        // rootless store.
        XattrUse::Skip
    }

    fn meta<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta> {
        let h = e.header();
        let bad = |what: &str| ImageError::bad_entry(raw, &format!("its {what} field is invalid"));
        let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
        let uid = u32::try_from(h.uid().map_err(|_| bad("uid"))?).map_err(|_| bad("uid"))?;
        let gid = u32::try_from(h.gid().map_err(|_| bad("gid"))?).map_err(|_| bad("gid"))?;
        let mtime = h.mtime().map_err(|_| bad("mtime"))?;
        let mtime = fs::timespec(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        let mut m = Meta { mode, uid, gid, times: [mtime, mtime], xattrs: Vec::new() };
        let mut atime = None;
        if let Some(pax) = e.pax_extensions().map_err(|_| bad("PAX header"))? {
            for ext in pax {
                let ext = ext.map_err(|_| bad("PAX header"))?;
                let (k, v) = (ext.key_bytes(), ext.value_bytes());
                if k == b"mtime" {
                    m.times[1] = pax_time(v).ok_or_else(|| bad("PAX mtime"))?;
                } else if k == b"atime" {
                    atime = Some(pax_time(v).ok_or_else(|| bad("PAX atime"))?);
                } else if let Some(x) = k.strip_prefix(b"SCHILY.xattr.") {
                    let name = CString::new(x).map_err(|_| bad("PAX xattr name"))?;
                    m.xattrs.push((name, v.to_vec()));
                } else if k.starts_with(b"GNU.sparse.") {
                    return Err(ImageError::bad_entry(
                        raw,
                        "PAX-format sparse files are not supported (GNU sparse headers are)",
                    ));
                }
            }
        }
        m.times[0] = atime.unwrap_or(m.times[1]);
        Ok(m)
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
        let meta = self.meta(e, &raw)?;
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

    /// The parent directory `dir` (clean path) of an entry, made if missing (root-owned, 0755,
    /// as Docker does). Refused if reaching it leaves the layer.
    fn parent(&mut self, dir: &[u8], raw: &[u8]) -> Result<RawFd> {
        if dir.is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        if let Some((p, fd)) = &self.cache {
            if p.as_slice() == dir {
                return Ok(fd.as_raw_fd());
            }
        }
        let cdir = c(dir).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
        let fd = match fs::openat2(self.root(), &cdir, libc::O_RDONLY | libc::O_DIRECTORY, BENEATH)
        {
            Ok(fd) => fd,
            Err(Errno(libc::ENOENT | libc::ENOTDIR)) => self.make_parents(dir, raw)?,
            Err(e) => return Err(self.walk_error(raw, e)),
        };
        let raw_fd = fd.as_raw_fd();
        self.cache = Some((dir.to_vec(), fd));
        Ok(raw_fd)
    }

    fn walk_error(&self, raw: &[u8], e: Errno) -> ImageError {
        match e.0 {
            libc::EXDEV => ImageError::unsafe_entry(
                raw,
                "its path leads outside the layer (through a symlink pointing out)",
            ),
            libc::ELOOP => ImageError::unsafe_entry(raw, "its path goes through a symlink loop"),
            _ => ImageError::entry_sys("open the parent directory of", raw, e),
        }
    }

    fn make_parents(&mut self, dir: &[u8], raw: &[u8]) -> Result<OwnedFd> {
        let mut cur: Option<OwnedFd> = None;
        let mut end = 0;
        loop {
            end = match dir[end..].iter().position(|&b| b == b'/') {
                Some(i) if end + i < dir.len() => end + i,
                _ => dir.len(),
            };
            let prefix = &dir[..end];
            let comp = split_last(prefix).1;
            let at = cur.as_ref().map_or(self.root(), |f| f.as_raw_fd());
            let cprefix = c(prefix).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
            let ccomp = c(comp).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
            let next = match fs::openat2(
                self.root(),
                &cprefix,
                libc::O_RDONLY | libc::O_DIRECTORY,
                BENEATH,
            ) {
                Ok(fd) => fd,
                Err(Errno(libc::ENOENT)) => {
                    match fs::mkdirat(at, &ccomp, 0o755) {
                        Ok(()) => {}
                        Err(Errno(libc::EEXIST)) => {
                            return Err(ImageError::bad_entry(
                                raw,
                                "a parent of it is a symlink to nothing in this layer",
                            ))
                        }
                        Err(e) => {
                            return Err(ImageError::entry_sys(
                                "create a parent directory of",
                                raw,
                                e,
                            ))
                        }
                    }
                    self.implicit_dir(at, &ccomp, raw, false)?
                }
                Err(Errno(libc::ENOTDIR)) => {
                    // A whiteout made earlier in this layer (the directory deleted, then made
                    // again by the files under it): the new directory hides the lower one.
                    match fs::lstatat(at, &ccomp) {
                        Ok(st) if is_whiteout(&st) => {
                            self.cache = None;
                            fs::unlinkat(at, &ccomp, 0)
                                .and_then(|_| fs::mkdirat(at, &ccomp, 0o755))
                                .map_err(|e| {
                                    ImageError::entry_sys("create a parent directory of", raw, e)
                                })?;
                            self.implicit_dir(at, &ccomp, raw, true)?
                        }
                        _ => {
                            return Err(ImageError::bad_entry(
                                raw,
                                "a parent of it is not a directory",
                            ))
                        }
                    }
                }
                Err(e) => return Err(self.walk_error(raw, e)),
            };
            cur = Some(next);
            if end == dir.len() {
                return cur.ok_or_else(|| ImageError::bad_entry(raw, "empty parent"));
            }
            end += 1;
        }
    }

    fn implicit_dir(
        &mut self,
        at: RawFd,
        name: &CStr,
        raw: &[u8],
        opaque: bool,
    ) -> Result<OwnedFd> {
        let err = |e| ImageError::entry_sys("create a parent directory of", raw, e);
        // Exactly 0755, whatever the umask.
        fs::fchmodat(at, name, 0o755).map_err(err)?;
        let fd = fs::openat(at, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
            .map_err(err)?;
        if opaque {
            self.set_opaque(fd.as_raw_fd(), raw)?;
        }
        Ok(fd)
    }

    fn set_opaque(&mut self, dirfd: RawFd, raw: &[u8]) -> Result<()> {
        let x = self.xattrs.opaque();
        fs::fsetxattr(dirfd, x, b"y").map_err(|e| {
            let mut err = ImageError::entry_sys(&format!("set {} on", x.to_string_lossy()), raw, e);
            if self.xattrs == OverlayXattrs::Trusted && e.0 == libc::EPERM {
                err = err.with_hint(
                    "trusted.* attributes need root; a rootless store uses user.overlay.*",
                );
            }
            err
        })
    }

    /// `.wh.NAME`: NAME of the lower layers is deleted; `.wh..wh..opq`: the directory hides
    /// what the lower layers hold in it. Other `.wh..wh.*` names (aufs' own) make nothing.
    fn whiteout(&mut self, parent: &[u8], rest: &[u8], raw: &[u8]) -> Result<()> {
        if rest == b".wh..opq" {
            let pfd = self.parent(parent, raw)?;
            return self.set_opaque(pfd, raw);
        }
        if rest.starts_with(b".wh.") {
            return Ok(());
        }
        if rest.is_empty() {
            return Err(ImageError::bad_entry(raw, "a whiteout that names nothing"));
        }
        let pfd = self.parent(parent, raw)?;
        let name = c(rest).map_err(|e| ImageError::entry_sys("extract", raw, e))?;
        match fs::mknodat(pfd, &name, libc::S_IFCHR, 0) {
            Ok(()) => Ok(()),
            // NAME is in this layer itself: a whiteout applies only to the layers below, which
            // that entry hides already.
            Err(Errno(libc::EEXIST)) => Ok(()),
            Err(e) => Err(ImageError::entry_sys("create the whiteout", raw, e)),
        }
    }

    /// Make a node with `make`; if the name is taken (by an earlier entry of the layer), the
    /// old one goes (a whole tree if it is a directory) and `make` is tried once more.
    fn create<T>(
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
    fn file<R: Read>(
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

    fn dir(
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

    /// A directory's owner, mode, attributes and times are set at the end, deepest first: its
    /// files are written into it before it becomes read-only, and its mtime is the layer's.
    fn defer_dir(&mut self, path: Vec<u8>, meta: Meta) {
        match self.dir_at.get(&path) {
            Some(&i) => self.dirs[i].meta = meta,
            None => {
                self.dir_at.insert(path.clone(), self.dirs.len());
                self.dirs.push(DirMeta { path, meta });
            }
        }
    }

    fn hardlink(
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
    fn node<R: Read>(
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
    fn finish_node(
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

    /// The owner of a node: set now with `chown` (a root store) or listed for the user
    /// namespace (a rootless store), after checking that the ids are mapped.
    fn owner(
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

    fn xattrs_of(
        &mut self,
        meta: &Meta,
        _path: &[u8],
        raw: &[u8],
        mut set: impl FnMut(&CStr, &[u8]) -> ns_runtime::sys::SysResult<()>,
    ) -> Result<()> {
        for (n, v) in &meta.xattrs {
            match self.xattr_use(n.as_bytes()) {
                XattrUse::Set => match set(n, v) {
                    Ok(()) => {}
                    Err(Errno(libc::EOPNOTSUPP | libc::EPERM | libc::EACCES)) => {
                        self.stats.skipped += 1
                    }
                    Err(e) => {
                        return Err(ImageError::entry_sys(
                            &format!("set the attribute {} of", n.to_string_lossy()),
                            raw,
                            e,
                        ))
                    }
                },
                XattrUse::Defer => {}
                XattrUse::Skip => self.stats.skipped += 1,
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_dot_dot_refused() {
        assert_eq!(clean(b"./usr//bin/./sh").unwrap(), b"usr/bin/sh");
        assert_eq!(clean(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert!(clean(b"../etc/passwd").is_err());
        assert!(clean(b"a/../../b").is_err());
        assert!(clean(b"a/..").is_err());
        assert_eq!(clean(b"a/..b/c..").unwrap(), b"a/..b/c..");
    }

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(pax_time(b"12x").is_none());
    }

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
