//! The bridge driver against the real kernel, with real packets, inside a sandbox host: an
//! upstream namespace stands for the outside world, each container is a namespace of its own.

mod common;

use std::collections::HashSet;
use std::os::fd::AsFd;

use common::*;
use ns_net::netlink::Netlink;

fn nft_tables() -> String {
    sh("nft list tables")
}

#[test]
fn bridge_containers_on_one_network_reach_each_other_and_the_outside_only_through_nat() {
    sandbox(
        "bridge_containers_on_one_network_reach_each_other_and_the_outside_only_through_nat",
        || {
            let up = upstream();
            let d = driver();
            let web = network("web", &["10.89.0.0/24", "2001:db8:89::/64"], false);
            let st = d.ensure_network(&web).unwrap();
            assert!(st.created);
            let keys: Vec<&str> = st.sysctls.iter().map(|s| s.key.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "net.ipv4.ip_forward",
                    "net.ipv6.conf.all.forwarding",
                    "net.ipv6.conf.ns-web.accept_dad",
                    "net.ipv4.conf.ns-web.route_localnet"
                ]
            );
            assert_eq!(ns_net::sysctl::get(&["net", "ipv4", "ip_forward"]).as_deref(), Some("1"));
            assert!(!d.ensure_network(&web).unwrap().created, "idempotent");

            let (c1, a1, _l1) = attach(&d, &web, "c1", &[]);
            let (c2, a2, _l2) = attach(&d, &web, "c2", &[]);
            assert_eq!(addr_of(&a1, false), "10.89.0.2");
            assert_eq!(addr_of(&a2, false), "10.89.0.3");
            // The container finds eth0 configured: address, up, default route via the gateway.
            let inside = sh_in(c1.as_fd(), "ip -o addr show dev eth0; ip route; ip -6 route");
            assert!(inside.contains("inet 10.89.0.2/24"), "{inside}");
            assert!(inside.contains("inet6 2001:db8:89::2/64"), "{inside}");
            assert!(inside.contains("default via 10.89.0.1 dev eth0"), "{inside}");
            assert!(inside.contains("default via 2001:db8:89::1 dev eth0"), "{inside}");
            assert!(!host_links().contains(&"eth0".to_string()), "the peer was never on the host");

            // Container to container: direct, each sees the other's own address.
            let e = tcp_echo(c2.as_fd(), "[::]:7000");
            assert_eq!(
                tcp_probe(c1.as_fd(), sa("10.89.0.3", e.port)).as_deref(),
                Ok("::ffff:10.89.0.2")
            );
            assert_eq!(
                tcp_probe(c1.as_fd(), sa("2001:db8:89::3", e.port)).as_deref(),
                Ok("2001:db8:89::2")
            );
            // Outbound: the upstream sees the host's address, never the container's.
            let out = tcp_echo(up.ns.as_fd(), "[::]:7001");
            assert_eq!(
                tcp_probe(c1.as_fd(), sa(UPSTREAM4, out.port)).as_deref(),
                Ok(&*format!("::ffff:{HOST_UP4}"))
            );
            assert_eq!(tcp_probe(c1.as_fd(), sa(UPSTREAM6, out.port)).as_deref(), Ok(HOST_UP6));
            let u = udp_echo(up.ns.as_fd(), "0.0.0.0:7002");
            assert_eq!(udp_probe(c2.as_fd(), sa(UPSTREAM4, u.port)).as_deref(), Ok(HOST_UP4));
            // The outside cannot reach a container's address directly (nothing is published).
            sh_in(up.ns.as_fd(), &format!("ip route add 10.89.0.0/24 via {HOST_UP4}"));
            assert!(
                tcp_probe(up.ns.as_fd(), sa("10.89.0.3", e.port)).is_err(),
                "unsolicited inbound is dropped"
            );

            // An attachment without published ports runs no nft at all: with an nft that does
            // not exist, it still works; one with a port says what is missing.
            let no_nft = ns_net::BridgeDriver {
                nft: ns_net::firewall::Nft { binary: "/nonexistent/nft".into() },
                ..driver()
            };
            let (_c3, a3, _l3) = attach(&no_nft, &web, "c3", &[]);
            no_nft.teardown(&web, &a3).unwrap();
            let c4 = new_netns();
            let req = ns_net::AttachRequest {
                container_id: "c4",
                netns: c4.as_fd(),
                interface: "eth0",
                ips: vec![],
                ports: vec!["8080:80".parse().unwrap()],
                mac: None,
                default_route: true,
            };
            let e = no_nft.setup(&web, &req).unwrap_err();
            assert_eq!(e.code, "ENOENT", "{e:?}");
            assert!(e.hint.as_deref().unwrap_or("").starts_with("is nftables installed?"), "{e:?}");
            assert!(
                Netlink::open_in(c4.as_fd()).unwrap().link("eth0").unwrap().is_none(),
                "undone"
            );
            // No element anywhere.
            let t = d.nft.list().unwrap().unwrap();
            assert!(ns_net::firewall::published(&t).is_empty());
            assert_eq!(nft_tables().trim(), "table inet ns", "ns's table and no other");

            d.teardown(&web, &a1).unwrap();
            d.teardown(&web, &a2).unwrap();
            assert!(!host_links().contains(&a1.host_veth));
            assert!(Netlink::open_in(c1.as_fd()).unwrap().link("eth0").unwrap().is_none());
            d.remove_network(&web).unwrap();
            assert_eq!(nft_tables().trim(), "", "no table, no rule left");
            let mut left = host_links();
            left.sort();
            assert_eq!(left, ["lo", "up0"]);
            assert!(!std::path::Path::new("/run/ns-net/web").exists());
        },
    );
}

