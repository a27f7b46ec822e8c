//! The wrong brokers of the publish checks (src/conformance/suite/checks/publish.rs).

use super::{KEEP_OPEN, Seen, Wrong, down, header_len, kind, up};

/// The topic name of a whole PUBLISH.
fn topic_of(p: &[u8]) -> &[u8] {
    let at = header_len(p);
    let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
    &p[at + 2..at + 2 + len]
}

/// A whole packet of first byte `first` and `body`.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let b = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { b | 0x80 } else { b });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// `p` with every `from` replaced by `to` (of the same length).
pub fn replace(p: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = p.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// A PUBLISH to the first connection (the checks' subscriber) comes twice.
pub fn twice_to_first(p: &[u8], seen: &Seen) -> Option<Vec<u8>> {
    if kind(p) == 3 && seen.conn == 0 {
        Some([p, p].concat())
    } else {
        Some(p.to_vec())
    }
}

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // PUBACK carries another packet identifier.
        "qos1-puback" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 4 {
                let at = header_len(&p);
                p[at] ^= 0x01;
            }
            Some(p)
        }),
        // PUBCOMP carries another packet identifier.
        "qos2-pubrec-pubcomp" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 7 {
                let at = header_len(&p);
                p[at] ^= 0x01;
            }
            Some(p)
        }),
        // The options byte of a SUBSCRIBE (its last) is read as QoS 0, reserved bits ignored.
        "subscribe-options-invalid" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 8
                && let Some(last) = p.last_mut()
            {
                *last = 0;
            }
            Some(p)
        }),
        // A message reaches the subscriber twice.
        "qos2-exactly-once" | "subscribe-same-filter-replaces" => down(twice_to_first),
        // Messages at QoS 2 are delivered at QoS 1 whatever the subscription grants.
        "delivered-qos-minimum" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 3 && (p[0] >> 1) & 3 == 2 {
                p[0] = (p[0] & !0b0110) | 0b0010;
            }
            Some(p)
        }),
        "publish-qos3"
        | "publish-topic-wildcard"
        | "subscribe-unsubscribe-no-filters"
        | "topic-null-character"
        | "topic-ill-formed-utf8" => KEEP_OPEN,
        // The flags of PUBREL, SUBSCRIBE and UNSUBSCRIBE are not checked.
        "pubrel-reserved-flags" | "subscribe-unsubscribe-reserved-flags" => up(|p, _| {
            let mut p = p.to_vec();
            if matches!(kind(&p), 6 | 8 | 10) {
                p[0] = (p[0] & 0xF0) | 0b0010;
            }
            Some(p)
        }),
        // The SUBACK codes come in reverse order.
        "suback-per-filter" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 9 && p.len() >= header_len(&p) + 5 {
                let n = p.len();
                p[n - 3..].reverse();
            }
            Some(p)
        }),
        // Filters with a misplaced wildcard are taken as if the wildcard were a letter.
        "subscribe-invalid-filter" => up(|p, _| {
            if kind(p) == 8 {
                Some(replace(&replace(p, b"#/", b"x/"), b"a+", b"ab"))
            } else {
                Some(p.to_vec())
            }
        }),
        // '#' does not match its parent level, nor '+' a last level "a".
        "wildcard-matching" => {
            down(|p, _| (kind(p) != 3 || !topic_of(p).ends_with(b"/a")).then(|| p.to_vec()))
        }
        // The check's messages reach the subscribers under a topic starting with '$'.
        "dollar-topic-not-matched-by-wildcard" => down(|p, _| {
            if kind(p) != 3 || !topic_of(p).starts_with(b"mqtt-lab-conformance/") {
                return Some(p.to_vec());
            }
            let topic = topic_of(p);
            let at = header_len(p);
            let mut body = ((topic.len() + 1) as u16).to_be_bytes().to_vec();
            body.push(b'$');
            body.extend_from_slice(&p[at + 2..]);
            Some(packet(p[0], &body))
        }),
        // UNSUBSCRIBE removes nothing: its filter is taken with its last character changed.
        // The last filter of an UNSUBSCRIBE is changed (its last character): the third filter
        // of the check ("c") becomes the second ("b"), and stays subscribed.
        "unsubscribe-stops-delivery" | "unsubscribe-several-filters" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 10
                && let Some(last) = p.last_mut()
            {
                *last ^= 0x01;
            }
            Some(p)
        }),
        // Two messages of one publisher on one topic are delivered swapped.
        "ordered-delivery" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 3 {
                let n = p.len();
                if p.ends_with(b"003") {
                    p[n - 3..].copy_from_slice(b"004");
                } else if p.ends_with(b"004") {
                    p[n - 3..].copy_from_slice(b"003");
                }
            }
            Some(p)
        }),
        // Topic names are matched without regard to case.
        "topic-matching-exact" => up(|p, _| {
            if kind(p) == 3 {
                Some(replace(&replace(p, b"/case", b"/Case"), b"/CASE", b"/Case"))
            } else {
                Some(p.to_vec())
            }
        }),
        _ => return None,
    })
}
