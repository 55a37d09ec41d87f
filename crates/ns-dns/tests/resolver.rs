//! The resolver with real packets, in network namespaces of the tests' own (see common/): each
//! test builds bridges with gateway addresses and containers behind veths, starts resolvers on
//! the gateways, and asks from inside the containers — with this crate's codec and with
//! busybox's nslookup as a client of its own.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use ns_dns::records::{reverse_name, write_records, ContainerRecord, RecordsDoc, WatchMode};
use ns_dns::server::Server;
use ns_dns::wire::{rcode, rtype, Message, RData};
use ns_dns::{Config, NetworkFiles};

macro_rules! netns_test {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            common::in_netns(&common::test_name(module_path!(), stringify!($name)), || $body)
        }
    };
}

fn container(id: &str, name: &str, aliases: &[&str], v4: &[&str], v6: &[&str]) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ipv4: v4.iter().map(|a| a.parse().unwrap()).collect(),
        ipv6: v6.iter().map(|a| a.parse().unwrap()).collect(),
        dns: vec![],
    }
}

/// Network A: `db` (no namespace: only named) and `web` (a namespace, the asker) on br-a.
fn network_a() -> RecordsDoc {
    let mut d = RecordsDoc::new("neta", Some("dns.ns"));
    d.upsert(container(
        "d0c0ffee1234abcd5678",
        "db",
        &["database"],
        &["198.51.100.2"],
        &["2001:db8:a::2"],
    ));
    d.upsert(container("e1e1e1e1e1e1e1e1", "web", &[], &["198.51.100.3"], &["2001:db8:a::3"]));
    d
}

/// Start a resolver for `doc` on `listen`, port 53, on a thread of this ("host") namespace.
fn serve(doc: &RecordsDoc, listen: Vec<IpAddr>, tweak: impl FnOnce(&mut Config)) -> NetworkFiles {
    let files = NetworkFiles::new(records_dir(), &doc.network).unwrap();
    write_records(&files.records(), doc).unwrap();
    let mut config = Config::new(files.records(), listen);
    tweak(&mut config);
    let server = Server::bind(&config).unwrap();
    std::thread::spawn(move || server.run());
    files
}

fn a_of(ns: &Netns, server: SocketAddr, name: &str, qtype: u16) -> Message {
    let packet = query(0x5151, name, qtype, Some(1232));
    ns.run(move || ask_udp(server, &packet)).expect("an answer")
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

netns_test! {
    fn a_container_name_resolves_to_its_ipv4_and_ipv6_addresses_for_a_container_of_its_network() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        serve(&network_a(), br.gateways(), |_| {});
        for gw in [&br.gw4, &br.gw6] {
            let server = sa(gw, 53);
            let m = a_of(&web, server, "db", rtype::A);
            assert_eq!(m.header.id, 0x5151);
            assert!(m.header.aa);
            assert_eq!(m.rcode(), rcode::NOERROR);
            assert_eq!(addrs_in(&m), ips(&["198.51.100.2"]), "A via {server}");
            let m = a_of(&web, server, "db", rtype::AAAA);
            assert_eq!(addrs_in(&m), ips(&["2001:db8:a::2"]), "AAAA via {server}");
        }
        if busybox_available() {
            let out = nslookup(&web, &["db", &br.gw4]);
            assert!(out.contains("Address: 198.51.100.2"), "{out}");
            assert!(out.contains("Address: 2001:db8:a::2"), "{out}");
        } else {
            println!("SKIP the busybox half: /bin/busybox is not installed");
        }
    }
}

netns_test! {
    fn aliases_ids_and_the_domain_resolve_and_names_match_without_case() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        serve(&network_a(), br.gateways(), |_| {});
        let server = sa(&br.gw4, 53);
        for name in ["DataBase", "DB", "db.dns.ns", "Database.DNS.ns.", "d0c0ffee1234", "d0c0ffee1234abcd5678"] {
            let m = a_of(&web, server, name, rtype::A);
            assert_eq!(addrs_in(&m), ips(&["198.51.100.2"]), "{name}");
            // The question is echoed as asked, case included.
            assert_eq!(m.questions[0].name.to_string().trim_end_matches('.'), name.trim_end_matches('.'));
        }
        let m = a_of(&web, server, "nobody.dns.ns", rtype::A);
        assert_eq!(m.rcode(), rcode::NXDOMAIN);
        assert!(m.header.aa);
        if busybox_available() {
            let out = nslookup(&web, &["DATABASE.dns.ns", &br.gw4]);
            assert!(out.contains("Address: 198.51.100.2"), "{out}");
        }
    }
}

fn follows_the_records(watch: WatchMode) {
    let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
    let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
    let mut doc = network_a();
    let files = serve(&doc, br.gateways(), |c| c.watch = watch);
    let server = sa(&br.gw4, 53);
    assert_eq!(addrs_in(&a_of(&web, server, "db", rtype::A)), ips(&["198.51.100.2"]));
    // db leaves, cache joins: the next query already sees both changes.
    doc.remove("d0c0ffee1234abcd5678");
    doc.upsert(container("cafe", "cache", &[], &["198.51.100.9"], &[]));
    write_records(&files.records(), &doc).unwrap();
    let m = a_of(&web, server, "db", rtype::A);
    assert_eq!(m.rcode(), rcode::NXDOMAIN, "a removed container must stop resolving ({watch:?})");
    assert_eq!(addrs_in(&a_of(&web, server, "cache", rtype::A)), ips(&["198.51.100.9"]));
    if busybox_available() {
        let out = nslookup(&web, &["db", &br.gw4]);
        assert!(!out.contains("198.51.100.2"), "{out}");
    }
}