/// The first container of a new bridge sends at once: its first SYN is not lost to a bridge
/// port that does not forward yet, nor its replies to a bridge that has no carrier yet (the
/// kernel acts on a new carrier asynchronously; setup waits for it). Without that wait, about
/// one new bridge in seven lost the first SYN here and the 700 ms connect timed out.
#[test]
fn bridge_first_container_on_a_new_bridge_reaches_the_outside_with_its_first_packet() {
    sandbox(
        "bridge_first_container_on_a_new_bridge_reaches_the_outside_with_its_first_packet",
        || {
            let up = upstream();
            let d = driver();
            let out = tcp_echo(up.ns.as_fd(), "[::]:7001");
            let mut failed = Vec::new();
            for i in 0..30 {
                let n = network(&format!("n{i}"), &[&format!("10.89.{}.0/24", 100 + i)], false);
                d.ensure_network(&n).unwrap();
                let (c, att, lease) = attach(&d, &n, &format!("c{i}"), &[]);
                if let Err(e) = tcp_probe(c.as_fd(), sa(UPSTREAM4, out.port)) {
                    failed.push(format!("{}: {e}", n.name));
                }
                d.teardown(&n, &att).unwrap();
                drop(lease);
                d.remove_network(&n).unwrap();
            }
            assert!(failed.is_empty(), "first connects lost: {failed:?}");
        },
    );
}

