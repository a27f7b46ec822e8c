//! What leaves towards one connection, per MQTT 5.0 connection limits: the client's maximum
//! packet size ([MQTT-3.1.2-24]), its request for problem information ([MQTT-3.1.2-29]) and
//! outbound topic aliases.
//!
//! - A PUBLISH larger than the client allows is not sent and is treated as sent and completed
//!   ([MQTT-3.1.2-25]): a QoS 1/2 message does not enter the inflight window. Counted in
//!   `BrokerStats::oversize_dropped`.
//! - Any other packet too large first loses its reason string and user properties
//!   ([MQTT-3.2.2-19], [MQTT-3.4.2-2], [MQTT-3.14.2-3], ...); if it still does not fit it is not
//!   sent (counted the same way).
//! - With request problem information 0, reason strings and user properties are sent only on
//!   PUBLISH, CONNACK and DISCONNECT.
//! - Outbound topic aliases, in the connection's `codec::alias` table: when the client allows
//!   aliases (topic alias maximum > 0 in its CONNECT), up to `min(its maximum,
//!   max_outbound_topic_aliases)`, assigned in order of first use. A PUBLISH dropped as too large
//!   assigns no alias. Aliases belong to the connection and start afresh on reconnect.
//!
//! Not here: inbound topic aliases (`publish.rs`).

use std::collections::VecDeque;
use std::time::Duration;

use crate::codec::alias::{self, OutboundAliases};
use crate::codec::{self, Packet, Protocol, Publish};

use super::{Action, BrokerStats, ConnId};
use crate::codec::MAX_PACKET_SIZE;

/// The outbound state of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    /// The client's maximum packet size.
    pub max_packet_size: u32,
    /// False when the client sent request problem information 0.
    pub problem_information: bool,
    /// Aliases the broker uses towards this client.
    pub aliases: OutboundAliases,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            max_packet_size: MAX_PACKET_SIZE,
            problem_information: true,
            aliases: OutboundAliases::default(),
        }
    }
}

impl Outbound {
    /// `packet` as it may be sent, or `None` if it cannot be sent at all.
    pub fn fit(&self, mut packet: Packet, protocol: Protocol) -> Option<Packet> {
        if !protocol.is_v5() {
            return Some(packet);
        }
        let keeps_problem_info = matches!(
            packet,
            Packet::Publish(_) | Packet::ConnAck(_) | Packet::Disconnect(_)
        );
        if !self.problem_information && !keeps_problem_info {
            strip_diagnostics(&mut packet);
        }
        if self.fits(&packet, protocol) {
            return Some(packet);
        }
        if matches!(packet, Packet::Publish(_)) {
            return None;
        }
        strip_diagnostics(&mut packet);
        self.fits(&packet, protocol).then_some(packet)
    }

    fn fits(&self, packet: &Packet, protocol: Protocol) -> bool {
        codec::encoded_len(packet, protocol).is_ok_and(|n| n <= self.max_packet_size as usize)
    }
}

/// Removes the reason string and user properties of a packet other than PUBLISH.
fn strip_diagnostics(packet: &mut Packet) {
    let props = match packet {
        Packet::ConnAck(p) => &mut p.properties,
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            &mut a.properties
        }
        Packet::SubAck(s) => &mut s.properties,
        Packet::UnsubAck(u) => &mut u.properties,
        Packet::Disconnect(d) => &mut d.properties,
        Packet::Auth(a) => &mut a.properties,
        _ => return,
    };
    props.reason_string = None;
    props.user_properties.clear();
}

/// A session's view of the connection it is attached to, for sending its messages.
pub(crate) struct Tx<'a> {
    pub conn: ConnId,
    pub protocol: Protocol,
    /// min(max_inflight, the client's receive maximum).
    pub window: usize,
    /// Logical time (`clock.rs`), for message expiry.
    pub now: Duration,
    pub outbound: &'a mut Outbound,
    pub actions: &'a mut VecDeque<Action>,
    pub stats: &'a mut BrokerStats,
    /// What the PUBLISHes sent through it reveal of the durable state: the changes of broker
    /// events up to this one (`Some(0)`: none), or, `None`, every change so far.
    pub needs: Option<u64>,
}

impl Tx<'_> {
    /// A PUBLISH sent reveals the changes of broker event `event` (and those before it).
    pub fn needs_event(&mut self, event: u64) {
        if let Some(n) = self.needs {
            self.needs = Some(n.max(event));
        }
    }

    /// A PUBLISH sent reveals every change made so far.
    pub fn needs_everything(&mut self) {
        self.needs = None;
    }

    /// Sends a PUBLISH, with an outbound topic alias where one applies. False if it is too
    /// large for the client and was dropped (and counted).
    pub fn publish(&mut self, mut p: Publish) -> bool {
        let mut assigned = None;
        if self.protocol.is_v5()
            && let Some((a, known)) = self.outbound.aliases.choose(&p.topic)
        {
            alias::apply(&mut p, a, known);
            if !known {
                assigned = Some((p.topic.clone(), a));
            }
        }
        let Some(packet) = self.outbound.fit(Packet::Publish(p), self.protocol) else {
            self.stats.oversize_dropped += 1;
            tracing::debug!(
                conn = self.conn,
                "PUBLISH larger than the client allows: dropped"
            );
            return false;
        };
        if let Some((topic, a)) = assigned {
            self.outbound.aliases.commit(&topic, a);
        }
        self.actions.push_back(Action::Send {
            conn: self.conn,
            protocol: self.protocol,
            packet,
        });
        true
    }

    /// Sends a packet other than PUBLISH (a PUBREL on resumption).
    pub fn control(&mut self, packet: Packet) {
        match self.outbound.fit(packet, self.protocol) {
            Some(packet) => self.actions.push_back(Action::Send {
                conn: self.conn,
                protocol: self.protocol,
                packet,
            }),
            None => self.stats.oversize_dropped += 1,
        }
    }
}
