//! The firewall: one nftables table, `inet ns`, that ns owns alone. Nothing is added to other
//! tables and nothing outside this table is flushed.
//!
//! The ruleset is data: an operation is a list of [`Op`]s, rendered into one `nft` script and
//! applied as one transaction (`nft -f -`): all of it or none. Unit tests compare the rendered
//! plan without root; the real tests list the table afterwards.
//!
//! Shape of the table (both families in one):
//! - `raw-pre` (prerouting, raw priority): a packet for 127.0.0.0/8 that did not arrive on
//!   `lo` is dropped before NAT sees it, so a port published on 127.0.0.1 cannot be reached by
//!   a neighbour (or a container) that sends to 127.0.0.1 through this host (moby/moby#45610,
//!   #41872; route_localnet on a bridge would otherwise let it through);
//! - `nat-pre` / `nat-out` (dstnat): traffic for an address of this host (`fib daddr type
//!   local`) goes through `publish`, which DNATs by four maps: `pub4-addr`/`pub6-addr` keyed by
//!   host address, protocol and port, then `pub4-any`/`pub6-any` keyed by protocol and port.
//!   One element per published port, its comment `ns:<container id>`;
//! - `nat-post` (srcnat): loopback-sourced traffic DNATed onto a bridge is masqueraded (the
//!   container could not answer 127.0.0.1); then per network (by input bridge, a verdict map):
//!   outbound masquerade of its subnets (by input bridge), and hairpin masquerade of DNATed
//!   traffic from a network's subnet back into it (by output bridge);
//! - `input` (filter): DNS (UDP and TCP port 53) from every bridge is accepted (each network's
//!   resolver listens on its gateways); then per network (by input bridge, a verdict map), an
//!   `--internal` one reaches nothing else of the host but replies and neighbour discovery;
//! - `forward` (filter): established and published (DNATed) traffic passes; then per network:
//!   from its bridge, to itself or the outside yes, to another ns bridge no (isolation), to
//!   nothing at all when `--internal`; to its bridge from elsewhere, nothing unsolicited.
//!
//! Per-network chains are reached through verdict maps keyed by bridge name and per-container
//! state lives only in map elements, so nothing is ever deleted by rule handle: removing a
//! network or a container's ports is deleting named elements and chains. A bridge attachment
//! without published ports touches no firewall at all.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::{NetError, Result};

/// The table ns owns.
pub const TABLE: &str = "ns";
/// The comment prefix of a container's elements: `ns:<container id>`.
pub const OWNER_PREFIX: &str = "ns:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port, as an element of a DNAT map: traffic for `host_ip` (any address of
/// the host when `None`) port `host_port` goes to `to`:`to_port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    pub container: String,
    pub proto: Proto,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub to: IpAddr,
    pub to_port: u16,
}

impl Publish {
    fn map(&self) -> &'static str {
        match (self.to.is_ipv6(), self.host_ip.is_some()) {
            (false, false) => "pub4-any",
            (false, true) => "pub4-addr",
            (true, false) => "pub6-any",
            (true, true) => "pub6-addr",
        }
    }

    fn key(&self) -> String {
        match &self.host_ip {
            Some(ip) => format!("{ip} . {} . {}", self.proto.as_str(), self.host_port),
            None => format!("{} . {}", self.proto.as_str(), self.host_port),
        }
    }

    fn element(&self) -> String {
        format!(
            "{} comment \"{OWNER_PREFIX}{}\" : {} . {}",
            self.key(),
            self.container,
            self.to,
            self.to_port
        )
    }

    /// How a person names it: `0.0.0.0:8080/tcp`, `[::1]:53/udp`.
    pub fn describe(&self) -> String {
        let host = match (&self.host_ip, self.to.is_ipv6()) {
            (Some(IpAddr::V6(a)), _) => format!("[{a}]"),
            (Some(a), _) => a.to_string(),
            (None, false) => "0.0.0.0".into(),
            (None, true) => "[::]".into(),
        };
        format!("{host}:{}/{}", self.host_port, self.proto.as_str())
    }
}