#[test]
fn bridge_two_networks_cannot_reach_each_other_but_both_reach_the_outside() {
    sandbox("bridge_two_networks_cannot_reach_each_other_but_both_reach_the_outside", || {
        let up = upstream();
        let d = driver();
        let a = network("a", &["10.89.1.0/24", "2001:db8:891::/64"], false);
        let b = network("b", &["10.89.2.0/24", "2001:db8:892::/64"], false);
        d.ensure_network(&a).unwrap();
        d.ensure_network(&b).unwrap();
        let (ca, aa, _la) = attach(&d, &a, "ca", &[]);
        let (cb, ab, _lb) = attach(&d, &b, "cb", &[]);
        let ea = tcp_echo(ca.as_fd(), "[::]:7000");
        let eb = tcp_echo(cb.as_fd(), "[::]:7000");
        let out = tcp_echo(up.ns.as_fd(), "[::]:7001");
        let r = tcp_probe(ca.as_fd(), sa(UPSTREAM4, out.port));
        assert!(r.is_ok(), "a reaches the outside: {r:?}");
        let r = tcp_probe(cb.as_fd(), sa(UPSTREAM4, out.port));
        assert!(r.is_ok(), "b reaches the outside: {r:?}");
        assert!(
            tcp_probe(ca.as_fd(), sa(&addr_of(&ab, false), eb.port)).is_err(),
            "a cannot reach b"
        );
        assert!(
            tcp_probe(cb.as_fd(), sa(&addr_of(&aa, false), ea.port)).is_err(),
            "b cannot reach a"
        );
        assert!(tcp_probe(ca.as_fd(), sa(&addr_of(&ab, true), eb.port)).is_err(), "nor over IPv6");
        // The host itself reaches both (it routes to its own bridges).
        let host = ns_net::netns::current().unwrap();
        assert!(tcp_probe(host.as_fd(), sa(&addr_of(&aa, false), ea.port)).is_ok());
        d.teardown(&a, &aa).unwrap();
        d.teardown(&b, &ab).unwrap();
        d.remove_network(&a).unwrap();
        assert!(nft_tables().contains("table inet ns"), "b still needs the table");
        d.remove_network(&b).unwrap();
        assert_eq!(nft_tables().trim(), "");
    });
}

#[test]
fn bridge_internal_network_has_no_way_out_but_its_containers_reach_each_other() {
    sandbox("bridge_internal_network_has_no_way_out_but_its_containers_reach_each_other", || {
        let up = upstream();
        let d = driver();
        let n = network("sealed", &["10.89.3.0/24", "2001:db8:893::/64"], true);
        let st = d.ensure_network(&n).unwrap();
        assert!(
            st.sysctls
                .iter()
                .all(|s| !s.key.ends_with("forwarding") && s.key != "net.ipv4.ip_forward"),
            "{:?}",
            st.sysctls
        );
        let (c1, a1, _l1) = attach(&d, &n, "i1", &[]);
        let (c2, a2, _l2) = attach(&d, &n, "i2", &[]);
        // Forwarding on anyway (as another network would set it): still no way out.
        ns_net::sysctl::set(&["net", "ipv4", "ip_forward"], "1").unwrap();
        ns_net::sysctl::set(&["net", "ipv6", "conf", "all", "forwarding"], "1").unwrap();
        let e2 = tcp_echo(c2.as_fd(), "[::]:7000");
        let r = tcp_probe(c1.as_fd(), sa(&addr_of(&a2, false), e2.port));
        assert!(r.is_ok(), "i1 reaches i2: {r:?}");
        let out = tcp_echo(up.ns.as_fd(), "[::]:7001");
        assert!(tcp_probe(c1.as_fd(), sa(UPSTREAM4, out.port)).is_err(), "no outbound over IPv4");
        assert!(tcp_probe(c1.as_fd(), sa(UPSTREAM6, out.port)).is_err(), "no outbound over IPv6");
        let req = ns_net::AttachRequest {
            container_id: "i3",
            netns: c1.as_fd(),
            interface: "eth1",
            ips: vec![],
            ports: vec!["8080:80".parse().unwrap()],
            mac: None,
            default_route: true,
        };
        let e = d.setup(&n, &req).unwrap_err();
        assert_eq!(e.message, "ports: network sealed is internal: it has no published ports");
        d.teardown(&n, &a1).unwrap();
        d.teardown(&n, &a2).unwrap();
        d.remove_network(&n).unwrap();
    });
}

#[test]
fn bridge_published_ports_reach_the_container_from_outside_the_host_loopback_and_hairpin() {
    published_ports(
        "bridge_published_ports_reach_the_container_from_outside_the_host_loopback_and_hairpin",
        true,
    );
}

#[test]
fn bridge_published_ports_work_the_same_when_bridged_traffic_skips_the_ip_hooks() {
    published_ports(
        "bridge_published_ports_work_the_same_when_bridged_traffic_skips_the_ip_hooks",
        false,
    );
}

