//! Which decompressor a layer blob needs: from its media type, checked against its first bytes.

use crate::error::{ImageError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "tar+gzip",
            Compression::Zstd => "tar+zstd",
        }
    }
}

/// What the media type says: OCI (`application/vnd.oci.image.layer.v1.tar+gzip`, its
/// non-distributable variants) and Docker (`application/vnd.docker.image.rootfs.diff.tar.gzip`,
/// `...foreign.diff.tar.gzip`). `None` (no media type given) leaves it to the magic bytes.
pub fn from_media_type(media_type: Option<&str>) -> Result<Option<Compression>> {
    let Some(mt) = media_type else { return Ok(None) };
    if mt.is_empty() {
        return Ok(None);
    }
    let base = mt.split(';').next().unwrap_or("").trim();
    let layer = base.starts_with("application/vnd.oci.image.layer.")
        || base.starts_with("application/vnd.docker.image.rootfs.");
    let c = if !layer {
        None
    } else if base.ends_with(".tar") {
        Some(Compression::None)
    } else if base.ends_with(".tar+gzip") || base.ends_with(".tar.gzip") {
        Some(Compression::Gzip)
    } else if base.ends_with(".tar+zstd") || base.ends_with(".tar.zstd") {
        Some(Compression::Zstd)
    } else {
        None
    };
    match c {
        Some(c) => Ok(Some(c)),
        None => Err(ImageError::invalid(
            "mediaType",
            format!("{mt:?} is not a layer type this store unpacks (tar, tar+gzip, tar+zstd)"),
        )),
    }
}

/// What the first bytes say: gzip (1f 8b), zstd (28 b5 2f fd), or else an uncompressed tar.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// The decompressor to use. The bytes decide between the compressions (registries are known to
/// label a gzip layer as plain tar and the other way round); a blob labelled compressed whose
/// bytes are neither compression is refused.
pub fn choose(declared: Option<Compression>, head: &[u8], path: &str) -> Result<Compression> {
    let seen = sniff(head);
    match (declared, seen) {
        (Some(d @ (Compression::Gzip | Compression::Zstd)), Compression::None) => {
            Err(ImageError::format(
                "detect layer compression of",
                Some(path),
                format!("the media type says {} but the blob does not start like one", d.name()),
            ))
        }
        _ => Ok(seen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oci_and_docker_layer_types() {
        let t = |s| from_media_type(Some(s)).unwrap();
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar"), Some(Compression::None));
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar+gzip"), Some(Compression::Gzip));
        assert_eq!(t("application/vnd.oci.image.layer.v1.tar+zstd"), Some(Compression::Zstd));
        assert_eq!(
            t("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(t("application/vnd.docker.image.rootfs.diff.tar.gzip"), Some(Compression::Gzip));
        assert_eq!(
            t("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(from_media_type(None).unwrap(), None);
        let e = from_media_type(Some("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"))
            .unwrap_err();
        assert!(e.message.starts_with("mediaType: "), "{}", e.message);
        assert!(from_media_type(Some("application/json")).is_err());
    }

    #[test]
    fn magic_bytes_decide_and_a_false_label_is_refused() {
        assert_eq!(choose(None, &[0x1f, 0x8b, 8], "b").unwrap(), Compression::Gzip);
        assert_eq!(choose(None, &[0x28, 0xb5, 0x2f, 0xfd], "b").unwrap(), Compression::Zstd);
        assert_eq!(choose(Some(Compression::None), &[0x1f, 0x8b], "b").unwrap(), Compression::Gzip);
        assert_eq!(choose(Some(Compression::Zstd), b"usr/", "b").unwrap_err().code, "EFORMAT");
    }
}
