//! Unpacked layers mounted with a real overlayfs, in a child's private mount namespace (and,
//! for the rootless flavour, its own user namespace), and what the mount shows asserted.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::*;
use ns_image::overlay::{self, OverlaySpec, Seen};
use ns_image::{OverlayXattrs, Owners, LAYER_ROOT};
use ns_runtime::spec::IdMapping;
use ns_runtime::sys::Errno;

const GZ: Option<&str> = Some("application/vnd.oci.image.layer.v1.tar+gzip");

/// Three layers: a base, one that deletes and hides, one that makes again what was deleted.
fn three_layers(s: &Scratch, owners: Owners, xattrs: OverlayXattrs) -> Vec<PathBuf> {
    let base = Tar::default()
        .dir("etc")
        .file("etc/os-release", b"ID=base\n")
        .file("etc/motd", b"hello\n")
        .dir("var/cache")
        .file("var/cache/old", b"o")
        .dir("data")
        .file("data/stale", b"s")
        .dir("opt/tool")
        .file("opt/tool/v1", b"1")
        .finish();
    let mid = Tar::default()
        .file("etc/.wh.motd", b"")
        .file("etc/os-release", b"ID=mid\n")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq", b"")
        .file("var/cache/fresh", b"f")
        .file(".wh.data", b"")
        .file(".wh.opt", b"")
        .finish();
    let top = Tar::default().dir("data").file("data/new", b"n").file("opt/tool/v2", b"2").finish();
    let mut dirs = Vec::new();
    for (i, t) in [base, mid, top].iter().enumerate() {
        let name = format!("l{i}");
        unpack_blob(s, &gzip(t), &name, GZ, Some(sha(t)), owners.clone(), xattrs).unwrap();
        dirs.push(s.path(&name).join(LAYER_ROOT));
    }
    dirs
}

fn names(seen: &Result<Seen, Errno>) -> Vec<String> {
    let s = seen.as_ref().expect("a directory");
    let mut v: Vec<String> = String::from_utf8_lossy(&s.data).lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn assert_three_layers_seen(s: &Scratch, userns: bool, layers: Vec<PathBuf>) {
    std::fs::create_dir_all(s.path("upper")).unwrap();
    std::fs::create_dir_all(s.path("work")).unwrap();
    std::fs::create_dir_all(s.path("merged")).unwrap();
    let spec = OverlaySpec {
        layers,
        upper: Some(s.path("upper")),
        work: Some(s.path("work")),
        userxattr: userns,
    };
    let seen = overlay::look_in_overlay(
        &spec,
        &s.path("merged"),
        userns,
        &["etc", "etc/os-release", "etc/motd", "var/cache", "data", "opt", "opt/tool"],
    )
    .unwrap();
    assert_eq!(names(&seen[0]), vec!["os-release"], "the whiteout hides motd");
    assert_eq!(seen[1].as_ref().unwrap().data, b"ID=mid\n", "the upper layer's file wins");
    assert_eq!(seen[2], Err(Errno(libc::ENOENT)));
    assert_eq!(names(&seen[3]), vec!["fresh"], "the opaque directory hides the lower one");
    assert_eq!(
        names(&seen[4]),
        vec!["new"],
        "a directory deleted then made again shows only its new files"
    );
    assert_eq!(names(&seen[5]), vec!["tool"]);
    assert_eq!(
        names(&seen[6]),
        vec!["v2"],
        "made again implicitly (by a file under it): opaque too"
    );
    // The mount went with the child: nothing is mounted here.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(s.path("merged").to_str().unwrap()),
        "the overlay leaked into the test's namespace"
    );
}

#[test]
fn layers_mounted_as_root_show_whiteouts_opaque_and_remade_directories() {
    root_only!();
    let s = Scratch::new("ovl-root");
    let layers = three_layers(&s, Owners::Keep, OverlayXattrs::Trusted);
    assert_three_layers_seen(&s, false, layers);
}

#[test]
fn layers_of_a_rootless_store_mounted_in_a_user_namespace_with_userxattr() {
    let s = Scratch::new("ovl-user");
    let (owners, _) = caller_store();
    let layers = three_layers(&s, owners, OverlayXattrs::User);
    assert_three_layers_seen(&s, true, layers);
}

#[test]
fn the_probe_mounts_an_overlay_for_this_caller() {
    let s = Scratch::new("probe");
    let p = overlay::probe(&s.0, true);
    assert!(p.ok, "{p:?}");
    assert!(p.userns);
    if is_root() {
        let p = overlay::probe(&s.0, false);
        assert!(p.ok, "{p:?}");
    }
    assert!(s.names().is_empty(), "the probe leaves nothing: {:?}", s.names());
    // Where it cannot work, it says why.
    let p = overlay::probe(&s.path("missing"), true);
    assert!(!p.ok);
    assert!(p.reason.unwrap().contains("missing"));
    assert!(p.hint.is_some());
}

