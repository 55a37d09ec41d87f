//! Entry names as clean paths beneath the layer's root, and the `openat2` resolve flags that keep
//! every walk beneath it.

use crate::fsops as fs;

pub(super) const BENEATH: u64 =
    fs::RESOLVE_BENEATH | fs::RESOLVE_NO_MAGICLINKS | fs::RESOLVE_NO_XDEV;
pub(super) const BENEATH_NO_LINKS: u64 = BENEATH | fs::RESOLVE_NO_SYMLINKS;

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

pub(super) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
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
}
