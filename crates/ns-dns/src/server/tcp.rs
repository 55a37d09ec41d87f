//! One DNS-over-TCP client: its stream, the messages arriving on it (several may be pipelined,
//! RFC 7766 §6.2.1), the answers waiting to be written, and when it was last active.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Instant;

use super::poller::{READ, WRITE};
use crate::wire::{frame, FrameReader};

/// More answers than this waiting to be written means the client does not read: dropped.
const MAX_BACKLOG: usize = 256 * 1024;

pub(crate) struct TcpClient {
    pub stream: TcpStream,
    pub peer: IpAddr,
    frames: FrameReader,
    out: Vec<u8>,
    out_pos: usize,
    pub last_active: Instant,
    /// The client closed its side: answer what is in flight, then close.
    pub eof: bool,
    /// Queries of this client forwarded and not yet answered.
    pub in_flight: usize,
    pub interest: u32,
}

pub(crate) enum Incoming {
    /// The complete messages that arrived (maybe none).
    Messages(Vec<Vec<u8>>),
    /// The connection is unusable: close it.
    Broken,
}

impl TcpClient {
    pub(crate) fn new(stream: TcpStream, peer: IpAddr) -> TcpClient {
        TcpClient {
            stream,
            peer,
            frames: FrameReader::default(),
            out: Vec::new(),
            out_pos: 0,
            last_active: Instant::now(),
            eof: false,
            in_flight: 0,
            interest: READ,
        }
    }

    /// Read what is there (at most a few buffers' worth, so one client cannot hold the loop).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Incoming {
        let mut messages = Vec::new();
        for _ in 0..4 {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.last_active = Instant::now();
                    self.frames.push(&buf[..n]);
                    while let Some(m) = self.frames.next_frame() {
                        messages.push(m);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Incoming::Broken,
            }
        }
        Incoming::Messages(messages)
    }

    /// Queue an answer, framed, and write what can be written now.
    pub(crate) fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(&frame(msg));
        if self.out.len() - self.out_pos > MAX_BACKLOG {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "client does not read its answers",
            ));
        }
        self.flush()
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    self.last_active = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// What to wait for: readable while the client may send, writable while answers wait.
    pub(crate) fn wants(&self) -> u32 {
        let mut w = 0;
        if !self.eof {
            w |= READ;
        }
        if self.out_pos < self.out.len() {
            w |= WRITE;
        }
        w
    }

    /// Nothing more will come or go.
    pub(crate) fn finished(&self) -> bool {
        self.eof && self.in_flight == 0 && self.out_pos == self.out.len()
    }
}
