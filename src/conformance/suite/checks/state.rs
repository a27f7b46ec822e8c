//! State the broker keeps: retained messages, wills, sessions across connections.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::reason::connack_v3_return_code;
use crate::codec::{ConnAck, Connect, Packet, Publish, QoS, ReasonCode};

use super::super::probe::{Conn, Fault, Got, ack, describe, text};
use super::super::{Check, Outcome, Probe};
use super::{grace, quiet};

pub const CHECKS: &[Check] = &[
    Check {
        name: "retained-to-new-subscriber",
        about: "A retained QoS 1 message, whose publisher has since gone, is sent to a new subscription with RETAIN 1 and its QoS.",
        v3: &[
            "MQTT-3.3.1-5",
            "MQTT-3.3.1-6",
            "MQTT-3.3.1-8",
            "MQTT-3.1.2-7",
        ],
        v5: &["MQTT-3.3.1-5", "MQTT-3.3.1-9"],
        needs: &[],
        run: retained_to_new_subscriber,
    },
    Check {
        name: "retained-forwarded-with-retain-0",
        about: "A retained PUBLISH reaches an existing subscription with RETAIN 0 (5.0: Retain As Published 0).",
        v3: &["MQTT-3.3.1-9"],
        v5: &["MQTT-3.3.1-12"],
        needs: &[],
        run: retained_forwarded_with_retain_0,
    },
    Check {
        name: "retained-replaced",
        about: "A retained message is replaced by a later retained QoS 0 PUBLISH on its topic: a new subscription gets only the later one (3.1.1: or none, the broker may drop a QoS 0 retained message).",
        v3: &["MQTT-3.3.1-6", "MQTT-3.3.1-7"],
        v5: &["MQTT-3.3.1-5"],
        needs: &[],
        run: retained_replaced,
    },
    Check {
        name: "retained-empty-removes",
        about: "A zero-length retained PUBLISH reaches current subscribers as usual and removes the retained message: a new subscription gets nothing.",
        v3: &["MQTT-3.3.1-10", "MQTT-3.3.1-11"],
        v5: &["MQTT-3.3.1-6", "MQTT-3.3.1-7"],
        needs: &[],
        run: retained_empty_removes,
    },
    Check {
        name: "retain-0-keeps-retained",
        about: "A PUBLISH with RETAIN 0 on a topic neither replaces nor removes its retained message.",
        v3: &["MQTT-3.3.1-12"],
        v5: &["MQTT-3.3.1-8"],
        needs: &[],
        run: retain_0_keeps_retained,
    },
    Check {
        name: "will-on-abrupt-close",
        about: "A QoS 1 will is published at QoS 1 when its client's connection closes without DISCONNECT, and not retained (Will Retain 0).",
        v3: &["MQTT-3.1.2-8", "MQTT-3.1.2-16"],
        v5: &["MQTT-3.1.2-8", "MQTT-3.1.2-14"],
        needs: &[],
        run: will_on_abrupt_close,
    },
    Check {
        name: "no-will-after-disconnect",
        about: "A client that ends its connection with DISCONNECT (5.0: reason 0x00) has its will discarded, not published.",
        v3: &["MQTT-3.14.4-3", "MQTT-3.1.2-10"],
        v5: &["MQTT-3.14.4-3", "MQTT-3.1.2-10"],
        needs: &[],
        run: no_will_after_disconnect,
    },
    Check {
        name: "will-retained",
        about: "A will with Will Retain 1 is published as a retained message: a subscription made after it gets it with RETAIN 1.",
        v3: &["MQTT-3.1.2-17"],
        v5: &["MQTT-3.1.2-15"],
        needs: &[],
        run: will_retained,
    },
    Check {
        name: "clean-session-discards",
        about: "A clean session (5.0: clean start) discards the previous session: Session Present 0, no subscription left, no message queued for it delivered (3.1.1: nor the clean session kept after it).",
        v3: &["MQTT-3.1.2-6", "MQTT-3.2.2-1"],
        v5: &["MQTT-3.1.2-4", "MQTT-3.2.2-2"],
        needs: &[],
        run: clean_session_discards,
    },
    Check {
        name: "session-queues-offline-messages",
        about: "A persistent session keeps its subscription and the QoS 1 messages published while its client was away, and delivers them when it comes back.",
        v3: &["MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-4.5.0-1"],
        v5: &["MQTT-3.1.2-5", "MQTT-3.1.2-23", "MQTT-4.5.0-1"],
        needs: &[],
        run: session_queues_offline_messages,
    },
    Check {
        name: "qos1-resent-on-resume",
        about: "A QoS 1 message the client did not acknowledge is sent again when the session resumes, with DUP 1 and its packet identifier.",
        v3: &["MQTT-4.4.0-1", "MQTT-3.3.1-1"],
        v5: &["MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-4.3.2-3"],
        needs: &[],
        run: qos1_resent_on_resume,
    },
    Check {
        name: "empty-client-id-persistent-refused",
        about: "An empty client identifier with clean session 0 is refused with CONNACK return code 0x02, then the connection closes.",
        v3: &["MQTT-3.1.3-8"],
        v5: &[],
        needs: &[],
        run: empty_client_id_persistent_refused,
    },
    Check {
        name: "empty-client-id-assigned",
        about: "Two clean connections with an empty client identifier, if accepted, get identifiers of their own (5.0: Assigned Client Identifier in CONNACK), so neither takes the other over.",
        v3: &["MQTT-3.1.3-6"],
        v5: &["MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16"],
        needs: &[],
        run: empty_client_id_assigned,
    },
    Check {
        name: "will-delay-beyond-session-expiry",
        about: "A will whose Will Delay Interval (30 s) is longer than the Session Expiry Interval (1 s) is kept with the session after its connection closed, and published when the session ends.",
        v3: &[],
        v5: &["MQTT-3.1.2-8", "MQTT-3.1.2-7"],
        needs: &[],
        run: will_delay_beyond_session_expiry,
    },
    Check {
        name: "will-delay-session-ends-with-connection",
        about: "A will with a Will Delay Interval (30 s) of a session with Session Expiry Interval 0 is published when the connection closes, since the session ends then.",
        v3: &[],
        v5: &["MQTT-3.1.2-8"],
        needs: &[],
        run: will_delay_session_ends_with_connection,
    },
    Check {
        name: "will-delay-cancelled-by-reconnect",
        about: "A client that reconnects to its session within its Will Delay Interval (2 s) cancels the will: it is never published.",
        v3: &[],
        v5: &["MQTT-3.1.3-9"],
        needs: &[],
        run: will_delay_cancelled_by_reconnect,
    },
    Check {
        name: "session-per-client-id",
        about: "Two clients with persistent sessions each get back their own: the one whose subscription matched gets the message queued while both were away, the other gets nothing.",
        v3: &["MQTT-3.1.3-2"],
        v5: &["MQTT-3.1.3-2", "MQTT-3.1.2-6"],
        needs: &[],
        run: session_per_client_id,
    },
    Check {
        name: "session-expires",
        about: "A session with Session Expiry Interval 1 is gone 1 s after its connection closed: the client returning later gets Session Present 0 and none of the messages queued for it.",
        v3: &[],
        v5: &["MQTT-4.1.0-2"],
        needs: &[],
        run: session_expires,
    },
    Check {
        name: "session-kept-while-connected",
        about: "A connection idle for 2 s keeps its session: a QoS 2 message received before is completed by its PUBREL after (5.0: PUBCOMP 0x00), and a subscription made before still delivers.",
        v3: &["MQTT-4.1.0-1", "MQTT-4.1.0-2"],
        v5: &["MQTT-4.1.0-1"],
        needs: &[],
        run: session_kept_while_connected,
    },
    Check {
        name: "no-will-without-will-flag",
        about: "A client that resumes its session with Will Flag 0, after an earlier connection with a will ended by DISCONNECT, has no will published when its connection closes without DISCONNECT.",
        v3: &["MQTT-3.1.2-12"],
        v5: &[],
        needs: &[],
        run: no_will_without_will_flag,
    },
    Check {
        name: "unsubscribe-completes-delivery",
        about: "A QoS 2 message the broker has started to deliver is completed after the subscriber's UNSUBSCRIBE: its PUBREC is answered with a PUBREL.",
        v3: &["MQTT-3.10.4-3"],
        v5: &["MQTT-3.10.4-3"],
        needs: &[],
        run: unsubscribe_completes_delivery,
    },
];

