//! Writing and sizing the primitive MQTT data types (section 1.5), with the checks a sender
//! owes: strings and binary data at most 65535 bytes, no U+0000 in strings.
//!
//! Sizing (`*_len`) validates; writing (`put_*`) assumes a prior successful sizing.

use bytes::{BufMut, BytesMut};

use super::error::EncodeError;

/// Encoded size of a UTF-8 string: its two-byte length plus its bytes.
#[inline]
pub(crate) fn str_len(s: &str, what: &'static str) -> Result<usize, EncodeError> {
    if s.len() > u16::MAX as usize {
        return Err(EncodeError::TooLong { what, len: s.len() });
    }
    if super::topic::has_nul(s.as_bytes()) {
        return Err(EncodeError::NullCharacter { what });
    }
    Ok(2 + s.len())
}

/// Encoded size of binary data: its two-byte length plus its bytes.
#[inline]
pub(crate) fn binary_len(b: &[u8], what: &'static str) -> Result<usize, EncodeError> {
    if b.len() > u16::MAX as usize {
        return Err(EncodeError::TooLong { what, len: b.len() });
    }
    Ok(2 + b.len())
}

#[inline]
pub(crate) fn put_str(buf: &mut BytesMut, s: &str) {
    put_binary(buf, s.as_bytes());
}

#[inline]
pub(crate) fn put_binary(buf: &mut BytesMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}
