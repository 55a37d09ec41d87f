//! What the resolver does with one query, as a pure function of the packet, who sent it and the
//! records: answer it from the records, refuse it, or forward it. The server around it only
//! moves bytes.
//!
//! The rules, in order (podman's aardvark-dns makes the same choices where it makes one):
//! 1. Not even a header, or a response: dropped (answering responses could loop two servers).
//! 2. Unreadable: FORMERR. Not a QUERY: NOTIMP. Not exactly one question: FORMERR. EDNS
//!    version above 0: BADVERS (RFC 6891 §6.1.3).
//! 3. A source address that is no container of this network: REFUSED, for every name — a
//!    container of another network (an `--internal` one, say) learns nothing here and cannot
//!    use this network's forwarding.
//! 4. A name of one of the asker's networks: the answer, authoritative (A, AAAA, both for ANY,
//!    no data for other types). A name under a network's domain that no container has:
//!    NXDOMAIN. The reverse name of such a container's address: its PTR.
//! 5. Any other single-label name: NXDOMAIN, not forwarded (a bare `db` never leaks to the
//!    upstream resolvers, as aardvark-dns does).
//! 6. An `--internal` network: NXDOMAIN for everything else (aardvark-dns's choice; no
//!    forwarding, so no name outside is learnt).
//! 7. Everything else is forwarded, with the asker's own upstreams (`--dns`) if it has some.

use std::net::IpAddr;

use crate::records::{Found, View};
use crate::wire::{
    rcode, rtype, Header, Message, Question, RData, Record, CLASS_ANY, CLASS_IN, MAX_MESSAGE,
    OPCODE_QUERY, UDP_MIN,
};

/// TTL of the answers from the records: containers come and go, and the resolver is next door,
/// so clients should not keep an answer long (aardvark-dns uses the same).
pub const TTL: u32 = 60;
/// The UDP payload size the resolver advertises in its OPT record (the 2020 DNS flag day's).
pub const ADVERTISED_UDP: u16 = 1232;
/// The most the resolver sends in one datagram, whatever a client advertises.
pub const MAX_UDP: usize = 4096;

/// How the question reached the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    /// An `--internal` network: nothing is forwarded.
    pub internal: bool,
}

/// A question to pass on upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct ForwardRequest {
    /// The client's packet, as it came (its id is replaced when sent).
    pub packet: Vec<u8>,
    pub question: Question,
    pub client_id: u16,
    /// How large an answer the client can take (the UDP limit; 65535 over TCP).
    pub limit: usize,
    /// The asker's own upstream resolvers; empty means the network's.
    pub upstreams: Vec<IpAddr>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to send.
    Drop,
    /// This answer, already within the client's size limit.
    Reply(Vec<u8>),
    Forward(ForwardRequest),
}

/// The size limit of an answer to `query` over `transport`: 512 without EDNS, the advertised
/// size (at least 512, at most [`MAX_UDP`]) with it, 65535 over TCP.
pub fn answer_limit(query: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => MAX_MESSAGE,
        Transport::Udp => {
            query.edns.as_ref().map_or(UDP_MIN, |e| (e.udp_size as usize).clamp(UDP_MIN, MAX_UDP))
        }
    }
}

