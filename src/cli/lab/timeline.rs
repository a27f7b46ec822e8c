//! A trace as a readable timeline: one line per event, `  12.345678s  sensor-1  connected
//! (session present)`. The middle column is the client the event is about, `fault` for faults
//! and `run` for the run's own milestones, padded to the widest name in the trace; the output
//! depends only on the trace. Not here: the trace format itself (`crate::trace`).

use std::fmt::Write as _;

use crate::trace::{
    AckPacket, Event, Fault, LossCause, MessageProps, SubOptions, Trace, TraceEvent, WillSpec,
};

/// The whole timeline, one line per event, each ending in `\n`.
pub fn render(trace: &Trace) -> String {
    let seconds_width = (trace.end_us() / 1_000_000).to_string().len();
    let actor_width = trace
        .events
        .iter()
        .map(|e| actor(e).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for e in &trace.events {
        let _ = writeln!(
            out,
            "  {:>sw$}.{:06}s  {:<aw$}  {}",
            e.at_us / 1_000_000,
            e.at_us % 1_000_000,
            actor(e),
            describe(&e.event),
            sw = seconds_width,
            aw = actor_width
        );
    }
    out
}

fn actor(e: &TraceEvent) -> &str {
    match &e.event {
        Event::FaultApplied { .. } | Event::FaultHealed { .. } | Event::FaultTookEffect { .. } => {
            "fault"
        }
        Event::RunStarted { .. }
        | Event::AuthConfigured { .. }
        | Event::SettleStarted
        | Event::RunEnded => "run",
        other => other.client().unwrap_or("?"),
    }
}

fn qos_list(flags: &[(bool, &str)]) -> String {
    flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| format!(" {s}"))
        .collect()
}

