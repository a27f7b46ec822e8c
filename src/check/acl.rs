//! The "acl" checker: authentication and authorization as the clients saw them, judged by the
//! broker's users and ACL as the trace's `auth_configured` event states them (a trace without
//! one has nothing to judge).
//!
//! - A CONNECT with wrong credentials (a user name the broker does not know, a wrong password,
//!   a password without user name), an anonymous CONNECT while anonymous access is off, or a
//!   will on a topic the client may not write, never gets a successful CONNACK; a CONNACK
//!   refusing it carries 0x04 / 0x05 (3.1.1) or 0x86 / 0x87 (5.0) for those causes in order.
//!   A client that was never accepted never receives anything and nothing it asked to publish
//!   reaches anyone.
//! - No client receives a message on a topic its read rights forbid, whatever subscription
//!   (wildcard or shared) brought it.
//! - No message a client published on a topic it may not write reaches any subscriber.
//! - A subscription whose filter can match no topic the client may read is refused in SUBACK,
//!   with 0x80 (3.1.1) or 0x87 (5.0).
//!
//! The rules come from [`access`](super::access), the checkers' own reading of the ACL file
//! syntax. Refusals for other reasons (limits) are not judged.

use std::collections::BTreeSet;

use super::access::{Refusal, Rules};
use super::model::{Attempt, Model, Pub};
use super::{CheckConfig, Violation};
use crate::trace::{Event, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "acl";

/// Whether `a` was a 5.0 CONNECT.
fn v5(a: &Attempt<'_>) -> bool {
    a.v5
}

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let Some(rules) = &m.auth else {
        // No `auth_configured`, or an ACL the model could not read.
        return match Rules::of(trace) {
            Some(Err(e)) => vec![Violation {
                checker: NAME,
                at_us: 0,
                message: format!("the trace's ACL cannot be read: {e}"),
            }],
            _ => Vec::new(),
        };
    };
    let mut out = Vec::new();
    let accepted = judge_connects(&m, rules, &mut out);
    judge_deliveries(&m, rules, &accepted, &mut out);
    judge_subscriptions(&m, rules, &mut out);
    out
}

/// Every CONNECT is accepted or refused as the rules say, with the right code; returns the
/// clients the broker accepted at least once.
fn judge_connects<'t>(m: &Model<'t>, rules: &Rules, out: &mut Vec<Violation>) -> BTreeSet<&'t str> {
    let trace = m.trace;
    let mut accepted: BTreeSet<&str> = BTreeSet::new();
    for (&client, log) in &m.clients {
        for a in &log.attempts {
            let verdict =
                rules
                    .authenticate(a.username, a.password)
                    .and_then(|user| match a.will {
                        Some(w) if !rules.may_write(user.as_deref(), client, &w.topic) => {
                            Err(Refusal::NotAuthorized)
                        }
                        _ => Ok(user),
                    });
            match (verdict, a.connected) {
                (Ok(_), Some(_)) => {
                    accepted.insert(client);
                }
                (Err(why), Some(at)) => {
                    // Reported here; what it then received is judged by its rights.
                    accepted.insert(client);
                    out.push(Violation {
                    checker: NAME,
                    at_us: m.us(at),
                    message: format!(
                        "{client} was accepted (CONNACK success) although the broker must refuse it: {}",
                        match why {
                            Refusal::BadCredentials => format!(
                                "bad user name or password (user {:?})",
                                a.username.unwrap_or("")
                            ),
                            Refusal::NotAuthorized => "not authorized (anonymous access is off, or its will topic is not writable)".to_string(),
                        }
                    ),
                })
                }
                (Err(why), None) => {
                    let code = a.failed.and_then(|f| match &trace.events[f].event {
                        Event::ConnectFailed { code, .. } => *code,
                        _ => None,
                    });
                    let wanted = why.code(v5(a));
                    if let (Some(code), Some(f)) = (code, a.failed)
                        && code != wanted
                    {
                        out.push(Violation {
                            checker: NAME,
                            at_us: m.us(f),
                            message: format!(
                                "{client} was refused with CONNACK code 0x{code:02x}; for {why:?} the code is 0x{wanted:02x}"
                            ),
                        });
                    }
                }
                (Ok(_), None) => {}
            }
        }
    }

    accepted
}

