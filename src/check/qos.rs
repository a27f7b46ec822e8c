//! The QoS and the number of copies of each delivery: the owed QoS and the copies for the
//! "delivery" checker ([`violations`]), the QoS of retained copies for "integrity"
//! ([`retained_violations`]).
//!
//! - **Highest QoS owed** (3.1.1 [MQTT-3.3.5-1], 5.0 [MQTT-3.3.4-2]): a subscriber entitled to
//!   an acknowledged QoS 1/2 message (docs/checkers.md, "Entitled": its subscriptions held
//!   before the request and kept since, one session to the end) that receives it at all
//!   receives one copy at the effective QoS of its best matching subscription, min(published,
//!   granted). A subscription whose SUBACK had not come before the request, or that was
//!   unsubscribed or asked again since, only *may* count, so it never raises what is owed.
//! - **Copies** (same rules): one message reaches a subscriber, without DUP and not as a retained
//!   copy, at most once per matching filter the subscriber asked for (the specification allows
//!   one copy per overlapping subscription). Judged for publishes the broker received once
//!   (`resend::single_forward`); in 3.1.1 a QoS 0 copy of a QoS 1/2 message may be duplicated
//!   ([MQTT-3.8.4-6]) and is not counted; QoS 2 copies are counted by the exactly-once rule
//!   of `delivery`.
//! - **Retained copies** (3.1.1 [MQTT-3.8.4-6], 5.0 section 3.8.4): a retained message sent
//!   because of a subscription arrives at min(its published QoS, the QoS granted); judged when
//!   the subscriber asked for one filter matching the topic in the session, against the lowest
//!   grant of that filter in the session up to the delivery (or answering the request just
//!   before it).
//!
//! Not here: QoS above what was published or asked for (`integrity`), whether a message came
//! at all (`delivery`).

use std::collections::BTreeMap;

use super::model::{Model, SubKind};
use super::resend::{matching_filters, single_forward};
use super::{CheckConfig, Violation};

/// The rule's identifier in the subscriber's protocol.
fn max_qos_rule(v5: bool) -> &'static str {
    if v5 { "MQTT-3.3.4-2" } else { "MQTT-3.3.5-1" }
}

/// Every delivery at too low a QoS and every copy too many, reported under `checker`.
pub fn violations(m: &Model<'_>, cfg: &CheckConfig, checker: &'static str) -> Vec<Violation> {
    let mut out = Vec::new();
    highest_qos(m, cfg, checker, &mut out);
    copies(m, checker, &mut out);
    out
}

/// Every retained copy below min(published, granted) QoS, reported under `checker`.
pub fn retained_violations(m: &Model<'_>, checker: &'static str) -> Vec<Violation> {
    let mut out = Vec::new();
    retained_copies(m, checker, &mut out);
    out
}

/// Whether `client` spoke 5.0 on the connection open at `pos`; the scenario's protocol when it
/// had none.
fn v5_at(m: &Model<'_>, client: &str, pos: usize) -> bool {
    m.epoch_at(client, pos)
        .and_then(|e| m.clients.get(client)?.attempts.get(e.attempt))
        .map_or(m.v5, |a| a.v5)
}

fn highest_qos(m: &Model<'_>, cfg: &CheckConfig, checker: &'static str, out: &mut Vec<Violation>) {
    for p in &m.pubs {
        if p.qos == 0 || m.unique_pub(p.label).is_none() {
            continue;
        }
        let Some(acked) = p
            .acked
            .filter(|&a| m.liveness_due(a) && m.may_write(p.client, p.topic))
        else {
            continue;
        };
        for &s in m.clients.keys() {
            let Some(best) = m
                .dels_of(p.label, s)
                .filter(|d| d.pos > p.pos)
                .max_by_key(|d| d.qos)
            else {
                continue;
            };
            let Some(held) = m
                .entitled_from(s, Some(p.client), p.topic, p.qos, p.pos)
                .filter(|_| !m.may_expire(s, p, cfg.network_slack_us))
            else {
                continue;
            };
            if best.qos < held.qos {
                out.push(Violation {
                    checker,
                    at_us: m.us(m.end.unwrap_or(0)),
                    message: format!(
                        "QoS {} message {} (from {} on {}), acknowledged at {} us, reached {s} at QoS {} at most, but {s} held {} (granted at {} us) and was owed it at QoS {}: the highest QoS of the matching subscriptions [{}]",
                        p.qos,
                        p.label,
                        p.client,
                        p.topic,
                        m.us(acked),
                        best.qos,
                        held.filter,
                        m.us(held.granted_at),
                        held.qos,
                        max_qos_rule(v5_at(m, s, best.pos))
                    ),
                });
            }
        }
    }
}

