//! Fuzz-style tests of the parser, bounded in time: random valid messages must read back equal
//! to what was written; random bytes and mutations of valid messages (flipped bits, pointers
//! aimed anywhere, bytes inserted, removed, cut off) must give an error or a message that
//! writes and reads back unchanged — never a panic, never a hang. `NS_DNS_FUZZ_ROUNDS`
//! raises the number of rounds for a longer run.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::message::{rtype, Edns, Header, Message, Question, RData, Record};
use super::name::Name;

/// xorshift64*: deterministic, so a failure names its seed and replays.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn rounds(default: usize) -> usize {
    std::env::var("NS_DNS_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn random_name(rng: &mut Rng) -> Name {
    const LABELS: [&[u8]; 8] =
        [b"db", b"DB", b"dns", b"ns", b"web", b"in-addr", b"arpa", b"x\x00."];
    let n = rng.below(5);
    let labels: Vec<&[u8]> = (0..n).map(|_| LABELS[rng.below(LABELS.len())]).collect();
    Name::from_labels(labels).unwrap()
}

fn random_record(rng: &mut Rng) -> Record {
    let owner = random_name(rng);
    let ttl = rng.next() as u32;
    let data = match rng.below(10) {
        0 => RData::A(Ipv4Addr::from(rng.next() as u32)),
        1 => RData::Aaaa(Ipv6Addr::from(((rng.next() as u128) << 64) | rng.next() as u128)),
        2 => RData::Ns(random_name(rng)),
        3 => RData::Cname(random_name(rng)),
        4 => RData::Ptr(random_name(rng)),
        5 => RData::Mx { preference: rng.next() as u16, exchange: random_name(rng) },
        6 => RData::Srv {
            priority: rng.next() as u16,
            weight: rng.next() as u16,
            port: rng.next() as u16,
            target: random_name(rng),
        },
        7 => RData::Soa {
            mname: random_name(rng),
            rname: random_name(rng),
            serial: rng.next() as u32,
            refresh: 1,
            retry: 2,
            expire: 3,
            minimum: 4,
        },
        _ => {
            let len = rng.below(40);
            return Record::opaque(
                owner,
                rtype::TXT,
                ttl,
                (0..len).map(|_| rng.next() as u8).collect(),
            );
        }
    };
    let mut r = Record::new(owner, ttl, data);
    r.class = if rng.chance(90) { 1 } else { rng.next() as u16 };
    r
}

