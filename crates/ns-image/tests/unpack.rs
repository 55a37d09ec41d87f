//! Unpacking crafted layers for real: files, links, long names, attributes, whiteouts, and the
//! entries that try to get out, each refused with nothing left behind.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::*;
use ns_image::{OverlayXattrs, Owners, LAYER_ROOT, MARKER};

const GZ: Option<&str> = Some("application/vnd.oci.image.layer.v1.tar+gzip");

#[test]
fn files_dirs_links_and_nodes_are_made_with_their_modes_and_times() {
    let s = Scratch::new("basic");
    let mut t = Tar::default();
    t.dir("./").dir("etc").file("etc/hostname", b"box\n").dir_as("srv", 0o750, 0, 0);
    t.file_as("srv/run.sh", b"#!/bin/sh\n", 0o4755, 0, 0);
    t.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
    t.hardlink("etc/hostname.bak", "etc/hostname");
    t.raw(&Entry { name: b"run/fifo", kind: b'6', mode: 0o600, ..Default::default() });
    t.raw(&Entry {
        name: b"usr/bin/readonly",
        data: b"ro",
        mode: 0o444,
        mtime: 1_234_567_890,
        ..Default::default()
    });
    let tar = t.finish();
    let r = unpack_tar(&s, &tar, "layer").unwrap();
    assert_eq!(r.diff_id, sha(&tar));
    assert_eq!(r.size, tar.len() as u64);
    assert_eq!(r.files, 9);
    assert!(!r.reused);

    let d = s.path("layer").join(LAYER_ROOT);
    assert_eq!(std::fs::read(d.join("etc/hostname")).unwrap(), b"box\n");
    assert_eq!(mode(&d.join("srv")) & 0o7777, 0o750);
    assert_eq!(mode(&d.join("srv/run.sh")) & 0o7777, 0o4755, "the set-user-ID bit survives");
    assert_eq!(
        std::fs::read_link(d.join("etc/localtime")).unwrap().to_str(),
        Some("/usr/share/zoneinfo/UTC")
    );
    let (a, b) =
        (lstat(&d.join("etc/hostname")).unwrap(), lstat(&d.join("etc/hostname.bak")).unwrap());
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "a hard link shares the inode");
    assert!(lstat(&d.join("run/fifo")).unwrap().file_type().is_fifo());
    let ro = lstat(&d.join("usr/bin/readonly")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime()), (0o444, 1_234_567_890));
    assert_eq!(mode(&d.join("usr")) & 0o7777, 0o755, "implicit parents are 0755");
    assert_eq!(
        lstat(&d.join("etc")).unwrap().mtime(),
        1_600_000_000,
        "a directory keeps its mtime after its files"
    );

    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("layer").join(MARKER)).unwrap()).unwrap();
    assert_eq!(marker["diffId"], sha(&tar));
    assert_eq!(s.names(), vec!["layer"], "no staging directory is left");

    // A staging directory of an unpack that was killed midway goes with the next unpack.
    std::fs::create_dir_all(s.path(".other.unpack-999999999-0/diff/x")).unwrap();
    std::fs::create_dir_all(s.path(".layer2.unpack-999999999-0/diff/x")).unwrap();
    unpack_tar(&s, &tar, "layer2").unwrap();
    assert_eq!(s.names(), vec![".other.unpack-999999999-0", "layer", "layer2"]);

    // Unpacked once: the second call finds it.
    let again = unpack_tar(&s, &tar, "layer").unwrap();
    assert!(again.reused);
    assert_eq!(again.diff_id, r.diff_id);
}

#[test]
fn gnu_and_pax_long_names_pax_times_and_xattrs_are_applied() {
    let s = Scratch::new("long");
    let long_gnu = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let long_pax = format!("{}/{}", "p".repeat(200), "q".repeat(200));
    let mut t = Tar::default();
    t.gnu_longname(&long_gnu).file("placeholder-gnu", b"gnu");
    t.pax(&[
        ("path", long_pax.as_bytes()),
        ("mtime", b"1500000000.5"),
        ("SCHILY.xattr.user.origin", b"layer-1"),
    ])
    .file("placeholder-pax", b"pax");
    t.pax(&[("linkpath", long_pax.as_bytes())]).symlink("to-long", "x");
    let tar = t.finish();
    unpack_tar(&s, &tar, "layer").unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    assert_eq!(std::fs::read(d.join(&long_gnu)).unwrap(), b"gnu");
    let p = d.join(&long_pax);
    assert_eq!(std::fs::read(&p).unwrap(), b"pax");
    let m = lstat(&p).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 500_000_000));
    assert_eq!(getxattr(&p, "user.origin").as_deref(), Some(&b"layer-1"[..]));
    assert_eq!(std::fs::read_link(d.join("to-long")).unwrap().to_str(), Some(long_pax.as_str()));
}

