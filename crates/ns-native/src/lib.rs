//! napi-rs bindings of ns. Thin on purpose: it starts the native helper (`ns-oci init`) with
//! posix_spawn — vfork-fast whatever the size of Node, and no fork of a multi-threaded
//! process — on a thread of the pool (the event loop does not wait for the exec), hands back
//! the descriptors, and reaps it. From the second helper on, a zygote forks them (zygote.rs). The container work itself happens in
//! the helper, through `ns-runtime`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use napi::bindgen_prelude::*;
use napi_derive::napi;

mod image;
mod zygote;

fn errno_error(what: &str, err: std::io::Error) -> Error {
    let e = ns_runtime::sys::Errno(err.raw_os_error().unwrap_or(libc::EIO));
    Error::new(Status::GenericFailure, format!("{}: failed to {what}: {}", e.name(), e.describe()))
}

fn last_error(what: &str) -> Error {
    errno_error(what, std::io::Error::last_os_error())
}

/// A copy of `fd` numbered 10 or above, close-on-exec, so the dup2 calls of the spawn cannot
/// clobber one another.
pub(crate) fn high(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor number; a fresh descriptor is returned.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if r < 0 {
        return Err(last_error("duplicate a descriptor"));
    }
    // SAFETY: r is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    ns_runtime::sys::pipe()
        .map_err(|e| errno_error("create a pipe", std::io::Error::from_raw_os_error(e.0)))
}

#[napi(object)]
pub struct PrepareOptions {
    /// For stdin, stdout and stderr: -1 makes a pipe, -2 gives /dev/null, any other number is a
    /// descriptor of this process that the container receives.
    pub stdio: Vec<i32>,
}

#[napi(object)]
pub struct PreparedHelper {
    /// What `startHelper` is given to start the helper with these descriptors.
    pub token: u32,
    /// Our end of the control socket: the request goes in, events come out.
    pub control: i32,
    /// Our ends of the pipes asked for (-1 in `stdio`).
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
}

/// The helper's ends of its descriptors (stdin, stdout, stderr, control), between
/// `prepareHelper` and `startHelper`.
/// With the environment as it was then: the spawn runs on another thread, where reading
/// `environ` would race with Node changing it.
static PENDING: std::sync::Mutex<Vec<Pending>> = std::sync::Mutex::new(Vec::new());

/// A token, the helper's descriptors, its environment.
type Pending = (u32, Vec<OwnedFd>, Vec<CString>);
static NEXT_TOKEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The descriptors of a helper, made at once (so the caller has its ends of the pipes before the
/// helper exists); `startHelper` then starts it off the event loop.
#[napi]
pub fn prepare_helper(opts: PrepareOptions) -> Result<PreparedHelper> {
    if opts.stdio.len() != 3 {
        return Err(Error::new(Status::InvalidArg, "stdio: must have 3 entries"));
    }
    let mut pair = [0 as RawFd; 2];
    // SAFETY: pair is a valid array of two ints.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return Err(last_error("create the control socket"));
    }
    // SAFETY: socketpair returned two fresh descriptors.
    let (ours_ctl, theirs_ctl) =
        unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let theirs_ctl = high(theirs_ctl.as_raw_fd())?;

    let (mut child_fds, our_ends) = make_stdio(&opts.stdio)?;
    child_fds.push(theirs_ctl);
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PENDING
        .lock()
        .map_err(|_| Error::new(Status::GenericFailure, "helper registry poisoned"))?
        .push((token, child_fds, env));
    let mut ends = our_ends.into_iter().map(|o| o.map(IntoRawFd::into_raw_fd));
    Ok(PreparedHelper {
        token,
        control: ours_ctl.into_raw_fd(),
        stdin: ends.next().flatten(),
        stdout: ends.next().flatten(),
        stderr: ends.next().flatten(),
    })
}

