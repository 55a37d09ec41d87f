//! Messages between the processes of one container, one JSON object per line.
//!
//! child -> helper (report pipe): `Report`. helper -> caller (control socket, fd 3): `Event`.

use serde::{Deserialize, Serialize};

use crate::error::SetupError;
use crate::sys;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Report {
    /// Set-up is done; the process waits for `start` (create mode only).
    Created,
    /// The command is running (sent by the init; without init, EOF on exec says it).
    Started,
    Error {
        error: SetupError,
    },
    /// The command ended (sent by the init, which knows the real status).
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// Set-up is done up to the command; the process waits for it (a warm container).
    Waiting,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// The container exists and waits for `start` (create mode); `pid` as seen from the host.
    #[serde(rename_all = "camelCase")]
    Created {
        pid: i32,
    },
    /// The container's first process runs; `pid` as seen from the host.
    #[serde(rename_all = "camelCase")]
    Started {
        pid: i32,
    },
    /// A warm container is set up and waits for its command (`RunMessage`); `pid` as seen
    /// from the host.
    #[serde(rename_all = "camelCase")]
    Ready {
        pid: i32,
    },
    Error {
        error: SetupError,
    },
    /// Something asked for was not done, and the caller said that was acceptable (limits on a
    /// best-effort basis); the container goes on without it.
    Warning {
        message: String,
    },
    /// It ended: its exit code, or the signal that killed it.
    #[serde(rename_all = "camelCase")]
    Exited {
        exit_code: Option<i32>,
        signal: Option<i32>,
        /// The kernel's OOM killer ended it (its cgroup's memory limit was reached).
        #[serde(default)]
        oom_killed: bool,
    },
}

pub fn send<T: Serialize>(fd: libc::c_int, msg: &T) -> sys::SysResult<()> {
    let mut line = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    sys::write_all(fd, &line)
}

/// The longest line a reader takes by default (reports, events, control messages): what is
/// longer ends the reading, as a broken peer would. Real messages are a few hundred bytes.
pub const MAX_LINE: usize = 1 << 20;
/// The longest request a helper takes (a whole runtime spec on one line).
pub const MAX_REQUEST: usize = 64 << 20;

/// What stands for a report that could not be taken (too long, or not a report): an error of
/// the container's, in the report's own form.
pub fn broken_report(why: &str) -> Vec<u8> {
    let mut error = SetupError::sys("read the container's reports", None, sys::Errno(libc::EPROTO));
    error.code = "EPROTO".into();
    error.message = format!("failed to read the container's reports: {why}");
    serde_json::to_vec(&Report::Error { error }).unwrap_or_default()
}

/// Reads newline-separated messages from a descriptor, each at most `max` bytes long.
pub struct LineReader {
    fd: libc::c_int,
    buf: Vec<u8>,
    eof: bool,
    max: usize,
    too_long: bool,
}

impl LineReader {
    pub fn new(fd: libc::c_int) -> Self {
        Self::with_limit(fd, MAX_LINE)
    }

    /// A reader whose lines may be up to `max` bytes long.
    pub fn with_limit(fd: libc::c_int, max: usize) -> Self {
        LineReader { fd, buf: Vec::new(), eof: false, max, too_long: false }
    }

    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// Whether bytes past the last line taken wait in the buffer.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Whether reading stopped at a line longer than the limit (it and the rest are dropped).
    pub fn too_long(&self) -> bool {
        self.too_long
    }

    /// A buffer holding more than a line may without its newline: the peer is broken (or
    /// hostile); what it sent is dropped and the reading ends.
    fn check_length(&mut self) {
        if self.buf.len() > self.max && !self.buf[..=self.max].contains(&b'\n') {
            self.buf = Vec::new();
            self.eof = true;
            self.too_long = true;
        }
    }

