//! The "shared" checker: shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 section
//! 4.8.2), judged per group. A group is one shared filter string; its members are the clients
//! that ever asked for it.
//!
//! For every publish request on a topic the group's filter matches (labels carried by exactly
//! one request):
//! - QoS 0: at most one member gets it.
//! - QoS 1: a second member gets its first copy only after a member that got it earlier
//!   may have lost its session (its connection ended or was disturbed by a fault in between,
//!   it crashed or powered off, or the broker crashed without persistence): the broker hands a
//!   message to another member only when the session holding it ends.
//! - QoS 2: once a member got it, no other member does, even after that member's session
//!   ended ([MQTT-4.8.2-5]); only a broker crash without persistence in between excuses a
//!   second member's copy (the publisher may send it again as a new message).
//! - QoS 1 and 2 (liveness): an acknowledged publish, acknowledged before the settle phase,
//!   reaches at least one member when the group is owed it (docs/checkers.md, "Entitled", shared
//!   subscriptions): some member held the subscription before the request in one session to
//!   the end; no member could keep it stranded (every member is connected at the end, or its
//!   last session ended with its connection early enough for the broker to notice); every
//!   grant of the filter was QoS 1 or 2; no broker crash without persistence after the
//!   request; at QoS 2, no member crashed or powered off after it and no member's session may
//!   have ended after it (a QoS 2 message sent to a member ends with its session); no member's queue may have
//!   overflowed; and the message cannot have expired (as for "delivery": [`Model::may_expire`]).
//!
//! A group is not judged for a message when one of its members also holds another filter
//! matching the topic (the copies cannot be told apart). Retained copies are left out: a
//! delivery with the retain flag counts when it was forwarded through a Retain As Published
//! subscription ([`Model::forwarded`](super::model::Model::forwarded)); one that may also be a
//! retained copy (a member subscribing again after the publish, where a broker may send
//! retained messages to a new shared subscription) counts as reaching the group, not as a
//! second member's copy. Not
//! here: a member's own at-most-once and order ("delivery", "ordering" judge plain
//! subscriptions only), wills sent to groups.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Del, Model, Pos, Pub, SubKind};
use super::{CheckConfig, Violation, topic};
use crate::trace::Trace;

/// The checker's name in the registry.
pub const NAME: &str = "shared";

pub fn check(trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (&c, log) in &m.clients {
        for s in &log.subs {
            if matches!(s.kind, SubKind::Requested(_)) && topic::shared(s.filter).is_some() {
                groups.entry(s.filter).or_default().insert(c);
            }
        }
    }
    let mut out = Vec::new();
    for (&share, members) in &groups {
        let Some((_, inner)) = topic::shared(share) else {
            continue;
        };
        for p in &m.pubs {
            if !topic::matches(inner, p.topic)
                || m.unique_pub(p.label).is_none()
                || members.iter().any(|&c| other_filter(&m, c, share, p.topic))
            {
                continue;
            }
            judge(&m, cfg, share, members, p, &mut out);
        }
    }
    out
}

/// Whether `client` asked for a filter other than `share` that matches `topic`.
fn other_filter(m: &Model<'_>, client: &str, share: &str, topic_name: &str) -> bool {
    m.clients.get(client).is_some_and(|log| {
        log.subs.iter().any(|s| {
            s.filter != share
                && matches!(s.kind, SubKind::Requested(_))
                && topic::subscription_matches(s.filter, topic_name)
        })
    })
}

fn judge<'t>(
    m: &Model<'t>,
    cfg: &CheckConfig,
    share: &str,
    members: &BTreeSet<&'t str>,
    p: &Pub<'_>,
    out: &mut Vec<Violation>,
) {
    // Forwarded copies, and (for what reached the group at all) those that may be one.
    let first = |certain: bool| {
        let mut firsts: Vec<&Del<'_>> = members
            .iter()
            .filter_map(|&c| {
                m.dels_of(p.label, c).find(|d| {
                    d.pos > p.pos
                        && match m.forwarded(d) {
                            Some(forwarded) => forwarded,
                            None => !certain,
                        }
                })
            })
            .collect();
        firsts.sort_by_key(|d| d.pos);
        firsts
    };
    let firsts = first(true);
    for (k, b) in firsts.iter().enumerate().skip(1) {
        let excused = match p.qos {
            0 => false,
            1 => firsts[..k].iter().any(|a| released(m, a, b.pos)),
            _ => m.lossy_crash_between(firsts[0].pos, b.pos).is_some(),
        };
        if !excused {
            let a = firsts[k - 1];
            out.push(Violation {
                checker: NAME,
                at_us: m.us(b.pos),
                message: format!(
                    "QoS {} message {} (from {} on {}) reached two members of {share}: {} at {} us and {} at {} us; a shared subscription delivers each message to one member{}",
                    p.qos,
                    p.label,
                    p.client,
                    p.topic,
                    a.client,
                    m.us(a.pos),
                    b.client,
                    m.us(b.pos),
                    match p.qos {
                        0 => "",
                        1 => ", and to another only when the session holding it ends",
                        _ => {
                            ", and a QoS 2 message sent to one member never to another, even after its session ends [MQTT-4.8.2-5]"
                        }
                    }
                ),
            });
        }
    }
    let Some(acked) = p.acked.filter(|&a| p.qos >= 1 && m.liveness_due(a)) else {
        return;
    };
    if !first(false).is_empty() {
        return;
    }
    if let Some(holder) = owed(m, cfg, share, members, p) {
        out.push(Violation {
            checker: NAME,
            at_us: m.us(m.end.unwrap_or(0)),
            message: format!(
                "QoS {} message {} (from {} on {}), acknowledged at {} us, reached no member of {share}; {holder} held the subscription in one session to the end and no member could have kept it",
                p.qos,
                p.label,
                p.client,
                p.topic,
                m.us(acked),
            ),
        });
    }
}

