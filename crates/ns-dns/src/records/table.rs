//! A network's records as the resolver looks them up: names (lowercased wire form, without the
//! domain) to containers, addresses to containers (who is asking, and PTR), ids to containers
//! (whether a container is also on another network).

use std::collections::HashMap;
use std::net::IpAddr;

use super::file::{ContainerRecord, RecordsDoc};
use super::reverse::address_of_reverse_name;
use crate::wire::Name;

/// What a name is to a network.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// Names of these containers (several when they share an alias).
    Containers(Vec<&'a ContainerRecord>),
    /// The network's domain itself (`dns.ns`): it exists, with no address.
    Apex,
    /// Under the network's domain but no container's: NXDOMAIN, never forwarded.
    UnknownInDomain,
    /// Not a name of this network.
    NotHere,
}

impl Found<'_> {
    /// How definite an answer is, to pick among networks: containers, then the domain, then
    /// a name under a domain, then nothing.
    fn rank(&self) -> u8 {
        match self {
            Found::Containers(_) => 3,
            Found::Apex => 2,
            Found::UnknownInDomain => 1,
            Found::NotHere => 0,
        }
    }
}

#[derive(Debug, Default)]
pub struct Table {
    network: String,
    domain: Option<Name>,
    containers: Vec<ContainerRecord>,
    names: HashMap<Vec<u8>, Vec<usize>>,
    addrs: HashMap<IpAddr, usize>,
    ids: HashMap<String, usize>,
}

impl Table {
    pub fn empty(network: &str) -> Table {
        Table { network: network.to_owned(), ..Table::default() }
    }

