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
//! A CONNECT of another process with the same client identifier while a connection is open
//! may end it from that CONNECT on (the broker takes the session over when it reads it, before
//! any CONNACK shows it [MQTT-3.1.4-3]): the will may come from then, and a connection still
//! open at the end, or ended by a DISCONNECT such a CONNECT may have overtaken, may have had
//! its will published.
//!
//! A connection is dated from its CONNECT, not its CONNACK (the broker may have accepted it
//! before the CONNACK arrived): faults and broker crashes from the CONNECT on count, and a
//! will published before a late CONNACK belongs to it. A CONNECT that never got a successful
//! CONNACK may have its will published (once, not before it could have died), never after a
//! CONNACK refused it. The version of each rule is the CONNECT's own (`Attempt::v5`).
//!
//! Keep-alive 0: the broker has no timer, so a silent end (a power-off) can be seen only from
//! the power-on or the client's next CONNECT, and surely by that power-on or the next CONNACK;
//! the will waits for that (and is never owed when neither comes). Other ends are seen at once,
//! or by the heal of a black hole, partition or power-off holding the link at the end.
//!
//! A broker crash before the will is due makes a required will a "may" when persistence is
//! `none` (the waiting will died with the broker), and with `durable` only when the broker may
//! still have held the connection at the crash (within the slack of a cut or a client crash,
//! which reset the connection at once, or of 1.5 × keep-alive after any other end, plus broker
//! stalls): a waiting will is durable, a connection is not.
//!
//! Rules, per subscriber, on live deliveries of the will's label and topic: retain flag 0, or
//! retain flag 1 where only a Retain As Published subscription can have forwarded it
//! [MQTT-3.3.1-13] (one that a new subscription may also have drawn as a retained copy counts
//! as delivered but not towards "at most once"):
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

use super::model::{Attempt, ClientLog, Del, End, Epoch, Model, Pos, SubEv, SubKind};
use super::{CheckConfig, Violation, topic};
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
        for k in 0..log.attempts.len() {
            let Some(will) = Will::of(&m, c, log, k, cfg.network_slack_us) else {
                continue;
            };
            for &s in m.clients.keys() {
                will.judge(&m, s, &mut out);
            }
        }
    }
    out
}

