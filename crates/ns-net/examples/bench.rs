//! What a bridge attachment costs, measured inside a private network namespace (never the
//! host's): `cargo run --release -p ns-net --example bench [ITERATIONS]` as root.
//!
//! - a container's network namespace as ns makes it today (new netns, `lo` up), against the
//!   same plus a bridge attachment (allocation, veth with its peer born inside, port on the
//!   bridge, addresses, default routes) and its teardown;
//! - one nft batch (`nft -f -`), against one rtnetlink request (the floor of speaking
//!   nf_tables netlink directly);
//! - TCP throughput (iperf3) over a veth between two namespaces, against through the bridge.

#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use ns_net::firewall::{Op, Proto, Publish};
use ns_net::netlink::{LinkChange, Netlink, Veth};
use ns_net::{AttachRequest, BridgeDriver, Network, SubnetSpec};

const SANDBOX_ENV: &str = "NS_NET_BENCH_SANDBOX";

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    if std::env::var(SANDBOX_ENV).is_err() {
        // SAFETY: plain syscall.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("bench needs root (it makes network namespaces, veths and bridges)");
            std::process::exit(2);
        }
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        cmd.arg(n.to_string()).env(SANDBOX_ENV, "1");
        // SAFETY: only syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let none = c"none".as_ptr();
                libc::mount(
                    none,
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/run".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let st = cmd.status().expect("run the bench in a private namespace");
        std::process::exit(st.code().unwrap_or(1));
    }
    Netlink::open().and_then(|mut nl| nl.set_up("lo", true)).expect("lo up");
    run(n);
}

fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        // SAFETY: plain syscall; only this thread moves.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        let ns = ns_net::netns::current().unwrap();
        Netlink::open().and_then(|mut n| n.set_up("lo", true)).unwrap();
        ns
    })
    .join()
    .unwrap()
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "{name:<44} median {:>8.0} µs   p90 {:>8.0} µs   mean {:>8.0} µs   (n={})",
        us(v[v.len() / 2]),
        us(v[v.len() * 9 / 10]),
        mean,
        v.len()
    );
}

fn run(n: usize) {
    let d = BridgeDriver::new("/run/ns-net");
    let spec = |s: &str| SubnetSpec { subnet: s.parse().unwrap(), gateway: None, ip_range: None };
    let web =
        Network::new("web", None, &[spec("10.89.0.0/16"), spec("2001:db8:89::/64")], false, None)
            .unwrap();
    let v4 = Network::new("web4", None, &[spec("10.90.0.0/16")], false, None).unwrap();
    d.ensure_network(&web).unwrap();
    d.ensure_network(&v4).unwrap();

    let mut none = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let ns = new_netns();
        none.push(t.elapsed());
        drop(ns);
    }
    stats("netns + lo up (no network, today)", none);

    for (label, net) in [("v4", &v4), ("v4+v6", &web)] {
        let (mut setup, mut teardown) = (Vec::new(), Vec::new());
        for i in 0..n {
            let ns = new_netns();
            let id = format!("b{i}");
            let req = AttachRequest {
                container_id: &id,
                netns: ns.as_fd(),
                interface: "eth0",
                ips: vec![],
                ports: vec![],
                mac: None,
                default_route: true,
            };
            let t = Instant::now();
            let (att, lease) = d.setup(net, &req).expect("setup");
            setup.push(t.elapsed());
            let t = Instant::now();
            d.teardown(net, &att).expect("teardown");
            teardown.push(t.elapsed());
            drop(lease);
        }
        stats(&format!("bridge attachment setup ({label})"), setup);
        stats(&format!("bridge attachment teardown ({label})"), teardown);
    }

    phases(&d, &v4, n);

    let mut with_port = Vec::new();
    for i in 0..(n / 4).max(5) {
        let ns = new_netns();
        let id = format!("p{i}");
        let req = AttachRequest {
            container_id: &id,
            netns: ns.as_fd(),
            interface: "eth0",
            ips: vec![],
            ports: vec!["8080:80".parse().unwrap()],
            mac: None,
            default_route: true,
        };
        let t = Instant::now();
        let (att, lease) = d.setup(&v4, &req).expect("setup");
        with_port.push(t.elapsed());
        d.teardown(&v4, &att).expect("teardown");
        drop(lease);
    }
    stats("bridge attachment setup with -p 8080:80 (v4)", with_port);

    // One nft batch: a published port in, then out.
    let p = Publish {
        container: "x".into(),
        proto: Proto::Tcp,
        host_ip: None,
        host_port: 9999,
        to: "10.90.0.9".parse().unwrap(),
        to_port: 80,
    };
    let mut nft = Vec::new();
    for _ in 0..(n / 4).max(5) {
        let t = Instant::now();
        d.nft.apply("bench", &[Op::Publish(vec![p.clone()])]).unwrap();
        nft.push(t.elapsed());
        d.nft.apply("bench", &[Op::Unpublish(vec![p.clone()])]).unwrap();
    }
    stats("one nft batch (nft -f -, 1 element)", nft);
    let many: Vec<Publish> =
        (0..100).map(|k| Publish { host_port: 10000 + k, ..p.clone() }).collect();
    let mut nft100 = Vec::new();
    for _ in 0..(n / 20).max(5) {
        let t = Instant::now();
        d.nft.apply("bench", &[Op::Publish(many.clone())]).unwrap();
        nft100.push(t.elapsed());
        d.nft.apply("bench", &[Op::Unpublish(many.clone())]).unwrap();
    }
    stats("one nft batch (nft -f -, 100 elements)", nft100);
    let mut nl = Netlink::open().unwrap();
    let mut rt = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        nl.set_link("ns-web4", &LinkChange { alias: Some(format!("a{i}")), ..Default::default() })
            .unwrap();
        rt.push(t.elapsed());
    }
    stats("one rtnetlink request (set alias), the floor", rt);

    let rep = d.reconcile(&[web.clone(), v4.clone()], &HashSet::new());
    assert!(rep.errors.is_empty());
    throughput(&d, &v4);
    d.remove_network(&web).unwrap();
    d.remove_network(&v4).unwrap();
}

