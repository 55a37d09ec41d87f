//! One question passed on upstream, as a state machine the event loop drives: ask the current
//! server over UDP (a fresh socket on a random port, a random id); on an answer whose id and
//! question match, relay it with the client's id; on TC, for a client that asked over TCP, ask
//! the same server again over TCP; on SERVFAIL or REFUSED, on a timeout, on ICMP "unreachable",
//! ask the next server. When every server has failed: the last SERVFAIL/REFUSED kept, or
//! SERVFAIL of our own.
//!
//! A client over UDP gets a truncated upstream answer as it is (it fits its limit, since its own
//! EDNS size went upstream with its question) and asks again over TCP itself, which is what TC
//! tells it to do: fetching the whole answer over TCP first could only end in the same TC.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::poller::{HANGUP, READ, WRITE};
use super::socket;
use crate::resolve::{self, ForwardRequest};
use crate::sys;
use crate::wire::{frame, rcode, set_id, FrameReader, Header, Question};

/// Where an answer goes: back out of the UDP socket it came in on, or onto a TCP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    Udp { socket: usize, peer: SocketAddr },
    Tcp { slot: usize, gen: u32 },
}

enum Conn {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, out: Vec<u8>, written: usize, frames: FrameReader, connected: bool },
}

/// What the loop should do next for a forward.
pub(crate) enum Step {
    /// Wait for `interest` on `fd`; `fresh` when it is a new descriptor to register.
    Wait { fd: RawFd, interest: u32, fresh: bool },
    /// Finished: send this to the client.
    Done(Vec<u8>),
}

pub(crate) struct Forward {
    pub request: ForwardRequest,
    pub to: ReplyTo,
    servers: Vec<SocketAddr>,
    index: usize,
    our_id: u16,
    query: Vec<u8>,
    conn: Option<Conn>,
    pub deadline: Instant,
    timeout: Duration,
    fallback: Option<Vec<u8>>,
    /// The server whose answer was relayed.
    pub answered_by: Option<SocketAddr>,
    pub interest: u32,
}

/// What one attempt ended with.
enum Outcome {
    Wait(u32),
    /// A valid answer (or a frame to check).
    Answer(Vec<u8>, bool),
    /// This server failed: try the next.
    Failed,
}

