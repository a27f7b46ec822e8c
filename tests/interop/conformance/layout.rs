//! The wrong brokers of the layout checks (src/conformance/suite/checks/layout.rs).

use bytes::BytesMut;
use mqtt_lab::codec::{self, LastWill, Packet, QoS};

use super::publish::{packet, replace};
use super::{Wrong, down, header_len, kind, up};

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;

/// `p`, a CONNECT, decoded, changed by `f` and encoded again in its own protocol; anything
/// else passes unchanged.
pub fn connect_changed(p: &[u8], f: impl FnOnce(&mut codec::Connect)) -> Vec<u8> {
    let mut buf = BytesMut::from(p);
    let Ok(Some(Packet::Connect(mut c))) = codec::decode(&mut buf, None, codec::MAX_PACKET_SIZE)
    else {
        return p.to_vec();
    };
    f(&mut c);
    let protocol = c.protocol;
    let mut out = BytesMut::new();
    match codec::encode(&Packet::Connect(c), protocol, &mut out) {
        Ok(()) => out.to_vec(),
        Err(_) => p.to_vec(),
    }
}

/// A will on the topic the check `check` watches for it, for a CONNECT of the suite's client
/// `id` (its run's tag and one letter).
pub fn will_of(id: &str, check: &str) -> LastWill {
    let tag = &id[..id.len() - 1];
    LastWill {
        topic: format!("mqtt-lab-conformance/{tag}/{check}/will"),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    }
}

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // A QoS 0 PUBLISH to the subscriber carries a packet identifier after its topic.
        "qos0-publish-layout" => down(|p, seen| {
            if kind(p) != PUBLISH || seen.conn != 0 || (p[0] >> 1) & 3 != 0 {
                return Some(p.to_vec());
            }
            let body = &p[header_len(p)..];
            let end = 2 + usize::from(u16::from_be_bytes([body[0], body[1]]));
            let mut new = body[..end].to_vec();
            new.extend_from_slice(&[0, 1]);
            new.extend_from_slice(&body[end..]);
            Some(packet(p[0], &new))
        }),
        // U+FEFF is not kept: its bytes become spaces in what the broker forwards.
        "strings-kept-as-sent" => down(|p, _| {
            Some(if kind(p) == PUBLISH {
                replace(p, &[0xEF, 0xBB, 0xBF], b"   ")
            } else {
                p.to_vec()
            })
        }),
        // Will QoS 3 is read as 1: the CONNECT is accepted.
        "connect-malformed-no-connack" => up(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == CONNECT {
                let flags = header_len(&p) + 7;
                p[flags] &= !0x10;
            }
            Some(p)
        }),
        // The CONNECT behind which the PUBLISH comes (connection 1) is accepted, though the
        // CONNACK says it is refused.
        "refused-connect-ignores-what-follows" => Wrong {
            up: |p, seen| {
                Some(if kind(p) == CONNECT && seen.conn == 1 {
                    connect_changed(p, |c| {
                        c.clean_start = true;
                        c.properties.authentication_method = None;
                    })
                } else {
                    p.to_vec()
                })
            },
            down: |p, seen| {
                let mut p = p.to_vec();
                if kind(&p) == CONNACK && seen.conn == 1 {
                    p[3] = if p[1] == 2 { 0x02 } else { 0x8C };
                }
                Some(p)
            },
            keep_open: false,
        },
        _ => return None,
    })
}
