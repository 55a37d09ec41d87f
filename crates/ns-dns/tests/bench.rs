//! The resolver's speed, measured (never asserted), in network namespaces of the benchmark's
//! own (see common/). Run it built for release:
//!
//! ```sh
//! cargo test --release -p ns-dns --test bench -- --ignored --nocapture
//! ```
//!
//! Clients in a container's namespace ask over UDP, each with one query outstanding (closed
//! loop). Compared, on the same paths: a bare responder that answers every query with one A
//! record and does nothing else (the floor: sockets, veths and the bridge), on the gateway
//! address (the path of an answer from the records) and in the upstream namespace (asked
//! directly by the container); the resolver answering from its records (inotify, and the stat
//! per batch); the resolver forwarding to the bare responder upstream.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use ns_dns::records::{write_records, ContainerRecord, RecordsDoc, WatchMode};
use ns_dns::server::Server;
use ns_dns::wire::rtype;
use ns_dns::{Config, NetworkFiles};

const CLIENTS: usize = 4;
const RUN: Duration = Duration::from_secs(3);
const LATENCY_SAMPLES: usize = 5000;

/// Answers every query with itself plus one A record pointing back at the question's name:
/// blocking, one datagram per wake-up, nothing else.
fn bare_responder(ns: &Netns, addr: SocketAddr) {
    let sock = ns.run(move || UdpSocket::bind(addr).unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut out = buf[..n].to_vec();
            out[2] |= 0x80;
            out[3] |= 0x80;
            out[6..8].copy_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 203, 0, 113, 7]);
            let _ = sock.send_to(&out, peer);
        }
    });
}

struct Figures {
    qps: f64,
    median_us: f64,
    p99_us: f64,
    lost: usize,
}

/// One client's loop: ask `name` again and again until `until`, return the round trips.
fn client(server: SocketAddr, name: &str, until: Instant, max: usize) -> (Vec<Duration>, usize) {
    let bind = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = UdpSocket::bind(bind).unwrap();
    s.connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut packet = query(0, name, rtype::A, None);
    let mut buf = [0u8; 1500];
    let mut rtts = Vec::with_capacity(200_000);
    let mut lost = 0;
    let mut id: u16 = 0;
    while Instant::now() < until && rtts.len() < max {
        id = id.wrapping_add(1);
        packet[..2].copy_from_slice(&id.to_be_bytes());
        let t = Instant::now();
        s.send(&packet).unwrap();
        loop {
            match s.recv(&mut buf) {
                Ok(n) if n >= 2 && buf[..2] == id.to_be_bytes() => {
                    rtts.push(t.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    (rtts, lost)
}

fn measure(ns: &Netns, server: SocketAddr, name: &str) -> Figures {
    // Latency: one client alone.
    let n = name.to_owned();
    let (mut alone, _) = ns.run(move || client(server, &n, Instant::now() + RUN, LATENCY_SAMPLES));
    alone.sort();
    let pick = |q: f64| {
        alone[((alone.len() as f64 * q) as usize).min(alone.len() - 1)].as_secs_f64() * 1e6
    };
    // Throughput: CLIENTS at once.
    let until = Instant::now() + RUN;
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let n = name.to_owned();
            ns.spawn(move || client(server, &n, until, usize::MAX))
        })
        .collect();
    let mut total = 0;
    let mut lost = 0;
    for h in handles {
        let (r, l) = h.join().unwrap();
        total += r.len();
        lost += l;
    }
    Figures {
        qps: total as f64 / start.elapsed().as_secs_f64(),
        median_us: pick(0.5),
        p99_us: pick(0.99),
        lost,
    }
}

#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn resolver_throughput_and_latency() {
    in_netns(&test_name(module_path!(), "resolver_throughput_and_latency"), || {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let up = upstream_namespace();
        // The container asks the upstream directly for the floor of forwarding: route it.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        up.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        let host = Netns::current();
        bare_responder(&host, sa("198.51.100.1", 5353));
        bare_responder(&up, sa("192.0.2.53", 53));
        let mut doc = RecordsDoc::new("neta", Some("dns.ns"));
        // A network of a realistic size: 200 containers, the asker among them.
        for i in 2..202u32 {
            doc.upsert(ContainerRecord {
                id: format!("c{i:04}"),
                name: format!("svc{i}"),
                aliases: vec![format!("alias{i}")],
                ipv4: vec![[203, 0, 113, i as u8].into()],
                ..ContainerRecord::default()
            });
        }
        doc.upsert(ContainerRecord {
            id: "web".into(),
            name: "web".into(),
            ipv4: vec!["198.51.100.3".parse().unwrap()],
            ..ContainerRecord::default()
        });
        let dir = records_dir();
        for (network, port, watch) in
            [("neta", 53, WatchMode::Inotify), ("netstat", 54, WatchMode::Stat)]
        {
            let mut d = doc.clone();
            d.network = network.into();
            let files = NetworkFiles::new(&dir, network).unwrap();
            write_records(&files.records(), &d).unwrap();
            let mut config = Config::new(files.records(), vec!["198.51.100.1".parse().unwrap()]);
            config.port = port;
            config.watch = watch;
            config.upstreams = vec![sa("192.0.2.53", 53)];
            let server = Server::bind(&config).unwrap();
            std::thread::spawn(move || server.run());
        }
        let cases: [(&str, SocketAddr, &str); 5] = [
            ("bare responder on the gateway", sa("198.51.100.1", 5353), "svc100"),
            ("resolver, from records (inotify)", sa("198.51.100.1", 53), "svc100"),
            ("resolver, from records (stat per batch)", sa("198.51.100.1", 54), "svc100"),
            (
                "bare responder upstream, asked directly (routed)",
                sa("192.0.2.53", 53),
                "www.example.test",
            ),
            ("resolver, forwarded to it", sa("198.51.100.1", 53), "www.example.test"),
        ];
        println!();
        println!(
            "ns-dns benchmark ({} build, {} cores, {CLIENTS} clients for throughput, UDP)",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "{:<52} {:>10} {:>11} {:>9} {:>6}",
            "case", "queries/s", "median µs", "p99 µs", "lost"
        );
        for (label, server, name) in cases {
            let f = measure(&web, server, name);
            println!(
                "{label:<52} {:>10.0} {:>11.1} {:>9.1} {:>6}",
                f.qps, f.median_us, f.p99_us, f.lost
            );
        }
        // What the stat per batch costs by itself.
        let path = std::ffi::CString::new(dir.join("neta.json").to_str().unwrap()).unwrap();
        let t = Instant::now();
        let n = 200_000;
        for _ in 0..n {
            // SAFETY: stat into a zeroed buffer with a NUL-terminated path.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                libc::stat(path.as_ptr(), &mut st);
            }
        }
        println!(
            "one stat(2) of the records file: {:.2} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    });
}
