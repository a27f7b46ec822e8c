//! The "will" checker: each connection's will is published exactly when it must be.
//!
//! For every connection of a client whose CONNECT carried a will (its label names the
//! connection, `<client>#will-<n>`), the checker classifies how the connection ended:
//! - **required**: the connection was lost without DISCONNECT (the client saw it close or
//!   time out, a cut, the client crashed or was powered off), or the client sent DISCONNECT
//!   with reason 0x04 "with will";
//! - **forbidden**: the client sent a normal DISCONNECT and no fault could have kept it from
//!   the broker (none disturbing the connection from the DISCONNECT until the network slack
//!   after it); or the connection was still open at the end of the run and no fault ever
//!   disturbed it; or (5.0, will delay) the client connected again before the earliest
//!   moment the connection could have died plus the will delay, without clean start
//!   [MQTT-3.1.3-9];
//! - **may**: everything in between (a broker crash ended it, a fault may have eaten the
//!   DISCONNECT, a reconnect close to the will delay, a broker crash before the deadline).
//!
//! A broker crash before the will is due makes a required will a "may" when persistence is
//! `none` (the waiting will died with the broker), and with `durable` only when the broker may
//! still have held the connection at the crash (within the slack of a cut or a client crash,
//! which reset the connection at once, or of 1.5 × keep-alive after any other end, plus broker
//! stalls): a waiting will is durable, a connection is not.
//!
//! Rules, per subscriber, on live deliveries (retain flag 0) of the will's label and topic:
//! - never before the connection could have died (the first disturbing fault or its end);
//! - (5.0) never before the will delay, capped by the session expiry (the CONNACK's if the
//!   broker set one), has passed since that earliest death, unless the client connected again
//!   with clean start earlier, which ends the session and sends the will [MQTT-3.1.3-9];
//! - never when forbidden;
//! - published at most once: at most one delivery without DUP;
//! - when required and due before the settle phase: every subscriber entitled to it
//!   (docs/checkers.md, counted from the earliest death) gets it at least once; and a
//!   subscriber that stayed connected and undisturbed from the earliest death to the deadline
//!   gets it by the deadline: the end plus 1.5 × keep-alive (0 for DISCONNECT with will), plus
//!   the will delay (capped by the session expiry), plus the time the broker was paused or
//!   down, plus the network slack.
//!
//! Retained copies of a retained will are the "retained" checker's concern (which skips such
//! topics).

use super::model::{ClientLog, Del, End, Epoch, Model, Pos};
use super::{CheckConfig, Violation};
use crate::trace::{Event, Fault, Persistence, Trace, WillSpec};

/// The checker's name in the registry.
pub const NAME: &str = "will";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Required,
    Forbidden(&'static str),
    May,
}

pub fn check(trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let mut out = Vec::new();
    for (&c, log) in &m.clients {
        for i in 0..log.epochs.len() {
            let Some(will) = Will::of(&m, c, log, i, cfg.network_slack_us) else {
                continue;
            };
            for &s in m.clients.keys() {
                will.judge(&m, s, &mut out);
            }
        }
    }
    out
}

/// The will of one connection (epoch `epoch` of `client`), and when it must, may or must not
/// be published.
struct Will<'m, 't> {
    client: &'t str,
    log: &'m ClientLog<'t>,
    epoch: usize,
    spec: &'t WillSpec,
    /// The earliest moment the connection could have died (`usize::MAX`: never).
    death: Pos,
    /// Where the connection ended, in microseconds (`u64::MAX`: never).
    end_us: u64,
    /// The will delay, capped by the session expiry.
    delay_us: u64,
    /// When the will is due at the latest, and the first position after that.
    deadline_us: u64,
    deadline_pos: Pos,
    /// The earliest moment it may be published, if the will delay makes one.
    earliest_us: Option<u64>,
    verdict: Verdict,
}