/// What the ruleset needs to know of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRules {
    pub name: String,
    pub bridge: String,
    pub subnets: Vec<Cidr>,
    pub internal: bool,
}

impl NetworkRules {
    fn chain(&self, what: &str) -> String {
        format!("n-{}-{what}", self.name)
    }
}

/// One step of a firewall operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The table, its sets, maps and base chains (idempotent: re-creating rebuilds them).
    EnsureBase,
    /// A network's chains and its entries in the dispatch maps (idempotent).
    AddNetwork(NetworkRules),
    /// A network's chains and entries, gone (whether they were there or not).
    RemoveNetwork(NetworkRules),
    /// New DNAT elements; fails (all of the batch) if a host port is taken.
    Publish(Vec<Publish>),
    /// DNAT elements gone (whether they were there or not).
    Unpublish(Vec<Publish>),
    /// The whole table gone (whether it was there or not).
    DeleteTable,
}

/// Renders a plan into one nft script.
pub fn render(ops: &[Op]) -> String {
    let mut s = String::new();
    let mut declared = false;
    for op in ops {
        // A removal declares the table and its maps first (a no-op when they exist), so that
        // removing from a table that is gone (after a reboot, a reconcile) is not an error.
        if matches!(op, Op::RemoveNetwork(_) | Op::Unpublish(_) | Op::Publish(_)) && !declared {
            render_declarations(&mut s);
            declared = true;
        }
        match op {
            Op::EnsureBase => {
                render_base(&mut s);
                declared = true;
            }
            Op::AddNetwork(n) => render_add_network(&mut s, n),
            Op::RemoveNetwork(n) => render_remove_network(&mut s, n),
            Op::Publish(ps) => {
                for p in ps {
                    let _ = writeln!(
                        s,
                        "create element inet {TABLE} {} {{ {} }}",
                        p.map(),
                        p.element()
                    );
                }
            }
            Op::Unpublish(ps) => {
                // `add` first, so that deleting an element that is not there is not an error.
                for p in ps {
                    let _ =
                        writeln!(s, "add element inet {TABLE} {} {{ {} }}", p.map(), p.element());
                    let _ =
                        writeln!(s, "delete element inet {TABLE} {} {{ {} }}", p.map(), p.key());
                }
            }
            Op::DeleteTable => {
                let _ = writeln!(s, "add table inet {TABLE}");
                let _ = writeln!(s, "delete table inet {TABLE}");
            }
        }
    }
    s
}

fn chain(s: &mut String, name: &str, base: Option<&str>, rules: &[&str]) {
    match base {
        Some(b) => {
            let _ = writeln!(s, "add chain inet {TABLE} {name} {{ {b}; policy accept; }}");
        }
        None => {
            let _ = writeln!(s, "add chain inet {TABLE} {name}");
        }
    }
    let _ = writeln!(s, "flush chain inet {TABLE} {name}");
    for r in rules {
        let _ = writeln!(s, "add rule inet {TABLE} {name} {r}");
    }
}

fn render_declarations(s: &mut String) {
    let _ = writeln!(s, "add table inet {TABLE}");
    let _ = writeln!(s, "add set inet {TABLE} bridges {{ type ifname; }}");
    for m in ["fwd-in", "fwd-out", "post-in", "post-out", "host-in"] {
        let _ = writeln!(s, "add map inet {TABLE} {m} {{ type ifname : verdict; }}");
    }
    for (m, ty) in [
        ("pub4-any", "inet_proto . inet_service : ipv4_addr . inet_service"),
        ("pub4-addr", "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"),
        ("pub6-any", "inet_proto . inet_service : ipv6_addr . inet_service"),
        ("pub6-addr", "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service"),
    ] {
        let _ = writeln!(s, "add map inet {TABLE} {m} {{ type {ty}; }}");
    }
}

