//! Explicit expectations about named clients ([`Expectations`]), judged on a trace like a
//! checker and reported as [`Violation`]s of the checker named `"expect"`:
//!
//! - `will_reaches` (`{ client, subscriber }`): some will of `client` (a payload labelled
//!   `<client>#will-<n>`) is delivered to `subscriber` during the run, live or retained.
//! - `no_will` (`client`): no will of `client` is ever delivered to anyone.
//! - `no_loss` (QoS 1, QoS 2): every publish of that QoS acknowledged before the settle
//!   phase reaches every subscriber that held a matching subscription (QoS 1 or more) when it was
//!   requested and kept that session to the end of the run — with none of the delivery
//!   checker's excuses for queue overflow or a broker without persistence. A QoS 2 message to a
//!   subscriber whose process died after the request is still excused (its exchange state died
//!   with it), and so is a publisher's own message on a 5.0 No Local subscription.
//! - `receives` (`{ client, filter, at_least, at_most, exactly, qos, retain }`): of the
//!   distinct messages `client` receives on topics matching `filter` (any topic without one) by
//!   the end, there are at least `at_least`, at most `at_most`, exactly `exactly` (`exactly = 0`:
//!   nothing at all); every delivery of them arrives at QoS `qos` and with the RETAIN flag
//!   `retain`, when given. The counts are judged on a complete trace, the flags on any.
//! - `overflow` (`client`): `client` was offline (a normal DISCONNECT, then a CONNACK with
//!   session present) while more QoS 1 and 2 messages were published for it than its queue
//!   holds. Of those messages (acknowledged to their publisher, on a topic it held a QoS 1 or 2
//!   subscription to, allowed by the ACL, without message expiry, in request order), it must
//!   receive after reconnecting exactly as many as the queue holds (`max_queued_messages`), not all of
//!   them, and they must be a prefix ([`QueueOverflow::DropNewest`]: the queue kept the oldest)
//!   or a suffix ([`QueueOverflow::DropOldest`]: it kept the newest).
//!
//! - `connected_at_end` (`client`, built by the simulator from the scenario, not written in
//!   it): the client reconnects, is not meant to stay away (no `disconnect_at` without
//!   `reconnect_at`) and has time to come back after the faults; it must be connected at the
//!   end of the run, unless the trace shows it gone for good (a crash or power-off never
//!   healed) or dismissed for a reason another attempt meets again (a CONNACK refusing its
//!   credentials, identifier, protocol or authorization; a DISCONNECT saying its session was
//!   taken over or the server moved).
//!
//! The liveness expectations (`will_reaches`, `no_loss`, `receives`, `overflow`,
//! `connected_at_end`) are judged only on a complete trace (one with `run_ended`). Not here: reading them from a scenario
//! file (the scenario's `[expect]` section holds [`WillReaches`] and [`Receives`]; the
//! simulator builds the rest).

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;
use super::explain;
use super::model::{End, Model};
use super::topic;
use crate::broker::config::QueueOverflow;
use crate::codec::QoS;
use crate::trace::payload::{LabelKind, parse_label};
use crate::trace::{Event, Fault, Trace};

/// What a run promises about named clients beyond the checkers' guarantees, with the broker
/// and client settings needed to judge it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The will of `client` reaches `subscriber` at least once.
    pub will_reaches: Vec<WillReaches>,
    /// These clients' wills are never delivered.
    pub no_will: Vec<String>,
    /// No acknowledged message of these QoS levels is lost (QoS 0 is never judged).
    pub no_loss: Vec<QoS>,
    /// `client` receives at least `at_least` messages (matching `filter`).
    pub receives: Vec<Receives>,
    /// These clients' queues overflow while they are offline.
    pub overflow: Vec<String>,
    /// The broker's queue of messages for an offline client: how many it holds...
    pub max_queued: usize,
    /// ...and which one it drops when full.
    pub queue_overflow: QueueOverflow,
    /// Per client: the filters it subscribes to with 5.0 No Local.
    pub no_local: BTreeMap<String, Vec<String>>,
    /// These clients must be connected at the end of the run (see the module's doc).
    pub connected_at_end: Vec<String>,
}

