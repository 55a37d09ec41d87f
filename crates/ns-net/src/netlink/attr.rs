//! Netlink messages as bytes: a request builder (header, fixed part, attributes, nests) and an
//! attribute parser that checks every length it reads.

/// The length of a netlink message header (`struct nlmsghdr`).
pub(crate) const NLMSG_HDRLEN: usize = 16;

pub(crate) const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_HDRLEN: usize = 4;

pub(crate) fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: the header is filled in when it is sent.
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Request {
    pub fn new(ty: u16, flags: u16) -> Request {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        Request { buf, nests: Vec::new() }
    }

    pub(crate) fn add_flags(&mut self, flags: u16) {
        let f = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | flags;
        self.buf[6..8].copy_from_slice(&f.to_ne_bytes());
    }

    /// Raw bytes of the fixed part (`ifinfomsg`, `ifaddrmsg`, `rtmsg`), padded.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }

    /// A NUL-terminated string.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nested attribute; attributes until [`Request::end`] go inside it.
    pub fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The message with its length and sequence number.
    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        while !self.nests.is_empty() {
            self.end();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }

    #[cfg(test)]
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf[NLMSG_HDRLEN..]
    }
}

/// The attributes of a payload: (type without flags, value). Stops at the first attribute whose
/// length does not fit.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: buf }
    }

    /// The attributes after a fixed part of `skip` bytes (the `ifinfomsg` of a link).
    pub fn after(buf: &'a [u8], skip: usize) -> Attrs<'a> {
        Attrs { rest: buf.get(align(skip)..).unwrap_or(&[]) }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[NLA_HDRLEN..len];
        self.rest = self.rest.get(align(len)..).unwrap_or(&[]);
        Some((ty, value))
    }
}

/// A string attribute, without its NUL.
pub(crate) fn string(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

pub(crate) fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

/// An address attribute of the given family: 4 or 16 bytes.
pub(crate) fn ip_of(family: u8, v: &[u8]) -> Option<std::net::IpAddr> {
    match family as i32 {
        libc::AF_INET => {
            let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
            Some(std::net::IpAddr::from(b))
        }
        libc::AF_INET6 => {
            let b: [u8; 16] = v.get(..16)?.try_into().ok()?;
            Some(std::net::IpAddr::from(b))
        }
        _ => None,
    }
}

pub(crate) fn ip_bytes(ip: &std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_are_sized_and_parse_back() {
        let mut r = Request::new(16, 0);
        r.bytes(&[0; 16]).attr_str(3, "ns-web").begin(18).attr_str(1, "bridge").end();
        r.attr_u32(4, 1500);
        let p = r.payload().to_vec();
        let got: Vec<(u16, Vec<u8>)> = Attrs::after(&p, 16).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(string(&got[0].1), "ns-web");
        assert_eq!(got[1].0, 18);
        let inner: Vec<_> = Attrs::new(&got[1].1).collect();
        assert_eq!(inner.len(), 1);
        assert_eq!(string(inner[0].1), "bridge");
        assert_eq!(u32_of(&got[2].1), Some(1500));
    }

    #[test]
    fn truncated_attributes_end_the_walk_without_panicking() {
        let mut r = Request::new(16, 0);
        r.attr_str(3, "eth0").attr_u32(4, 9000);
        let p = r.payload().to_vec();
        for cut in 0..p.len() {
            let n = Attrs::new(&p[..cut]).count();
            assert!(n <= 2);
        }
        assert_eq!(Attrs::new(&[0xff, 0xff, 0, 0]).count(), 0);
        assert_eq!(Attrs::new(&[1, 0, 0, 0]).count(), 0);
        assert_eq!(ip_of(libc::AF_INET as u8, &[1, 2]), None);
        assert_eq!(u32_of(&[1]), None);
    }
}