#[test]
fn owners_of_the_tar_are_kept_in_a_root_store() {
    root_only!();
    let s = Scratch::new("owners");
    let mut t = Tar::default();
    t.dir_as("home/u", 0o700, 1000, 1000).file_as("home/u/f", b"x", 0o2755, 1000, 50);
    t.raw(&Entry { name: b"dev/null", kind: b'3', mode: 0o666, dev: (1, 3), ..Default::default() });
    t.raw(&Entry { name: b"l", kind: b'2', link: b"home", uid: 7, gid: 8, ..Default::default() });
    let tar = t.finish();
    unpack_blob(&s, &gzip(&tar), "layer", GZ, None, Owners::Keep, OverlayXattrs::Trusted).unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    let u = lstat(&d.join("home/u")).unwrap();
    assert_eq!((u.uid(), u.gid(), u.mode() & 0o7777), (1000, 1000, 0o700));
    let f = lstat(&d.join("home/u/f")).unwrap();
    assert_eq!(
        (f.uid(), f.gid(), f.mode() & 0o7777),
        (1000, 50, 0o2755),
        "set-group-ID kept after the chown"
    );
    let n = lstat(&d.join("dev/null")).unwrap();
    assert!(n.file_type().is_char_device());
    assert_eq!(n.rdev(), libc::makedev(1, 3));
    let l = lstat(&d.join("l")).unwrap();
    assert_eq!((l.uid(), l.gid()), (7, 8), "a symlink's own owner, not its target's");
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_opaque_markers_attributes() {
    let s = Scratch::new("wh");
    let mut t = Tar::default();
    t.file("etc/.wh.motd", b"")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/new", b"n");
    t.file(".wh..wh.plnk", b"");
    let tar = t.finish();
    let r = unpack_tar(&s, &tar, "layer").unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    let w = lstat(&d.join("etc/motd")).unwrap();
    assert!(w.file_type().is_char_device() && w.rdev() == 0, "a 0/0 character device");
    assert!(lstat(&d.join("etc/.wh.motd")).is_none());
    let x = if is_root() { "trusted.overlay.opaque" } else { "user.overlay.opaque" };
    assert_eq!(getxattr(&d.join("var/cache"), x).as_deref(), Some(&b"y"[..]));
    assert!(lstat(&d.join("var/cache/.wh..wh..opq")).is_none());
    assert!(lstat(&d.join(".wh..wh.plnk")).is_none() && lstat(&d.join("plnk")).is_none());
    assert_eq!(r.files, 5);

    // The rootless flavour, whoever runs it.
    let s2 = Scratch::new("wh-user");
    let (owners, _) = caller_store();
    unpack_blob(&s2, &gzip(&tar), "layer", GZ, None, owners, OverlayXattrs::User).unwrap();
    let d2 = s2.path("layer").join(LAYER_ROOT);
    assert_eq!(getxattr(&d2.join("var/cache"), "user.overlay.opaque").as_deref(), Some(&b"y"[..]));
}

#[test]
fn a_directory_deleted_and_made_again_in_one_layer_is_opaque() {
    let s = Scratch::new("recreate");
    let mut t = Tar::default();
    // Explicitly (whiteout, then the directory) and implicitly (whiteout, then a file in it).
    t.file(".wh.data", b"").dir("data").file("data/new", b"1");
    t.file(".wh.logs", b"").file("logs/today", b"2");
    t.file("keep", b"k").file(".wh.keep", b"");
    let tar = t.finish();
    unpack_tar(&s, &tar, "layer").unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    let x = if is_root() { "trusted.overlay.opaque" } else { "user.overlay.opaque" };
    for dir in ["data", "logs"] {
        assert!(lstat(&d.join(dir)).unwrap().is_dir());
        assert_eq!(
            getxattr(&d.join(dir), x).as_deref(),
            Some(&b"y"[..]),
            "{dir} hides the lower one"
        );
    }
    assert_eq!(std::fs::read(d.join("logs/today")).unwrap(), b"2");
    assert_eq!(
        std::fs::read(d.join("keep")).unwrap(),
        b"k",
        "a whiteout does not delete its own layer's file"
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    let s = Scratch::new("replace");
    let mut t = Tar::default();
    t.file("a", b"old").file("a", b"new");
    t.dir("b").file("b/inner", b"x").file("b", b"now a file");
    t.file("c", b"file").dir("c").file("c/in", b"y");
    t.symlink("e", "a").file("e", b"not a link");
    let tar = t.finish();
    unpack_tar(&s, &tar, "layer").unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    assert_eq!(std::fs::read(d.join("a")).unwrap(), b"new");
    assert_eq!(std::fs::read(d.join("b")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(d.join("c/in")).unwrap(), b"y");
    assert!(lstat(&d.join("e")).unwrap().is_file());
    assert_eq!(
        std::fs::read(d.join("a")).unwrap(),
        b"new",
        "writing e did not go through the old link"
    );
}

/// Each hostile layer is refused naming the entry, and leaves nothing: no layer directory, no
/// staging directory, nothing outside.
#[test]
fn every_escape_is_refused_by_name_and_leaves_nothing() {
    let s = Scratch::new("escape");
    let outside = s.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"intact").unwrap();
    let out = outside.to_str().unwrap().to_owned();
    let rel_out = "../../outside"; // from s/<staging>/diff

    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "dotdot",
            Tar::default().file("../outside/evil", b"x").finish(),
            "../outside/evil",
            "EUNSAFE",
        ),
        (
            "inner-dotdot",
            Tar::default().file("a/../../outside/evil", b"x").finish(),
            "a/../../outside/evil",
            "EUNSAFE",
        ),
        (
            "symlink-root",
            Tar::default().symlink("root", "/").file(&format!("root{out}/evil"), b"x").finish(),
            "root",
            "EUNSAFE",
        ),
        (
            "symlink-up",
            Tar::default().symlink("up", rel_out).file("up/evil", b"x").finish(),
            "up/evil",
            "EUNSAFE",
        ),
        (
            "symlink-chain",
            Tar::default().symlink("b", &out).symlink("a", "b").file("a/evil", b"x").finish(),
            "a/evil",
            "EUNSAFE",
        ),
        (
            "symlink-dir-then-file",
            Tar::default()
                .dir("d")
                .symlink("d/x", &out)
                .file("d/x/victim", b"overwritten")
                .finish(),
            "d/x/victim",
            "EUNSAFE",
        ),
        (
            "hardlink-dotdot",
            Tar::default().hardlink("h", "../outside/victim").finish(),
            "h",
            "EUNSAFE",
        ),
        (
            "hardlink-through-symlink",
            Tar::default().symlink("o", &out).hardlink("h", "o/victim").finish(),
            "h",
            "EUNSAFE",
        ),
        (
            "hardlink-absolute",
            Tar::default().hardlink("h", &format!("{out}/victim")).finish(),
            "h",
            "EFORMAT",
        ),
        (
            "whiteout-through-symlink",
            Tar::default().symlink("o", &out).file("o/.wh.victim", b"").finish(),
            "o/.wh.victim",
            "EUNSAFE",
        ),
        (
            "opaque-through-symlink",
            Tar::default().symlink("o", &out).file("o/.wh..wh..opq", b"").finish(),
            "o/.wh..wh..opq",
            "EUNSAFE",
        ),
    ];
    for (tag, tar, entry, code) in cases {
        let e = unpack_tar(&s, &tar, tag).expect_err(tag);
        assert_eq!(e.code, code, "{tag}: {}", e.message);
        assert!(
            e.entry.as_deref().unwrap_or("").contains(entry.trim_start_matches('/')),
            "{tag}: {e:?}"
        );
        assert!(e.message.contains("failed to extract layer entry"), "{tag}: {}", e.message);
        assert_eq!(s.names(), vec!["outside"], "{tag}: nothing is left beside the layer");
        let mut names: Vec<_> =
            std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec!["victim"], "{tag}: nothing was written outside");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"intact", "{tag}");
        assert_eq!(lstat(&outside.join("victim")).unwrap().nlink(), 1, "{tag}: not linked");
    }

    // An absolute name is taken relative to the layer.
    let tar = Tar::default().file(&format!("{out}/abs"), b"inside").finish();
    unpack_tar(&s, &tar, "abs").unwrap();
    assert_eq!(
        std::fs::read(s.path("abs").join(LAYER_ROOT).join(out.trim_start_matches('/')).join("abs"))
            .unwrap(),
        b"inside"
    );
    assert!(lstat(&outside.join("abs")).is_none());
}