/// `{ client = "sensor-1", subscriber = "monitor" }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WillReaches {
    pub client: String,
    pub subscriber: String,
}

/// `{ client = "monitor", filter = "sensors/#", at_least = 100, qos = 1 }`: what `client`
/// receives on topics matching `filter` (every topic without one). Distinct messages are
/// counted (a labelled message once however often it arrives); `exactly = 0` says nothing
/// arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receives {
    pub client: String,
    #[serde(default)]
    pub filter: Option<String>,
    /// At least this many distinct messages by the end.
    #[serde(default)]
    pub at_least: Option<u32>,
    /// At most this many distinct messages by the end.
    #[serde(default)]
    pub at_most: Option<u32>,
    /// Exactly this many distinct messages by the end; 0: nothing.
    #[serde(default)]
    pub exactly: Option<u32>,
    /// Every matching delivery arrives at this QoS.
    #[serde(default)]
    pub qos: Option<u8>,
    /// Every matching delivery arrives with this RETAIN flag.
    #[serde(default)]
    pub retain: Option<bool>,
}

impl Receives {
    /// The lowest and highest count allowed (`None`: no bound).
    pub fn bounds(&self) -> (Option<u32>, Option<u32>) {
        match self.exactly {
            Some(n) => (Some(n), Some(n)),
            None => (self.at_least, self.at_most),
        }
    }

    /// The bounds as the scenario wrote them, for messages.
    fn wanted(&self) -> String {
        match (self.exactly, self.at_least, self.at_most) {
            (Some(0), ..) => "nothing".to_string(),
            (Some(n), ..) => format!("exactly {n}"),
            (None, Some(lo), Some(hi)) => format!("at least {lo} and at most {hi}"),
            (None, Some(lo), None) => format!("at least {lo}"),
            (None, None, Some(hi)) => format!("at most {hi}"),
            (None, None, None) => String::new(),
        }
    }
}

/// The checker name these violations carry.
pub const NAME: &str = "expect";

/// Judges `expect` on `trace`; violations ordered by time.
pub fn check(expect: &Expectations, trace: &Trace) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut out = Vec::new();
    let end_us = m.end.map(|p| m.us(p));
    let is_will_of = |label: &str, client: &str| matches!(parse_label(label), Some(LabelKind::Will { client: c, .. }) if c == client);

    for w in &expect.will_reaches {
        let Some(end_us) = end_us else { break };
        if !m
            .dels
            .iter()
            .any(|d| d.client == w.subscriber && is_will_of(d.label, &w.client))
        {
            out.push(Violation {
                checker: NAME,
                at_us: end_us,
                message: format!(
                    "no will of {} reached {} during the run: {} (will_reaches)",
                    w.client,
                    w.subscriber,
                    explain::why_no_will(&m, &w.client, &w.subscriber)
                ),
            });
        }
    }

    for client in &expect.no_will {
        if let Some(d) = m.dels.iter().find(|d| is_will_of(d.label, client)) {
            out.push(Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message: format!(
                    "will {} of {client} reached {} on {}, but the scenario expects no will of {client} (no_will)",
                    d.label, d.client, d.topic
                ),
            });
        }
    }

    if let Some(end_us) = end_us {
        no_loss(expect, &m, end_us, &mut out);
        for client in &expect.connected_at_end {
            connected_at_end(&m, client, end_us, &mut out);
        }
        for client in &expect.overflow {
            overflow(expect, &m, client, end_us, &mut out);
        }
        for r in &expect.receives {
            receives_count(r, &m, end_us, &mut out);
        }
    }
    for r in &expect.receives {
        receives_flags(r, &m, &mut out);
    }
    out.sort_by_key(|v| v.at_us);
    out
}

/// CONNACK codes and server DISCONNECT reasons that another attempt meets again: 3.1.1
/// return codes 1, 2, 4, 5; 5.0 unsupported protocol version, client identifier not valid, bad
/// user name or password, not authorized, banned, bad authentication method, session taken
/// over, use another server, server moved.
fn dismissed_for_good(code: u8) -> bool {
    matches!(
        code,
        0x01 | 0x02 | 0x04 | 0x05 | 0x84 | 0x85 | 0x86 | 0x87 | 0x8A | 0x8C | 0x8E | 0x9C | 0x9D
    )
}