/// Stdin, stdout and stderr as `stdio` asks (see `PrepareOptions`): the other side's
/// descriptors (numbered 10 or above), and ours of the pipes.
fn make_stdio(stdio: &[i32]) -> Result<(Vec<OwnedFd>, Vec<Option<OwnedFd>>)> {
    if stdio.len() != 3 {
        return Err(Error::new(Status::InvalidArg, "stdio: must have 3 entries"));
    }
    let mut child_fds: Vec<OwnedFd> = Vec::with_capacity(4);
    let mut our_ends: Vec<Option<OwnedFd>> = Vec::with_capacity(3);
    for (i, spec) in stdio.iter().enumerate() {
        let (theirs, ours) = stdio_end(i, *spec, true)?;
        child_fds.push(theirs);
        our_ends.push(ours);
    }
    Ok((child_fds, our_ends))
}

/// Stdio slot `i` as `spec` asks (-1 a pipe, -2 /dev/null, else a descriptor of ours to copy):
/// the other side's descriptor (numbered 10 or above when it is to be put in place with dup2,
/// `high`), and ours of a pipe.
fn stdio_end(i: usize, spec: i32, high_fd: bool) -> Result<(OwnedFd, Option<OwnedFd>)> {
    let place = |fd: OwnedFd| if high_fd { high(fd.as_raw_fd()) } else { Ok(fd) };
    match spec {
        -1 => {
            let (r, w) = pipe()?;
            let (theirs, ours) = if i == 0 { (r, w) } else { (w, r) };
            Ok((place(theirs)?, Some(ours)))
        }
        -2 => {
            let null = ns_runtime::sys::open("/dev/null", libc::O_RDWR).map_err(|e| {
                errno_error("open /dev/null", std::io::Error::from_raw_os_error(e.0))
            })?;
            Ok((place(null)?, None))
        }
        // A copy: the caller's descriptor may be closed before the helper starts.
        fd if fd >= 0 => {
            let copy = high(fd).map_err(|_| {
                Error::new(
                    Status::InvalidArg,
                    format!("stdio[{i}]: {fd} is not an open descriptor"),
                )
            })?;
            Ok((copy, None))
        }
        other => Err(Error::new(Status::InvalidArg, format!("stdio[{i}]: invalid value {other}"))),
    }
}

#[napi(object)]
pub struct SentRun {
    /// Our ends of the pipes asked for (-1 in `stdio`).
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
}

/// Give a warm helper its command: `message` (one JSON line, a RunMessage whose `stdio` names
/// the slots sent) on its control socket `control`, with stdin, stdout and stderr made as
/// `stdio` says (as for `prepareHelper`; -3: not sent, the sandbox keeps the one it was made
/// with). Returns our ends of the pipes made; the helper's copies are closed here.
#[napi]
pub fn send_run(control: i32, message: String, stdio: Vec<i32>) -> Result<SentRun> {
    if stdio.len() != 3 {
        return Err(Error::new(Status::InvalidArg, "stdio: must have 3 entries"));
    }
    let mut theirs = Vec::with_capacity(3);
    let mut our_ends: Vec<Option<OwnedFd>> = Vec::with_capacity(3);
    for (i, spec) in stdio.iter().enumerate() {
        if *spec == -3 {
            our_ends.push(None);
            continue;
        }
        let (fd, ours) = stdio_end(i, *spec, false)?;
        theirs.push(fd);
        our_ends.push(ours);
    }
    let raw: Vec<RawFd> = theirs.iter().map(AsRawFd::as_raw_fd).collect();
    let mut line = message.into_bytes();
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    ns_runtime::proto::send_line(control, &raw, &line).map_err(|e| {
        errno_error("send the command to the helper", std::io::Error::from_raw_os_error(e.0))
    })?;
    drop(theirs);
    let mut ends = our_ends.into_iter().map(|o| o.map(IntoRawFd::into_raw_fd));
    Ok(SentRun {
        stdin: ends.next().flatten(),
        stdout: ends.next().flatten(),
        stderr: ends.next().flatten(),
    })
}