impl<'m, 't> Will<'m, 't> {
    /// The will of epoch `i` of `client`, if its CONNECT carried one.
    fn of(
        m: &Model<'t>,
        client: &'t str,
        log: &'m ClientLog<'t>,
        i: usize,
        slack: u64,
    ) -> Option<Will<'m, 't>> {
        let e = &log.epochs[i];
        let a = &log.attempts[e.attempt];
        let spec = a.will?;
        let end_pos = e.end.map(|(p, _)| p);
        let (first_fault, death) = earliest_death(m, client, e);
        let end_us = end_pos.map_or(u64::MAX, |p| m.us(p));
        let delay_us =
            (u64::from(spec.delay_s) * 1_000_000).min(session_expiry_us(m, e, a.session_expiry_s));
        let ka_us = u64::from(a.keep_alive_s) * 1_500_000;
        let verdict = ending_verdict(m, client, e, first_fault.is_some(), slack);
        let detect_us = match e.end {
            Some((_, End::Disconnect { with_will: true })) => 0,
            _ => ka_us,
        };
        let raw_deadline = end_us.saturating_add(detect_us + delay_us + slack);
        let deadline_us = raw_deadline.saturating_add(
            m.broker_stalled_us(m.us(death.min(m.trace.events.len())), raw_deadline),
        );
        let mut will = Will {
            client,
            log,
            epoch: i,
            spec,
            death,
            end_us,
            delay_us,
            deadline_us,
            deadline_pos: m.pos_at_us(deadline_us.saturating_add(1)),
            earliest_us: None,
            verdict,
        };
        will.reconnected(m);
        will.broker_crashed(m, detect_us, slack);
        // The earliest moment the will may be published: the will delay after the earliest
        // death (capped by the session expiry), or a later CONNECT with clean start, which
        // ends the session at once [MQTT-3.1.3-9].
        let clean_again = log
            .attempts
            .iter()
            .filter(|x| x.clean_start && x.pos > e.start)
            .map(|x| m.us(x.pos))
            .min()
            .unwrap_or(u64::MAX);
        will.earliest_us = (death != usize::MAX && delay_us > 0)
            .then(|| m.us(death).saturating_add(delay_us).min(clean_again));
        Some(will)
    }

    /// A required will with a will delay, and the client connected again: a reconnect with
    /// clean start ends the old session, which sends the will; one without, within the delay,
    /// forbids it.
    fn reconnected(&mut self, m: &Model<'_>) {
        let next = self
            .log
            .epochs
            .get(self.epoch + 1)
            .map(|n| (n.start, self.log.attempts[n.attempt].clean_start));
        if self.verdict != Verdict::Required || self.delay_us == 0 {
            return;
        }
        let Some((r, clean)) = next else { return };
        if clean && m.us(r) <= self.deadline_us {
            self.verdict = Verdict::May;
        } else if m.us(r) < m.us(self.death).saturating_add(self.delay_us) {
            self.verdict = Verdict::Forbidden("it connected again within the will delay");
        } else if m.us(r) <= self.deadline_us {
            self.verdict = Verdict::May;
        }
    }

    /// A broker crash before the will was due: without persistence the waiting will is lost;
    /// with durable persistence it survives, unless the broker may still have held the
    /// connection when it crashed (a will belongs to its connection). A cut or a client crash
    /// resets the connection at once; other ends may take the broker up to 1.5 × keep-alive to
    /// notice.
    fn broker_crashed(&mut self, m: &Model<'_>, detect_us: u64, slack: u64) {
        let e = &self.log.epochs[self.epoch];
        let reset = match e.end {
            Some((_, End::Cut)) => true,
            Some((p, End::ClientGone)) => matches!(
                &m.trace.events[p].event,
                Event::FaultApplied {
                    fault: Fault::ClientCrash { .. }
                }
            ),
            _ => false,
        };
        let end_us = self.end_us;
        let notice = end_us.saturating_add(if reset { 0 } else { detect_us } + slack);
        let noticed_by = notice.saturating_add(m.broker_stalled_us(end_us, notice));
        if self.verdict == Verdict::Required
            && m.broker_crashes.iter().any(|&b| {
                b >= self.death
                    && b < self.deadline_pos
                    && (m.persistence == Persistence::None || m.us(b) <= noticed_by)
            })
        {
            self.verdict = Verdict::May;
        }
    }

