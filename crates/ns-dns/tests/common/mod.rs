//! The network the resolver tests run in: never the host's. Each test re-runs itself (this
//! test binary, that one test) in new network and mount namespaces — and a user namespace of
//! its own when not run by root, so the tests run rootless too — with a private tmpfs on
//! `/run` and its own `/etc/resolv.conf`. There it builds, with `ip`, what a host with two
//! bridge networks looks like: bridges with gateway addresses, containers in namespaces of
//! their own joined by veths, and an "upstream" namespace behind a veth standing for the
//! outside, where a fake DNS server of the test's answers. Addresses are documentation ranges
//! (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32). Everything goes when the process ends.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ns_dns::wire::{
    frame, rcode, rtype, Edns, FrameReader, Header, Message, Question, RData, Record, CLASS_IN,
};

const INSIDE: &str = "NS_DNS_TEST_INSIDE";

/// The test's name as the harness knows it: its module path without the crate, then its own.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{name}"),
        None => name.to_owned(),
    }
}

/// Run `body` inside the test's own namespaces. `name` is the test's full name.
pub fn in_netns(name: &str, body: impl FnOnce()) {
    if std::env::var_os(INSIDE).is_some() {
        prepare_inside();
        body();
        return;
    }
    let Some(_) = ip_tool() else {
        println!("SKIP {name}: iproute2's ip is not installed");
        return;
    };
    // SAFETY: plain syscalls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let rootless = uid != 0;
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--include-ignored", "--test-threads=1"])
        .env(INSIDE, "1")
        .stdin(Stdio::null());
    let maps = [format!("0 {uid} 1\n"), format!("0 {gid} 1\n")];
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (unshare, open, write, close) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let mut flags = libc::CLONE_NEWNET | libc::CLONE_NEWNS;
            if rootless {
                flags |= libc::CLONE_NEWUSER;
            }
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if rootless {
                write_proc(c"/proc/self/setgroups", b"deny")?;
                write_proc(c"/proc/self/uid_map", maps[0].as_bytes())?;
                write_proc(c"/proc/self/gid_map", maps[1].as_bytes())?;
            }
            Ok(())
        });
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if rootless => {
            println!("SKIP {name}: cannot make a user and network namespace as uid {uid}: {e}");
            return;
        }
        Err(e) => panic!("cannot start the test in new namespaces: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed inside its namespaces");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{name} did not run inside its namespaces"
    );
}

