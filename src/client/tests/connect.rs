//! CONNECT options, CONNACK handling, the CONNACK timeout and protocol errors at connect.

use super::*;
use crate::codec::{LastWill, Packet};

fn will() -> LastWill {
    LastWill {
        topic: "status/c1".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::from(PropertySet {
            will_delay_interval: Some(5),
            ..PropertySet::default()
        }),
    }
}

#[test]
fn v311_connect_carries_the_configured_options_without_5_0_properties() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.clean_start = true;
    cfg.will = Some(will());
    cfg.username = Some("u".into());
    cfg.password = Some(Bytes::from_static(b"p"));
    cfg.session_expiry = Some(100);
    cfg.receive_maximum = 10;
    let mut h = H::new(cfg);
    let c = h.connect_with(connack(false));
    assert_eq!(c.protocol, Protocol::V3_1_1);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 10);
    assert_eq!(c.client_id, "c1");
    assert_eq!(
        (c.username.as_deref(), c.password.as_deref()),
        (Some("u"), Some(&b"p"[..]))
    );
    assert!(
        c.properties.is_empty(),
        "3.1.1 CONNECT has no properties: {:?}",
        c.properties
    );
    let w = c.will.unwrap();
    assert_eq!(
        (w.topic.as_str(), w.qos, w.retain),
        ("status/c1", QoS::AtLeastOnce, true)
    );
    assert!(w.properties.is_empty(), "3.1.1 will has no properties");
    assert_eq!(h.c.state(), ConnState::Connected);
}

#[test]
fn v5_connect_carries_session_expiry_receive_maximum_packet_size_and_will_properties() {
    let mut cfg = config(Protocol::V5);
    cfg.session_expiry = Some(300);
    cfg.receive_maximum = 20;
    cfg.max_packet_size = 4096;
    cfg.will = Some(will());
    let mut h = H::new(cfg);
    let c = h.connect_with(connack(false));
    assert_eq!(c.properties.session_expiry_interval, Some(300));
    assert_eq!(c.properties.receive_maximum, Some(20));
    assert_eq!(c.properties.maximum_packet_size, Some(4096));
    assert_eq!(c.will.unwrap().properties.will_delay_interval, Some(5));
    let mut h = H::v5();
    let c = h.connect_with(connack(false));
    assert_eq!(
        c.properties.receive_maximum, None,
        "the 65535 default is not sent"
    );
}

#[test]
fn connected_event_reports_session_present_and_properties() {
    let mut h = H::v5();
    let props = Properties::from(PropertySet {
        receive_maximum: Some(5),
        ..PropertySet::default()
    });
    h.connect_with(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: props.clone(),
    });
    assert_eq!(
        h.events(),
        vec![ClientEvent::Connected {
            session_present: true,
            reason: ReasonCode::Success,
            properties: props
        }]
    );
    assert_eq!(h.c.broker_limits().receive_maximum, 5);
}

/// A permanent refusal (bad credentials) stops: no reconnect timer.
#[test]
fn connack_refused_permanently_goes_idle() {
    let mut h = H::v5();
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::BadUserNameOrPassword,
        properties: Properties::default(),
    });
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(
        h.events(),
        vec![ClientEvent::ConnectionLost {
            cause: DownCause::Refused(ReasonCode::BadUserNameOrPassword)
        }]
    );
    assert_eq!(h.c.state(), ConnState::Idle);
    assert_eq!(h.c.poll_timeout(), None);
}

#[test]
fn connack_refused_transiently_reconnects() {
    let mut h = H::v311();
    h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::ServerUnavailable,
        properties: Properties::default(),
    });
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(h.c.state(), ConnState::Backoff);
    assert_eq!(h.fire(), h.t0 + Duration::from_secs(1));
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
}

/// [MQTT-3.2.2-4] (5.0) a client without session state that receives Session Present 1 must
/// close the connection; with clean start it has none.
#[test]
fn mqtt_3_2_2_4_session_present_after_clean_start_closes() {
    let mut cfg = config(Protocol::V5);
    cfg.clean_start = true;
    let mut h = H::new(cfg);
    h.connect_with(connack(true));
    let acts = h.actions();
    assert_eq!(acts.last(), Some(&ClientAction::CloseTransport));
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::ProtocolError)
    );
    assert!(h.events().contains(&ClientEvent::ConnectionLost {
        cause: DownCause::ProtocolError(ReasonCode::ProtocolError)
    }));
    assert_ne!(h.c.state(), ConnState::Connected);
}

