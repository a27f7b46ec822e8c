//! The "handshake" checker: the QoS 1 and 2 acknowledgement handshakes as the clients saw them
//! on the wire (`publish_sent`, `publish_received`, `ack_sent`, `ack_received`), and what a
//! settled run owes them.
//!
//! - **Flow control**: on one connection, the QoS 1 and 2 PUBLISH packets a client received and
//!   has not yet completed (PUBACK or PUBCOMP sent, or a PUBREC with an error code) never
//!   exceed the client's Receive Maximum [MQTT-3.3.4-9] nor the broker's own window
//!   (`max_inflight` of `run_started`). Counted at the client, this is never more than what
//!   the broker had outstanding when it sent the newest one (the client completes an exchange
//!   before the broker can learn it), so an excess is the broker's. The same for what a client
//!   sends against the broker's Receive Maximum from CONNACK [MQTT-3.3.4-7], counted exactly.
//! - **Every QoS 1 and 2 publish ends**: a publish requested before `settle_started` by a
//!   client that is connected for the last `network_slack` of the run ends with
//!   `publish_acked` or `publish_lost`; a client that stops resending after a reconnect
//!   [MQTT-4.4.0-1] leaves it hanging. Excused: requests of a process that later crashed or
//!   was powered off (its memory is gone; the lab restarts it fresh).
//! - **Every QoS 2 exchange is released**: a PUBREC a client sent (success) is answered by a
//!   PUBREL for that identifier by the end, when the client is connected for the last
//!   `network_slack` of the run and its session was not replaced since (section 4.3.3;
//!   resent on a resumed session [MQTT-4.4.0-1]).
//!
//! - **Every SUBSCRIBE and UNSUBSCRIBE is answered**: the latest request for a filter (either
//!   kind, by any process of the client identifier), sent before `settle_started`, has its
//!   SUBACK (`subscribe_granted`, a refusal included) or UNSUBACK (`unsubscribed`) by the end
//!   when the process that sent it is connected for the last `network_slack` of the run
//!   [MQTT-3.8.4-1] [MQTT-3.10.4-4]: a client resends what it has not seen answered, and the
//!   broker answers every request. Excused as for publishes: requests of a process that later
//!   crashed or was powered off.
//!
//! Whether the messages reach their subscribers is "delivery"'s concern; this checker judges
//! only the exchanges themselves.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckConfig, Violation};
use crate::trace::{AckPacket, Event, Fault, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "handshake";

/// One client's view of its connections and exchanges, as the trace tells it so far.
#[derive(Default)]
struct ClientState<'t> {
    /// When the current connection's CONNACK arrived; `None` while not connected.
    up_since: Option<u64>,
    /// Publishes requested (QoS 1/2) awaiting their outcome: (label, requested at), oldest first.
    pending: Vec<(&'t str, u64)>,
    /// Received PUBLISH identifiers not completed on the current connection.
    inbound: BTreeSet<u16>,
    /// Sent PUBLISH identifiers not completed on the current connection.
    outbound: BTreeSet<u16>,
    /// The Receive Maximum of the latest CONNECT (5.0).
    receive_maximum: Option<u16>,
    /// The broker's Receive Maximum on the current connection (5.0).
    broker_receive_maximum: Option<u16>,
    /// Whether the window rule already reported the current connection (once per connection).
    reported_in: bool,
    reported_out: bool,
    /// QoS 2 exchanges this client answered with PUBREC, awaiting PUBREL: id → (label, at).
    awaiting_rel: BTreeMap<u16, (Option<&'t str>, u64)>,
}

/// The latest SUBSCRIBE or UNSUBSCRIBE sent for one filter of a client identifier, unanswered.
struct Request<'t> {
    subscribe: bool,
    process: &'t str,
    at: u64,
}

impl ClientState<'_> {
    /// The violation of [MQTT-3.3.4-7], once per connection, when what this client has sent
    /// and not seen completed exceeds the broker's Receive Maximum; `newest` is the PUBLISH
    /// that just went out, if the check is for one.
    fn outbound_excess(
        &mut self,
        client: &str,
        at: u64,
        newest: Option<(&str, u16)>,
    ) -> Option<Violation> {
        let limit = self.broker_receive_maximum?;
        if self.outbound.len() <= usize::from(limit) || self.reported_out {
            return None;
        }
        self.reported_out = true;
        let what = match newest {
            Some((payload, id)) => format!(
                "sent {payload} (id {id}) with {} other",
                self.outbound.len() - 1
            ),
            None => format!("had {}", self.outbound.len()),
        };
        Some(Violation {
            checker: NAME,
            at_us: at,
            message: format!(
                "{client} {what} QoS 1/2 publishes of this connection not yet completed, more than the broker's Receive Maximum ({limit}) [MQTT-3.3.4-7]"
            ),
        })
    }

    fn down(&mut self) {
        self.up_since = None;
        self.inbound.clear();
        self.outbound.clear();
    }
}