/// Nobody receives what its read rights forbid, what its publisher may not write, or anything
/// before the broker accepted it.
fn judge_deliveries(
    m: &Model<'_>,
    rules: &Rules,
    accepted: &BTreeSet<&str>,
    out: &mut Vec<Violation>,
) {
    let user_of = |client: &str| m.user_of(client);

    // Why a publish must not have been forwarded, if it must not.
    let why = |p: &&Pub<'_>| {
        if !accepted.contains(p.client) {
            Some("the broker never accepted its publisher")
        } else if !rules.may_write(user_of(p.client), p.client, p.topic) {
            Some("the ACL does not let its publisher write that topic")
        } else {
            None
        }
    };
    for d in &m.dels {
        if !accepted.contains(d.client) {
            out.push(Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message: format!(
                    "{} received {} on {} although the broker never accepted it",
                    d.client, d.label, d.topic
                ),
            });
            continue;
        }
        let user = user_of(d.client);
        if !rules.may_read(user, d.client, d.topic) {
            out.push(Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message: format!(
                    "{} (user {}) received {} on {}, a topic the ACL does not let it read",
                    d.client,
                    user.unwrap_or("none"),
                    d.label,
                    d.topic
                ),
            });
        }
        // The publish it came from: any earlier one of the label on the topic (labels repeat
        // only for fixed payloads). Reported when none of them may have been forwarded.
        let sources: Vec<_> = m
            .pubs_with(d.label)
            .filter(|p| p.pos < d.pos && p.topic == d.topic)
            .collect();
        if sources.iter().any(|p| why(p).is_none()) {
            continue;
        }
        if let Some((p, why)) = sources.first().and_then(|p| Some((p, why(p)?))) {
            out.push(Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message: format!(
                    "{} published by {} on {} reached {}, but {why}",
                    d.label, p.client, p.topic, d.client
                ),
            });
        }
    }
}