netns_test! {
    fn a_removed_container_stops_resolving_and_a_new_one_resolves_without_a_restart_inotify() {
        follows_the_records(WatchMode::Inotify);
    }
}

netns_test! {
    fn a_removed_container_stops_resolving_and_a_new_one_resolves_without_a_restart_stat() {
        follows_the_records(WatchMode::Stat);
    }
}

netns_test! {
    fn names_of_another_network_are_never_answered_and_its_containers_are_refused() {
        let mut a = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let mut b = Bridge::add("br-b", "198.51.100.129/25", "2001:db8:b::1/64");
        let web = a.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let api = b.container("api", "198.51.100.130/25", "2001:db8:b::130/64");
        let mut doc_b = RecordsDoc::new("netb", None);
        doc_b.upsert(container("a9a9", "api", &[], &["198.51.100.130"], &["2001:db8:b::130"]));
        doc_b.upsert(container("c4c4", "cache", &[], &["198.51.100.131"], &[]));
        serve(&network_a(), a.gateways(), |_| {});
        serve(&doc_b, b.gateways(), |_| {});
        // On B, A's names do not exist; on A, B's do not.
        let m = a_of(&api, sa(&b.gw4, 53), "db", rtype::A);
        assert_eq!((m.rcode(), m.answers.len()), (rcode::NXDOMAIN, 0));
        assert_eq!(addrs_in(&a_of(&api, sa(&b.gw4, 53), "cache", rtype::A)), ips(&["198.51.100.131"]));
        let m = a_of(&web, sa(&a.gw4, 53), "cache", rtype::A);
        assert_eq!((m.rcode(), m.answers.len()), (rcode::NXDOMAIN, 0));
        // B's container asking A's resolver directly (the host routes it) is refused outright.
        for name in ["db", "web", "example.org"] {
            let m = a_of(&api, sa(&a.gw4, 53), name, rtype::A);
            assert_eq!((m.rcode(), m.answers.len()), (rcode::REFUSED, 0), "{name}");
        }
        if busybox_available() {
            let out = nslookup(&api, &["db", &b.gw4]);
            assert!(!out.contains("198.51.100.2"), "{out}");
        }
    }
}

netns_test! {
    fn a_container_on_two_networks_resolves_the_names_of_both_and_its_neighbours_only_their_own() {
        let mut a = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let b = Bridge::add("br-b", "198.51.100.129/25", "2001:db8:b::1/64");
        let web = a.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let proxy = a.container("proxy", "198.51.100.4/25", "2001:db8:a::4/64");
        // proxy's second leg, on br-b.
        ip(&["link", "add", "br-bp9", "type", "veth", "peer", "name", "eth1", "netns", "proxy"]);
        ip(&["link", "set", "br-bp9", "master", "br-b", "up"]);
        proxy.ip(&["addr", "add", "198.51.100.132/25", "dev", "eth1"]);
        proxy.ip(&["link", "set", "eth1", "up"]);
        let mut doc_a = network_a();
        doc_a.upsert(container("f0f0", "proxy", &[], &["198.51.100.4"], &[]));
        let mut doc_b = RecordsDoc::new("netb", None);
        doc_b.upsert(container("f0f0", "proxy", &[], &["198.51.100.132"], &[]));
        doc_b.upsert(container("a9a9", "api", &[], &["198.51.100.130"], &[]));
        serve(&doc_b, b.gateways(), |_| {});
        serve(&doc_a, a.gateways(), |_| {});
        let ga = sa(&a.gw4, 53);
        assert_eq!(addrs_in(&a_of(&proxy, ga, "api", rtype::A)), ips(&["198.51.100.130"]));
        assert_eq!(addrs_in(&a_of(&proxy, ga, "db", rtype::A)), ips(&["198.51.100.2"]));
        let ptr = reverse_name("198.51.100.130".parse().unwrap()).to_string();
        assert_eq!(a_of(&proxy, ga, &ptr, rtype::PTR).answers.len(), 1);
        // web is only on A: B's names stay unknown to it, even through A's resolver.
        assert_eq!(a_of(&web, ga, "api", rtype::A).rcode(), rcode::NXDOMAIN);
        assert_eq!(a_of(&web, ga, &ptr, rtype::PTR).answers.len(), 0);
    }
}

netns_test! {
    fn ptr_queries_for_a_containers_addresses_answer_its_name() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        serve(&network_a(), br.gateways(), |_| {});
        for addr in ["198.51.100.2", "2001:db8:a::2"] {
            let name = reverse_name(addr.parse().unwrap()).to_string();
            let m = a_of(&web, sa(&br.gw6, 53), &name, rtype::PTR);
            assert!(m.header.aa);
            assert_eq!(m.answers.len(), 1, "{addr}");
            assert_eq!(m.answers[0].data, RData::Ptr(ns_dns::wire::Name::from_ascii("db.dns.ns").unwrap()));
        }
        if busybox_available() {
            let out = nslookup(&web, &["198.51.100.2", &br.gw4]);
            assert!(out.contains("name = db.dns.ns"), "{out}");
        }
    }
}

