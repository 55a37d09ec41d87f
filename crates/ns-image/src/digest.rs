//! Content digests (`sha256:<64 hex>`) and readers that hash what flows through them.

use std::io::Read;

use sha2::{Digest as _, Sha256};

use crate::error::{ImageError, Result};

/// Check that `s` is a digest this store can verify: `sha256:` and 64 lowercase hex digits.
pub fn parse(field: &str, s: &str) -> Result<String> {
    let Some(hex) = s.strip_prefix("sha256:") else {
        return Err(ImageError::invalid(
            field,
            format!("{:?} is not a sha256 digest (sha256:<64 hex digits>)", s),
        ));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ImageError::invalid(
            field,
            format!("{:?} is not a sha256 digest (sha256:<64 lowercase hex digits>)", s),
        ));
    }
    Ok(s.to_owned())
}

/// The running sha256 of a stream and how many bytes it had.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    pub len: u64,
}

impl Hasher {
    pub fn update(&mut self, b: &[u8]) {
        self.sha.update(b);
        self.len += b.len() as u64;
    }

    /// `sha256:<hex>` of everything seen.
    pub fn finish(self) -> String {
        let d = self.sha.finalize();
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in d.iter() {
            s.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
            s.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
        }
        s
    }
}

/// A reader that hashes every byte read through it.
pub struct HashingReader<R> {
    pub inner: R,
    pub hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Hasher::default() }
    }

    /// Read (and hash) what is left, to the end.
    pub fn drain(&mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_sha256sum() {
        let mut h = Hasher::default();
        h.update(b"abc");
        assert_eq!(
            h.finish(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn refuses_digests_it_cannot_verify() {
        assert!(parse("digest", &format!("sha256:{}", "a".repeat(64))).is_ok());
        let e = parse("digest", "sha512:abcd").unwrap_err();
        assert_eq!(e.code, "EINVAL");
        assert!(e.message.starts_with("digest: "), "{}", e.message);
        assert!(parse("diffId", &format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse("diffId", "sha256:abc").is_err());
    }
}
