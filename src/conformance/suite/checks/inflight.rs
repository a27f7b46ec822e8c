//! Messages in flight: what the broker sends again when a session resumes, what it must not,
//! and what message expiry may not cut short.

use std::time::{Duration, Instant};

use crate::codec::{Ack, Packet, Properties, Publish, QoS, ReasonCode};

use super::super::probe::{Conn, Fault, Got, ack, describe};
use super::super::{Check, Outcome, Probe};
use super::quiet;

pub const CHECKS: &[Check] = &[
    Check {
        name: "pubrel-resent-on-resume",
        about: "A PUBREL the client did not answer with PUBCOMP is sent again, with its packet identifier, when the session resumes, and the PUBLISH it released is not.",
        v3: &["MQTT-4.4.0-1"],
        v5: &["MQTT-4.3.3-5", "MQTT-4.4.0-1"],
        needs: &[],
        run: pubrel_resent_on_resume,
    },
    Check {
        name: "qos2-sent-not-expired",
        about: "A QoS 2 message with Message Expiry Interval 1, sent to a client that did not answer, is sent again with DUP 1 when the session resumes 2 s later: once sent, it does not expire.",
        v3: &[],
        v5: &["MQTT-4.3.3-7"],
        needs: &[],
        run: qos2_sent_not_expired,
    },
    Check {
        name: "qos2-received-expired-completed",
        about: "A QoS 2 PUBLISH with Message Expiry Interval 1, released by its PUBREL 2 s after the PUBREC, gets PUBCOMP 0x00.",
        v3: &[],
        v5: &["MQTT-4.3.3-13"],
        needs: &[],
        run: qos2_received_expired_completed,
    },
    Check {
        name: "error-ack-not-resent",
        about: "A QoS 1 message answered with PUBACK 0x80 and a QoS 2 one answered with PUBREC 0x80 count as acknowledged: no PUBREL follows, and neither is sent again when the session resumes.",
        v3: &[],
        v5: &["MQTT-4.4.0-2"],
        needs: &[],
        run: error_ack_not_resent,
    },
    Check {
        name: "shared-qos2-completed-by-its-member",
        about: "A QoS 2 message of a shared subscription whose member closed its connection without answering goes to no other member, and is sent again to that member, with DUP 1, when its session resumes.",
        v3: &[],
        v5: &["MQTT-4.8.2-4"],
        needs: &[],
        run: shared_qos2_completed_by_its_member,
    },
    Check {
        name: "shared-qos2-ends-with-its-session",
        about: "A QoS 2 message of a shared subscription sent to a member whose session then ends (Session Expiry 0, connection broken without answering) goes to no other member.",
        v3: &[],
        v5: &["MQTT-4.8.2-5"],
        needs: &[],
        run: shared_qos2_ends_with_its_session,
    },
    Check {
        name: "shared-error-ack-not-redelivered",
        about: "A message of a shared subscription answered with PUBACK 0x80 by the member it went to is dropped: no other member gets it.",
        v3: &[],
        v5: &["MQTT-4.8.2-6"],
        needs: &[],
        run: shared_error_ack_not_redelivered,
    },
];

/// A persistent subscriber of client 1 to this check's topic at QoS 2; not applicable where the
/// broker grants less.
fn qos2_subscriber(p: &mut Probe, topic: &str) -> Result<Result<Conn, Outcome>, Fault> {
    let (mut sub, _) = p.connect_with("s", p.persistent_packet(&p.client_id(1)))?;
    let code = p.subscribe_with(
        &mut sub,
        1,
        topic,
        super::super::probe::options(QoS::ExactlyOnce),
        Properties::default(),
    )?;
    if code.as_u8() != 2 {
        return Ok(Err(Outcome::NotApplicable(format!(
            "the broker answered a QoS 2 subscription with 0x{:02x}; the check needs QoS 2",
            code.as_u8()
        ))));
    }
    Ok(Ok(sub))
}

/// Client `n` comes back to its session, which must be there.
fn resume(p: &mut Probe, n: u8) -> Result<Conn, Fault> {
    let (conn, ack) = p.connect_with("s", p.persistent_packet(&p.client_id(n)))?;
    if !ack.session_present {
        return Err("the subscriber came back to its persistent session and got Session Present 0: the session was not kept".into());
    }
    Ok(conn)
}

