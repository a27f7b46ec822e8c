//! The wrong brokers of the connect checks (src/conformance/suite/checks/connect.rs).

use super::{KEEP_OPEN, Wrong, down, header_len, kind, up};

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // CONNACK says Session Present 1 to a clean start.
        "connack-first" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 2 {
                p[2] = 1;
            }
            Some(p)
        }),
        // The identifier is refused: its first upper-case letter reaches the broker as a
        // byte that is not UTF-8.
        "client-id-allowed-characters" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 1
                && let Some(at) = p.windows(4).position(|w| w == b"AZaz")
            {
                p[at] = 0xFF;
            }
            Some(p)
        }),
        "second-connect"
        | "protocol-level-unsupported"
        | "protocol-name-wrong"
        | "client-id-takeover"
        | "first-packet-not-connect"
        | "keep-alive-expiry" => KEEP_OPEN,
        // The reserved CONNECT flag is ignored.
        "connect-reserved-flag" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 1 {
                let flags = header_len(&p) + 7;
                p[flags] &= !1;
            }
            Some(p)
        }),
        // Session Present is always 0.
        "session-present" => down(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == 2 && seen.conn > 0 {
                p[2] = 0;
            }
            Some(p)
        }),
        // No PINGRESP.
        "pingreq-answered" => down(|p, _| (kind(p) != 13).then(|| p.to_vec())),
        // Reserved flags of PINGREQ and DISCONNECT are ignored.
        "pingreq-reserved-flags" | "disconnect-reserved-flags" => up(|p, _| {
            let mut p = p.to_vec();
            if matches!(kind(&p), 12 | 14) {
                p[0] &= 0xF0;
            }
            Some(p)
        }),
        _ => return None,
    })
}