/// The steps of one attachment, each timed alone.
fn phases(d: &BridgeDriver, net: &Network, n: usize) {
    let ipam = d.ipam(net);
    let pool = &net.subnets[0];
    let (mut alloc, mut release, mut veth, mut inside, mut del) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut nl = Netlink::open().unwrap();
    let br = nl.link(&net.bridge).unwrap().unwrap();
    for i in 0..n {
        let ns = new_netns();
        let id = format!("ph{i}");
        let t = Instant::now();
        let (lease, _) = ipam.allocate(&id, &[(pool, None)], &serde_json::Value::Null).unwrap();
        alloc.push(t.elapsed());
        let t = Instant::now();
        nl.create_veth(&Veth {
            name: "nsbench0",
            peer: "eth0",
            peer_netns: Some(ns.as_fd()),
            master: Some(br.index),
            up: true,
            alias: Some("ns:bench"),
            hairpin: true,
            ..Default::default()
        })
        .unwrap();
        veth.push(t.elapsed());
        let t = Instant::now();
        let mut inner = Netlink::open_in(ns.as_fd()).unwrap();
        let l = inner.link("eth0").unwrap().unwrap();
        inner.set_up("eth0", true).unwrap();
        inner.add_address("eth0", l.index, lease.addresses[0], pool.subnet.prefix).unwrap();
        inner
            .add_route(&ns_net::netlink::RouteSpec {
                dst: None,
                gateway: Some(pool.gateway),
                oif: l.index,
                dev: "eth0".into(),
            })
            .unwrap();
        inside.push(t.elapsed());
        let t = Instant::now();
        nl.delete_link("nsbench0").unwrap();
        del.push(t.elapsed());
        let t = Instant::now();
        ipam.release(&id).unwrap();
        release.push(t.elapsed());
    }
    stats("  allocate (ipam)", alloc);
    stats("  create veth, peer in the netns, port set", veth);
    stats("  inside: socket, up, address, route", inside);
    stats("  delete veth", del);
    stats("  release (ipam)", release);
}

/// iperf3 for 3 s: from one namespace to another over a veth pair, then between two
/// containers on the bridge.
fn throughput(d: &BridgeDriver, net: &Network) {
    if Command::new("iperf3").arg("--version").output().is_err() {
        println!("iperf3: not installed, throughput not measured");
        return;
    }
    let iperf = |server: &OwnedFd, client: &OwnedFd, to: &str| -> String {
        let s = ns_net::netns::run_in(server.as_fd(), || {
            Command::new("iperf3")
                .args(["-s", "-1", "-B", to])
                .stdout(std::process::Stdio::null())
                .spawn()
        })
        .unwrap()
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let out = ns_net::netns::run_in(client.as_fd(), || {
            Command::new("iperf3").args(["-c", to, "-t", "3", "-J"]).output()
        })
        .unwrap()
        .unwrap();
        let mut s = s;
        let _ = s.wait();
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let bps = j["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0);
        format!("{:.1} Gbit/s", bps / 1e9)
    };
    let (a, b) = (new_netns(), new_netns());
    let mut nl = Netlink::open_in(a.as_fd()).unwrap();
    nl.create_veth(&Veth {
        name: "va",
        peer: "vb",
        peer_netns: Some(b.as_fd()),
        up: true,
        ..Default::default()
    })
    .unwrap();
    let va = nl.link("va").unwrap().unwrap();
    nl.add_address("va", va.index, "192.0.2.1".parse().unwrap(), 24).unwrap();
    let mut nlb = Netlink::open_in(b.as_fd()).unwrap();
    let vb = nlb.link("vb").unwrap().unwrap();
    nlb.set_up("vb", true).unwrap();
    nlb.add_address("vb", vb.index, "192.0.2.2".parse().unwrap(), 24).unwrap();
    println!("TCP throughput, veth between two namespaces: {}", iperf(&a, &b, "192.0.2.1"));
    let (c1, c2) = (new_netns(), new_netns());
    let mk = |id: &str, ns: &OwnedFd| {
        d.setup(
            net,
            &AttachRequest {
                container_id: id,
                netns: ns.as_fd(),
                interface: "eth0",
                ips: vec![],
                ports: vec![],
                mac: None,
                default_route: true,
            },
        )
        .unwrap()
    };
    let (a1, _l1) = mk("t1", &c1);
    let (a2, _l2) = mk("t2", &c2);
    let to = a1.addresses[0].addr.to_string();
    println!("TCP throughput, two containers through the bridge: {}", iperf(&c1, &c2, &to));
    d.teardown(net, &a1).unwrap();
    d.teardown(net, &a2).unwrap();
}
