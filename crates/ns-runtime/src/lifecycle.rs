//! The verbs of a container that lives on its own, after `create` (see `helper::create`):
//! `start`, `kill`, `delete`, `state`, `list`. Each takes the container's lock.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Result, SetupError};
use crate::state::{self, ContainerDir, StateView, Status};
use crate::sys::{self, Errno};

fn wrong_status(id: &str, verb: &str, status: Status) -> SetupError {
    let mut e = SetupError::sys(verb, Some(id), Errno(libc::EINVAL));
    e.code = "ESTATE".into();
    e.message = format!("cannot {verb} container {id:?}: it is {}", status.as_str());
    e
}

/// Release a created container: its process runs the startContainer hooks and goes on to exec
/// the command; then the poststart hooks run. Returns the warnings of failed poststart hooks
/// (the runtime spec has them logged, and the container goes on).
pub fn start(root: &Path, id: &str) -> Result<Vec<String>> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let rec = dir.read_record()?;
    let status = dir.status(&rec);
    if status != Status::Created {
        return Err(wrong_status(id, "start", status));
    }
    let config = dir.read_config();
    let path = dir.file(state::EXEC_FIFO).display().to_string();
    // Non-blocking: if the process died, nobody will ever write; we poll and look.
    let fd = sys::open(&path, libc::O_RDONLY | libc::O_NONBLOCK)
        .map_err(|e| SetupError::sys("open the exec fifo", Some(&path), e))?;
    // The process runs its startContainer hooks first: they have their own timeouts.
    let hooks_run = config
        .as_ref()
        .and_then(|c| c.hooks.as_ref())
        .is_some_and(|h| !h.start_container.is_empty());
    let deadline = (!hooks_run).then(|| Instant::now() + Duration::from_secs(10));
    // What the process writes, to the end of the fifo: the go-ahead byte (`0`), or `E` and why
    // its startContainer hooks failed. It closes the fifo as it executes the command (or as it
    // dies), so poststart hooks run once the command runs.
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut answer = Vec::new();
    let read_all = |answer: &mut Vec<u8>| -> Result<bool> {
        // Whatever is in the fifo now; true once the writer has closed after writing.
        loop {
            let mut b = [0u8; 4096];
            match sys::read(raw, &mut b) {
                Ok(0) => return Ok(!answer.is_empty()),
                Ok(n) => answer.extend_from_slice(&b[..n]),
                Err(Errno(libc::EAGAIN)) => return Ok(false),
                Err(e) => return Err(SetupError::sys("read the exec fifo", Some(&path), e)),
            }
        }
    };
    loop {
        let mut pfd = libc::pollfd { fd: raw, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        if read_all(&mut answer)? {
            break;
        }
        if !ContainerDir::alive(&rec) {
            // Gone: what it wrote before it went is in the fifo by now.
            read_all(&mut answer)?;
            if !answer.is_empty() {
                break;
            }
            let mut e = SetupError::sys("start", Some(id), Errno(libc::ESRCH));
            e.message =
                format!("cannot start container {id:?}: its process is not waiting any more");
            return Err(e);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let mut e = SetupError::sys("start", Some(id), Errno(libc::ETIMEDOUT));
            e.message = format!(
                "cannot start container {id:?}: its process did not take the go-ahead within 10s"
            );
            return Err(e);
        }
    }
    match std::fs::remove_file(&path) {
        // Gone with its folder: a container made to be removed when it ends (`--rm`) may have
        // run, ended and been removed by its monitor since it took the go-ahead.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(SetupError::sys(
                "remove the exec fifo",
                Some(&path),
                Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            ))
        }
        Ok(()) => {}
    }
    if let Some(why) = answer.strip_prefix(b"E") {
        // A startContainer hook failed: the container stopped (its process exits), and the
        // engine deletes it, which runs the poststop hooks.
        let e = serde_json::from_slice::<SetupError>(why).unwrap_or_else(|_| {
            SetupError::sys("run hook hooks.startContainer", Some(id), Errno(libc::EIO))
        });
        return Err(e);
    }
    Ok(run_recorded_hooks(config, &rec, "poststart", "running"))
}

/// The poststart and poststop hooks of a container, from the config it was created with: each
/// is run whatever the others did, and a failure is a warning, as the runtime spec asks.
fn run_recorded_hooks(
    config: Option<crate::spec::Spec>,
    rec: &state::Record,
    kind: &str,
    status: &str,
) -> Vec<String> {
    let Some(hooks) = config.and_then(|s| s.hooks) else {
        return Vec::new();
    };
    let list = if kind == "poststart" { &hooks.poststart } else { &hooks.poststop };
    let st = crate::hooks::HookState {
        oci_version: &rec.oci_version,
        id: &rec.id,
        status,
        pid: rec.pid,
        bundle: &rec.bundle,
        annotations: &rec.annotations,
    };
    crate::hooks::run_hooks_warning(kind, list, &st)
}