fn write_proc(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: open/write/close with a NUL-terminated path and our buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n != data.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Nothing inside may reach the host's mounts: make every mount private, put a tmpfs on
/// /run, give the namespaces an /etc/resolv.conf of their own, bring lo up.
fn prepare_inside() {
    // SAFETY: mount(2) with NUL-terminated strings, in our own mount namespace.
    unsafe {
        assert_eq!(
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make / private: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/run".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"mode=755".as_ptr().cast()
            ),
            0,
            "mount tmpfs on /run: {}",
            std::io::Error::last_os_error()
        );
    }
    std::fs::write("/run/resolv.conf", "nameserver 192.0.2.53\n").unwrap();
    if std::fs::symlink_metadata("/etc/resolv.conf").is_ok_and(|m| m.file_type().is_file()) {
        // SAFETY: as above.
        let r = unsafe {
            libc::mount(
                c"/run/resolv.conf".as_ptr(),
                c"/etc/resolv.conf".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "bind /etc/resolv.conf: {}", std::io::Error::last_os_error());
    }
    ip(&["link", "set", "lo", "up"]);
}

pub fn ip_tool() -> Option<&'static str> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

pub fn ip(args: &[&str]) {
    let out = Command::new(ip_tool().unwrap()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace made by `ip netns add` (under our private /run).
pub struct Netns {
    pub name: String,
    file: File,
}

impl Netns {
    pub fn add(name: &str) -> Netns {
        ip(&["netns", "add", name]);
        let file = File::open(format!("/run/netns/{name}")).unwrap();
        let ns = Netns { name: name.to_owned(), file };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace this process runs in (the tests' "host").
    pub fn current() -> Netns {
        Netns { name: String::new(), file: File::open("/proc/self/ns/net").unwrap() }
    }

    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// A command that runs in this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.fd();
        // SAFETY: setns is async-signal-safe; fd stays open in the parent across the spawn.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Run `f` on a thread of its own inside this namespace (sockets it makes are this
    /// namespace's).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().unwrap()
    }

    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let fd = self.file.try_clone().unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns of this thread only (network namespaces are per thread).
            assert_eq!(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            drop(fd);
            f()
        })
    }
}

/// `busybox nslookup ARGS…` in `ns`, in a mount namespace of its own where `resolv_conf` is
/// bound over /etc/resolv.conf (as the container's own file would be); its output.
pub fn nslookup_with(ns: &Netns, resolv_conf: &Path, args: &[&str]) -> String {
    let src = std::ffi::CString::new(resolv_conf.as_os_str().as_encoded_bytes()).unwrap();
    let mut cmd = ns.command("/bin/busybox");
    // SAFETY: unshare and mount are async-signal-safe; src lives in the parent across spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    c"/etc/resolv.conf".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.arg("nslookup").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `busybox nslookup ARGS…` in `ns`; its output.
pub fn nslookup(ns: &Netns, args: &[&str]) -> String {
    let out: Output = ns.command("/bin/busybox").arg("nslookup").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

pub fn busybox_available() -> bool {
    Path::new("/bin/busybox").exists()
}

/// A bridge network on the "host" (this namespace): the bridge with its gateway addresses.
pub struct Bridge {
    pub name: String,
    pub gw4: String,
    pub gw6: String,
    prefix4: String,
    ports: usize,
}

impl Bridge {
    /// `gw4` and `gw6` with their prefixes (`198.51.100.1/25`).
    pub fn add(name: &str, gw4: &str, gw6: &str) -> Bridge {
        ip(&["link", "add", name, "type", "bridge"]);
        ip(&["addr", "add", gw4, "dev", name]);
        ip(&["addr", "add", gw6, "dev", name, "nodad"]);
        ip(&["link", "set", name, "up"]);
        let strip = |s: &str| s.split('/').next().unwrap().to_owned();
        Bridge {
            name: name.into(),
            gw4: strip(gw4),
            gw6: strip(gw6),
            prefix4: gw4.split('/').nth(1).unwrap().into(),
            ports: 0,
        }
    }

    pub fn gateways(&self) -> Vec<IpAddr> {
        vec![self.gw4.parse().unwrap(), self.gw6.parse().unwrap()]
    }

    /// A container on this bridge: a namespace with `eth0` (`v4/len`, `v6/len`), routed by the
    /// gateway.
    pub fn container(&mut self, ns_name: &str, v4: &str, v6: &str) -> Netns {
        let ns = Netns::add(ns_name);
        self.ports += 1;
        let host_end = format!("{}p{}", self.name, self.ports);
        ip(&["link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", ns_name]);
        ip(&["link", "set", &host_end, "master", &self.name, "up"]);
        ns.ip(&["addr", "add", v4, "dev", "eth0"]);
        ns.ip(&["addr", "add", v6, "dev", "eth0", "nodad"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["route", "add", "default", "via", &self.gw4]);
        ns.ip(&["-6", "route", "add", "default", "via", &self.gw6]);
        ns
    }
}

/// The outside: a namespace behind a veth (`192.0.2.1` on the host, `192.0.2.53` and
/// `192.0.2.54` there; `2001:db8:53::1` and `2001:db8:53::53`).
pub fn upstream_namespace() -> Netns {
    let ns = Netns::add("upstream");
    ip(&["link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", "upstream"]);
    ip(&["addr", "add", "192.0.2.1/24", "dev", "up0"]);
    ip(&["addr", "add", "2001:db8:53::1/64", "dev", "up0", "nodad"]);
    ip(&["link", "set", "up0", "up"]);
    for a in ["192.0.2.53/24", "192.0.2.54/24"] {
        ns.ip(&["addr", "add", a, "dev", "eth0"]);
    }
    ns.ip(&["addr", "add", "2001:db8:53::53/64", "dev", "eth0", "nodad"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns
}

/// What the fake upstream saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub qtype: u16,
    pub id: u16,
    pub tcp: bool,
    pub at: SocketAddr,
}

/// A DNS server of the test's own, in the upstream namespace, on UDP and TCP port 53 of the
/// given addresses. Its zone: `*.example.test` A 203.0.113.TAG and AAAA 2001:db8:ffff::TAG;
/// `big.example.test` sixty A records (truncated over UDP, whole over TCP); `silent.*` never
/// answered; `servfail.*` SERVFAIL; anything else NXDOMAIN.
pub struct FakeUpstream {
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeUpstream {
    pub fn start(ns: &Netns, addrs: &[&str], tag: u8) -> FakeUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        for a in addrs {
            let addr: SocketAddr = SocketAddr::new(a.parse().unwrap(), 53);
            let (udp, tcp) =
                ns.run(move || (UdpSocket::bind(addr).unwrap(), TcpListener::bind(addr).unwrap()));
            let s = seen.clone();
            std::thread::spawn(move || serve_udp(udp, tag, s));
            let s = seen.clone();
            std::thread::spawn(move || serve_tcp(tcp, tag, s));
        }
        FakeUpstream { seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn zone_answer(query: &Message, tag: u8, tcp: bool) -> Option<Vec<u8>> {
    let q = query.questions.first()?;
    let name = q.name.to_string().to_ascii_lowercase();
    let mut r = Message::response_to(query, 1232);
    r.header.ra = true;
    if name.starts_with("silent.") {
        return None;
    }
    if name.starts_with("servfail.") {
        r.set_rcode(rcode::SERVFAIL);
    } else if name == "big.example.test." && q.qtype == rtype::A {
        for i in 0..60u8 {
            r.answers.push(Record::new(q.name.clone(), 30, RData::A([203, 0, 113, i].into())));
        }
    } else if name.ends_with(".example.test.") && q.qtype == rtype::A {
        r.answers.push(Record::new(q.name.clone(), 30, RData::A([203, 0, 113, tag].into())));
    } else if name.ends_with(".example.test.") && q.qtype == rtype::AAAA {
        r.answers.push(Record::new(
            q.name.clone(),
            30,
            RData::Aaaa(format!("2001:db8:ffff::{tag}").parse().unwrap()),
        ));
    } else {
        r.set_rcode(rcode::NXDOMAIN);
    }
    let limit = if tcp {
        65535
    } else {
        query.edns.as_ref().map_or(512, |e| (e.udp_size as usize).max(512))
    };
    Some(r.encode_within(limit))
}

fn note(seen: &Mutex<Vec<Seen>>, m: &Message, tcp: bool, at: SocketAddr) {
    if let Some(q) = m.questions.first() {
        seen.lock().unwrap().push(Seen {
            name: q.name.to_string(),
            qtype: q.qtype,
            id: m.header.id,
            tcp,
            at,
        });
    }
}

fn serve_udp(sock: UdpSocket, tag: u8, seen: Arc<Mutex<Vec<Seen>>>) {
    let at = sock.local_addr().unwrap();
    let mut buf = [0u8; 65535];
    while let Ok((n, peer)) = sock.recv_from(&mut buf) {
        let Ok(m) = Message::parse(&buf[..n]) else { continue };
        note(&seen, &m, false, at);
        if let Some(a) = zone_answer(&m, tag, false) {
            let _ = sock.send_to(&a, peer);
        }
    }
}

fn serve_tcp(listener: TcpListener, tag: u8, seen: Arc<Mutex<Vec<Seen>>>) {
    let at = listener.local_addr().unwrap();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut frames = FrameReader::default();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    return;
                }
                frames.push(&buf[..n]);
                while let Some(f) = frames.next_frame() {
                    let Ok(m) = Message::parse(&f) else { return };
                    note(&seen, &m, true, at);
                    if let Some(a) = zone_answer(&m, tag, true) {
                        let _ = stream.write_all(&frame(&a));
                    }
                }
            }
        });
    }
}

/// A query as a stub resolver sends it (RD set), with EDNS when `edns` is given.
pub fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    Message {
        header: Header { id, rd: true, ..Header::default() },
        questions: vec![Question {
            name: ns_dns::wire::Name::from_ascii(name).unwrap(),
            qtype,
            qclass: CLASS_IN,
        }],
        edns: edns.map(|udp_size| Edns { udp_size, ..Edns::default() }),
        ..Message::default()
    }
    .encode()
}

/// Send `packet` over UDP to `server` and read the answer (3 s at most).
pub fn ask_udp(server: SocketAddr, packet: &[u8]) -> Option<Message> {
    let bind: SocketAddr =
        if server.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let s = UdpSocket::bind(bind).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.send_to(packet, server).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(Message::parse(&buf[..n]).expect("the resolver's answer must parse"))
}

/// Send `packets` on one TCP connection, pipelined, and read as many answers.
pub fn ask_tcp(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Message> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    for p in packets {
        all.extend(frame(p));
    }
    s.write_all(&all).unwrap();
    let mut frames = FrameReader::default();
    let mut out = Vec::new();
    let mut buf = [0u8; 65535];
    while out.len() < packets.len() {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the resolver closed the connection after {} answers", out.len());
        frames.push(&buf[..n]);
        while let Some(f) = frames.next_frame() {
            out.push(Message::parse(&f).unwrap());
        }
    }
    out
}

pub fn addrs_in(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a)),
            RData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
        .collect()
}

pub fn records_dir() -> PathBuf {
    let d = PathBuf::from("/run/ns/dns");
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}
