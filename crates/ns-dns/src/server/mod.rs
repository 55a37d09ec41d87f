//! The resolver process: one thread, one epoll loop over the UDP and TCP sockets of every
//! listening address, the TCP clients, and the records' inotify descriptor.
//!
//! Why one thread and no async runtime: an answer from the records is a hash lookup and a few
//! hundred bytes written — microseconds, far below a syscall's cost — so the loop never waits
//! on work, only on sockets, and epoll is what an async runtime would sit on anyway. Each
//! resolver serves one network (a handful to a few hundred containers), so one core's share is
//! more than it will ever need (see the benchmark), and a single thread means no locks around
//! the records and a small process: 2.4 MiB resident, one thread, nine descriptors for one
//! address (measured, release build).
//!
//! Its lifetime is its network's: once a second it checks that its records file still exists
//! and lists a container (else, holding the network's lock so that no container is being
//! added meanwhile, it exits), and that its pid file is still the one it locked (else another
//! resolver took over, and it exits).

mod forward;
mod poller;
mod slab;
mod socket;
mod tcp;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pidfile::PidLock;
use crate::records::{NetworkFiles, RecordsLock, Watcher};
use crate::resolve::{self, Decision, ForwardRequest, Policy, Transport};
use crate::upstream::{self, UpstreamSet};
use forward::{Forward, ReplyTo, Step};
use poller::{Poller, Token, HANGUP, READ};
use slab::Slab;
use tcp::{Incoming, TcpClient};

const K_UDP: u8 = 1;
const K_LISTEN: u8 = 2;
const K_CLIENT: u8 = 3;
const K_WATCH: u8 = 4;
const K_FORWARD: u8 = 5;

/// How often the lifecycle checks run.
const TICK: Duration = Duration::from_secs(1);
/// A TCP client idle this long is closed (RFC 7766 §6.2.3 leaves it to the server).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// At most this many TCP clients at once; more are closed as they are accepted.
const MAX_TCP_CLIENTS: usize = 128;
/// Datagrams read from one socket per wake-up before the others get their turn.
const UDP_BATCH: usize = 64;
/// Questions forwarded and not yet answered, at most; beyond, SERVFAIL at once (each holds a
/// socket, and the descriptors of a process are limited).
const MAX_FORWARDS: usize = 512;

/// Why the resolver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The network's records file is gone: the network is.
    RecordsRemoved,
    /// The records list no container: the last one left.
    NoContainers,
    /// The pid file was removed or replaced: another resolver took over.
    PidFileTakenOver,
}

impl ExitReason {
    pub fn describe(&self) -> &'static str {
        match self {
            ExitReason::RecordsRemoved => "the records file was removed",
            ExitReason::NoContainers => "no container is left on the network",
            ExitReason::PidFileTakenOver => "the pid file was taken over",
        }
    }
}

/// The end of [`Server::run`]. It keeps the network's lock (when the exit was decided under
/// it) until dropped, so a process exits while still holding it.
pub struct Exit {
    pub reason: ExitReason,
    _lock: Option<RecordsLock>,
}

pub struct Server {
    files: NetworkFiles,
    policy: Policy,
    poller: Poller,
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    clients: Slab<TcpClient>,
    forwards: Slab<Forward>,
    upstreams: UpstreamSet,
    timeout: Duration,
    watcher: Watcher,
    pid: Option<PidLock>,
    buf: Vec<u8>,
    next_tick: Instant,
    /// How long the records may list no container before it exits, and since when they have.
    idle: Duration,
    idle_since: Option<Instant>,
}

