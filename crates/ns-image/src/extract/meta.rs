//! An entry's metadata (mode, owner, times, extended attributes) read from its tar header and
//! PAX records.

use std::ffi::CString;
use std::io::Read;

use crate::error::{ImageError, Result};
use crate::fsops as fs;

pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) times: [libc::timespec; 2],
    pub(super) xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    /// The mode, owner, times and attributes of an entry, from its header and PAX records.
    pub(super) fn read<R: Read>(e: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(pax_time(b"12x").is_none());
    }
}
