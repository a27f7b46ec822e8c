//! The wrong brokers of the v5 checks (src/conformance/suite/checks/v5.rs).

use bytes::BytesMut;
use mqtt_lab::codec::{self, Packet, Properties, Protocol, RetainHandling};

use super::{KEEP_OPEN, Seen, Wrong, down, header_len, kind, up};

/// `p` decoded (a 5.0 packet), changed by `f` and encoded again; anything that does not decode
/// passes unchanged.
fn changed(p: &[u8], f: impl FnOnce(&mut Packet)) -> Option<Vec<u8>> {
    let protocol = (kind(p) != 1).then_some(Protocol::V5);
    let mut buf = BytesMut::from(p);
    let Ok(Some(mut packet)) = codec::decode(&mut buf, protocol, codec::MAX_PACKET_SIZE) else {
        return Some(p.to_vec());
    };
    f(&mut packet);
    let mut out = BytesMut::new();
    codec::encode(&packet, Protocol::V5, &mut out).ok()?;
    Some(out.to_vec())
}

/// Whether `p` is a PUBLISH with an empty topic (a Topic Alias alone).
fn empty_topic(p: &[u8]) -> bool {
    let at = header_len(p);
    kind(p) == 3 && p.get(at..at + 2) == Some(&[0, 0])
}

/// `p`, or the CONNACK of the first connection with its properties changed by `f`.
fn first_connack(p: &[u8], seen: &Seen, f: impl FnOnce(&mut Properties)) -> Option<Vec<u8>> {
    if seen.conn != 0 {
        return Some(p.to_vec());
    }
    changed(p, |packet| {
        if let Packet::ConnAck(a) = packet {
            f(&mut a.properties);
        }
    })
}

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // An invalid Topic Alias leaves the connection open.
        "topic-alias-invalid" => KEEP_OPEN,
        // A PUBLISH using a Topic Alias with an empty topic is lost.
        "topic-alias-used" => up(|p, _| (!empty_topic(p)).then(|| p.to_vec())),
        // A Topic Alias outlives its connection (the check's payload names the topic it stood for).
        "topic-alias-per-connection" => up(|p, _| {
            if !empty_topic(p) {
                return Some(p.to_vec());
            }
            changed(p, |packet| {
                if let Packet::Publish(x) = packet {
                    x.topic = String::from_utf8_lossy(&x.payload).into_owned();
                }
            })
        }),
        // Topic Alias 2 on every PUBLISH, whatever the client's Topic Alias Maximum.
        "topic-alias-to-client" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet
                    && x.properties.topic_alias.is_none()
                {
                    x.properties.topic_alias = Some(2);
                }
            })
        }),
        // The will's first two User Properties change places.
        "will-user-properties-order" => up(|p, _| {
            Some(super::publish::replace(
                p,
                &[0x26, 0, 1, b'k', 0, 1, b'x', 0x26, 0, 1, b'k', 0, 1, b'y'],
                &[0x26, 0, 1, b'k', 0, 1, b'y', 0x26, 0, 1, b'k', 0, 1, b'x'],
            ))
        }),
        // The first CONNACK says Maximum QoS 1, but the broker takes a Will QoS of 2.
        "maximum-qos-honoured" => {
            down(|p, seen| first_connack(p, seen, |x| x.maximum_qos = Some(1)))
        }
        // The first CONNACK says Retain Available 0, but the broker takes Will Retain 1.
        "retain-available-honoured" => {
            down(|p, seen| first_connack(p, seen, |x| x.retain_available = Some(0)))
        }
        // PINGRESP is held back (here: never sent).
        "receive-maximum-other-packets" => down(|p, _| (kind(p) != 13).then(|| p.to_vec())),
        // SUBACK and UNSUBACK carry a Reason String whatever the client asked.
        "problem-information-off" => down(|p, _| {
            changed(p, |packet| match packet {
                Packet::SubAck(x) => x.properties.reason_string = Some("granted".into()),
                Packet::UnsubAck(x) => x.properties.reason_string = Some("done".into()),
                _ => {}
            })
        }),
        // PUBCOMP keeps a Reason String that does not fit the client's Maximum Packet Size.
        "diagnostics-within-maximum-packet-size" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::PubComp(x) = packet {
                    x.properties.reason_string =
                        Some("a Reason String too long for the client's limit".into());
                }
            })
        }),
        // The client's Receive Maximum is not heard.
        "receive-maximum" => up(|p, _| {
            changed(p, |packet| {
                if let Packet::Connect(c) = packet {
                    c.properties.receive_maximum = None;
                }
            })
        }),
        // Subscription Identifiers are not sent back.
        "subscription-identifier" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet {
                    x.properties.subscription_identifiers.clear();
                }
            })
        }),
        // Message expiry is ignored.
        "message-expiry" => up(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet {
                    x.properties.message_expiry_interval = None;
                }
            })
        }),
        // No Local is ignored.
        "no-local" => up(|p, _| {
            changed(p, |packet| {
                if let Packet::Subscribe(s) = packet {
                    for f in &mut s.filters {
                        f.options.no_local = false;
                    }
                }
            })
        }),
        // RETAIN is always cleared on forwarded messages.
        "retain-as-published" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 3 {
                p[0] &= !1;
            }
            Some(p)
        }),
        // Retain Handling is taken as 0.
        "retain-handling" => up(|p, _| {
            changed(p, |packet| {
                if let Packet::Subscribe(s) = packet {
                    for f in &mut s.filters {
                        f.options.retain_handling = RetainHandling::SendAtSubscribe;
                    }
                }
            })
        }),
        // The client's Maximum Packet Size is not heard.
        "maximum-packet-size" => up(|p, _| {
            changed(p, |packet| {
                if let Packet::Connect(c) = packet {
                    c.properties.maximum_packet_size = None;
                }
            })
        }),
        // User Properties are forwarded in reverse order.
        "user-properties-forwarded" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet {
                    x.properties.user_properties.reverse();
                }
            })
        }),
        // Content Type is dropped.
        "publish-properties-forwarded" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet {
                    x.properties.content_type = None;
                }
            })
        }),
        // DISCONNECT 0x04 is taken as 0x00: the will is discarded.
        "disconnect-with-will" => up(|p, _| {
            let mut p = p.to_vec();
            let at = header_len(&p);
            if kind(&p) == 14 && p.len() > at {
                p[at] = 0;
            }
            Some(p)
        }),
        // Shared subscription messages come at QoS 1 to a member granted QoS 0.
        "shared-subscription" => down(|p, _| {
            changed(p, |packet| {
                if let Packet::Publish(x) = packet
                    && x.qos == codec::QoS::AtMostOnce
                {
                    x.qos = codec::QoS::AtLeastOnce;
                    x.pkid = 0x7fff;
                }
            })
        }),
        _ => return None,
    })
}