impl Server {
    /// Take the pid file, load the records (they must exist: the first container is written
    /// before its resolver starts) and bind every address. Nothing is answered until
    /// [`Server::run`].
    pub fn bind(config: &Config) -> Result<Server> {
        config.validate()?;
        let files = config.files()?;
        crate::log::set_network(files.network());
        let pid = config.pid_file.as_deref().map(PidLock::acquire).transpose()?;
        let watcher = Watcher::open(files.clone(), config.watch, crate::log::line)?;
        if !watcher.own_present() {
            return Err(Error::other(
                "load records",
                Some(&files.records().display().to_string()),
                "no such file",
            )
            .with_hint(
                "write the network's records (its first container) before starting its resolver",
            ));
        }
        let poller = Poller::new().map_err(|e| Error::io("create epoll", None, &e))?;
        let mut server = Server {
            files,
            policy: Policy { internal: config.internal },
            poller,
            udp: Vec::new(),
            tcp: Vec::new(),
            clients: Slab::default(),
            forwards: Slab::default(),
            upstreams: UpstreamSet::new(
                &config.upstreams,
                &config.resolv_conf,
                config.host_loopback,
            ),
            timeout: config.timeout,
            watcher,
            pid,
            buf: vec![0; 65536],
            next_tick: Instant::now() + TICK,
            idle: config.idle,
            idle_since: None,
        };
        for ip in &config.listen {
            let addr = SocketAddr::new(*ip, config.port);
            let where_ = addr.to_string();
            let u = socket::bind_udp(&addr)
                .map_err(|e| Error::io("bind udp socket", Some(&where_), &e))?;
            let t = socket::bind_tcp(&addr)
                .map_err(|e| Error::io("listen on tcp socket", Some(&where_), &e))?;
            server.add(u.as_raw_fd(), Token::new(K_UDP, 0, server.udp.len()), READ)?;
            server.add(t.as_raw_fd(), Token::new(K_LISTEN, 0, server.tcp.len()), READ)?;
            server.udp.push(u);
            server.tcp.push(t);
        }
        if let Some(fd) = server.watcher.fd() {
            server.add(fd, Token::new(K_WATCH, 0, 0), READ)?;
        }
        Ok(server)
    }

    fn add(&self, fd: i32, token: Token, interest: u32) -> Result<()> {
        self.poller.add(fd, token, interest).map_err(|e| Error::io("register with epoll", None, &e))
    }