    /// The epoch a delivery at `d_pos` of this will's label belongs to: a label reused by
    /// several connections goes to the latest of them that ended before the delivery, else to
    /// the latest started before it (distinct labels make this exact).
    fn owner_of(&self, d_pos: Pos) -> Option<usize> {
        let same = |x: &Epoch| {
            self.log.attempts[x.attempt]
                .will
                .is_some_and(|v| v.payload == self.spec.payload)
        };
        let mine = || {
            self.log
                .epochs
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, x)| same(x))
        };
        mine()
            .find(|(_, x)| x.end.is_some_and(|(p, _)| p < d_pos))
            .or_else(|| mine().find(|(_, x)| x.start < d_pos))
            .map(|(k, _)| k)
    }

    fn say(&self, out: &mut Vec<Violation>, at_us: u64, text: String) {
        out.push(Violation {
            checker: NAME,
            at_us,
            message: format!("will {} of {}: {text}", self.spec.payload, self.client),
        })
    }

    /// The rules for subscriber `s` on the live deliveries of this will.
    fn judge(&self, m: &Model<'t>, s: &str, out: &mut Vec<Violation>) {
        let (w, death) = (self.spec, self.death);
        let dels: Vec<&Del<'_>> = m
            .dels_of(&w.payload, s)
            .filter(|d| !d.retain && d.topic == w.topic && self.owner_of(d.pos) == Some(self.epoch))
            .collect();
        if let Some(d) = dels.iter().find(|d| d.pos < death && death != usize::MAX) {
            self.say(
                out,
                m.us(d.pos),
                format!("reached {s} while the connection was still healthy"),
            );
        }
        if let Some(earliest) = self.earliest_us
            && let Some(d) = dels
                .iter()
                .find(|d| d.pos >= death && m.us(d.pos) < earliest)
        {
            self.say(
                out,
                m.us(d.pos),
                format!(
                    "reached {s} at {} us, before its will delay had passed: the connection cannot have ended before {} us and the will waits {} s (or until the session ends) [MQTT-3.1.3-9]",
                    m.us(d.pos),
                    m.us(death),
                    self.delay_us / 1_000_000
                ),
            );
        }
        if let (Verdict::Forbidden(why), Some(d)) = (self.verdict, dels.first()) {
            self.say(
                out,
                m.us(d.pos),
                format!("reached {s}, but {why}; it must not be published"),
            );
        }
        if let Some(d) = dels.iter().filter(|d| !d.dup).nth(1) {
            self.say(
                out,
                m.us(d.pos),
                format!("reached {s} twice without DUP; a will is published once"),
            );
        }
        if self.verdict == Verdict::Required && m.liveness_due_us(self.deadline_us) {
            self.judge_required(m, s, dels.first().copied(), out);
        }
    }

    /// A required will, due before the settle phase: subscriber `s`, if entitled, gets it
    /// (`first` is its first delivery), by the deadline if it stayed connected and undisturbed.
    fn judge_required(
        &self,
        m: &Model<'t>,
        s: &str,
        first: Option<&Del<'_>>,
        out: &mut Vec<Violation>,
    ) {
        let (w, death, end_us, deadline_us) =
            (self.spec, self.death, self.end_us, self.deadline_us);
        // The broker applies No Local to a will as to any message of its client.
        let Some(held) = m.entitled_from(s, Some(self.client), &w.topic, w.qos, death) else {
            return;
        };
        match first {
            None => self.say(
                out,
                m.us(m.end.unwrap_or(0)),
                format!(
                    "never reached {s}, entitled to it at QoS {} through {}; the connection ended abnormally at {} us",
                    held.qos, held.filter, end_us
                ),
            ),
            Some(d) if m.us(d.pos) > deadline_us => {
                let steady = m
                    .epoch_at(s, death)
                    .is_some_and(|x| x.end.is_none_or(|(p, _)| p > self.deadline_pos))
                    && !m.disturbed(s, death, self.deadline_pos);
                if steady {
                    self.say(
                        out,
                        m.us(d.pos),
                        format!(
                            "reached {s} at {} us, after the deadline {deadline_us} us (end {end_us} us + 1.5 x keep-alive + will delay + slack)",
                            m.us(d.pos)
                        ),
                    );
                }
            }
            Some(_) => {}
        }
    }
}

/// The first disturbing fault on `client`'s connection `e` (from its start, up to its end),
/// and the earliest moment the connection could have died: that fault or its end
/// (`usize::MAX`: neither).
fn earliest_death(m: &Model<'_>, client: &str, e: &Epoch) -> (Option<Pos>, Pos) {
    let end_pos = e.end.map(|(p, _)| p);
    let first_fault = m
        .faults
        .iter()
        .filter(|f| f.fault.disturbs(client) && f.end.is_none_or(|fe| fe >= e.start))
        .filter(|f| end_pos.is_none_or(|p| f.start <= p))
        .map(|f| f.start.max(e.start))
        .min();
    let death: Pos = match (first_fault, end_pos) {
        (Some(f), Some(p)) => f.min(p),
        (Some(f), None) => f,
        (None, Some(p)) => p,
        (None, None) => usize::MAX,
    };
    (first_fault, death)
}

/// The session expiry in force for connection `e` (5.0): the broker's, if its CONNACK
/// announced one, else the CONNECT's (`requested`); `u64::MAX` without one.
fn session_expiry_us(m: &Model<'_>, e: &Epoch, requested: Option<u32>) -> u64 {
    let expiry_s = match &m.trace.events[e.start].event {
        Event::Connected {
            session_expiry_s: Some(s),
            ..
        } => Some(*s),
        _ => requested,
    };
    expiry_s
        .filter(|_| m.v5)
        .map_or(u64::MAX, |s| u64::from(s) * 1_000_000)
}

/// What the way connection `e` ended says of its will, before reconnects and broker crashes
/// are considered.
fn ending_verdict(m: &Model<'_>, client: &str, e: &Epoch, disturbed: bool, slack: u64) -> Verdict {
    match e.end {
        None if !disturbed => {
            Verdict::Forbidden("its connection was still open at the end of the run")
        }
        None | Some((_, End::BrokerCrash)) => Verdict::May,
        Some((p, End::Disconnect { with_will: false })) => {
            let until = m.pos_at_us(m.us(p).saturating_add(slack));
            if m.disturbed(client, p, until) {
                Verdict::May
            } else {
                Verdict::Forbidden("it sent a normal DISCONNECT")
            }
        }
        Some(_) => Verdict::Required,
    }
}
