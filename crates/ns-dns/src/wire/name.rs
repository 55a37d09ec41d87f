//! Domain names (RFC 1035 §3.1, §4.1.4): kept in their uncompressed wire form, read with
//! compression pointers followed under a rule that makes every loop impossible, written with
//! compression against the names already in the message.

use std::fmt;

use super::error::WireError;

/// The longest name on the wire, length bytes and final zero included.
pub const MAX_NAME: usize = 255;
/// The longest label.
pub const MAX_LABEL: usize = 63;

/// A domain name: its labels in wire form (`\x02db\x03dns\x02ns\x00`), case preserved. Equality
/// is exact; [`Name::eq_ignore_case`] and [`Name::key`] compare as DNS does (ASCII only).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// A name from dotted text (`db.dns.ns`, with or without the final dot; `.` is the root).
    /// No escapes: this is for names we make (containers, aliases, domains), not for wire data.
    pub fn from_ascii(text: &str) -> Result<Name, WireError> {
        if text == "." {
            return Ok(Name::root());
        }
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        let mut wire = Vec::with_capacity(trimmed.len() + 2);
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(WireError::EmptyLabel(text.to_owned()));
            }
            if label.len() > MAX_LABEL {
                return Err(WireError::LabelTooLong(text.to_owned()));
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        if wire.len() > MAX_NAME {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// A name from its labels, first (leftmost) first.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Name, WireError> {
        let mut wire = Vec::new();
        for label in labels {
            if label.is_empty() {
                return Err(WireError::EmptyLabel(String::from_utf8_lossy(label).into_owned()));
            }
            if label.len() > MAX_LABEL {
                return Err(WireError::LabelTooLong(String::from_utf8_lossy(label).into_owned()));
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
            if wire.len() + 1 > MAX_NAME {
                return Err(WireError::NameTooLong);
            }
        }
        wire.push(0);
        Ok(Name { wire })
    }

    /// Read the name that starts at `start` in `msg`, following compression pointers. Returns
    /// the name and the offset just after it in the original stream.
    ///
    /// Loops are impossible: the first pointer must point before itself and every further
    /// pointer before the previous pointer's target, so targets strictly decrease; between
    /// two pointers the name only grows, and a name longer than 255 bytes is refused.
    pub fn parse(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
        let mut wire = Vec::with_capacity(32);
        let mut pos = start;
        let mut end = None;
        let mut bound: Option<usize> = None;
        loop {
            let len = *msg.get(pos).ok_or(WireError::Short { what: "name", at: pos })?;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    wire.push(0);
                    return Ok((Name { wire }, end.unwrap_or(pos + 1)));
                }
                0x00 => {
                    let l = len as usize;
                    let label = msg
                        .get(pos + 1..pos + 1 + l)
                        .ok_or(WireError::Short { what: "label", at: pos })?;
                    if wire.len() + 1 + l + 1 > MAX_NAME {
                        return Err(WireError::NameTooLong);
                    }
                    wire.push(len);
                    wire.extend_from_slice(label);
                    pos += 1 + l;
                }
                0xC0 => {
                    let low = *msg
                        .get(pos + 1)
                        .ok_or(WireError::Short { what: "compression pointer", at: pos })?;
                    let target = (((len & 0x3F) as usize) << 8) | low as usize;
                    if target >= bound.unwrap_or(pos) {
                        return Err(WireError::Pointer { at: pos, target });
                    }
                    end.get_or_insert(pos + 2);
                    bound = Some(target);
                    pos = target;
                }
                _ => return Err(WireError::LabelType(len, pos)),
            }
        }
    }

    /// The uncompressed wire form, final zero included.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, leftmost first (none for the root).
    pub fn labels(&self) -> Labels<'_> {
        Labels { wire: &self.wire, pos: 0 }
    }

    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// The lookup key: the wire form with ASCII letters lowercased. Two names are the same to
    /// DNS exactly when their keys are equal.
    pub fn key(&self) -> Vec<u8> {
        self.wire.to_ascii_lowercase()
    }

    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }

    /// Whether `suffix` is this name or an ancestor of it (label-aligned, case-insensitive).
    pub fn ends_with(&self, suffix: &Name) -> bool {
        self.strip_suffix(suffix).is_some()
    }

    /// This name without `suffix` (`db.dns.ns` minus `dns.ns` is `db`); `None` when `suffix`
    /// is not a label-aligned suffix; the root when the names are equal.
    pub fn strip_suffix(&self, suffix: &Name) -> Option<Name> {
        let mut offset = 0;
        loop {
            let rest = &self.wire[offset..];
            if rest.eq_ignore_ascii_case(&suffix.wire) {
                let mut wire = self.wire[..offset].to_vec();
                wire.push(0);
                return Some(Name { wire });
            }
            let len = *rest.first()? as usize;
            if len == 0 {
                return None;
            }
            offset += 1 + len;
        }
    }

    /// This name followed by `suffix` (`db` + `dns.ns`).
    pub fn concat(&self, suffix: &Name) -> Result<Name, WireError> {
        let mut wire = self.wire[..self.wire.len() - 1].to_vec();
        wire.extend_from_slice(&suffix.wire);
        if wire.len() > MAX_NAME {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }
}

