//! The trace of a run: what the clients and the network observed, with virtual timestamps.
//!
//! A [`Trace`] is a list of [`TraceEvent`]s in the order they happened, written as JSON Lines
//! (one event per line, fields in a fixed order, see [`event`]); two runs of one seed give
//! byte-identical JSON Lines, and [`Trace::fingerprint`] hashes them. [`payload`] says how
//! payloads name their messages.
//!
//! Not here: recording (the simulated world does it) and judging (see `crate::check`).

pub mod event;
pub mod payload;

pub use event::{
    AckPacket, BROKER, Event, Fault, LossCause, MessageProps, Persistence, SubOptions, TraceEvent,
    UserSpec, WillSpec,
};

use sha2::{Digest, Sha256};

/// A malformed trace: a line that is not an event, or events out of order.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceError {
    #[error("trace line {line}: {reason}")]
    Parse { line: usize, reason: String },
    #[error("trace event {index}: at_us {at_us} is before the previous event's {previous}")]
    TimeGoesBack {
        index: usize,
        at_us: u64,
        previous: u64,
    },
    #[error("trace event {index}: QoS {qos} is not 0, 1 or 2")]
    BadQos { index: usize, qos: u8 },
    #[error("trace event {index}: {reason}")]
    Orphan { index: usize, reason: String },
}

