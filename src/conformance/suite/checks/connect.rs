//! Connecting: CONNECT's checks, CONNACK, Session Present, takeover, keep-alive, PING.

use std::time::Duration;

use crate::codec::reason::connack_v3_return_code;
use crate::codec::{Packet, ReasonCode};

use super::super::probe::fixed_header_len;
use super::super::probe::{Conn, Fault, Got, describe};
use super::super::{Check, Outcome, Probe};
use super::{bytes_of, grace};

pub const CHECKS: &[Check] = &[
    Check {
        name: "connack-first",
        about: "A CONNECT is answered with a CONNACK first, accepting it with code 0 and Session Present 0 for a clean start, its reserved flag bits 0.",
        v3: &["MQTT-3.2.0-1", "MQTT-3.1.4-4", "MQTT-3.2.2-1"],
        v5: &[
            "MQTT-3.2.0-1",
            "MQTT-3.1.4-5",
            "MQTT-3.2.2-2",
            "MQTT-3.2.2-1",
        ],
        needs: &[],
        run: connack_first,
    },
    Check {
        name: "client-id-allowed-characters",
        about: "A CONNECT whose client identifier is 23 bytes of the digits and the letters a-z and A-Z is accepted.",
        v3: &["MQTT-3.1.3-5"],
        v5: &["MQTT-3.1.3-5"],
        needs: &[],
        run: client_id_allowed_characters,
    },
    Check {
        name: "second-connect",
        about: "A second CONNECT on a connection is a protocol violation: the broker closes the connection.",
        v3: &["MQTT-3.1.0-2"],
        v5: &["MQTT-3.1.0-2", "MQTT-3.2.0-2"],
        needs: &[],
        run: second_connect,
    },
    Check {
        name: "connect-reserved-flag",
        about: "A CONNECT whose reserved flag bit is 1 is refused: the connection closes without a CONNACK accepting it (and, in 5.0, without a DISCONNECT, which may only follow such a CONNACK).",
        v3: &["MQTT-3.1.2-3", "MQTT-3.1.4-1"],
        v5: &["MQTT-3.1.2-3", "MQTT-3.1.4-1", "MQTT-3.14.0-1"],
        needs: &[],
        run: connect_reserved_flag,
    },
    Check {
        name: "protocol-level-unsupported",
        about: "A CONNECT of protocol level 6 is refused with CONNACK 0x01 (3.1.1) or 0x84 or nothing (5.0), never a DISCONNECT, then the connection closes.",
        v3: &["MQTT-3.1.2-2", "MQTT-3.2.2-4", "MQTT-3.2.2-5"],
        v5: &[
            "MQTT-3.1.2-2",
            "MQTT-3.2.2-6",
            "MQTT-3.2.2-7",
            "MQTT-3.14.0-1",
        ],
        needs: &[],
        run: protocol_level_unsupported,
    },
    Check {
        name: "protocol-name-wrong",
        about: "A CONNECT naming protocol \"MQTX\" is not accepted: the connection closes, at most after a CONNACK refusing it (never a DISCONNECT).",
        v3: &["MQTT-3.1.2-1"],
        v5: &["MQTT-3.1.2-1", "MQTT-3.14.0-1"],
        needs: &[],
        run: protocol_name_wrong,
    },
    Check {
        name: "session-present",
        about: "A client resuming a session the broker holds gets Session Present 1; without one, 0.",
        v3: &["MQTT-3.2.2-2", "MQTT-3.2.2-3", "MQTT-3.1.4-3"],
        v5: &["MQTT-3.2.2-3", "MQTT-3.1.4-4"],
        needs: &[],
        run: session_present,
    },
    Check {
        name: "client-id-takeover",
        about: "A second connection with a connected client's identifier closes the first one (5.0: after DISCONNECT 0x8E, if any packet).",
        v3: &["MQTT-3.1.4-2"],
        v5: &["MQTT-3.1.4-3"],
        needs: &[],
        run: client_id_takeover,
    },
    Check {
        name: "pingreq-answered",
        about: "Each PINGREQ is answered with a PINGRESP.",
        v3: &["MQTT-3.12.4-1"],
        v5: &["MQTT-3.12.4-1"],
        needs: &[],
        run: pingreq_answered,
    },
    Check {
        name: "pingreq-reserved-flags",
        about: "A PINGREQ with a reserved flag bit set is malformed: the connection closes instead of a PINGRESP.",
        v3: &["MQTT-2.2.2-1", "MQTT-2.2.2-2"],
        v5: &["MQTT-2.1.3-1", "MQTT-4.13.1-1"],
        needs: &[],
        run: pingreq_reserved_flags,
    },
    Check {
        name: "disconnect-reserved-flags",
        about: "A DISCONNECT with a reserved flag bit set is malformed: the connection closes, and a will is published as for any abnormal close.",
        v3: &["MQTT-3.14.1-1"],
        v5: &["MQTT-3.14.1-1"],
        needs: &[],
        run: disconnect_reserved_flags,
    },
    Check {
        name: "keep-alive-expiry",
        about: "A client silent for 1.5 times its keep-alive of 1 second (5.0: without a Server Keep Alive in the CONNACK; with one, 1.5 times that) is disconnected.",
        v3: &["MQTT-3.1.2-24"],
        v5: &["MQTT-3.1.2-22", "MQTT-3.2.2-22"],
        needs: &[],
        run: keep_alive_expiry,
    },
    Check {
        name: "first-packet-not-connect",
        about: "A connection whose first packet is a PINGREQ, not CONNECT, is closed without an answer.",
        v3: &["MQTT-4.8.0-1"],
        v5: &["MQTT-4.13.1-1", "MQTT-3.14.0-1"],
        needs: &[],
        run: first_packet_not_connect,
    },
];

