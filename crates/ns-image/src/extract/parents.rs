//! The parent directory of an entry, resolved beneath the layer's root (refused if the walk
//! leaves it) and made if missing, root-owned and 0755 as Docker does; a whiteout of this layer
//! in the way becomes an opaque directory.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ns_runtime::sys::Errno;

use super::extractor::Extractor;
use super::path::{split_last, BENEATH};
use super::whiteout::is_whiteout;
use crate::error::{ImageError, Result};
use crate::fsops::{self as fs, c};

impl Extractor {
    /// The parent directory `dir` (clean path) of an entry, made if missing (root-owned, 0755,
    /// as Docker does). Refused if reaching it leaves the layer.
    pub(super) fn parent(&mut self, dir: &[u8], raw: &[u8]) -> Result<RawFd> {
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

    pub(super) fn walk_error(&self, raw: &[u8], e: Errno) -> ImageError {
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
}
