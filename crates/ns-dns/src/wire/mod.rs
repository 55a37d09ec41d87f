//! The DNS wire format, written for this crate: names with compression (read with loop
//! protection, written against earlier names), messages with the header, the question, A,
//! AAAA, PTR, CNAME, NS, MX, SRV and SOA data (any other type kept as bytes), EDNS0, truncation
//! to a size limit with TC, and TCP framing. Nothing here does I/O.

mod error;
mod frame;
mod message;
mod name;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) use fuzz_tests::Rng as FuzzRng;

pub use error::WireError;
pub use frame::{frame, FrameReader};
pub use message::{
    rcode, rtype, set_id, Edns, Header, Message, Question, RData, Record, CLASS_ANY, CLASS_IN,
    MAX_MESSAGE, OPCODE_QUERY, UDP_MIN,
};
pub use name::{Labels, Name, MAX_LABEL, MAX_NAME};
