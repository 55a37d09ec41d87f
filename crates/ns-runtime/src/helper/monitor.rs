//! Phase 4, a created container's monitor: its parent for as long as it lives. It copies the
//! container's output (or its terminal's) into the log, serves attached clients, reaps it and
//! records how it ended.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::proto::{Event, LineReader, Report};
use crate::request::Sink;
use crate::state::{self, ContainerDir, ExitRecord};
use crate::sys;

/// Stay as the container's parent: copy its output into the log, one JSON object per line
/// (`{"time","stream","log"}`), then record how it ended.
pub(super) fn monitor(
    dir: &ContainerDir,
    pid: libc::pid_t,
    streams: [OwnedFd; 2],
    reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let mut log = ContainerLog::open(dir);
    let names = ["stdout", "stderr"];
    let mut open = [true, true];
    let mut status = None;
    let mut grace = 0;
    sys::release_file_pages();
    while open.iter().any(|o| *o) {
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .zip(open)
            .map(|(s, o)| libc::pollfd {
                fd: if o { s.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        for i in 0..2 {
            if fds[i].revents == 0 {
                continue;
            }
            let mut buf = [0u8; 16384];
            match sys::read(streams[i].as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => log.feed(i, names[i], &buf[..n]),
            }
        }
        if gone_long_enough(pid, &mut status, &mut grace) {
            break;
        }
    }
    log.flush(&names);
    finish(dir, pid, status, reports, cgroup, sink);
}

/// The monitor of a container with a terminal: the terminal's output goes into the log (as
/// stdout) and to whoever is attached; attached clients type into it and resize it.
pub(super) fn monitor_terminal(
    dir: &ContainerDir,
    pid: libc::pid_t,
    mut term: crate::attach::Terminal,
    reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let mut log = ContainerLog::open(dir);
    let mut status = None;
    let mut grace = 0;
    sys::release_file_pages();
    while term.open {
        term.step(100, &mut |bytes| log.feed(0, "stdout", bytes));
        if gone_long_enough(pid, &mut status, &mut grace) {
            break;
        }
    }
    log.flush(&["stdout"]);
    term.close_clients();
    let _ = std::fs::remove_file(dir.file(crate::attach::ATTACH_SOCKET));
    finish(dir, pid, status, reports, cgroup, sink);
}

/// Reap the container's process if it has ended; once it has, whatever still holds its output
/// (a process of a shared pid namespace) gets about a second. True when that is over.
fn gone_long_enough(pid: libc::pid_t, status: &mut Option<libc::c_int>, grace: &mut u32) -> bool {
    if status.is_none() {
        if let Ok((r, s)) = sys::waitpid(pid, libc::WNOHANG) {
            if r == pid {
                *status = Some(s);
            }
        }
        return false;
    }
    *grace += 1;
    *grace > 10
}

/// Record how the container ended, once it has: its exit code or signal, and whether the
/// OOM killer ended it.
fn finish(
    dir: &ContainerDir,
    pid: libc::pid_t,
    status: Option<libc::c_int>,
    mut reports: LineReader,
    cgroup: Option<&crate::cgroup::Cgroup>,
    sink: Sink,
) {
    let status = match status {
        Some(s) => s,
        None => sys::waitpid(pid, 0).map(|(_, s)| s).unwrap_or(0),
    };
    let mut exit = None;
    while let Some(line) = reports.next_line() {
        if let Ok(Report::Exit { code, signal }) = serde_json::from_slice::<Report>(&line) {
            exit = Some((code, signal));
        }
    }
    let (code, signal) = crate::init::trusted_exit(exit, status);
    let oom_killed = cgroup.is_some_and(|c| c.oom_killed());
    let _ = dir.write_exit(&ExitRecord {
        exit_code: code,
        signal,
        finished: state::now_rfc3339(),
        oom_killed,
    });
    sink(&Event::Exited { exit_code: code, signal, oom_killed });
}

/// A container's log file, written a whole line at a time: what a stream wrote after its last
/// newline waits for the rest (or for the end).
struct ContainerLog {
    file: Option<std::fs::File>,
    partial: [Vec<u8>; 2],
}

impl ContainerLog {
    fn open(dir: &ContainerDir) -> ContainerLog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.file(state::LOG_FILE))
            .ok();
        ContainerLog { file, partial: [Vec::new(), Vec::new()] }
    }

    /// Bytes of stream `i` (named `name` in the log).
    fn feed(&mut self, i: usize, name: &str, bytes: &[u8]) {
        self.partial[i].extend_from_slice(bytes);
        while let Some(nl) = self.partial[i].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=nl).collect();
            write_log_line(&mut self.file, name, &line);
        }
        crate::state::split_long_log_line(&mut self.partial[i], &mut |part| {
            write_log_line(&mut self.file, name, part)
        });
    }

    /// The end: what is left of each stream, without its newline.
    fn flush(&mut self, names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            if !self.partial[i].is_empty() {
                let rest = std::mem::take(&mut self.partial[i]);
                write_log_line(&mut self.file, name, &rest);
            }
        }
    }
}

/// One entry of a container's log: `{"time","stream","log"}` on a line.
fn write_log_line(log: &mut Option<std::fs::File>, stream: &str, bytes: &[u8]) {
    if let Some(f) = log.as_mut() {
        let entry = serde_json::json!({
            "time": state::now_rfc3339(),
            "stream": stream,
            "log": String::from_utf8_lossy(bytes),
        });
        let _ = writeln!(f, "{entry}");
    }
}