netns_test! {
    fn tcp_queries_are_answered_in_order_on_one_connection() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        serve(&network_a(), br.gateways(), |_| {});
        for gw in [br.gw4.clone(), br.gw6.clone()] {
            let server = sa(&gw, 53);
            let packets = vec![query(1, "db", rtype::A, None), query(2, "web", rtype::AAAA, None), query(3, "nobody.dns.ns", rtype::A, None)];
            let answers = web.run(move || ask_tcp(server, &packets));
            assert_eq!(answers.iter().map(|m| m.header.id).collect::<Vec<_>>(), vec![1, 2, 3]);
            assert_eq!(addrs_in(&answers[0]), ips(&["198.51.100.2"]));
            assert_eq!(addrs_in(&answers[1]), ips(&["2001:db8:a::3"]));
            assert_eq!(answers[2].rcode(), rcode::NXDOMAIN);
        }
    }
}

netns_test! {
    fn an_answer_over_the_udp_limit_is_truncated_with_tc_and_whole_over_tcp() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let mut doc = network_a();
        for i in 10..50 {
            doc.upsert(container(&format!("b{i}"), &format!("worker{i}"), &["pool"], &[&format!("198.51.100.{i}")], &[]));
        }
        serve(&doc, br.gateways(), |_| {});
        let server = sa(&br.gw4, 53);
        let plain = query(7, "pool", rtype::A, None);
        let (n, m) = web.run(move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.send_to(&plain, server).unwrap();
            let mut buf = [0u8; 4096];
            let (n, _) = s.recv_from(&mut buf).unwrap();
            (n, Message::parse(&buf[..n]).unwrap())
        });
        assert!(n <= 512, "{n} bytes over UDP without EDNS");
        assert!(m.header.tc, "40 addresses do not fit in 512 bytes: TC");
        assert!(m.answers.len() < 40);
        let m = a_of(&web, server, "pool", rtype::A);
        assert!(!m.header.tc, "with EDNS and 1232 bytes they fit");
        assert_eq!(m.answers.len(), 40);
        let packets = vec![query(8, "pool", rtype::A, None)];
        let answers = web.run(move || ask_tcp(server, &packets));
        assert!(!answers[0].header.tc);
        assert_eq!(answers[0].answers.len(), 40);
    }
}

netns_test! {
    fn malformed_packets_neither_stop_nor_confuse_the_server() {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        serve(&network_a(), br.gateways(), |_| {});
        let server = sa(&br.gw4, 53);
        let results = web.run(move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            let mut bad: Vec<Vec<u8>> = vec![
                vec![],
                vec![0xff],
                vec![0; 11],
                // A header announcing 65535 of everything and nothing after it.
                b"\x12\x34\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
                // A question whose name is a pointer to itself.
                b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01".to_vec(),
                // A response (QR set): never answered.
                b"\x12\x36\x81\x80\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
                vec![0xAB; 1500],
            ];
            let mut seed = 0x9E37_79B9u32;
            for _ in 0..200 {
                let mut p = query(9, "db", rtype::A, Some(1232));
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let at = seed as usize % p.len();
                    p[at] = (seed >> 8) as u8;
                }
                bad.push(p);
            }
            let mut formerr = None;
            let mut buf = [0u8; 4096];
            for p in &bad {
                s.send_to(p, server).unwrap();
            }
            // The self-pointing question must come back as FORMERR with its id.
            let mut answers = 0;
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                answers += 1;
                let m = Message::parse(&buf[..n]).expect("every answer parses");
                assert!(m.header.qr);
                if m.header.id == 0x1235 {
                    formerr = Some(m.rcode());
                }
                assert_ne!(m.header.id, 0x1236, "a response was answered");
            }
            // A TCP client sending garbage and half a frame, then going quiet.
            let mut t = std::net::TcpStream::connect(server).unwrap();
            std::io::Write::write_all(&mut t, b"\x00\x05\xff\xff\xff\xff\xff\x01").unwrap();
            (formerr, answers, t)
        });
        assert_eq!(results.0, Some(rcode::FORMERR));
        assert!(results.1 >= 1);
        // The server still answers, over UDP and TCP.
        assert_eq!(addrs_in(&a_of(&web, server, "db", rtype::A)), ips(&["198.51.100.2"]));
        let packets = vec![query(10, "db", rtype::A, None)];
        let answers = web.run(move || ask_tcp(server, &packets));
        assert_eq!(addrs_in(&answers[0]), ips(&["198.51.100.2"]));
        drop(results.2);
    }
}

