//! `create [flags] ID`: set a container up from a bundle; its process waits for `start`.
//! Engines: `create --bundle B --pid-file B/init.pid [--console-socket S] ID` (containerd's
//! shim), with `--no-new-keyring` and `--preserve-fds N` from conmon.

use std::path::PathBuf;

use ns_runtime::helper;
use ns_runtime::proto::Event;
use ns_runtime::request::{CreateRequest, RunRequest};
use ns_runtime::spec::Spec;
use ns_runtime::SetupError;

use super::{absolute, Failure, Verb};
use crate::args::{Flag, Parsed, UsageError};
use crate::global::Ctx;

pub const BUNDLE: Flag =
    Flag::value("bundle", Some('b'), "DIR", "the bundle: config.json and the root (default: .)");
pub const PID_FILE: Flag =
    Flag::value("pid-file", None, "FILE", "write the container's host PID there");
pub const CONSOLE_SOCKET: Flag = Flag::value(
    "console-socket",
    None,
    "SOCK",
    "send the terminal's master to this unix socket (process.terminal)",
);
pub const PRESERVE_FDS: Flag =
    Flag::value("preserve-fds", None, "N", "the container keeps descriptors 3 to 3+N-1");
pub const NO_PIVOT: Flag =
    Flag::switch("no-pivot", None, "accepted for engines; pivot_root is used");
pub const NO_NEW_KEYRING: Flag =
    Flag::switch("no-new-keyring", None, "accepted for engines; the keyring is inherited");

const FLAGS: &[Flag] = &[
    BUNDLE,
    PID_FILE,
    CONSOLE_SOCKET,
    PRESERVE_FDS,
    NO_PIVOT,
    NO_NEW_KEYRING,
    Flag::switch("detach", Some('d'), "accepted: create always leaves the container on its own"),
];

pub static VERB: Verb = Verb {
    name: "create",
    aliases: &[],
    args: "ID",
    about: "set a container up from a bundle; it waits for start",
    flags: FLAGS,
    flags_end_at_positional: false,
    main,
};

/// What `create` (and `run`) is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<String>,
    pub console_socket: Option<String>,
    pub preserve_fds: u32,
}

impl Create {
    /// The flags `create` shares with `run`, read from either's command line.
    pub fn from(p: &Parsed, verb: &str) -> Result<Create, UsageError> {
        Ok(Create {
            id: p.id(verb)?,
            bundle: PathBuf::from(p.value(BUNDLE.long).unwrap_or(".")),
            pid_file: p.value(PID_FILE.long).map(absolute),
            console_socket: p.value(CONSOLE_SOCKET.long).map(absolute),
            preserve_fds: p.number(PRESERVE_FDS.long)?.unwrap_or(0),
        })
    }
}

fn main(ctx: &Ctx, p: Parsed) -> Result<i32, Failure> {
    let c = Create::from(&p, VERB.name)?;
    create(ctx, &c)?;
    Ok(0)
}

/// The versions of `config.json` this runtime takes (`features` says the same).
pub const OCI_VERSION_MIN: &str = "1.0.0";

pub fn check_oci_version(v: &str) -> Result<(), SetupError> {
    if v.starts_with("1.") {
        Ok(())
    } else {
        Err(SetupError::config("ociVersion", format!("{v:?} is not a 1.x version")))
    }
}

/// Whether the `uidMappings` and `gidMappings` of a mount are read (`features` says so, as
/// `mountExtensions.idmap`): see `check_mount_id_maps`.
pub const MOUNT_ID_MAPS: bool = true;

/// The id maps of an idmapped mount (runtime spec 1.2). Its files are seen through the
/// container's own user namespace, so a mount may give maps only when they are the container's
/// (`linux.uidMappings`, `linux.gidMappings`), with `idmap` or `ridmap`; any other is refused
/// rather than applied otherwise than asked.
pub fn check_mount_id_maps(raw: &serde_json::Value, config: &Spec) -> Result<(), SetupError> {
    let Some(mounts) = raw.get("mounts").and_then(|m| m.as_array()) else { return Ok(()) };
    let linux = config.linux.clone().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let maps = |k: &str| m.get(k).filter(|v| !v.is_null());
        let (uids, gids) = (maps("uidMappings"), maps("gidMappings"));
        if uids.is_none() && gids.is_none() {
            continue;
        }
        let (Some(uids), Some(gids)) = (uids, gids) else {
            return Err(SetupError::config(
                format!("mounts[{i}]"),
                "uidMappings and gidMappings go together",
            ));
        };
        let read = |k: &str, v: &serde_json::Value| {
            serde_json::from_value::<Vec<ns_runtime::spec::IdMapping>>(v.clone()).map_err(|e| {
                SetupError::config(
                    format!("mounts[{i}].{k}"),
                    format!("is not a list of id maps: {e}"),
                )
            })
        };
        let (uids, gids) = (read("uidMappings", uids)?, read("gidMappings", gids)?);
        let idmap = config
            .mounts
            .get(i)
            .is_some_and(|m| m.options.iter().any(|o| o == "idmap" || o == "ridmap"));
        if !idmap {
            return Err(SetupError::config(
                format!("mounts[{i}].options"),
                "a mount with uidMappings needs idmap or ridmap",
            ));
        }
        if linux.uid_mappings.is_empty() || uids != linux.uid_mappings || gids != linux.gid_mappings
        {
            return Err(SetupError::config(
                format!("mounts[{i}].uidMappings"),
                "must be the container's own id maps (linux.uidMappings and gidMappings): an idmapped mount is seen through its user namespace",
            ));
        }
    }
    Ok(())
}

