//! The message expiry interval as received ([MQTT-3.3.2-6]), judged for the "integrity"
//! checker from `message_expiry_s` on `publish_requested` and on `delivered`.
//!
//! For every delivery of a label that one publish request carries (on its topic):
//! - the delivery carries an interval only if the publish did, and (a 5.0 receiver) carries
//!   one whenever the publish did: the broker forwards what remains of it;
//! - never more than the interval sent minus the whole seconds the message provably waited in
//!   the broker: from its acknowledgement (the broker had it by then) to the CONNECT of the
//!   connection it arrived on (the broker cannot have sent it earlier), less the time the
//!   broker was paused or down in between (a broker may or may not count that);
//! - a first delivery (DUP 0) never carries 0: an expired message must not be sent
//!   ([MQTT-3.3.2-5]); a resend of one whose delivery had begun may.
//!
//! Not here: whether an expired message was delivered late or owed at all (`delivery`).

use super::Violation;
use super::model::Model;

/// Every delivery whose message expiry interval breaks the rules above, reported under
/// `checker`.
pub fn violations(m: &Model<'_>, checker: &'static str) -> Vec<Violation> {
    let mut out = Vec::new();
    for d in &m.dels {
        let Some(p) = m
            .unique_pub(d.label)
            .filter(|p| p.topic == d.topic && p.pos < d.pos)
        else {
            continue;
        };
        // A delivery to a connection already taken over arrived on that connection.
        let Some(epoch) = m
            .epoch_at(d.client, d.pos)
            .filter(|_| !m.stale(d.client, d.pos))
        else {
            continue;
        };
        let Some(attempt) = m
            .clients
            .get(d.client)
            .and_then(|log| log.attempts.get(epoch.attempt))
        else {
            continue;
        };
        let v5 = attempt.v5;
        let who = format!(
            "{} (from {} on {}, to {})",
            d.label, p.client, d.topic, d.client
        );
        let mut say = |message: String| {
            out.push(Violation {
                checker,
                at_us: m.us(d.pos),
                message,
            })
        };
        match (p.expiry_s, d.expiry_s) {
            (None, Some(got)) => say(format!(
                "{who} carried a message expiry interval of {got} s but was published without one [MQTT-3.3.2-6]"
            )),
            (Some(sent), None) if v5 => say(format!(
                "{who} was published with a message expiry interval of {sent} s but arrived without one: the broker must forward what remains of it [MQTT-3.3.2-6]"
            )),
            (Some(sent), Some(got)) => {
                if got == 0 && !d.dup {
                    say(format!(
                        "{who} arrived with a message expiry interval of 0 s: an expired message must not be delivered [MQTT-3.3.2-5]"
                    ));
                    continue;
                }
                let connect_us = m.us(attempt.pos);
                let acked_us = p.acked.map_or(connect_us, |a| m.us(a));
                let waited_us = connect_us
                    .saturating_sub(acked_us)
                    .saturating_sub(m.broker_stalled_us(acked_us, connect_us));
                let waited_s = u32::try_from(waited_us / 1_000_000).unwrap_or(u32::MAX);
                let most = sent.saturating_sub(waited_s);
                if got > most {
                    say(format!(
                        "{who} arrived with a message expiry interval of {got} s, but it was published with {sent} s and waited at least {waited_s} s in the broker (acknowledged at {acked_us} us, the connection it arrived on asked for at {connect_us} us): at most {most} s may remain [MQTT-3.3.2-6]"
                    ));
                }
            }
            _ => {}
        }
    }
    out
}