netns_test! {
    fn a_query_sent_after_a_change_of_the_records_is_answered_from_it_while_others_keep_the_resolver_busy() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let files = serve(&network_a(), br.gateways(), |_| {});
        let server = sa(&br.gw4, 53);
        // Queries of another socket keep arriving, so the resolver reads several datagrams a
        // wake-up: the checked one is often not the first, and the change came in between.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flood = {
            let stop = stop.clone();
            web.spawn(move || {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                let q = query(7, "web", rtype::A, None);
                let mut buf = [0u8; 512];
                // At most 16 in flight: the resolver's socket never fills (nothing dropped).
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..16 {
                        let _ = s.send_to(&q, server);
                    }
                    for _ in 0..16 {
                        if s.recv_from(&mut buf).is_err() {
                            break;
                        }
                    }
                }
            })
        };
        let mut without_db = network_a();
        assert!(without_db.remove("d0c0ffee1234abcd5678"));
        let stale: Vec<usize> = (0..400)
            .filter(|round| {
                let (doc, want) =
                    if round % 2 == 0 { (&without_db, rcode::NXDOMAIN) } else { (&network_a(), rcode::NOERROR) };
                write_records(&files.records(), doc).unwrap();
                a_of(&web, server, "db", rtype::A).rcode() != want
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        flood.join().unwrap();
        assert!(stale.is_empty(), "answered from the records before the change in rounds {stale:?}");
    }
}

/// The resolver as a process, started and stopped the way the helper will.
mod lifecycle {
    use super::*;
    use ns_dns::launch::{self, Launcher};
    use ns_dns::network::{join, leave, leave_idle, remove_network, Joined, Left, ResolverSpec};
    use ns_dns::pidfile;

    fn spec(listen: Vec<IpAddr>) -> ResolverSpec {
        ResolverSpec {
            config: Config::new("", listen),
            domain: Some("dns.ns".into()),
            launcher: Launcher::new(env!("CARGO_BIN_EXE_ns-dns"), &[]),
        }
    }

