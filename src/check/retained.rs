//! The "retained" checker: a new subscription gets the latest retained value of each matching
//! topic, never an older one, and nothing after a clear.
//!
//! The retained value of a topic is modelled from retained publish requests (a clear is an
//! empty payload), a broker crash with persistence `none` (clears everything) and the empty
//! start. The broker processes a request at an unknown moment between its request and its
//! acknowledgement; an unacknowledged QoS 1/2 request may be processed any time later (or
//! never); an unacknowledged QoS 0 request is processed, if at all, before any later request
//! of the same client. A value is *possible* at instant τ when it could have been processed
//! at or before τ and no other request certainly processed after it was certainly processed by
//! τ. A subscription is processed somewhere between its SUBSCRIBE and its SUBACK; the values
//! possible at some instant of that span are its *allowed* values.
//!
//! Rules, per subscriber and topic:
//! - a delivery with the retain flag set carries an allowed value of a subscription of that
//!   client matching the topic, made before it in the same session and not yet answered (each
//!   allowed delivery answers one subscription); a DUP resend of a value already delivered
//!   with the retain flag in the same session is also fine; a retained clear itself is never
//!   delivered (section 3.3.1.3);
//! - liveness: when exactly one value is allowed, it is not a clear, it was acknowledged before
//!   the SUBSCRIBE, the SUBACK came before the settle phase and the subscription is kept like an
//!   entitlement (docs/checkers.md) with effective QoS min(value QoS, granted) at least 1, the
//!   subscriber receives it with the retain flag after its SUBSCRIBE.
//!
//! - retain handling (5.0): a subscription with retain handling 2 is never answered with
//!   retained messages [MQTT-3.3.1-11]; one with retain handling 1 only if the subscription did
//!   not exist [MQTT-3.3.1-10]: it existed when the same filter was granted earlier in the same
//!   session and not unsubscribed since; when an earlier request of it in the session went
//!   unanswered, either is allowed and nothing is owed. Retain handling 0 answers every
//!   subscribe [MQTT-3.3.1-9].
//!
//! A delivery that was certainly forwarded through a Retain As Published subscription
//! (`Model::forwarded`) is not a retained copy and is left alone; one that may be either is
//! matched to a subscription if it can be, and is otherwise taken as forwarded. Topics that a
//! retained will may set are not judged, since the will's publication time is not observed.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{ClientLog, Del, Model, Pos, SubEv, SubKind};
use super::{CheckConfig, Violation, topic};
use crate::trace::{Persistence, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "retained";

/// One candidate retained value of a topic.
#[derive(Debug)]
struct Candidate<'t> {
    label: &'t str,
    client: &'t str,
    qos: u8,
    req: Pos,
    acked: Option<Pos>,
    /// The latest moment it can be processed; `None`: any time.
    latest: Option<Pos>,
}

/// A subscription of one filter: SUBSCRIBE at `req`, SUBACK granting `granted` at `ack`
/// (`granted` = `None`: no SUBACK was seen, and `ack` is where its connection ended).
#[derive(Debug)]
struct Sub<'t> {
    filter: &'t str,
    req: Pos,
    ack: Pos,
    granted: Option<u8>,
    sends: Sends,
}

/// Whether a subscribe is answered with retained messages, by its retain handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sends {
    /// Retain handling 0, or 1 for a subscription that did not exist.
    Yes,
    /// Retain handling 1 when an earlier request in the session went unanswered.
    Maybe,
    /// Retain handling 2, or 1 for a subscription that existed: with the handling, for the
    /// message.
    No(u8),
}

/// What retain handling allows for the subscribe at `log.subs[i]`.
fn sends(m: &Model<'_>, client: &str, subs: &[SubEv<'_>], i: usize) -> Sends {
    let ev = &subs[i];
    match ev.options.retain_handling {
        2 => return Sends::No(2),
        1 => {}
        _ => return Sends::Yes,
    }
    let chain = m.chain_at(client, ev.pos);
    let mut state = Sends::Yes;
    for e in subs[..i]
        .iter()
        .filter(|e| e.filter == ev.filter && m.chain_at(client, e.pos) == chain)
    {
        state = match e.kind {
            SubKind::Granted(Some(_)) => Sends::No(1),
            SubKind::Granted(None) | SubKind::UnsubRequested => Sends::Yes,
            // Answered later, or never: unknown until an answer comes.
            SubKind::Requested(_) => match state {
                Sends::No(1) => Sends::No(1),
                _ => Sends::Maybe,
            },
        };
    }
    // A request whose answer came before `ev` settles it; one still open leaves it unknown.
    state
}