/// The labels of a name, leftmost first.
pub struct Labels<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.get(self.pos)? as usize;
        if len == 0 {
            return None;
        }
        let label = self.wire.get(self.pos + 1..self.pos + 1 + len)?;
        self.pos += 1 + len;
        Some(label)
    }
}

/// Dotted, with the final dot, bytes outside printable ASCII as `\DDD`, and `.` and `\` inside a
/// label escaped (the presentation format of RFC 1035 §5.1).
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7E => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Where the names already written to a message start, for compression on output.
#[derive(Default)]
pub(crate) struct Compressor {
    /// (uncompressed suffix, offset in the message) for every suffix written out in full.
    written: Vec<(Vec<u8>, u16)>,
}

impl Compressor {
    /// Append `name` to `buf`, pointing to an earlier copy of its longest suffix already in
    /// the message when `compress` is set (exact bytes: case is kept as the client sent it).
    pub(crate) fn write(&mut self, buf: &mut Vec<u8>, name: &Name, compress: bool) {
        let wire = name.wire();
        let mut i = 0;
        loop {
            let len = wire[i] as usize;
            if len == 0 {
                buf.push(0);
                return;
            }
            let suffix = &wire[i..];
            if compress {
                if let Some((_, at)) = self.written.iter().find(|(s, _)| s.as_slice() == suffix) {
                    buf.extend_from_slice(&(0xC000 | at).to_be_bytes());
                    return;
                }
            }
            if buf.len() <= 0x3FFF {
                self.written.push((suffix.to_vec(), buf.len() as u16));
            }
            buf.extend_from_slice(&wire[i..i + 1 + len]);
            i += 1 + len;
        }
    }

    /// How many suffixes are known; with [`Compressor::forget_from`] it undoes a record that
    /// did not fit.
    pub(crate) fn mark(&self) -> usize {
        self.written.len()
    }