    /// Stops the network's resolver whatever happens to the test, so no process outlives it.
    pub struct Cleanup(pub NetworkFiles);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = remove_network(&self.0);
        }
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    netns_test! {
        fn two_containers_joining_at_once_start_one_resolver_and_the_last_to_leave_stops_it() {
            let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
            let files = NetworkFiles::new(records_dir(), "neta").unwrap();
            let _cleanup = Cleanup(files.clone());
            let joins: Vec<_> = [("d0c0", "db", "198.51.100.2"), ("e1e1", "web", "198.51.100.3")]
                .into_iter()
                .map(|(id, name, v4)| {
                    let (files, spec) = (files.clone(), spec(br.gateways()));
                    std::thread::spawn(move || join(&files, container(id, name, &[], &[v4], &[]), &spec).unwrap())
                })
                .collect();
            let mut outcomes: Vec<Joined> = joins.into_iter().map(|j| j.join().unwrap()).collect();
            outcomes.sort_by_key(|j| matches!(j, Joined::Running(_)));
            let (Joined::Started(pid), Joined::Running(same)) = (outcomes[0], outcomes[1]) else {
                panic!("expected one start and one running, got {outcomes:?}");
            };
            assert_eq!(pid, same);
            assert_eq!(pidfile::holder(&files.pid_file()).unwrap(), Some(pid));
            assert!(alive(pid));
            let server = sa(&br.gw4, 53);
            assert_eq!(addrs_in(&a_of(&web, server, "db.dns.ns", rtype::A)), ips(&["198.51.100.2"]));
            // A second resolver for the network is refused, naming the first.
            let e = launch::start(&ns_dns::network::resolver_config(&files, &spec(br.gateways())), &spec(vec![]).launcher, &records_dir().join("second.log")).unwrap_err();
            assert_eq!(e.step, "lock pid file");
            assert!(e.hint.as_deref().unwrap_or("").contains(&format!("pid {pid}")), "{e:?}");
            assert_eq!(leave(&files, "d0c0").unwrap(), Left::Remaining(1));
            assert!(alive(pid));
            assert_eq!(a_of(&web, server, "db", rtype::A).rcode(), rcode::NXDOMAIN);
            assert_eq!(leave(&files, "e1e1").unwrap(), Left::Stopped);
            assert!(!alive(pid), "the resolver outlived its last container");
            assert_eq!(pidfile::holder(&files.pid_file()).unwrap(), None);
            assert!(!files.records().exists());
            let packet = query(1, "db", rtype::A, None);
            assert!(web.run(move || ask_udp(server, &packet)).is_none(), "nothing answers any more");
        }
    }

    netns_test! {
        fn a_resolver_with_an_idle_time_serves_the_next_container_then_exits_and_gives_its_files_back() {
            let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
            let files = NetworkFiles::new(records_dir(), "neta").unwrap();
            let _cleanup = Cleanup(files.clone());
            let mut idle = spec(br.gateways());
            idle.config.idle = Duration::from_secs(2);
            let server = sa(&br.gw4, 53);
            // The querier is the container listed (a resolver answers only the containers on
            // its records).
            let web_at = |id: &str| container(id, "web", &[], &["198.51.100.3"], &[]);
            let Joined::Started(pid) = join(&files, web_at("d0c0"), &idle).unwrap() else { panic!() };
            assert_eq!(addrs_in(&a_of(&web, server, "web.dns.ns", rtype::A)), ips(&["198.51.100.3"]));
            // The last container leaves: the resolver stays, its records list nobody.
            assert_eq!(leave_idle(&files, "d0c0").unwrap(), Left::Remaining(0));
            assert!(alive(pid));
            assert_eq!(pidfile::holder(&files.pid_file()).unwrap(), Some(pid));
            assert_eq!(a_of(&web, server, "web.dns.ns", rtype::A).rcode(), rcode::REFUSED);
            // The next container, a moment later, finds it running and is answered by it.
            std::thread::sleep(Duration::from_millis(1200));
            assert_eq!(join(&files, web_at("e1e1"), &idle).unwrap(), Joined::Running(pid));
            assert_eq!(addrs_in(&a_of(&web, server, "web.dns.ns", rtype::A)), ips(&["198.51.100.3"]));
            assert_eq!(leave_idle(&files, "e1e1").unwrap(), Left::Remaining(0));
            // Then nobody for its idle time: it exits and removes its records and pid file.
            wait_until("the idle resolver exits", || !alive(pid));
            assert!(!files.records().exists());
            assert!(!files.pid_file().exists());
            let log = std::fs::read_to_string(files.log()).unwrap();
            assert!(log.contains("exiting: no container is left on the network"), "{log}");
            // Its addresses are free again: a new container starts a new resolver on them.
            let Joined::Started(next) = join(&files, web_at("f2f2"), &idle).unwrap() else { panic!() };
            assert_ne!(next, pid);
            assert_eq!(addrs_in(&a_of(&web, server, "web.dns.ns", rtype::A)), ips(&["198.51.100.3"]));
            // A resolver gone already leaves nothing for the last container's leave to keep.
            assert_eq!(leave(&files, "f2f2").unwrap(), Left::Stopped);
            assert!(!alive(next));
            assert_eq!(leave_idle(&files, "f2f2").unwrap(), Left::Stopped);
            assert!(!files.records().exists());
        }
    }

    netns_test! {
        fn a_resolver_exits_by_itself_when_its_records_file_is_removed() {
            let br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let files = NetworkFiles::new(records_dir(), "neta").unwrap();
            let _cleanup = Cleanup(files.clone());
            let Joined::Started(pid) = join(&files, container("d0c0", "db", &[], &["198.51.100.2"], &[]), &spec(br.gateways())).unwrap() else { panic!() };
            // The helper died without calling leave; the network is removed under the lock.
            std::fs::remove_file(files.records()).unwrap();
            wait_until("the resolver exits", || !alive(pid));
            assert_eq!(pidfile::holder(&files.pid_file()).unwrap(), None);
            let log = std::fs::read_to_string(files.log()).unwrap();
            assert!(log.contains("exiting: the records file was removed"), "{log}");
        }
    }

    netns_test! {
        fn a_resolver_whose_pid_file_is_taken_over_exits() {
            let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
            let files = NetworkFiles::new(records_dir(), "neta").unwrap();
            let _cleanup = Cleanup(files.clone());
            let Joined::Started(first) = join(&files, container("d0c0", "db", &[], &["198.51.100.2"], &[]), &spec(vec![br.gw4.parse().unwrap()])).unwrap() else { panic!() };
            std::fs::remove_file(files.pid_file()).unwrap();
            // A new resolver on the other address takes a new pid file; the first one leaves.
            let Joined::Started(second) = join(&files, container("e1e1", "web", &[], &["198.51.100.3"], &["2001:db8:a::3"]), &spec(vec![br.gw6.parse().unwrap()])).unwrap() else { panic!() };
            assert_ne!(first, second);
            wait_until("the first resolver exits", || !alive(first));
            assert_eq!(pidfile::holder(&files.pid_file()).unwrap(), Some(second));
            assert_eq!(addrs_in(&a_of(&web, sa(&br.gw6, 53), "db", rtype::A)), ips(&["198.51.100.2"]));
        }
    }

    netns_test! {
        fn a_resolver_that_cannot_start_says_why_and_its_container_is_taken_back_out() {
            let _br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let files = NetworkFiles::new(records_dir(), "neta").unwrap();
            let _cleanup = Cleanup(files.clone());
            // Something else holds UDP port 53 of the gateway.
            let _squatter = std::net::UdpSocket::bind("198.51.100.1:53").unwrap();
            let e = join(&files, container("d0c0", "db", &[], &["198.51.100.2"], &[]), &spec(vec!["198.51.100.1".parse().unwrap()])).unwrap_err();
            assert_eq!(e.step, "bind udp socket");
            assert_eq!(e.errno, Some(libc::EADDRINUSE));
            assert!(e.message.contains("198.51.100.1:53"), "{}", e.message);
            assert!(!files.records().exists(), "the records must not list a container nobody answers for");
            // A program that cannot run at all: the error says the resolver never got ready.
            let mut bad = spec(vec!["198.51.100.1".parse().unwrap()]);
            bad.launcher = Launcher::new("/nonexistent/ns-oci", &["dns"]);
            drop(_squatter);
            let e = join(&files, container("d0c0", "db", &[], &["198.51.100.2"], &[]), &bad).unwrap_err();
            assert_eq!(e.step, "start resolver");
            assert!(e.message.contains("exited before it was ready"), "{}", e.message);
            assert!(!files.records().exists());
        }
    }
}

/// Questions for other names, passed on to the upstream servers (a fake one of the test's, in
/// the "upstream" namespace behind a veth).
mod forwarding {
    use super::*;
    use std::path::PathBuf;