/// Whether the member that got `a` may have lost the session holding it before `before`.
fn released(m: &Model<'_>, a: &Del<'_>, before: Pos) -> bool {
    let ended = m
        .epoch_at(a.client, a.pos)
        .is_none_or(|e| e.end.is_some_and(|(end, _)| end < before));
    ended
        || m.disturbed(a.client, a.pos, before)
        || m.gone_between(a.client, a.pos, before).is_some()
        || m.lossy_crash_between(a.pos, before).is_some()
}

/// The member that makes the group owe `p` (see the module documentation), if it is owed.
fn owed<'t>(
    m: &Model<'t>,
    cfg: &CheckConfig,
    share: &str,
    members: &BTreeSet<&'t str>,
    p: &Pub<'_>,
) -> Option<&'t str> {
    let end = m.end?;
    // A message its publisher may not write is dropped; one a member may not read is not
    // sent to it, and may strand with it.
    if m.lossy_crash_between(p.pos, end).is_some()
        || !m.may_write(p.client, p.topic)
        || members.iter().any(|c| !m.may_read(c, p.topic))
    {
        return None;
    }
    for &c in members {
        let log = m.clients.get(c)?;
        let grants_ok = log.subs.iter().filter(|s| s.filter == share).all(|s| {
            !matches!(s.kind, SubKind::Granted(Some(0))) && !matches!(s.kind, SubKind::Requested(0))
        });
        if !grants_ok
            || (p.qos == 2
                && (m.gone_between(c, p.pos, end).is_some() || session_may_end(m, c, p.pos)))
            || m.may_overflow(c, p.pos)
            || m.may_expire(c, p, cfg.network_slack_us)
            || !cannot_strand(m, cfg, c)
        {
            return None;
        }
    }
    members.iter().copied().find(|&c| {
        m.held_shared(c, share, p.pos)
            .is_some_and(|g| m.session_kept_to_end(c, g))
    })
}

/// Whether a session of member `c` that was open at `from` or began later may have ended before
/// the end of the run: one of its connections ended at or after `from` and the next one did
/// not resume the session, or there is no next one and the session ended with the connection.
fn session_may_end(m: &Model<'_>, c: &str, from: Pos) -> bool {
    let Some(log) = m.clients.get(c) else {
        return false;
    };
    log.epochs.iter().enumerate().any(|(i, e)| {
        if e.end.is_none_or(|(end, _)| end < from) {
            return false;
        }
        match log.epochs.get(i + 1) {
            Some(next) => next.chain != e.chain,
            None => log.attempts[e.attempt].session_ends_with_connection(),
        }
    })
}

/// Whether member `c` cannot hold a message stranded at the end: it is connected at the end,
/// or its last connection's session ended with it (clean session, session expiry 0) early
/// enough for the broker to notice (1.5 × keep-alive + broker stall + network slack before the
/// end).
fn cannot_strand(m: &Model<'_>, cfg: &CheckConfig, c: &str) -> bool {
    let Some(log) = m.clients.get(c) else {
        return true;
    };
    let Some(last) = log.epochs.last() else {
        // Never connected: it never became a member.
        return true;
    };
    let Some((end, _)) = last.end else {
        return true;
    };
    let attempt = &log.attempts[last.attempt];
    if !attempt.session_ends_with_connection() {
        return false;
    }
    let end_us = m.us(end);
    let run_end_us = m.us(m.end.unwrap_or(0));
    let grace = u64::from(attempt.keep_alive_s) * 1_500_000 + cfg.network_slack_us;
    end_us + grace + m.broker_stalled_us(end_us, run_end_us) < run_end_us
}