fn io_error(step: &str, path: &std::path::Path, e: std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&path.display().to_string()),
        ns_runtime::sys::Errno(e.raw_os_error().unwrap_or(libc::ENOENT)),
    )
}

/// The bundle's `config.json`, read into a request.
pub fn request(c: &Create) -> Result<RunRequest, SetupError> {
    let bundle =
        std::fs::canonicalize(&c.bundle).map_err(|e| io_error("open bundle", &c.bundle, e))?;
    let cfg = bundle.join("config.json");
    let data = std::fs::read(&cfg).map_err(|e| io_error("read", &cfg, e))?;
    let config: Spec = serde_json::from_slice(&data).map_err(|e| {
        SetupError::config("config.json", format!("is not a valid runtime spec: {e}"))
    })?;
    check_oci_version(&config.oci_version)?;
    let raw: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
    check_mount_id_maps(&raw, &config)?;
    Ok(RunRequest {
        config,
        bundle: Some(bundle.display().to_string()),
        init: false,
        die_with_parent: false,
        create: None,
        exec: None,
        preserve_fds: c.preserve_fds,
        warm: false,
    })
}

/// Create the container; it waits for `start`.
pub fn create(ctx: &Ctx, c: &Create) -> Result<(), SetupError> {
    let mut req = request(c)?;
    let cr = CreateRequest {
        id: c.id.clone(),
        root: ctx.root.display().to_string(),
        pid_file: c.pid_file.clone(),
        monitor: false,
        remove_on_exit: false,
        console_socket: c.console_socket.clone(),
    };
    req.create = Some(cr.clone());
    helper::create(&req, &cr, &mut |e: &Event| {
        if let Event::Warning { message } = e {
            ctx.warn(message);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;
    use serde_json::json;

    fn create(args: &[&str]) -> Result<Create, UsageError> {
        Create::from(&parsed(&VERB, args)?, "create")
    }

    #[test]
    fn the_shims_create_parses_to_its_fields() {
        let c = create(&[
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket=/s.sock",
            "--no-new-keyring",
            "--preserve-fds",
            "2",
            "c1",
        ])
        .unwrap();
        assert_eq!(
            c,
            Create {
                id: "c1".into(),
                bundle: "/b".into(),
                pid_file: Some("/b/init.pid".into()),
                console_socket: Some("/s.sock".into()),
                preserve_fds: 2,
            }
        );
        let c = create(&["-b", "rel", "--pid-file", "p.pid", "c2"]).unwrap();
        assert_eq!(c.bundle, PathBuf::from("rel"));
        assert!(c.pid_file.unwrap().ends_with("/p.pid"), "made absolute");
        assert_eq!(create(&["c3"]).unwrap().bundle, PathBuf::from("."));
    }

    #[test]
    fn bad_create_lines_name_what_is_wrong() {
        assert_eq!(create(&["--bundle"]).unwrap_err().0, "flag --bundle needs a value");
        assert_eq!(create(&["--bundel", "x", "c"]).unwrap_err().0, "unknown flag --bundel");
        assert_eq!(create(&["--bundle", "x"]).unwrap_err().0, "create needs a container id");
        assert_eq!(
            create(&["a", "b"]).unwrap_err().0,
            "create takes one container id, not \"a b\""
        );
        assert_eq!(
            create(&["--preserve-fds", "-1", "c"]).unwrap_err().0,
            "--preserve-fds: \"-1\" is not a number (a whole number ≥ 0)"
        );
    }

    #[test]
    fn a_mount_s_id_maps_are_taken_when_they_are_the_container_s_and_refused_otherwise() {
        let maps = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        let other = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
        let check = |mount: serde_json::Value| {
            let raw = json!({
                "ociVersion": "1.2.0",
                "linux": { "uidMappings": maps, "gidMappings": maps, "namespaces": [{ "type": "user" }] },
                "mounts": [{ "destination": "/plain", "type": "tmpfs" }, mount],
            });
            let config: Spec = serde_json::from_value(raw.clone()).unwrap();
            check_mount_id_maps(&raw, &config).map_err(|e| e.message)
        };
        let bind = |opts: &[&str], uids: &serde_json::Value, gids: &serde_json::Value| json!({ "destination": "/d", "source": "/s", "options": opts, "uidMappings": uids, "gidMappings": gids });
        assert_eq!(check(bind(&["rbind", "ridmap"], &maps, &maps)), Ok(()));
        assert_eq!(
            check(json!({ "destination": "/d", "source": "/s", "options": ["rbind", "idmap"] })),
            Ok(())
        );
        assert_eq!(
            check(bind(&["rbind", "idmap"], &other, &maps)).unwrap_err(),
            "mounts[1].uidMappings: must be the container's own id maps (linux.uidMappings and gidMappings): an idmapped mount is seen through its user namespace"
        );
        assert_eq!(
            check(bind(&["rbind"], &maps, &maps)).unwrap_err(),
            "mounts[1].options: a mount with uidMappings needs idmap or ridmap"
        );
        assert_eq!(
            check(json!({ "destination": "/d", "source": "/s", "options": ["idmap"], "uidMappings": maps })).unwrap_err(),
            "mounts[1]: uidMappings and gidMappings go together"
        );
        assert!(check(bind(&["idmap"], &json!("x"), &maps))
            .unwrap_err()
            .starts_with("mounts[1].uidMappings: is not a list of id maps"));
    }

    #[test]
    fn oci_versions_1_x_are_taken_and_others_refused() {
        assert!(check_oci_version(OCI_VERSION_MIN).is_ok());
        assert!(check_oci_version(ns_runtime::SPEC_VERSION).is_ok());
        assert_eq!(
            check_oci_version("2.0.0").unwrap_err().message,
            "ociVersion: \"2.0.0\" is not a 1.x version"
        );
    }
}
