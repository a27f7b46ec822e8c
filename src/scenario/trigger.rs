//! Faults fired by trace events: a `[[fault]]` with `after = { event = "...", <field> = <value>,
//! nth = N }` starts `at` after the N-th trace event (default the first) named `event` whose
//! fields hold every value given ([`Trigger`]), instead of at a fixed time. Matching is generic:
//! a trigger is compared with the event's JSON form as the trace writes it, so every event the
//! trace knows can fire a fault, and a nested table matches the fields it names.
//!
//! Here: reading and checking a trigger (the event must be one the trace knows, its fields
//! among that event's), matching it against an event, and the fault it fires
//! ([`TriggeredFault`](super::TriggeredFault)). Not here: watching the trace as it is recorded and applying the fault
//! (`sim`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::checks::Checks;
use crate::trace::Event;

/// The fields of each trace event (besides `at_us` and `event`), as its JSON form names them;
/// optional fields included.
const EVENT_FIELDS: &[(&str, &[&str])] = &[
    (
        "run_started",
        &[
            "scenario",
            "seed",
            "protocol",
            "persistence",
            "max_queued_messages",
            "max_inflight",
        ],
    ),
    ("auth_configured", &["allow_anonymous", "users", "acl"]),
    ("settle_started", &[]),
    ("run_ended", &[]),
    ("fault_applied", &["fault"]),
    ("fault_healed", &["fault"]),
    ("fault_took_effect", &["fault"]),
    (
        "connecting",
        &[
            "client",
            "protocol",
            "clean_start",
            "keep_alive_s",
            "session_expiry_s",
            "will",
            "username",
            "password",
            "receive_maximum",
        ],
    ),
    (
        "connected",
        &[
            "client",
            "clean_start",
            "session_present",
            "session_expiry_s",
            "receive_maximum",
        ],
    ),
    (
        "connect_failed",
        &[
            "client",
            "reason",
            "code",
            "session_present",
            "protocol_error",
        ],
    ),
    ("connection_lost", &["client", "cause", "reason"]),
    (
        "disconnect_sent",
        &["client", "with_will", "session_expiry_s"],
    ),
    (
        "subscribe_requested",
        &["client", "filter", "qos", "options"],
    ),
    (
        "subscribe_granted",
        &["client", "filter", "granted", "code"],
    ),
    ("unsubscribe_requested", &["client", "filter"]),
    ("unsubscribed", &["client", "filter"]),
    (
        "publish_requested",
        &[
            "client",
            "topic",
            "qos",
            "retain",
            "payload",
            "size",
            "message_expiry_s",
            "properties",
        ],
    ),
    ("publish_acked", &["client", "payload"]),
    ("publish_lost", &["client", "payload"]),
    (
        "delivered",
        &[
            "client",
            "topic",
            "qos",
            "retain",
            "dup",
            "packet_id",
            "payload",
            "size",
            "message_expiry_s",
            "properties",
            "subscription_ids",
        ],
    ),
    ("figure", &["client", "topic", "value", "retain"]),
    (
        "publish_sent",
        &["client", "payload", "packet_id", "qos", "dup"],
    ),
    (
        "publish_received",
        &["client", "payload", "packet_id", "qos", "dup"],
    ),
    (
        "ack_sent",
        &["client", "packet", "packet_id", "payload", "reason"],
    ),
    (
        "ack_received",
        &["client", "packet", "packet_id", "payload", "reason"],
    ),
];

/// Every event name the trace knows, in declaration order, read from the trace format itself.
pub fn event_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        // An unknown variant makes serde list every known one.
        let err = match serde_json::from_str::<Event>(r#"{"event":"\u0000"}"#) {
            Err(e) => e.to_string(),
            Ok(_) => return Vec::new(),
        };
        let list = err
            .split_once("expected one of ")
            .map_or("", |(_, rest)| rest);
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    })
}

/// The fields a trigger may name for `event`, if the event is known.
pub fn event_fields(event: &str) -> Option<&'static [&'static str]> {
    if !event_names().iter().any(|n| n == event) {
        return None;
    }
    EVENT_FIELDS
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, fields)| *fields)
}

/// `after = { event = "ack_received", client = "pub", payload = "pub#5", nth = 1 }`: the trace
/// event that fires a fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The event's name, as in the trace.
    pub event: String,
    /// Which matching event fires the fault: the first is 1.
    pub nth: u32,
    /// The values the event's fields must hold (a table holds the fields it names).
    pub fields: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Trigger, D::Error> {
        use serde::de::Error;
        let mut fields = BTreeMap::<String, Value>::deserialize(d)?;
        let event = match fields.remove("event") {
            Some(Value::String(e)) => e,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "event must be a trace event's name, got {other}"
                )));
            }
            None => return Err(D::Error::missing_field("event")),
        };
        let nth = match fields.remove("nth") {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    D::Error::custom(format!("nth must be a whole number from 1, got {v}"))
                })?,
        };
        Ok(Trigger { event, nth, fields })
    }
}