pub struct StartHelper {
    token: u32,
    helper: String,
    own_process_group: bool,
}

impl Task for StartHelper {
    type Output = i32;
    type JsValue = i32;

    /// On a thread of the pool: posix_spawn waits until the helper has executed, which under
    /// load takes a while, and the event loop must not wait with it.
    fn compute(&mut self) -> Result<Self::Output> {
        let (_, child_fds, env) = {
            let mut pending = PENDING
                .lock()
                .map_err(|_| Error::new(Status::GenericFailure, "helper registry poisoned"))?;
            let at = pending
                .iter()
                .position(|(t, _, _)| *t == self.token)
                .ok_or_else(|| Error::new(Status::InvalidArg, "token: unknown or used"))?;
            pending.swap_remove(at)
        };
        // The helper's descriptors are closed here whatever happens: on failure the caller sees
        // its control socket end. A helper relaying a terminal stays in the caller's process
        // group, which only a spawn gives it.
        if self.own_process_group && zygote::wanted(&env) {
            match zygote::start(&self.helper, &child_fds, &env) {
                zygote::Started::Forked(pid) => return Ok(pid),
                zygote::Started::Lost(why) => return Err(Error::new(Status::GenericFailure, why)),
                zygote::Started::NotForked => {}
            }
        }
        spawn(&self.helper, "init", &child_fds, &env, self.own_process_group)
    }

    fn resolve(&mut self, _env: Env, pid: i32) -> Result<Self::JsValue> {
        Ok(pid)
    }
}

/// Start `helper init` with the descriptors `prepareHelper` made: stdio, and the control socket
/// as fd 3. Resolves with its pid; `ownProcessGroup` puts it in a process group of its own, so
/// a terminal's signals reach the container once, through the caller.
#[napi(ts_return_type = "Promise<number>")]
pub fn start_helper(token: u32, helper: String, own_process_group: bool) -> AsyncTask<StartHelper> {
    AsyncTask::new(StartHelper { token, helper, own_process_group })
}

/// posix_spawn `helper mode` with `child_fds` as its descriptors 0, 1, 2, ...
pub(crate) fn spawn(
    helper: &str,
    mode: &str,
    child_fds: &[OwnedFd],
    env: &[CString],
    own_process_group: bool,
) -> Result<i32> {
    let path = CString::new(helper)
        .map_err(|_| Error::new(Status::InvalidArg, "helper: contains a NUL byte"))?;
    let arg0 = CString::new("ns-oci").unwrap_or_default();
    let arg1 = CString::new(mode)
        .map_err(|_| Error::new(Status::InvalidArg, "mode: contains a NUL byte"))?;
    let argv = [
        arg0.as_ptr() as *mut libc::c_char,
        arg1.as_ptr() as *mut libc::c_char,
        std::ptr::null_mut(),
    ];

    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions and attributes are initialised before use and destroyed after;
    // every pointer passed is valid for the duration of the call.
    let rc = unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut fa);
        for (i, fd) in child_fds.iter().enumerate() {
            libc::posix_spawn_file_actions_adddup2(&mut fa, fd.as_raw_fd(), i as libc::c_int);
        }

        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        // Node ignores SIGPIPE and blocks some signals; the container must not inherit that.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::posix_spawnattr_setsigmask(&mut attr, &none);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigdelset(&mut all, libc::SIGKILL);
        libc::sigdelset(&mut all, libc::SIGSTOP);
        libc::posix_spawnattr_setsigdefault(&mut attr, &all);
        let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
        if own_process_group {
            flags |= libc::POSIX_SPAWN_SETPGROUP;
            libc::posix_spawnattr_setpgroup(&mut attr, 0);
        }
        libc::posix_spawnattr_setflags(&mut attr, flags as libc::c_short);

        let mut envp: Vec<*mut libc::c_char> =
            env.iter().map(|e| e.as_ptr() as *mut libc::c_char).collect();
        envp.push(std::ptr::null_mut());
        let rc =
            libc::posix_spawn(&mut pid, path.as_ptr(), &fa, &attr, argv.as_ptr(), envp.as_ptr());
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut attr);
        rc
    };
    if rc != 0 {
        return Err(errno_error(
            &format!("start the helper {helper}"),
            std::io::Error::from_raw_os_error(rc),
        ));
    }
    Ok(pid)
}

