//! The facts the TypeScript packages share with the runtime, rendered as one TypeScript module:
//! `packages/core/src/generated/facts.ts`. Capability and namespace names, the files of a
//! container's folder, the attach socket's frames, the statuses of a container and the events
//! the helper sends are defined once, here in Rust, in the tables the runtime works from; the
//! module is generated from them and checked in, so `@ns/core` imports plain constants and
//! types at no cost at run time.
//!
//! The test at the end fails when the checked-in module is not what the tables render now;
//! `npm run generate` (this test with `NS_UPDATE_GENERATED=1`) writes it again.

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::SetupError;
use crate::namespaces::NsKind;
use crate::proto::Event;
use crate::state::Status;
use crate::{attach, caps, image_root, state};

/// Where the module lives, from this crate.
pub const MODULE: &str = "../../packages/core/src/generated/facts.ts";

const HEADER: &str = "\
// Generated from the runtime's own tables by crates/ns-runtime/src/facts.rs: do not edit.
// `npm run generate` writes it again; a cargo test and `npm run check` fail while it is stale.
";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn doc(out: &mut String, text: &str) {
    let _ = writeln!(out, "\n/** {text} */");
}

fn string_list(out: &mut String, text: &str, name: &str, items: &[&str]) {
    doc(out, text);
    let _ = writeln!(out, "export const {name} = [");
    for i in items {
        let _ = writeln!(out, "  {},", quote(i));
    }
    let _ = writeln!(out, "] as const");
}

fn record(out: &mut String, text: &str, name: &str, entries: &[(&str, String)]) {
    doc(out, text);
    let _ = writeln!(out, "export const {name} = {{");
    for (k, v) in entries {
        let _ = writeln!(out, "  {k}: {v},");
    }
    let _ = writeln!(out, "}} as const");
}

fn ts_type(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => match a.first() {
            Some(x) => format!("{}[]", ts_type(x)),
            None => "unknown[]".into(),
        },
        Value::Object(m) => {
            let fields: Vec<String> =
                m.iter().map(|(k, v)| format!("{k}: {}", ts_type(v))).collect();
            format!("{{ {} }}", fields.join("; "))
        }
    }
}