fn connack_first(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let mut conn = p.open("a")?;
    conn.send(&Packet::Connect(p.connect_packet(&id)))?;
    let raw = conn.expect("CONNACK", p.wait)?;
    let Packet::ConnAck(ack) = raw else {
        return Err("the first packet from the broker was not CONNACK".into());
    };
    if ack.reason != ReasonCode::Success {
        return Err(format!(
            "the CONNECT was refused with 0x{:02x}",
            code(&conn, ack.reason)
        ));
    }
    if ack.session_present {
        return Err("Session Present is 1 for a clean start".into());
    }
    conn.disconnect();
    Ok(Outcome::Pass)
}

fn client_id_allowed_characters(p: &mut Probe) -> Result<Outcome, Fault> {
    // This run's identifier (its tag first), then every kind of character the rule names.
    let mut id: String = p
        .client_id(0)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    id.push_str("AZaz09QWERTYUIOPasdfghjkl");
    id.truncate(23);
    let mut conn = p.open("a")?;
    conn.send(&Packet::Connect(p.connect_packet(&id)))?;
    match conn.expect("CONNACK", p.wait)? {
        Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => {
            conn.disconnect();
            Ok(Outcome::Pass)
        }
        Packet::ConnAck(ack) => Err(format!(
            "the client identifier {id:?} (23 bytes of 0-9, a-z, A-Z) was refused with 0x{:02x}",
            code(&conn, ack.reason)
        )),
        other => Err(format!("waited for CONNACK, got {}", describe(&other))),
    }
}

/// The CONNACK code as the connection's protocol writes it.
fn code(conn: &Conn, reason: ReasonCode) -> u8 {
    if conn.protocol().is_v5() {
        reason.as_u8()
    } else {
        connack_v3_return_code(reason)
    }
}

fn second_connect(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let (mut conn, _) = p.connect("a", &id)?;
    conn.send(&Packet::Connect(p.connect_packet(&id)))?;
    conn.expect_close(p.wait).map(|_| Outcome::Pass)
}

/// After a CONNECT the broker must refuse: the connection closes, in 5.0 at most after a
/// CONNACK refusing it (3.1.1 has no return code for it and closes without a CONNACK).
fn expect_refused(conn: &mut Conn, wait: Duration) -> Result<(), Fault> {
    match conn.recv(wait) {
        Got::Closed => Ok(()),
        Got::Packet(Packet::ConnAck(a)) if a.reason.is_error() && conn.protocol().is_v5() => {
            if a.session_present {
                return Err("a refusing CONNACK has Session Present 1".into());
            }
            conn.expect_close(wait).map(drop)
        }
        Got::Packet(Packet::ConnAck(a)) if a.reason.is_error() => Err(format!(
            "the broker sent CONNACK {} where it must close without a CONNACK",
            connack_v3_return_code(a.reason)
        )),
        Got::Packet(Packet::ConnAck(_)) => Err("the broker accepted the CONNECT".into()),
        g => Err(format!(
            "waited for the connection to close, got {}",
            g.describe()
        )),
    }
}