/// A subscription no readable topic can match is refused, with the ACL's code.
fn judge_subscriptions(m: &Model<'_>, rules: &Rules, out: &mut Vec<Violation>) {
    let trace = m.trace;
    let v5_clients: BTreeSet<&str> = m
        .clients
        .iter()
        .filter(|(_, log)| log.attempts.iter().any(v5))
        .map(|(&c, _)| c)
        .collect();
    for e in &trace.events {
        let Event::SubscribeGranted {
            client,
            filter,
            granted,
            code,
        } = &e.event
        else {
            continue;
        };
        let user = m.user_of(client);
        if rules.may_subscribe(user, client, filter) {
            continue;
        }
        let wanted = if v5_clients.contains(client.as_str()) {
            0x87
        } else {
            0x80
        };
        if let Some(q) = granted {
            out.push(Violation {
                checker: NAME,
                at_us: e.at_us,
                message: format!(
                    "{client} (user {}) was granted {filter} at QoS {q}, a filter that matches no topic the ACL lets it read: SUBACK must refuse it with 0x{wanted:02x}",
                    user.unwrap_or("none")
                ),
            });
        } else if let Some(code) = code.filter(|c| *c != wanted) {
            out.push(Violation {
                checker: NAME,
                at_us: e.at_us,
                message: format!(
                    "{client}'s subscription {filter} was refused with 0x{code:02x}; a filter refused by the ACL gets 0x{wanted:02x}"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::access::tests::ACL;
    use crate::check::story::Story;
    use crate::trace::Persistence;

    fn story(v: &str) -> Story {
        let mut st = Story::new(v, Persistence::None);
        st.auth(false, &[("alice", "a-pw"), ("bob", "b-pw")], Some(ACL));
        st.credentials("alice-1", "alice", Some("a-pw"))
            .credentials("bob-1", "bob", Some("b-pw"));
        st
    }

    fn run(st: &mut Story) -> Vec<Violation> {
        check(&st.end(), &CheckConfig::default())
    }

    /// [MQTT-3.1.4-2] the server may refuse a CONNECT that fails authentication;
    /// 3.1.1 says so with return code 4, 5.0 with 0x86.
    #[test]
    fn mqtt5_3_1_4_2_wrong_password_must_not_be_accepted() {
        let mut st = story("3.1.1");
        st.credentials("mallory", "alice", Some("guess"))
            .connect("mallory", true, false);
        let v = run(&mut st);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("bad user name or password"), "{v:?}");

        // What a wrongly accepted client then receives is judged by its rights, once.
        st.connect("alice-1", true, false)
            .subscribe("mallory", "#", 1);
        let m = st.publish("alice-1", "home/alice/a", 1);
        st.after_ms(5).deliver("mallory", &m).ack("alice-1", &m);
        let v = run(&mut st);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[1].message.contains("does not let it read"), "{v:?}");
        assert!(
            !v.iter().any(|v| v.message.contains("never accepted")),
            "{v:?}"
        );

        let mut st = story("5.0");
        st.credentials("mallory", "alice", Some("guess"))
            .connecting("mallory", true)
            .connect_refused("mallory", 0x87);
        let v = run(&mut st);
        assert!(v[0].message.contains("0x86"), "{v:?}");

        let mut st = story("3.1.1");
        st.connecting("anon", true).connect_refused("anon", 0x05);
        st.credentials("mallory", "alice", Some("guess"))
            .connecting("mallory", true)
            .connect_refused("mallory", 0x04);
        assert_eq!(run(&mut st), vec![]);
    }

    #[test]
    fn wildcard_delivery_beyond_read_rights_is_reported() {
        let mut st = story("3.1.1");
        st.connect("alice-1", true, false)
            .subscribe("alice-1", "home/#", 1)
            .connect("bob-1", true, false);
        let ok = st.publish("bob-1", "home/alice/inbox", 1);
        st.deliver("alice-1", &ok);
        let mut st2 = story("3.1.1");
        st2.connect("alice-1", true, false)
            .subscribe("alice-1", "#", 1)
            .connect("bob-1", true, false);
        let m = st2.publish("bob-1", "devices/bob-1/x", 0);
        st2.deliver("alice-1", &m);
        assert_eq!(run(&mut st), vec![]);
        let v = run(&mut st2);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|v| v.message.contains("does not let it read")));
        assert!(
            v.iter()
                .any(|v| v.message.contains("let its publisher write"))
        );
    }

    #[test]
    fn a_denied_subscription_must_be_refused_with_the_acl_code() {
        let mut st = story("5.0");
        st.connect("alice-1", true, false)
            .subscribe_granted("alice-1", "public/#", 1, Some(1));
        let v = run(&mut st);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("0x87"), "{v:?}");
        let mut st = story("5.0");
        st.connect("alice-1", true, false)
            .subscribe_granted("alice-1", "public/#", 1, None)
            .subscribe_granted("alice-1", "home/alice/+", 1, None);
        assert_eq!(run(&mut st), vec![]);
    }

    #[test]
    fn a_client_never_accepted_receives_nothing() {
        let mut st = story("3.1.1");
        st.connect("alice-1", true, false)
            .subscribe("alice-1", "home/alice/#", 1);
        st.connecting("anon", true).connect_refused("anon", 0x05);
        let m = st.publish("alice-1", "home/alice/x", 0);
        st.deliver("anon", &m);
        let v = run(&mut st);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("never accepted"), "{v:?}");
    }

    #[test]
    fn a_trace_without_auth_has_nothing_to_judge() {
        let mut st = Story::new("3.1.1", Persistence::None);
        st.connect("a", true, false);
        assert_eq!(check(&st.end(), &CheckConfig::default()), vec![]);
    }
}