/// PUBLISH packets that came before the SUBACK of a subscription (a broker may send the
/// retained messages first), read before the connection's next packets.
type Early = VecDeque<Publish>;

/// Subscribes `conn` to `filter` at `qos`: the QoS granted and the PUBLISH packets that came
/// before the SUBACK.
fn subscribe(p: &Probe, conn: &mut Conn, filter: &str, qos: QoS) -> Result<(QoS, Early), Fault> {
    conn.send(&Probe::subscribe_packet(1, filter, qos))?;
    let deadline = Instant::now() + p.wait;
    let mut early = Early::new();
    loop {
        match conn.expect("SUBACK", deadline.saturating_duration_since(Instant::now()))? {
            Packet::Publish(m) => early.push_back(m),
            Packet::SubAck(s) if s.pkid == 1 && s.reasons.len() == 1 => {
                let code = s.reasons[0].as_u8();
                return match QoS::from_u8(code) {
                    Some(granted) => Ok((granted, early)),
                    None => Err(format!(
                        "the broker refused the subscription to {filter}: 0x{code:02x}"
                    )),
                };
            }
            other => {
                return Err(format!(
                    "waited for the SUBACK to {filter}, got {}",
                    describe(&other)
                ));
            }
        }
    }
}

/// The next PUBLISH (one that came before a SUBACK first); anything else is a fault naming
/// `what` was awaited.
fn next_publish(
    conn: &mut Conn,
    early: &mut Early,
    wait: Duration,
    what: &str,
) -> Result<Publish, Fault> {
    if let Some(m) = early.pop_front() {
        return Ok(m);
    }
    match conn.recv(wait) {
        Got::Packet(Packet::Publish(m)) => Ok(m),
        g => Err(format!("waited for {what}, got {}", g.describe())),
    }
}

/// Nothing arrives within `wait` (nor came before the SUBACK).
fn no_publish(conn: &mut Conn, early: &Early, wait: Duration, why: &str) -> Result<(), Fault> {
    if let Some(m) = early.front() {
        return Err(format!(
            "{why}, but got {}",
            describe(&Packet::Publish(m.clone()))
        ));
    }
    conn.expect_silence(wait, why)
}

/// Acknowledges a QoS 1 delivery (the checks subscribe at QoS 1 at most).
fn settle(conn: &mut Conn, m: &Publish) -> Result<(), Fault> {
    if m.qos == QoS::AtLeastOnce {
        conn.send(&Packet::PubAck(ack(m.pkid)))?;
    }
    Ok(())
}