/// `connected_at_end`: `client` is connected when the run ends.
fn connected_at_end(m: &Model<'_>, client: &str, end_us: u64, out: &mut Vec<Violation>) {
    let gone_for_good = m.faults.iter().any(|f| {
        f.end.is_none()
            && matches!(f.fault, Fault::ClientCrash { client: c } | Fault::ClientPowerOff { client: c } if c == client)
    });
    if gone_for_good {
        return;
    }
    // `client` names a process; the session is its client identifier's, which any of its
    // processes may hold at the end (a takeover).
    let log = m.clients.get(m.client_of(client));
    if log.is_some_and(|l| l.epochs.iter().any(|e| e.end.is_none())) {
        return;
    }
    let mut last = None;
    for e in m.trace.events.iter().rev() {
        if e.process() != Some(client) {
            continue;
        }
        match &e.event {
            Event::ConnectFailed {
                client: c,
                code,
                reason,
                ..
            } if c == client => {
                if code.is_some_and(dismissed_for_good) {
                    return;
                }
                last = Some(format!("its last CONNECT failed ({reason})"));
                break;
            }
            Event::ConnectionLost {
                client: c,
                reason,
                cause,
            } if c == client => {
                if reason.is_some_and(dismissed_for_good) {
                    return;
                }
                last = Some(format!("its last connection was lost ({cause:?})"));
                break;
            }
            Event::DisconnectSent { client: c, .. } if c == client => {
                last = Some("it sent DISCONNECT".to_string());
                break;
            }
            _ => {}
        }
    }
    let why = last.unwrap_or_else(|| "it never connected".to_string());
    out.push(Violation {
        checker: NAME,
        at_us: end_us,
        message: format!(
            "{client} was not connected at the end of the run ({why}), though it reconnects and had time to come back after the faults (connected_at_end)"
        ),
    });
}

fn no_loss(expect: &Expectations, m: &Model<'_>, end_us: u64, out: &mut Vec<Violation>) {
    let Some(end) = m.end else { return };
    for p in &m.pubs {
        let wanted = match p.qos {
            1 => expect.no_loss.contains(&QoS::AtLeastOnce),
            2 => expect.no_loss.contains(&QoS::ExactlyOnce),
            _ => false,
        };
        if !wanted || m.unique_pub(p.label).is_none() {
            continue;
        }
        let Some(acked) = p
            .acked
            .filter(|&a| m.liveness_due(a) && m.may_write(p.client, p.topic))
        else {
            continue;
        };
        for &s in m.clients.keys().filter(|s| m.may_read(s, p.topic)) {
            if m.dels_of(p.label, s).any(|d| d.pos > p.pos) {
                continue;
            }
            let Some(held) = m.held(s, p.topic, p.qos, p.pos).filter(|h| h.qos >= 1) else {
                continue;
            };
            if !m.session_kept_to_end(s, held.granted_at)
                || (held.qos == 2 && m.gone_between(s, p.pos, end).is_some())
                || (s == p.client && no_local(expect, s, p.topic))
            {
                continue;
            }
            out.push(Violation {
                checker: NAME,
                at_us: end_us,
                message: format!(
                    "QoS {} message {} (from {} on {}), acknowledged at {} us, never reached {s}, which held {} (granted at {} us) in one session to the end: {} (no_loss)",
                    p.qos,
                    p.label,
                    p.client,
                    p.topic,
                    m.us(acked),
                    held.filter,
                    m.us(held.granted_at),
                    explain::why_missing(m, p, s)
                ),
            });
        }
    }
}