/// Client 0 publishes `m` and completes its flow (a broker may deliver a QoS 2 message only
/// once it is released).
fn publish_all_the_way(p: &mut Probe, m: &Packet) -> Result<(), Fault> {
    let Packet::Publish(x) = m else {
        return Err("the check meant to send a PUBLISH".into());
    };
    let (mut publisher, _) = p.connect("a", &p.client_id(0))?;
    publisher.send(m)?;
    let steps: &[(Option<Packet>, &str)] = match x.qos {
        QoS::AtMostOnce => &[],
        QoS::AtLeastOnce => &[(None, "PUBACK")],
        QoS::ExactlyOnce => &[
            (None, "PUBREC"),
            (Some(Packet::PubRel(ack(x.pkid))), "PUBCOMP"),
        ],
    };
    for (sent, owed) in steps {
        if let Some(sent) = sent {
            publisher.send(sent)?;
        }
        match publisher.expect(owed, p.wait)? {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubComp(a)
                if a.pkid == x.pkid && !a.reason.is_error() => {}
            other => return Err(format!("waited for {owed}, got {}", describe(&other))),
        }
    }
    publisher.disconnect();
    Ok(())
}

/// The next PUBLISH on `conn`.
fn next_publish(conn: &mut Conn, p: &Probe, what: &str) -> Result<Publish, Fault> {
    match conn.recv(p.wait) {
        Got::Packet(Packet::Publish(m)) => Ok(m),
        g => Err(format!("waited for {what}, got {}", g.describe())),
    }
}

/// The PUBREL of `pkid` on `conn`.
fn expect_pubrel(conn: &mut Conn, p: &Probe, pkid: u16, when: &str) -> Result<(), Fault> {
    match conn.recv(p.wait) {
        Got::Packet(Packet::PubRel(a)) if a.pkid == pkid && !a.reason.is_error() => Ok(()),
        g => Err(format!(
            "{when}, a PUBREL of identifier {pkid} is owed, but got {}",
            g.describe()
        )),
    }
}

