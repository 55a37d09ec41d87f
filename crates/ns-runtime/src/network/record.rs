//! The attachment record, `DIR/attachments.json`: what was made for a container (written
//! after each step of the attachment), and the teardown that undoes exactly that.

use std::path::{Path, PathBuf};

use ns_net::{Attachment, Network};
use serde::{Deserialize, Serialize};

use super::drivers::{dns_error, driver, io_error, net_error};
use super::plan::{Plan, ANNOTATION};
use crate::error::{Result, SetupError};

/// The record of what was attached, in the plan's directory.
pub const RECORD: &str = "attachments.json";

/// What teardown needs, as recorded in `DIR/attachments.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub state_dir: String,
    pub dns_dir: String,
    pub attachments: Vec<Recorded>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub network: Network,
    pub attachment: Attachment,
    /// Joined to the network's resolver (left again at teardown).
    #[serde(default)]
    pub dns: bool,
}

pub(super) fn save(dir: &Path, record: &Record) -> Result<()> {
    let data = serde_json::to_vec_pretty(record).unwrap_or_default();
    crate::files::write_atomic(&dir.join(RECORD), &data)
}

/// Undoes what a record says: each network's resolver left, its attachment torn down, then
/// the folder removed. Goes on past errors and returns them all.
pub fn teardown(dir: &Path, record: &Record) -> Vec<SetupError> {
    let mut errs = Vec::new();
    let d = driver(&record.state_dir);
    for r in record.attachments.iter().rev() {
        if r.dns {
            match ns_dns::NetworkFiles::new(&record.dns_dir, &r.network.name) {
                Ok(files) => {
                    if let Err(e) = ns_dns::leave_idle(&files, &record.id) {
                        errs.push(dns_error(e));
                    }
                }
                Err(e) => errs.push(dns_error(e)),
            }
        }
        if let Err(list) = d.teardown(&r.network, &r.attachment) {
            errs.extend(list.0.into_iter().map(net_error));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errs.push(io_error("remove", dir, &e));
        }
    }
    errs
}

/// The teardown of a container whose spec had a plan, from its record (for `delete`): nothing
/// when there is no record (torn down already, or never attached).
pub fn teardown_recorded(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<SetupError> {
    let Some(text) = annotations.get(ANNOTATION) else { return Vec::new() };
    let Ok(plan) = serde_json::from_str::<Plan>(text) else { return Vec::new() };
    let dir = PathBuf::from(&plan.dir);
    let record = match std::fs::read(dir.join(RECORD)) {
        Ok(b) => match serde_json::from_slice::<Record>(&b) {
            Ok(r) => r,
            Err(_) => return Vec::new(),
        },
        Err(_) => return Vec::new(),
    };
    if record.id != plan.id {
        return Vec::new();
    }
    teardown(&dir, &record)
}
