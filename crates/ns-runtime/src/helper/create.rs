//! Phase 3, create (OCI `create`): record the container in the state directory, launch it
//! with its exec fifo (it then waits for `start`), its log pipes or terminal, and either leave
//! it to the caller's subreaper or fork the monitor that stays as its parent (`monitor`). A
//! container that fails to be created, or that removes itself once ended, takes its image
//! root's directory with it.

use std::os::fd::AsRawFd;
use std::path::Path;

use super::foreground::after_failed_hook;
use super::launch::{launch, lease_ids};
use super::monitor::{monitor, monitor_terminal};
use super::prepare::{prepare, HostFacts, Prepared};
use crate::child::Detach;
use crate::error::{Result, SetupError};
use crate::proto::{self, Event, LineReader, Report};
use crate::request::{CreateRequest, RunRequest, Sink};
use crate::state::{self, ContainerDir, Record};
use crate::sys::{self, Errno};
use crate::tty::{send_to_console_socket, socketpair};

/// Create a container that waits for `start` (OCI `create`): record it in the state directory,
/// then either leave it to the caller's subreaper or stay as its monitor.
pub fn create(req: &RunRequest, cr: &CreateRequest, sink: Sink) -> Result<()> {
    let mut p = prepare(req, &HostFacts::read())?;
    if p.lease_needed && !cr.monitor {
        // Nobody would hold the lease once this process is gone.
        return Err(SetupError::config(
            "annotations.io.ns.userns",
            "auto needs a monitored container (ns's own create), not one left to an engine",
        ));
    }
    // Taken before anything is recorded: config.json shows the maps it gives.
    lease_ids(&mut p)?;
    let dir = ContainerDir::create(Path::new(&cr.root), &cr.id)?;
    let mut saved = req.config.clone();
    if p.lease.is_some() {
        // The maps the container really has, for exec and inspect.
        let linux = saved.linux.get_or_insert_with(Default::default);
        linux.uid_mappings = p.uid_maps.clone();
        linux.gid_mappings = p.gid_maps.clone();
    }
    if let Ok(config) = serde_json::to_vec_pretty(&saved) {
        let _ = state::write_atomic(&dir.file("config.json"), &config);
    }
    if cr.monitor {
        return create_monitored(&p, req, cr, dir, sink);
    }
    let result = create_in(&p, req, cr, &dir, sink);
    if let Err(e) = &result {
        let _ = std::fs::remove_dir_all(&dir.path);
        after_failed_hook(&p, e, 0, sink);
        let _ = crate::image_root::remove_container_dir(&req.config, &cr.id);
    }
    result
}

/// With a monitor, the caller should not have to wait for the container to end: the monitor
/// is a process of its own (forked before the clone, so that it is the container's parent),
/// and this one returns as soon as the container is created.
fn create_monitored(
    p: &Prepared,
    req: &RunRequest,
    cr: &CreateRequest,
    dir: ContainerDir,
    sink: Sink,
) -> Result<()> {
    let (r, w) = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
    // SAFETY: the helper is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SetupError::sys("fork the monitor", None, Errno::last()));
    }
    if pid == 0 {
        drop(r);
        // The monitor leaves the caller's session and files; the caller may exit at any time.
        sys::detach_descriptors(w.as_raw_fd());
        // SAFETY: plain syscalls.
        unsafe {
            libc::setsid();
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let _ = sys::set_pdeathsig(0);
        let mut to_caller = |e: &Event| {
            let _ = proto::send(w.as_raw_fd(), e);
        };
        let code = match create_in(p, req, cr, &dir, &mut to_caller) {
            Ok(()) => 0,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir.path);
                after_failed_hook(p, &e, 0, &mut to_caller);
                to_caller(&Event::Error { error: e });
                125
            }
        };
        if code != 0 || cr.remove_on_exit {
            if let Err(e) = crate::image_root::remove_container_dir(&req.config, &cr.id) {
                eprintln!("ns: {}", e.message);
            }
        }
        if cr.remove_on_exit {
            let _ = std::fs::remove_dir_all(&dir.path);
        }
        // SAFETY: ends the monitor.
        unsafe { libc::_exit(code) }
    }
    drop(w);
    // Relay until the container is created (or set-up failed); then leave the monitor be.
    let mut rd = LineReader::new(r.as_raw_fd());
    let mut result = Err(SetupError::sys("create the container", None, Errno(libc::ECHILD))
        .with_hint("the monitor ended during set-up"));
    while let Some(line) = rd.next_line() {
        match serde_json::from_slice::<Event>(&line) {
            Ok(Event::Error { error }) => {
                result = Err(error);
                break;
            }
            Ok(e @ Event::Created { .. }) => {
                sink(&e);
                result = Ok(());
                break;
            }
            Ok(e @ Event::Warning { .. }) => sink(&e),
            _ => {}
        }
    }
    if result.is_err() {
        let _ = sys::waitpid(pid, 0);
    }
    result
}