    /// The resolver's resolv.conf (not the host's).
    fn resolv_conf(lines: &str) -> PathBuf {
        let p = records_dir().join("resolv.conf");
        std::fs::write(&p, lines).unwrap();
        p
    }

    struct Setup {
        br: Bridge,
        web: Netns,
        up: Netns,
    }

    fn setup() -> Setup {
        let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
        let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
        let up = upstream_namespace();
        Setup { br, web, up }
    }

    netns_test! {
        fn unknown_names_are_forwarded_and_the_upstreams_answer_is_relayed_with_the_clients_id() {
            let s = setup();
            let fake = FakeUpstream::start(&s.up, &["192.0.2.53", "2001:db8:53::53"], 7);
            let rc = resolv_conf("nameserver 192.0.2.53\n");
            serve(&network_a(), s.br.gateways(), |c| c.resolv_conf = rc);
            let server = sa(&s.br.gw4, 53);
            let mut ids = Vec::new();
            for id in [0x1111u16, 0x2222, 0x3333] {
                let packet = query(id, "Host.Example.Test", rtype::A, Some(1232));
                let m = s.web.run(move || ask_udp(server, &packet)).expect("an answer");
                assert_eq!(m.header.id, id, "the client's id comes back");
                assert!(!m.header.aa, "a relayed answer is not ours");
                assert_eq!(addrs_in(&m), ips(&["203.0.113.7"]));
                assert_eq!(m.questions[0].name.to_string(), "Host.Example.Test.");
                ids.push(id);
            }
            let seen = fake.seen();
            assert_eq!(seen.len(), 3, "{seen:?}");
            assert!(seen.iter().all(|q| q.name == "Host.Example.Test." && !q.tcp && q.at == sa("192.0.2.53", 53)));
            assert!(seen.iter().any(|q| !ids.contains(&q.id)), "ids sent upstream are the resolver's own");
            // The container's names never go upstream.
            a_of(&s.web, server, "db", rtype::A);
            a_of(&s.web, server, "nobody.dns.ns", rtype::A);
            a_of(&s.web, server, "nobody", rtype::A);
            assert_eq!(fake.seen().len(), 3);
            if busybox_available() {
                let out = nslookup(&s.web, &["host.example.test", &s.br.gw4]);
                assert!(out.contains("Address: 203.0.113.7"), "{out}");
                assert!(out.contains("Address: 2001:db8:ffff::7"), "{out}");
                let out = nslookup(&s.web, &["nothing.example.invalid", &s.br.gw4]);
                assert!(out.contains("NXDOMAIN"), "{out}");
            }
        }
    }

    netns_test! {
        fn a_dead_first_upstream_and_a_refusing_one_fall_over_to_the_next() {
            let s = setup();
            // 192.0.2.99: nobody there (no ARP answer: a timeout); 192.0.2.53: the address
            // exists but nothing listens (ICMP port unreachable); 192.0.2.54 answers.
            let fake = FakeUpstream::start(&s.up, &["192.0.2.54"], 8);
            let rc = resolv_conf("nameserver 192.0.2.99\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n");
            serve(&network_a(), s.br.gateways(), |c| {
                c.resolv_conf = rc;
                c.timeout = Duration::from_millis(300);
            });
            let server = sa(&s.br.gw4, 53);
            let m = a_of(&s.web, server, "www.example.test", rtype::A);
            assert_eq!(addrs_in(&m), ips(&["203.0.113.8"]));
            // The one that answered is asked first from now on.
            let m = a_of(&s.web, server, "www2.example.test", rtype::A);
            assert_eq!(addrs_in(&m), ips(&["203.0.113.8"]));
            assert_eq!(fake.seen().len(), 2);
            // Upstream trouble for one name is SERVFAIL, relayed once every server was tried.
            let m = a_of(&s.web, server, "silent.example.test", rtype::A);
            assert_eq!(m.rcode(), rcode::SERVFAIL);
        }
    }

    netns_test! {
        fn a_truncated_upstream_answer_is_fetched_again_over_tcp_for_a_tcp_client_and_relayed_with_tc_over_udp() {
            let s = setup();
            let fake = FakeUpstream::start(&s.up, &["192.0.2.53"], 7);
            serve(&network_a(), s.br.gateways(), |c| c.upstreams = vec![sa("192.0.2.53", 53)]);
            let server = sa(&s.br.gw4, 53);
            let packets = vec![query(0x7777, "big.example.test", rtype::A, None)];
            let answers = s.web.run(move || ask_tcp(server, &packets));
            assert_eq!(answers[0].header.id, 0x7777);
            assert!(!answers[0].header.tc);
            assert_eq!(answers[0].answers.len(), 60);
            let how: Vec<bool> = fake.seen().iter().map(|q| q.tcp).collect();
            assert_eq!(how, vec![false, true], "UDP first, then TCP on truncation");
            fake.clear();
            let packet = query(0x8888, "big.example.test", rtype::A, None);
            let m = s.web.run(move || ask_udp(server, &packet)).unwrap();
            assert!(m.header.tc, "a UDP client gets TC and asks again over TCP itself");
            assert_eq!(m.header.id, 0x8888);
            assert_eq!(fake.seen().len(), 1);
        }
    }

