//! The wrong brokers of the in-flight checks (src/conformance/suite/checks/inflight.rs).

use super::{Wrong, down, header_len, kind, up};

const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;

/// `p` as it is, or, if it is an acknowledgement of type `of`, with reason code `code`.
pub fn with_reason(p: &[u8], of: u8, code: u8) -> Option<Vec<u8>> {
    Some(if kind(p) == of {
        let at = header_len(p);
        vec![p[0], 3, p[at], p[at + 1], code]
    } else {
        p.to_vec()
    })
}

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // The resumed session (connection 2) forgets the unanswered PUBREL.
        "pubrel-resent-on-resume" => {
            down(|p, seen| (kind(p) != PUBREL || seen.conn != 2).then(|| p.to_vec()))
        }
        // The resumed session (connection 2) drops the message in flight, as expired.
        "qos2-sent-not-expired" => {
            down(|p, seen| (kind(p) != PUBLISH || seen.conn != 2).then(|| p.to_vec()))
        }
        // The PUBREL of an expired message is answered with 0x92 (packet identifier not found).
        "qos2-received-expired-completed" => down(|p, _| with_reason(p, PUBCOMP, 0x92)),
        // PUBACK 0x80 is lost on its way: the message stays in flight.
        "error-ack-not-resent" => {
            up(|p, seen| (kind(p) != PUBACK || seen.conn != 0).then(|| p.to_vec()))
        }
        // The member's return (connection 3) finds the unanswered QoS 2 message gone.
        "shared-qos2-completed-by-its-member" => {
            down(|p, seen| (kind(p) != PUBLISH || seen.conn != 3).then(|| p.to_vec()))
        }
        // Shared subscriptions are held at QoS 1 while the members are told QoS 2: the message
        // sent to a member whose session ends goes to the other one.
        "shared-qos2-ends-with-its-session" => Wrong {
            up: |p, _| {
                let mut p = p.to_vec();
                if kind(&p) == SUBSCRIBE
                    && let Some(options) = p.last_mut()
                {
                    *options = (*options & !0x03) | 0x01;
                }
                Some(p)
            },
            down: |p, _| {
                let mut p = p.to_vec();
                match kind(&p) {
                    SUBACK => {
                        if let Some(code) = p.last_mut().filter(|c| **c == 0x01) {
                            *code = 0x02;
                        }
                    }
                    PUBLISH if p[0] & 0x06 == 0x02 => p[0] = (p[0] & !0x06) | 0x04,
                    _ => {}
                }
                Some(p)
            },
            keep_open: false,
        },
        // A member's PUBACK 0x80 ends its session instead (a DISCONNECT, Session Expiry 0):
        // the broker hands the message to the other member.
        "shared-error-ack-not-redelivered" => up(|p, _| {
            let refused = kind(p) == PUBACK && p.get(header_len(p) + 2).is_some_and(|r| *r >= 0x80);
            Some(if refused { vec![0xE0, 0] } else { p.to_vec() })
        }),
        _ => return None,
    })
}
