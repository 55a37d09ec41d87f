//! What can be wrong with a message on the wire. Every parse returns one of these instead of
//! panicking, whatever the bytes.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends before the field it announces.
    #[error("message too short: {what} at offset {at} runs past its end")]
    Short { what: &'static str, at: usize },
    /// A label length byte with the reserved 0x40 or 0x80 bits (extended label types).
    #[error("label type {0:#04x} at offset {1} is not supported")]
    LabelType(u8, usize),
    /// A compression pointer that does not point backwards, so could loop.
    #[error("compression pointer at offset {at} to {target} does not point backwards")]
    Pointer { at: usize, target: usize },
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("label longer than 63 bytes in {0:?}")]
    LabelTooLong(String),
    #[error("empty label in name {0:?}")]
    EmptyLabel(String),
    #[error("more than one OPT record")]
    DuplicateOpt,
    #[error("OPT record owned by a name other than the root")]
    OptName,
    #[error("record data of type {rtype} is {len} bytes long, which is invalid for its type")]
    RDataLength { rtype: u16, len: usize },
    #[error("message longer than 65535 bytes")]
    TooLong,
}