fn copies(m: &Model<'_>, checker: &'static str, out: &mut Vec<Violation>) {
    for p in &m.pubs {
        if m.unique_pub(p.label).is_none() || !single_forward(m, p) {
            continue;
        }
        for &s in m.clients.keys() {
            // Per session of the subscriber: first copies (no DUP, forwarded).
            let mut per_chain: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
            for d in m.dels_of(p.label, s).filter(|d| d.pos > p.pos) {
                let v5 = v5_at(m, s, d.pos);
                // QoS 2 copies are counted by the exactly-once rule of `delivery`.
                if d.dup
                    || m.forwarded(d) != Some(true)
                    || d.qos == 2
                    || (!v5 && d.qos == 0)
                    || m.stale(s, d.pos)
                {
                    continue;
                }
                per_chain
                    .entry(m.chain_at(s, d.pos))
                    .or_default()
                    .push(d.pos);
            }
            for got in per_chain.values() {
                let last = *got.last().expect("a chain entry has a delivery");
                let filters = matching_filters(m, s, p.topic, last).len();
                if got.len() > filters {
                    out.push(Violation {
                        checker,
                        at_us: m.us(last),
                        message: format!(
                            "message {} (from {} on {}, received once by the broker) reached {s} {} times without DUP in one session, but {s} asked for {filters} matching filter(s): at most one copy per matching subscription [{}]",
                            p.label,
                            p.client,
                            p.topic,
                            got.len(),
                            max_qos_rule(v5_at(m, s, last))
                        ),
                    });
                }
            }
        }
    }
}

fn retained_copies(m: &Model<'_>, checker: &'static str, out: &mut Vec<Violation>) {
    for d in &m.dels {
        if m.forwarded(d) != Some(false) {
            continue;
        }
        let Some(p) = m
            .unique_pub(d.label)
            .filter(|p| p.retain && p.topic == d.topic && p.pos < d.pos)
        else {
            continue;
        };
        let filters = matching_filters(m, d.client, d.topic, d.pos);
        let [filter] = filters.into_iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        let Some(log) = m.clients.get(d.client) else {
            continue;
        };
        let chain = m.chain_at(d.client, d.pos);
        let mut lowest: Option<u8> = None;
        let mut judged = true;
        for (i, r) in log.subs.iter().enumerate() {
            if r.filter != filter
                || r.pos >= d.pos
                || !matches!(r.kind, SubKind::Requested(_))
                || m.chain_at(d.client, r.pos) != chain
            {
                continue;
            }
            match log.subs[i + 1..]
                .iter()
                .find(|g| g.filter == filter && !matches!(g.kind, SubKind::Requested(_)))
                .map(|g| g.kind)
            {
                Some(SubKind::Granted(Some(g))) => lowest = Some(lowest.map_or(g, |l| l.min(g))),
                _ => judged = false,
            }
        }
        let Some(granted) = lowest.filter(|_| judged) else {
            continue;
        };
        let owed = p.qos.min(granted);
        if d.qos < owed {
            let rule = if v5_at(m, d.client, d.pos) {
                "section 3.8.4"
            } else {
                "MQTT-3.8.4-6" // 3.1.1
            };
            out.push(Violation {
                checker,
                at_us: m.us(d.pos),
                message: format!(
                    "retained message {} (from {} on {}, published at QoS {}) reached {} as a retained copy at QoS {}, but its subscription {filter} was granted QoS {granted}: a retained copy goes at min(published, granted) = QoS {owed} [{rule}]",
                    d.label, p.client, d.topic, p.qos, d.client, d.qos
                ),
            });
        }
    }
}