fn create_in(
    p: &Prepared,
    req: &RunRequest,
    cr: &CreateRequest,
    dir: &ContainerDir,
    sink: Sink,
) -> Result<()> {
    let fifo_path = dir.file(state::EXEC_FIFO).display().to_string();
    let c = sys::cstr(&fifo_path)
        .map_err(|e| SetupError::sys("create the exec fifo", Some(&fifo_path), e))?;
    // SAFETY: c is a valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o622) } != 0
        || unsafe { libc::chmod(c.as_ptr(), 0o622) } != 0
    {
        return Err(SetupError::sys("create the exec fifo", Some(&fifo_path), Errno::last()));
    }
    let fifo = sys::open(&fifo_path, libc::O_PATH)
        .map_err(|e| SetupError::sys("open the exec fifo", Some(&fifo_path), e))?;

    // A monitor takes the container's output into the log; the container reads nothing.
    let mut pipes = None;
    if cr.monitor && !p.process.terminal {
        let out = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
        let err = sys::pipe().map_err(|e| SetupError::sys("create pipe", None, e))?;
        let null = sys::open("/dev/null", libc::O_RDWR)
            .map_err(|e| SetupError::sys("open", Some("/dev/null"), e))?;
        pipes = Some((out, err, null));
    }
    let console = match (p.process.terminal, &cr.console_socket, cr.monitor) {
        (false, _, _) => None,
        (true, Some(_), false) | (true, None, true) => Some(socketpair()?),
        (true, None, false) => {
            return Err(SetupError::config(
                "process.terminal",
                "needs --console-socket to hand the terminal to",
            ))
        }
        (true, Some(_), true) => {
            return Err(SetupError::config(
                "consoleSocket",
                "a monitored container keeps its terminal: attach to it instead",
            ))
        }
    };
    // The monitor serves the terminal to attached clients from the moment the container exists.
    let listener = if console.is_some() && cr.monitor {
        Some(crate::attach::listen(&dir.path)?)
    } else {
        None
    };
    let detach = Detach {
        fifo: Some(fifo.as_raw_fd()),
        orphan: !cr.monitor,
        stdio: pipes.as_ref().map(|(o, e, n)| [n.as_raw_fd(), o.1.as_raw_fd(), e.1.as_raw_fd()]),
        console: console.as_ref().map(|(_, c)| c.as_raw_fd()),
        ..Detach::default()
    };
    let mut l = launch(p, detach, false)?;
    drop(fifo);
    for message in std::mem::take(&mut l.warnings) {
        sink(&Event::Warning { message });
    }
    let mut terminal = None;
    if let Some((ours, theirs)) = console {
        drop(theirs);
        if let Ok(Some(master)) = sys::recv_fd(ours.as_raw_fd()) {
            match (&cr.console_socket, listener) {
                (Some(path), _) => send_to_console_socket(path, &master)?,
                (None, Some(l)) => terminal = Some(crate::attach::Terminal::new(master, l)),
                (None, None) => {}
            }
        }
    }
    let logs = pipes.map(|(o, e, _null)| (o.0, e.0));

    let mut rd = LineReader::new(l.reports.as_raw_fd());
    loop {
        match rd.next_line().map(|l| serde_json::from_slice::<Report>(&l)) {
            Some(Ok(Report::Created)) => break,
            Some(Ok(Report::Error { error })) => return Err(error),
            Some(_) => continue,
            None => {
                return Err(SetupError::sys("create the container", None, Errno(libc::ECHILD))
                    .with_hint("its process ended during set-up"))
            }
        }
    }
    let pid = l.pid;
    let record = Record {
        oci_version: if req.config.oci_version.is_empty() {
            crate::SPEC_VERSION.into()
        } else {
            req.config.oci_version.clone()
        },
        id: cr.id.clone(),
        pid,
        start_time: state::process_start_time(pid).unwrap_or(0),
        bundle: req.bundle.clone().unwrap_or_default(),
        created: state::now_rfc3339(),
        annotations: req.config.annotations.clone(),
        // SAFETY: plain syscalls.
        owner: unsafe { libc::geteuid() },
        monitor_pid: cr.monitor.then(|| std::process::id() as i32),
        cgroup: l.cgroup.clone(),
        rdt: l.rdt.clone(),
    };
    dir.write_record(&record)?;
    if let Some(pf) = &cr.pid_file {
        state::write_atomic(Path::new(pf), pid.to_string().as_bytes())?;
    }
    sink(&Event::Created { pid });
    l.guard.0 = 0;
    let network = l.network.take();
    // The record holds it now: delete gives it back.
    l.rdt = None;
    match (logs, terminal) {
        (_, Some(term)) => monitor_terminal(dir, pid, term, rd, l.cgroup.as_ref(), sink, network),
        (Some((out, err)), None) => {
            monitor(dir, pid, [out, err], rd, l.cgroup.as_ref(), sink, network)
        }
        // Left to an engine: its `delete` gives the networks back, from their record.
        (None, None) => {
            if let Some(n) = network {
                n.keep();
            }
        }
    }
    Ok(())
}