#[test]
fn an_escape_after_megabytes_of_data_is_still_named() {
    // The reading thread is blocked on a full channel when the extraction stops.
    let s = Scratch::new("late");
    let big = vec![7u8; 4_000_000];
    let tar = Tar::default().file("big1", &big).file("../evil", b"x").file("big2", &big).finish();
    let (o, x) = caller_store();
    let e = unpack_blob(&s, &tar, "layer", None, None, o, x).unwrap_err();
    assert_eq!(e.code, "EUNSAFE", "{}", e.message);
    assert_eq!(e.entry.as_deref(), Some("../evil"));
    assert!(s.names().is_empty(), "{:?}", s.names());
}

#[test]
fn a_flipped_byte_is_refused_naming_both_digests_and_leaves_nothing() {
    let s = Scratch::new("corrupt");
    let tar = Tar::default().file("etc/os-release", &b"ID=test\n".repeat(1000)).finish();
    for (tag, mut blob, media) in [
        ("gzip", gzip(&tar), GZ),
        ("zstd", zstd(&tar), Some("application/vnd.oci.image.layer.v1.tar+zstd")),
        ("tar", tar.clone(), Some("application/vnd.oci.image.layer.v1.tar")),
    ] {
        let want = sha(&blob);
        let at = blob.len() / 2;
        blob[at] ^= 0x01;
        let bp = s.path("blob");
        std::fs::write(&bp, &blob).unwrap();
        let req = ns_image::UnpackRequest {
            blob: bp.clone(),
            media_type: media.map(str::to_owned),
            dest: s.path("layer"),
            digest: want.clone(),
            diff_id: None,
            owners: caller_store().0,
            xattrs: caller_store().1,
        };
        let e = ns_image::unpack_layer(&req).unwrap_err();
        assert_eq!(e.code, "EDIGEST", "{tag}: {}", e.message);
        assert_eq!(e.expected.as_deref(), Some(want.as_str()), "{tag}");
        assert_eq!(e.got.as_deref(), Some(sha(&blob).as_str()), "{tag}");
        assert!(
            e.message.contains(&want) && e.message.contains(&sha(&blob)),
            "{tag}: {}",
            e.message
        );
        std::fs::remove_file(&bp).unwrap();
        assert!(s.names().is_empty(), "{tag}: {:?}", s.names());
    }
}

