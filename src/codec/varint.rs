//! The variable byte integer (MQTT 5.0 section 1.5.5, 3.1.1 section 2.2.3): 7 bits per byte,
//! least significant group first, at most 4 bytes, shortest form required [MQTT-1.5.5-1].

use bytes::BufMut;

/// The largest value a 4-byte variable byte integer holds.
pub const MAX: u32 = 268_435_455;

/// What [`parse`] found at the start of a byte slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The value and the number of bytes it took.
    Value(u32, usize),
    /// The slice ends before the last byte of the integer.
    Incomplete,
    /// A fifth byte would be needed.
    TooLong,
    /// A longer encoding than necessary (a trailing zero group).
    NotMinimal,
}

/// Parses a variable byte integer from the front of `bytes`.
#[inline]
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = bytes.get(i) else {
            return Parsed::Incomplete;
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Parsed::NotMinimal;
            }
            return Parsed::Value(value, i + 1);
        }
    }
    Parsed::TooLong
}

/// The number of bytes `value` takes (1..=4). `value` must be at most [`MAX`].
#[inline]
pub fn len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` (at most [`MAX`]).
#[inline]
pub fn write(buf: &mut impl BufMut, value: usize) {
    debug_assert!(value <= MAX as usize);
    let mut v = value;
    loop {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if v == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, v);
        out
    }

    /// §1.5.5 the boundary values of table 1-1.
    #[test]
    fn boundaries_of_table_1_1() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(v), bytes, "{v}");
            assert_eq!(len(v), bytes.len(), "{v}");
            assert_eq!(parse(bytes), Parsed::Value(v as u32, bytes.len()), "{v}");
            assert_eq!(parse(&bytes[..bytes.len() - 1]), Parsed::Incomplete, "{v}");
        }
    }

    /// §1.5.5 at most four bytes.
    #[test]
    fn fifth_byte_is_too_long() {
        assert_eq!(parse(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]), Parsed::TooLong);
        assert_eq!(parse(&[0x80, 0x80, 0x80, 0x80]), Parsed::TooLong);
    }

    /// [MQTT-1.5.5-1] the encoded value must use the minimum number of bytes.
    #[test]
    fn mqtt_1_5_5_1_non_minimal_rejected() {
        assert_eq!(parse(&[0x80, 0x00]), Parsed::NotMinimal);
        assert_eq!(parse(&[0xFF, 0x80, 0x00]), Parsed::NotMinimal);
        assert_eq!(parse(&[0x00, 0x00]), Parsed::Value(0, 1));
    }
}