    pub(crate) fn forget_from(&mut self, mark: usize) {
        self.written.truncate(mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_become_wire_labels_and_print_back() {
        let n = Name::from_ascii("db.dns.ns").unwrap();
        assert_eq!(n.wire(), b"\x02db\x03dns\x02ns\x00");
        assert_eq!(n, Name::from_ascii("db.dns.ns.").unwrap());
        assert_eq!(n.to_string(), "db.dns.ns.");
        assert_eq!(Name::root().to_string(), ".");
        assert_eq!(Name::from_ascii(".").unwrap(), Name::root());
        assert_eq!(n.label_count(), 3);
    }

    #[test]
    fn bad_text_names_are_refused() {
        assert!(matches!(Name::from_ascii(""), Err(WireError::EmptyLabel(_))));
        assert!(matches!(Name::from_ascii("a..b"), Err(WireError::EmptyLabel(_))));
        assert!(matches!(Name::from_ascii(&"x".repeat(64)), Err(WireError::LabelTooLong(_))));
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(Name::from_ascii(&long), Err(WireError::NameTooLong));
    }

    #[test]
    fn case_is_kept_but_ignored_when_comparing() {
        let a = Name::from_ascii("DB.Dns.NS").unwrap();
        let b = Name::from_ascii("db.dns.ns").unwrap();
        assert_ne!(a, b);
        assert!(a.eq_ignore_case(&b));
        assert_eq!(a.key(), b.key());
        assert_eq!(a.to_string(), "DB.Dns.NS.");
    }

    #[test]
    fn suffixes_are_label_aligned() {
        let n = Name::from_ascii("db.dns.ns").unwrap();
        let d = Name::from_ascii("DNS.ns").unwrap();
        assert_eq!(n.strip_suffix(&d).unwrap(), Name::from_ascii("db").unwrap());
        assert_eq!(n.strip_suffix(&n).unwrap(), Name::root());
        assert!(n.strip_suffix(&Name::from_ascii("s.ns").unwrap()).is_none());
        assert!(n.ends_with(&Name::root()));
        assert_eq!(Name::from_ascii("db").unwrap().concat(&d).unwrap().to_string(), "db.DNS.ns.");
    }

    #[test]
    fn odd_bytes_are_escaped_when_printed() {
        let n = Name::from_labels([&b"a.b"[..], b"c\\", b"\x00\xff"]).unwrap();
        assert_eq!(n.to_string(), "a\\.b.c\\\\.\\000\\255.");
    }

    // RFC 1035 §4.1.4's example: F.ISI.ARPA at 20, FOO.F.ISI.ARPA at 40, ARPA at 64, root at 92.
    fn rfc_example() -> Vec<u8> {
        let mut m = vec![0u8; 100];
        m[20..32].copy_from_slice(b"\x01F\x03ISI\x04ARPA\x00");
        m[40..46].copy_from_slice(b"\x03FOO\xC0\x14");
        m[64..66].copy_from_slice(b"\xC0\x1A");
        m[92] = 0;
        m
    }

    #[test]
    fn compressed_names_are_read_as_rfc_1035_shows() {
        let m = rfc_example();
        assert_eq!(Name::parse(&m, 20).unwrap(), (Name::from_ascii("F.ISI.ARPA").unwrap(), 32));
        assert_eq!(Name::parse(&m, 40).unwrap(), (Name::from_ascii("FOO.F.ISI.ARPA").unwrap(), 46));
        assert_eq!(Name::parse(&m, 64).unwrap(), (Name::from_ascii("ARPA").unwrap(), 66));
        assert_eq!(Name::parse(&m, 92).unwrap(), (Name::root(), 93));
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // A pointer to itself, two pointers to each other, a forward pointer.
        assert!(matches!(Name::parse(b"\xC0\x00", 0), Err(WireError::Pointer { .. })));
        let mut m = b"\x01a\xC0\x04\x01b\xC0\x00".to_vec();
        assert!(matches!(Name::parse(&m, 4), Err(WireError::Pointer { .. })));
        m = b"\xC0\x02\x01a\x00".to_vec();
        assert!(matches!(Name::parse(&m, 0), Err(WireError::Pointer { .. })));
        // A chain that keeps pointing backwards ends; each step adds a label until too long.
        let mut chain = b"\x01x\x00".to_vec();
        let mut prev = 0u16;
        for _ in 0..200 {
            let here = chain.len() as u16;
            chain.extend_from_slice(b"\x01x");
            chain.extend_from_slice(&(0xC000 | prev).to_be_bytes());
            prev = here;
        }
        assert_eq!(Name::parse(&chain, 7).unwrap().0.to_string(), "x.x.x.");
        assert_eq!(Name::parse(&chain, prev as usize), Err(WireError::NameTooLong));
    }

    #[test]
    fn reserved_label_types_and_short_input_are_errors() {
        assert!(matches!(Name::parse(b"\x41a", 0), Err(WireError::LabelType(0x41, 0))));
        assert!(matches!(Name::parse(b"\x05ab", 0), Err(WireError::Short { .. })));
        assert!(matches!(Name::parse(b"\x01a", 0), Err(WireError::Short { .. })));
        assert!(matches!(Name::parse(b"\xC0", 0), Err(WireError::Short { .. })));
        assert!(matches!(Name::parse(b"", 0), Err(WireError::Short { .. })));
    }

    #[test]
    fn names_written_twice_become_pointers() {
        let mut buf = vec![0u8; 12];
        let mut c = Compressor::default();
        c.write(&mut buf, &Name::from_ascii("db.dns.ns").unwrap(), true);
        c.write(&mut buf, &Name::from_ascii("web.dns.ns").unwrap(), true);
        c.write(&mut buf, &Name::from_ascii("db.dns.ns").unwrap(), true);
        c.write(&mut buf, &Name::from_ascii("DB.dns.ns").unwrap(), true);
        assert_eq!(&buf[12..23], b"\x02db\x03dns\x02ns\x00");
        assert_eq!(&buf[23..29], b"\x03web\xC0\x0F");
        assert_eq!(&buf[29..31], b"\xC0\x0C");
        assert_eq!(&buf[31..36], b"\x02DB\xC0\x0F");
        assert_eq!(Name::parse(&buf, 23).unwrap().0.to_string(), "web.dns.ns.");
        assert_eq!(Name::parse(&buf, 31).unwrap().0.to_string(), "DB.dns.ns.");
    }
}