/// Freeze every process of a running (or created) container (`pause`).
pub fn pause(root: &Path, id: &str) -> Result<()> {
    freeze(root, id, true)
}

/// Thaw a paused container (`resume`).
pub fn resume(root: &Path, id: &str) -> Result<()> {
    freeze(root, id, false)
}

fn freeze(root: &Path, id: &str, on: bool) -> Result<()> {
    let verb = if on { "pause" } else { "resume" };
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let rec = dir.read_record()?;
    let status = dir.status(&rec);
    let ok = if on {
        matches!(status, Status::Running | Status::Created)
    } else {
        status == Status::Paused
    };
    if !ok {
        return Err(wrong_status(id, verb, status));
    }
    let Some(cg) = &rec.cgroup else {
        // What the container is, not a file gone: a state error, as a wrong status is.
        let mut e = SetupError::sys(verb, Some(id), Errno(libc::ENOENT));
        e.code = "ESTATE".into();
        e.message = format!("cannot {verb} container {id:?}: it has no cgroup to freeze");
        return Err(e.with_hint("a cgroup is made for a container with limits or a linux.cgroupsPath (with root, or delegated cgroups)"));
    };
    cg.freeze(on).map_err(|mut e| {
        e.message = format!("cannot {verb} container {id:?}: {}", e.message);
        e
    })
}

/// Change the limits of a living container (`update`): what `r` gives is written to its
/// cgroup, and kept in its config (what `state` and a later `update` read).
pub fn update(root: &Path, id: &str, r: &crate::resources::Resources) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let rec = dir.read_record()?;
    let status = dir.status(&rec);
    if status == Status::Stopped {
        return Err(wrong_status(id, "update", status));
    }
    let Some(cg) = &rec.cgroup else {
        let mut e = SetupError::sys("update", Some(id), Errno(libc::ENOENT));
        e.code = "ESTATE".into();
        e.message = format!("cannot update container {id:?}: it has no cgroup to apply limits to");
        return Err(e.with_hint("a cgroup is made for a container with limits or a linux.cgroupsPath (with root, or delegated cgroups)"));
    };
    let mut r = r.clone();
    let config = dir.read_config();
    let linux = config.as_ref().and_then(|c| c.linux.as_ref());
    // The device nodes it was made with keep their rules.
    r.device_nodes =
        linux.map(|l| l.devices.iter().map(|d| d.path.clone()).collect()).unwrap_or_default();
    cg.update(&r)?;
    // What the config says from now on: the fields given, over those it had.
    if let Some(mut c) = config {
        let mut have = serde_json::to_value(
            c.linux.as_ref().and_then(|l| l.resources.clone()).unwrap_or_default(),
        )
        .unwrap_or_default();
        merge_json(&mut have, serde_json::to_value(&r).unwrap_or_default());
        if let Ok(merged) = serde_json::from_value(have) {
            c.linux.get_or_insert_with(Default::default).resources = Some(merged);
            if let Ok(data) = serde_json::to_vec_pretty(&c) {
                let _ = state::write_atomic(&dir.file(state::CONFIG_FILE), &data);
            }
        }
    }
    Ok(())
}

/// `from`'s fields over `into`'s, object by object (a null or empty value changes nothing).
fn merge_json(into: &mut serde_json::Value, from: serde_json::Value) {
    use serde_json::Value;
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match &v {
                    Value::Null => {}
                    Value::Array(x) if x.is_empty() => {}
                    Value::Object(x) if x.is_empty() => {}
                    _ => merge_json(a.entry(k).or_insert(Value::Null), v),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Parse a signal given by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<libc::c_int> {
    if let Ok(n) = s.parse::<libc::c_int>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(SetupError::config("signal", format!("unknown signal {s:?}"))),
    };
    Ok(n)
}

/// Host PIDs of the processes in the pid namespace of `pid`, when it has one of its own; `pid`
/// always among them. The namespace is read off `pid`, or off a child of it when `pid` is an
/// init whose /proc files the caller may not read (see `state::namespace_anchor`).
fn processes_in_pid_namespace(pid: i32) -> Vec<i32> {
    let anchor = state::namespace_anchor(pid);
    let Ok(ns) = std::fs::read_link(format!("/proc/{anchor}/ns/pid")) else { return vec![pid] };
    if std::fs::read_link("/proc/self/ns/pid").ok().as_ref() == Some(&ns) {
        return vec![pid];
    }
    // The first process first: once it is gone the kernel kills the rest of its namespace;
    // killed last, it could see its children die and exit on its own meanwhile.
    let mut all = vec![pid];
    all.extend(
        std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                    .filter(|p| {
                        *p != pid
                            && std::fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref()
                                == Some(&ns)
                    })
                    .collect::<Vec<i32>>()
            })
            .unwrap_or_default(),
    );
    all
}