impl Trigger {
    /// Checks the trigger of `base` (like `fault[2].after`): a known event, fields it has, and
    /// known clients where a field names one.
    pub(crate) fn check(&self, c: &mut Checks<'_>, base: &str) {
        let Some(known) = event_fields(&self.event) else {
            c.fail(
                format!("{base}.event"),
                format!(
                    "unknown trace event {:?} (events: {})",
                    self.event,
                    event_names().join(", ")
                ),
            );
            return;
        };
        for (name, value) in &self.fields {
            let field = format!("{base}.{name}");
            if !known.contains(&name.as_str()) {
                c.fail(
                    field,
                    format!(
                        "{:?} has no field {name:?} (fields: {}, and nth)",
                        self.event,
                        known.join(", ")
                    ),
                );
            } else if name == "client"
                && let Value::String(id) = value
            {
                c.client_ref(&field, id);
            }
        }
    }

    /// Whether `event` (in its JSON form) is one this trigger waits for.
    pub fn matches(&self, event: &Value) -> bool {
        event.get("event").and_then(Value::as_str) == Some(self.event.as_str())
            && self
                .fields
                .iter()
                .all(|(k, want)| event.get(k).is_some_and(|got| holds(want, got)))
    }
}

/// Whether `got` holds `want`: equal values (numbers by value), or for a table every field it
/// names.
fn holds(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| holds(v, gv))),
        (Value::Number(w), Value::Number(g)) => {
            w.as_i64().zip(g.as_i64()).is_some_and(|(a, b)| a == b)
                || w.as_u64().zip(g.as_u64()).is_some_and(|(a, b)| a == b)
                || w.as_f64().zip(g.as_f64()).is_some_and(|(a, b)| a == b)
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| holds(a, b))
        }
        _ => want == got,
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let nth = if self.nth == 1 {
            String::new()
        } else {
            format!(" #{}", self.nth)
        };
        write!(f, "{}{nth}", self.event)?;
        if !fields.is_empty() {
            write!(f, " {}", fields.join(" "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, Fault};

    /// Every event of the trace format has its fields listed, and each listing names only
    /// fields the event writes (checked on the fields it must write).
    #[test]
    fn every_trace_event_has_its_fields_listed() {
        let names = event_names();
        assert!(names.len() >= 15, "{names:?}");
        for name in names {
            let listed = event_fields(name).unwrap_or_else(|| panic!("{name} is not listed"));
            // Each required field of the event is reported missing in turn until none is; a
            // value of some type that gets past it is put in its place.
            let mut probe = serde_json::json!({ "event": name });
            let missing = |p: &Value| match serde_json::from_value::<Event>(p.clone()) {
                Ok(_) => None,
                Err(e) => e
                    .to_string()
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                    .map(str::to_string),
            };
            let candidates = [
                serde_json::json!("x"),
                serde_json::json!(0),
                serde_json::json!(false),
                serde_json::json!({ "kind": "broker_crash" }),
                serde_json::json!([]),
            ];
            let mut seen = 0;
            while let Some(field) = missing(&probe) {
                assert!(
                    listed.contains(&field.as_str()),
                    "{name}: {field} is not listed"
                );
                seen += 1;
                assert!(seen <= 32, "{name}: too many fields");
                let fits = candidates.iter().find(|v| {
                    let mut p = probe.clone();
                    p[field.as_str()] = (*v).clone();
                    let next = missing(&p);
                    serde_json::from_value::<Event>(p).is_ok() || next.is_some_and(|n| n != field)
                });
                let Some(v) = fits else { break };
                probe[field.as_str()] = v.clone();
            }
        }
    }

    fn trigger(text: &str) -> Trigger {
        #[derive(Deserialize)]
        struct T {
            after: Trigger,
        }
        toml::from_str::<T>(text).unwrap().after
    }

    #[test]
    fn a_trigger_matches_the_fields_it_names_and_nested_tables_in_part() {
        let t = trigger(r#"after = { event = "subscribe_granted", client = "mon", granted = 1 }"#);
        assert_eq!((t.event.as_str(), t.nth), ("subscribe_granted", 1));
        let granted = |client: &str, granted: Option<u8>| {
            serde_json::to_value(Event::SubscribeGranted {
                client: client.into(),
                filter: "t/#".into(),
                granted,
                code: None,
            })
            .unwrap()
        };
        assert!(t.matches(&granted("mon", Some(1))));
        assert!(!t.matches(&granted("mon", Some(0))));
        assert!(!t.matches(&granted("other", Some(1))));
        let t =
            trigger(r#"after = { event = "fault_applied", fault = { kind = "cut" }, nth = 3 }"#);
        assert_eq!(t.nth, 3);
        let cut = serde_json::to_value(Event::FaultApplied {
            fault: Fault::Cut { client: "a".into() },
        })
        .unwrap();
        assert!(t.matches(&cut));
        assert!(
            !t.matches(
                &serde_json::to_value(Event::FaultApplied {
                    fault: Fault::BrokerCrash
                })
                .unwrap()
            )
        );
    }
}