    netns_test! {
        fn a_container_given_the_generated_resolv_conf_finds_its_neighbours_and_the_outside_by_name() {
            use ns_dns::{container_resolv_conf, DnsMode, DnsOverrides, ResolvConf};
            if !busybox_available() {
                println!("SKIP: /bin/busybox is not installed");
                return;
            }
            let s = setup();
            FakeUpstream::start(&s.up, &["192.0.2.53"], 7);
            let host = ResolvConf::parse("nameserver 127.0.0.53\nsearch corp.example\n");
            let gws = s.br.gateways();
            let made = container_resolv_conf(&host, &DnsOverrides::default(), &DnsMode::Resolver { nameservers: &gws[..1], domain: Some("dns.ns") }).unwrap();
            assert_eq!(made.content, "nameserver 198.51.100.1\nsearch dns.ns corp.example\noptions ndots:0\n");
            let file = records_dir().join("web.resolv.conf");
            std::fs::write(&file, &made.content).unwrap();
            serve(&network_a(), s.br.gateways(), |c| c.upstreams = vec![sa("192.0.2.53", 53)]);
            let out = nslookup_with(&s.web, &file, &["db"]);
            assert!(out.contains("Address: 198.51.100.2"), "{out}");
            let out = nslookup_with(&s.web, &file, &["host.example.test"]);
            assert!(out.contains("Address: 203.0.113.7"), "{out}");
        }
    }

    netns_test! {
        fn an_internal_network_answers_its_names_but_forwards_nothing() {
            let s = setup();
            let fake = FakeUpstream::start(&s.up, &["192.0.2.53"], 7);
            serve(&network_a(), s.br.gateways(), |c| {
                c.internal = true;
                c.upstreams = vec![sa("192.0.2.53", 53)];
            });
            let server = sa(&s.br.gw4, 53);
            let m = a_of(&s.web, server, "host.example.test", rtype::A);
            assert_eq!((m.rcode(), m.answers.len()), (rcode::NXDOMAIN, 0));
            assert!(!m.header.ra, "no recursion on an internal network");
            let packets = vec![query(1, "host.example.test", rtype::AAAA, None)];
            let answers = s.web.run(move || ask_tcp(server, &packets));
            assert_eq!(answers[0].rcode(), rcode::NXDOMAIN);
            assert_eq!(addrs_in(&a_of(&s.web, server, "db", rtype::A)), ips(&["198.51.100.2"]));
            std::thread::sleep(Duration::from_millis(100));
            assert!(fake.seen().is_empty(), "{:?}", fake.seen());
        }
    }

    netns_test! {
        fn a_containers_own_dns_servers_are_asked_for_it_and_only_for_it() {
            let mut s = setup();
            let other = s.br.container("other", "198.51.100.5/25", "2001:db8:a::5/64");
            let seven = FakeUpstream::start(&s.up, &["192.0.2.53"], 7);
            let eight = FakeUpstream::start(&s.up, &["192.0.2.54"], 8);
            let mut doc = network_a();
            let mut rec = container("0f0f", "other", &[], &["198.51.100.5"], &[]);
            rec.dns = vec!["192.0.2.54".parse().unwrap()];
            doc.upsert(rec);
            serve(&doc, s.br.gateways(), |c| c.upstreams = vec![sa("192.0.2.53", 53)]);
            let server = sa(&s.br.gw4, 53);
            assert_eq!(addrs_in(&a_of(&other, server, "x.example.test", rtype::A)), ips(&["203.0.113.8"]));
            assert_eq!(addrs_in(&a_of(&s.web, server, "x.example.test", rtype::A)), ips(&["203.0.113.7"]));
            assert_eq!((seven.seen().len(), eight.seen().len()), (1, 1));
        }
    }

    netns_test! {
        fn the_hosts_loopback_resolver_is_used_from_the_hosts_namespace_and_left_out_when_unreachable() {
            let s = setup();
            // systemd-resolved's stub address, in the "host" namespace, as on a real host.
            ip(&["addr", "add", "127.0.0.53/8", "dev", "lo"]);
            let host = Netns::current();
            let stub = FakeUpstream::start(&host, &["127.0.0.53"], 53);
            let fake = FakeUpstream::start(&s.up, &["192.0.2.54"], 8);
            let rc = resolv_conf("nameserver 127.0.0.53\nnameserver 192.0.2.54\n");
            let rc2 = rc.clone();
            serve(&network_a(), vec![s.br.gw4.parse().unwrap()], move |c| c.resolv_conf = rc);
            assert_eq!(addrs_in(&a_of(&s.web, sa(&s.br.gw4, 53), "x.example.test", rtype::A)), ips(&["203.0.113.53"]));
            // Network B's resolver runs as if in a namespace of its own: 127.0.0.53 is left out.
            let mut b = Bridge::add("br-b", "198.51.100.129/25", "2001:db8:b::1/64");
            let api = b.container("api", "198.51.100.130/25", "2001:db8:b::130/64");
            let mut doc_b = RecordsDoc::new("netb", None);
            doc_b.upsert(container("a9a9", "api", &[], &["198.51.100.130"], &[]));
            serve(&doc_b, vec![b.gw4.parse().unwrap()], move |c| {
                c.resolv_conf = rc2;
                c.host_loopback = false;
            });
            assert_eq!(addrs_in(&a_of(&api, sa(&b.gw4, 53), "y.example.test", rtype::A)), ips(&["203.0.113.8"]));
            assert_eq!((stub.seen().len(), fake.seen().len()), (1, 1));
        }
    }
}