/// The `overflow` rule for `client` (see the module doc).
fn overflow(
    expect: &Expectations,
    m: &Model<'_>,
    client: &str,
    end_us: u64,
    out: &mut Vec<Violation>,
) {
    let keep_oldest = expect.queue_overflow == QueueOverflow::DropNewest;
    let mut fail = |message: String| {
        out.push(Violation {
            checker: NAME,
            at_us: end_us,
            message: format!("{client}: {message} (overflow)"),
        })
    };
    let Some(log) = m.clients.get(client) else {
        return fail("never connected".into());
    };
    let Some(i) = log
        .epochs
        .iter()
        .position(|e| matches!(e.end, Some((_, End::Disconnect { .. }))))
    else {
        return fail("never sent DISCONNECT".into());
    };
    let left = log.epochs[i].end.expect("found above").0;
    let Some(back) = log.epochs.get(i + 1).filter(|e| e.session_present) else {
        return fail("never came back to its session after its DISCONNECT".into());
    };
    let offline: Vec<&str> = m
        .pubs
        .iter()
        .filter(|p| p.pos > left && p.pos < back.start && p.qos >= 1 && p.acked.is_some())
        // Dropped for other reasons than the queue: denied by the ACL, or expired.
        .filter(|p| {
            m.may_write(p.client, p.topic) && m.may_read(client, p.topic) && p.expiry_s.is_none()
        })
        .filter(|p| {
            m.held(client, p.topic, p.qos, p.pos)
                .is_some_and(|h| h.qos >= 1)
        })
        .map(|p| p.label)
        .collect();
    let got: Vec<bool> = offline
        .iter()
        .map(|l| m.dels_of(l, client).any(|d| d.pos > back.start))
        .collect();
    let kept = got.iter().filter(|g| **g).count();
    if kept == offline.len() {
        return fail(format!(
            "received all {kept} messages published while it was offline: the queue never overflowed"
        ));
    }
    let room = expect.max_queued.min(offline.len());
    if kept != room {
        return fail(format!(
            "received {kept} of the {} messages published while it was offline, but a queue of {} keeps {room}",
            offline.len(),
            expect.max_queued
        ));
    }
    let (expected, end) = if keep_oldest {
        (0..kept, "oldest")
    } else {
        (offline.len() - kept..offline.len(), "newest")
    };
    if let Some((j, _)) = got
        .iter()
        .enumerate()
        .find(|(j, g)| **g != expected.contains(j))
    {
        fail(format!(
            "of the {} messages published while it was offline it received {kept}, but not the {end} {kept}: {} was {} (queue_overflow keeps the {end})",
            offline.len(),
            offline[j],
            if got[j] { "received" } else { "dropped" }
        ));
    }
}

/// The deliveries a `receives` entry is about: to its client, on a topic its filter matches.
fn receives_dels<'a, 't>(
    r: &'a Receives,
    m: &'a Model<'t>,
) -> impl Iterator<Item = &'a super::model::Del<'t>> + 'a {
    m.dels.iter().filter(move |d| {
        d.client == r.client
            && r.filter
                .as_deref()
                .is_none_or(|f| topic::matches(f, d.topic))
    })
}

/// The count bounds of `r`: distinct labelled messages, plus unlabelled deliveries without DUP.
fn receives_count(r: &Receives, m: &Model<'_>, end_us: u64, out: &mut Vec<Violation>) {
    let (lo, hi) = r.bounds();
    if lo.is_none() && hi.is_none() {
        return;
    }
    let mut labels = BTreeSet::new();
    let mut unlabelled = 0u64;
    for d in receives_dels(r, m) {
        if parse_label(d.label).is_some() {
            labels.insert(d.label);
        } else if !d.dup {
            unlabelled += 1;
        }
    }
    let got = labels.len() as u64 + unlabelled;
    let short = lo.is_some_and(|lo| got < u64::from(lo));
    let over = hi.is_some_and(|hi| got > u64::from(hi));
    if short || over {
        out.push(Violation {
            checker: NAME,
            at_us: end_us,
            message: format!(
                "{} received {got} message(s) on {}, expected {}{} (receives)",
                r.client,
                r.filter.as_deref().unwrap_or("any topic"),
                r.wanted(),
                if short {
                    missing(r, m, &labels, lo.map_or(0, u64::from).saturating_sub(got))
                } else {
                    String::new()
                }
            ),
        });
    }
}

/// Messages listed per short `receives`; the rest are counted.
const MISSING_SHOWN: usize = 5;