pub fn decide(
    packet: &[u8],
    from: IpAddr,
    transport: Transport,
    view: &View,
    policy: &Policy,
) -> Decision {
    let Ok(header) = Header::parse(packet) else { return Decision::Drop };
    if header.qr {
        return Decision::Drop;
    }
    let query = match Message::parse(packet) {
        Ok(m) => m,
        Err(_) => return Decision::Reply(header_only(&header, rcode::FORMERR)),
    };
    let limit = answer_limit(&query, transport);
    let reply = |m: Message| Decision::Reply(m.encode_within(limit));
    let mut response = Message::response_to(&query, ADVERTISED_UDP);
    response.header.ra = !policy.internal;
    if header.opcode != OPCODE_QUERY {
        response.set_rcode(rcode::NOTIMP);
        return reply(response);
    }
    if query.questions.len() != 1 {
        response.questions.clear();
        response.set_rcode(rcode::FORMERR);
        return reply(response);
    }
    if query.edns.as_ref().is_some_and(|e| e.version > 0) {
        response.set_rcode(rcode::BADVERS);
        return reply(response);
    }
    let Some(requester) = view.requester(&from) else {
        response.set_rcode(rcode::REFUSED);
        return reply(response);
    };
    let q = &query.questions[0];
    if q.qclass == CLASS_IN || q.qclass == CLASS_ANY {
        if matches!(q.qtype, rtype::PTR | rtype::ANY) {
            if let Some(target) = view.ptr(requester, &q.name) {
                response.header.aa = true;
                response.answers.push(Record::new(q.name.clone(), TTL, RData::Ptr(target)));
                return reply(response);
            }
        }
        match view.find(requester, &q.name) {
            Found::Containers(list) => {
                response.header.aa = true;
                for c in list {
                    if matches!(q.qtype, rtype::A | rtype::ANY) {
                        for a in &c.ipv4 {
                            response.answers.push(Record::new(q.name.clone(), TTL, RData::A(*a)));
                        }
                    }
                    if matches!(q.qtype, rtype::AAAA | rtype::ANY) {
                        for a in &c.ipv6 {
                            response.answers.push(Record::new(
                                q.name.clone(),
                                TTL,
                                RData::Aaaa(*a),
                            ));
                        }
                    }
                }
                return reply(response);
            }
            Found::Apex => {
                response.header.aa = true;
                return reply(response);
            }
            Found::UnknownInDomain => {
                response.header.aa = true;
                response.set_rcode(rcode::NXDOMAIN);
                return reply(response);
            }
            Found::NotHere => {}
        }
    }
    if q.name.label_count() == 1 || policy.internal {
        response.set_rcode(rcode::NXDOMAIN);
        return reply(response);
    }
    Decision::Forward(ForwardRequest {
        packet: packet.to_vec(),
        question: q.clone(),
        client_id: header.id,
        limit,
        upstreams: requester.dns.clone(),
    })
}

/// An answer with only a header: for a query that cannot be read past it.
pub fn header_only(query: &Header, code: u16) -> Vec<u8> {
    let m = Message {
        header: Header {
            id: query.id,
            qr: true,
            opcode: query.opcode,
            rd: query.rd,
            rcode: (code & 0xF) as u8,
            ..Header::default()
        },
        ..Message::default()
    };
    m.encode()
}

/// SERVFAIL for a query that could not be answered (no upstream answered in time).
pub fn servfail(request: &ForwardRequest) -> Vec<u8> {
    let Ok(query) = Message::parse(&request.packet) else {
        let header = Header::parse(&request.packet).unwrap_or_default();
        return header_only(&header, rcode::SERVFAIL);
    };
    let mut m = Message::response_to(&query, ADVERTISED_UDP);
    m.header.ra = true;
    m.set_rcode(rcode::SERVFAIL);
    m.encode_within(request.limit)
}

/// An upstream's answer, given back its client's id and fitted to the client's limit: as it
/// came when it fits (the usual case: the client's EDNS size was passed on), else re-written
/// within the limit with TC set, so the client asks again over TCP.
pub fn relay(mut answer: Vec<u8>, request: &ForwardRequest) -> Vec<u8> {
    crate::wire::set_id(&mut answer, request.client_id);
    if answer.len() <= request.limit {
        return answer;
    }
    match Message::parse(&answer) {
        Ok(m) => m.encode_within(request.limit),
        Err(_) => {
            let header = Header::parse(&answer).unwrap_or_default();
            let mut out = header_only(&header, rcode::SERVFAIL);
            set_tc(&mut out);
            out
        }
    }
}