fn candidates<'t>(m: &Model<'t>, t: &str) -> Vec<Candidate<'t>> {
    let mut out = vec![Candidate {
        label: "",
        client: "",
        qos: 2,
        req: 0,
        acked: Some(0),
        latest: Some(0),
    }];
    if m.persistence == Persistence::None {
        for &c in &m.broker_crashes {
            out.push(Candidate {
                label: "",
                client: "",
                qos: 2,
                req: c,
                acked: Some(c),
                latest: Some(c),
            });
        }
    }
    // A publish its client may not write is dropped, never retained (it may still be
    // acknowledged: 3.1.1 has no refusal).
    for p in m
        .pubs
        .iter()
        .filter(|p| p.retain && p.topic == t && m.may_write(p.client, p.topic))
    {
        let latest = p.acked.or_else(|| {
            (p.qos == 0)
                .then(|| {
                    m.pubs
                        .iter()
                        .filter(|q| q.client == p.client && q.pos > p.pos)
                        .filter_map(|q| q.acked)
                        .min()
                })
                .flatten()
        });
        out.push(Candidate {
            label: p.label,
            client: p.client,
            qos: p.qos,
            req: p.pos,
            acked: p.acked,
            latest,
        });
    }
    out
}

fn possible(cs: &[Candidate<'_>], x: usize, tau: Pos) -> bool {
    let cx = &cs[x];
    if cx.req > tau {
        return false;
    }
    let p = cx.latest.map_or(tau, |l| l.min(tau));
    !cs.iter().enumerate().any(|(y, cy)| {
        y != x
            && cy.acked.is_some_and(|a| a <= tau)
            && (cy.req > p
                || (cx.qos == 0
                    && !cx.client.is_empty()
                    && cy.client == cx.client
                    && cy.req > cx.req))
    })
}

/// The values possible at some instant of `[sub.req, sub.ack]`. Possibility only changes at
/// a candidate's request or acknowledgement, so those instants (and the start) suffice.
fn allowed<'t>(cs: &[Candidate<'t>], sub: &Sub<'_>) -> BTreeSet<&'t str> {
    let mut taus: BTreeSet<Pos> = cs
        .iter()
        .flat_map(|c| [Some(c.req), c.acked])
        .flatten()
        .filter(|&t| t > sub.req && t <= sub.ack)
        .collect();
    taus.insert(sub.req);
    (0..cs.len())
        .filter(|&x| taus.iter().any(|&tau| possible(cs, x, tau)))
        .map(|x| cs[x].label)
        .collect()
}

