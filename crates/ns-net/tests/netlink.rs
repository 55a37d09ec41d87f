//! rtnetlink against the real kernel, inside a sandbox namespace: what the library creates is
//! what a dump (and `ip`, a second opinion) sees, on the host side and inside the container.

mod common;

use std::os::fd::AsFd;

use common::*;
use ns_net::netlink::{LinkChange, Netlink, RouteSpec, Veth};

#[test]
fn netlink_veth_peer_is_born_inside_the_container_namespace_as_eth0_enslaved_and_up() {
    sandbox(
        "netlink_veth_peer_is_born_inside_the_container_namespace_as_eth0_enslaved_and_up",
        || {
            let ctr = new_netns();
            let mut nl = Netlink::open().unwrap();
            nl.create_bridge(
                "ns-t0",
                Some(1400),
                Some([0x02, 0, 0, 0, 0, 0x01]),
                Some("ns-network:t0"),
            )
            .unwrap();
            let br = nl.link("ns-t0").unwrap().expect("bridge exists");
            assert_eq!(br.kind.as_deref(), Some("bridge"));
            assert_eq!(br.mtu, 1400);
            assert_eq!(br.alias.as_deref(), Some("ns-network:t0"));
            assert!(!br.is_up(), "a bridge is created down");
            nl.set_up("ns-t0", true).unwrap();
            nl.create_veth(&Veth {
                name: "nsv0",
                peer: "eth0",
                peer_netns: Some(ctr.as_fd()),
                master: Some(br.index),
                mtu: Some(1400),
                peer_mac: Some([0x02, 0x42, 0, 0, 0, 0x07]),
                up: true,
                alias: Some("ns:ctr1"),
                ..Default::default()
            })
            .unwrap();
            let host = nl.link("nsv0").unwrap().expect("host end");
            assert_eq!(host.master, Some(br.index));
            assert!(host.is_up());
            assert_eq!(host.alias.as_deref(), Some("ns:ctr1"));
            assert!(nl.link("eth0").unwrap().is_none(), "the peer never appears on the host");
            // Inside the container's namespace, through a socket opened there.
            let mut inner = Netlink::open_in(ctr.as_fd()).unwrap();
            let eth0 = inner.link("eth0").unwrap().expect("eth0 inside");
            assert_eq!(eth0.kind.as_deref(), Some("veth"));
            assert_eq!(eth0.mtu, 1400);
            assert_eq!(eth0.mac, Some([0x02, 0x42, 0, 0, 0, 0x07]));
            assert!(!eth0.is_up(), "the peer is born down");
            inner.set_up("eth0", true).unwrap();
            assert!(inner.link("eth0").unwrap().unwrap().is_up());
            inner.add_address("eth0", eth0.index, "10.89.0.2".parse().unwrap(), 24).unwrap();
            inner.add_address("eth0", eth0.index, "2001:db8:89::2".parse().unwrap(), 64).unwrap();
            inner
                .add_route(&RouteSpec {
                    dst: None,
                    gateway: Some("10.89.0.1".parse().unwrap()),
                    oif: eth0.index,
                    dev: "eth0".into(),
                })
                .unwrap();
            let addrs = inner.addresses().unwrap();
            assert!(addrs.iter().any(|a| a.index == eth0.index
                && a.address.to_string() == "10.89.0.2"
                && a.prefix_len == 24));
            assert!(addrs
                .iter()
                .any(|a| a.address.to_string() == "2001:db8:89::2" && a.prefix_len == 64));
            let routes = inner.routes().unwrap();
            assert!(routes.iter().any(|r| r.is_default()
                && r.gateway.map(|g| g.to_string()) == Some("10.89.0.1".into())
                && r.oif == Some(eth0.index)));
            // A second opinion from iproute2, inside the container's namespace.
            let ip = sh_in(ctr.as_fd(), "ip -o addr show dev eth0; ip route show default");
            assert!(ip.contains("inet 10.89.0.2/24"), "{ip}");
            assert!(ip.contains("default via 10.89.0.1 dev eth0"), "{ip}");
            // Changes: down, MTU, MAC, out of the bridge.
            nl.set_link(
                "nsv0",
                &LinkChange {
                    up: Some(false),
                    mtu: Some(1300),
                    master: Some(0),
                    ..Default::default()
                },
            )
            .unwrap();
            nl.set_mac("nsv0", [0x02, 0, 0, 0, 0, 0x09]).unwrap();
            let host = nl.link("nsv0").unwrap().unwrap();
            assert!(!host.is_up());
            assert_eq!(
                (host.mtu, host.master, host.mac),
                (1300, None, Some([0x02, 0, 0, 0, 0, 0x09]))
            );
            // Deleting the host end takes the peer with it.
            assert!(nl.delete_link("nsv0").unwrap());
            assert!(!nl.delete_link("nsv0").unwrap(), "a second delete finds nothing");
            assert!(inner.link("eth0").unwrap().is_none(), "the peer went with its host end");
            assert!(nl.delete_link("ns-t0").unwrap());
            assert!(nl.links().unwrap().iter().all(|l| l.name == "lo"), "only lo is left");
        },
    );
}