fn connect_reserved_flag(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let mut bytes = bytes_of(&Packet::Connect(p.connect_packet(&id)), p.protocol)?;
    // Protocol name (2 + 4 bytes) and level (1) come before the flags.
    let flags = fixed_header_len(&bytes) + 7;
    bytes[flags] |= 0x01;
    let mut conn = p.open("a")?;
    conn.send_raw(&bytes, "CONNECT with the reserved flag bit set")?;
    expect_refused(&mut conn, p.wait).map(|()| Outcome::Pass)
}

fn protocol_level_unsupported(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let mut bytes = bytes_of(&Packet::Connect(p.connect_packet(&id)), p.protocol)?;
    let level = fixed_header_len(&bytes) + 6;
    bytes[level] = 6;
    let mut conn = p.open_raw("a")?;
    conn.send_raw(&bytes, "CONNECT of protocol level 6")?;
    refused_in_any_version(&mut conn, p.wait, !p.v5()).map(|()| Outcome::Pass)
}

fn protocol_name_wrong(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let mut bytes = bytes_of(&Packet::Connect(p.connect_packet(&id)), p.protocol)?;
    let name = fixed_header_len(&bytes) + 2;
    bytes[name + 3] = b'X';
    let mut conn = p.open_raw("a")?;
    conn.send_raw(&bytes, "CONNECT of protocol \"MQTX\"")?;
    // 3.1.1 lets the broker refuse as it likes ([MQTT-3.1.2-1]): a close, or any refusal.
    refused_in_any_version(&mut conn, p.wait, false).map(|()| Outcome::Pass)
}

/// A CONNECT of a version or name the broker cannot know was refused: the connection closed,
/// at most after a refusing CONNACK of either layout (3.1.1: return code 1 to 5; 5.0: a reason
/// code of 0x80 or more), Session Present 0. `v3_owed`: a 3.1.1 CONNACK with return code 1
/// (unacceptable protocol version) is owed, not just allowed.
fn refused_in_any_version(conn: &mut Conn, wait: Duration, v3_owed: bool) -> Result<(), Fault> {
    match conn.recv(wait) {
        Got::Closed if !v3_owed => Ok(()),
        Got::Closed => {
            Err("the connection closed without the CONNACK with return code 1 owed".into())
        }
        Got::Bytes(b) if b.first() == Some(&0x20) && b.len() >= 4 => {
            let (session_present, code) = (b[2], b[3]);
            let v3_layout = b[1] == 2;
            if session_present != 0 {
                return Err("a refusing CONNACK has Session Present 1".into());
            }
            if v3_owed && !(v3_layout && code == 1) {
                return Err(format!(
                    "CONNACK {} where the 3.1.1 return code 1 is owed",
                    super::super::probe::hex(&b)
                ));
            }
            let refuses = if v3_layout {
                (1..=5).contains(&code)
            } else {
                code >= 0x80
            };
            if !refuses {
                return Err("the broker accepted the CONNECT".into());
            }
            conn.expect_close(wait).map(drop)
        }
        g => Err(format!("waited for a refusal, got {}", g.describe())),
    }
}

fn session_present(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    // A clean start first, so that no session from elsewhere is resumed.
    let (conn, _) = p.connect("a", &id)?;
    conn.disconnect();
    let (conn, first) = p.connect_with("a", p.persistent_packet(&id))?;
    if first.session_present {
        return Err(
            "Session Present is 1 although the broker held no session for the client".into(),
        );
    }
    conn.disconnect();
    let (conn, second) = p.connect_with("a", p.persistent_packet(&id))?;
    conn.disconnect();
    if !second.session_present {
        return Err("Session Present is 0 although the broker holds the client's session".into());
    }
    Ok(Outcome::Pass)
}