/// The resolver run on a thread, to watch how it ends and what it costs while waiting.
mod in_process {
    use super::*;
    use ns_dns::server::{Exit, ExitReason};
    use std::sync::mpsc;

    fn start(
        dir: &str,
        doc: &RecordsDoc,
        tweak: impl FnOnce(&mut Config),
    ) -> (NetworkFiles, mpsc::Receiver<ns_dns::error::Result<Exit>>, i32) {
        std::fs::create_dir_all(dir).unwrap();
        let files = NetworkFiles::new(dir, &doc.network).unwrap();
        write_records(&files.records(), doc).unwrap();
        let mut config = Config::new(files.records(), vec!["198.51.100.1".parse().unwrap()]);
        tweak(&mut config);
        let server = Server::bind(&config).unwrap();
        let (tx, rx) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: plain syscall.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = tx.send(server.run());
        });
        (files, rx, tid_rx.recv().unwrap())
    }

    fn ended(rx: &mpsc::Receiver<ns_dns::error::Result<Exit>>) -> ExitReason {
        rx.recv_timeout(Duration::from_secs(5)).expect("the resolver did not stop").unwrap().reason
    }

    netns_test! {
        fn the_resolver_ends_when_its_last_container_is_gone_or_its_directory_removed() {
            let _br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let (files, rx, _) = start("/run/ns/one", &network_a(), |_| {});
            write_records(&files.records(), &RecordsDoc::new("neta", None)).unwrap();
            assert_eq!(ended(&rx), ExitReason::NoContainers);
            let (_, rx, _) = start("/run/ns/two", &network_a(), |_| {});
            std::fs::remove_dir_all("/run/ns/two").unwrap();
            assert_eq!(ended(&rx), ExitReason::RecordsRemoved);
        }
    }

    netns_test! {
        fn a_resolver_given_an_idle_time_outlives_its_last_container_by_it_and_no_more() {
            let _br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let (files, rx, _) =
                start("/run/ns/idle", &network_a(), |c| c.idle = Duration::from_secs(2));
            let emptied = std::time::Instant::now();
            write_records(&files.records(), &RecordsDoc::new("neta", None)).unwrap();
            // Still there a second later (a container starting now would find it running)...
            assert!(rx.recv_timeout(Duration::from_millis(1200)).is_err(), "it lingers");
            // ...and a container back resets the idle time.
            write_records(&files.records(), &network_a()).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            write_records(&files.records(), &RecordsDoc::new("neta", None)).unwrap();
            assert!(rx.recv_timeout(Duration::from_millis(1200)).is_err(), "idle time reset");
            assert_eq!(ended(&rx), ExitReason::NoContainers);
            assert!(emptied.elapsed() >= Duration::from_secs(4), "{:?}", emptied.elapsed());
            assert!(!files.records().exists(), "its empty records are given back");
        }
    }

    fn cpu_ms(tid: i32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        // utime and stime (fields 14 and 15 of the line, 12 and 13 after the name).
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: plain syscall.
        ticks * 1000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64
    }

    netns_test! {
        fn a_tcp_client_gone_while_its_question_is_upstream_does_not_keep_the_resolver_busy() {
            let mut br = Bridge::add("br-a", "198.51.100.1/25", "2001:db8:a::1/64");
            let web = br.container("web", "198.51.100.3/25", "2001:db8:a::3/64");
            let up = upstream_namespace();
            FakeUpstream::start(&up, &["192.0.2.53"], 7);
            let (_files, _rx, tid) = start("/run/ns/three", &network_a(), |c| {
                c.upstreams = vec![sa("192.0.2.53", 53)];
                c.timeout = Duration::from_secs(5);
            });
            let server = sa("198.51.100.1", 53);
            // Ask for a name the upstream never answers, say nothing more will come (FIN: the
            // resolver reads the end), then reset the connection (SO_LINGER 0): its side sees
            // HUP and an error — both directions gone — while the question is still upstream.
            web.run(move || {
                use std::os::fd::AsRawFd;
                let mut t = std::net::TcpStream::connect(server).unwrap();
                std::io::Write::write_all(&mut t, &ns_dns::wire::frame(&query(1, "silent.example.test", rtype::A, None))).unwrap();
                t.shutdown(std::net::Shutdown::Write).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: setsockopt with a linger struct that lives across the call.
                let r = unsafe {
                    libc::setsockopt(t.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&linger as *const libc::linger).cast(), std::mem::size_of::<libc::linger>() as libc::socklen_t)
                };
                assert_eq!(r, 0);
            });
            std::thread::sleep(Duration::from_millis(100));
            let before = cpu_ms(tid);
            std::thread::sleep(Duration::from_millis(700));
            let spent = cpu_ms(tid) - before;
            assert!(spent < 200, "the resolver spent {spent} ms of CPU in 700 ms while only waiting");
            // And it still answers.
            assert_eq!(addrs_in(&a_of(&web, server, "db", rtype::A)), ips(&["198.51.100.2"]));
        }
    }
}