/// The fields of one kind of message, from two samples of it: `full` with every optional
/// field set, `bare` with none. A field `bare` leaves out is optional; one it sets to null may
/// be null. `tag` is the field that tells the kinds apart (its value becomes a literal type);
/// `named` gives the type of a field by name (a structure rendered on its own).
fn fields(full: &Value, bare: &Value, tag: Option<&str>, named: &[(&str, &str)]) -> Vec<String> {
    let (Value::Object(full), Value::Object(bare)) = (full, bare) else { return Vec::new() };
    let mut keys: Vec<&String> = full.keys().collect();
    keys.sort_by_key(|k| (Some(k.as_str()) != tag, k.as_str()));
    keys.into_iter()
        .map(|k| {
            let v = &full[k.as_str()];
            let mut t = if Some(k.as_str()) == tag {
                quote(v.as_str().unwrap_or_default())
            } else if let Some((_, n)) = named.iter().find(|(f, _)| f == k) {
                (*n).to_owned()
            } else {
                ts_type(v)
            };
            let optional = if bare.get(k.as_str()).is_none() { "?" } else { "" };
            if bare.get(k.as_str()) == Some(&Value::Null) && !full[k.as_str()].is_null() {
                t.push_str(" | null");
            }
            format!("{k}{optional}: {t}")
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A SetupError with every optional field set, and with none.
fn setup_errors() -> (SetupError, SetupError) {
    let full = SetupError {
        step: "step".into(),
        path: Some("/path".into()),
        errno: Some(1),
        code: "EPERM".into(),
        message: "failed".into(),
        hint: Some("hint".into()),
    };
    let bare = SetupError { path: None, errno: None, hint: None, ..full.clone() };
    (full, bare)
}

/// The name of a kind of event. Every kind must be here (it does not compile otherwise) and
/// have its samples in `events`.
fn event_kind(e: &Event) -> &'static str {
    match e {
        Event::Created { .. } => "created",
        Event::Started { .. } => "started",
        Event::Ready { .. } => "ready",
        Event::Error { .. } => "error",
        Event::Warning { .. } => "warning",
        Event::Exited { .. } => "exited",
    }
}

/// One event of each kind, with every optional field set and with none.
fn events() -> Vec<(Event, Event)> {
    let (err, _) = setup_errors();
    vec![
        (Event::Created { pid: 1 }, Event::Created { pid: 1 }),
        (Event::Started { pid: 1 }, Event::Started { pid: 1 }),
        (Event::Ready { pid: 1 }, Event::Ready { pid: 1 }),
        (Event::Error { error: err.clone() }, Event::Error { error: err }),
        (Event::Warning { message: "m".into() }, Event::Warning { message: "m".into() }),
        (
            Event::Exited { exit_code: Some(0), signal: Some(9), oom_killed: true },
            Event::Exited { exit_code: None, signal: None, oom_killed: false },
        ),
    ]
}

/// Every status of a container, in the order of its life. A new one does not compile until
/// it is placed here.
fn statuses() -> Vec<&'static str> {
    let all = [Status::Creating, Status::Created, Status::Running, Status::Paused, Status::Stopped];
    for s in all {
        match s {
            Status::Creating
            | Status::Created
            | Status::Running
            | Status::Paused
            | Status::Stopped => {}
        }
    }
    all.iter().map(|s| s.as_str()).collect()
}

/// The module, as the tables say it now.
pub fn typescript() -> String {
    let mut out = String::from(HEADER);
    string_list(
        &mut out,
        "Every capability the runtime knows, by the runtime spec's names (caps::NAMES).",
        "capabilityNames",
        &caps::NAMES,
    );
    let namespaces: Vec<&str> = NsKind::ALL.iter().map(|k| k.oci_name()).collect();
    string_list(
        &mut out,
        "The types of `linux.namespaces[]` the runtime accepts (namespaces::NsKind).",
        "namespaceNames",
        &namespaces,
    );
    record(
        &mut out,
        "The files of a container's folder under the state root (state, attach).",
        "stateFiles",
        &[
            ("state", quote(state::STATE_FILE)),
            ("execFifo", quote(state::EXEC_FIFO)),
            ("exit", quote(state::EXIT_FILE)),
            ("log", quote(state::LOG_FILE)),
            ("config", quote(state::CONFIG_FILE)),
            ("attachSocket", quote(attach::ATTACH_SOCKET)),
        ],
    );
    record(
        &mut out,
        "An image as a container's root: the annotation that names its overlay, and the files \
         of the container's directory in the image store (image_root).",
        "imageRootFacts",
        &[
            ("annotation", quote(image_root::ANNOTATION)),
            ("record", quote(image_root::RECORD)),
            ("upper", quote(image_root::UPPER)),
            ("work", quote(image_root::WORK)),
        ],
    );
    record(
        &mut out,
        "The kinds of frame a client writes to the attach socket: one byte of kind, four of \
         length (big endian), then the payload (attach).",
        "frameKinds",
        &[("input", attach::FRAME_INPUT.to_string()), ("resize", attach::FRAME_RESIZE.to_string())],
    );
    doc(&mut out, "The largest payload of a frame: the monitor lets go a client that sends more.");
    let _ = writeln!(out, "export const maxFramePayload = {}", attach::MAX_FRAME);
    doc(&mut out, "The statuses of a container, in the order of its life (state::Status).");
    let statuses: Vec<String> = statuses().iter().map(|s| quote(s)).collect();
    let _ = writeln!(out, "export type ContainerStatus = {}", statuses.join(" | "));

    let (full, bare) = setup_errors();
    doc(&mut out, "A SetupError as it crosses process boundaries, in JSON (error::SetupError).");
    let _ = writeln!(out, "export interface SetupErrorJson {{");
    for f in fields(&json(&full), &json(&bare), None, &[]) {
        let _ = writeln!(out, "  {f}");
    }
    let _ = writeln!(out, "}}");
    doc(
        &mut out,
        "What the helper sends on its control socket, one JSON object a line (proto::Event).",
    );
    let _ = writeln!(out, "export type HelperEvent =");
    for (full, bare) in events() {
        let (f, b) = (json(&full), json(&bare));
        debug_assert_eq!(f["event"], event_kind(&full));
        let fs = fields(&f, &b, Some("event"), &[("error", "SetupErrorJson")]);
        let _ = writeln!(out, "  | {{ {} }}", fs.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_every_kind_of_event_once_and_serialize_as_their_kind() {
        let kinds: Vec<&str> = events().iter().map(|(e, _)| event_kind(e)).collect();
        let mut unique = kinds.clone();
        unique.dedup();
        assert_eq!(unique, kinds);
        for (full, bare) in events() {
            assert_eq!(json(&full)["event"], event_kind(&full));
            assert_eq!(json(&bare)["event"], event_kind(&bare));
        }
    }

    #[test]
    fn fields_absent_are_optional_and_null_ones_nullable() {
        let m = typescript();
        assert!(m.contains("  path?: string\n"), "{m}");
        assert!(m.contains("  code: string\n"), "{m}");
        assert!(
            m.contains(
                "  | { event: 'exited'; exitCode: number | null; oomKilled: boolean; signal: number | null }"
            ),
            "{m}"
        );
        assert!(m.contains("  | { event: 'error'; error: SetupErrorJson }"), "{m}");
        assert!(m.contains(
            "export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped'"
        ));
        assert!(m.contains("  'CAP_CHECKPOINT_RESTORE',\n] as const"));
    }

    #[test]
    fn the_config_file_is_the_one_a_container_folder_reads() {
        let root = std::env::temp_dir().join(format!("ns-facts-{}", std::process::id()));
        let dir = state::ContainerDir::create(&root, "c").unwrap();
        std::fs::write(dir.file(state::CONFIG_FILE), r#"{"ociVersion":"1.2.0","hostname":"h"}"#)
            .unwrap();
        let read = dir.read_config();
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(read.and_then(|s| s.hostname).as_deref(), Some("h"));
    }

    /// The checked-in module is what the tables render (with `NS_UPDATE_GENERATED=1`: make it so).
    #[test]
    fn the_generated_typescript_module_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(MODULE);
        let now = typescript();
        if std::env::var_os("NS_UPDATE_GENERATED").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &now).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == now,
            "{} is not what the runtime's tables render: run `npm run generate` and commit it",
            path.display()
        );
    }
}