fn show(set: &BTreeSet<&str>) -> String {
    let names: Vec<String> = set
        .iter()
        .map(|l| {
            if l.is_empty() {
                "(none)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    names.join(" or ")
}

pub fn check(trace: &Trace, _cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let topics = retained_topics(&m);
    let cands: BTreeMap<&str, Vec<Candidate<'_>>> =
        topics.iter().map(|&t| (t, candidates(&m, t))).collect();
    let mut out = Vec::new();
    for (&s, log) in &m.clients {
        let subs = subscriptions(&m, s, &log.subs);
        let mut allowed_of: BTreeMap<(usize, &str), BTreeSet<&str>> = BTreeMap::new();
        for (k, sub) in subs.iter().enumerate() {
            for (&t, cs) in cands.iter().filter(|(t, _)| topic::matches(sub.filter, t)) {
                allowed_of.insert((k, t), allowed(cs, sub));
            }
        }
        let view = Subscriber {
            m: &m,
            s,
            log,
            subs,
            allowed_of,
        };
        view.judge_copies(&topics, &mut out);
        view.judge_owed(&cands, &mut out);
    }
    out
}

/// The topics judged: those published retained, except the topics of retained wills (the
/// "will" checker's concern).
fn retained_topics<'t>(m: &Model<'t>) -> BTreeSet<&'t str> {
    let will_topics: BTreeSet<&str> = m
        .clients
        .values()
        .flat_map(|l| {
            l.attempts
                .iter()
                .filter_map(|a| a.will.filter(|w| w.retain).map(|w| w.topic.as_str()))
        })
        .collect();
    m.pubs
        .iter()
        .filter(|p| p.retain && !will_topics.contains(p.topic))
        .map(|p| p.topic)
        .collect()
}

/// The subscriptions `client` requested (its subscription events `evs`), each with its answer.
fn subscriptions<'t>(m: &Model<'t>, s: &str, evs: &[SubEv<'t>]) -> Vec<Sub<'t>> {
    let mut subs: Vec<Sub<'t>> = Vec::new();
    for (i, ev) in evs.iter().enumerate() {
        let SubKind::Requested(_) = ev.kind else {
            continue;
        };
        let answer = evs[i + 1..]
            .iter()
            .find(|g| g.filter == ev.filter && !matches!(g.kind, SubKind::Requested(_)));
        let sends = sends(m, s, evs, i);
        match answer.map(|g| (g.pos, g.kind)) {
            Some((ack, SubKind::Granted(Some(q)))) => subs.push(Sub {
                filter: ev.filter,
                req: ev.pos,
                ack,
                granted: Some(q),
                sends,
            }),
            // No SUBACK seen (the connection ended first): the broker may still have
            // processed it before the connection ended.
            None | Some((_, SubKind::UnsubRequested)) => {
                let until = m
                    .epoch_at(s, ev.pos)
                    .and_then(|e| e.end)
                    .map_or(m.trace.events.len(), |(p, _)| p);
                subs.push(Sub {
                    filter: ev.filter,
                    req: ev.pos,
                    ack: until,
                    granted: None,
                    sends,
                })
            }
            Some(_) => {}
        }
    }
    subs
}

/// One subscriber's subscriptions, with the retained values each may be answered with
/// (`allowed_of[(subscription, topic)]`).
struct Subscriber<'a, 't> {
    m: &'a Model<'t>,
    s: &'t str,
    log: &'a ClientLog<'t>,
    subs: Vec<Sub<'t>>,
    allowed_of: BTreeMap<(usize, &'t str), BTreeSet<&'t str>>,
}

impl<'t> Subscriber<'_, 't> {
    /// Every retained copy the subscriber got on a judged topic answers one of its new
    /// subscriptions with a value retained then, as its retain handling allows.
    fn judge_copies(&self, topics: &BTreeSet<&'t str>, out: &mut Vec<Violation>) {
        let (m, s, subs, allowed_of) = (self.m, self.s, &self.subs, &self.allowed_of);
        let mut answered: BTreeSet<(usize, &str)> = BTreeSet::new();
        let mut got: BTreeSet<(usize, &str, &str)> = BTreeSet::new();
        for d in m
            .dels
            .iter()
            .filter(|d| d.client == s && d.retain && topics.contains(d.topic))
        {
            let forwarded = m.forwarded(d);
            if forwarded == Some(true) {
                continue;
            }
            let chain = m.chain_at(s, d.pos);
            let say = |text: String| Violation {
                checker: NAME,
                at_us: m.us(d.pos),
                message: text,
            };
            if d.label.is_empty() {
                out.push(say(format!("{s} got a retained clear of {} as a retained message; a clear is never delivered (section 3.3.1.3)", d.topic)));
                continue;
            }
            let open: Vec<usize> = (0..subs.len())
                .filter(|&k| {
                    subs[k].req < d.pos
                        && !matches!(subs[k].sends, Sends::No(_))
                        && topic::matches(subs[k].filter, d.topic)
                        && m.chain_at(
                            s,
                            if subs[k].granted.is_some() {
                                subs[k].ack
                            } else {
                                subs[k].req
                            },
                        ) == chain
                        && !answered.contains(&(k, d.topic))
                })
                .collect();
            let chain_id = chain.unwrap_or(0);
            if let Some(&k) = open
                .iter()
                .find(|&&k| allowed_of[&(k, d.topic)].contains(d.label))
            {
                answered.insert((k, d.topic));
                got.insert((chain_id, d.topic, d.label));
                continue;
            }
            if (d.dup && got.contains(&(chain_id, d.topic, d.label))) || forwarded.is_none() {
                continue;
            }
            // The latest subscribe of a matching filter that retain handling kept silent.
            let silenced = subs.iter().rev().find(|x| {
                x.req < d.pos
                    && topic::matches(x.filter, d.topic)
                    && m.chain_at(s, x.req) == chain
                    && matches!(x.sends, Sends::No(_))
            });
            out.push(say(self.unexpected_copy(d, open.last().copied(), silenced)));
        }
    }

    /// Why retained copy `d` answers none of the subscriber's subscriptions: `open` is the
    /// latest that was waiting for a value of its topic, `silenced` the latest that retain
    /// handling kept silent.
    fn unexpected_copy(
        &self,
        d: &Del<'_>,
        open: Option<usize>,
        silenced: Option<&Sub<'_>>,
    ) -> String {
        let (m, s, subs, allowed_of) = (self.m, self.s, &self.subs, &self.allowed_of);
        match (open, silenced) {
            (None, Some(x)) => {
                let Sends::No(rh) = x.sends else {
                    unreachable!("filtered above")
                };
                let (why, rule) = if rh == 2 {
                    ("retain handling 2", "MQTT-3.3.1-11") // 5.0
                } else {
                    (
                        "retain handling 1 and the subscription already existed",
                        "MQTT-3.3.1-10", // 5.0
                    )
                };
                format!(
                    "{s} got {} on {} with the retain flag after subscribing to {} at {} us with {why}: no retained message may be sent for it [{rule}]",
                    d.label,
                    d.topic,
                    x.filter,
                    m.us(x.req)
                )
            }
            // The label is 3.1.1's. For subscriptions without Retain As Published the rule is
            // 5.0 [MQTT-3.3.1-12].
            (None, None) => format!(
                "{s} got {} on {} with the retain flag, but no new subscription of it was waiting for a retained value; forwarded messages carry retain 0 [MQTT-3.3.1-9]", // 3.1.1
                d.label, d.topic
            ),
            (Some(k), _) => {
                let set = &allowed_of[&(k, d.topic)];
                let what = if set.iter().all(|l| l.is_empty()) {
                    "had been cleared"
                } else {
                    "was newer"
                };
                format!(
                    "{s} subscribed to {} at {} us and got retained {} on {}, but the retained value then was {} ({} {what})",
                    subs[k].filter,
                    m.us(subs[k].req),
                    d.label,
                    d.topic,
                    show(set),
                    d.topic
                )
            }
        }
    }

    /// Liveness: an unambiguous, acknowledged value is owed.
    fn judge_owed(&self, cands: &BTreeMap<&'t str, Vec<Candidate<'t>>>, out: &mut Vec<Violation>) {
        let (m, s, log, allowed_of) = (self.m, self.s, self.log, &self.allowed_of);
        for (k, sub) in self.subs.iter().enumerate() {
            let Some(granted) = sub
                .granted
                .filter(|_| m.liveness_due(sub.ack) && sub.sends == Sends::Yes)
            else {
                continue;
            };
            for (&t, cs) in cands
                .iter()
                .filter(|(t, _)| topic::matches(sub.filter, t) && m.may_read(s, t))
            {
                let set = &allowed_of[&(k, t)];
                let [w] = set.iter().copied().collect::<Vec<_>>()[..] else {
                    continue;
                };
                let Some(c) = cs.iter().find(|c| c.label == w && !w.is_empty()) else {
                    continue;
                };
                let qos = c.qos.min(granted);
                let kept = !log.subs.iter().any(|e| {
                    e.pos > sub.ack
                        && e.filter == sub.filter
                        && matches!(e.kind, SubKind::UnsubRequested | SubKind::Granted(None))
                });
                let end = m.end.unwrap_or(0);
                if qos == 0
                    || c.acked.is_none_or(|a| a >= sub.req)
                    || !kept
                    || !m.session_kept_to_end(s, sub.ack)
                    || m.lossy_crash_between(sub.req, end).is_some()
                    || (qos == 2 && m.gone_between(s, sub.req, end).is_some())
                    || m.may_overflow(s, sub.req)
                {
                    continue;
                }
                if !m
                    .dels_of(w, s)
                    .any(|d| d.pos > sub.req && d.retain && d.topic == t)
                {
                    out.push(Violation {
                    checker: NAME,
                    at_us: m.us(end),
                    message: format!(
                        "{s} subscribed to {} at {} us and never got the retained value {w} of {t} (acknowledged at {} us)",
                        sub.filter,
                        m.us(sub.req),
                        m.us(c.acked.unwrap_or(0))
                    ),
                });
                }
            }
        }
    }
}