/// Both ways a host may treat bridged traffic (`net.bridge.bridge-nf-call-iptables`, 1 by
/// default where br_netfilter is loaded): the rules must hold either way.
fn published_ports(name: &str, br_nf: bool) {
    sandbox(name, || {
        let v = if br_nf { "1" } else { "0" };
        ns_net::sysctl::set(&["net", "bridge", "bridge-nf-call-iptables"], v).unwrap();
        ns_net::sysctl::set(&["net", "bridge", "bridge-nf-call-ip6tables"], v).unwrap();
        let up = upstream();
        let d = driver();
        let web = network("web", &["10.89.0.0/24", "2001:db8:89::/64"], false);
        d.ensure_network(&web).unwrap();
        let (c1, a1, _l1) = attach(
            &d,
            &web,
            "pub1",
            &["8080:80", "127.0.0.1:8053:53/udp", "9000-9001:7000-7001", "5353:5353/udp"],
        );
        let (c2, _a2, _l2) = attach(&d, &web, "peer", &[]);
        tcp_echo(c1.as_fd(), "[::]:80");
        udp_echo(c1.as_fd(), "0.0.0.0:53");
        udp_echo(c1.as_fd(), "[::]:5353");
        tcp_echo(c1.as_fd(), "[::]:7000");
        tcp_echo(c1.as_fd(), "[::]:7001");
        let host = ns_net::netns::current().unwrap();
        let h = host.as_fd();
        // From the outside, TCP over both families: the container sees the real client.
        assert_eq!(
            tcp_probe(up.ns.as_fd(), sa(HOST_UP4, 8080)).as_deref(),
            Ok(&*format!("::ffff:{UPSTREAM4}"))
        );
        assert_eq!(tcp_probe(up.ns.as_fd(), sa(HOST_UP6, 8080)).as_deref(), Ok(UPSTREAM6));
        assert_eq!(
            udp_probe(up.ns.as_fd(), sa(HOST_UP4, 5353)).as_deref(),
            Ok(&*format!("::ffff:{UPSTREAM4}"))
        );
        // A range, port by port.
        assert!(tcp_probe(up.ns.as_fd(), sa(HOST_UP4, 9001)).is_ok());
        assert!(tcp_probe(up.ns.as_fd(), sa(HOST_UP4, 9000)).is_ok());
        // From the host: its own address, and 127.0.0.1 (masqueraded to the gateway).
        assert!(tcp_probe(h, sa(HOST_UP4, 8080)).is_ok());
        assert_eq!(tcp_probe(h, sa("127.0.0.1", 8080)).as_deref(), Ok("::ffff:10.89.0.1"));
        assert_eq!(udp_probe(h, sa("127.0.0.1", 8053)).as_deref(), Ok("10.89.0.1"));
        // A port published on 127.0.0.1 only is not on the host's other addresses.
        assert!(udp_probe(up.ns.as_fd(), sa(HOST_UP4, 8053)).is_err());
        assert!(udp_probe(h, sa(HOST_UP4, 8053)).is_err());
        // Hairpin: the container through its own published port, and its neighbour too.
        assert!(tcp_probe(c1.as_fd(), sa(HOST_UP4, 8080)).is_ok(), "hairpin to itself");
        assert!(tcp_probe(c1.as_fd(), sa("10.89.0.1", 8080)).is_ok(), "hairpin by the gateway");
        assert!(
            tcp_probe(c2.as_fd(), sa(HOST_UP4, 8080)).is_ok(),
            "a neighbour by the host's address"
        );
        assert!(tcp_probe(c2.as_fd(), sa(HOST_UP6, 8080)).is_ok(), "a neighbour over IPv6");
        // The table holds the elements, each owned by its container.
        let listed = d.nft.list_text().unwrap();
        assert!(
            listed.contains("127.0.0.1 . udp . 8053 comment \"ns:pub1\" : 10.89.0.2 . 53"),
            "{listed}"
        );
        assert!(listed.contains("tcp . 9001 comment \"ns:pub1\" : 10.89.0.2 . 7001"), "{listed}");
        // A second container cannot take a published port; the error names the holder.
        let ns3 = new_netns();
        let req = ns_net::AttachRequest {
            container_id: "late",
            netns: ns3.as_fd(),
            interface: "eth0",
            ips: vec![],
            ports: vec!["8080:80".parse().unwrap()],
            mac: None,
            default_route: true,
        };
        let e = d.setup(&web, &req).unwrap_err();
        assert!(
            e.message.starts_with("failed to publish port 0.0.0.0:8080/tcp of container late"),
            "{e:?}"
        );
        assert_eq!(e.hint.as_deref(), Some("container pub1 publishes it already"));
        assert!(
            Netlink::open_in(ns3.as_fd()).unwrap().link("eth0").unwrap().is_none(),
            "its veth was undone"
        );
        assert_eq!(d.ipam(&web).holders().unwrap().len(), 2, "its allocation was undone");
        d.teardown(&web, &a1).unwrap();
        let t = d.nft.list().unwrap().unwrap();
        assert!(ns_net::firewall::published(&t).is_empty(), "teardown removed every element");
        assert!(tcp_probe(up.ns.as_fd(), sa(HOST_UP4, 8080)).is_err());
    });
}