/// For a short `receives`: the messages published on its topics that never reached its
/// client, each with why ([`explain::why_missing`]), or that too few were published at all.
fn missing(r: &Receives, m: &Model<'_>, got: &BTreeSet<&str>, short_by: u64) -> String {
    let published: Vec<_> = m
        .pubs
        .iter()
        .filter(|p| {
            r.filter
                .as_deref()
                .is_none_or(|f| topic::matches(f, p.topic))
                && parse_label(p.label).is_some()
        })
        .collect();
    let lacking: Vec<_> = published
        .iter()
        .filter(|p| !got.contains(p.label) && m.unique_pub(p.label).is_some())
        .collect();
    let mut text = String::new();
    if (lacking.len() as u64) < short_by {
        text.push_str(&format!(
            "; only {} distinct message(s) were published on it at all",
            published.len()
        ));
    }
    if lacking.is_empty() {
        return text;
    }
    let shown: Vec<String> = lacking
        .iter()
        .take(MISSING_SHOWN)
        .map(|p| format!("{} ({})", p.label, explain::why_missing(m, p, &r.client)))
        .collect();
    text.push_str(&format!("; missing: {}", shown.join(", ")));
    if lacking.len() > MISSING_SHOWN {
        text.push_str(&format!(", and {} more", lacking.len() - MISSING_SHOWN));
    }
    text
}

/// The QoS and RETAIN flag of every delivery `r` is about; the first that differs is reported.
fn receives_flags(r: &Receives, m: &Model<'_>, out: &mut Vec<Violation>) {
    if r.qos.is_none() && r.retain.is_none() {
        return;
    }
    let bad = |d: &&super::model::Del<'_>| {
        r.qos.is_some_and(|q| d.qos != q) || r.retain.is_some_and(|f| d.retain != f)
    };
    let mut wrong = receives_dels(r, m).filter(bad);
    let Some(first) = wrong.next() else { return };
    let more = wrong.count();
    let mut expected = Vec::new();
    if let Some(q) = r.qos {
        expected.push(format!("QoS {q}"));
    }
    if let Some(f) = r.retain {
        expected.push(format!("RETAIN {}", u8::from(f)));
    }
    out.push(Violation {
        checker: NAME,
        at_us: m.us(first.pos),
        message: format!(
            "{} received {} on {} at QoS {} with RETAIN {}, expected {} on {}{} (receives)",
            r.client,
            first.label,
            first.topic,
            first.qos,
            u8::from(first.retain),
            expected.join(" and "),
            r.filter.as_deref().unwrap_or("any topic"),
            if more > 0 {
                format!("; {more} more such deliveries")
            } else {
                String::new()
            }
        ),
    });
}