fn render_base(s: &mut String) {
    render_declarations(s);
    chain(
        s,
        "raw-pre",
        Some("type filter hook prerouting priority raw"),
        &["iifname != \"lo\" ip daddr 127.0.0.0/8 drop"],
    );
    chain(
        s,
        "publish",
        None,
        &[
            "meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @pub4-addr",
            "meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4-any",
            "meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6-addr",
            "meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6-any",
        ],
    );
    chain(
        s,
        "nat-pre",
        Some("type nat hook prerouting priority dstnat"),
        &["fib daddr type local jump publish"],
    );
    chain(
        s,
        "nat-out",
        // nft 1.0 names `dstnat` only for prerouting: the same -100, numerically.
        Some("type nat hook output priority -100"),
        &["fib daddr type local jump publish"],
    );
    chain(
        s,
        "nat-post",
        Some("type nat hook postrouting priority srcnat"),
        &[
            "oifname @bridges ip saddr 127.0.0.0/8 ct status dnat masquerade",
            "oifname vmap @post-out",
            "iifname vmap @post-in",
        ],
    );
    chain(
        s,
        "input",
        Some("type filter hook input priority filter"),
        &[
            // Each network's resolver listens on its gateways: the containers ask it.
            "iifname @bridges meta l4proto { tcp, udp } th dport 53 accept",
            "iifname vmap @host-in",
        ],
    );
    chain(
        s,
        "forward",
        Some("type filter hook forward priority filter"),
        &[
            "ct state established,related accept",
            "ct status dnat oifname @bridges accept",
            "iifname vmap @fwd-in",
            "oifname vmap @fwd-out",
        ],
    );
}

fn render_add_network(s: &mut String, n: &NetworkRules) {
    let br = &n.bridge;
    let mut inside = vec![format!("oifname \"{br}\" accept"), "oifname @bridges drop".to_owned()];
    if n.internal {
        inside.push("drop".into());
    } else {
        inside.push("accept".into());
    }
    let mut post = Vec::new();
    if !n.internal {
        for c in &n.subnets {
            let fam = if c.is_ipv6() { "ip6" } else { "ip" };
            post.push(format!("oifname != \"{br}\" {fam} saddr {c} masquerade"));
        }
    }
    // Hairpin: DNATed traffic that goes back into the network it came from is masqueraded,
    // or the container would see (and drop) a packet from itself, or answer a neighbour
    // directly. Keyed by source subnet, not input device: when the host sends bridged
    // traffic through its IP hooks, postrouting of a bridged packet has no input device.
    let mut hairpin = Vec::new();
    for c in n.subnets.iter().filter(|_| !n.internal) {
        let fam = if c.is_ipv6() { "ip6" } else { "ip" };
        hairpin.push(format!("ct status dnat {fam} saddr {c} masquerade"));
    }
    let refs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join("\n");
    let (cin, cout, cpost, chair) =
        (n.chain("in"), n.chain("out"), n.chain("post"), n.chain("hairpin"));
    // To the host itself: an internal network reaches nothing but its resolver (above, in
    // `input`) and what neighbour discovery needs; another network, whatever the host allows.
    let host: &[&str] = if n.internal {
        &["ct state established,related accept", "meta l4proto ipv6-icmp accept", "drop"]
    } else {
        &[]
    };
    chain(s, &cin, None, &refs(&inside).lines().collect::<Vec<_>>());
    chain(s, &cout, None, &["drop"]);
    chain(s, &cpost, None, &refs(&post).lines().collect::<Vec<_>>());
    chain(s, &chair, None, &refs(&hairpin).lines().collect::<Vec<_>>());
    let chost = n.chain("host");
    chain(s, &chost, None, host);
    let _ = writeln!(s, "add element inet {TABLE} bridges {{ \"{br}\" }}");
    for (m, c) in [
        ("fwd-in", &cin),
        ("fwd-out", &cout),
        ("post-in", &cpost),
        ("post-out", &chair),
        ("host-in", &chost),
    ] {
        let _ = writeln!(s, "add element inet {TABLE} {m} {{ \"{br}\" : jump {c} }}");
    }
}