fn set_tc(msg: &mut [u8]) {
    if let Some(b) = msg.get_mut(2) {
        *b |= 0x02;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{reverse_name, ContainerRecord, RecordsDoc, Table};
    use crate::wire::{Edns, Name};
    use std::collections::HashMap;

    fn view() -> View {
        let mut doc = RecordsDoc::new("web", Some("dns.ns"));
        doc.upsert(ContainerRecord {
            id: "a1b2c3d4e5f6a7b8c9d0".into(),
            name: "db".into(),
            aliases: vec!["database".into()],
            ipv4: vec!["198.51.100.2".parse().unwrap()],
            ipv6: vec!["2001:db8:a::2".parse().unwrap()],
            ..ContainerRecord::default()
        });
        doc.upsert(ContainerRecord {
            id: "ffff".into(),
            name: "client".into(),
            ipv4: vec!["198.51.100.3".parse().unwrap()],
            dns: vec!["192.0.2.53".parse().unwrap()],
            ..ContainerRecord::default()
        });
        View { own: Table::from_doc(doc).0, siblings: HashMap::new() }
    }

    const CLIENT: &str = "198.51.100.3";

    fn ask(name: &str, qtype: u16) -> Vec<u8> {
        Message {
            header: Header { id: 0x4242, rd: true, ..Header::default() },
            questions: vec![Question {
                name: Name::from_ascii(name).unwrap(),
                qtype,
                qclass: CLASS_IN,
            }],
            ..Message::default()
        }
        .encode()
    }

    fn answer(packet: &[u8], from: &str, policy: Policy) -> Message {
        match decide(packet, from.parse().unwrap(), Transport::Udp, &view(), &policy) {
            Decision::Reply(bytes) => Message::parse(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_name_of_the_network_is_answered_with_its_addresses_authoritatively() {
        let m = answer(&ask("DB", rtype::A), CLIENT, Policy::default());
        assert_eq!(m.header.id, 0x4242);
        assert!(m.header.qr && m.header.aa && m.header.rd && m.header.ra);
        assert_eq!(m.rcode(), rcode::NOERROR);
        assert_eq!(
            m.answers,
            vec![Record::new(
                Name::from_ascii("DB").unwrap(),
                TTL,
                RData::A("198.51.100.2".parse().unwrap())
            )]
        );
        let m = answer(&ask("database.dns.ns", rtype::AAAA), CLIENT, Policy::default());
        assert_eq!(m.answers[0].data, RData::Aaaa("2001:db8:a::2".parse().unwrap()));
        let m = answer(&ask("db", rtype::ANY), CLIENT, Policy::default());
        assert_eq!(m.answers.len(), 2);
        let m = answer(&ask("db", rtype::MX), CLIENT, Policy::default());
        assert!(m.answers.is_empty() && m.rcode() == rcode::NOERROR && m.header.aa);
        let m = answer(&ask("client", rtype::AAAA), CLIENT, Policy::default());
        assert!(m.answers.is_empty() && m.rcode() == rcode::NOERROR, "no IPv6 address: no data");
    }

    #[test]
    fn a_reverse_name_of_a_container_is_answered_with_its_name() {
        let q = ask(&reverse_name("2001:db8:a::2".parse().unwrap()).to_string(), rtype::PTR);
        let m = answer(&q, CLIENT, Policy::default());
        assert_eq!(m.answers[0].data, RData::Ptr(Name::from_ascii("db.dns.ns").unwrap()));
    }

    #[test]
    fn unknown_names_in_the_domain_and_single_labels_are_nxdomain_never_forwarded() {
        for n in ["nope.dns.ns", "nope"] {
            let m = answer(&ask(n, rtype::A), CLIENT, Policy::default());
            assert_eq!(m.rcode(), rcode::NXDOMAIN, "{n}");
        }
        assert!(answer(&ask("dns.ns", rtype::A), CLIENT, Policy::default()).header.aa);
    }

    #[test]
    fn other_names_are_forwarded_with_the_askers_own_upstreams_unless_internal() {
        let q = ask("example.org", rtype::A);
        match decide(&q, CLIENT.parse().unwrap(), Transport::Udp, &view(), &Policy::default()) {
            Decision::Forward(f) => {
                assert_eq!(f.client_id, 0x4242);
                assert_eq!(f.packet, q);
                assert_eq!(f.limit, 512);
                assert_eq!(f.upstreams, vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
        let m = answer(&q, CLIENT, Policy { internal: true });
        assert_eq!(m.rcode(), rcode::NXDOMAIN);
        assert!(!m.header.ra);
    }

    #[test]
    fn strangers_are_refused_even_for_names_of_the_network() {
        let m = answer(&ask("db", rtype::A), "198.51.100.200", Policy::default());
        assert_eq!(m.rcode(), rcode::REFUSED);
        assert!(m.answers.is_empty());
        let m = answer(&ask("example.org", rtype::A), "192.0.2.9", Policy::default());
        assert_eq!(m.rcode(), rcode::REFUSED);
    }

    #[test]
    fn malformed_and_unsupported_queries_get_the_rcode_that_says_so() {
        let from: IpAddr = CLIENT.parse().unwrap();
        let d = |p: &[u8]| decide(p, from, Transport::Udp, &view(), &Policy::default());
        assert_eq!(d(b"\x01\x02\x03"), Decision::Drop);
        let mut response = ask("db", rtype::A);
        response[2] |= 0x80;
        assert_eq!(d(&response), Decision::Drop, "responses are never answered");
        let mut cut = ask("db", rtype::A);
        cut.truncate(cut.len() - 3);
        let Decision::Reply(r) = d(&cut) else { panic!() };
        let r = Message::parse(&r).unwrap();
        assert_eq!((r.header.id, r.rcode()), (0x4242, rcode::FORMERR));
        let mut notify = ask("db", rtype::A);
        notify[2] |= 4 << 3;
        let Decision::Reply(r) = d(&notify) else { panic!() };
        assert_eq!(Message::parse(&r).unwrap().rcode(), rcode::NOTIMP);
        let mut two = Message::parse(&ask("db", rtype::A)).unwrap();
        two.questions.push(two.questions[0].clone());
        let Decision::Reply(r) = d(&two.encode()) else { panic!() };
        assert_eq!(Message::parse(&r).unwrap().rcode(), rcode::FORMERR);
        let mut v1 = Message::parse(&ask("db", rtype::A)).unwrap();
        v1.edns = Some(Edns { udp_size: 1232, version: 1, ..Edns::default() });
        let Decision::Reply(r) = d(&v1.encode()) else { panic!() };
        assert_eq!(Message::parse(&r).unwrap().rcode(), rcode::BADVERS);
    }

    #[test]
    fn a_relayed_answer_gets_the_clients_id_and_fits_its_limit() {
        let request = ForwardRequest {
            packet: ask("example.org", rtype::A),
            question: Message::parse(&ask("example.org", rtype::A)).unwrap().questions[0].clone(),
            client_id: 0x4242,
            limit: 512,
            upstreams: vec![],
        };
        let mut up = Message::response_to(&Message::parse(&request.packet).unwrap(), 0);
        up.header.id = 0x1111;
        up.answers.push(Record::new(
            request.question.name.clone(),
            5,
            RData::A("203.0.113.7".parse().unwrap()),
        ));
        let small = relay(up.encode(), &request);
        assert_eq!(Message::parse(&small).unwrap().header.id, 0x4242);
        assert_eq!(Message::parse(&small).unwrap().answers, up.answers);
        for i in 0..60u8 {
            up.answers.push(Record::new(
                request.question.name.clone(),
                5,
                RData::A([203, 0, 113, i].into()),
            ));
        }
        let big = relay(up.encode(), &request);
        assert!(big.len() <= 512);
        let m = Message::parse(&big).unwrap();
        assert!(m.header.tc);
        assert_eq!(m.header.id, 0x4242);
        let s = Message::parse(&servfail(&request)).unwrap();
        assert_eq!((s.header.id, s.rcode()), (0x4242, rcode::SERVFAIL));
    }

    #[test]
    fn random_packets_from_a_member_never_panic_the_decision() {
        let v = view();
        let from: IpAddr = CLIENT.parse().unwrap();
        let mut rng = crate::wire::FuzzRng::new(9);
        let seeds = [
            ask("db", rtype::A),
            ask("example.org", rtype::AAAA),
            ask(&reverse_name(from).to_string(), rtype::PTR),
        ];
        for round in 0..3000 {
            let mut p = seeds[round % seeds.len()].clone();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(p.len());
                match rng.below(3) {
                    0 => p[at] = rng.next() as u8,
                    1 => p.truncate(at.max(1)),
                    _ => p.insert(at, rng.next() as u8),
                }
            }
            for t in [Transport::Udp, Transport::Tcp] {
                if let Decision::Reply(r) = decide(&p, from, t, &v, &Policy::default()) {
                    assert!(t == Transport::Tcp || r.len() <= MAX_UDP);
                    assert!(Header::parse(&r).unwrap().qr);
                }
            }
        }
    }
}
