//! What the helper is asked to do, one JSON object on its control socket: run a spec in the
//! foreground (`RunRequest`), create a container that waits for `start` (`CreateRequest`), or
//! start a process in a running one (`ExecRequest`); and where its answers go (`Sink`: the
//! events of `proto`, to the control socket or the ns-oci command line).

use serde::{Deserialize, Serialize};

use crate::proto::Event;
use crate::spec::{Process, Spec};

/// Where events go: the control socket (helper mode) or the ns-oci command line.
pub type Sink<'a> = &'a mut dyn FnMut(&Event);

/// What the helper is asked to do: run `config` in the foreground.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    #[serde(default)]
    pub config: Spec,
    /// Directory that relative `root.path` and mount sources are resolved against.
    #[serde(default)]
    pub bundle: Option<String>,
    /// Run a minimal init as PID 1 that forwards signals and reaps orphans.
    #[serde(default)]
    pub init: bool,
    /// Kill the container when the process that started the helper dies.
    #[serde(default)]
    pub die_with_parent: bool,
    /// Create a container that lives on its own (OCI `create`), instead of running in the
    /// foreground: its process waits for `start`.
    #[serde(default)]
    pub create: Option<CreateRequest>,
    /// Start a process in a running container instead (`exec`); `config` is then unused.
    #[serde(default)]
    pub exec: Option<ExecRequest>,
    /// A warm container (a pool's): set it up as for the foreground, but stop where the command
    /// would start and wait for it: `config.process.args` may be empty, and the command, its
    /// environment, working directory and stdio arrive later, in one `proto::RunMessage` on
    /// the control socket. One command per container: it is never reused.
    #[serde(default)]
    pub warm: bool,
    /// Descriptors 3 .. 3+N of the caller that the container keeps (OCI `--preserve-fds`).
    #[serde(default)]
    pub preserve_fds: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub id: String,
    /// The state root (`/run/ns`, …).
    pub root: String,
    #[serde(default)]
    pub pid_file: Option<String>,
    /// Stay as the container's parent: keep its log and record its exit status. Without a
    /// monitor (engines: containerd's shim, conmon) the container is left to the caller's
    /// subreaper and inherits the caller's stdio.
    #[serde(default)]
    pub monitor: bool,
    /// With a monitor: remove the container's folder once it has ended (`--rm`).
    #[serde(default)]
    pub remove_on_exit: bool,
    /// With `process.terminal`: the unix socket that receives the terminal's master (OCI
    /// `--console-socket`).
    #[serde(default)]
    pub console_socket: Option<String>,
}

/// Start `process` in the running container `id` of the state root `root` (`exec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    pub id: String,
    pub root: String,
    pub process: Process,
    /// Leave the process running and return once it has started (engines wait for it).
    #[serde(default)]
    pub detach: bool,
    #[serde(default)]
    pub pid_file: Option<String>,
    /// With `process.terminal` and `detach`: where the terminal's master goes.
    #[serde(default)]
    pub console_socket: Option<String>,
}
