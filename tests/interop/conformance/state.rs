//! The wrong brokers of the state checks (src/conformance/suite/checks/state.rs).

use super::layout::{connect_changed, will_of};
use super::{Wrong, down, header_len, kind, up};

const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const PUBREL: u8 = 6;
const DISCONNECT: u8 = 14;

/// The CONNECT flags byte: after the protocol name (2 + 4 bytes) and level.
fn connect_flags(p: &[u8]) -> usize {
    header_len(p) + 7
}

/// A CONNECT with the first occurrence of `from` replaced by `to` (same length).
fn replace_in_connect(p: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    if kind(&p) == CONNECT
        && let Some(at) = p.windows(from.len()).position(|w| w == from)
    {
        p[at..at + to.len()].copy_from_slice(to);
    }
    p
}

/// A Variable Byte Integer.
fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// The value of the Variable Byte Integer at the front of `b` and its length.
fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut n = 0;
    for (i, x) in b.iter().take(4).enumerate() {
        n |= usize::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    (n, b.len().min(4))
}

/// A CONNECT with an empty client identifier gets the fixed identifier `same3` or `same5`
/// (by protocol level): every such client is one and the same.
fn same_client_id(p: &[u8]) -> Vec<u8> {
    if kind(p) != CONNECT {
        return p.to_vec();
    }
    let body = &p[header_len(p)..];
    let level = body[6];
    // Name (6), level, flags, keep-alive (2); then 5.0 properties.
    let mut at = 10;
    if level == 5 {
        let (len, n) = read_varint(&body[at..]);
        at += n + len;
    }
    if body[at..at + 2] != [0, 0] {
        return p.to_vec();
    }
    let id: &[u8] = if level == 5 { b"same5" } else { b"same3" };
    let mut new_body = body[..at].to_vec();
    new_body.extend_from_slice(&[0, id.len() as u8]);
    new_body.extend_from_slice(id);
    new_body.extend_from_slice(&body[at + 2..]);
    let mut out = vec![p[0]];
    out.extend(varint(new_body.len()));
    out.extend(new_body);
    out
}

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // Nothing is retained: the publisher's (connection 0) RETAIN flag is ignored.
        "retained-to-new-subscriber" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == PUBLISH && seen.conn == 0 {
                p[0] &= !1;
            }
            Some(p)
        }),
        // Messages reach the existing subscription (connection 0) with RETAIN 1.
        "retained-forwarded-with-retain-0" => down(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == PUBLISH && seen.conn == 0 {
                p[0] |= 1;
            }
            Some(p)
        }),
        // The later retained PUBLISH does not replace the earlier one.
        "retained-replaced" => up(|p, seen| {
            (kind(p) != PUBLISH || seen.count[usize::from(PUBLISH)] != 1).then(|| p.to_vec())
        }),
        // The zero-length retained PUBLISH (the publisher's second, connection 1) is
        // forwarded but leaves the retained message.
        "retained-empty-removes" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == PUBLISH && seen.conn == 1 && seen.count[usize::from(PUBLISH)] == 1 {
                p[0] &= !1;
            }
            Some(p)
        }),
        // The PUBLISH with RETAIN 0 replaces the retained message.
        "retain-0-keeps-retained" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == PUBLISH && seen.conn == 0 && seen.count[usize::from(PUBLISH)] == 1 {
                p[0] |= 1;
            }
            Some(p)
        }),
        // No will reaches the watcher (connection 0).
        "will-on-abrupt-close" => {
            down(|p, seen| (kind(p) != PUBLISH || seen.conn != 0).then(|| p.to_vec()))
        }
        // The will client's DISCONNECT (connection 1) is lost: its close looks abnormal.
        "no-will-after-disconnect" => {
            up(|p, seen| (kind(p) != DISCONNECT || seen.conn != 1).then(|| p.to_vec()))
        }
        // Will Retain is ignored.
        "will-retained" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT {
                let flags = connect_flags(&p);
                p[flags] &= !0x20;
            }
            Some(p)
        }),
        // The clean reconnection (connection 2) resumes the old session.
        "clean-session-discards" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT && seen.conn == 2 {
                let flags = connect_flags(&p);
                p[flags] &= !0x02;
            }
            Some(p)
        }),
        // The messages queued while the client was away are lost (connection 2).
        "session-queues-offline-messages" => down(|p, seen| {
            (kind(p) != PUBLISH || seen.conn != 2 || seen.count[usize::from(PUBLISH)] >= 2)
                .then(|| p.to_vec())
        }),
        // The message sent again on resumption (connection 2) has DUP 0.
        "qos1-resent-on-resume" => down(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == PUBLISH && seen.conn == 2 {
                p[0] &= !0x08;
            }
            Some(p)
        }),
        // Clean session 0 with an empty identifier is taken as clean session 1, and accepted.
        "empty-client-id-persistent-refused" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT {
                let flags = connect_flags(&p);
                p[flags] |= 0x02;
            }
            Some(p)
        }),
        // Every empty identifier becomes the same one.
        "empty-client-id-assigned" => up(|p, _| Some(same_client_id(p))),
        // The session outlives the will delay: Session Expiry Interval 1 becomes 60.
        "will-delay-beyond-session-expiry" => up(|p, _| {
            Some(replace_in_connect(
                p,
                &[0x11, 0, 0, 0, 1],
                &[0x11, 0, 0, 0, 60],
            ))
        }),
        // The session outlives its connection: Session Expiry Interval 0 becomes 60.
        "will-delay-session-ends-with-connection" => up(|p, _| {
            Some(replace_in_connect(
                p,
                &[0x11, 0, 0, 0, 0],
                &[0x11, 0, 0, 0, 60],
            ))
        }),
        // The reconnection (connection 2) does not keep the session, whose will then goes
        // out at once.
        "will-delay-cancelled-by-reconnect" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT && seen.conn == 2 {
                let flags = connect_flags(&p);
                p[flags] |= 0x02;
            }
            Some(p)
        }),
        // The second client's return (connection 3) comes with the first client's identifier.
        "session-per-client-id" => up(|p, seen| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT
                && seen.conn == 3
                && let Some(last) = p.last_mut()
            {
                *last = b'a';
            }
            Some(p)
        }),
        // The session outlives its expiry: Session Expiry Interval 1 becomes 60.
        "session-expires" => up(|p, _| {
            Some(replace_in_connect(
                p,
                &[0x11, 0, 0, 0, 1],
                &[0x11, 0, 0, 0, 60],
            ))
        }),
        // The subscriber's subscription is gone after the idle time: only its first message
        // comes.
        "session-kept-while-connected" => down(|p, seen| {
            (kind(p) != PUBLISH || seen.conn != 0 || seen.count[usize::from(PUBLISH)] == 0)
                .then(|| p.to_vec())
        }),
        // The client's return with Will Flag 0 (connection 2) keeps the will of its earlier
        // connection.
        "no-will-without-will-flag" => up(|p, seen| {
            Some(if kind(p) == CONNECT && seen.conn == 2 {
                connect_changed(p, |c| {
                    c.will = Some(Box::new(will_of(&c.client_id, "no-will-without-will-flag")))
                })
            } else {
                p.to_vec()
            })
        }),
        // The subscriber's PUBREC after its UNSUBSCRIBE gets no PUBREL.
        "unsubscribe-completes-delivery" => {
            down(|p, seen| (kind(p) != PUBREL || seen.conn != 0).then(|| p.to_vec()))
        }
        _ => return None,
    })
}