fn pubrel_resent_on_resume(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut sub = match qos2_subscriber(p, &topic)? {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let m = p.publish(&topic, b"m", QoS::ExactlyOnce, false, 1);
    publish_all_the_way(p, &m)?;
    let got = next_publish(&mut sub, p, "the QoS 2 message")?;
    sub.send(&Packet::PubRec(ack(got.pkid)))?;
    expect_pubrel(&mut sub, p, got.pkid, "after the PUBREC")?;
    // No PUBCOMP: the PUBREL stays unacknowledged in the session.
    sub.disconnect();
    let mut sub = resume(p, 1)?;
    expect_pubrel(
        &mut sub,
        p,
        got.pkid,
        "the session resumed with a PUBREL the client had not answered with PUBCOMP",
    )?;
    sub.send(&Packet::PubComp(ack(got.pkid)))?;
    sub.expect_silence(
        quiet(p),
        "the message was released and its PUBREL answered, so nothing more is owed",
    )?;
    sub.disconnect();
    Ok(Outcome::Pass)
}

/// On a resumed session, `first` (a QoS 2 message the client did not answer) comes again with
/// DUP 1 and its identifier, and its flow is completed.
fn resent_and_completed(
    conn: &mut Conn,
    p: &Probe,
    first: &Publish,
    what: &str,
) -> Result<(), Fault> {
    let again = next_publish(conn, p, what)?;
    if again.pkid != first.pkid || !again.dup || again.payload != first.payload {
        return Err(format!(
            "the session resumed with {}, not the unanswered message again with DUP 1 and identifier {}",
            describe(&Packet::Publish(again)),
            first.pkid
        ));
    }
    conn.send(&Packet::PubRec(ack(again.pkid)))?;
    expect_pubrel(conn, p, again.pkid, "after the PUBREC")?;
    conn.send(&Packet::PubComp(ack(again.pkid)))
}

/// A Message Expiry Interval the checks outlast.
const EXPIRY: u32 = 1;

/// Waits until 2 s after `since`, beyond [`EXPIRY`] and a timer of whole seconds.
fn outlast_expiry(since: Instant) {
    let until = since + Duration::from_secs(u64::from(EXPIRY) + 1) + Duration::from_millis(200);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
}

/// A QoS 2 PUBLISH of this check's with Message Expiry Interval [`EXPIRY`].
fn expiring(p: &mut Probe, topic: &str, pkid: u16) -> Packet {
    let mut m = p.publish(topic, b"m", QoS::ExactlyOnce, false, pkid);
    if let Packet::Publish(x) = &mut m {
        x.properties.message_expiry_interval = Some(EXPIRY);
    }
    m
}

fn qos2_sent_not_expired(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut sub = match qos2_subscriber(p, &topic)? {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let m = expiring(p, &topic, 1);
    let published = Instant::now();
    publish_all_the_way(p, &m)?;
    let first = next_publish(&mut sub, p, "the QoS 2 message")?;
    // Not answered: the message is in flight in the session.
    sub.disconnect();
    outlast_expiry(published);
    let mut sub = resume(p, 1)?;
    let what = format!(
        "the QoS 2 message sent before, again ({:.1} s after it was published with Message Expiry Interval {EXPIRY}: once a QoS 2 PUBLISH is sent, it does not expire)",
        published.elapsed().as_secs_f64()
    );
    resent_and_completed(&mut sub, p, &first, &what)?;
    sub.disconnect();
    Ok(Outcome::Pass)
}

fn qos2_received_expired_completed(p: &mut Probe) -> Result<Outcome, Fault> {
    const PKID: u16 = 5;
    let topic = p.topic("t");
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    let m = expiring(p, &topic, PKID);
    let published = Instant::now();
    conn.send(&m)?;
    match conn.expect("PUBREC", p.wait)? {
        Packet::PubRec(a) if a.pkid == PKID && !a.reason.is_error() => {}
        Packet::PubRec(a) if a.pkid == PKID => {
            return Ok(Outcome::Undecided(format!(
                "the broker refused the PUBLISH with PUBREC 0x{:02x}, so there is no exchange to complete",
                a.reason.as_u8()
            )));
        }
        other => {
            return Err(format!(
                "waited for a PUBREC of identifier {PKID}, got {}",
                describe(&other)
            ));
        }
    }
    outlast_expiry(published);
    conn.send(&Packet::PubRel(ack(PKID)))?;
    match conn.expect("PUBCOMP", p.wait)? {
        Packet::PubComp(a) if a.pkid == PKID && a.reason == ReasonCode::Success => {}
        other => {
            return Err(format!(
                "the PUBREL of a QoS 2 message whose Message Expiry Interval ({EXPIRY} s) had passed got {}, not PUBCOMP 0x00: the exchange is completed even when the message expired",
                describe(&other)
            ));
        }
    }
    conn.disconnect();
    Ok(Outcome::Pass)
}

fn error_ack_not_resent(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.topic("t");
    let mut sub = match qos2_subscriber(p, &topic)? {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let refused = |pkid| Ack {
        reason: ReasonCode::UnspecifiedError,
        ..ack(pkid)
    };
    for (payload, qos) in [(&b"q1"[..], QoS::AtLeastOnce), (b"q2", QoS::ExactlyOnce)] {
        let m = p.publish(&topic, payload, qos, false, 1);
        publish_all_the_way(p, &m)?;
        let got = next_publish(&mut sub, p, &format!("the QoS {} message", qos.as_u8()))?;
        sub.send(&match got.qos {
            QoS::AtLeastOnce => Packet::PubAck(refused(got.pkid)),
            _ => Packet::PubRec(refused(got.pkid)),
        })?;
    }
    sub.expect_silence(
        quiet(p),
        "the messages were answered with reason code 0x80, which ends their flows: no PUBREL may follow",
    )?;
    sub.disconnect();
    let mut sub = resume(p, 1)?;
    sub.expect_silence(
        p.wait / 2,
        "a PUBACK or PUBREC of 0x80 acknowledges its message, so the resumed session must not send it again",
    )?;
    sub.disconnect();
    Ok(Outcome::Pass)
}

/// Two members (clients 1 and 2) of a shared subscription to this check's topics at `qos`,
/// persistent when `persistent`; not applicable where the broker declines shared subscriptions
/// or grants less.
fn shared_members(
    p: &mut Probe,
    qos: QoS,
    persistent: bool,
) -> Result<Result<[Conn; 2], Outcome>, Fault> {
    let filter = format!("$share/g/{}/#", p.topic_root());
    let mut members = Vec::new();
    for n in [1, 2] {
        let id = p.client_id(n);
        let c = if persistent {
            p.persistent_packet(&id)
        } else {
            p.connect_packet(&id)
        };
        let (mut m, connack) = p.connect_with(&format!("m{n}"), c)?;
        if connack.properties.shared_subscription_available == Some(0) {
            return Ok(Err(Outcome::NotApplicable(
                "the CONNACK says Shared Subscription Available 0".into(),
            )));
        }
        let code = p.subscribe_with(
            &mut m,
            1,
            &filter,
            super::super::probe::options(qos),
            Properties::default(),
        )?;
        if code.as_u8() != qos.as_u8() {
            return Ok(Err(Outcome::NotApplicable(format!(
                "the broker answered a QoS {} shared subscription with 0x{:02x}; the check needs it granted",
                qos.as_u8(),
                code.as_u8()
            ))));
        }
        members.push(m);
    }
    let [a, b]: [Conn; 2] = members
        .try_into()
        .map_err(|_| "the check meant to make two members".to_string())?;
    Ok(Ok([a, b]))
}

/// The member that got the one message published to the group (its client number, its
/// connection, the message) and the other member's connection.
fn receiving_member(p: &Probe, members: [Conn; 2]) -> Result<(u8, Conn, Publish, Conn), Fault> {
    let [mut a, mut b] = members;
    match a.recv(quiet(p)) {
        Got::Packet(Packet::Publish(m)) => Ok((1, a, m, b)),
        Got::Silent => {
            let m = next_publish(&mut b, p, "the message, at one of the two members")?;
            Ok((2, b, m, a))
        }
        g => Err(format!(
            "a member waiting for the message got {}",
            g.describe()
        )),
    }
}

fn shared_qos2_completed_by_its_member(p: &mut Probe) -> Result<Outcome, Fault> {
    let members = match shared_members(p, QoS::ExactlyOnce, true)? {
        Ok(m) => m,
        Err(o) => return Ok(o),
    };
    let m = p.publish(&p.topic("t"), b"m", QoS::ExactlyOnce, false, 1);
    publish_all_the_way(p, &m)?;
    let (n, holder, first, mut other) = receiving_member(p, members)?;
    // Not answered: the delivery is in process when the connection breaks.
    holder.drop_abruptly();
    other.expect_silence(
        p.wait / 2,
        "a QoS 2 message in the process of delivery to one member, whose connection broke, is owed to that member when it reconnects, not to another",
    )?;
    let mut holder = resume(p, n)?;
    resent_and_completed(
        &mut holder,
        p,
        &first,
        "the QoS 2 message, sent again to the member it went to",
    )?;
    holder.disconnect();
    other.disconnect();
    Ok(Outcome::Pass)
}

fn shared_qos2_ends_with_its_session(p: &mut Probe) -> Result<Outcome, Fault> {
    let members = match shared_members(p, QoS::ExactlyOnce, false)? {
        Ok(m) => m,
        Err(o) => return Ok(o),
    };
    let m = p.publish(&p.topic("t"), b"m", QoS::ExactlyOnce, false, 1);
    publish_all_the_way(p, &m)?;
    let (_, holder, got, mut other) = receiving_member(p, members)?;
    if got.qos != QoS::ExactlyOnce {
        return Err(format!(
            "a member of a QoS 2 shared subscription got the QoS 2 message at QoS {}",
            got.qos.as_u8()
        ));
    }
    // Not answered, and the session (Session Expiry 0) ends with the connection.
    holder.drop_abruptly();
    other.expect_silence(
        p.wait,
        "a QoS 2 message sent to one member must not be sent to another when that member's session ends",
    )?;
    other.disconnect();
    Ok(Outcome::Pass)
}

fn shared_error_ack_not_redelivered(p: &mut Probe) -> Result<Outcome, Fault> {
    let members = match shared_members(p, QoS::AtLeastOnce, false)? {
        Ok(m) => m,
        Err(o) => return Ok(o),
    };
    let m = p.publish(&p.topic("t"), b"m", QoS::AtLeastOnce, false, 1);
    publish_all_the_way(p, &m)?;
    let (_, mut holder, got, mut other) = receiving_member(p, members)?;
    holder.send(&Packet::PubAck(Ack {
        reason: ReasonCode::UnspecifiedError,
        ..ack(got.pkid)
    }))?;
    other.expect_silence(
        p.wait / 2,
        "the member the message went to answered with PUBACK 0x80, so the message is dropped, not sent to another member",
    )?;
    holder.send(&Packet::PingReq)?;
    match holder.recv(p.wait) {
        Got::Packet(Packet::PingResp) => {}
        g => {
            return Err(format!(
                "after its PUBACK 0x80, the member's PINGREQ got {}",
                g.describe()
            ));
        }
    }
    holder.disconnect();
    other.disconnect();
    Ok(Outcome::Pass)
}
