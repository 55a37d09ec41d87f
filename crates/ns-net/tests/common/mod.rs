//! The test sandbox: every test that touches networking runs in a copy of this test binary
//! started in a new network and mount namespace (its simulated "host", with a tmpfs of its own
//! on /run), so nothing it does reaches the real host's interfaces, routes or firewall.
//! "Containers" are further network namespaces made by threads; an "upstream" namespace joined
//! by a veth stands for the outside world, on documentation ranges.

#![allow(dead_code, clippy::result_large_err)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use ns_net::netlink::{Netlink, RouteSpec, Veth};

const SANDBOX_ENV: &str = "NS_NET_SANDBOX";

/// Runs `body` inside a fresh network + mount namespace; skips it, saying why, when the test
/// cannot run here (not root).
pub fn sandbox(name: &str, body: impl FnOnce()) {
    if std::env::var(SANDBOX_ENV).as_deref() == Ok(name) {
        let lo = Netlink::open().and_then(|mut n| n.set_up("lo", true));
        lo.expect("bring up lo in the sandbox");
        body();
        return;
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        // Straight to the descriptor: the harness captures println!, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {name}: needs root (network namespaces, veth, bridges and nftables)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"]).env(SANDBOX_ENV, name);
    // SAFETY: between fork and exec only syscalls are made (unshare, mount).
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let none = c"none".as_ptr();
            if libc::mount(
                none,
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                c"tmpfs".as_ptr(),
                c"/run".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"mode=755".as_ptr().cast(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("start the sandboxed test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "sandboxed test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    print!("{stdout}");
}

/// A new network namespace ("a container"), kept alive by the returned descriptor.
pub fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        // SAFETY: plain syscall; only this thread moves.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare(CLONE_NEWNET)");
        let ns = ns_net::netns::current().expect("open new netns");
        Netlink::open().and_then(|mut n| n.set_up("lo", true)).expect("lo up");
        ns
    })
    .join()
    .expect("netns thread")
}

/// Runs `f` on a thread inside `ns`.
pub fn in_ns<T: Send + 'static>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    // SAFETY: dup of a valid descriptor, owned below.
    let fd = unsafe { OwnedFd::from_raw_fd(libc::fcntl(ns.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0)) };
    std::thread::spawn(move || {
        // SAFETY: plain syscall; only this thread moves.
        assert_eq!(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        f()
    })
}

/// Runs `f` inside `ns` and waits for it.
pub fn run_in_ns<T: Send + 'static>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    in_ns(ns, f).join().expect("thread in netns")
}

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh_in(ns: BorrowedFd<'_>, cmd: &str) -> String {
    let cmd = cmd.to_owned();
    run_in_ns(ns, move || sh(&cmd))
}

/// An echo server in `ns` answering each TCP connection (and each UDP datagram) with the
/// address it came from: the client learns what the server saw.
pub struct Echo {
    pub port: u16,
}

fn peer_reply(peer: SocketAddr) -> Vec<u8> {
    format!("{}", peer.ip()).into_bytes()
}

pub fn tcp_echo(ns: BorrowedFd<'_>, bind: &str) -> Echo {
    let bind = bind.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    in_ns(ns, move || {
        let l = TcpListener::bind(&bind).expect("bind tcp echo");
        tx.send(l.local_addr().unwrap().port()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let peer = s.peer_addr().unwrap();
            let _ = s.write_all(&peer_reply(peer));
        }
    });
    Echo { port: rx.recv().expect("echo port") }
}

pub fn udp_echo(ns: BorrowedFd<'_>, bind: &str) -> Echo {
    let bind = bind.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    in_ns(ns, move || {
        let s = UdpSocket::bind(&bind).expect("bind udp echo");
        tx.send(s.local_addr().unwrap().port()).unwrap();
        let mut buf = [0u8; 512];
        loop {
            let Ok((_, peer)) = s.recv_from(&mut buf) else { continue };
            let _ = s.send_to(&peer_reply(peer), peer);
        }
    });
    Echo { port: rx.recv().expect("echo port") }
}

/// From `ns`: connects to `to` over TCP; the address the server saw, or the error.
pub fn tcp_probe(ns: BorrowedFd<'_>, to: SocketAddr) -> Result<String, String> {
    run_in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(700))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).map_err(|e| e.to_string())?;
        Ok(v)
    })
}