    /// One read into the buffer (for a caller that polls). False at end of file.
    pub fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 4096];
        match sys::read(self.fd, &mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(sys::Errno(libc::EAGAIN | libc::EINTR)) => {}
            Err(_) => self.eof = true,
        }
        self.check_length();
        !self.eof
    }

    /// A whole line already in the buffer, without reading.
    pub fn buffered_line(&mut self) -> Option<Vec<u8>> {
        let i = self.buf.iter().position(|b| *b == b'\n')?;
        let rest = self.buf.split_off(i + 1);
        let mut line = std::mem::replace(&mut self.buf, rest);
        line.pop();
        Some(line)
    }

    /// The next line without its newline; None at end of file (a last unterminated line is
    /// returned first).
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Some(line);
            }
            if self.eof {
                return (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf));
            }
            let mut chunk = [0u8; 16384];
            match sys::read(self.fd, &mut chunk) {
                Ok(0) => self.eof = true,
                Err(sys::Errno(libc::EINTR)) => {}
                Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
            self.check_length();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn lines_cross_a_pipe_whole_and_in_order() {
        let (r, w) = sys::pipe().unwrap();
        send(w.as_raw_fd(), &Report::Started).unwrap();
        send(w.as_raw_fd(), &Report::Exit { code: Some(3), signal: None }).unwrap();
        sys::write_all(w.as_raw_fd(), b"{\"kind\":\"started\"}").unwrap();
        drop(w);
        let mut rd = LineReader::new(r.as_raw_fd());
        let a: Report = serde_json::from_slice(&rd.next_line().unwrap()).unwrap();
        assert!(matches!(a, Report::Started));
        let b: Report = serde_json::from_slice(&rd.next_line().unwrap()).unwrap();
        assert!(matches!(b, Report::Exit { code: Some(3), signal: None }));
        assert!(rd.next_line().is_some());
        assert!(rd.next_line().is_none());
    }

    #[test]
    fn a_line_longer_than_the_limit_ends_the_reading_and_is_dropped() {
        let (r, w) = sys::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            send(w.as_raw_fd(), &Report::Started).unwrap();
            // 3 MiB without a newline: more than a reader takes, and more than a pipe holds.
            let _ = sys::write_all(w.as_raw_fd(), &vec![b'x'; 3 << 20]);
        });
        let mut rd = LineReader::with_limit(r.as_raw_fd(), 1 << 20);
        assert!(matches!(serde_json::from_slice(&rd.next_line().unwrap()), Ok(Report::Started)));
        assert!(rd.next_line().is_none());
        assert!(rd.too_long());
        drop(r); // the writer now gets EPIPE
        writer.join().unwrap();
    }

    #[test]
    fn each_line_turns_what_is_not_a_report_into_an_error_report() {
        let (r, w) = sys::pipe().unwrap();
        sys::write_all(w.as_raw_fd(), b"{\"event\":\"exited\",\"exitCode\":0}\nnot json\n")
            .unwrap();
        send(w.as_raw_fd(), &Report::Exit { code: Some(42), signal: None }).unwrap();
        drop(w);
        let mut got = Vec::new();
        each_line(r.as_raw_fd(), &mut |l| {
            got.push(l.map(|l| serde_json::from_slice::<Report>(l).unwrap()))
        });
        assert_eq!(got.len(), 4);
        assert!(matches!(&got[0], Some(Report::Error { error }) if error.code == "EPROTO"));
        assert!(matches!(&got[1], Some(Report::Error { .. })));
        assert!(matches!(got[2], Some(Report::Exit { code: Some(42), .. })));
        assert!(got[3].is_none());
    }

    #[test]
    fn events_are_tagged_json() {
        let s = serde_json::to_string(&Event::Exited {
            exit_code: Some(0),
            signal: None,
            oom_killed: false,
        })
        .unwrap();
        assert_eq!(s, r#"{"event":"exited","exitCode":0,"signal":null,"oomKilled":false}"#);
    }

    #[test]
    fn a_run_message_names_the_stdio_slots_of_the_descriptors_it_carries() {
        let msg = |stdio: Vec<u32>| RunMessage { stdio, ..Default::default() };
        // None sent (the sandbox keeps what it was made with), some, all three.
        assert_eq!(msg(vec![]).check_stdio(0), Ok(()));
        assert_eq!(msg(vec![0]).check_stdio(1), Ok(()));
        assert_eq!(msg(vec![2, 0, 1]).check_stdio(3), Ok(()));
        // A message from before the field: no slot named, so no descriptor may come.
        let old: RunMessage =
            serde_json::from_str(r#"{"args":["true"],"env":[],"cwd":"/"}"#).unwrap();
        assert_eq!(old.check_stdio(0), Ok(()));
        assert!(old.check_stdio(3).is_err());
        assert_eq!(msg(vec![1]).check_stdio(2).unwrap_err(), "2 descriptors for 1 stdio slots");
        assert_eq!(
            msg(vec![1, 1]).check_stdio(2).unwrap_err(),
            "stdio[1]: 1 is not one of 0, 1, 2 given once"
        );
        assert!(msg(vec![3]).check_stdio(1).is_err());
    }
}

/// Every report on `fd` to `on_line`, then `None` at its end (as `tty::relay` does while it
/// relays a terminal). A line that is not a report, or one longer than `MAX_LINE` (which ends
/// the reading), is passed on as an error report instead.
pub fn each_line(fd: libc::c_int, on_line: &mut dyn FnMut(Option<&[u8]>)) {
    let mut rd = LineReader::new(fd);
    while let Some(line) = rd.next_line() {
        on_line(Some(&checked_report(line)));
    }
    if rd.too_long() {
        on_line(Some(&broken_report(&format!("a report was longer than {MAX_LINE} bytes"))));
    }
    on_line(None);
}

/// `line` if it is a report, else an error report saying it was not.
pub fn checked_report(line: Vec<u8>) -> Vec<u8> {
    if serde_json::from_slice::<Report>(&line).is_ok() {
        line
    } else {
        broken_report("a line on the report pipe was not a report")
    }
}

/// The helper's control socket once the request has been read from it: the caller may go on
/// sending messages there (a new window size for a relayed terminal).
static CONTROL: std::sync::Mutex<Option<LineReader>> = std::sync::Mutex::new(None);

pub fn keep_control(reader: LineReader) {
    if let Ok(mut c) = CONTROL.lock() {
        *c = Some(reader);
    }
}

pub fn take_control() -> Option<LineReader> {
    CONTROL.lock().ok().and_then(|mut c| c.take())
}

/// The command of a warm container, sent once on the control socket after the request (and
/// passed on by the helper to the waiting container), one JSON line with its stdin, stdout
/// and stderr as SCM_RIGHTS: everything of a run that is not known before it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunMessage {
    /// The program and its arguments (looked up in the container's `PATH`).
    pub args: Vec<String>,
    /// The whole environment of the command, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Its working directory, absolute.
    pub cwd: String,
    /// Which of its stdin (0), stdout (1) and stderr (2) the descriptors sent with the message
    /// replace, in their order; the others stay those the container was made with (its
    /// helper's: a warm helper is started with the stdio a run has by default).
    #[serde(default)]
    pub stdio: Vec<u32>,
}

