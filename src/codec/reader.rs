//! A bounded reader over one packet's bytes. It cannot read past the packet (running out is
//! [`DecodeError::Truncated`], naming the field), hands out payloads as zero-copy [`Bytes`]
//! slices, and [`Reader::finish`] demands that nothing is left over.
//!
//! Only primitive MQTT data types here (section 1.5); packet layouts live in the packet files.

use bytes::{Buf, Bytes};

use super::error::DecodeError;
use super::varint;

pub(crate) struct Reader {
    buf: Bytes,
    packet: &'static str,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: &'static str) -> Reader {
        Reader { buf, packet }
    }

    pub(crate) fn packet(&self) -> &'static str {
        self.packet
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                packet: self.packet,
                what,
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        match varint::parse(&self.buf) {
            varint::Parsed::Value(v, n) => {
                self.buf.advance(n);
                Ok(v)
            }
            varint::Parsed::Incomplete => Err(DecodeError::Truncated {
                packet: self.packet,
                what,
            }),
            varint::Parsed::TooLong => Err(DecodeError::VarintTooLong { what }),
            varint::Parsed::NotMinimal => Err(DecodeError::VarintNotMinimal { what }),
        }
    }

    /// `n` bytes, sharing the packet's buffer.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// Binary data: a two-byte length and that many bytes (§1.5.6).
    pub(crate) fn binary(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let n = self.u16(what)? as usize;
        self.take(n, what)
    }

    /// A UTF-8 encoded string (§1.5.4): well-formed [MQTT-1.5.4-1], no U+0000 [MQTT-1.5.4-2].
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        self.with_str(what, str::to_owned)
    }

    /// Reads a UTF-8 encoded string like [`Reader::string`] and hands it to `f` without
    /// allocating.
    pub(crate) fn with_str<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&str) -> T,
    ) -> Result<T, DecodeError> {
        let n = self.u16(what)? as usize;
        self.need(n, what)?;
        let s =
            std::str::from_utf8(&self.buf[..n]).map_err(|_| DecodeError::InvalidUtf8 { what })?;
        if super::topic::has_nul(s.as_bytes()) {
            return Err(DecodeError::NullCharacter { what });
        }
        let out = f(s);
        self.buf.advance(n);
        Ok(out)
    }

    /// Everything left (the payload of PUBLISH).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// A reader over the next `n` bytes only (a property block).
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader, DecodeError> {
        let buf = self.take(n, what)?;
        Ok(Reader {
            buf,
            packet: self.packet,
        })
    }

    /// Demands that the packet has been read to its end.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if !self.buf.is_empty() {
            return Err(DecodeError::TrailingBytes {
                packet: self.packet,
                count: self.buf.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes), "TEST")
    }

    /// [MQTT-1.5.4-1] ill-formed UTF-8 is a malformed packet.
    #[test]
    fn mqtt_1_5_4_1_ill_formed_utf8() {
        // length 2, then an unpaired continuation byte and a surrogate half encoding start
        let mut r = reader(&[0x00, 0x02, 0xC3, 0x28]);
        assert_eq!(r.string("x"), Err(DecodeError::InvalidUtf8 { what: "x" }));
        // U+D800 encoded as UTF-8 (a surrogate) is ill-formed too
        let mut r = reader(&[0x00, 0x03, 0xED, 0xA0, 0x80]);
        assert_eq!(r.string("x"), Err(DecodeError::InvalidUtf8 { what: "x" }));
    }

    /// [MQTT-1.5.4-2] a string must not contain U+0000.
    #[test]
    fn mqtt_1_5_4_2_null_character() {
        let mut r = reader(&[0x00, 0x03, b'a', 0x00, b'b']);
        assert_eq!(r.string("x"), Err(DecodeError::NullCharacter { what: "x" }));
    }

    /// §1.5.4 a string is a two-byte length then the bytes; running out is truncation.
    #[test]
    fn string_length_prefix_and_truncation() {
        let mut r = reader(&[0x00, 0x02, b'h', b'i', 0x00, 0x05, b'a']);
        assert_eq!(r.string("x").unwrap(), "hi");
        assert_eq!(
            r.string("y"),
            Err(DecodeError::Truncated {
                packet: "TEST",
                what: "y"
            })
        );
    }

    /// §2.1.4 bytes left over inside a packet are an error, and a sub-reader stays in bounds.
    #[test]
    fn sub_reader_is_bounded_and_finish_rejects_leftovers() {
        let mut r = reader(&[1, 2, 3, 4]);
        let mut sub = r.sub(2, "props").unwrap();
        assert_eq!(sub.u16("a").unwrap(), 0x0102);
        assert_eq!(
            sub.u8("b"),
            Err(DecodeError::Truncated {
                packet: "TEST",
                what: "b"
            })
        );
        assert_eq!(r.u8("c").unwrap(), 3);
        assert_eq!(
            r.finish(),
            Err(DecodeError::TrailingBytes {
                packet: "TEST",
                count: 1
            })
        );
    }

    /// Payloads share the packet buffer instead of copying it.
    #[test]
    fn rest_is_zero_copy() {
        let buf = Bytes::from(vec![9u8; 64]);
        let base = buf.as_ptr();
        let mut r = Reader::new(buf, "TEST");
        r.u8("x").unwrap();
        let rest = r.rest();
        assert_eq!(rest.as_ptr(), base.wrapping_add(1));
        assert!(r.is_empty());
    }
}