#[napi(object)]
pub struct WaitStatus {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

pub struct Reap {
    pid: i32,
}

impl Task for Reap {
    type Output = (Option<i32>, Option<i32>);
    type JsValue = WaitStatus;

    fn compute(&mut self) -> Result<Self::Output> {
        if let Some(status) = zygote::reap(self.pid) {
            return Ok(status);
        }
        let (_, status) = ns_runtime::sys::waitpid(self.pid, 0).map_err(|e| {
            errno_error(
                &format!("wait for pid {}", self.pid),
                std::io::Error::from_raw_os_error(e.0),
            )
        })?;
        Ok(ns_runtime::sys::decode_status(status))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(WaitStatus { exit_code: out.0, signal: out.1 })
    }
}

/// Wait for the helper `pid` to end (call it once its control socket has closed).
#[napi(ts_return_type = "Promise<WaitStatus>")]
pub fn reap(pid: i32) -> AsyncTask<Reap> {
    AsyncTask::new(Reap { pid })
}

#[napi(object)]
pub struct UsernsBlock {
    pub reason: String,
    pub fix: String,
}

#[napi(object)]
pub struct HostInfo {
    pub euid: u32,
    pub egid: u32,
    /// Why user namespaces cannot be created here, and the command that allows them.
    pub userns_block: Option<UsernsBlock>,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup_layout: String,
    pub version: String,
}

/// What this host allows.
#[napi]
pub fn host_info() -> HostInfo {
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    HostInfo {
        euid,
        egid,
        userns_block: ns_runtime::host::userns_block(euid)
            .map(|b| UsernsBlock { reason: b.reason, fix: b.fix }),
        cgroup_layout: ns_runtime::host::cgroup_layout().to_owned(),
        version: ns_runtime::VERSION.to_owned(),
    }
}

// Containers that live on their own: the lifecycle verbs of ns-runtime, called in-process (no
// helper to start). Errors cross as the JSON of a SetupError, which @ns/core turns into NsError.

fn setup_error(e: ns_runtime::SetupError) -> Error {
    Error::new(
        Status::GenericFailure,
        serde_json::to_string(&e).unwrap_or_else(|_| e.message.clone()),
    )
}

/// The default state root: /run/ns for root, $XDG_RUNTIME_DIR/ns otherwise.
#[napi]
pub fn default_state_root() -> String {
    ns_runtime::state::default_root().display().to_string()
}

/// The state of one container, as JSON (the runtime spec's state, plus `exit` when stopped).
#[napi]
pub fn container_state(root: String, id: String) -> Result<String> {
    let v = ns_runtime::lifecycle::state(std::path::Path::new(&root), &id).map_err(setup_error)?;
    Ok(serde_json::to_string(&v).unwrap_or_default())
}

/// Every container under `root`, as a JSON array of states.
#[napi]
pub fn container_list(root: String) -> String {
    serde_json::to_string(&ns_runtime::lifecycle::list(std::path::Path::new(&root)))
        .unwrap_or_else(|_| "[]".into())
}

/// Send a signal (name or number) to a container's first process, or to all of them.
#[napi]
pub fn container_kill(root: String, id: String, signal: String, all: bool) -> Result<()> {
    let sig = ns_runtime::lifecycle::parse_signal(&signal).map_err(setup_error)?;
    ns_runtime::lifecycle::kill(std::path::Path::new(&root), &id, sig, all).map_err(setup_error)
}

pub enum Verb {
    Start,
    Delete { force: bool },
}

pub struct Lifecycle {
    root: String,
    id: String,
    verb: Verb,
}

impl Task for Lifecycle {
    /// The warnings of poststart or poststop hooks that failed (the container goes on).
    type Output = Vec<String>;
    type JsValue = Vec<String>;

