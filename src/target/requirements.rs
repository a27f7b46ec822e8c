//! What a scenario requires of a broker it does not configure: every `[broker]` setting it
//! gives a value other than the lab's default that its judgment depends on, and, when it
//! crashes the broker, its persistence. The broker's flow-control windows (`max_inflight`,
//! `receive_maximum`) shape a story but no judgment: a target's own window is not assumed
//! (a 5.0 client learns the target's Receive Maximum from its CONNACK), so they are not
//! requirements. Against a target:
//!
//! - a setting the 5.0 CONNACK shows is checked there; one it shows otherwise is
//!   [`Requirements::unmet`] (the scenario needs configuration and is not run);
//! - a setting no packet shows is [`Requirements::unverified`]: the scenario needs
//!   configuration, unless the user says the target is configured so (`--assume-configured`),
//!   and then it is an assumption the report lists;
//! - persistence is checked against what the user says the target keeps across its restarts
//!   (`--broker-persistence`), and is an assumption when they say nothing.
//!
//! Each names what to set, in mosquitto's words where mosquitto has the option.

use super::probe::Limits;
use crate::broker::{BrokerConfig, QueueOverflow};
use crate::scenario::{Persistence, Scenario};

/// A scenario's requirements against one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Settings the target shows or is said to have otherwise: what to set, and what it has.
    pub unmet: Vec<String>,
    /// Settings no packet shows: what to set.
    pub unverified: Vec<String>,
    /// What the scenario takes for granted about the target and nobody has said.
    pub assumed: Vec<String>,
}

/// How a requirement can be seen: the target's value in its 5.0 CONNACK, as text comparable
/// with the scenario's.
type Seen = fn(&Limits) -> String;

struct Setting {
    field: &'static str,
    value: String,
    seen: Option<Seen>,
    mosquitto: Option<String>,
}

/// The requirements of `scenario` against a target whose 5.0 CONNACK showed `limits` (`None`:
/// it showed nothing, so nothing can be checked) and that keeps `persistence` across its
/// restarts, if the user said.
pub fn requirements(
    scenario: &Scenario,
    limits: Option<&Limits>,
    persistence: Option<Persistence>,
) -> Requirements {
    let mut out = Requirements::default();
    if super::restarts_broker(scenario) {
        let wanted = scenario.broker.persistence;
        let name = |p: Persistence| match p {
            Persistence::None => "none",
            Persistence::Durable => "durable",
        };
        let what = match wanted {
            Persistence::None => "a broker restart forgets every session and message",
            Persistence::Durable => "what was acknowledged survives a broker restart",
        };
        let mosquitto = match wanted {
            Persistence::None => "persistence false",
            Persistence::Durable => {
                "persistence true, which saves every autosave_interval seconds, so a crash loses what it acknowledged since"
            }
        };
        match persistence {
            Some(p) if p != wanted => out.unmet.push(format!(
                "persistence = \"{}\": {what} (--broker-persistence says {}; mosquitto: {mosquitto})",
                name(wanted),
                name(p)
            )),
            Some(_) => {}
            None => out.assumed.push(format!(
                "persistence = \"{}\": {what} (mosquitto: {mosquitto})",
                name(wanted)
            )),
        }
    }
    out.unverified
        .extend(scenario.target.requires.iter().cloned());
    for s in settings(scenario) {
        let setting = format!("{} = {}", s.field, s.value);
        let hint = s
            .mosquitto
            .as_ref()
            .map_or(String::new(), |m| format!("; mosquitto: {m}"));
        match (s.seen, limits) {
            (Some(seen), Some(l)) => {
                let theirs = seen(l);
                if theirs != s.value {
                    out.unmet
                        .push(format!("{setting} (its 5.0 CONNACK says {theirs}{hint})"));
                }
            }
            _ => out.unverified.push(if hint.is_empty() {
                setting
            } else {
                format!("{setting} ({})", &hint[2..])
            }),
        }
    }
    out
}