#[test]
fn bridge_loopback_published_port_is_not_reachable_from_upstream_even_sent_to_127_0_0_1() {
    sandbox(
        "bridge_loopback_published_port_is_not_reachable_from_upstream_even_sent_to_127_0_0_1",
        || {
            let up = upstream();
            let d = driver();
            let web = network("web", &["10.89.0.0/24"], false);
            d.ensure_network(&web).unwrap();
            let (c1, _a1, _l1) = attach(&d, &web, "lo1", &["127.0.0.1:8053:53/udp"]);
            let (_, received) = udp_echo_counted(c1.as_fd(), "0.0.0.0:53");
            // The upstream crafts what moby#45610 describes: packets for 127.0.0.1 sent to this host
            // (a route for 127.0.0.1 via the host, ahead of its own local table).
            sh_in(
                up.ns.as_fd(),
                &format!(
                    "sysctl -qw net.ipv4.conf.eth0.route_localnet=1; \
                 ip route add 127.0.0.1/32 via {HOST_UP4} dev eth0 table 100; \
                 ip rule add pref 10 to 127.0.0.1 lookup 100; \
                 ip rule add pref 20 lookup local; ip rule del pref 0"
                ),
            );
            // Control: without ns's guard the probe does reach the container (so it proves
            // something when it fails below).
            sh("nft flush chain inet ns raw-pre");
            let _ = udp_probe(up.ns.as_fd(), sa("127.0.0.1", 8053));
            assert!(
                received.load(std::sync::atomic::Ordering::SeqCst) > 0,
                "the spoofed packets reach the container without the guard"
            );
            // The guard back (ensure_network rebuilds the base chains): nothing arrives.
            d.ensure_network(&web).unwrap();
            received.store(0, std::sync::atomic::Ordering::SeqCst);
            assert!(udp_probe(up.ns.as_fd(), sa("127.0.0.1", 8053)).is_err());
            assert_eq!(
                received.load(std::sync::atomic::Ordering::SeqCst),
                0,
                "not one packet reached the container"
            );
            // The host itself still reaches it on 127.0.0.1.
            let host = ns_net::netns::current().unwrap();
            assert!(udp_probe(host.as_fd(), sa("127.0.0.1", 8053)).is_ok());
            assert!(received.load(std::sync::atomic::Ordering::SeqCst) > 0);
        },
    );
}