    /// The addresses bound, with their ports (for a server bound to port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|u| u.local_addr().ok()).collect()
    }

    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }

    /// The upstream servers it forwards to now.
    pub fn upstreams(&self) -> &[SocketAddr] {
        self.upstreams.servers()
    }

    /// Serve until the network is gone or another resolver takes over.
    pub fn run(mut self) -> Result<Exit> {
        let mut events = Vec::with_capacity(256);
        loop {
            let timeout = self.next_deadline().saturating_duration_since(Instant::now());
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32 + 1;
            self.poller
                .wait(ms, &mut events)
                .map_err(|e| Error::io("wait for events", None, &e))?;
            // Changes to the records first: a query sent after an update is answered from it.
            if events.iter().any(|(t, _)| t.kind == K_WATCH) {
                self.watcher.on_inotify();
            }
            if events.iter().any(|(t, _)| t.kind != K_WATCH) {
                self.watcher.before_batch();
            }
            for &(token, ready) in &events {
                match token.kind {
                    K_UDP => self.on_udp(token.index as usize),
                    K_LISTEN => self.on_accept(token.index as usize),
                    K_CLIENT => self.on_client(token.index as usize, token.gen, ready),
                    K_FORWARD => self.on_forward(token.index as usize, token.gen, ready),
                    _ => {}
                }
            }
            let now = Instant::now();
            self.expire_forwards(now);
            self.expire_clients(now);
            if now >= self.next_tick {
                self.next_tick = now + TICK;
                if let Some(exit) = self.tick() {
                    return Ok(exit);
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self.next_tick;
        for (_, _, c) in self.clients.iter() {
            d = d.min(c.last_active + TCP_IDLE);
        }
        for (_, _, f) in self.forwards.iter() {
            d = d.min(f.deadline);
        }
        d
    }

    fn on_udp(&mut self, index: usize) {
        for i in 0..UDP_BATCH {
            // The first datagram was there when the loop woke (the records were looked at
            // since); a later one may have been sent after a change that came after that.
            if i > 0 {
                self.watcher.catch_up();
            }
            let Some(sock) = self.udp.get(index) else { return };
            let (n, peer) = match sock.recv_from(&mut self.buf) {
                Ok(r) => r,
                // EAGAIN: all read. Anything else (an ICMP error queued on the socket) is
                // not about the next datagram: stop for this wake-up.
                Err(_) => return,
            };
            let decision = resolve::decide(
                &self.buf[..n],
                peer.ip(),
                Transport::Udp,
                self.watcher.view(),
                &self.policy,
            );
            self.dispatch(decision, ReplyTo::Udp { socket: index, peer });
        }
    }

    fn on_accept(&mut self, index: usize) {
        loop {
            let Some(listener) = self.tcp.get(index) else { return };
            let (stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(_) => return,
            };
            if self.clients.len() >= MAX_TCP_CLIENTS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let (slot, gen) = self.clients.insert(TcpClient::new(stream, peer.ip()));
            if self.poller.add(fd, Token::new(K_CLIENT, gen, slot), READ).is_err() {
                self.clients.remove(slot, gen);
            }
        }
    }

    fn on_client(&mut self, slot: usize, gen: u32, ready: u32) {
        let Some(client) = self.clients.get_mut(slot, gen) else { return };
        // Both directions closed, or an error: nothing sent now can arrive. (Closing also
        // keeps a level-triggered HUP from waking the loop until an answer is ready.)
        if ready & HANGUP != 0 {
            return self.close_client(slot, gen);
        }
        if ready & poller::WRITE != 0 && client.flush().is_err() {
            return self.close_client(slot, gen);
        }
        let reading = ready & READ != 0 && !client.eof;
        let mut messages = Vec::new();
        if reading {
            // A read takes whatever has arrived, maybe sent after a change of the records
            // that came after this wake-up's look at them.
            self.watcher.catch_up();
            let Some(client) = self.clients.get_mut(slot, gen) else { return };
            match client.read(&mut self.buf) {
                Incoming::Messages(m) => messages = m,
                Incoming::Broken => return self.close_client(slot, gen),
            }
        }
        let Some(peer) = self.clients.get_mut(slot, gen).map(|c| c.peer) else { return };
        for m in messages {
            let decision =
                resolve::decide(&m, peer, Transport::Tcp, self.watcher.view(), &self.policy);
            self.dispatch(decision, ReplyTo::Tcp { slot, gen });
        }
        self.update_client(slot, gen);
    }

    /// Re-arm a client's interest after it changed, or close it when it is done.
    fn update_client(&mut self, slot: usize, gen: u32) {
        let Some(client) = self.clients.get_mut(slot, gen) else { return };
        if client.finished() {
            return self.close_client(slot, gen);
        }
        let wants = client.wants();
        if wants != client.interest {
            client.interest = wants;
            let fd = client.stream.as_raw_fd();
            if self.poller.modify(fd, Token::new(K_CLIENT, gen, slot), wants).is_err() {
                self.close_client(slot, gen);
            }
        }
    }

    fn close_client(&mut self, slot: usize, gen: u32) {
        if let Some(c) = self.clients.remove(slot, gen) {
            self.poller.delete(c.stream.as_raw_fd());
        }
    }

    fn expire_clients(&mut self, now: Instant) {
        let idle: Vec<(usize, u32)> = self
            .clients
            .iter()
            .filter(|(_, _, c)| c.in_flight == 0 && now >= c.last_active + TCP_IDLE)
            .map(|(s, g, _)| (s, g))
            .collect();
        for (slot, gen) in idle {
            self.close_client(slot, gen);
        }
    }

    fn dispatch(&mut self, decision: Decision, to: ReplyTo) {
        match decision {
            Decision::Drop => {}
            Decision::Reply(bytes) => self.send(to, &bytes),
            Decision::Forward(request) => self.forward(request, to),
        }
    }

    /// Pass a question on upstream: the asker's own servers if it has some, else the
    /// network's; SERVFAIL at once when there is none or too many are in flight.
    fn forward(&mut self, request: ForwardRequest, to: ReplyTo) {
        let servers = if request.upstreams.is_empty() {
            self.upstreams.ordered()
        } else {
            upstream::for_container(&request.upstreams)
        };
        if servers.is_empty() || self.forwards.len() >= MAX_FORWARDS {
            return self.send(to, &resolve::servfail(&request));
        }
        if let ReplyTo::Tcp { slot, gen } = to {
            if let Some(c) = self.clients.get_mut(slot, gen) {
                c.in_flight += 1;
            }
        }
        let mut f = Forward::new(request, to, servers, self.timeout);
        let step = f.begin(Instant::now());
        let (slot, gen) = self.forwards.insert(f);
        self.advance(slot, gen, step);
    }

    fn on_forward(&mut self, slot: usize, gen: u32, ready: u32) {
        let Some(f) = self.forwards.get_mut(slot, gen) else { return };
        let step = f.on_ready(ready, Instant::now(), &mut self.buf);
        self.advance(slot, gen, step);
    }

    fn expire_forwards(&mut self, now: Instant) {
        let due: Vec<(usize, u32)> = self
            .forwards
            .iter()
            .filter(|(_, _, f)| now >= f.deadline)
            .map(|(s, g, _)| (s, g))
            .collect();
        for (slot, gen) in due {
            if let Some(f) = self.forwards.get_mut(slot, gen) {
                let step = f.on_timeout(now);
                self.advance(slot, gen, step);
            }
        }
    }

    /// Act on what a forward needs next: (re)register its socket, or deliver its answer.
    fn advance(&mut self, slot: usize, gen: u32, step: Step) {
        let token = Token::new(K_FORWARD, gen, slot);
        match step {
            Step::Wait { fd, interest, fresh } => {
                let r = if fresh {
                    self.poller.add(fd, token, interest)
                } else {
                    self.poller.modify(fd, token, interest)
                };
                if r.is_err() {
                    if let Some(f) = self.forwards.remove(slot, gen) {
                        let answer = resolve::servfail(&f.request);
                        self.deliver(f, &answer);
                    }
                }
            }
            Step::Done(answer) => {
                if let Some(f) = self.forwards.remove(slot, gen) {
                    if let Some(by) = f.answered_by {
                        if f.request.upstreams.is_empty() {
                            self.upstreams.answered(by);
                        }
                    }
                    self.deliver(f, &answer);
                }
            }
        }
    }

    fn deliver(&mut self, f: Forward, answer: &[u8]) {
        self.send(f.to, answer);
        if let ReplyTo::Tcp { slot, gen } = f.to {
            if let Some(c) = self.clients.get_mut(slot, gen) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
            self.update_client(slot, gen);
        }
    }

    fn send(&mut self, to: ReplyTo, bytes: &[u8]) {
        match to {
            ReplyTo::Udp { socket, peer } => {
                if let Some(s) = self.udp.get(socket) {
                    // A full socket buffer drops the answer; the client asks again.
                    let _ = s.send_to(bytes, peer);
                }
            }
            ReplyTo::Tcp { slot, gen } => {
                let Some(c) = self.clients.get_mut(slot, gen) else { return };
                if c.send(bytes).is_err() {
                    self.close_client(slot, gen);
                }
            }
        }
    }

    /// The lifecycle checks, once a second.
    fn tick(&mut self) -> Option<Exit> {
        self.watcher.on_tick();
        self.upstreams.refresh();
        if let Some(pid) = &self.pid {
            if !pid.still_ours() {
                return Some(Exit { reason: ExitReason::PidFileTakenOver, _lock: None });
            }
        }
        if self.watcher.own_present() && !self.watcher.view().own.is_empty() {
            self.idle_since = None;
            return None;
        }
        // No container: wait out the idle time first (the records still there; removed ones
        // end it at once).
        if self.watcher.own_present() && !self.idle.is_zero() {
            let since = *self.idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < self.idle {
                return None;
            }
        }
        // The network looks gone. Decide under its lock, so that a container being added right
        // now (its writer holds the lock) is seen, and so that a writer that takes the lock
        // after us finds this resolver gone (the lock is released at exit).
        let lock = match RecordsLock::try_acquire(&self.files.lock()) {
            Ok(Some(lock)) => lock,
            // A writer holds it: look again at the next tick.
            Ok(None) => return None,
            // The whole directory is gone: no writer can be adding to it.
            Err(_) if !self.files.dir().exists() => {
                return Some(Exit { reason: ExitReason::RecordsRemoved, _lock: None });
            }
            Err(_) => return None,
        };
        self.watcher.on_tick();
        let reason = if !self.watcher.own_present() {
            ExitReason::RecordsRemoved
        } else if self.watcher.view().own.is_empty() {
            // Empty records are this resolver's to give back (the last container left them
            // for its idle time): the records and the pid file go, under the lock, before the
            // sockets are closed and the lock released; the next container starts afresh.
            let _ = std::fs::remove_file(self.files.records());
            if let Some(pid) = self.pid.take() {
                if pid.still_ours() {
                    let _ = std::fs::remove_file(pid.path());
                }
            }
            ExitReason::NoContainers
        } else {
            return None;
        };
        Some(Exit { reason, _lock: Some(lock) })
    }
}
