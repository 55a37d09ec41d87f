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

/// Reads newline-separated messages from a descriptor.
pub struct LineReader {
    fd: libc::c_int,
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    pub fn new(fd: libc::c_int) -> Self {
        LineReader { fd, buf: Vec::new(), eof: false }
    }

    pub fn fd(&self) -> libc::c_int {
        self.fd
    }

    /// One read into the buffer (for a caller that polls). False at end of file.
    pub fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match sys::read(self.fd, &mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(sys::Errno(libc::EAGAIN | libc::EINTR)) => {}
            Err(_) => self.eof = true,
        }
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
            let mut chunk = [0u8; 4096];
            match sys::read(self.fd, &mut chunk) {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
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
    fn events_are_tagged_json() {
        let s = serde_json::to_string(&Event::Exited {
            exit_code: Some(0),
            signal: None,
            oom_killed: false,
        })
        .unwrap();
        assert_eq!(s, r#"{"event":"exited","exitCode":0,"signal":null,"oomKilled":false}"#);
    }
}

/// Every line of `fd` to `on_line`, then `None` at its end (as `tty::relay` does while it
/// relays a terminal).
pub fn each_line(fd: libc::c_int, on_line: &mut dyn FnMut(Option<&[u8]>)) {
    let mut rd = LineReader::new(fd);
    while let Some(line) = rd.next_line() {
        on_line(Some(&line));
    }
    on_line(None);
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
