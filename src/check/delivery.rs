//! The "delivery" checker: the QoS promises, message by message and subscriber by subscriber.
//!
//! - QoS 0: a message published at QoS 0 reaches each subscriber at most once.
//! - QoS 2: a message delivered at QoS 2 reaches each subscriber at most once, unless the
//!   subscriber's process or a broker without persistence lost the exchange's state between
//!   the two deliveries (a crash or power-off of the subscriber, a broker crash with
//!   persistence `none`).
//! - QoS 1 and 2 (liveness): every acknowledged publish reaches every entitled subscriber
//!   (docs/checkers.md, "Entitled") at least once by the end of the run, if it was
//!   acknowledged before the settle phase began.
//!
//! - Message expiry (5.0): a message with an expiry interval is owed only if it could not
//!   have expired on its way ([`Model::may_expire`](super::model::Model::may_expire)); a
//!   delivery (not a DUP resend) to a subscriber that had no connection from the request
//!   until past the expiry plus the network slack and broker stalls is reported.
//!
//! Deliveries caused by a new subscription (retain flag set, unless a Retain As Published
//! subscription may have forwarded them, see `Model::forwarded`) are left to the "retained"
//! checker for the at-most-once rules, and count as reaching the subscriber. A subscription
//! with No Local (5.0) never entitles a client to its own messages [MQTT-3.8.3-3]. Only labels that
//! occur in exactly one publish request are judged. Not here: order ("ordering"), deliveries of
//! unpublished messages ("integrity").

use std::collections::BTreeSet;

use super::model::Model;
use super::resend::matching_filters;
use super::{CheckConfig, Violation};
use crate::trace::Trace;

/// The checker's name in the registry.
pub const NAME: &str = "delivery";

pub fn check(trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut out = super::qos::violations(&m, cfg, NAME);
    for p in &m.pubs {
        if m.unique_pub(p.label).is_none() {
            continue;
        }
        for &s in m.clients.keys() {
            let live: Vec<_> = m
                .dels_of(p.label, s)
                .filter(|d| m.forwarded(d) == Some(true))
                .collect();
            if let Some(late) = live.iter().find(|d| {
                d.pos > p.pos && !d.dup && m.offline_past_expiry(s, p, cfg.network_slack_us)
            }) {
                out.push(Violation {
                    checker: NAME,
                    at_us: m.us(late.pos),
                    message: format!(
                        "message {} (from {} on {}, message expiry {} s) reached {s} at {} us, but {s} had no connection from its request at {} us until after it expired (plus the network slack and broker stalls): an expired message must not be sent [MQTT-3.3.2-5]",
                        p.label,
                        p.client,
                        p.topic,
                        p.expiry_s.unwrap_or(0),
                        m.us(late.pos),
                        m.us(p.pos)
                    ),
                });
            }
            // One copy per matching subscription is allowed ([MQTT-3.3.5-1], [MQTT-3.3.4-2]).
            let copies = live
                .last()
                .map_or(1, |d| matching_filters(&m, s, p.topic, d.pos).len().max(1));
            if p.qos == 0 && live.len() > copies {
                out.push(Violation {
                    checker: NAME,
                    at_us: m.us(live[copies].pos),
                    message: format!(
                        "QoS 0 message {} (from {} on {}) delivered {} times to {s}, which asked for {copies} matching filter(s); QoS 0 is at most once per subscription",
                        p.label,
                        p.client,
                        p.topic,
                        live.len()
                    ),
                });
            }
            let twice: Vec<_> = live.iter().filter(|d| d.qos == 2).collect();
            if let Some(pair) = twice.windows(copies + 1).find(|w| {
                m.gone_between(s, w[0].pos, w[copies].pos).is_none()
                    && m.lossy_crash_between(w[0].pos, w[copies].pos).is_none()
            }) {
                out.push(Violation {
                    checker: NAME,
                    at_us: m.us(pair[copies].pos),
                    message: if copies == 1 {
                        format!(
                            "QoS 2 message {} (from {} on {}) delivered twice to {s}, at {} us and {} us; QoS 2 is exactly once (section 4.3.3)",
                            p.label,
                            p.client,
                            p.topic,
                            m.us(pair[0].pos),
                            m.us(pair[1].pos)
                        )
                    } else {
                        format!(
                            "QoS 2 message {} (from {} on {}) delivered {} times to {s}, from {} us to {} us, which asked for {copies} matching filters; QoS 2 is exactly once per subscription (section 4.3.3)",
                            p.label,
                            p.client,
                            p.topic,
                            copies + 1,
                            m.us(pair[0].pos),
                            m.us(pair[copies].pos)
                        )
                    },
                });
            }
        }
        let Some(acked) = p
            .acked
            .filter(|&a| p.qos >= 1 && m.liveness_due(a) && m.may_write(p.client, p.topic))
        else {
            continue;
        };
        let reached: BTreeSet<&str> = m
            .dels_with(p.label)
            .filter(|d| d.pos > p.pos)
            .map(|d| d.client)
            .collect();
        for &s in m.clients.keys() {
            if reached.contains(s) {
                continue;
            }
            if let Some(held) = m
                .entitled_from(s, Some(p.client), p.topic, p.qos, p.pos)
                .filter(|_| !m.may_expire(s, p, cfg.network_slack_us))
            {
                out.push(Violation {
                    checker: NAME,
                    at_us: m.us(m.end.unwrap_or(0)),
                    message: format!(
                        "QoS {} message {} (from {} on {}), acknowledged at {} us, never reached {s}, which was entitled to it at QoS {}: it held {} (granted at {} us) in one session to the end of the run",
                        p.qos,
                        p.label,
                        p.client,
                        p.topic,
                        m.us(acked),
                        held.qos,
                        held.filter,
                        m.us(held.granted_at)
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::story::Story;
    use crate::trace::Persistence;

    fn cfg() -> CheckConfig {
        CheckConfig::default()
    }

    #[test]
    fn delivered_message_passes_and_missing_one_is_reported() {
        let mut s = Story::new("3.1.1", Persistence::Durable);
        s.connect("mon", false, false)
            .subscribe("mon", "t/#", 1)
            .connect("pub", true, false);
        let m1 = s.publish("pub", "t/1", 1);
        s.after_ms(5).ack("pub", &m1);
        let missing = s.end();
        let v = check(&missing, &cfg());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("pub#1") && v[0].message.contains("never reached mon"),
            "{}",
            v[0]
        );

        let mut s = Story::new("3.1.1", Persistence::Durable);
        s.connect("mon", false, false)
            .subscribe("mon", "t/#", 1)
            .connect("pub", true, false);
        let m1 = s.publish("pub", "t/1", 1);
        s.after_ms(5).deliver("mon", &m1).ack("pub", &m1);
        assert_eq!(check(&s.end(), &cfg()), vec![]);
    }
}