fn client_id_takeover(p: &mut Probe) -> Result<Outcome, Fault> {
    let id = p.client_id(0);
    let (mut first, _) = p.connect("a", &id)?;
    let (second, _) = p.connect("b", &id)?;
    let closed = first.expect_close(p.wait);
    second.disconnect();
    match closed {
        Err(f) => Err(format!("the first connection stayed: {f}")),
        Ok(Some(reason)) if reason != ReasonCode::SessionTakenOver => Err(format!(
            "the first connection was told 0x{:02x}, not 0x8E (session taken over)",
            reason.as_u8()
        )),
        Ok(_) => Ok(Outcome::Pass),
    }
}

fn pingreq_answered(p: &mut Probe) -> Result<Outcome, Fault> {
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    for _ in 0..2 {
        conn.send(&Packet::PingReq)?;
        match conn.expect("PINGRESP", p.wait)? {
            Packet::PingResp => {}
            other => {
                return Err(format!(
                    "a PINGREQ was answered with {}",
                    super::super::probe::describe(&other)
                ));
            }
        }
    }
    conn.disconnect();
    Ok(Outcome::Pass)
}

fn pingreq_reserved_flags(p: &mut Probe) -> Result<Outcome, Fault> {
    let (mut conn, _) = p.connect("a", &p.client_id(0))?;
    conn.send_raw(&[0xC1, 0x00], "PINGREQ with flags 0001")?;
    conn.expect_close(p.wait).map(|_| Outcome::Pass)
}

fn disconnect_reserved_flags(p: &mut Probe) -> Result<Outcome, Fault> {
    let watcher_id = p.client_id(1);
    let topic = p.topic("will");
    let (mut watcher, _) = p.connect("w", &watcher_id)?;
    p.subscribe(&mut watcher, &topic, crate::codec::QoS::AtMostOnce)?;
    let id = p.client_id(0);
    let mut c = p.connect_packet(&id);
    c.will = Some(Box::new(p.will(
        &topic,
        b"gone",
        crate::codec::QoS::AtMostOnce,
        false,
    )));
    let (mut conn, _) = p.connect_with("a", c)?;
    conn.send_raw(&[0xE1, 0x00], "DISCONNECT with flags 0001")?;
    conn.expect_close(p.wait)?;
    match watcher.recv(p.wait) {
        Got::Packet(Packet::Publish(w)) if w.topic == topic => {}
        g => {
            return Err(format!(
                "the connection closed on a malformed DISCONNECT, which is no normal disconnection, but the will did not come: {}",
                g.describe()
            ));
        }
    }
    watcher.disconnect();
    Ok(Outcome::Pass)
}

fn keep_alive_expiry(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut c = p.connect_packet(&p.client_id(0));
    c.keep_alive = 1;
    let (mut conn, ack) = p.connect_with("a", c)?;
    let granted = ack.properties.server_keep_alive.map_or(1, u64::from);
    if granted == 0 || granted > 5 {
        // The broker may set its own keep-alive ([MQTT-3.2.2-21]); the rule then binds that.
        return Ok(Outcome::NotApplicable(format!(
            "the broker set Server Keep Alive {granted}; the check waits only for keep-alives of 1 to 5 s"
        )));
    }
    let limit = Duration::from_millis(granted * 1500);
    let start = std::time::Instant::now();
    // Wait well past the limit, so that a late close is reported with its time.
    conn.expect_close(grace(limit) + Duration::from_secs(10))?;
    let after = start.elapsed();
    if after > grace(limit) {
        return Err(format!(
            "the broker closed the silent connection {:.1} s after the CONNACK; 1.5 times the keep-alive is {:.1} s",
            after.as_secs_f64(),
            limit.as_secs_f64()
        ));
    }
    Ok(Outcome::Pass)
}

fn first_packet_not_connect(p: &mut Probe) -> Result<Outcome, Fault> {
    let mut conn = p.open("a")?;
    conn.send(&Packet::PingReq)?;
    match conn.recv(p.wait) {
        Got::Closed => Ok(Outcome::Pass),
        g => Err(format!(
            "a connection that began with PINGREQ got {} instead of being closed",
            g.describe()
        )),
    }
}