fn render_remove_network(s: &mut String, n: &NetworkRules) {
    let br = &n.bridge;
    let (cin, cout, cpost, chair, chost) =
        (n.chain("in"), n.chain("out"), n.chain("post"), n.chain("hairpin"), n.chain("host"));
    // Each removal is preceded by an add of the same thing, so that one already gone is not
    // an error: the operation is idempotent without reading the table first.
    for c in [&cin, &cout, &cpost, &chair, &chost] {
        let _ = writeln!(s, "add chain inet {TABLE} {c}");
    }
    let _ = writeln!(s, "add element inet {TABLE} bridges {{ \"{br}\" }}");
    let _ = writeln!(s, "delete element inet {TABLE} bridges {{ \"{br}\" }}");
    for (m, c) in [
        ("fwd-in", &cin),
        ("fwd-out", &cout),
        ("post-in", &cpost),
        ("post-out", &chair),
        ("host-in", &chost),
    ] {
        let _ = writeln!(s, "add element inet {TABLE} {m} {{ \"{br}\" : jump {c} }}");
        let _ = writeln!(s, "delete element inet {TABLE} {m} {{ \"{br}\" }}");
    }
    for c in [&cin, &cout, &cpost, &chair, &chost] {
        let _ = writeln!(s, "flush chain inet {TABLE} {c}");
        let _ = writeln!(s, "delete chain inet {TABLE} {c}");
    }
}

/// Runs `nft`: the one that `NS_NFT` names, else the first of `PATH` and the usual sbin
/// folders (a helper may run with a `PATH` without them).
#[derive(Debug, Clone)]
pub struct Nft {
    pub binary: String,
}

impl Default for Nft {
    fn default() -> Self {
        if let Ok(b) = std::env::var("NS_NFT") {
            return Nft { binary: b };
        }
        for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let p = format!("{d}/nft");
            if std::path::Path::new(&p).exists() {
                return Nft { binary: p };
            }
        }
        Nft { binary: "nft".into() }
    }
}

/// The errno nft's message stands for, from the kernel's strerror text it prints.
fn errno_of(stderr: &str) -> &'static str {
    let pairs = [
        ("File exists", "EEXIST"),
        ("No such file or directory", "ENOENT"),
        ("Operation not permitted", "EPERM"),
        ("Device or resource busy", "EBUSY"),
        ("Protocol not supported", "EPROTONOSUPPORT"),
        ("Invalid argument", "EINVAL"),
    ];
    pairs.iter().find(|(t, _)| stderr.contains(t)).map(|(_, c)| *c).unwrap_or("EIO")
}

impl Nft {
    /// Applies a plan in one transaction.
    pub fn apply(&self, step: &str, ops: &[Op]) -> Result<()> {
        let script = render(ops);
        if script.is_empty() {
            return Ok(());
        }
        self.run(step, &["-f", "-"], Some(&script)).map(|_| ())
    }