impl Forward {
    pub(crate) fn new(
        request: ForwardRequest,
        to: ReplyTo,
        servers: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Forward {
        let our_id = sys::random_u16();
        let mut query = request.packet.clone();
        set_id(&mut query, our_id);
        Forward {
            request,
            to,
            servers,
            index: 0,
            our_id,
            query,
            conn: None,
            deadline: Instant::now() + timeout,
            timeout,
            fallback: None,
            answered_by: None,
            interest: 0,
        }
    }

    fn fd(&self) -> Option<RawFd> {
        match &self.conn {
            Some(Conn::Udp(s)) => Some(s.as_raw_fd()),
            Some(Conn::Tcp { stream, .. }) => Some(stream.as_raw_fd()),
            None => None,
        }
    }

    /// Ask the first server that can be asked.
    pub(crate) fn begin(&mut self, now: Instant) -> Step {
        while let Some(server) = self.servers.get(self.index) {
            match socket::udp_to(server).and_then(|s| s.send(&self.query).map(|_| s)) {
                Ok(s) => {
                    let fd = s.as_raw_fd();
                    self.conn = Some(Conn::Udp(s));
                    self.deadline = now + self.timeout;
                    self.interest = READ;
                    return Step::Wait { fd, interest: READ, fresh: true };
                }
                // No route, no address of that family: the next server.
                Err(_) => self.index += 1,
            }
        }
        self.finish()
    }

    fn next(&mut self, now: Instant) -> Step {
        self.conn = None;
        self.index += 1;
        self.begin(now)
    }

    /// Ask the current server again, over TCP.
    fn over_tcp(&mut self, now: Instant) -> Step {
        let Some(server) = self.servers.get(self.index) else { return self.finish() };
        match socket::tcp_to(server) {
            Ok(stream) => {
                let fd = stream.as_raw_fd();
                let out = frame(&self.query);
                self.conn = Some(Conn::Tcp {
                    stream,
                    out,
                    written: 0,
                    frames: FrameReader::default(),
                    connected: false,
                });
                self.deadline = now + self.timeout;
                self.interest = WRITE;
                Step::Wait { fd, interest: WRITE, fresh: true }
            }
            Err(_) => self.next(now),
        }
    }

    fn finish(&mut self) -> Step {
        self.conn = None;
        match self.fallback.take() {
            Some(answer) => Step::Done(resolve::relay(answer, &self.request)),
            None => Step::Done(resolve::servfail(&self.request)),
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> Step {
        self.next(now)
    }

    pub(crate) fn on_ready(&mut self, ready: u32, now: Instant, buf: &mut [u8]) -> Step {
        loop {
            let outcome = match self.conn.as_mut() {
                None => return self.finish(),
                Some(Conn::Udp(s)) => match s.recv(buf) {
                    Ok(n) => Outcome::Answer(buf[..n].to_vec(), false),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Outcome::Wait(READ),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ECONNREFUSED (ICMP port unreachable) and the like.
                    Err(_) => Outcome::Failed,
                },
                Some(Conn::Tcp { stream, out, written, frames, connected }) => {
                    tcp_progress(stream, out, written, frames, connected, ready, buf)
                }
            };
            match outcome {
                Outcome::Wait(interest) => {
                    let fd = self.fd().unwrap_or(-1);
                    self.interest = interest;
                    return Step::Wait { fd, interest, fresh: false };
                }
                Outcome::Failed => return self.next(now),
                Outcome::Answer(answer, tcp) => {
                    if let Some(step) = self.accept(answer, tcp, now) {
                        return step;
                    }
                    // Not an answer to our question (stale, forged): keep waiting.
                }
            }
        }
    }

    /// Judge an answer: `None` to ignore it and wait on.
    fn accept(&mut self, answer: Vec<u8>, tcp: bool, now: Instant) -> Option<Step> {
        let header = Header::parse(&answer).ok()?;
        if header.id != self.our_id || !header.qr {
            return None;
        }
        let matches = match header.qdcount {
            0 => header.rcode != 0,
            _ => Question::parse(&answer, Header::LEN)
                .is_ok_and(|(q, _)| q.same_as(&self.request.question)),
        };
        if !matches {
            return None;
        }
        if header.tc && !tcp && matches!(self.to, ReplyTo::Tcp { .. }) {
            self.fallback = Some(answer);
            return Some(self.over_tcp(now));
        }
        let code = header.rcode as u16;
        if (code == rcode::SERVFAIL || code == rcode::REFUSED)
            && self.index + 1 < self.servers.len()
        {
            self.fallback = Some(answer);
            return Some(self.next(now));
        }
        self.answered_by = self.servers.get(self.index).copied();
        self.conn = None;
        Some(Step::Done(resolve::relay(answer, &self.request)))
    }
}

/// Move a TCP exchange with an upstream along: connect, write the query, read one answer.
fn tcp_progress(
    stream: &mut TcpStream,
    out: &[u8],
    written: &mut usize,
    frames: &mut FrameReader,
    connected: &mut bool,
    ready: u32,
    buf: &mut [u8],
) -> Outcome {
    if !*connected {
        if ready & (WRITE | HANGUP) == 0 {
            return Outcome::Wait(WRITE);
        }
        match stream.take_error() {
            Ok(None) => *connected = true,
            _ => return Outcome::Failed,
        }
    }
    while *written < out.len() {
        match stream.write(&out[*written..]) {
            Ok(0) => return Outcome::Failed,
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Wait(WRITE),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Failed,
        }
    }
    loop {
        if let Some(f) = frames.next_frame() {
            return Outcome::Answer(f, true);
        }
        match stream.read(buf) {
            Ok(0) => return Outcome::Failed,
            Ok(n) => frames.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Wait(READ),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Failed,
        }
    }
}