/// Whether `client` subscribes to a filter matching `topic` with 5.0 No Local.
fn no_local(expect: &Expectations, client: &str, topic_name: &str) -> bool {
    expect
        .no_local
        .get(client)
        .is_some_and(|filters| filters.iter().any(|f| topic::matches(f, topic_name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::story::Story;
    use crate::trace::Persistence;

    fn expect(fill: impl FnOnce(&mut Expectations)) -> Expectations {
        let mut e = Expectations {
            max_queued: 1000,
            ..Expectations::default()
        };
        fill(&mut e);
        e
    }

    #[test]
    fn will_reaches_needs_a_will_delivery_and_no_will_forbids_one() {
        let s = expect(|e| {
            e.will_reaches.push(WillReaches {
                client: "pub".into(),
                subscriber: "mon".into(),
            });
            e.no_will.push("pub".into());
        });
        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "#", 1)
            .will("pub", "w/pub", 1, false)
            .connect("pub", true, false);
        let quiet = st.end();
        let v = check(&s, &quiet);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("will_reaches"), "{}", v[0]);
        assert!(
            v[0].message
                .contains(": pub's last connection with a will (w/pub) was still open at the end"),
            "{}",
            v[0]
        );

        // The will went to another subscriber only; then to nobody after a crash.
        let only_will_reaches = expect(|e| {
            e.will_reaches.push(WillReaches {
                client: "pub".into(),
                subscriber: "mon".into(),
            })
        });
        let crashed = || {
            let mut st = Story::new("3.1.1", Persistence::Durable);
            st.connect("mon", false, false)
                .connect("other", false, false)
                .subscribe("other", "w/#", 1)
                .will("pub", "w/pub", 1, false)
                .connect("pub", true, false)
                .crash("pub");
            st
        };
        let v = check(&only_will_reaches, &crashed().end());
        assert!(
            v[0].message.contains(
                "pub's last connection with a will (w/pub) ended at 0 us (the client crashed or lost power), and no will of it was delivered to anyone"
            ),
            "{}",
            v[0]
        );
        let mut st = crashed();
        st.after_ms(10).deliver_will("other", "pub");
        let v = check(&only_will_reaches, &st.end());
        assert!(
            v[0].message.contains(
                "it reached other but not mon, which never subscribed to a filter matching it"
            ),
            "{}",
            v[0]
        );

        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "#", 1)
            .will("pub", "w/pub", 1, false)
            .connect("pub", true, false)
            .crash("pub")
            .after_ms(10)
            .deliver_will("mon", "pub");
        let v = check(&s, &st.end());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].checker, NAME);
        assert!(v[0].message.contains("no_will"), "{}", v[0]);
    }

    #[test]
    fn no_loss_reports_an_acknowledged_message_never_delivered() {
        let s = expect(|e| e.no_loss.push(QoS::AtLeastOnce));
        let mut st = Story::new("3.1.1", Persistence::None);
        st.connect("mon", false, false)
            .subscribe("mon", "#", 1)
            .connect("pub", true, false);
        let m1 = st.publish("pub", "t/1", 1);
        st.after_ms(5).ack("pub", &m1);
        let m2 = st.publish("pub", "t/1", 1);
        st.after_ms(5).deliver("mon", &m2).ack("pub", &m2);
        let v = check(&s, &st.end());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains(&m1) && v[0].message.contains("no_loss"));
        assert!(
            v[0].message
                .contains("in one session to the end: nothing in the trace excuses it (no_loss)"),
            "{}",
            v[0]
        );
    }

    #[test]
    fn overflow_wants_exactly_a_full_queue_from_the_policy_s_end() {
        let s = expect(|e| {
            e.max_queued = 3;
            e.overflow.push("mon".into());
        });
        let run = |received: usize| {
            let mut st = Story::new("3.1.1", Persistence::Durable);
            st.connect("mon", false, false)
                .subscribe("mon", "#", 1)
                .connect("pub", true, false)
                .after_ms(10)
                .disconnect("mon");
            let labels: Vec<String> = (0..6)
                .map(|_| {
                    let l = st.publish("pub", "t/1", 1);
                    st.after_ms(5).ack("pub", &l);
                    l
                })
                .collect();
            st.after_ms(10).connect("mon", false, true);
            for l in &labels[..received] {
                st.after_ms(1).deliver("mon", l);
            }
            check(&s, &st.end())
        };
        assert_eq!(run(3), vec![], "the 3 oldest: what drop_newest keeps");
        for received in [0, 1, 2] {
            let v = run(received);
            assert_eq!(v.len(), 1, "{received} received: {v:?}");
            assert!(v[0].message.contains("a queue of 3 keeps 3"), "{}", v[0]);
        }
        let v = run(6);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("never overflowed"), "{}", v[0]);
    }

    #[test]
    fn receives_counts_distinct_messages_on_the_filter() {
        let s = expect(|e| {
            e.receives.push(Receives {
                client: "mon".into(),
                filter: Some("t/#".into()),
                at_least: Some(2),
                ..Receives::default()
            })
        });
        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "#", 1)
            .connect("pub", true, false);
        let m1 = st.publish("pub", "t/1", 1);
        st.after_ms(5).deliver("mon", &m1).redeliver("mon", &m1);
        let v = check(&s, &st.end());
        assert_eq!(v.len(), 1, "a duplicate is not a second message: {v:?}");
        let m2 = st.publish("pub", "t/2", 1);
        st.after_ms(5).deliver("mon", &m2);
        assert_eq!(check(&s, &st.end()), vec![]);
    }
}
