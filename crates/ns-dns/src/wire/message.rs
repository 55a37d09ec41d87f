//! DNS messages (RFC 1035 §4): the header, the question, the three record sections, and EDNS0
//! (RFC 6891) taken out of the additional section into [`Edns`]. Reading never panics and
//! allocates only as records are actually found (counts in the header are not trusted);
//! writing compresses names and can stop at a size limit, setting TC as RFC 2181 §9 says.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::WireError;
use super::name::{Compressor, Name};

/// Record types this crate reads or writes by name; any other is kept as opaque data.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const ANY: u16 = 255;
}

/// Response codes; values above 15 need EDNS (the high bits live in the OPT record).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const BADVERS: u16 = 16;
}

pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;
pub const OPCODE_QUERY: u8 = 0;
/// The classic limit of a UDP message without EDNS.
pub const UDP_MIN: usize = 512;
/// The largest DNS message (a TCP frame's length is 16 bits).
pub const MAX_MESSAGE: usize = 65535;

/// The fixed 12 bytes at the start of every message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// A response (set) or a query.
    pub qr: bool,
    pub opcode: u8,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated: the answer did not fit; ask again over TCP.
    pub tc: bool,
    /// Recursion desired (copied from query to response).
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    pub ad: bool,
    pub cd: bool,
    /// The low four bits of the response code.
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub const LEN: usize = 12;

    pub fn parse(msg: &[u8]) -> Result<Header, WireError> {
        let h = msg.get(..Header::LEN).ok_or(WireError::Short { what: "header", at: 0 })?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let flags = word(2);
        Ok(Header {
            id: word(0),
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xF) as u8,
            aa: flags & 0x0400 != 0,
            tc: flags & 0x0200 != 0,
            rd: flags & 0x0100 != 0,
            ra: flags & 0x0080 != 0,
            ad: flags & 0x0020 != 0,
            cd: flags & 0x0010 != 0,
            rcode: (flags & 0xF) as u8,
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    pub fn flags(&self) -> u16 {
        let bit = |b: bool, v: u16| if b { v } else { 0 };
        bit(self.qr, 0x8000)
            | ((self.opcode as u16 & 0xF) << 11)
            | bit(self.aa, 0x0400)
            | bit(self.tc, 0x0200)
            | bit(self.rd, 0x0100)
            | bit(self.ra, 0x0080)
            | bit(self.ad, 0x0020)
            | bit(self.cd, 0x0010)
            | (self.rcode as u16 & 0xF)
    }

    fn write(&self, buf: &mut [u8]) {
        for (i, w) in
            [self.id, self.flags(), self.qdcount, self.ancount, self.nscount, self.arcount]
                .iter()
                .enumerate()
        {
            buf[i * 2..i * 2 + 2].copy_from_slice(&w.to_be_bytes());
        }
    }
}

/// Replace the id of a message in place (a relayed answer gets its client's id back).
pub fn set_id(msg: &mut [u8], id: u16) {
    if let Some(head) = msg.get_mut(..2) {
        head.copy_from_slice(&id.to_be_bytes());
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    /// The question at `pos`, and the offset after it.
    pub fn parse(msg: &[u8], pos: usize) -> Result<(Question, usize), WireError> {
        let (name, pos) = Name::parse(msg, pos)?;
        let f = msg.get(pos..pos + 4).ok_or(WireError::Short { what: "question", at: pos })?;
        let q = Question {
            name,
            qtype: u16::from_be_bytes([f[0], f[1]]),
            qclass: u16::from_be_bytes([f[2], f[3]]),
        };
        Ok((q, pos + 4))
    }

    /// The same question, the name compared without case (how an answer is matched to the
    /// query it answers).
    pub fn same_as(&self, other: &Question) -> bool {
        self.qtype == other.qtype
            && self.qclass == other.qclass
            && self.name.eq_ignore_case(&other.name)
    }
}

/// Record data: the types whose data holds names are decoded (their names may be compressed
/// and must be rewritten when the message is); others are kept as their bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(Name),
    Cname(Name),
    Ptr(Name),
    Mx {
        preference: u16,
        exchange: Name,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Soa {
        mname: Name,
        rname: Name,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// Any other type (TXT, CAA, DNSKEY, …): opaque, as RFC 3597 treats unknown types.
    Other(Vec<u8>),
}

impl RData {
    fn parse(msg: &[u8], rtype: u16, start: usize, len: usize) -> Result<RData, WireError> {
        let end = start + len;
        let data =
            msg.get(start..end).ok_or(WireError::Short { what: "record data", at: start })?;
        let bad = || WireError::RDataLength { rtype, len };
        // A name inside the data: it must end inside the data too.
        let name_at = |pos: usize| -> Result<(Name, usize), WireError> {
            let (n, next) = Name::parse(msg, pos)?;
            if next > end {
                return Err(bad());
            }
            Ok((n, next))
        };
        let u16_at = |pos: usize| -> Result<u16, WireError> {
            let b = msg.get(pos..pos + 2).filter(|_| pos + 2 <= end).ok_or_else(bad)?;
            Ok(u16::from_be_bytes([b[0], b[1]]))
        };
        let rdata = match rtype {
            rtype::A => RData::A(Ipv4Addr::from(<[u8; 4]>::try_from(data).map_err(|_| bad())?)),
            rtype::AAAA => {
                RData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(data).map_err(|_| bad())?))
            }
            rtype::NS | rtype::CNAME | rtype::PTR => {
                let (n, next) = name_at(start)?;
                if next != end {
                    return Err(bad());
                }
                match rtype {
                    rtype::NS => RData::Ns(n),
                    rtype::CNAME => RData::Cname(n),
                    _ => RData::Ptr(n),
                }
            }
            rtype::MX => {
                let preference = u16_at(start)?;
                let (exchange, next) = name_at(start + 2)?;
                if next != end {
                    return Err(bad());
                }
                RData::Mx { preference, exchange }
            }
            rtype::SRV => {
                let (priority, weight, port) =
                    (u16_at(start)?, u16_at(start + 2)?, u16_at(start + 4)?);
                let (target, next) = name_at(start + 6)?;
                if next != end {
                    return Err(bad());
                }
                RData::Srv { priority, weight, port, target }
            }
            rtype::SOA => {
                let (mname, next) = name_at(start)?;
                let (rname, next) = name_at(next)?;
                let nums = msg.get(next..next + 20).filter(|_| next + 20 == end).ok_or_else(bad)?;
                let n =
                    |i: usize| u32::from_be_bytes([nums[i], nums[i + 1], nums[i + 2], nums[i + 3]]);
                RData::Soa {
                    mname,
                    rname,
                    serial: n(0),
                    refresh: n(4),
                    retry: n(8),
                    expire: n(12),
                    minimum: n(16),
                }
            }
            _ => RData::Other(data.to_vec()),
        };
        Ok(rdata)
    }

    fn write(&self, buf: &mut Vec<u8>, names: &mut Compressor) {
        match self {
            RData::A(a) => buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => buf.extend_from_slice(&a.octets()),
            // RFC 3597 §4: only the types of RFC 1035 may have their names compressed.
            RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => names.write(buf, n, true),
            RData::Mx { preference, exchange } => {
                buf.extend_from_slice(&preference.to_be_bytes());
                names.write(buf, exchange, true);
            }
            RData::Srv { priority, weight, port, target } => {
                for v in [priority, weight, port] {
                    buf.extend_from_slice(&v.to_be_bytes());
                }
                names.write(buf, target, false);
            }
            RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
                names.write(buf, mname, true);
                names.write(buf, rname, true);
                for v in [serial, refresh, retry, expire, minimum] {
                    buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Other(data) => buf.extend_from_slice(data),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    /// A record of class IN whose type follows from its data (`Other` data needs
    /// [`Record::opaque`]).
    pub fn new(name: Name, ttl: u32, data: RData) -> Record {
        let rtype = match &data {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Ns(_) => rtype::NS,
            RData::Cname(_) => rtype::CNAME,
            RData::Ptr(_) => rtype::PTR,
            RData::Mx { .. } => rtype::MX,
            RData::Srv { .. } => rtype::SRV,
            RData::Soa { .. } => rtype::SOA,
            RData::Other(_) => rtype::TXT,
        };
        Record { name, rtype, class: CLASS_IN, ttl, data }
    }

    pub fn opaque(name: Name, rtype: u16, ttl: u32, data: Vec<u8>) -> Record {
        Record { name, rtype, class: CLASS_IN, ttl, data: RData::Other(data) }
    }

    fn parse(msg: &[u8], pos: usize) -> Result<(Record, usize), WireError> {
        let (name, pos) = Name::parse(msg, pos)?;
        let f = msg.get(pos..pos + 10).ok_or(WireError::Short { what: "record", at: pos })?;
        let rtype = u16::from_be_bytes([f[0], f[1]]);
        let class = u16::from_be_bytes([f[2], f[3]]);
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let len = u16::from_be_bytes([f[8], f[9]]) as usize;
        let data = RData::parse(msg, rtype, pos + 10, len)?;
        Ok((Record { name, rtype, class, ttl, data }, pos + 10 + len))
    }

    fn write(&self, buf: &mut Vec<u8>, names: &mut Compressor) {
        names.write(buf, &self.name, true);
        buf.extend_from_slice(&self.rtype.to_be_bytes());
        buf.extend_from_slice(&self.class.to_be_bytes());
        buf.extend_from_slice(&self.ttl.to_be_bytes());
        let at = buf.len();
        buf.extend_from_slice(&[0, 0]);
        self.data.write(buf, names);
        let len = (buf.len() - at - 2) as u16;
        buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// The EDNS0 pseudo-record (RFC 6891 §6): the sender's UDP payload size, the high bits of the
/// response code, the version, the DO flag, and the options, kept as their bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub ext_rcode: u8,
    pub version: u8,
    /// The flags word: DO (0x8000) and the reserved Z bits.
    pub flags: u16,
    pub options: Vec<u8>,
}

impl Edns {
    pub const DO: u16 = 0x8000;

    fn from_record(r: Record) -> Edns {
        let options = match r.data {
            RData::Other(d) => d,
            _ => Vec::new(),
        };
        Edns {
            udp_size: r.class,
            ext_rcode: (r.ttl >> 24) as u8,
            version: (r.ttl >> 16) as u8,
            flags: r.ttl as u16,
            options,
        }
    }

    fn write(&self, buf: &mut Vec<u8>) {
        buf.push(0);
        buf.extend_from_slice(&rtype::OPT.to_be_bytes());
        buf.extend_from_slice(&self.udp_size.to_be_bytes());
        let ttl =
            ((self.ext_rcode as u32) << 24) | ((self.version as u32) << 16) | self.flags as u32;
        buf.extend_from_slice(&ttl.to_be_bytes());
        buf.extend_from_slice(&(self.options.len() as u16).to_be_bytes());
        buf.extend_from_slice(&self.options);
    }

    fn wire_len(&self) -> usize {
        11 + self.options.len()
    }
}

/// A whole message. The header's counts are what was read; writing recomputes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    /// The additional section without the OPT record, which is in `edns`.
    pub additional: Vec<Record>,
    pub edns: Option<Edns>,
}

impl Message {
    /// Read a message. Bytes after the last announced record are ignored, as most
    /// implementations do; anything announced but missing or malformed is an error.
    pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
        if msg.len() > MAX_MESSAGE {
            return Err(WireError::TooLong);
        }
        let header = Header::parse(msg)?;
        let mut m = Message { header, ..Message::default() };
        let mut pos = Header::LEN;
        for _ in 0..header.qdcount {
            let (q, next) = Question::parse(msg, pos)?;
            m.questions.push(q);
            pos = next;
        }
        for (count, section) in [(header.ancount, 0), (header.nscount, 1), (header.arcount, 2)] {
            for _ in 0..count {
                let (r, next) = Record::parse(msg, pos)?;
                pos = next;
                match section {
                    0 => m.answers.push(r),
                    1 => m.authority.push(r),
                    _ if r.rtype == rtype::OPT => {
                        if m.edns.is_some() {
                            return Err(WireError::DuplicateOpt);
                        }
                        if !r.name.is_root() {
                            return Err(WireError::OptName);
                        }
                        m.edns = Some(Edns::from_record(r));
                    }
                    _ => m.additional.push(r),
                }
            }
        }
        Ok(m)
    }

    /// The full response code: the header's four bits and EDNS's eight high bits.
    pub fn rcode(&self) -> u16 {
        let high = self.edns.as_ref().map_or(0, |e| e.ext_rcode as u16);
        (high << 4) | self.header.rcode as u16
    }

    /// Set the response code; the high bits go to EDNS (which must then be present).
    pub fn set_rcode(&mut self, rcode: u16) {
        self.header.rcode = (rcode & 0xF) as u8;
        if let Some(e) = self.edns.as_mut() {
            e.ext_rcode = (rcode >> 4) as u8;
        }
    }

    /// An empty response to `query`: same id, opcode, RD and CD, its questions, QR set, and
    /// an OPT record when the query had one (RFC 6891 §7) advertising `udp_size`.
    pub fn response_to(query: &Message, udp_size: u16) -> Message {
        let q = &query.header;
        Message {
            header: Header {
                id: q.id,
                qr: true,
                opcode: q.opcode,
                rd: q.rd,
                cd: q.cd,
                ..Header::default()
            },
            questions: query.questions.clone(),
            edns: query.edns.as_ref().map(|e| Edns {
                udp_size,
                flags: e.flags & Edns::DO,
                ..Edns::default()
            }),
            ..Message::default()
        }
    }

    /// The message in wire form, whole.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_within(MAX_MESSAGE)
    }

    /// The message in wire form in at most `limit` bytes (512 at least): records that do not
    /// fit are left out, whole, and TC is set when an answer or authority record was left out
    /// (RFC 2181 §9: dropping additional data needs no TC). The header, the questions and the
    /// OPT record are always there.
    pub fn encode_within(&self, limit: usize) -> Vec<u8> {
        let limit = limit.clamp(UDP_MIN, MAX_MESSAGE);
        let mut buf = Vec::with_capacity(512);
        buf.resize(Header::LEN, 0);
        let mut names = Compressor::default();
        for q in &self.questions {
            names.write(&mut buf, &q.name, true);
            buf.extend_from_slice(&q.qtype.to_be_bytes());
            buf.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let reserve = self.edns.as_ref().map_or(0, Edns::wire_len);
        let mut counts = [0u16; 3];
        let mut truncated = false;
        'sections: for (i, records) in
            [&self.answers, &self.authority, &self.additional].iter().enumerate()
        {
            for r in records.iter() {
                let (len, mark) = (buf.len(), names.mark());
                r.write(&mut buf, &mut names);
                if buf.len() + reserve > limit {
                    buf.truncate(len);
                    names.forget_from(mark);
                    truncated = i < 2;
                    break 'sections;
                }
                counts[i] += 1;
            }
        }
        let mut header = self.header;
        header.qdcount = self.questions.len() as u16;
        header.ancount = counts[0];
        header.nscount = counts[1];
        header.arcount = counts[2];
        if let Some(e) = &self.edns {
            e.write(&mut buf);
            header.arcount += 1;
        }
        header.tc |= truncated;
        header.write(&mut buf[..Header::LEN]);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn query(id: u16, qname: &str, qtype: u16) -> Message {
        Message {
            header: Header { id, rd: true, ..Header::default() },
            questions: vec![Question { name: name(qname), qtype, qclass: CLASS_IN }],
            ..Message::default()
        }
    }

    fn with_edns(mut m: Message) -> Message {
        m.edns = Some(Edns { udp_size: 1232, ..Edns::default() });
        m
    }

    #[test]
    fn a_query_as_a_stub_resolver_sends_it_is_read_field_by_field() {
        // id 0xbeef, RD, one question db.dns.ns A IN, an OPT with size 1232 and DO, a cookie.
        let mut wire = b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01".to_vec();
        wire.extend_from_slice(b"\x02db\x03dns\x02ns\x00\x00\x01\x00\x01");
        wire.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x0c");
        wire.extend_from_slice(b"\x00\x0a\x00\x08\x01\x02\x03\x04\x05\x06\x07\x08");
        let m = Message::parse(&wire).unwrap();
        assert_eq!(m.header.id, 0xbeef);
        assert!(m.header.rd && !m.header.qr);
        assert_eq!(m.questions, vec![Question { name: name("db.dns.ns"), qtype: 1, qclass: 1 }]);
        let e = m.edns.as_ref().unwrap();
        assert_eq!((e.udp_size, e.version, e.flags), (1232, 0, Edns::DO));
        assert_eq!(e.options.len(), 12);
        assert!(m.additional.is_empty());
        assert_eq!(m.encode(), wire);
    }

    #[test]
    fn an_answer_is_written_with_its_names_compressed_and_read_back_equal() {
        let mut m = Message::response_to(&with_edns(query(7, "db.dns.ns", rtype::A)), 1232);
        m.header.aa = true;
        m.answers.push(Record::new(
            name("db.dns.ns"),
            60,
            RData::A(Ipv4Addr::new(198, 51, 100, 2)),
        ));
        m.answers.push(Record::new(name("db.dns.ns"), 60, RData::Cname(name("web.dns.ns"))));
        m.authority.push(Record::new(
            name("dns.ns"),
            60,
            RData::Soa {
                mname: name("ns.dns.ns"),
                rname: name("hostmaster.dns.ns"),
                serial: 1,
                refresh: 2,
                retry: 3,
                expire: 4,
                minimum: 5,
            },
        ));
        m.additional.push(Record::new(
            name("_x._tcp.dns.ns"),
            60,
            RData::Srv { priority: 1, weight: 2, port: 53, target: name("db.dns.ns") },
        ));
        m.additional.push(Record::new(
            name("db.dns.ns"),
            60,
            RData::Aaaa("2001:db8::2".parse().unwrap()),
        ));
        m.additional.push(Record::new(
            name("2.100.51.198.in-addr.arpa"),
            60,
            RData::Ptr(name("db")),
        ));
        m.additional.push(Record::new(
            name("dns.ns"),
            60,
            RData::Mx { preference: 5, exchange: name("db.dns.ns") },
        ));
        m.additional.push(Record::opaque(name("dns.ns"), rtype::TXT, 60, b"\x05hello".to_vec()));
        let wire = m.encode();
        // The answer's owner is a pointer to the question's name at offset 12.
        assert_eq!(&wire[12 + 15..12 + 17], b"\xC0\x0C");
        let back = Message::parse(&wire).unwrap();
        assert_eq!(back.header.ancount, 2);
        assert_eq!(back.header.arcount, 6);
        assert_eq!(Message { header: m.header, ..back.clone() }.encode(), wire);
        assert_eq!(back.answers, m.answers);
        assert_eq!(back.authority, m.authority);
        assert_eq!(back.additional, m.additional);
        assert_eq!(back.edns, m.edns);
    }

    #[test]
    fn an_answer_over_the_limit_keeps_whole_records_and_sets_tc() {
        let mut m = Message::response_to(&with_edns(query(9, "many.dns.ns", rtype::A)), 1232);
        for i in 0..100u8 {
            m.answers.push(Record::new(
                name("many.dns.ns"),
                60,
                RData::A(Ipv4Addr::new(198, 51, 100, i)),
            ));
        }
        let full = m.encode();
        assert!(full.len() > 512);
        let cut = m.encode_within(512);
        assert!(cut.len() <= 512);
        let back = Message::parse(&cut).unwrap();
        assert!(back.header.tc);
        assert!(!back.answers.is_empty() && back.answers.len() < 100);
        assert_eq!(back.answers[..], m.answers[..back.answers.len()]);
        assert!(back.edns.is_some(), "the OPT record stays in a truncated answer");
        assert!(!Message::parse(&full).unwrap().header.tc);
    }

    #[test]
    fn additional_records_that_do_not_fit_are_dropped_without_tc() {
        let mut m = Message::response_to(&query(9, "x.dns.ns", rtype::A), 0);
        m.answers.push(Record::new(name("x.dns.ns"), 60, RData::A(Ipv4Addr::LOCALHOST)));
        for _ in 0..40 {
            m.additional.push(Record::opaque(name("x.dns.ns"), rtype::TXT, 60, vec![9; 20]));
        }
        let back = Message::parse(&m.encode_within(512)).unwrap();
        assert!(!back.header.tc);
        assert_eq!(back.answers.len(), 1);
        assert!(back.additional.len() < 40);
    }

    #[test]
    fn the_extended_rcode_lives_in_the_opt_record() {
        let mut q = query(1, "x", rtype::A);
        q.edns = Some(Edns { udp_size: 4096, version: 1, ..Edns::default() });
        let mut r = Message::response_to(&q, 1232);
        r.set_rcode(rcode::BADVERS);
        let back = Message::parse(&r.encode()).unwrap();
        assert_eq!(back.rcode(), rcode::BADVERS);
        assert_eq!(back.header.rcode, 0);
        assert_eq!(back.edns.unwrap().ext_rcode, 1);
    }

    #[test]
    fn malformed_messages_are_errors_naming_what_is_wrong() {
        assert!(matches!(
            Message::parse(b"\x00\x01"),
            Err(WireError::Short { what: "header", .. })
        ));
        // Two questions announced, one present.
        let mut w = query(1, "a.b", rtype::A).encode();
        w[5] = 2;
        assert!(matches!(Message::parse(&w), Err(WireError::Short { .. })));
        // An A record with 5 bytes of data.
        let mut r = Message::response_to(&query(1, "a.b", rtype::A), 0);
        r.answers.push(Record::opaque(name("a.b"), rtype::A, 1, vec![1, 2, 3, 4, 5]));
        let w = r.encode();
        assert_eq!(Message::parse(&w), Err(WireError::RDataLength { rtype: rtype::A, len: 5 }));
        // A CNAME whose name runs past its data length.
        let mut r = Message::response_to(&query(1, "a.b", rtype::CNAME), 0);
        r.answers.push(Record::new(name("a.b"), 1, RData::Cname(name("longer.name"))));
        let mut w = r.encode();
        let len_at = w.len() - 2 - 13;
        w[len_at + 1] = 3;
        assert!(Message::parse(&w).is_err());
        // Two OPT records.
        let mut q = query(1, "a", rtype::A);
        q.edns = Some(Edns::default());
        let mut w = q.encode();
        let opt = w[w.len() - 11..].to_vec();
        w.extend_from_slice(&opt);
        w[11] = 2;
        assert_eq!(Message::parse(&w), Err(WireError::DuplicateOpt));
    }

    #[test]
    fn set_id_rewrites_only_the_id() {
        let mut w = query(0x1234, "a", rtype::A).encode();
        let before = w.clone();
        set_id(&mut w, 0xabcd);
        assert_eq!(&w[..2], b"\xab\xcd");
        assert_eq!(w[2..], before[2..]);
        let mut short = vec![1u8];
        set_id(&mut short, 5);
        assert_eq!(short, vec![1]);
    }
}
