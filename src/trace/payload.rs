//! Payload labels: how a payload names the message it carries, so that checkers can follow a
//! message from its publish request to every delivery without looking inside the broker.
//!
//! - A workload payload is `<client>#<seq>` (`sensor-1#17`: the 17th message `sensor-1`
//!   published, counting from 1). To reach a configured size it is padded with `|` followed by
//!   `.` up to the size: `sensor-1#17|..........`. A size smaller than the label gives the bare
//!   label (the payload is never truncated).
//! - A will payload is `<client>#will-<n>`, `n` counting that client's CONNECTs from 1, so
//!   every connection's will is a distinct message.
//! - The label of a payload is its text up to the first `|`; an empty payload (a retained
//!   clear) has the empty label; a payload that is not UTF-8 is labelled `hex:` and its bytes
//!   in lower-case hex.
//!
//! Labels are not required to follow the `<client>#...` shape (a scenario may publish a fixed
//! text), but only labels that occur in exactly one publish request can be followed exactly
//! by the delivery and ordering checkers.

/// Separates the label from its padding.
pub const PAD_MARK: u8 = b'|';
/// The padding byte.
pub const PAD_BYTE: u8 = b'.';

/// The payload of the `seq`-th workload message of `client`, padded to `size` bytes.
pub fn workload_payload(client: &str, seq: u64, size: usize) -> Vec<u8> {
    padded(format!("{client}#{seq}"), size)
}

/// The will payload of `client` for its `connect_no`-th CONNECT.
pub fn will_payload(client: &str, connect_no: u64) -> Vec<u8> {
    format!("{client}#will-{connect_no}").into_bytes()
}

fn padded(label: String, size: usize) -> Vec<u8> {
    let mut out = label.into_bytes();
    if size > out.len() {
        out.push(PAD_MARK);
        out.resize(size, PAD_BYTE);
    }
    out
}

/// The label of a payload, as recorded in traces.
pub fn label(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) => text.split('|').next().unwrap_or("").to_string(),
        Err(_) => text_or_hex(payload),
    }
}

/// Bytes as a trace records them: the text if they are UTF-8, otherwise `hex:` and the bytes
/// in lower-case hex.
pub fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(4 + bytes.len() * 2);
            out.push_str("hex:");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

/// What a label says about its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelKind<'a> {
    /// `<client>#<seq>`.
    Workload { client: &'a str, seq: u64 },
    /// `<client>#will-<n>`.
    Will { client: &'a str, connect_no: u64 },
}

/// Parses a label of the documented shapes; `None` for any other text.
pub fn parse_label(label: &str) -> Option<LabelKind<'_>> {
    let (client, rest) = label.rsplit_once('#')?;
    if client.is_empty() {
        return None;
    }
    if let Some(n) = rest.strip_prefix("will-") {
        return digits(n).map(|connect_no| LabelKind::Will { client, connect_no });
    }
    digits(rest).map(|seq| LabelKind::Workload { client, seq })
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_payload_is_padded_to_size_and_labels_back() {
        let p = workload_payload("sensor-1", 17, 24);
        assert_eq!(p.len(), 24);
        assert_eq!(&p[..12], b"sensor-1#17|");
        assert!(p[12..].iter().all(|&b| b == PAD_BYTE));
        assert_eq!(label(&p), "sensor-1#17");
        assert_eq!(
            parse_label("sensor-1#17"),
            Some(LabelKind::Workload {
                client: "sensor-1",
                seq: 17
            })
        );
    }

    #[test]
    fn small_size_keeps_the_whole_label() {
        assert_eq!(workload_payload("a", 3, 1), b"a#3");
        assert_eq!(workload_payload("a", 3, 4), b"a#3|");
    }

    #[test]
    fn will_and_odd_payloads() {
        assert_eq!(label(&will_payload("s#1", 2)), "s#1#will-2");
        assert_eq!(
            parse_label("s#1#will-2"),
            Some(LabelKind::Will {
                client: "s#1",
                connect_no: 2
            })
        );
        assert_eq!(label(b""), "");
        assert_eq!(label(&[0xff, 0x00]), "hex:ff00");
        assert_eq!(parse_label("offline"), None);
        assert_eq!(parse_label("#3"), None);
        assert_eq!(parse_label("a#x3"), None);
    }
}