#[test]
fn bridge_setup_of_a_bad_request_makes_nothing_and_says_which_field() {
    sandbox("bridge_setup_of_a_bad_request_makes_nothing_and_says_which_field", || {
        let d = driver();
        let web = network("web", &["10.89.0.0/24"], false);
        d.ensure_network(&web).unwrap();
        let ns = new_netns();
        let base = ns_net::AttachRequest {
            container_id: "bad",
            netns: ns.as_fd(),
            interface: "eth0",
            ips: vec![],
            ports: vec![],
            mac: None,
            default_route: true,
        };
        let cases: Vec<(ns_net::AttachRequest, &str)> = vec![
            (
                ns_net::AttachRequest { container_id: "../x", ..base.clone() },
                "containerId: \"../x\"",
            ),
            (
                ns_net::AttachRequest { interface: "way-too-long-name0", ..base.clone() },
                "interface: ",
            ),
            (
                ns_net::AttachRequest { ips: vec!["10.89.0.1".parse().unwrap()], ..base.clone() },
                "ips[0]: 10.89.0.1 is the gateway",
            ),
            (
                ns_net::AttachRequest { ips: vec!["2001:db8::5".parse().unwrap()], ..base.clone() },
                "ips[0]: network web has no IPv6 subnet",
            ),
            (
                ns_net::AttachRequest {
                    ports: vec!["8080:80".parse().unwrap(), "8080:81".parse().unwrap()],
                    ..base.clone()
                },
                "ports[1]: host port 8080/tcp is published twice",
            ),
            (
                ns_net::AttachRequest {
                    ports: vec!["[::1]:8080:80".parse().unwrap()],
                    ..base.clone()
                },
                "ports[0]: host address ::1 is IPv6",
            ),
        ];
        for (req, want) in cases {
            let e = d.setup(&web, &req).unwrap_err();
            assert!(e.message.starts_with(want), "{} (wanted {want})", e.message);
        }
        assert!(Netlink::open_in(ns.as_fd()).unwrap().link("eth0").unwrap().is_none());
        assert!(d.ipam(&web).holders().unwrap().is_empty());
        // A subnet the host routes already is refused when the network is made.
        let _up = upstream();
        let clash = network("clash", &["198.51.100.0/25"], false);
        let e = d.ensure_network(&clash).unwrap_err();
        assert!(
            e.message.starts_with(
                "subnets[0].subnet: 198.51.100.0/25 overlaps the host's route 198.51.100.0/24"
            ),
            "{}",
            e.message
        );
        assert!(!host_links().contains(&clash.bridge));
        // The default network avoids it too, and its MTU is the default route's.
        sh("ip link set up0 mtu 1420");
        let def = ns_net::bridge::default_network(&mut Netlink::open().unwrap()).unwrap();
        assert_eq!((def.name.as_str(), def.bridge.as_str()), ("bridge", "ns0"));
        assert_eq!(def.subnets[0].subnet.to_string(), "10.88.0.0/16");
        assert_eq!(d.ensure_network(&def).unwrap().mtu, 1420);
    });
}