    fn compute(&mut self) -> Result<Vec<String>> {
        let root = std::path::Path::new(&self.root);
        match self.verb {
            Verb::Start => ns_runtime::lifecycle::start(root, &self.id),
            Verb::Delete { force } => ns_runtime::lifecycle::delete(root, &self.id, force),
        }
        .map_err(setup_error)
    }

    fn resolve(&mut self, _env: Env, out: Vec<String>) -> Result<Vec<String>> {
        Ok(out)
    }
}

/// Start a created container (off the event loop: it waits for the process to take the go).
/// Resolves to the warnings of its poststart hooks that failed.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn container_start(root: String, id: String) -> AsyncTask<Lifecycle> {
    AsyncTask::new(Lifecycle { root, id, verb: Verb::Start })
}

/// Delete a container (with `force`, a running one is killed first). Resolves to the warnings
/// of its poststop hooks that failed.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn container_delete(root: String, id: String, force: bool) -> AsyncTask<Lifecycle> {
    AsyncTask::new(Lifecycle { root, id, verb: Verb::Delete { force } })
}

pub struct Freeze {
    root: String,
    id: String,
    on: bool,
}

impl Task for Freeze {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        let root = std::path::Path::new(&self.root);
        if self.on {
            ns_runtime::lifecycle::pause(root, &self.id)
        } else {
            ns_runtime::lifecycle::resume(root, &self.id)
        }
        .map_err(setup_error)
    }

    fn resolve(&mut self, _env: Env, _out: ()) -> Result<()> {
        Ok(())
    }
}

/// Freeze every process of a container (its cgroup's freezer), off the event loop: it waits
/// until the kernel says the cgroup is frozen.
#[napi(ts_return_type = "Promise<void>")]
pub fn container_pause(root: String, id: String) -> AsyncTask<Freeze> {
    AsyncTask::new(Freeze { root, id, on: true })
}

/// Thaw a paused container.
#[napi(ts_return_type = "Promise<void>")]
pub fn container_resume(root: String, id: String) -> AsyncTask<Freeze> {
    AsyncTask::new(Freeze { root, id, on: false })
}

pub struct Update {
    root: String,
    id: String,
    resources: String,
}

impl Task for Update {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        let r: ns_runtime::resources::Resources =
            serde_json::from_str(&self.resources).map_err(|e| {
                setup_error(ns_runtime::SetupError::config(
                    "resources",
                    format!("is not a runtime spec's linux.resources: {e}"),
                ))
            })?;
        ns_runtime::lifecycle::update(std::path::Path::new(&self.root), &self.id, &r)
            .map_err(setup_error)
    }

    fn resolve(&mut self, _env: Env, _out: ()) -> Result<()> {
        Ok(())
    }
}

/// Write new limits (`linux.resources` as JSON: only the fields given) to a living container's
/// cgroup; its config keeps them.
#[napi(ts_return_type = "Promise<void>")]
pub fn container_update(root: String, id: String, resources: String) -> AsyncTask<Update> {
    AsyncTask::new(Update { root, id, resources })
}

/// One-shot figures from a container's cgroup, as JSON.
#[napi]
pub fn container_stats(root: String, id: String) -> Result<String> {
    let s = ns_runtime::lifecycle::stats(std::path::Path::new(&root), &id).map_err(setup_error)?;
    Ok(serde_json::to_string(&s).unwrap_or_default())
}

/// One operation on container networks (see `ns_runtime::network::call`): its arguments and
/// its answer as JSON. Errors cross as the JSON of a SetupError.
#[napi]
pub fn network_call(op: String, args: String) -> Result<String> {
    let v = ns_runtime::network::call(&op, &args).map_err(setup_error)?;
    Ok(serde_json::to_string(&v).unwrap_or_default())
}