impl RunMessage {
    /// Check `stdio` against the `n` descriptors that came: each of 0, 1, 2 at most once.
    pub fn check_stdio(&self, n: usize) -> Result<(), String> {
        if self.stdio.len() != n {
            return Err(format!("{n} descriptors for {} stdio slots", self.stdio.len()));
        }
        for (i, fd) in self.stdio.iter().enumerate() {
            if *fd > 2 || self.stdio[..i].contains(fd) {
                return Err(format!("stdio[{i}]: {fd} is not one of 0, 1, 2 given once"));
            }
        }
        Ok(())
    }
}

/// The most descriptors a `RunMessage` carries: stdin, stdout, stderr.
pub const RUN_FDS: usize = 3;

/// One line and the descriptors sent with its first bytes, from a stream socket: the line may
/// arrive in pieces, the descriptors come with the first. None at the end of the stream before
/// anything came; EMSGSIZE when it is longer than `max`, EPROTO when it has more than `max_fds`
/// descriptors or bytes after its newline.
pub fn recv_line(
    sock: libc::c_int,
    max: usize,
    max_fds: usize,
) -> sys::SysResult<Option<(Vec<u8>, Vec<std::os::fd::OwnedFd>)>> {
    let mut buf = vec![0u8; 16384];
    let Some((n, fds)) = sys::recv_fds(sock, &mut buf, max_fds + 1)? else { return Ok(None) };
    if fds.len() > max_fds {
        return Err(sys::Errno(libc::EPROTO));
    }
    let mut line = buf[..n].to_vec();
    while !line.contains(&b'\n') {
        if line.len() > max {
            return Err(sys::Errno(libc::EMSGSIZE));
        }
        match sys::read(sock, &mut buf)? {
            0 => return Err(sys::Errno(libc::EPROTO)),
            n => line.extend_from_slice(&buf[..n]),
        }
    }
    if line.last() != Some(&b'\n') || line.len() > max + 1 {
        return Err(sys::Errno(libc::EPROTO));
    }
    line.pop();
    Ok(Some((line, fds)))
}

/// Send `line` (ending in a newline) with `fds` on the stream socket `sock`: the descriptors go
/// with its first bytes, the rest follows (waiting for room where the socket is non-blocking).
pub fn send_line(sock: libc::c_int, fds: &[std::os::fd::RawFd], line: &[u8]) -> sys::SysResult<()> {
    let mut sent = if fds.is_empty() { 0 } else { sys::send_fds_counted(sock, fds, line)? };
    while sent < line.len() {
        // SAFETY: writing from a valid slice; MSG_NOSIGNAL as the first part.
        let n = unsafe {
            libc::send(sock, line[sent..].as_ptr().cast(), line.len() - sent, libc::MSG_NOSIGNAL)
        };
        if n >= 0 {
            sent += n as usize;
            continue;
        }
        match sys::Errno::last() {
            sys::Errno(libc::EINTR) => {}
            sys::Errno(libc::EAGAIN) => {
                let mut pfd = libc::pollfd { fd: sock, events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
            }
            e => return Err(e),
        }
    }
    Ok(())
}

/// What the caller may send on the control socket after its request.
#[derive(Debug, Deserialize)]
pub struct ControlMessage {
    pub resize: Option<WindowSize>,
}

#[derive(Debug, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}