/// The 5.0 subscription options that are not defaults: ` (no local, id 7)`.
fn options_text(o: &SubOptions) -> String {
    let mut parts: Vec<String> = Vec::new();
    if o.no_local {
        parts.push("no local".into());
    }
    if o.retain_as_published {
        parts.push("retain as published".into());
    }
    if o.retain_handling != 0 {
        parts.push(format!("retain handling {}", o.retain_handling));
    }
    if let Some(id) = o.id {
        parts.push(format!("id {id}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// The 5.0 properties and subscription identifiers of a message, if any:
/// ` [content type text/plain, user k=v, ids 7 9]`.
fn props_text(p: &MessageProps, ids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    match p.payload_format {
        Some(1) => parts.push("utf8".into()),
        Some(f) => parts.push(format!("payload format {f}")),
        None => {}
    }
    if let Some(c) = &p.content_type {
        parts.push(format!("content type {c}"));
    }
    if let Some(r) = &p.response_topic {
        parts.push(format!("response topic {r}"));
    }
    if let Some(c) = &p.correlation_data {
        parts.push(format!("correlation {c}"));
    }
    if !p.user_properties.is_empty() {
        let kv: Vec<String> = p
            .user_properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("user {}", kv.join(" ")));
    }
    if !ids.is_empty() {
        let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
        parts.push(format!("ids {}", ids.join(" ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}

/// An acknowledgement packet: `PUBREC received id 7 (pub#5)`.
fn ack_text(
    way: &str,
    packet: AckPacket,
    packet_id: u16,
    payload: Option<&str>,
    reason: Option<u8>,
) -> String {
    let name = match packet {
        AckPacket::Puback => "PUBACK",
        AckPacket::Pubrec => "PUBREC",
        AckPacket::Pubrel => "PUBREL",
        AckPacket::Pubcomp => "PUBCOMP",
    };
    let mut text = format!("{name} {way} id {packet_id}");
    if let Some(p) = payload {
        let _ = write!(text, " ({p})");
    }
    if let Some(r) = reason {
        let _ = write!(text, " reason 0x{r:02x}");
    }
    text
}

/// What one event says, without time or actor.
pub fn describe(event: &Event) -> String {
    match event {
        Event::RunStarted {
            scenario,
            seed,
            protocol,
            persistence,
            max_queued_messages,
            max_inflight,
        } => run_text(
            scenario,
            *seed,
            protocol,
            *persistence,
            *max_queued_messages,
            *max_inflight,
        ),
        Event::AuthConfigured {
            allow_anonymous,
            users,
            acl,
        } => auth_text(*allow_anonymous, users.len(), acl.is_some()),
        Event::SettleStarted => "every fault healed; settling".into(),
        Event::RunEnded => "ended".into(),
        Event::FaultApplied { fault } => fault_text(fault),
        Event::FaultHealed { fault } => format!("healed: {}", fault_text(fault)),
        Event::FaultTookEffect { fault } => format!("took effect by now: {}", fault_text(fault)),
        Event::Connecting {
            clean_start,
            keep_alive_s,
            session_expiry_s,
            will,
            ..
        } => connecting_text(
            *clean_start,
            *keep_alive_s,
            *session_expiry_s,
            will.as_ref(),
        ),
        Event::Connected {
            session_present: true,
            ..
        } => "connected (session present)".into(),
        Event::Connected { .. } => "connected (no session)".into(),
        Event::ConnectFailed { reason, code, .. } => match code {
            Some(code) => format!("connect failed: {reason} (0x{code:02x})"),
            None => format!("connect failed: {reason}"),
        },
        Event::ConnectionLost { cause, .. } => format!("connection lost ({})", loss_text(*cause)),
        Event::DisconnectSent {
            with_will: true, ..
        } => "disconnected (with will)".into(),
        Event::DisconnectSent {
            session_expiry_s: Some(s),
            ..
        } => format!("disconnected (session expiry {s} s)"),
        Event::DisconnectSent { .. } => "disconnected".into(),
        Event::SubscribeRequested {
            filter,
            qos,
            options,
            ..
        } => format!("subscribe {filter} qos {qos}{}", options_text(options)),
        Event::SubscribeGranted {
            filter,
            granted,
            code,
            ..
        } => granted_text(filter, *granted, *code),
        Event::UnsubscribeRequested { filter, .. } => format!("unsubscribe {filter}"),
        Event::Unsubscribed { filter, .. } => format!("unsubscribed {filter}"),
        Event::PublishRequested {
            topic,
            qos,
            retain,
            payload,
            size,
            properties,
            ..
        } => format!(
            "publish {payload} to {topic} qos {qos}{} ({size} B){}",
            qos_list(&[(*retain, "retain")]),
            props_text(properties, &[])
        ),
        Event::PublishSent {
            payload,
            packet_id,
            qos,
            dup,
            ..
        } => format!(
            "PUBLISH sent {payload} id {packet_id} qos {qos}{}",
            qos_list(&[(*dup, "dup")])
        ),
        Event::PublishReceived {
            payload,
            packet_id,
            qos,
            dup,
            ..
        } => format!(
            "PUBLISH received {payload} id {packet_id} qos {qos}{}",
            qos_list(&[(*dup, "dup")])
        ),
        Event::AckSent {
            packet,
            packet_id,
            payload,
            reason,
            ..
        } => ack_text("sent", *packet, *packet_id, payload.as_deref(), *reason),
        Event::AckReceived {
            packet,
            packet_id,
            payload,
            reason,
            ..
        } => ack_text("received", *packet, *packet_id, payload.as_deref(), *reason),
        Event::PublishAcked { payload, .. } => format!("acked {payload}"),
        Event::PublishLost { payload, .. } => format!("lost {payload} (never confirmed)"),
        Event::Delivered {
            topic,
            qos,
            retain,
            dup,
            payload,
            size,
            properties,
            subscription_ids,
            ..
        } => format!(
            "received {payload} on {topic} qos {qos}{} ({size} B){}",
            qos_list(&[(*dup, "dup"), (*retain, "retain")]),
            props_text(properties, subscription_ids)
        ),
        Event::Figure {
            topic,
            value,
            retain,
            ..
        } => format!(
            "broker figure {topic} = {value}{}",
            if *retain { " (retain)" } else { "" }
        ),
    }
}

/// The broker's authentication settings.
fn auth_text(allow_anonymous: bool, users: usize, acl: bool) -> String {
    format!(
        "broker checks clients: anonymous {}, {users} users, {}",
        if allow_anonymous {
            "allowed"
        } else {
            "refused"
        },
        if acl { "an ACL" } else { "no ACL" }
    )
}

/// A SUBACK's answer for one filter.
fn granted_text(filter: &str, granted: Option<u8>, code: Option<u8>) -> String {
    match (granted, code) {
        (Some(q), _) => format!("subscribed {filter} (granted qos {q})"),
        (None, Some(code)) => format!("subscribe {filter} refused (0x{code:02x})"),
        (None, None) => format!("subscribe {filter} refused"),
    }
}

/// Why a connection was lost, as its client saw it.
fn loss_text(cause: LossCause) -> &'static str {
    match cause {
        LossCause::Closed => "closed",
        LossCause::KeepAliveTimeout => "keep-alive timeout",
        LossCause::ServerDisconnect => "broker sent DISCONNECT",
        LossCause::ProtocolError => "protocol error from the broker",
    }
}

/// The first line of a run: scenario, seed and the broker settings the checkers read.
fn run_text(
    scenario: &str,
    seed: u64,
    protocol: &str,
    persistence: crate::trace::Persistence,
    max_queued_messages: Option<u64>,
    max_inflight: Option<u64>,
) -> String {
    let mut s = format!(
        "started {scenario:?} seed {seed}, MQTT {protocol}, persistence {}",
        match persistence {
            crate::trace::Persistence::None => "none",
            crate::trace::Persistence::Durable => "durable",
        }
    );
    if let Some(q) = max_queued_messages {
        let _ = write!(s, ", max queued {q}");
    }
    if let Some(i) = max_inflight {
        let _ = write!(s, ", max inflight {i}");
    }
    s
}

/// A CONNECT as sent: clean start, keep-alive, session expiry and will.
fn connecting_text(
    clean_start: bool,
    keep_alive_s: u16,
    session_expiry_s: Option<u32>,
    will: Option<&WillSpec>,
) -> String {
    let mut s = format!(
        "connecting ({}, keep-alive {keep_alive_s}s",
        if clean_start {
            "clean start"
        } else {
            "resume session"
        }
    );
    if let Some(e) = session_expiry_s {
        let _ = write!(s, ", session expiry {e}s");
    }
    if let Some(w) = will {
        let _ = write!(s, ", {}", will_text(w));
    }
    s.push(')');
    s
}

fn will_text(w: &WillSpec) -> String {
    let mut s = format!(
        "will {} on {} qos {}{}",
        w.payload,
        w.topic,
        w.qos,
        qos_list(&[(w.retain, "retain")])
    );
    if w.delay_s > 0 {
        let _ = write!(s, " delay {}s", w.delay_s);
    }
    s
}

fn fault_text(f: &Fault) -> String {
    match f {
        Fault::Cut { client } => format!("cut {client}"),
        Fault::BlackHole { client } => format!("black hole {client}"),
        Fault::Delay { client, extra_us } => format!(
            "delay {client} +{}",
            crate::config::duration::format_duration(std::time::Duration::from_micros(*extra_us))
        ),
        Fault::SplitWrites { client } => format!("split writes of {client}"),
        Fault::Partition { from, to, one_way } => {
            format!(
                "partition {from} {} {to}",
                if *one_way { "->" } else { "<->" }
            )
        }
        Fault::ClientCrash { client } => format!("crash {client}"),
        Fault::ClientPowerOff { client } => format!("power off {client}"),
        Fault::BrokerCrash => "crash broker".into(),
        Fault::Pause { node } => format!("pause {node}"),
        Fault::SyncError => "sync errors on the broker's disk".into(),
        Fault::SlowSync { latency_ms } => {
            format!("slow syncs on the broker's disk ({latency_ms} ms each)")
        }
        Fault::DiskFull => "broker's disk full".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Persistence, UserSpec};

    fn story() -> Trace {
        let mut t = Trace::new();
        let c = |s: &str| s.to_string();
        t.push(
            0,
            Event::RunStarted {
                scenario: c("will on cut"),
                seed: 17,
                protocol: c("5.0"),
                persistence: Persistence::Durable,
                max_queued_messages: Some(1000),
                max_inflight: Some(16),
            },
        );
        t.push(
            0,
            Event::AuthConfigured {
                allow_anonymous: false,
                users: vec![UserSpec {
                    name: c("sensor-1"),
                    password: c("secret"),
                }],
                acl: Some(c("user sensor-1\ntopic readwrite sensors/#\n")),
            },
        );
        t.push(
            1_200,
            Event::Connecting {
                client: c("sensor-1"),
                protocol: None,
                clean_start: false,
                keep_alive_s: 5,
                session_expiry_s: Some(60),
                will: Some(WillSpec {
                    topic: c("status/sensor-1"),
                    qos: 1,
                    retain: true,
                    payload: c("sensor-1#will-1"),
                    delay_s: 2,
                }),
                username: None,
                password: None,
                receive_maximum: None,
            },
        );
        t.push(
            3_400,
            Event::Connected {
                client: c("sensor-1"),
                clean_start: false,
                session_present: true,
                session_expiry_s: Some(60),
                receive_maximum: None,
                shared_subscription_available: None,
            },
        );
        t.push(
            4_000,
            Event::SubscribeRequested {
                client: c("monitor"),
                filter: c("sensors/#"),
                qos: 2,
                options: SubOptions {
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: 1,
                    id: Some(7),
                },
            },
        );
        t.push(
            4_500,
            Event::SubscribeGranted {
                client: c("monitor"),
                filter: c("sensors/#"),
                granted: Some(1),
                code: None,
            },
        );
        t.push(
            5_000,
            Event::SubscribeGranted {
                client: c("monitor"),
                filter: c("admin/#"),
                granted: None,
                code: None,
            },
        );
        t.push(
            1_000_000,
            Event::PublishRequested {
                client: c("sensor-1"),
                topic: c("sensors/1/temp"),
                qos: 1,
                retain: true,
                payload: c("sensor-1#1"),
                size: 32,
                message_expiry_s: None,
                properties: props(),
            },
        );
        t.push(
            1_004_000,
            Event::Delivered {
                client: c("monitor"),
                topic: c("sensors/1/temp"),
                qos: 1,
                retain: false,
                dup: true,
                packet_id: None,
                payload: c("sensor-1#1"),
                size: 32,
                message_expiry_s: None,
                properties: props(),
                subscription_ids: vec![7, 9],
            },
        );
        t.push(
            1_004_100,
            Event::PublishSent {
                client: c("sensor-1"),
                payload: c("sensor-1#1"),
                packet_id: 3,
                qos: 1,
                dup: false,
            },
        );
        t.push(
            1_004_200,
            Event::PublishReceived {
                client: c("monitor"),
                payload: c("sensor-1#1"),
                packet_id: 11,
                qos: 1,
                dup: true,
            },
        );
        t.push(
            1_004_500,
            Event::AckSent {
                client: c("monitor"),
                packet: AckPacket::Puback,
                packet_id: 11,
                payload: Some(c("sensor-1#1")),
                reason: None,
            },
        );
        t.push(
            1_004_900,
            Event::AckReceived {
                client: c("sensor-1"),
                packet: AckPacket::Pubrec,
                packet_id: 3,
                payload: None,
                reason: Some(0x87),
            },
        );
        t.push(
            1_005_000,
            Event::PublishAcked {
                client: c("sensor-1"),
                payload: c("sensor-1#1"),
            },
        );
        let faults = [
            Fault::Cut {
                client: c("sensor-1"),
            },
            Fault::BlackHole {
                client: c("monitor"),
            },
            Fault::Delay {
                client: c("monitor"),
                extra_us: 250_000,
            },
            Fault::SplitWrites {
                client: c("monitor"),
            },
            Fault::Partition {
                from: c("sensor-1"),
                to: c("broker"),
                one_way: true,
            },
            Fault::ClientCrash {
                client: c("sensor-1"),
            },
            Fault::ClientPowerOff {
                client: c("sensor-1"),
            },
            Fault::BrokerCrash,
            Fault::Pause { node: c("broker") },
        ];
        for (i, fault) in faults.into_iter().enumerate() {
            t.push(2_000_000 + i as u64, Event::FaultApplied { fault });
        }
        t.push(
            3_000_000,
            Event::FaultHealed {
                fault: Fault::BrokerCrash,
            },
        );
        t.push(
            3_100_000,
            Event::ConnectionLost {
                client: c("sensor-1"),
                cause: LossCause::KeepAliveTimeout,
                reason: None,
            },
        );
        t.push(
            3_200_000,
            Event::ConnectFailed {
                client: c("sensor-1"),
                reason: c("refused: server unavailable"),
                code: None,
                session_present: None,
                protocol_error: None,
            },
        );
        t.push(
            4_000_000,
            Event::PublishLost {
                client: c("sensor-1"),
                payload: c("sensor-1#1"),
            },
        );
        t.push(
            5_000_000,
            Event::UnsubscribeRequested {
                client: c("monitor"),
                filter: c("sensors/#"),
            },
        );
        t.push(
            5_100_000,
            Event::Unsubscribed {
                client: c("monitor"),
                filter: c("sensors/#"),
            },
        );
        t.push(6_000_000, Event::SettleStarted);
        t.push(
            9_000_000,
            Event::DisconnectSent {
                client: c("monitor"),
                with_will: false,
                session_expiry_s: None,
            },
        );
        t.push(12_345_678, Event::RunEnded);
        t
    }

    fn props() -> MessageProps {
        let c = |s: &str| s.to_string();
        MessageProps {
            payload_format: Some(1),
            content_type: Some(c("text/plain")),
            response_topic: Some(c("replies/monitor")),
            correlation_data: Some(c("req-1")),
            user_properties: vec![(c("unit"), c("C")), (c("unit"), c("K"))],
        }
    }

    #[test]
    fn timeline_of_every_event_kind() {
        insta::assert_snapshot!(render(&story()));
    }

    #[test]
    fn one_line_per_event_with_aligned_columns() {
        let t = story();
        let text = render(&t);
        assert_eq!(text.lines().count(), t.events.len());
        assert!(text.contains("   0.001200s  sensor-1  connecting (resume session"));
        assert!(text.contains("  12.345678s  run       ended"));
        assert!(text.contains("sensor-1  connected (session present)"));
        let time_col: std::collections::BTreeSet<usize> =
            text.lines().map(|l| l.find("s  ").unwrap()).collect();
        assert_eq!(time_col.len(), 1, "times right-aligned:\n{text}");
    }

    #[test]
    fn an_empty_trace_has_an_empty_timeline() {
        assert_eq!(render(&Trace::new()), "");
    }
}