/// The will of one connection (the CONNECT `attempt` of `client`, and its epoch if a CONNACK
/// accepted it), and when it must, may or must not be published.
struct Will<'m, 't> {
    client: &'t str,
    log: &'m ClientLog<'t>,
    attempt: usize,
    epoch: Option<usize>,
    spec: &'t WillSpec,
    /// The earliest moment the connection could have died (`usize::MAX`: never).
    death: Pos,
    /// Where the connection ended, in microseconds (`u64::MAX`: never).
    end_us: u64,
    /// When the broker surely knew the connection had ended, in microseconds (`u64::MAX`:
    /// never): the end plus 1.5 × keep-alive, or with keep-alive 0 the moment the end could
    /// no longer be hidden from it.
    known_us: u64,
    /// Keep-alive 0 and a silent end: `death` is when the broker could first see the end.
    hidden: bool,
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
    /// The will of CONNECT `k` of `client`, if it carried one.
    fn of(
        m: &Model<'t>,
        client: &'t str,
        log: &'m ClientLog<'t>,
        k: usize,
        slack: u64,
    ) -> Option<Will<'m, 't>> {
        let a = &log.attempts[k];
        let spec = a.will?;
        let epoch = log.epochs.iter().position(|e| e.attempt == k);
        let e = epoch.map(|i| &log.epochs[i]);
        // The connection ends where its epoch ends, or, without a CONNACK, where the attempt
        // failed.
        let end = match e {
            Some(e) => e.end.map(|(p, how)| (p, Some(how))),
            None => a.failed.map(|p| (p, None)),
        };
        let end_pos = end.map(|(p, _)| p);
        let (first_fault, mut death) = earliest_death(m, a.process, a.pos, end_pos);
        // Another process's CONNECT with the same client identifier while this connection is
        // open: the broker may take the session over (and close this connection) as soon as
        // it reads that CONNECT, before any CONNACK shows it (5.0 [MQTT-3.1.4-3],
        // 3.1.1 [MQTT-3.1.4-2]).
        let rival = log
            .attempts
            .iter()
            .filter(|b| b.process != a.process && b.pos > a.pos)
            .map(|b| b.pos)
            .find(|&p| end_pos.is_none_or(|end| p <= end));
        if let Some(r) = rival {
            death = death.min(r);
        }
        let end_us = end_pos.map_or(u64::MAX, |p| m.us(p));
        let expiry_us = e.map_or(u64::MAX, |e| session_expiry_us(m, e, a));
        let delay_us = (u64::from(spec.delay_s) * 1_000_000).min(expiry_us);
        let ka_us = u64::from(a.keep_alive_s) * 1_500_000;
        let mut verdict = match e {
            Some(e) => ending_verdict(m, client, e, first_fault.is_some(), rival, slack),
            None => attempt_verdict(m, a.failed),
        };
        let mut hidden = false;
        let with_will = matches!(end, Some((_, Some(End::Disconnect { with_will: true }))));
        // A connection taken over is closed by the broker itself when it accepts the new one.
        let taken_over = matches!(end, Some((_, Some(End::TakenOver))));
        let known_us = if with_will || taken_over {
            end_us
        } else if a.keep_alive_s > 0 {
            end_us.saturating_add(ka_us)
        } else {
            let (from, known_us) = unhidden(m, log, k, end);
            match from {
                Some(p) if p > death => {
                    death = p;
                    hidden = true;
                }
                Some(_) => {}
                None if verdict == Verdict::Required => {
                    verdict = Verdict::Forbidden(
                        "its keep-alive 0 connection went silent and the broker could never see it end",
                    )
                }
                None => {}
            }
            known_us
        };
        let raw_deadline = known_us.saturating_add(delay_us + slack);
        let deadline_us = raw_deadline.saturating_add(
            m.broker_stalled_us(m.us(death.min(m.trace.events.len())), raw_deadline),
        );
        let mut will = Will {
            client,
            log,
            attempt: k,
            epoch,
            spec,
            death,
            end_us,
            known_us,
            hidden,
            delay_us,
            deadline_us,
            deadline_pos: m.pos_at_us(deadline_us.saturating_add(1)),
            earliest_us: None,
            verdict,
        };
        will.reconnected(m);
        will.broker_crashed(m, slack);
        // The earliest moment the will may be published: the will delay after the earliest
        // death (capped by the session expiry), or a later CONNECT with clean start, which
        // ends the session at once (5.0 [MQTT-3.1.3-9]).
        let clean_again = log
            .attempts
            .iter()
            .filter(|x| x.clean_start && x.pos > a.pos)
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
            .epoch
            .and_then(|i| self.log.epochs.get(i + 1))
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
    /// resets the connection at once; other ends may take the broker until `known_us` to
    /// notice (1.5 × keep-alive).
    fn broker_crashed(&mut self, m: &Model<'_>, slack: u64) {
        let Some(e) = self.epoch.map(|i| &self.log.epochs[i]) else {
            return;
        };
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
        let notice = if reset { end_us } else { self.known_us }.saturating_add(slack);
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

    /// The CONNECT a delivery at `d_pos` of this will's label belongs to: a label reused by
    /// several connections goes to the latest of them that ended before the delivery, else to
    /// the latest sent before it (distinct labels make this exact).
    fn owner_of(&self, d_pos: Pos) -> Option<usize> {
        let log = self.log;
        let mine = || {
            log.attempts
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, x)| x.will.is_some_and(|v| v.payload == self.spec.payload))
        };
        let ended = |k: usize| {
            match log.epochs.iter().find(|e| e.attempt == k) {
                Some(e) => e.end.map(|(p, _)| p),
                None => log.attempts[k].failed,
            }
            .is_some_and(|p| p < d_pos)
        };
        mine()
            .find(|&(k, _)| ended(k))
            .or_else(|| mine().find(|(_, x)| x.pos < d_pos))
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
            .filter(|d| {
                d.topic == w.topic
                    && self.owner_of(d.pos) == Some(self.attempt)
                    && self.live(m, d) != Some(false)
            })
            .collect();
        if let Some(d) = dels.iter().find(|d| d.pos < death && death != usize::MAX) {
            self.say(
                out,
                m.us(d.pos),
                if !self.hidden {
                    format!("reached {s} while the connection was still healthy")
                } else {
                    format!(
                        "reached {s} before the broker could see the connection end (keep-alive 0: no timer; the end could only be seen from {} us)",
                        m.us(death)
                    )
                },
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
                    "reached {s} at {} us, before its will delay had passed: the connection cannot have ended before {} us and the will waits {} s (or until the session ends) [MQTT-3.1.3-9]", // 5.0
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
        if let Some(d) = dels
            .iter()
            .filter(|d| !d.dup && self.live(m, d) == Some(true))
            .nth(1)
        {
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

    /// Whether delivery `d` of this will is a live one (`Some(true)`: forwarded when the will
    /// was published), a retained copy sent for a new subscription (`Some(false)`), or either
    /// (`None`). RETAIN 0 is live. RETAIN 1 on a retained will is live when it can only have
    /// been forwarded through a Retain As Published subscription [MQTT-3.3.1-13]: the
    /// subscriber had asked for a matching filter with that option before, and asked for no
    /// matching filter from the earliest death on (which a retained copy could answer); with
    /// such a request too, it is either.
    fn live(&self, m: &Model<'t>, d: &Del<'_>) -> Option<bool> {
        if !d.retain {
            return Some(true);
        }
        let Some(log) = m.clients.get(d.client).filter(|_| self.spec.retain) else {
            return Some(false);
        };
        let asked = |s: &&SubEv<'_>| {
            s.pos < d.pos
                && matches!(s.kind, SubKind::Requested(_))
                && topic::subscription_matches(s.filter, d.topic)
        };
        if !log
            .subs
            .iter()
            .filter(asked)
            .any(|s| s.options.retain_as_published)
        {
            return Some(false);
        }
        if log
            .subs
            .iter()
            .filter(asked)
            .any(|s| s.pos >= self.death && topic::shared(s.filter).is_none())
        {
            return None;
        }
        Some(true)
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

/// The first disturbing fault on the connection of process `client` (from its CONNECT at `from`, since the
/// broker may have accepted it before the CONNACK arrived, up to its end `end_pos`), and the
/// earliest moment the connection could have died: that fault or its end (`usize::MAX`:
/// neither).
fn earliest_death(
    m: &Model<'_>,
    client: &str,
    from: Pos,
    end_pos: Option<Pos>,
) -> (Option<Pos>, Pos) {
    let first_fault = m
        .faults
        .iter()
        .filter(|f| f.fault.disturbs(client) && f.end.is_none_or(|fe| fe >= from))
        .filter(|f| end_pos.is_none_or(|p| f.start <= p))
        .map(|f| f.start.max(from))
        .min();
    let death: Pos = match (first_fault, end_pos) {
        (Some(f), Some(p)) => f.min(p),
        (Some(f), None) => f,
        (None, Some(p)) => p,
        (None, None) => usize::MAX,
    };
    (first_fault, death)
}

/// The session expiry in force for connection `e` of CONNECT `a` (5.0, by the CONNECT's own
/// version): the broker's, if its CONNACK announced one, else the CONNECT's; `u64::MAX`
/// without one.
fn session_expiry_us(m: &Model<'_>, e: &Epoch, a: &Attempt<'_>) -> u64 {
    let expiry_s = match &m.trace.events[e.start].event {
        Event::Connected {
            session_expiry_s: Some(s),
            ..
        } => Some(*s),
        _ => a.session_expiry_s,
    };
    expiry_s
        .filter(|_| a.v5)
        .map_or(u64::MAX, |s| u64::from(s) * 1_000_000)
}

/// A CONNECT without a successful CONNACK (failed at `failed`): the broker may have accepted
/// it and then lost the connection, so its will may come; never when a CONNACK refused it.
fn attempt_verdict(m: &Model<'_>, failed: Option<Pos>) -> Verdict {
    match failed.map(|p| &m.trace.events[p].event) {
        Some(Event::ConnectFailed { code: Some(_), .. }) => {
            Verdict::Forbidden("a CONNACK refused its CONNECT")
        }
        _ => Verdict::May,
    }
}

/// Keep-alive 0: the broker has no timer, so a connection that went silent ends for it only
/// when the silence is lifted or the client connects again. For CONNECT `k` of `client`, whose
/// connection ended at `end`: the earliest position from which the broker could see a silent
/// end (`Some(0)` for an end that was not silent; `None`: never), and when it surely saw the
/// end, in microseconds (`u64::MAX`: never).
///
/// A power-off hides the end until the machine is powered on (the old connection is reset)
/// or the client sends another CONNECT (a takeover): from then on it may be seen, and surely
/// by that heal or the next CONNACK. Any other end is seen at once, unless a black hole, a
/// partition or a power-off on the client's link in force at the end holds the reset until
/// it heals (the simulator lets it through at once; a real network may not).
fn unhidden(
    m: &Model<'_>,
    log: &ClientLog<'_>,
    k: usize,
    end: Option<(Pos, Option<End>)>,
) -> (Option<Pos>, u64) {
    let Some((end_pos, how)) = end else {
        return (Some(0), u64::MAX);
    };
    let process = log.attempts[k].process;
    let next_connect = log.attempts.get(k + 1).map(|a| a.pos);
    let next_connack = log.attempts[k + 1..]
        .iter()
        .find_map(|a| a.connected)
        .map(|p| m.us(p));
    let holding = |f: &Fault| match f {
        Fault::BlackHole { client: c } | Fault::ClientPowerOff { client: c } => c == process,
        Fault::Partition { .. } => f.disturbs(process),
        _ => false,
    };
    let held: Vec<Option<Pos>> = m
        .faults
        .iter()
        .filter(|f| holding(f.fault) && f.start <= end_pos && f.end.is_none_or(|e| e >= end_pos))
        .map(|f| f.end)
        .collect();
    let lifted_us = held
        .iter()
        .try_fold(m.us(end_pos), |acc, e| e.map(|p| acc.max(m.us(p))))
        .unwrap_or(u64::MAX);
    let known_us = lifted_us.min(next_connack.unwrap_or(u64::MAX));
    let silent = matches!(how, Some(End::ClientGone))
        && matches!(
            &m.trace.events[end_pos].event,
            Event::FaultApplied {
                fault: Fault::ClientPowerOff { .. }
            }
        );
    if !silent {
        return (Some(0), known_us);
    }
    let power_on = m
        .faults
        .iter()
        .find(|f| f.start == end_pos && matches!(f.fault, Fault::ClientPowerOff { .. }))
        .and_then(|f| f.end);
    let from = match (power_on, next_connect) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (from, known_us)
}

/// What the way connection `e` ended says of its will, before reconnects and broker crashes
/// are considered.
fn ending_verdict(
    m: &Model<'_>,
    client: &str,
    e: &Epoch,
    disturbed: bool,
    rival: Option<Pos>,
    slack: u64,
) -> Verdict {
    match e.end {
        None if !disturbed && rival.is_none() => {
            Verdict::Forbidden("its connection was still open at the end of the run")
        }
        None | Some((_, End::BrokerCrash)) => Verdict::May,
        Some((p, End::Disconnect { with_will: false })) => {
            let until = m.pos_at_us(m.us(p).saturating_add(slack));
            if m.disturbed(client, p, until) || rival.is_some_and(|r| r <= until) {
                Verdict::May
            } else {
                Verdict::Forbidden("it sent a normal DISCONNECT")
            }
        }
        Some(_) => Verdict::Required,
    }
}