/// [MQTT-3.2.0-1] the first packet from the server must be CONNACK.
#[test]
fn mqtt_3_2_0_1_a_packet_before_connack_is_a_protocol_error() {
    let mut h = H::v311();
    h.c.connect(h.now);
    let _ = h.actions();
    h.c.handle_transport_up(h.now);
    let _ = h.sent();
    h.recv(Packet::Publish(incoming(0, QoS::AtMostOnce, false)));
    assert_eq!(
        h.actions(),
        vec![ClientAction::CloseTransport],
        "3.1.1 has no DISCONNECT to send"
    );
    let events = h.events();
    assert!(
        !events.iter().any(|e| matches!(e, ClientEvent::Message(_))),
        "nothing delivered before CONNACK"
    );
    assert!(events.contains(&ClientEvent::ConnectionLost {
        cause: DownCause::ProtocolError(ReasonCode::ProtocolError)
    }));
}

#[test]
fn no_connack_within_connect_timeout_closes_and_retries() {
    let mut h = H::v311();
    h.c.connect(h.now);
    assert_eq!(h.actions(), vec![ClientAction::OpenTransport]);
    h.at(1);
    h.c.handle_transport_up(h.now);
    let _ = h.sent();
    assert_eq!(
        h.c.poll_timeout(),
        Some(h.t0 + Duration::from_secs(5)),
        "timed from OpenTransport"
    );
    h.at_ms(4999);
    assert!(h.actions().is_empty());
    h.at(5);
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(
        h.events(),
        vec![
            ClientEvent::ConnectionLost {
                cause: DownCause::ConnectTimeout
            },
            ClientEvent::Reconnecting {
                attempt: 1,
                delay: Duration::from_secs(1)
            },
        ]
    );
}

#[test]
fn transport_that_never_opens_times_out_too() {
    let mut h = H::v311();
    h.c.connect(h.now);
    let _ = h.actions();
    h.at(5);
    assert_eq!(h.actions(), vec![ClientAction::CloseTransport]);
    assert_eq!(h.c.state(), ConnState::Backoff);
}

/// A 5.0 broker may assign the client id; reconnects must use it to find the session.
#[test]
fn assigned_client_identifier_is_used_on_reconnect() {
    let mut cfg = config(Protocol::V5);
    cfg.client_id = String::new();
    let mut h = H::new(cfg);
    let first = h.connect_with(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::from(PropertySet {
            assigned_client_identifier: Some("auto-1".into()),
            ..PropertySet::default()
        }),
    });
    assert_eq!(first.client_id, "");
    assert_eq!(h.c.client_id(), "auto-1");
    h.c.handle_transport_down(h.now, DownCause::PeerClosed);
    h.fire();
    let second = h.open_with(connack(true));
    assert_eq!(second.client_id, "auto-1");
}

#[test]
fn second_connack_is_a_protocol_error() {
    let mut h = H::v5();
    h.connect(false);
    h.recv(Packet::ConnAck(connack(false)));
    let acts = h.actions();
    assert!(
        matches!(&acts[0], ClientAction::Send(Packet::Disconnect(d)) if d.reason == ReasonCode::ProtocolError)
    );
    assert_eq!(acts[1], ClientAction::CloseTransport);
}

#[test]
fn invalid_config_is_refused() {
    let mut cfg = config(Protocol::V3_1_1);
    cfg.password = Some(Bytes::from_static(b"p"));
    assert_eq!(Client::try_new(cfg, 1).unwrap_err().field, "password");
    let mut cfg = config(Protocol::V3_1_1);
    cfg.client_id = String::new();
    assert_eq!(Client::try_new(cfg, 1).unwrap_err().field, "client_id");
}

/// The async shell moves the core and its events across tasks.
#[test]
fn core_and_events_are_send() {
    fn send<T: Send + 'static>() {}
    send::<Client>();
    send::<ClientEvent>();
    send::<ClientAction>();
}