#[test]
fn netlink_errors_name_the_step_the_device_and_the_errno() {
    sandbox("netlink_errors_name_the_step_the_device_and_the_errno", || {
        let mut nl = Netlink::open().unwrap();
        nl.create_bridge("ns-dup", None, None, None).unwrap();
        let e = nl.create_bridge("ns-dup", None, None, None).unwrap_err();
        assert_eq!(e.code, "EEXIST");
        assert_eq!(e.message, "failed to create bridge ns-dup: EEXIST (file exists)");
        let e = nl.set_master("nope0", "ns-dup", 999_999).unwrap_err();
        assert_eq!(e.code, "ENODEV", "{e:?}");
        assert!(
            e.message.starts_with("failed to add nope0 to bridge ns-dup: ENODEV"),
            "{}",
            e.message
        );
        let lo = nl.link("lo").unwrap().unwrap();
        nl.add_address("lo", lo.index, "192.0.2.9".parse().unwrap(), 32).unwrap();
        let e = nl.add_address("lo", lo.index, "192.0.2.9".parse().unwrap(), 32).unwrap_err();
        assert_eq!(e.message, "failed to add address 192.0.2.9/32 to lo: EEXIST (file exists)");
        let e = nl
            .add_route(&RouteSpec {
                dst: None,
                gateway: Some("203.0.113.1".parse().unwrap()),
                oif: lo.index,
                dev: "lo".into(),
            })
            .unwrap_err();
        assert!(
            e.message.starts_with("failed to add route default via 203.0.113.1 dev lo: "),
            "{}",
            e.message
        );
        assert!(nl.delete_address("lo", lo.index, "192.0.2.9".parse().unwrap(), 32).unwrap());
        assert!(!nl.delete_address("lo", lo.index, "192.0.2.9".parse().unwrap(), 32).unwrap());
        nl.delete_link("ns-dup").unwrap();
    });
}

#[test]
fn netlink_dumps_every_route_of_the_host_namespace_with_its_default_route() {
    sandbox("netlink_dumps_every_route_of_the_host_namespace_with_its_default_route", || {
        let _up = upstream();
        let mut nl = Netlink::open().unwrap();
        let up0 = nl.link("up0").unwrap().unwrap();
        let routes = nl.routes().unwrap();
        let def4 = routes
            .iter()
            .find(|r| r.is_default() && r.family == libc::AF_INET as u8)
            .expect("v4 default");
        assert_eq!(def4.oif, Some(up0.index));
        assert_eq!(def4.gateway.unwrap().to_string(), UPSTREAM4);
        assert!(routes.iter().any(
            |r| r.dst.map(|d| d.to_string()) == Some("198.51.100.0".into()) && r.dst_len == 24
        ));
        assert!(routes.iter().any(|r| r.is_default() && r.family == libc::AF_INET6 as u8));
    });
}