/// The settings `scenario` gives other values than the lab's defaults.
fn settings(scenario: &Scenario) -> Vec<Setting> {
    let c = &scenario.broker.config;
    let d = BrokerConfig::default();
    let mut out = Vec::new();
    let mut add =
        |field, value: String, default: String, seen: Option<Seen>, mosq: Option<&str>| {
            if value != default {
                out.push(Setting {
                    field,
                    mosquitto: mosq.map(|m| format!("{m} {value}")),
                    value,
                    seen,
                });
            }
        };
    add(
        "max_packet_size",
        c.max_packet_size.to_string(),
        d.max_packet_size.to_string(),
        Some(|l| {
            l.maximum_packet_size
                .map_or("none".to_string(), |n| n.to_string())
        }),
        Some("max_packet_size"),
    );
    add(
        "topic_alias_maximum",
        c.topic_alias_maximum.to_string(),
        d.topic_alias_maximum.to_string(),
        Some(|l| l.topic_alias_maximum.to_string()),
        Some("max_topic_alias"),
    );
    add(
        "shared_subscriptions",
        c.shared_subscriptions.to_string(),
        d.shared_subscriptions.to_string(),
        Some(|l| l.shared_subscriptions.to_string()),
        None,
    );
    add(
        "max_keep_alive",
        c.max_keep_alive.to_string(),
        d.max_keep_alive.to_string(),
        Some(|l| l.server_keep_alive.unwrap_or(u16::MAX).to_string()),
        Some("max_keepalive"),
    );
    add(
        "max_session_expiry",
        c.max_session_expiry.to_string(),
        d.max_session_expiry.to_string(),
        Some(|l| l.session_expiry.unwrap_or(u32::MAX).to_string()),
        None,
    );
    add(
        "max_queued_messages",
        c.max_queued_messages.to_string(),
        d.max_queued_messages.to_string(),
        None,
        Some("max_queued_messages"),
    );
    add(
        "max_queued_bytes",
        c.max_queued_bytes.to_string(),
        d.max_queued_bytes.to_string(),
        None,
        Some("max_queued_bytes"),
    );
    add(
        "queue_overflow",
        match c.queue_overflow {
            QueueOverflow::DropNewest => "drop-newest".to_string(),
            QueueOverflow::DropOldest => "drop-oldest".to_string(),
        },
        "drop-newest".to_string(),
        None,
        None,
    );
    add(
        "max_connections",
        c.max_connections.to_string(),
        d.max_connections.to_string(),
        None,
        Some("max_connections"),
    );
    for (field, value, default) in [
        (
            "max_subscriptions_per_client",
            c.max_subscriptions_per_client,
            d.max_subscriptions_per_client,
        ),
        ("max_retained", c.max_retained, d.max_retained),
        ("max_sessions", c.max_sessions, d.max_sessions),
        ("max_topic_len", c.max_topic_len, d.max_topic_len),
        ("max_topic_levels", c.max_topic_levels, d.max_topic_levels),
        (
            "max_client_id_len",
            c.max_client_id_len,
            d.max_client_id_len,
        ),
    ] {
        add(field, value.to_string(), default.to_string(), None, None);
    }
    add(
        "max_outbound_topic_aliases",
        c.max_outbound_topic_aliases.to_string(),
        d.max_outbound_topic_aliases.to_string(),
        None,
        None,
    );
    add(
        "connect_timeout",
        format!("{:?}", c.connect_timeout),
        format!("{:?}", d.connect_timeout),
        None,
        None,
    );
    add(
        "response_information",
        format!("{:?}", c.response_information),
        format!("{:?}", d.response_information),
        None,
        None,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(broker: &str) -> Scenario {
        let text = format!(
            "name = \"r\"\nprotocol = \"5.0\"\nduration = \"10s\"\n[broker]\n{broker}\n\
             [[client]]\nid = \"a\"\n[expect]\ncheckers = [\"delivery\"]\n"
        );
        Scenario::from_str(&text, "r.toml").unwrap()
    }

    fn limits() -> Limits {
        Limits::of(&crate::codec::Properties::from(crate::codec::PropertySet {
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            ..Default::default()
        }))
    }

    #[test]
    fn defaults_require_nothing() {
        assert_eq!(
            requirements(&scenario(""), Some(&limits()), None),
            Requirements::default()
        );
    }

    #[test]
    fn a_setting_the_connack_shows_is_checked_and_the_others_assumed() {
        let s = scenario(
            "receive_maximum = 3\nmax_inflight = 2\ntopic_alias_maximum = 3\nmax_queued_messages = 2",
        );
        let r = requirements(&s, Some(&limits()), None);
        assert_eq!(r.unmet.len(), 1, "{r:?}");
        assert!(
            r.unmet[0].contains("topic_alias_maximum = 3")
                && r.unmet[0].contains("says 10")
                && r.unmet[0].contains("max_topic_alias 3"),
            "{r:?}"
        );
        assert_eq!(
            r.unverified,
            ["max_queued_messages = 2 (mosquitto: max_queued_messages 2)"]
        );
        assert!(r.assumed.is_empty());
        // Without a 5.0 CONNACK nothing can be checked.
        let blind = requirements(&s, None, None);
        assert!(blind.unmet.is_empty());
        assert_eq!(blind.unverified.len(), 2);
    }

    #[test]
    fn what_a_scenario_says_it_requires_is_unverified() {
        let text = "name = \"r\"\nprotocol = \"5.0\"\nduration = \"10s\"\n\
                    [target]\nrequires = [\"clients may publish on $ topics\"]\n\
                    [[client]]\nid = \"a\"\n[expect]\ncheckers = [\"delivery\"]\n";
        let s = Scenario::from_str(text, "r.toml").unwrap();
        assert_eq!(
            requirements(&s, Some(&limits()), None).unverified,
            ["clients may publish on $ topics"]
        );
    }

    #[test]
    fn persistence_matters_only_to_a_scenario_that_restarts_the_broker() {
        let calm = scenario("persistence = \"durable\"");
        assert_eq!(
            requirements(&calm, Some(&limits()), Some(Persistence::None)),
            Requirements::default()
        );
        let crash = |p: &str| {
            Scenario::from_str(
                &format!(
                    "name = \"r\"\nprotocol = \"5.0\"\nduration = \"10s\"\n[broker]\npersistence = \"{p}\"\n\
                     [[client]]\nid = \"a\"\n[[fault]]\nat = \"1s\"\ncrash_broker = {{}}\n\
                     [expect]\ncheckers = [\"delivery\"]\n"
                ),
                "c.toml",
            )
            .unwrap()
        };
        let durable = crash("durable");
        let said_none = requirements(&durable, Some(&limits()), Some(Persistence::None));
        assert!(
            said_none.unmet[0].starts_with("persistence = \"durable\""),
            "{said_none:?}"
        );
        assert!(
            requirements(&durable, Some(&limits()), Some(Persistence::Durable))
                .unmet
                .is_empty()
        );
        let unsaid = requirements(&crash("none"), Some(&limits()), None);
        assert!(unsaid.unmet.is_empty());
        assert!(
            unsaid.assumed[0].contains("forgets every session"),
            "{unsaid:?}"
        );
    }
}