pub fn check(trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut clients: BTreeMap<&str, ClientState<'_>> = BTreeMap::new();
    let mut broker_window: Option<u64> = None;
    let mut settle_at: Option<u64> = None;
    let mut end_at: Option<u64> = None;
    // Process → its client identifier, as the trace has shown them so far.
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    // (client identifier, filter) → the latest request for it, until answered.
    let mut requests: BTreeMap<(&str, &str), Request<'_>> = BTreeMap::new();
    for te in &trace.events {
        let at = te.at_us;
        // Connections and exchanges are a process's; faults name processes too.
        let process = te.process().unwrap_or_default();
        if let Some(client) = te.event.client() {
            owners.insert(process, client);
        }
        match &te.event {
            Event::RunStarted { max_inflight, .. } => broker_window = *max_inflight,
            Event::SettleStarted => settle_at = Some(at),
            Event::RunEnded => end_at = Some(at),
            Event::FaultApplied {
                fault: Fault::ClientCrash { client } | Fault::ClientPowerOff { client },
            } => {
                let c = clients.entry(client).or_default();
                c.pending.clear();
                c.down();
                requests.retain(|_, r| r.process != client.as_str());
            }
            Event::SubscribeRequested { client, filter, .. }
            | Event::UnsubscribeRequested { client, filter } => {
                let subscribe = matches!(te.event, Event::SubscribeRequested { .. });
                let request = Request {
                    subscribe,
                    process,
                    at,
                };
                requests.insert((client, filter), request);
            }
            Event::SubscribeGranted { client, filter, .. }
            | Event::Unsubscribed { client, filter } => {
                let subscribe = matches!(te.event, Event::SubscribeGranted { .. });
                let key = (client.as_str(), filter.as_str());
                if requests.get(&key).is_some_and(|r| r.subscribe == subscribe) {
                    requests.remove(&key);
                }
            }
            // The wire observer records the packets of a new connection as they cross it,
            // possibly before the application reads the CONNACK: windows start at CONNECT.
            Event::Connecting {
                receive_maximum, ..
            } => {
                let c = clients.entry(process).or_default();
                c.down();
                c.receive_maximum = *receive_maximum;
                c.broker_receive_maximum = None;
                c.reported_in = false;
                c.reported_out = false;
            }
            Event::Connected {
                client,
                session_present,
                receive_maximum,
                ..
            } => {
                // A takeover: the broker closed the connections of the other processes of
                // this client identifier, and their QoS 2 exchanges went on with the session.
                for (p, c) in clients.iter_mut() {
                    if *p != process && owners.get(p) == Some(&client.as_str()) {
                        c.down();
                        c.awaiting_rel.clear();
                    }
                }
                let c = clients.entry(process).or_default();
                c.up_since = Some(at);
                c.broker_receive_maximum = *receive_maximum;
                if !session_present {
                    c.awaiting_rel.clear();
                }
                out.extend(c.outbound_excess(client, at, None));
            }
            Event::ConnectionLost { .. } | Event::DisconnectSent { .. } => {
                clients.entry(process).or_default().down();
            }
            Event::PublishRequested {
                client,
                qos,
                payload,
                ..
            } if *qos > 0 => clients
                .entry(process)
                .or_default()
                .pending
                .push((payload, at)),
            Event::PublishAcked { payload, .. } | Event::PublishLost { payload, .. } => {
                let c = clients.entry(process).or_default();
                if let Some(i) = c.pending.iter().position(|(l, _)| l == payload) {
                    c.pending.remove(i);
                }
            }
            Event::PublishReceived {
                client,
                payload,
                packet_id,
                ..
            } => {
                let c = clients.entry(process).or_default();
                c.inbound.insert(*packet_id);
                let limit = [broker_window, c.receive_maximum.map(u64::from)]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(limit) = limit
                    && c.inbound.len() as u64 > limit
                    && !c.reported_in
                {
                    c.reported_in = true;
                    out.push(Violation {
                        checker: NAME,
                        at_us: at,
                        message: format!(
                            "{client} received {payload} (id {packet_id}) with {} QoS 1/2 messages of this connection not yet completed, more than the broker may have unacknowledged towards it ({limit}: its Receive Maximum and the broker's max_inflight) [MQTT-3.3.4-9]",
                            c.inbound.len() - 1
                        ),
                    });
                }
            }
            Event::PublishSent {
                client,
                payload,
                packet_id,
                ..
            } => {
                let c = clients.entry(process).or_default();
                c.outbound.insert(*packet_id);
                out.extend(c.outbound_excess(client, at, Some((payload, *packet_id))));
            }
            Event::AckSent {
                packet,
                packet_id,
                payload,
                reason,
                ..
            } => {
                let c = clients.entry(process).or_default();
                if packet.ends_exchange(*reason) {
                    c.inbound.remove(packet_id);
                } else if *packet == AckPacket::Pubrec {
                    c.awaiting_rel.insert(*packet_id, (payload.as_deref(), at));
                }
            }
            Event::AckReceived {
                packet,
                packet_id,
                reason,
                ..
            } => {
                let c = clients.entry(process).or_default();
                if packet.ends_exchange(*reason) {
                    c.outbound.remove(packet_id);
                } else if *packet == AckPacket::Pubrel {
                    c.awaiting_rel.remove(packet_id);
                }
            }
            _ => {}
        }
    }
    let (Some(end), Some(settle)) = (end_at, settle_at) else {
        return out;
    };
    let slack = cfg.network_slack_us;
    let connected_to_the_end =
        |c: &ClientState<'_>| c.up_since.filter(|&up| up.saturating_add(slack) <= end);
    for ((client, filter), r) in &requests {
        let Some(up) = clients.get(r.process).and_then(connected_to_the_end) else {
            continue;
        };
        if r.at >= settle {
            continue;
        }
        let (packet, answer, rule) = if r.subscribe {
            ("SUBSCRIBE", "SUBACK", "MQTT-3.8.4-1")
        } else {
            ("UNSUBSCRIBE", "UNSUBACK", "MQTT-3.10.4-4")
        };
        out.push(Violation {
            checker: NAME,
            at_us: end,
            message: format!(
                "{process} sent {packet} {filter} for {client} at {}, before the run settled, and never got its {answer}, though it was connected from {} to the end [{rule}]",
                secs(r.at),
                secs(up),
                process = r.process,
            ),
        });
    }
    for (client, c) in &clients {
        let Some(up) = connected_to_the_end(c) else {
            continue;
        };
        for &(label, requested) in c.pending.iter().filter(|(_, t)| *t < settle) {
            out.push(Violation {
                checker: NAME,
                at_us: end,
                message: format!(
                    "{client} asked to publish {label} at {}, before the run settled, and it was never acknowledged nor reported lost, though {client} was connected from {} to the end: unacknowledged publishes are resent on a resumed session [MQTT-4.4.0-1]",
                    secs(requested),
                    secs(up)
                ),
            });
        }
        for (id, (label, at)) in &c.awaiting_rel {
            if at.saturating_add(slack) > end {
                continue;
            }
            out.push(Violation {
                checker: NAME,
                at_us: end,
                message: format!(
                    "{client} answered the QoS 2 PUBLISH {} (id {id}) with PUBREC at {} and never received its PUBREL, though its session went on and it was connected from {} to the end: the sender must release it (section 4.3.3), resending PUBREL on a resumed session [MQTT-4.4.0-1]",
                    label.unwrap_or("?"),
                    secs(*at),
                    secs(up)
                ),
            });
        }
    }
    out.sort_by_key(|v| v.at_us);
    out
}

/// `12.345678s`.
fn secs(us: u64) -> String {
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}
