//! Authentication and authorization, with the settings the broker under test is configured
//! with (`--user`/`--password`, `--denied-topic`).

use crate::codec::{Packet, QoS};

use super::super::probe::{Fault, Got, describe};
use super::super::{Check, Need, Outcome, Probe};

pub const CHECKS: &[Check] = &[
    Check {
        name: "bad-password-refused",
        about: "A CONNECT with the configured user and a wrong password is refused with a CONNACK, Session Present 0, then the connection closes (in 5.0, without a DISCONNECT, which may only follow a CONNACK accepting the connection).",
        v3: &["MQTT-3.2.2-4", "MQTT-3.2.2-5"],
        v5: &[
            "MQTT-3.1.4-2",
            "MQTT-3.2.2-6",
            "MQTT-3.2.2-7",
            "MQTT-3.14.0-1",
        ],
        needs: &[Need::User],
        run: bad_password_refused,
    },
    Check {
        name: "publish-denied",
        about: "A QoS 1 PUBLISH to a topic the client may not write is acknowledged as usual or the connection closed, and nobody receives it.",
        v3: &["MQTT-3.3.5-2"],
        v5: &[],
        needs: &[Need::DeniedTopic],
        run: publish_denied,
    },
];

fn bad_password_refused(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut c = p.connect_packet(&p.client_id(0));
    if let Some(pw) = &mut c.password {
        let mut wrong = pw.to_vec();
        wrong.extend_from_slice(b"-not-it");
        *pw = wrong.into();
    }
    let mut conn = p.open("a")?;
    conn.send(&Packet::Connect(c))?;
    match conn.expect("CONNACK", p.wait)? {
        Packet::ConnAck(a) if a.reason.is_error() => {
            if a.session_present {
                return Err("the refusing CONNACK has Session Present 1".into());
            }
            conn.expect_close(p.wait)?;
            Ok(Outcome::Pass)
        }
        other => Err(format!(
            "a wrong password was answered with {}",
            describe(&other)
        )),
    }
}

fn publish_denied(p: &mut Probe) -> Result<Outcome, Fault> {
    let topic = p.settings.denied_topic.clone().unwrap_or_default();
    let (mut watcher, _) = p.connect("w", &p.client_id(1))?;
    // Reading the topic may be denied too; then only the publisher's side can be judged.
    let watching = p.subscribe(&mut watcher, &topic, QoS::AtLeastOnce).is_ok();
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    let publish = p.publish(&topic, b"denied", QoS::AtLeastOnce, false, 7);
    conn.send(&publish)?;
    match conn.recv(p.wait) {
        Got::Packet(Packet::PubAck(a)) if a.pkid == 7 => {}
        Got::Closed => {}
        g => {
            return Err(format!(
                "an unauthorised QoS 1 PUBLISH got {} instead of a PUBACK or a close",
                g.describe()
            ));
        }
    }
    if watching {
        watcher.expect_silence(p.wait / 2, "nobody may receive an unauthorised PUBLISH")?;
    }
    watcher.disconnect();
    Ok(Outcome::Pass)
}