    /// Index a records file. Names that are not valid DNS names are left out (and reported in
    /// the second value) rather than failing the whole network.
    pub fn from_doc(doc: RecordsDoc) -> (Table, Vec<String>) {
        let mut warnings = Vec::new();
        let domain = doc.domain.as_deref().and_then(|d| match Name::from_ascii(d) {
            Ok(n) if !n.is_root() => Some(n),
            _ => {
                warnings.push(format!("domain {d:?} is not a DNS name; names answer without it"));
                None
            }
        });
        let mut t = Table { network: doc.network, domain, ..Table::default() };
        for (i, c) in doc.containers.into_iter().enumerate() {
            for name in c.names() {
                match Name::from_ascii(name) {
                    Ok(n) => {
                        let list = t.names.entry(n.key()).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                    Err(e) => {
                        warnings.push(format!("containers[{i}]: name {name:?} left out: {e}"))
                    }
                }
            }
            for a in c.addresses() {
                if let Some(other) = t.addrs.insert(a, i) {
                    warnings.push(format!("containers[{i}] and containers[{other}] both have {a}"));
                }
            }
            t.ids.insert(c.id.clone(), i);
            t.containers.push(c);
        }
        (t, warnings)
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn domain(&self) -> Option<&Name> {
        self.domain.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    pub fn containers(&self) -> &[ContainerRecord] {
        &self.containers
    }

    /// The container that has `addr`.
    pub fn member(&self, addr: &IpAddr) -> Option<&ContainerRecord> {
        self.addrs.get(addr).map(|&i| &self.containers[i])
    }

    pub fn has_id(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// What `qname` is to this network: a container's name (bare or under the domain), the
    /// domain, an unknown name under it, or none of its business.
    pub fn find(&self, qname: &Name) -> Found<'_> {
        if let Some(found) = self.by_key(&qname.key()) {
            return found;
        }
        let Some(domain) = &self.domain else { return Found::NotHere };
        match qname.strip_suffix(domain) {
            Some(bare) if bare.is_root() => Found::Apex,
            Some(bare) => self.by_key(&bare.key()).unwrap_or(Found::UnknownInDomain),
            None => Found::NotHere,
        }
    }

    fn by_key(&self, key: &[u8]) -> Option<Found<'_>> {
        let list = self.names.get(key)?;
        Some(Found::Containers(list.iter().map(|&i| &self.containers[i]).collect()))
    }

    /// The name a PTR question about `addr` answers: the container's name, under the domain
    /// when the network has one.
    pub fn ptr_target(&self, addr: &IpAddr) -> Option<Name> {
        let c = self.member(addr)?;
        let name = Name::from_ascii(&c.name).ok()?;
        match &self.domain {
            Some(d) => name.concat(d).ok(),
            None => Some(name),
        }
    }
}

/// What a resolver answers from: its own network's table, and the tables of the other
/// networks in the same directory. A container sees the names of its own network, and those
/// of the other networks it is attached to (found by its id) — never of a network it is not on.
#[derive(Debug, Default)]
pub struct View {
    pub own: Table,
    pub siblings: HashMap<String, Table>,
}

impl View {
    /// The container of this network that has `addr`: only they are answered.
    pub fn requester(&self, addr: &IpAddr) -> Option<&ContainerRecord> {
        self.own.member(addr)
    }

    /// The networks `requester` is on, its own first.
    fn networks_of(&self, requester: &ContainerRecord) -> Vec<&Table> {
        let mut list = vec![&self.own];
        list.extend(self.siblings.values().filter(|t| t.has_id(&requester.id)));
        list
    }

    pub fn find(&self, requester: &ContainerRecord, qname: &Name) -> Found<'_> {
        let mut best = Found::NotHere;
        for table in self.networks_of(requester) {
            let found = table.find(qname);
            if found.rank() > best.rank() {
                if matches!(found, Found::Containers(_)) {
                    return found;
                }
                best = found;
            }
        }
        best
    }

    /// The PTR answer for `qname` when it is the reverse name of an address on one of the
    /// requester's networks.
    pub fn ptr(&self, requester: &ContainerRecord, qname: &Name) -> Option<Name> {
        let addr = address_of_reverse_name(qname)?;
        self.networks_of(requester).into_iter().find_map(|t| t.ptr_target(&addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str, aliases: &[&str], v4: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            ipv4: vec![v4.parse().unwrap()],
            ..ContainerRecord::default()
        }
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn table(network: &str, domain: Option<&str>, containers: Vec<ContainerRecord>) -> Table {
        let mut doc = RecordsDoc::new(network, domain);
        doc.containers = containers;
        let (t, warnings) = Table::from_doc(doc);
        assert!(warnings.is_empty(), "{warnings:?}");
        t
    }

    fn names_of(f: Found<'_>) -> Vec<String> {
        match f {
            Found::Containers(list) => list.iter().map(|c| c.name.clone()).collect(),
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn names_aliases_and_ids_match_without_case_bare_or_under_the_domain() {
        let t = table(
            "web",
            Some("dns.ns"),
            vec![
                c("a1b2c3d4e5f6a7b8", "db", &["database"], "198.51.100.2"),
                c("ffff", "web", &[], "198.51.100.3"),
            ],
        );
        for q in [
            "db",
            "DB.",
            "Database",
            "db.dns.ns",
            "DATABASE.Dns.Ns.",
            "a1b2c3d4e5f6",
            "a1b2c3d4e5f6a7b8.dns.ns",
        ] {
            assert_eq!(names_of(t.find(&n(q))), vec!["db"], "{q}");
        }
        assert_eq!(names_of(t.find(&n("web.dns.ns"))), vec!["web"]);
        assert_eq!(t.find(&n("dns.ns")), Found::Apex);
        assert_eq!(t.find(&n("nope.dns.ns")), Found::UnknownInDomain);
        assert_eq!(t.find(&n("db.other")), Found::NotHere);
        assert_eq!(t.find(&n("example.org")), Found::NotHere);
        assert_eq!(t.member(&"198.51.100.3".parse().unwrap()).unwrap().name, "web");
        assert!(t.member(&"198.51.100.9".parse().unwrap()).is_none());
        assert_eq!(t.ptr_target(&"198.51.100.2".parse().unwrap()), Some(n("db.dns.ns")));
    }

    #[test]
    fn a_shared_alias_names_every_container_that_has_it() {
        let t = table(
            "web",
            None,
            vec![
                c("a1", "web1", &["web"], "198.51.100.2"),
                c("a2", "web2", &["web"], "198.51.100.3"),
            ],
        );
        assert_eq!(names_of(t.find(&n("web"))), vec!["web1", "web2"]);
        assert_eq!(t.ptr_target(&"198.51.100.3".parse().unwrap()), Some(n("web2")));
    }

    #[test]
    fn bad_names_are_left_out_and_reported_not_fatal() {
        let mut doc = RecordsDoc::new("web", Some("bad..domain"));
        doc.containers = vec![c("a1", "good", &["bad..alias"], "198.51.100.2")];
        let (t, warnings) = Table::from_doc(doc);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(names_of(t.find(&n("good"))), vec!["good"]);
        assert!(t.domain().is_none());
    }

    #[test]
    fn a_container_sees_the_names_of_every_network_it_is_on_and_of_no_other() {
        // proxy is on front and back; app only on back; web only on front; db only on data.
        let front = table(
            "front",
            None,
            vec![c("p", "proxy", &[], "198.51.100.2"), c("w", "web", &[], "198.51.100.3")],
        );
        let back = table(
            "back",
            None,
            vec![c("p", "proxy", &[], "198.51.100.130"), c("a", "app", &[], "198.51.100.131")],
        );
        let data = table("data", None, vec![c("d", "db", &[], "192.0.2.2")]);
        let view =
            View { own: front, siblings: [("back".into(), back), ("data".into(), data)].into() };
        let proxy = view.requester(&"198.51.100.2".parse().unwrap()).unwrap().clone();
        let web = view.requester(&"198.51.100.3".parse().unwrap()).unwrap().clone();
        assert_eq!(names_of(view.find(&proxy, &n("app"))), vec!["app"]);
        assert_eq!(names_of(view.find(&proxy, &n("web"))), vec!["web"]);
        assert_eq!(view.find(&proxy, &n("db")), Found::NotHere);
        assert_eq!(view.find(&web, &n("app")), Found::NotHere);
        let app_ptr = super::super::reverse::reverse_name("198.51.100.131".parse().unwrap());
        assert_eq!(view.ptr(&proxy, &app_ptr), Some(n("app")));
        assert_eq!(view.ptr(&web, &app_ptr), None);
        // Only the resolver's own network says who may ask.
        assert!(view.requester(&"198.51.100.131".parse().unwrap()).is_none());
    }
}
