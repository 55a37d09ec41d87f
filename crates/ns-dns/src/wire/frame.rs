//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by its length as two
//! bytes, and a connection may carry several queries in a row (pipelined).

/// `msg` with its two-byte length in front (`msg` is at most 65535 bytes: a message is).
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let len = msg.len().min(u16::MAX as usize);
    let mut out = Vec::with_capacity(len + 2);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&msg[..len]);
    out
}

/// Collects the bytes of a stream and hands out whole messages as they complete.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if one has arrived whole.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let rest = &self.buf[self.start..];
        let len = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let msg = rest.get(2..2 + len)?.to_vec();
        self.start += 2 + len;
        if self.start >= 4096 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(msg)
    }

    /// Bytes received that are not yet a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_anywhere_come_out_whole_and_in_order() {
        let mut stream = frame(b"first");
        stream.extend(frame(b""));
        stream.extend(frame(&[7u8; 300]));
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut r = FrameReader::default();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                r.push(piece);
                while let Some(m) = r.next_frame() {
                    out.push(m);
                }
            }
            assert_eq!(
                out,
                vec![b"first".to_vec(), Vec::new(), vec![7u8; 300]],
                "chunks of {chunk}"
            );
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut r = FrameReader::default();
        r.push(&[0, 5, b'a', b'b']);
        assert_eq!(r.next_frame(), None);
        assert_eq!(r.pending(), 4);
        r.push(b"cde");
        assert_eq!(r.next_frame(), Some(b"abcde".to_vec()));
    }
}
