//! The broker as a sender: what its own PUBLISH and PUBREL packets carry. Every packet it sends
//! in any check is also decoded strictly (reason codes, flags, identifiers), so a malformed one
//! fails there.

use std::collections::BTreeSet;

use crate::codec::{Packet, QoS};

use super::super::probe::{Fault, Got, ack, describe};
use super::super::{Check, Outcome, Probe};

pub const CHECKS: &[Check] = &[Check {
    name: "broker-as-sender",
    about: "Messages delivered at QoS 0, 1 and 2 carry DUP 0, and at QoS 1 and 2 distinct non-zero identifiers; each PUBREC is answered with a PUBREL of its identifier, and no PUBLISH is sent again after its PUBREL.",
    v3: &[
        "MQTT-3.3.1-2",
        "MQTT-4.3.1-1",
        "MQTT-2.3.1-1",
        "MQTT-2.3.1-4",
        "MQTT-4.3.2-1",
        "MQTT-4.3.3-1",
    ],
    v5: &[
        "MQTT-3.3.1-2",
        "MQTT-4.3.1-1",
        "MQTT-2.2.1-4",
        "MQTT-2.2.1-5",
        "MQTT-4.3.2-1",
        "MQTT-4.3.2-2",
        "MQTT-4.3.3-1",
        "MQTT-4.3.3-2",
        "MQTT-4.3.3-4",
        "MQTT-4.3.3-6",
        "MQTT-3.6.2-1",
    ],
    needs: &[],
    run: broker_as_sender,
}];

/// Messages at each QoS: one at 0, then this many at 1 and at 2.
const EACH: u16 = 3;

fn broker_as_sender(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = p.connect("s", &p.client_id(1))?;
    p.subscribe(&mut sub, &topic, QoS::ExactlyOnce)?;
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    let mut sends = vec![p.publish(&topic, b"q0", QoS::AtMostOnce, false, 0)];
    for n in 0..EACH {
        sends.push(p.publish(&topic, b"q1", QoS::AtLeastOnce, false, 1 + n));
        sends.push(p.publish(&topic, b"q2", QoS::ExactlyOnce, false, 10 + n));
    }
    for packet in &sends {
        publisher.send(packet)?;
    }
    // The publisher's side is the other checks' business; its acknowledgements are read and
    // answered so that every message reaches the broker whole.
    let mut open = 2 * EACH;
    while open > 0 {
        match publisher.expect("an acknowledgement", p.wait)? {
            Packet::PubAck(_) | Packet::PubComp(_) => open -= 1,
            Packet::PubRec(a) => publisher.send(&Packet::PubRel(ack(a.pkid)))?,
            other => return Err(format!("the publisher got {}", describe(&other))),
        }
    }
    // The subscriber holds every QoS 1 and 2 message unacknowledged until all have come.
    let mut qos1 = BTreeSet::new();
    let mut qos2 = BTreeSet::new();
    let mut qos0 = 0;
    while qos0 + qos1.len() + qos2.len() < sends.len() {
        let m = match sub.expect("a delivery", p.wait)? {
            Packet::Publish(m) => m,
            other => return Err(format!("waited for a delivery, got {}", describe(&other))),
        };
        if m.dup {
            return Err(format!(
                "a message sent for the first time has DUP 1: {}",
                describe(&Packet::Publish(m))
            ));
        }
        let fresh = match m.qos {
            QoS::AtMostOnce => {
                qos0 += 1;
                true
            }
            _ if m.pkid == 0 => return Err("a QoS 1 or 2 delivery has packet identifier 0".into()),
            _ if qos1.contains(&m.pkid) || qos2.contains(&m.pkid) => false,
            QoS::AtLeastOnce => qos1.insert(m.pkid),
            QoS::ExactlyOnce => qos2.insert(m.pkid),
        };
        if !fresh {
            return Err(format!(
                "packet identifier {} was used for a second message while the first was unacknowledged",
                m.pkid
            ));
        }
    }
    if qos0 != 1 || qos1.len() != usize::from(EACH) || qos2.len() != usize::from(EACH) {
        return Err(format!(
            "the deliveries were {qos0} at QoS 0, {} at QoS 1 and {} at QoS 2, not 1, {EACH} and {EACH}",
            qos1.len(),
            qos2.len()
        ));
    }
    for id in &qos1 {
        sub.send(&Packet::PubAck(ack(*id)))?;
    }
    for id in &qos2 {
        sub.send(&Packet::PubRec(ack(*id)))?;
    }
    let mut released = BTreeSet::new();
    while released.len() < qos2.len() {
        match sub.recv(p.wait) {
            Got::Packet(Packet::PubRel(a)) if qos2.contains(&a.pkid) => {
                if !released.insert(a.pkid) {
                    return Err(format!("PUBREL {} came twice", a.pkid));
                }
                sub.send(&Packet::PubComp(ack(a.pkid)))?;
            }
            Got::Packet(Packet::PubRel(a)) => {
                return Err(format!(
                    "a PUBREL of identifier {}, which names none of the PUBRECs sent ({qos2:?})",
                    a.pkid
                ));
            }
            Got::Packet(Packet::Publish(m)) if released.contains(&m.pkid) => {
                return Err(format!(
                    "the PUBLISH of identifier {} was sent again after its PUBREL",
                    m.pkid
                ));
            }
            g => {
                return Err(format!(
                    "waited for the PUBRELs of {qos2:?}, got {}",
                    g.describe()
                ));
            }
        }
    }
    sub.expect_silence(p.wait / 2, "every message was acknowledged")?;
    sub.disconnect();
    publisher.disconnect();
    Ok(Outcome::Pass)
}