/// From `ns`: sends a UDP datagram to `to`; the address the server saw, or the error.
pub fn udp_probe(ns: BorrowedFd<'_>, to: SocketAddr) -> Result<String, String> {
    run_in_ns(ns, move || {
        let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(any).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
        let mut buf = [0u8; 128];
        for _ in 0..3 {
            s.send_to(b"ping", to).map_err(|e| e.to_string())?;
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        Err("no answer".into())
    })
}

pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

/// The outside world: a namespace joined to the sandbox host by the veth `up0` (host side,
/// 198.51.100.1/24 and 2001:db8:100::1/64) / `eth0` (upstream side, .2 and ::2); the host's
/// default routes point at it.
pub struct Upstream {
    pub ns: OwnedFd,
}

pub const HOST_UP4: &str = "198.51.100.1";
pub const UPSTREAM4: &str = "198.51.100.2";
pub const HOST_UP6: &str = "2001:db8:100::1";
pub const UPSTREAM6: &str = "2001:db8:100::2";

pub fn upstream() -> Upstream {
    let ns = new_netns();
    let mut nl = Netlink::open().unwrap();
    nl.create_veth(&Veth {
        name: "up0",
        peer: "eth0",
        peer_netns: Some(ns.as_fd()),
        up: true,
        ..Default::default()
    })
    .unwrap();
    let up0 = nl.link("up0").unwrap().unwrap();
    nl.add_address("up0", up0.index, HOST_UP4.parse().unwrap(), 24).unwrap();
    nl.add_address("up0", up0.index, HOST_UP6.parse().unwrap(), 64).unwrap();
    for gw in [UPSTREAM4, UPSTREAM6] {
        nl.add_route(&RouteSpec {
            dst: None,
            gateway: Some(gw.parse().unwrap()),
            oif: up0.index,
            dev: "up0".into(),
        })
        .unwrap();
    }
    let mut inner = Netlink::open_in(ns.as_fd()).unwrap();
    let eth0 = inner.link("eth0").unwrap().unwrap();
    inner.set_up("eth0", true).unwrap();
    inner.add_address("eth0", eth0.index, UPSTREAM4.parse().unwrap(), 24).unwrap();
    inner.add_address("eth0", eth0.index, UPSTREAM6.parse().unwrap(), 64).unwrap();
    // up0 came up before its peer: until the kernel's link watcher has acted on the carrier,
    // its queue drops what the host sends (the first ARP to the upstream, so a first connect
    // waits a second). Its event is no urgent one (up0 and its peer have the same index, each
    // in its namespace), so it may wait a second; looking the link up runs it at once.
    wait_oper_up(&mut nl, "up0");
    Upstream { ns }
}

/// Waits (3 s at most) until the kernel reports `name` operationally up: its link watcher
/// has attached its queue. Looking the link up makes the kernel run a pending event at once.
pub fn wait_oper_up(nl: &mut Netlink, name: &str) {
    let start = std::time::Instant::now();
    loop {
        let l = nl.link(name).unwrap().unwrap_or_else(|| panic!("{name} exists"));
        if l.operstate == Some(ns_net::netlink::IF_OPER_UP) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "{name} never came up: {l:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A UDP echo in `ns` that also counts what it receives: a test can tell "the packet never
/// arrived" from "the answer got lost".
pub fn udp_echo_counted(
    ns: BorrowedFd<'_>,
    bind: &str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let bind = bind.to_owned();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    in_ns(ns, move || {
        let s = UdpSocket::bind(&bind).expect("bind udp echo");
        tx.send(s.local_addr().unwrap().port()).unwrap();
        let mut buf = [0u8; 512];
        loop {
            let Ok((_, peer)) = s.recv_from(&mut buf) else { continue };
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s.send_to(&peer_reply(peer), peer);
        }
    });
    (rx.recv().expect("echo port"), count)
}

/// A network for tests, on documentation-style private ranges.
pub fn network(name: &str, subnets: &[&str], internal: bool) -> ns_net::Network {
    let specs: Vec<ns_net::SubnetSpec> = subnets
        .iter()
        .map(|s| ns_net::SubnetSpec { subnet: s.parse().unwrap(), gateway: None, ip_range: None })
        .collect();
    ns_net::Network::new(name, None, &specs, internal, None).unwrap()
}

pub fn driver() -> ns_net::BridgeDriver {
    ns_net::BridgeDriver::new("/run/ns-net")
}

/// A container: a namespace of its own, attached to `net` with `ports`.
pub fn attach(
    d: &ns_net::BridgeDriver,
    net: &ns_net::Network,
    id: &str,
    ports: &[&str],
) -> (OwnedFd, ns_net::Attachment, ns_net::ipam::Lease) {
    let ns = new_netns();
    let req = ns_net::AttachRequest {
        container_id: id,
        netns: ns.as_fd(),
        interface: "eth0",
        ips: vec![],
        ports: ports.iter().map(|p| p.parse().unwrap()).collect(),
        mac: None,
        default_route: true,
    };
    let (att, lease) = d.setup(net, &req).unwrap_or_else(|e| panic!("setup {id}: {e:?}"));
    (ns, att, lease)
}

pub fn addr_of(att: &ns_net::Attachment, v6: bool) -> String {
    att.addresses.iter().find(|a| a.addr.is_ipv6() == v6).expect("address").addr.to_string()
}

/// Links of the sandbox host, by name.
pub fn host_links() -> Vec<String> {
    Netlink::open().unwrap().links().unwrap().into_iter().map(|l| l.name).collect()
}
