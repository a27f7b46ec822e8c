//! What the target says about itself before any run: one 3.1.1 and one 5.0 connection, and
//! the limits its 5.0 CONNACK reveals ([`Identity`]). The report prints it beside the results,
//! and the scenarios' requirements are checked against it (`requirements.rs`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::client::{ClientConfig, ClientEvent, DownCause};
use crate::codec::{Properties, Protocol, ReasonCode};
use crate::net::client::{ClientOptions, MqttClient};

/// Longest a probe connection may take to be answered.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// The target as its CONNACKs showed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity {
    pub address: String,
    /// How it answered a 3.1.1 CONNECT: `accepted`, or why not.
    pub v311: String,
    /// How it answered a 5.0 CONNECT.
    pub v5: String,
    /// The limits of its 5.0 CONNACK, if it accepted one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// A 5.0 CONNACK's limits, with the protocol's value where a property is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub receive_maximum: u16,
    pub maximum_qos: u8,
    pub retain_available: bool,
    /// `None`: no limit beyond the protocol's.
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: u16,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
    /// The keep-alive it imposed on a client asking for 65535 s, if it imposed one.
    pub server_keep_alive: Option<u16>,
    /// The session expiry it granted a client asking for "never", if it granted less.
    pub session_expiry: Option<u32>,
}

impl Limits {
    /// The limits a CONNACK's `properties` state.
    pub fn of(p: &Properties) -> Limits {
        let yes = |v: Option<u8>| v != Some(0);
        Limits {
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            maximum_qos: p.maximum_qos.unwrap_or(2),
            retain_available: yes(p.retain_available),
            maximum_packet_size: p.maximum_packet_size,
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            wildcard_subscriptions: yes(p.wildcard_subscription_available),
            subscription_identifiers: yes(p.subscription_identifier_available),
            shared_subscriptions: yes(p.shared_subscription_available),
            server_keep_alive: p.server_keep_alive,
            session_expiry: p.session_expiry_interval.filter(|s| *s != u32::MAX),
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let avail = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "receive maximum {}, maximum QoS {}, retain {}, maximum packet size {}, topic alias maximum {}, wildcard subscriptions {}, subscription identifiers {}, shared subscriptions {}",
            self.receive_maximum,
            self.maximum_qos,
            avail(self.retain_available),
            self.maximum_packet_size
                .map_or("none".to_string(), |n| n.to_string()),
            self.topic_alias_maximum,
            avail(self.wildcard_subscriptions),
            avail(self.subscription_identifiers),
            avail(self.shared_subscriptions),
        )?;
        if let Some(k) = self.server_keep_alive {
            write!(f, ", server keep-alive {k} s")?;
        }
        if let Some(s) = self.session_expiry {
            write!(f, ", session expiry at most {s} s")?;
        }
        Ok(())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: 3.1.1 {}; 5.0 {}", self.address, self.v311, self.v5)?;
        if let Some(l) = &self.limits {
            write!(f, " ({l})")?;
        }
        Ok(())
    }
}

/// Connects to `target` once per protocol version (client identifier `mqtt-lab-probe-TAG`)
/// and leaves no session behind. Call it inside a runtime.
pub async fn probe(target: SocketAddr, tag: &str) -> Identity {
    let id = format!("mqtt-lab-probe-{tag}");
    let v311 = connect(target, &id, Protocol::V3_1_1, |_| ()).await;
    let v5 = connect(target, &id, Protocol::V5, |c| {
        // Ask for the most, so that the CONNACK says what the broker allows.
        c.keep_alive = u16::MAX;
        c.session_expiry = Some(u32::MAX);
    })
    .await;
    if v5.is_ok() {
        // Ends the session the question opened.
        let _ = connect(target, &id, Protocol::V5, |c| c.session_expiry = Some(0)).await;
    }
    let answer = |r: &Result<Properties, String>| match r {
        Ok(_) => "accepted".to_string(),
        Err(e) => e.clone(),
    };
    Identity {
        address: target.to_string(),
        v311: answer(&v311),
        v5: answer(&v5),
        limits: v5.as_ref().ok().map(Limits::of),
    }
}

/// One clean connection: the CONNACK's properties, or why there was none.
async fn connect(
    target: SocketAddr,
    id: &str,
    protocol: Protocol,
    tune: impl FnOnce(&mut ClientConfig),
) -> Result<Properties, String> {
    let mut config = ClientConfig {
        client_id: id.to_string(),
        clean_start: true,
        protocol,
        ..ClientConfig::default()
    };
    config.reconnect.enabled = false;
    tune(&mut config);
    let (client, mut events) = MqttClient::start(ClientOptions::new(target.to_string(), config))
        .map_err(|e| format!("cannot connect: {e}"))?;
    let answer = async {
        while let Some(ev) = events.recv().await {
            match ev {
                ClientEvent::Connected { properties, .. } => return Ok(properties),
                ClientEvent::ConnectionLost { cause } => {
                    return Err(match cause {
                        DownCause::Refused(r) => format!("refused ({r:?})"),
                        other => format!("no CONNACK ({other})"),
                    });
                }
                _ => {}
            }
        }
        Err("no CONNACK".to_string())
    };
    let result = match tokio::time::timeout(PROBE_WAIT, answer).await {
        Ok(r) => r,
        Err(_) => Err(format!("no CONNACK within {PROBE_WAIT:?}")),
    };
    if result.is_ok() {
        client.disconnect(ReasonCode::Success).await;
    }
    result
}