fn random_message(rng: &mut Rng) -> Message {
    let bits = rng.next() as u16;
    let header =
        Header::parse(&[0, 0, (bits >> 8) as u8, bits as u8, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let mut m =
        Message { header: Header { id: rng.next() as u16, ..header }, ..Message::default() };
    for _ in 0..rng.below(3) {
        m.questions.push(Question { name: random_name(rng), qtype: rng.next() as u16, qclass: 1 });
    }
    for _ in 0..rng.below(6) {
        m.answers.push(random_record(rng));
    }
    for _ in 0..rng.below(3) {
        m.authority.push(random_record(rng));
    }
    for _ in 0..rng.below(3) {
        let mut r = random_record(rng);
        if r.rtype == rtype::OPT {
            r.rtype = rtype::TXT;
        }
        m.additional.push(r);
    }
    if rng.chance(50) {
        let len = rng.below(20);
        m.edns = Some(Edns {
            udp_size: rng.next() as u16,
            ext_rcode: rng.next() as u8,
            version: rng.next() as u8,
            flags: rng.next() as u16,
            options: (0..len).map(|_| rng.next() as u8).collect(),
        });
    }
    m
}

fn mutate(rng: &mut Rng, wire: &mut Vec<u8>) {
    if wire.is_empty() {
        wire.push(rng.next() as u8);
        return;
    }
    let at = rng.below(wire.len());
    match rng.below(7) {
        0 => wire[at] ^= 1 << rng.below(8),
        1 => wire[at] = rng.next() as u8,
        // A compression pointer aimed anywhere, forwards or at itself included.
        2 => {
            wire[at] = 0xC0 | (rng.below(0x40) as u8 & (wire.len() >> 8) as u8);
            if at + 1 < wire.len() {
                wire[at + 1] = rng.below(wire.len()) as u8;
            }
        }
        3 => wire.insert(at, rng.next() as u8),
        4 => {
            let end = (at + rng.below(8)).min(wire.len());
            wire.drain(at..end);
        }
        5 => wire.truncate(at),
        // The header's counts, raised or lowered.
        _ => {
            let i = 4 + rng.below(8);
            if i < wire.len() {
                wire[i] = rng.next() as u8;
            }
        }
    }
}

/// A message that was read must write and read back to itself.
fn check_canonical(m: &Message, what: &str) {
    let again = m.encode();
    let back = Message::parse(&again)
        .unwrap_or_else(|e| panic!("{what}: rewritten message fails to read: {e}"));
    assert_eq!(back.questions, m.questions, "{what}");
    assert_eq!(
        back.answers.len()
            + back.authority.len()
            + back.additional.len()
            + back.edns.iter().count(),
        m.answers.len() + m.authority.len() + m.additional.len() + m.edns.iter().count(),
        "{what}"
    );
    assert_eq!(back.encode(), again, "{what}");
}

#[test]
fn random_valid_messages_read_back_as_written() {
    let mut rng = Rng::new(1);
    for round in 0..rounds(3000) {
        let m = random_message(&mut rng);
        let wire = m.encode();
        let back = Message::parse(&wire).unwrap_or_else(|e| panic!("round {round}: {e}: {m:?}"));
        assert_eq!(back.questions, m.questions, "round {round}");
        assert_eq!(back.answers, m.answers, "round {round}");
        assert_eq!(back.authority, m.authority, "round {round}");
        assert_eq!(back.additional, m.additional, "round {round}");
        assert_eq!(back.edns, m.edns, "round {round}");
        assert_eq!(back.header.flags(), m.header.flags(), "round {round}");
    }
}

#[test]
fn mutated_messages_never_panic_and_what_is_read_is_canonical() {
    let mut rng = Rng::new(2);
    let mut parsed = 0;
    for round in 0..rounds(3000) {
        let mut wire = random_message(&mut rng).encode();
        for step in 0..8 {
            mutate(&mut rng, &mut wire);
            if let Ok(m) = Message::parse(&wire) {
                parsed += 1;
                check_canonical(&m, &format!("round {round} step {step}"));
            }
        }
    }
    // The mutations must leave some messages readable, or the check above checks nothing.
    assert!(parsed > 1000, "only {parsed} mutated messages were readable");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(3);
    for _ in 0..rounds(20000) {
        let len = rng.below(80);
        let mut wire: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Small counts, so the parser goes past the header often.
        if wire.len() >= 12 {
            for i in [4, 6, 8, 10] {
                wire[i] = 0;
                wire[i + 1] &= 3;
            }
        }
        if let Ok(m) = Message::parse(&wire) {
            check_canonical(&m, "random bytes");
        }
        let _ = Name::parse(&wire, rng.below(wire.len() + 1));
    }
}

#[test]
fn truncating_random_messages_always_fits_and_reads_back() {
    let mut rng = Rng::new(4);
    for round in 0..rounds(2000) {
        let mut m = random_message(&mut rng);
        for _ in 0..rng.below(60) {
            m.answers.push(random_record(&mut rng));
        }
        let limit = 512 + rng.below(1000);
        let wire = m.encode_within(limit);
        let back = Message::parse(&wire).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let whole = m.encode().len() <= limit;
        assert!(
            wire.len() <= limit
                || back.answers.is_empty()
                    && back.authority.is_empty()
                    && back.additional.is_empty(),
            "round {round}: {} bytes over a limit of {limit}",
            wire.len()
        );
        if whole {
            assert!(!back.header.tc || m.header.tc, "round {round}");
            assert_eq!(back.answers, m.answers, "round {round}");
        }
    }
}