/// Send `signal` to the container's first process, or with `all` to every process in it.
pub fn kill(root: &Path, id: &str, signal: libc::c_int, all: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let _lock = dir.lock()?;
    let rec = dir.read_record()?;
    let status = dir.status(&rec);
    if status == Status::Stopped {
        let mut e = wrong_status(id, "kill", status);
        e.code = "ESRCH".into();
        e.message = format!("container {id:?} is not running");
        return Err(e);
    }
    let targets = if all { processes_in_pid_namespace(rec.pid) } else { vec![rec.pid] };
    for p in targets {
        match sys::kill(p, signal) {
            Ok(()) | Err(Errno(libc::ESRCH)) => {}
            Err(e) => return Err(SetupError::sys("signal", Some(&p.to_string()), e)),
        }
    }
    // A frozen process holds its signals until it is thawed (v1's freezer): a paused container
    // that is killed is thawed, so that it dies (as runc does).
    if status == Status::Paused && signal == libc::SIGKILL {
        if let Some(cg) = &rec.cgroup {
            cg.freeze(false)?;
        }
    }
    Ok(())
}

fn wait_gone(rec: &state::Record, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while ContainerDir::alive(rec) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Remove a container and everything it took, then run its poststop hooks (their failures
/// are the warnings returned). A running one needs `force` (then it is killed); a created one
/// that never started is killed without.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<Vec<String>> {
    let dir = match ContainerDir::open(root, id) {
        Ok(d) => d,
        // A folder without state.json is a create that never finished: clean it up.
        Err(e) if force && e.code == "ENOENT" => {
            let d = ContainerDir::new(root, id)?;
            if let Some(config) = d.read_config() {
                let _ = crate::image_root::remove_container_dir(&config, id);
            }
            let _ = std::fs::remove_dir_all(&d.path);
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let lock = dir.lock()?;
    let rec = dir.read_record()?;
    match dir.status(&rec) {
        Status::Stopped => {}
        s @ (Status::Running | Status::Paused) if !force => {
            return Err(wrong_status(id, "delete", s))
        }
        status => {
            for p in processes_in_pid_namespace(rec.pid) {
                let _ = sys::kill(p, libc::SIGKILL);
            }
            if status == Status::Paused {
                if let Some(cg) = &rec.cgroup {
                    let _ = cg.freeze(false);
                }
            }
            if !wait_gone(&rec, Duration::from_secs(10)) {
                return Err(SetupError::sys("kill", Some(id), Errno(libc::EBUSY))
                    .with_hint("its process did not die within 10s"));
            }
        }
    }
    // A monitor writes the exit record and the log's last lines as the container ends: let it
    // finish before the folder goes.
    if let Some(m) = rec.monitor_pid {
        let deadline = Instant::now() + Duration::from_secs(2);
        while state::process_start_time(m).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    drop(lock);
    if let Some(cg) = &rec.cgroup {
        cg.remove();
    }
    if let Some(g) = &rec.rdt {
        g.remove();
    }
    // And those of containers whose owner was killed before it could remove them.
    crate::cgroup_owners::reconcile();
    let config = dir.read_config();
    // Its networks, if its monitor did not give them back (or there was none).
    if let Some(c) = &config {
        for e in crate::network::teardown_recorded(&c.annotations) {
            eprintln!("ns: {}", e.message);
        }
    }
    // Its image root's directory (its writable layer): a failure is told, and the state goes
    // all the same; the image store reconciles what is left of a container that is gone.
    if let Some(c) = &config {
        if let Err(e) = crate::image_root::remove_container_dir(c, id) {
            eprintln!("ns: {}", e.message);
        }
    }
    dir.remove()?;
    Ok(run_recorded_hooks(config, &rec, "poststop", "stopped"))
}

/// Host PIDs of the container's processes (empty once it has stopped).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let dir = ContainerDir::open(root, id)?;
    let rec = dir.read_record()?;
    if !ContainerDir::alive(&rec) {
        return Ok(vec![]);
    }
    let mut p = processes_in_pid_namespace(rec.pid);
    p.sort_unstable();
    Ok(p)
}

/// One-shot figures from the container's cgroup (memory, cpu, pids).
pub fn stats(root: &Path, id: &str) -> Result<crate::cgroup::Stats> {
    let dir = ContainerDir::open(root, id)?;
    let rec = dir.read_record()?;
    let cg = rec.cgroup.ok_or_else(|| {
        let mut e = SetupError::sys("read the stats of", Some(id), Errno(libc::ENOENT));
        e.message =
            format!("container {id:?} has no cgroup (created without root and without limits)");
        e
    })?;
    Ok(cg.stats())
}

pub fn state(root: &Path, id: &str) -> Result<StateView> {
    ContainerDir::open(root, id)?.view()
}

pub fn list(root: &Path) -> Vec<StateView> {
    state::list(root).iter().filter_map(|d| d.view().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigwinch").unwrap(), libc::SIGWINCH);
        assert_eq!(parse_signal("NOPE").unwrap_err().message, "signal: unknown signal \"NOPE\"");
        assert!(parse_signal("0").is_err());
    }
}