#[test]
fn an_overlay_of_more_layers_than_mount_options_can_hold_is_mounted_with_lowerdir_plus() {
    root_only!();
    let s = Scratch::new("many");
    let mut layers = Vec::new();
    for i in 0..120 {
        // Long paths, as a store's are: 120 of them do not fit a page of options.
        let t = Tar::default().file(&format!("f{i}"), format!("{i}").as_bytes()).finish();
        let name = format!("{:0>60}", i);
        unpack_blob(
            &s,
            &t,
            &name,
            Some("application/vnd.oci.image.layer.v1.tar"),
            None,
            Owners::Keep,
            OverlayXattrs::Trusted,
        )
        .unwrap();
        layers.push(s.path(&name).join(LAYER_ROOT));
    }
    std::fs::create_dir_all(s.path("m")).unwrap();
    let spec = OverlaySpec { layers, upper: None, work: None, userxattr: false };
    assert!(spec.mount_options().is_err(), "too long for mount(2)");
    let seen = overlay::look_in_overlay(&spec, &s.path("m"), false, &["", "f0", "f119"]).unwrap();
    assert_eq!(names(&seen[0]).len(), 120);
    assert_eq!(seen[2].as_ref().unwrap().data, b"119");
}

/// The owners of a rootless store, set through a user namespace: written with explicit maps
/// (as root, which may write any map; a normal user's come from /etc/subuid through
/// newuidmap and are checked the same way by the next test).
#[test]
fn owners_of_a_mapped_store_are_the_subordinate_ids_on_disk() {
    root_only!();
    let s = Scratch::new("mapped");
    let m = |c, h, n| IdMapping { container_id: c, host_id: h, size: n };
    let owners = Owners::Map {
        uids: vec![m(0, 0, 1), m(1, 700_000, 1000)],
        gids: vec![m(0, 0, 1), m(1, 800_000, 1000)],
    };
    let mut caps = vec![0u8; 20];
    caps[0..4].copy_from_slice(&0x0200_0001u32.to_le_bytes()); // VFS_CAP_REVISION_2, effective
    caps[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes()); // CAP_NET_RAW
    let mut t = Tar::default();
    t.dir_as("srv", 0o750, 33, 33)
        .file_as("srv/index", b"i", 0o640, 33, 34)
        .file_as("bin/su", b"su", 0o4755, 0, 0);
    t.file_as("bin/ping-like", b"p", 0o2755, 5, 5);
    t.pax(&[("SCHILY.xattr.security.capability", &caps)]).file_as("bin/cap", b"c", 0o755, 0, 0);
    t.raw(&Entry {
        name: b"srv/link",
        kind: b'2',
        link: b"index",
        uid: 33,
        gid: 33,
        ..Default::default()
    });
    let tar = t.finish();
    unpack_blob(&s, &gzip(&tar), "layer", GZ, None, owners.clone(), OverlayXattrs::User).unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    let st = |p: &str| lstat(&d.join(p)).unwrap();
    assert_eq!(
        (st("srv").uid(), st("srv").gid(), st("srv").mode() & 0o7777),
        (700_032, 800_032, 0o750)
    );
    assert_eq!((st("srv/index").uid(), st("srv/index").gid()), (700_032, 800_033));
    assert_eq!((st("srv/link").uid(), st("srv/link").gid()), (700_032, 800_032));
    assert_eq!((st("bin/su").uid(), st("bin/su").mode() & 0o7777), (0, 0o4755));
    let p = st("bin/ping-like");
    assert_eq!(
        (p.uid(), p.gid(), p.mode() & 0o7777),
        (700_004, 800_004, 0o2755),
        "set again after the chown"
    );
    let cap = getxattr(&d.join("bin/cap"), "security.capability").expect("capability kept");
    assert_eq!(&cap[4..8], &(1u32 << 13).to_le_bytes());

    // An owner outside the maps is refused by name.
    let t = Tar::default().file_as("far", b"x", 0o644, 5000, 0).finish();
    let e = unpack_blob(&s, &gzip(&t), "far", GZ, None, owners.clone(), OverlayXattrs::User)
        .unwrap_err();
    assert_eq!(e.code, "EOVERFLOW");
    assert_eq!(e.entry.as_deref(), Some("far"));

    ns_image::remove_layer(&s.path("layer"), &owners).unwrap();
    assert!(s.names().is_empty(), "{:?}", s.names());
}

#[test]
fn owners_of_a_rootless_store_come_from_the_callers_subordinate_ranges() {
    if is_root() {
        eprintln!("SKIP owners_of_a_rootless_store...: runs as an unprivileged user (the previous test covers root)");
        return;
    }
    let (uids, gids) = ns_image::userns::maps_for_caller();
    if uids.len() < 2 || gids.len() < 2 {
        eprintln!("SKIP owners_of_a_rootless_store...: no /etc/subuid and /etc/subgid range (or no newuidmap) for this user");
        return;
    }
    let s = Scratch::new("rootless");
    let owners = Owners::Map { uids: uids.clone(), gids: gids.clone() };
    let t = Tar::default()
        .dir_as("srv", 0o700, 33, 33)
        .file_as("srv/f", b"x", 0o600, 33, 33)
        .file("root-owned", b"r")
        .finish();
    unpack_blob(&s, &gzip(&t), "layer", GZ, None, owners.clone(), OverlayXattrs::User).unwrap();
    let d = s.path("layer").join(LAYER_ROOT);
    assert_eq!(lstat(&d.join("srv")).unwrap().uid(), uids[1].host_id + 32);
    // SAFETY: plain syscall.
    assert_eq!(lstat(&d.join("root-owned")).unwrap().uid(), unsafe { libc::geteuid() });
    // The container's view: the same maps.
    assert!(
        std::fs::read_dir(d.join("srv")).is_err(),
        "the user itself cannot read uid 33's directory"
    );
    ns_image::remove_layer(&s.path("layer"), &owners).unwrap();
    assert!(s.names().is_empty(), "{:?}", s.names());
}