/// Sends a QoS 1 PUBLISH and waits for its PUBACK.
fn publish_acked(
    p: &mut Probe,
    conn: &mut Conn,
    topic: &str,
    payload: &[u8],
    retain: bool,
    pkid: u16,
) -> Result<(), Fault> {
    let packet = p.publish(topic, payload, QoS::AtLeastOnce, retain, pkid);
    conn.send(&packet)?;
    match conn.expect("PUBACK", p.wait)? {
        Packet::PubAck(a) if a.pkid == pkid && !a.reason.is_error() => Ok(()),
        Packet::PubAck(a) if a.pkid == pkid => Err(format!(
            "the broker refused a QoS 1 PUBLISH to {topic}: 0x{:02x}",
            a.reason.as_u8()
        )),
        other => Err(format!(
            "waited for the PUBACK of id {pkid}, got {}",
            describe(&other)
        )),
    }
}

/// The QoS a message published at QoS 1 is delivered at on a subscription granted `granted`.
fn delivered_qos(granted: QoS) -> QoS {
    if granted == QoS::AtMostOnce {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// Not applicable where a 5.0 broker says it keeps no retained messages.
fn retain_declined(ack: &ConnAck) -> Option<Outcome> {
    (ack.properties.retain_available == Some(0))
        .then(|| Outcome::NotApplicable("the broker's CONNACK says Retain Available 0".into()))
}

/// Not applicable where the broker grants QoS 0 to a QoS 1 subscription (it may).
fn qos1_declined(granted: QoS) -> Option<Outcome> {
    (granted == QoS::AtMostOnce).then(|| {
        Outcome::NotApplicable(
            "the broker granted QoS 0 to a QoS 1 subscription; the check needs QoS 1".into(),
        )
    })
}

fn retained_to_new_subscriber(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("kept");
    let (mut publisher, ack) = p.connect("pub", &p.client_id(0))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    publish_acked(p, &mut publisher, &topic, b"kept", true, 1)?;
    // The publisher's session ends before anyone subscribes: a retained message is no part
    // of it.
    publisher.disconnect();
    let (mut sub, _) = p.connect("sub", &p.client_id(1))?;
    let (granted, mut early) = subscribe(p, &mut sub, &topic, QoS::AtLeastOnce)?;
    let m = next_publish(&mut sub, &mut early, p.wait, "the retained message")
        .map_err(|f| format!("a new subscription to a topic with a retained message: {f}"))?;
    settle(&mut sub, &m)?;
    if m.topic != topic || &m.payload[..] != b"kept" {
        return Err(format!(
            "a new subscription got {:?} on {:?}, not the retained message",
            text(&m),
            m.topic
        ));
    }
    // 5.0 says it in the text of 3.3.1.3: retained messages sent for a new subscription
    // carry RETAIN 1.
    if !m.retain {
        return Err("the retained message sent to a new subscription has RETAIN 0".into());
    }
    if m.qos != delivered_qos(granted) {
        return Err(format!(
            "the retained QoS 1 message came at QoS {} on a subscription granted QoS {}",
            m.qos.as_u8(),
            granted.as_u8()
        ));
    }
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn retained_forwarded_with_retain_0(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("live");
    let (mut sub, _) = p.connect("sub", &p.client_id(1))?;
    let (_, mut early) = subscribe(p, &mut sub, &topic, QoS::AtLeastOnce)?;
    let (mut publisher, ack) = p.connect("pub", &p.client_id(0))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    publish_acked(p, &mut publisher, &topic, b"live", true, 1)?;
    let m = next_publish(&mut sub, &mut early, p.wait, "the message")?;
    settle(&mut sub, &m)?;
    if &m.payload[..] != b"live" {
        return Err(format!(
            "the subscription got {:?}, not the message published",
            text(&m)
        ));
    }
    if m.retain {
        return Err("a retained PUBLISH reached a subscription made before it with RETAIN 1; RETAIN 0 is owed".into());
    }
    sub.disconnect();
    publisher.disconnect();
    Ok(Outcome::Pass)
}

fn retained_replaced(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("replaced");
    let (mut conn, ack) = p.connect("a", &p.client_id(0))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    publish_acked(p, &mut conn, &topic, b"old", true, 1)?;
    let newer = p.publish(&topic, b"new", QoS::AtMostOnce, true, 0);
    conn.send(&newer)?;
    // The same connection subscribes: the broker has handled both PUBLISH packets by then.
    let (_, mut early) = subscribe(p, &mut conn, &topic, QoS::AtLeastOnce)?;
    let got = match early.pop_front() {
        Some(m) => Got::Packet(Packet::Publish(m)),
        None => conn.recv(p.wait),
    };
    match got {
        Got::Packet(Packet::Publish(m)) if &m.payload[..] == b"old" => Err(
            "a new subscription got the retained message that a later retained PUBLISH replaced".into(),
        ),
        Got::Packet(Packet::Publish(m)) if &m.payload[..] == b"new" => {
            no_publish(&mut conn, &early, p.wait / 3, "a topic holds one retained message")?;
            conn.disconnect();
            Ok(Outcome::Pass)
        }
        // 3.1.1 lets the broker drop a retained QoS 0 message at any time ([MQTT-3.3.1-7]).
        Got::Silent if !p.v5() => {
            conn.disconnect();
            Ok(Outcome::Pass)
        }
        Got::Silent => Err("a new subscription got no retained message: the later retained PUBLISH was not stored in place of the earlier one".into()),
        g => Err(format!("waited for the retained message, got {}", g.describe())),
    }
}

fn retained_empty_removes(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("emptied");
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (_, mut early) = subscribe(p, &mut watcher, &topic, QoS::AtLeastOnce)?;
    let (mut publisher, ack) = p.connect("pub", &p.client_id(0))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    publish_acked(p, &mut publisher, &topic, b"x", true, 1)?;
    let m = next_publish(&mut watcher, &mut early, p.wait, "the retained message")?;
    settle(&mut watcher, &m)?;
    publish_acked(p, &mut publisher, &topic, b"", true, 2)?;
    let m = next_publish(
        &mut watcher,
        &mut early,
        p.wait,
        "the zero-length retained message",
    )
    .map_err(|f| format!("a zero-length retained PUBLISH is forwarded as usual: {f}"))?;
    settle(&mut watcher, &m)?;
    if !m.payload.is_empty() {
        return Err(format!(
            "the subscription got {:?}, not the zero-length message",
            text(&m)
        ));
    }
    let (mut late, _) = p.connect("late", &p.client_id(2))?;
    let (_, early) = subscribe(p, &mut late, &topic, QoS::AtLeastOnce)?;
    no_publish(
        &mut late,
        &early,
        p.wait / 2,
        "a zero-length retained PUBLISH removes the retained message, so a new subscription gets nothing",
    )?;
    late.disconnect();
    watcher.disconnect();
    publisher.disconnect();
    Ok(Outcome::Pass)
}

fn retain_0_keeps_retained(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("kept");
    let (mut conn, ack) = p.connect("a", &p.client_id(0))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    publish_acked(p, &mut conn, &topic, b"kept", true, 1)?;
    publish_acked(p, &mut conn, &topic, b"passing", false, 2)?;
    let (_, mut early) = subscribe(p, &mut conn, &topic, QoS::AtLeastOnce)?;
    let m = next_publish(&mut conn, &mut early, p.wait, "the retained message").map_err(|f| {
        format!("a PUBLISH with RETAIN 0 must not remove the topic's retained message: {f}")
    })?;
    settle(&mut conn, &m)?;
    if &m.payload[..] != b"kept" {
        return Err(format!(
            "a new subscription got {:?}: a PUBLISH with RETAIN 0 replaced the retained message",
            text(&m)
        ));
    }
    conn.disconnect();
    Ok(Outcome::Pass)
}

/// A CONNECT of `id` with a will on `topic`.
fn with_will(p: &mut Probe, id: &str, topic: &str, qos: QoS, retain: bool) -> Connect {
    let mut c = p.connect_packet(id);
    c.will = Some(Box::new(p.will(topic, b"gone", qos, retain)));
    c
}

fn will_on_abrupt_close(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    // A broker that wrongly retains the will leaves it to the clean-up.
    p.retained.insert(topic.clone());
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (granted, mut early) = subscribe(p, &mut watcher, &topic, QoS::AtLeastOnce)?;
    let id = p.client_id(0);
    let c = with_will(p, &id, &topic, QoS::AtLeastOnce, false);
    let (conn, _) = p.connect_with("client", c)?;
    conn.drop_abruptly();
    let m = next_publish(&mut watcher, &mut early, p.wait, "the will").map_err(|f| {
        format!("the client's connection closed without DISCONNECT, so its will is owed: {f}")
    })?;
    settle(&mut watcher, &m)?;
    if m.topic != topic || &m.payload[..] != b"gone" {
        return Err(format!(
            "the watcher got {:?} on {:?}, not the will",
            text(&m),
            m.topic
        ));
    }
    if m.qos != delivered_qos(granted) {
        return Err(format!(
            "the QoS 1 will came at QoS {} on a subscription granted QoS {}",
            m.qos.as_u8(),
            granted.as_u8()
        ));
    }
    watcher.disconnect();
    let (mut late, _) = p.connect("late", &p.client_id(2))?;
    let (_, early) = subscribe(p, &mut late, &topic, QoS::AtLeastOnce)?;
    no_publish(
        &mut late,
        &early,
        p.wait / 2,
        "a will with Will Retain 0 is published as a non-retained message, so a later subscription gets nothing",
    )?;
    late.disconnect();
    Ok(Outcome::Pass)
}

fn no_will_after_disconnect(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (_, early) = subscribe(p, &mut watcher, &topic, QoS::AtMostOnce)?;
    let id = p.client_id(0);
    let c = with_will(p, &id, &topic, QoS::AtMostOnce, false);
    let (conn, _) = p.connect_with("client", c)?;
    conn.disconnect();
    no_publish(
        &mut watcher,
        &early,
        p.wait / 2,
        "the client ended its connection with DISCONNECT, so its will must be discarded",
    )?;
    watcher.disconnect();
    Ok(Outcome::Pass)
}

fn will_retained(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, ack) = p.connect("watcher", &p.client_id(1))?;
    if let Some(o) = retain_declined(&ack) {
        return Ok(o);
    }
    let (_, mut early) = subscribe(p, &mut watcher, &topic, QoS::AtLeastOnce)?;
    let id = p.client_id(0);
    let c = with_will(p, &id, &topic, QoS::AtLeastOnce, true);
    let (conn, _) = p.connect_with("client", c)?;
    conn.drop_abruptly();
    // The watcher sees the will published before the later subscription is made.
    let m = next_publish(&mut watcher, &mut early, p.wait, "the will").map_err(|f| {
        format!("the client's connection closed without DISCONNECT, so its will is owed: {f}")
    })?;
    settle(&mut watcher, &m)?;
    watcher.disconnect();
    let (mut late, _) = p.connect("late", &p.client_id(2))?;
    let (_, mut early) = subscribe(p, &mut late, &topic, QoS::AtLeastOnce)?;
    let m = next_publish(&mut late, &mut early, p.wait, "the retained will").map_err(|f| {
        format!(
            "a will with Will Retain 1 is a retained message, owed to a later subscription: {f}"
        )
    })?;
    settle(&mut late, &m)?;
    if &m.payload[..] != b"gone" {
        return Err(format!(
            "a later subscription got {:?}, not the will",
            text(&m)
        ));
    }
    if !m.retain {
        return Err(
            "the will with Will Retain 1 came to a later subscription with RETAIN 0".into(),
        );
    }
    late.disconnect();
    Ok(Outcome::Pass)
}

fn clean_session_discards(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let topic = p.topic("t");
    // Connection 0: a persistent session with a subscription.
    let (mut a, _) = p.connect_with("a", p.persistent_packet(&id))?;
    subscribe(p, &mut a, &topic, QoS::AtLeastOnce)?;
    a.disconnect();
    // Connection 1: a message for the session while its client is away.
    let (mut publisher, _) = p.connect("pub", &p.client_id(1))?;
    publish_acked(p, &mut publisher, &topic, b"queued", false, 1)?;
    // Connection 2: the same client with a clean session.
    let (mut a, ack) = p.connect("a", &id)?;
    if ack.session_present {
        return Err(
            "a clean session got Session Present 1: the previous session was not discarded".into(),
        );
    }
    publish_acked(p, &mut publisher, &topic, b"after", false, 2)?;
    no_publish(
        &mut a,
        &Early::new(),
        p.wait / 2,
        "a clean session discards the previous session, its subscription and its queued message",
    )?;
    a.disconnect();
    publisher.disconnect();
    if !p.v5() {
        // The clean session lasted only for its connection: nothing of it is resumed.
        let (a, ack) = p.connect_with("a", p.persistent_packet(&id))?;
        a.disconnect();
        if ack.session_present {
            return Err("a session of clean session 1 was resumed by a later connection (Session Present 1)".into());
        }
    }
    Ok(Outcome::Pass)
}

fn session_queues_offline_messages(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let topic = p.topic("t");
    let (mut a, _) = p.connect_with("a", p.persistent_packet(&id))?;
    let (granted, _) = subscribe(p, &mut a, &topic, QoS::AtLeastOnce)?;
    if let Some(o) = qos1_declined(granted) {
        return Ok(o);
    }
    a.disconnect();
    let (mut publisher, _) = p.connect("pub", &p.client_id(1))?;
    publish_acked(p, &mut publisher, &topic, b"m1", false, 1)?;
    publish_acked(p, &mut publisher, &topic, b"m2", false, 2)?;
    let (mut a, ack) = p.connect_with("a", p.persistent_packet(&id))?;
    if !ack.session_present {
        return Err("the client came back to its persistent session and got Session Present 0: the session was not kept".into());
    }
    let mut got = Vec::new();
    let mut none = Early::new();
    for _ in 0..2 {
        let m = next_publish(
            &mut a,
            &mut none,
            p.wait,
            "the QoS 1 messages published while the client was away",
        )
        .map_err(|f| format!("{f} (had {got:?})"))?;
        settle(&mut a, &m)?;
        if m.qos != QoS::AtLeastOnce {
            return Err(format!(
                "a queued QoS 1 message came at QoS {}",
                m.qos.as_u8()
            ));
        }
        got.push(text(&m));
    }
    got.sort();
    if got != ["m1", "m2"] {
        return Err(format!(
            "the session delivered {got:?}, not the two messages queued for it"
        ));
    }
    publish_acked(p, &mut publisher, &topic, b"m3", false, 3)?;
    let m = next_publish(
        &mut a,
        &mut none,
        p.wait,
        "a message published after the return",
    )
    .map_err(|f| format!("the session's subscription must still be there: {f}"))?;
    settle(&mut a, &m)?;
    if &m.payload[..] != b"m3" {
        return Err(format!(
            "the client got {:?}, not the message published after its return",
            text(&m)
        ));
    }
    a.disconnect();
    publisher.disconnect();
    Ok(Outcome::Pass)
}

fn qos1_resent_on_resume(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let topic = p.topic("t");
    let (mut a, _) = p.connect_with("a", p.persistent_packet(&id))?;
    let (granted, mut early) = subscribe(p, &mut a, &topic, QoS::AtLeastOnce)?;
    if let Some(o) = qos1_declined(granted) {
        return Ok(o);
    }
    let (mut publisher, _) = p.connect("pub", &p.client_id(1))?;
    publish_acked(p, &mut publisher, &topic, b"m", false, 1)?;
    let first = next_publish(&mut a, &mut early, p.wait, "the message")?;
    if first.qos != QoS::AtLeastOnce {
        return Err(format!(
            "a QoS 1 message came at QoS {} on a QoS 1 subscription",
            first.qos.as_u8()
        ));
    }
    // Not acknowledged: the message stays in flight in the session.
    a.disconnect();
    let (mut a, ack) = p.connect_with("a", p.persistent_packet(&id))?;
    if !ack.session_present {
        return Err("the client came back to its persistent session and got Session Present 0: the session was not kept".into());
    }
    let again = next_publish(
        &mut a,
        &mut Early::new(),
        p.wait,
        "the unacknowledged message, sent again",
    )?;
    settle(&mut a, &again)?;
    if &again.payload[..] != b"m" {
        return Err(format!(
            "the resumed session got {:?}, not the unacknowledged message",
            text(&again)
        ));
    }
    if again.pkid != first.pkid {
        return Err(format!(
            "the unacknowledged message was sent again with packet identifier {}, not its original {}",
            again.pkid, first.pkid
        ));
    }
    if !again.dup {
        return Err("the unacknowledged message was sent again with DUP 0".into());
    }
    a.disconnect();
    publisher.disconnect();
    Ok(Outcome::Pass)
}

fn empty_client_id_persistent_refused(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut c = p.connect_packet("");
    c.clean_start = false;
    let mut conn = p.open("a")?;
    conn.send(&Packet::Connect(c))?;
    match conn.expect("CONNACK", p.wait)? {
        Packet::ConnAck(a) if a.reason == ReasonCode::Success => {
            conn.disconnect();
            Err("the broker accepted an empty client identifier with clean session 0; CONNACK 0x02 is owed".into())
        }
        Packet::ConnAck(a) if connack_v3_return_code(a.reason) == 2 => {
            if a.session_present {
                return Err("the refusing CONNACK has Session Present 1".into());
            }
            conn.expect_close(p.wait)?;
            Ok(Outcome::Pass)
        }
        Packet::ConnAck(a) => Err(format!(
            "CONNACK return code {} where 0x02 (identifier rejected) is owed",
            connack_v3_return_code(a.reason)
        )),
        other => Err(format!("waited for CONNACK, got {}", describe(&other))),
    }
}

fn empty_client_id_assigned(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut conns = Vec::new();
    let mut assigned = Vec::new();
    for name in ["a", "b"] {
        let mut conn = p.open(name)?;
        conn.send(&Packet::Connect(p.connect_packet("")))?;
        let ack = match conn.expect("CONNACK", p.wait)? {
            Packet::ConnAck(a) => a,
            other => return Err(format!("waited for CONNACK, got {}", describe(&other))),
        };
        if ack.reason.is_error() {
            // The broker may refuse an empty identifier; 3.1.1 then owes return code 0x02.
            if !p.v5() && connack_v3_return_code(ack.reason) != 2 {
                return Err(format!(
                    "an empty client identifier was refused with return code {}, not 0x02",
                    connack_v3_return_code(ack.reason)
                ));
            }
            return Ok(Outcome::NotApplicable(format!(
                "the broker does not accept an empty client identifier (CONNACK 0x{:02x})",
                ack.reason.as_u8()
            )));
        }
        if p.v5() {
            match ack.properties.assigned_client_identifier.clone() {
                Some(id) if !id.is_empty() => assigned.push(id),
                _ => {
                    return Err("the CONNACK to an empty client identifier has no Assigned Client Identifier".into());
                }
            }
        }
        conns.push(conn);
    }
    if p.v5() && assigned[0] == assigned[1] {
        return Err(format!(
            "two connections were both assigned the identifier {:?}",
            assigned[0]
        ));
    }
    for conn in &mut conns {
        conn.send(&Packet::PingReq)?;
        match conn.recv(p.wait) {
            Got::Packet(Packet::PingResp) => {}
            g => {
                return Err(format!(
                    "after a second connection with an empty client identifier, a PINGREQ got {}: the two did not get identifiers of their own",
                    g.describe()
                ));
            }
        }
    }
    for conn in conns {
        conn.disconnect();
    }
    Ok(Outcome::Pass)
}

/// The will of `id` on `topic` with a Will Delay Interval, in a CONNECT whose session lasts
/// `expiry` seconds after the connection.
fn delayed_will(p: &mut Probe, id: &str, topic: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = with_will(p, id, topic, QoS::AtMostOnce, false);
    c.properties.session_expiry_interval = Some(expiry);
    if let Some(w) = &mut c.will {
        w.properties.will_delay_interval = Some(delay);
    }
    c
}

/// A will delay longer than any wait of the checks: a will that comes is owed to the end of
/// the session, not to the delay.
const LONG_DELAY: u32 = 30;

/// A client with a session of `expiry` seconds and a will delayed by [`LONG_DELAY`] closes
/// its connection without DISCONNECT: the will is owed when the session ends.
fn will_at_session_end(p: &mut Probe, expiry: u32) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (_, mut early) = subscribe(p, &mut watcher, &topic, QoS::AtMostOnce)?;
    let id = p.client_id(0);
    let c = delayed_will(p, &id, &topic, LONG_DELAY, expiry);
    let (conn, ack) = p.connect_with("client", c)?;
    // The broker may set the session expiry it uses in CONNACK.
    let expiry = ack.properties.session_expiry_interval.unwrap_or(expiry);
    if expiry > 5 {
        return Ok(Outcome::NotApplicable(format!(
            "the broker set Session Expiry Interval {expiry}; the check waits only for sessions of at most 5 s"
        )));
    }
    let start = Instant::now();
    conn.drop_abruptly();
    // A session that outlives its connection may be expired on a timer of whole seconds.
    let tick = if expiry > 0 {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let limit = Duration::from_secs(u64::from(expiry)) + tick + p.wait;
    let m = next_publish(&mut watcher, &mut early, limit, "the will").map_err(|f| {
        let ends = if expiry == 0 {
            "with the connection".to_string()
        } else {
            format!("{expiry} s after the connection")
        };
        format!(
            "the session ends {ends}, before the will delay of {LONG_DELAY} s, so the will is owed then: {f} ({:.1} s after the close)",
            start.elapsed().as_secs_f64()
        )
    })?;
    if &m.payload[..] != b"gone" {
        return Err(format!("the watcher got {:?}, not the will", text(&m)));
    }
    watcher.disconnect();
    Ok(Outcome::Pass)
}

fn will_delay_beyond_session_expiry(p: &mut Probe) -> Result<Outcome, Fault> {
    will_at_session_end(p, 1)
}

fn will_delay_session_ends_with_connection(p: &mut Probe) -> Result<Outcome, Fault> {
    will_at_session_end(p, 0)
}

fn will_delay_cancelled_by_reconnect(p: &mut Probe) -> Result<Outcome, Fault> {
    const DELAY: Duration = Duration::from_secs(2);
    let id = p.client_id(0);
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (_, early) = subscribe(p, &mut watcher, &topic, QoS::AtMostOnce)?;
    let c = delayed_will(p, &id, &topic, DELAY.as_secs() as u32, 60);
    let (conn, ack) = p.connect_with("client", c)?;
    // The broker may shorten the session (CONNACK); one that ends before the will delay
    // publishes the will then.
    if let Some(expiry) = ack.properties.session_expiry_interval
        && u64::from(expiry) < 2 * DELAY.as_secs()
    {
        conn.disconnect();
        return Ok(Outcome::NotApplicable(format!(
            "the broker set Session Expiry Interval {expiry}; the check needs a session that outlives the will delay of 2 s"
        )));
    }
    let dropped = Instant::now();
    conn.drop_abruptly();
    // Time for the broker to see the close, so that the new connection resumes the session
    // rather than taking over a connection it still holds.
    no_publish(
        &mut watcher,
        &early,
        Duration::from_millis(300),
        "the will has a delay of 2 s, so it must not be published at once",
    )?;
    let mut again = p.connect_packet(&id);
    again.clean_start = false;
    again.properties.session_expiry_interval = Some(60);
    let (back, _) = p.connect_with("client", again)?;
    if dropped.elapsed() > DELAY * 3 / 4 {
        back.disconnect();
        return Ok(Outcome::Undecided(format!(
            "the client took {:.1} s to reconnect, too close to its will delay of 2 s",
            dropped.elapsed().as_secs_f64()
        )));
    }
    let rest = (dropped + grace(DELAY)).saturating_duration_since(Instant::now());
    no_publish(
        &mut watcher,
        &Early::new(),
        rest,
        "the client came back to its session within the will delay, so the will must not be published",
    )?;
    back.disconnect();
    watcher.disconnect();
    Ok(Outcome::Pass)
}

/// Client `id` comes back to its persistent session, which must be there (Session Present 1).
fn resume(p: &mut Probe, name: &str, id: &str) -> Result<Conn, Fault> {
    let (conn, ack) = p.connect_with(name, p.persistent_packet(id))?;
    if !ack.session_present {
        return Err("the client came back to its persistent session and got Session Present 0: the session was not kept".into());
    }
    Ok(conn)
}

fn session_per_client_id(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (a_id, b_id) = (p.client_id(0), p.client_id(1));
    let (mut a, _) = p.connect_with("a", p.persistent_packet(&a_id))?;
    let (granted, _) = subscribe(p, &mut a, &topic, QoS::AtLeastOnce)?;
    if let Some(o) = qos1_declined(granted) {
        return Ok(o);
    }
    a.disconnect();
    let (b, _) = p.connect_with("b", p.persistent_packet(&b_id))?;
    b.disconnect();
    let (mut publisher, _) = p.connect("pub", &p.client_id(2))?;
    publish_acked(p, &mut publisher, &topic, b"for-a", false, 1)?;
    publisher.disconnect();
    let mut b = resume(p, "b", &b_id)?;
    no_publish(
        &mut b,
        &Early::new(),
        p.wait / 2,
        "the message was queued for another client identifier's session",
    )?;
    b.disconnect();
    let mut a = resume(p, "a", &a_id)?;
    let m = next_publish(&mut a, &mut Early::new(), p.wait, "the queued message")
        .map_err(|f| format!("the message was queued for this client identifier's session: {f}"))?;
    settle(&mut a, &m)?;
    if &m.payload[..] != b"for-a" {
        return Err(format!(
            "the client got {:?}, not the queued message",
            text(&m)
        ));
    }
    a.disconnect();
    Ok(Outcome::Pass)
}

fn session_expires(p: &mut Probe) -> Result<Outcome, Fault> {
    const EXPIRY: u32 = 1;
    let id = p.client_id(0);
    let topic = p.topic("t");
    let mut c = p.connect_packet(&id);
    c.properties.session_expiry_interval = Some(EXPIRY);
    p.sessions.insert(id.clone());
    let (mut a, ack) = p.connect_with("a", c)?;
    let expiry = ack.properties.session_expiry_interval.unwrap_or(EXPIRY);
    if expiry > 5 {
        a.disconnect();
        return Ok(Outcome::NotApplicable(format!(
            "the broker set Session Expiry Interval {expiry}; the check waits only for sessions of at most 5 s"
        )));
    }
    subscribe(p, &mut a, &topic, QoS::AtLeastOnce)?;
    a.disconnect();
    let closed = Instant::now();
    let (mut publisher, _) = p.connect("pub", &p.client_id(1))?;
    publish_acked(p, &mut publisher, &topic, b"queued", false, 1)?;
    publisher.disconnect();
    // A session may be expired on a timer of whole seconds.
    let gone = closed + Duration::from_secs(u64::from(expiry) + 1) + Duration::from_millis(500);
    std::thread::sleep(gone.saturating_duration_since(Instant::now()));
    let (mut a, ack) = p.connect_with("a", p.persistent_packet(&id))?;
    if ack.session_present {
        return Err(format!(
            "the client came back {:.1} s after its connection closed, past its Session Expiry Interval of {expiry} s, and got Session Present 1: the session was not deleted",
            closed.elapsed().as_secs_f64()
        ));
    }
    no_publish(
        &mut a,
        &Early::new(),
        p.wait / 2,
        "the session expired, and the message queued for it with it",
    )?;
    a.disconnect();
    Ok(Outcome::Pass)
}

/// How long the session-state checks leave a connection idle.
const IDLE: Duration = Duration::from_secs(2);

fn session_kept_while_connected(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = p.connect("sub", &p.client_id(1))?;
    let (_, mut early) = subscribe(p, &mut sub, &topic, QoS::AtLeastOnce)?;
    let (mut publisher, connack) = p.connect("pub", &p.client_id(0))?;
    if connack.properties.maximum_qos.is_some_and(|q| q < 2) {
        return Ok(Outcome::NotApplicable(
            "the broker takes no QoS 2 messages (Maximum QoS)".into(),
        ));
    }
    const PKID: u16 = 7;
    let m = p.publish(&topic, b"m1", QoS::ExactlyOnce, false, PKID);
    publisher.send(&m)?;
    match publisher.expect("PUBREC", p.wait)? {
        Packet::PubRec(a) if a.pkid == PKID && !a.reason.is_error() => {}
        other => {
            return Err(format!(
                "waited for a PUBREC of identifier {PKID}, got {}",
                describe(&other)
            ));
        }
    }
    // Idle, the keep-alive far off: nothing of either session may go.
    std::thread::sleep(IDLE);
    publisher.send(&Packet::PubRel(ack(PKID)))?;
    match publisher.expect("PUBCOMP", p.wait)? {
        Packet::PubComp(a) if a.pkid == PKID && a.reason == ReasonCode::Success => {}
        other => {
            return Err(format!(
                "a PUBREL sent {} s after the PUBREC got {}, not a PUBCOMP 0x00: the connection was open, so the session had to keep the packet identifier",
                IDLE.as_secs(),
                describe(&other)
            ));
        }
    }
    let first = next_publish(&mut sub, &mut early, p.wait, "the QoS 2 message")?;
    settle(&mut sub, &first)?;
    publish_acked(p, &mut publisher, &topic, b"m2", false, 8)?;
    let second = next_publish(
        &mut sub,
        &mut early,
        p.wait,
        "the message published after the idle time",
    )
    .map_err(|f| {
        format!("the subscriber's connection was open, so its subscription had to stay: {f}")
    })?;
    settle(&mut sub, &second)?;
    if (text(&first), text(&second)) != ("m1".into(), "m2".into()) {
        return Err(format!(
            "the subscriber got {:?} and {:?}, not m1 and m2",
            text(&first),
            text(&second)
        ));
    }
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn no_will_without_will_flag(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("watcher", &p.client_id(1))?;
    let (_, early) = subscribe(p, &mut watcher, &topic, QoS::AtMostOnce)?;
    let id = p.client_id(0);
    let mut c = with_will(p, &id, &topic, QoS::AtMostOnce, false);
    c.clean_start = false;
    let (conn, _) = p.connect_with("client", c)?;
    conn.disconnect();
    no_publish(
        &mut watcher,
        &early,
        quiet(p),
        "the client ended its connection with DISCONNECT, so its will must be discarded",
    )?;
    let (conn, _) = p.connect_with("client", p.persistent_packet(&id))?;
    conn.drop_abruptly();
    no_publish(
        &mut watcher,
        &Early::new(),
        p.wait / 2,
        "the client's last CONNECT had Will Flag 0, so no will may be published when its connection closes",
    )?;
    watcher.disconnect();
    Ok(Outcome::Pass)
}

fn unsubscribe_completes_delivery(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let (mut sub, _) = p.connect("sub", &p.client_id(1))?;
    let (granted, mut early) = subscribe(p, &mut sub, &topic, QoS::ExactlyOnce)?;
    if granted != QoS::ExactlyOnce {
        return Ok(Outcome::NotApplicable(format!(
            "the broker granted QoS {} to a QoS 2 subscription; the check needs QoS 2",
            granted.as_u8()
        )));
    }
    let (mut publisher, _) = p.connect("pub", &p.client_id(0))?;
    let m = p.publish(&topic, b"m", QoS::ExactlyOnce, false, 1);
    publisher.send(&m)?;
    // The publisher's flow is completed, so that a broker delivering at PUBREL delivers now.
    for (sent, owed) in [(None, "PUBREC"), (Some(Packet::PubRel(ack(1))), "PUBCOMP")] {
        if let Some(sent) = sent {
            publisher.send(&sent)?;
        }
        match publisher.expect(owed, p.wait)? {
            Packet::PubRec(a) | Packet::PubComp(a) if a.pkid == 1 && !a.reason.is_error() => {}
            other => return Err(format!("waited for {owed}, got {}", describe(&other))),
        }
    }
    let got = next_publish(&mut sub, &mut early, p.wait, "the QoS 2 message")?;
    if got.qos != QoS::ExactlyOnce {
        return Err(format!(
            "a QoS 2 message came at QoS {} on a QoS 2 subscription",
            got.qos.as_u8()
        ));
    }
    sub.send(&Packet::Unsubscribe(crate::codec::Unsubscribe {
        pkid: 2,
        filters: vec![topic.clone()],
        properties: crate::codec::Properties::default(),
    }))?;
    match sub.expect("UNSUBACK", p.wait)? {
        Packet::UnsubAck(u) if u.pkid == 2 => {}
        other => return Err(format!("waited for UNSUBACK, got {}", describe(&other))),
    }
    sub.send(&Packet::PubRec(ack(got.pkid)))?;
    match sub.expect("PUBREL", p.wait) {
        Ok(Packet::PubRel(a)) if a.pkid == got.pkid && !a.reason.is_error() => {}
        r => {
            return Err(format!(
                "the PUBREC of a QoS 2 message the broker had started to deliver, sent after the UNSUBSCRIBE, got {}: the delivery must be completed",
                r.map_or_else(|f| f, |o| describe(&o))
            ));
        }
    }
    sub.send(&Packet::PubComp(ack(got.pkid)))?;
    publisher.disconnect();
    sub.disconnect();
    Ok(Outcome::Pass)
}
