//! `create [flags] ID`: set a container up from a bundle; its process waits for `start`.
//! Engines: `create --bundle B --pid-file B/init.pid [--console-socket S] ID` (containerd's
//! shim), with `--no-new-keyring` and `--preserve-fds N` from conmon.

use std::path::PathBuf;

use ns_runtime::launch;
use ns_runtime::proto::Event;
use ns_runtime::spec::{CreateRequest, RunRequest, Spec};
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
    Ok(RunRequest {
        config,
        bundle: Some(bundle.display().to_string()),
        init: false,
        die_with_parent: false,
        create: None,
        exec: None,
        preserve_fds: c.preserve_fds,
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
    launch::create(&req, &cr, &mut |e: &Event| {
        if let Event::Warning { message } = e {
            err!("ns-oci: warning: {message}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::parsed;

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
    fn oci_versions_1_x_are_taken_and_others_refused() {
        assert!(check_oci_version(OCI_VERSION_MIN).is_ok());
        assert!(check_oci_version(ns_runtime::SPEC_VERSION).is_ok());
        assert_eq!(
            check_oci_version("2.0.0").unwrap_err().message,
            "ociVersion: \"2.0.0\" is not a 1.x version"
        );
    }
}