#[test]
fn bridge_a_holder_killed_mid_way_leaves_nothing_after_reclaim_and_reconcile() {
    sandbox("bridge_a_holder_killed_mid_way_leaves_nothing_after_reclaim_and_reconcile", || {
        let up = upstream();
        let d = driver();
        let web = network("web", &["10.89.0.0/24"], false);
        d.ensure_network(&web).unwrap();
        // A holder process attaches a container with a published port, then is killed.
        let victim_ns = new_netns();
        // A holder process attaches, reports, and waits to be killed.
        let hold = |id: &'static str, port: &'static str| -> libc::pid_t {
            let mut p = [0; 2];
            // SAFETY: pipe into an array of two.
            assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
            // SAFETY: the child makes system calls and allocations only, and _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: the child's end of the reading side is not its to keep; and the child
                // dies with the test, whatever happens to it.
                unsafe {
                    libc::close(p[0]);
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                }
                let run = std::panic::AssertUnwindSafe(|| {
                    let req = ns_net::AttachRequest {
                        container_id: id,
                        netns: victim_ns.as_fd(),
                        interface: match id {
                            "v1" => "eth0",
                            "v2" => "eth1",
                            _ => "eth2",
                        },
                        ips: vec![],
                        ports: vec![port.parse().unwrap()],
                        mac: None,
                        default_route: id == "v1",
                    };
                    match d.setup(&web, &req) {
                        Ok(kept) => {
                            std::mem::forget(kept);
                            "ok".to_string()
                        }
                        Err(e) => e.message,
                    }
                });
                let msg = std::panic::catch_unwind(run).unwrap_or_else(|_| "panicked".into());
                // SAFETY: write the outcome, then wait to be killed; never back into the harness.
                unsafe {
                    libc::write(p[1], msg.as_ptr().cast(), msg.len());
                    libc::close(p[1]);
                    libc::pause();
                    libc::_exit(0);
                }
            }
            // SAFETY: the parent's copy of the writing side, closed so a dead child is EOF.
            unsafe { libc::close(p[1]) };
            let mut msg = Vec::new();
            let mut b = [0u8; 256];
            loop {
                // SAFETY: read into a buffer we own.
                let n = unsafe { libc::read(p[0], b.as_mut_ptr().cast(), b.len()) };
                if n <= 0 {
                    break;
                }
                msg.extend_from_slice(&b[..n as usize]);
            }
            // SAFETY: our descriptor.
            unsafe { libc::close(p[0]) };
            assert_eq!(String::from_utf8_lossy(&msg), "ok", "the holder's setup of {id}");
            pid
        };
        let kill = |pid: libc::pid_t| {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        };
        let killed = |id: &'static str, port: &'static str| kill(hold(id, port));
        let (p1, p2) = (hold("v1", "8080:80"), hold("v2", "8081:80"));
        kill(p1);
        kill(p2);
        // The victims' namespace lives on (as a container whose monitor died would), so their
        // veths and DNAT elements are all still there.
        let v1_veth = ns_net::types::host_veth_name("web", "v1");
        let v2_veth = ns_net::types::host_veth_name("web", "v2");
        assert!(host_links().contains(&v1_veth) && host_links().contains(&v2_veth));
        assert_eq!(ns_net::firewall::published(&d.nft.list().unwrap().unwrap()).len(), 2);

        // 1. The next allocation reclaims both (their locks are free) and cleans what they
        //    had: the new container publishes 8080 itself, and the traffic reaches it.
        let (c, _a, _l) = attach(&d, &web, "fresh", &["8080:80"]);
        tcp_echo(c.as_fd(), "[::]:80");
        assert_eq!(
            tcp_probe(up.ns.as_fd(), sa(HOST_UP4, 8080)).as_deref(),
            Ok(&*format!("::ffff:{UPSTREAM4}"))
        );
        let left = ns_net::firewall::published(&d.nft.list().unwrap().unwrap());
        assert_eq!(left.iter().map(|p| p.container.as_str()).collect::<Vec<_>>(), ["fresh"]);
        assert!(!host_links().contains(&v1_veth) && !host_links().contains(&v2_veth));

        // 2. Reconcile with nobody alive: "fresh" is still held by this process, so it stays.
        let rep = d.reconcile(std::slice::from_ref(&web), &HashSet::new());
        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
        assert!(
            rep.allocations.is_empty() && rep.published.is_empty() && rep.devices.is_empty(),
            "{rep:?}"
        );

        // 3. A third victim, then reconcile (no allocation in between) removes its allocation,
        //    element and device.
        killed("v3", "8082:80");
        let v3_veth = ns_net::types::host_veth_name("web", "v3");
        let live: HashSet<String> = ["fresh".to_string()].into();
        let rep = d.reconcile(std::slice::from_ref(&web), &live);
        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
        assert_eq!(rep.allocations, ["v3"]);
        assert!(rep.devices.contains(&v3_veth), "{rep:?}");
        assert!(!host_links().contains(&v3_veth));
        let left = ns_net::firewall::published(&d.nft.list().unwrap().unwrap());
        assert_eq!(left.iter().map(|p| p.container.as_str()).collect::<Vec<_>>(), ["fresh"]);
        let holders: Vec<String> =
            d.ipam(&web).holders().unwrap().into_iter().map(|(h, _)| h.container).collect();
        assert_eq!(holders, ["fresh"]);
        assert_eq!(std::fs::read_dir("/run/ns-net/web/addrs").unwrap().count(), 1);
    });
}