    fn run(&self, step: &str, args: &[&str], input: Option<&str>) -> Result<String> {
        let what = format!("table inet {TABLE}");
        let mut child = Command::new(&self.binary)
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                NetError::sys(step, Some(&what), crate::error::Errno::from_io(&e))
                    .with_hint(format!("is nftables installed? ({} could not be run)", self.binary))
            })?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| NetError::sys(step, Some(&what), crate::error::Errno::from_io(&e)))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("nft failed").trim();
        Err(NetError::other(step, Some(&what), errno_of(&err), first)
            .with_hint(format!("nft said: {}", err.trim())))
    }

    /// The table as nft's JSON, `None` when there is no table.
    pub fn list(&self) -> Result<Option<serde_json::Value>> {
        match self.run("list firewall rules of", &["-j", "list", "table", "inet", TABLE], None) {
            Ok(out) => serde_json::from_str(&out).map(Some).map_err(|e| {
                NetError::other("read firewall rules of", Some(TABLE), "EPROTO", &e.to_string())
            }),
            Err(e) if e.code == "ENOENT" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The table as text, for people and tests.
    pub fn list_text(&self) -> Result<String> {
        self.run("list firewall rules of", &["list", "table", "inet", TABLE], None)
    }
}

/// The published ports (and their owners) in a listed table.
pub fn published(table: &serde_json::Value) -> Vec<Publish> {
    let mut out = Vec::new();
    let Some(items) = table.get("nftables").and_then(|v| v.as_array()) else { return out };
    for it in items {
        let Some(m) = it.get("map") else { continue };
        let name = m.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let with_addr = match name {
            "pub4-any" | "pub6-any" => false,
            "pub4-addr" | "pub6-addr" => true,
            _ => continue,
        };
        for e in m.get("elem").and_then(|v| v.as_array()).into_iter().flatten() {
            out.extend(parse_element(e, with_addr));
        }
    }
    out
}

/// `[{"elem": {"val": {"concat": [..key..]}, "comment": "ns:ID"}}, {"concat": [ip, port]}]`
fn parse_element(e: &serde_json::Value, with_addr: bool) -> Option<Publish> {
    let pair = e.as_array()?;
    let elem = pair.first()?.get("elem")?;
    let comment = elem.get("comment")?.as_str()?;
    let container = comment.strip_prefix(OWNER_PREFIX)?.to_owned();
    let key = elem.get("val")?.get("concat")?.as_array()?;
    let (host_ip, rest) = if with_addr {
        (Some(key.first()?.as_str()?.parse().ok()?), &key[1..])
    } else {
        (None, &key[..])
    };
    let proto = match rest.first()?.as_str()? {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    let host_port = u16::try_from(rest.get(1)?.as_u64()?).ok()?;
    let val = pair.get(1)?.get("concat")?.as_array()?;
    let to = val.first()?.as_str()?.parse().ok()?;
    let to_port = u16::try_from(val.get(1)?.as_u64()?).ok()?;
    Some(Publish { container, proto, host_ip, host_port, to, to_port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> NetworkRules {
        NetworkRules {
            name: "web".into(),
            bridge: "ns-web".into(),
            subnets: vec!["10.89.0.0/24".parse().unwrap(), "2001:db8:89::/64".parse().unwrap()],
            internal: false,
        }
    }

    #[test]
    fn a_network_plan_masquerades_its_subnets_and_isolates_it_from_other_bridges() {
        let s = render(&[Op::AddNetwork(web())]);
        let want = "\
add chain inet ns n-web-in
flush chain inet ns n-web-in
add rule inet ns n-web-in oifname \"ns-web\" accept
add rule inet ns n-web-in oifname @bridges drop
add rule inet ns n-web-in accept
add chain inet ns n-web-out
flush chain inet ns n-web-out
add rule inet ns n-web-out drop
add chain inet ns n-web-post
flush chain inet ns n-web-post
add rule inet ns n-web-post oifname != \"ns-web\" ip saddr 10.89.0.0/24 masquerade
add rule inet ns n-web-post oifname != \"ns-web\" ip6 saddr 2001:db8:89::/64 masquerade
add chain inet ns n-web-hairpin
flush chain inet ns n-web-hairpin
add rule inet ns n-web-hairpin ct status dnat ip saddr 10.89.0.0/24 masquerade
add rule inet ns n-web-hairpin ct status dnat ip6 saddr 2001:db8:89::/64 masquerade
add chain inet ns n-web-host
flush chain inet ns n-web-host
add element inet ns bridges { \"ns-web\" }
add element inet ns fwd-in { \"ns-web\" : jump n-web-in }
add element inet ns fwd-out { \"ns-web\" : jump n-web-out }
add element inet ns post-in { \"ns-web\" : jump n-web-post }
add element inet ns post-out { \"ns-web\" : jump n-web-hairpin }
add element inet ns host-in { \"ns-web\" : jump n-web-host }
";
        assert_eq!(s, want);
    }

    #[test]
    fn an_internal_network_has_no_masquerade_and_drops_everything_leaving_it() {
        let s = render(&[Op::AddNetwork(NetworkRules { internal: true, ..web() })]);
        assert!(!s.contains("saddr 10.89.0.0/24 masquerade"), "{s}");
        assert!(
            s.contains(
                "add rule inet ns n-web-in oifname @bridges drop\nadd rule inet ns n-web-in drop\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn every_statement_of_every_plan_names_only_the_ns_table() {
        let p = Publish {
            container: "c1".into(),
            proto: Proto::Udp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8053,
            to: "10.89.0.2".parse().unwrap(),
            to_port: 53,
        };
        let all = render(&[
            Op::EnsureBase,
            Op::AddNetwork(web()),
            Op::Publish(vec![p.clone()]),
            Op::Unpublish(vec![p]),
            Op::RemoveNetwork(web()),
            Op::DeleteTable,
        ]);
        for l in all.lines() {
            assert!(l.contains(" inet ns"), "{l}");
            assert!(!l.starts_with("flush ruleset") && !l.contains("flush table"), "{l}");
        }
    }

    #[test]
    fn published_ports_are_map_elements_owned_by_their_container() {
        let p = Publish {
            container: "c1".into(),
            proto: Proto::Udp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8053,
            to: "10.89.0.2".parse().unwrap(),
            to_port: 53,
        };
        let plan = render(&[Op::Publish(vec![p.clone()])]);
        assert_eq!(
            plan.lines().last().unwrap_or(""),
            "create element inet ns pub4-addr { 127.0.0.1 . udp . 8053 comment \"ns:c1\" : 10.89.0.2 . 53 }"
        );
        assert!(plan.starts_with("add table inet ns\n"), "{plan}");
        assert_eq!(p.describe(), "127.0.0.1:8053/udp");
        let any6 = Publish {
            host_ip: None,
            to: "2001:db8:89::2".parse().unwrap(),
            proto: Proto::Tcp,
            ..p.clone()
        };
        let plan = render(&[Op::Unpublish(vec![any6.clone()])]);
        assert!(plan.ends_with(
            "add element inet ns pub6-any { tcp . 8053 comment \"ns:c1\" : 2001:db8:89::2 . 53 }\n\
             delete element inet ns pub6-any { tcp . 8053 }\n"
        ));
        assert_eq!(any6.describe(), "[::]:8053/tcp");
    }

    #[test]
    fn published_elements_parse_back_from_nfts_json() {
        let j: serde_json::Value = serde_json::from_str(r#"{"nftables": [{"metainfo": {}},
            {"map": {"family": "inet", "name": "pub4-addr", "table": "ns", "elem": [
              [{"elem": {"val": {"concat": ["127.0.0.1", "udp", 8053]}, "comment": "ns:c1"}}, {"concat": ["10.89.0.2", 53]}]]}},
            {"map": {"family": "inet", "name": "pub6-any", "table": "ns", "elem": [
              [{"elem": {"val": {"concat": ["tcp", 8080]}, "comment": "ns:c2"}}, {"concat": ["2001:db8:89::3", 80]}],
              [{"elem": {"val": {"concat": ["tcp", 8081]}, "comment": "someone else"}}, {"concat": ["2001:db8:89::3", 81]}],
              [{"elem": {"val": {"concat": ["tcp", 99999]}, "comment": "ns:bad"}}, {"concat": ["2001:db8:89::3", 81]}]]}},
            {"map": {"family": "inet", "name": "fwd-in", "table": "ns"}}]}"#).unwrap();
        let got = published(&j);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].describe(), "127.0.0.1:8053/udp");
        assert_eq!(got[0].container, "c1");
        assert_eq!((got[1].container.as_str(), got[1].host_port, got[1].to_port), ("c2", 8080, 80));
        assert!(published(&serde_json::json!({"x": 1})).is_empty());
    }
}