#[test]
fn a_wrong_diff_id_is_refused_and_leaves_nothing() {
    let s = Scratch::new("diffid");
    let tar = Tar::default().file("a", b"a").finish();
    let other = sha(b"another layer");
    let (o, x) = caller_store();
    let e = unpack_blob(&s, &zstd(&tar), "layer", None, Some(other.clone()), o, x).unwrap_err();
    assert_eq!(e.code, "EDIGEST");
    assert_eq!(e.step, "verify diff_id");
    assert_eq!(
        (e.expected.as_deref(), e.got.as_deref()),
        (Some(other.as_str()), Some(sha(&tar).as_str()))
    );
    assert!(s.names().is_empty(), "{:?}", s.names());
}

#[test]
fn bad_requests_are_refused_by_field() {
    let s = Scratch::new("bad");
    let tar = Tar::default().file("a", b"a").finish();
    let (o, x) = caller_store();
    let e = unpack_blob(
        &s,
        &gzip(&tar),
        "layer",
        Some("application/vnd.oci.image.layer.v1.tar+foo"),
        None,
        o.clone(),
        x,
    )
    .unwrap_err();
    assert!(e.message.starts_with("mediaType: "), "{}", e.message);
    let e = unpack_blob(&s, &tar, "layer", GZ, None, o.clone(), x).unwrap_err();
    assert_eq!(e.code, "EFORMAT", "{}", e.message);
    let req = ns_image::UnpackRequest {
        blob: s.path("missing"),
        media_type: None,
        dest: s.path("layer"),
        digest: "sha256:1234".into(),
        diff_id: None,
        owners: o,
        xattrs: x,
    };
    assert!(ns_image::unpack_layer(&req).unwrap_err().message.starts_with("digest: "));
    let req = ns_image::UnpackRequest { digest: sha(b""), ..req };
    let e = ns_image::unpack_layer(&req).unwrap_err();
    assert_eq!((e.code.as_str(), e.step.as_str()), ("ENOENT", "open blob"));
    // A truncated stream.
    let gz = gzip(&Tar::default().file("big", &vec![7u8; 100_000]).finish());
    let e =
        unpack_blob(&s, &gz[..gz.len() / 2], "layer", GZ, None, caller_store().0, caller_store().1)
            .unwrap_err();
    assert_eq!(e.code, "EFORMAT", "{}", e.message);
    assert!(s.names().is_empty(), "{:?}", s.names());
}