/// The events of one run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub events: Vec<TraceEvent>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace::default()
    }

    /// Appends an event at `at_us`.
    pub fn push(&mut self, at_us: u64, event: Event) {
        self.events.push(TraceEvent {
            at_us,
            event,
            process: None,
        });
    }

    /// Appends a client's event at `at_us`, recorded by `process` (`None`: the process is
    /// named by the event's client identifier).
    pub fn push_from(&mut self, at_us: u64, event: Event, process: Option<String>) {
        let process = process.filter(|p| event.client() != Some(p.as_str()));
        self.events.push(TraceEvent {
            at_us,
            event,
            process,
        });
    }

    /// The JSON Lines form: one event per line, each line ending in `\n`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            // A trace event holds only strings, integers, booleans and options: always valid.
            out.push_str(&serde_json::to_string(e).expect("trace events always serialize"));
            out.push('\n');
        }
        out
    }

    /// Parses JSON Lines; blank lines are ignored. Does not [`validate`](Trace::validate).
    pub fn from_jsonl(text: &str) -> Result<Trace, TraceError> {
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e = serde_json::from_str(line).map_err(|err| TraceError::Parse {
                line: i + 1,
                reason: err.to_string(),
            })?;
            events.push(e);
        }
        Ok(Trace { events })
    }

    /// SHA-256 of [`to_jsonl`](Trace::to_jsonl), in lower-case hex: the run's fingerprint.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.to_jsonl().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The time of the last event (0 for an empty trace).
    pub fn end_us(&self) -> u64 {
        self.events.last().map_or(0, |e| e.at_us)
    }

    /// The faults whose instant the lab did not see: each `(fault, applied_us, took_effect_us)`,
    /// from a `fault_applied` to the `fault_took_effect` after it.
    pub fn uncertain_faults(&self) -> Vec<(&Fault, u64, u64)> {
        self.took_effect()
            .into_iter()
            .map(|(i, j, fault)| (fault, self.events[i].at_us, self.events[j].at_us))
            .collect()
    }

    /// The trace with every fault of [`Self::uncertain_faults`] struck at the latest instant
    /// it can have: its `fault_applied` moved to where its `fault_took_effect` is. `None` when
    /// every fault's instant is known.
    pub fn latest_reading(&self) -> Option<Trace> {
        let pairs = self.took_effect();
        if pairs.is_empty() {
            return None;
        }
        let moved: std::collections::BTreeMap<usize, usize> =
            pairs.iter().map(|&(i, j, _)| (j, i)).collect();
        let from: std::collections::BTreeSet<usize> = pairs.iter().map(|&(i, _, _)| i).collect();
        let events = self
            .events
            .iter()
            .enumerate()
            .filter(|(k, _)| !from.contains(k))
            .map(|(k, e)| match moved.get(&k) {
                Some(&i) => TraceEvent {
                    at_us: e.at_us,
                    event: self.events[i].event.clone(),
                    process: self.events[i].process.clone(),
                },
                None => e.clone(),
            })
            .collect();
        Some(Trace { events })
    }

    /// `(fault_applied index, fault_took_effect index, fault)`: each `fault_took_effect` pairs
    /// the latest unpaired `fault_applied` of the same fault before it.
    fn took_effect(&self) -> Vec<(usize, usize, &Fault)> {
        let mut pairs = Vec::new();
        for (j, e) in self.events.iter().enumerate() {
            let Event::FaultTookEffect { fault } = &e.event else {
                continue;
            };
            let applied = (0..j).rev().find(|&i| {
                matches!(&self.events[i].event, Event::FaultApplied { fault: f } if f == fault)
                    && !pairs.iter().any(|&(p, _, _)| p == i)
            });
            if let Some(i) = applied {
                pairs.push((i, j, fault));
            }
        }
        pairs
    }

    /// Checks what the checkers rely on: time never goes back, QoS values are 0..=2, every
    /// acknowledgement or loss names a publish requested before it by the same client.
    pub fn validate(&self) -> Result<(), TraceError> {
        let mut previous = 0;
        let mut requested: std::collections::BTreeSet<(&str, &str)> = Default::default();
        for (index, e) in self.events.iter().enumerate() {
            if e.at_us < previous {
                return Err(TraceError::TimeGoesBack {
                    index,
                    at_us: e.at_us,
                    previous,
                });
            }
            previous = e.at_us;
            let qos = match &e.event {
                Event::SubscribeRequested { qos, .. }
                | Event::PublishRequested { qos, .. }
                | Event::Delivered { qos, .. } => Some(*qos),
                Event::SubscribeGranted { granted, .. } => *granted,
                Event::Connecting { will: Some(w), .. } => Some(w.qos),
                _ => None,
            };
            if let Some(qos) = qos.filter(|q| *q > 2) {
                return Err(TraceError::BadQos { index, qos });
            }
            match &e.event {
                Event::PublishRequested {
                    client, payload, ..
                } => {
                    requested.insert((client, payload));
                }
                Event::PublishAcked { client, payload }
                | Event::PublishLost { client, payload }
                    if !requested.contains(&(client.as_str(), payload.as_str())) =>
                {
                    return Err(TraceError::Orphan {
                        index,
                        reason: format!("{client} was never asked to publish {payload:?}"),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trace {
        let mut t = Trace::new();
        t.push(
            0,
            Event::RunStarted {
                scenario: "s".into(),
                seed: 7,
                protocol: "3.1.1".into(),
                persistence: Persistence::Durable,
                max_queued_messages: Some(100),
                max_inflight: None,
            },
        );
        t.push(
            10,
            Event::FaultApplied {
                fault: Fault::Partition {
                    from: "a".into(),
                    to: BROKER.into(),
                    one_way: true,
                },
            },
        );
        t.push(
            20,
            Event::Connecting {
                client: "a".into(),
                protocol: None,
                clean_start: false,
                keep_alive_s: 5,
                session_expiry_s: None,
                will: Some(WillSpec {
                    topic: "w".into(),
                    qos: 1,
                    retain: false,
                    payload: "a#will-1".into(),
                    delay_s: 0,
                }),
                username: None,
                password: None,
                receive_maximum: None,
            },
        );
        t.push(
            30,
            Event::Delivered {
                client: "a".into(),
                topic: "t".into(),
                qos: 2,
                retain: false,
                dup: true,
                packet_id: None,
                payload: "b#1".into(),
                size: 32,
                message_expiry_s: None,
                properties: MessageProps::default(),
                subscription_ids: Vec::new(),
            },
        );
        t.push(40, Event::SettleStarted);
        t.push(50, Event::RunEnded);
        t
    }

    #[test]
    fn jsonl_round_trips_with_a_stable_field_order() {
        let t = sample();
        let text = t.to_jsonl();
        assert_eq!(text.lines().count(), 6);
        assert!(
            text.starts_with(
                "{\"at_us\":0,\"event\":\"run_started\",\"scenario\":\"s\",\"seed\":7,"
            )
        );
        assert!(text.contains(
            "{\"at_us\":10,\"event\":\"fault_applied\",\"fault\":{\"kind\":\"partition\",\"from\":\"a\",\"to\":\"broker\",\"one_way\":true}}"
        ));
        assert!(text.contains(
            "{\"at_us\":30,\"event\":\"delivered\",\"client\":\"a\",\"topic\":\"t\",\"qos\":2,\"retain\":false,\"dup\":true,\"payload\":\"b#1\",\"size\":32}"
        ));
        assert!(text.ends_with("{\"at_us\":50,\"event\":\"run_ended\"}\n"));
        assert_eq!(Trace::from_jsonl(&text).unwrap(), t);
    }

    #[test]
    fn properties_options_and_ids_are_written_only_when_present() {
        let subscribe = |options: SubOptions| Event::SubscribeRequested {
            client: "a".into(),
            filter: "t/#".into(),
            qos: 1,
            options,
        };
        let delivered = |properties: MessageProps, subscription_ids: Vec<u32>| Event::Delivered {
            client: "a".into(),
            topic: "t".into(),
            qos: 0,
            retain: false,
            dup: false,
            packet_id: None,
            payload: "b#1".into(),
            size: 3,
            message_expiry_s: None,
            properties,
            subscription_ids,
        };
        let mut t = Trace::new();
        t.push(0, subscribe(SubOptions::default()));
        t.push(0, delivered(MessageProps::default(), vec![]));
        assert_eq!(
            t.to_jsonl(),
            "{\"at_us\":0,\"event\":\"subscribe_requested\",\"client\":\"a\",\"filter\":\"t/#\",\"qos\":1}\n\
             {\"at_us\":0,\"event\":\"delivered\",\"client\":\"a\",\"topic\":\"t\",\"qos\":0,\"retain\":false,\"dup\":false,\"payload\":\"b#1\",\"size\":3}\n"
        );
        let mut t = Trace::new();
        t.push(
            0,
            subscribe(SubOptions {
                no_local: true,
                retain_handling: 2,
                id: Some(7),
                ..SubOptions::default()
            }),
        );
        let props = MessageProps {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..MessageProps::default()
        };
        t.push(0, delivered(props, vec![7, 9]));
        let text = t.to_jsonl();
        assert!(
            text.contains(
                "\"qos\":1,\"options\":{\"no_local\":true,\"retain_handling\":2,\"id\":7}}"
            ),
            "{text}"
        );
        assert!(
            text.contains("\"size\":3,\"properties\":{\"content_type\":\"text/plain\",\"user_properties\":[[\"k\",\"v\"]]},\"subscription_ids\":[7,9]}"),
            "{text}"
        );
        assert_eq!(Trace::from_jsonl(&text).unwrap(), t);
    }

    #[test]
    fn fingerprint_is_sha256_hex_and_sees_every_byte() {
        let t = sample();
        let f = t.fingerprint();
        assert_eq!(f.len(), 64);
        assert_eq!(f, t.clone().fingerprint());
        let mut u = t.clone();
        u.events[3].at_us = 31;
        assert_ne!(u.fingerprint(), f);
        assert_eq!(
            Trace::new().fingerprint(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = Trace::from_jsonl("{\"at_us\":0,\"event\":\"run_ended\"}\n\n{\"at_us\":1}\n")
            .unwrap_err();
        assert!(matches!(err, TraceError::Parse { line: 3, .. }), "{err}");
    }

    #[test]
    fn validate_rejects_time_going_back_bad_qos_and_orphan_acks() {
        assert_eq!(sample().validate(), Ok(()));
        let mut t = sample();
        t.events[2].at_us = 5;
        assert!(matches!(
            t.validate(),
            Err(TraceError::TimeGoesBack { index: 2, .. })
        ));
        let mut t = sample();
        t.push(
            60,
            Event::SubscribeGranted {
                client: "a".into(),
                filter: "#".into(),
                granted: Some(3),
                code: None,
            },
        );
        assert!(matches!(
            t.validate(),
            Err(TraceError::BadQos { index: 6, qos: 3 })
        ));
        let mut t = sample();
        t.push(
            60,
            Event::PublishAcked {
                client: "a".into(),
                payload: "a#1".into(),
            },
        );
        assert!(matches!(
            t.validate(),
            Err(TraceError::Orphan { index: 6, .. })
        ));
    }
}
