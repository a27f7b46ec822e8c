//! The "session" checker: the session-present flag of every CONNACK.
//!
//! - Clean start set: session present must be 0 (3.1.1 [MQTT-3.2.2-1], 5.0 [MQTT-3.2.2-2]).
//! - Clean start not set: session present must be 1 when the broker certainly holds a session
//!   for the client, and 0 when it certainly holds none (3.1.1 [MQTT-3.2.2-2] and
//!   [MQTT-3.2.2-3], 5.0 [MQTT-3.2.2-3]).
//!
//! The checker replays each client's history to know what the broker should hold:
//! - a connection creates or continues a session; when it ends, the session survives if it
//!   was persistent (3.1.1: clean session 0; 5.0: session expiry interval above 0, from
//!   CONNACK if the broker set it, else from CONNECT), for the expiry interval counted from
//!   when the broker saw the connection end; the version is that of the connection's own
//!   CONNECT (a scenario may mix them);
//! - that end is known only within bounds: no earlier than the first fault that could disturb
//!   the connection (minus the network slack), no later than the client saw it end plus
//!   1.5 × keep-alive plus the slack (only the slack after a DISCONNECT that no fault
//!   disturbed); so a session is certainly alive when the client got its
//!   CONNACK within the expiry of the earliest end, certainly expired when it sent CONNECT
//!   after the expiry of the latest end plus the slack, and unknown in between;
//! - a broker crash with persistence `none` removes every session; with `durable` none;
//! - a CONNECT that got no successful CONNACK may or may not have been processed: what it
//!   would have done is merged with what was there, and a disagreement makes the next
//!   verdict unknown.
//!
//! - a session online when a durable broker crashed starts its expiry when the broker is back
//!   at the latest; the time the broker is down counts towards every interval;
//!
//! Unknown is never judged.
//!
//! A new session holds nothing of an old one ([MQTT-3.2.2-3], [MQTT-3.1.2-4]): after a CONNACK
//! with session present 0, the client must not receive (live, retain flag 0) a message that
//! its publisher saw acknowledged before the client asked, in this session, for a subscription
//! matching its topic. The broker had processed it by then, so only a queue or inflight window
//! of an earlier session can have held it for this client (for instance, of a session that
//! should have expired). Topics the client holds a shared subscription for are left out
//! (another member's messages may be handed over later).
//!
//! A connection taken over by another process of its client identifier is closed by the broker
//! (3.1.1 [MQTT-3.1.4-2], 5.0 [MQTT-3.1.4-3]): where no fault or broker stall could keep the
//! close from the old process, that process sees its connection end by a close (or DISCONNECT),
//! not by its own keep-alive, and not stay open to the end of the run.
//!
//! Not here: what a resumed session then delivers ("delivery").

use super::model::{Attempt, ClientLog, End, Epoch, Model, Pos, SubKind};
use super::{CheckConfig, Violation};
use crate::trace::{Persistence, Trace};

/// The checker's name in the registry.
pub const NAME: &str = "session";

/// What the broker holds for one client, as far as the trace tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    No,
    Unknown,
    /// A session; `expiry` = (earliest end µs, latest end µs, interval s) when it is waiting
    /// to expire, `None` while a connection holds it.
    Yes {
        expiry: Option<(u64, u64, u32)>,
    },
}

impl Held {
    fn merge(self, other: Held) -> Held {
        match (self, other) {
            (Held::No, Held::No) => Held::No,
            (Held::Yes { expiry: a }, Held::Yes { expiry: b }) => Held::Yes {
                expiry: match (a, b) {
                    (Some(a), Some(b)) if a.2 == b.2 => Some((a.0.min(b.0), a.1.max(b.1), a.2)),
                    (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1), a.2.min(b.2))),
                    _ => None,
                },
            },
            _ => Held::Unknown,
        }
    }

    /// Resolves expiry at a CONNECT sent at `sent_us` and answered by `answered_us`.
    fn at(self, sent_us: u64, answered_us: u64, slack: u64) -> Held {
        match self {
            Held::Yes {
                expiry: Some((lo, hi, secs)),
            } if secs != u32::MAX => {
                let e = u64::from(secs) * 1_000_000;
                if answered_us <= lo + e {
                    Held::Yes { expiry: None }
                } else if sent_us > hi + e + slack {
                    Held::No
                } else {
                    Held::Unknown
                }
            }
            Held::Yes { .. } => Held::Yes { expiry: None },
            other => other,
        }
    }
}

pub fn check(trace: &Trace, cfg: &CheckConfig) -> Vec<Violation> {
    let m = Model::new(trace);
    let slack = cfg.network_slack_us;
    let lossy = m.persistence == Persistence::None;
    let mut out = Vec::new();
    for (&c, log) in &m.clients {
        let mut held = Held::No;
        let mut crashes = m
            .broker_crashes
            .iter()
            .copied()
            .filter(|_| lossy)
            .peekable();
        for (k, a) in log.attempts.iter().enumerate() {
            while crashes.next_if(|&p| p < a.pos).is_some() {
                held = Held::No;
            }
            let answered = a.connected.or(a.failed).unwrap_or(a.pos);
            let now = held.at(m.us(a.pos), m.us(answered), slack);
            let epoch = log.epochs.iter().find(|e| e.attempt == k);
            // What the broker holds after this attempt's connection (if processed) ends.
            let expiry_s = match epoch.map(|e| &m.trace.events[e.start].event) {
                Some(crate::trace::Event::Connected {
                    session_expiry_s: Some(s),
                    ..
                }) => Some(*s),
                _ => a.session_expiry_s,
            };
            // A 5.0 DISCONNECT may set a new interval (unless the CONNECT's was 0): it is the
            // one in force when the connection ends.
            let expiry_s = match epoch
                .and_then(|e| e.end)
                .map(|(p, _)| &m.trace.events[p].event)
            {
                Some(crate::trace::Event::DisconnectSent {
                    session_expiry_s: Some(s),
                    ..
                }) if a.v5 => Some(*s),
                _ => expiry_s,
            };
            let persists = if a.v5 {
                expiry_s.unwrap_or(0) > 0
            } else {
                !a.clean_start
            };
            let expiry = if a.v5 {
                expiry_s.unwrap_or(0)
            } else {
                u32::MAX
            };
            match (a.connected, epoch) {
                (Some(pos), Some(e)) => {
                    judge_flag(&m, c, log, k, (pos, e), now, &mut out);
                    held = held_after(&m, c, a, e, (persists, expiry), slack);
                }
                _ => {
                    let at = m.us(answered);
                    let if_processed = if persists {
                        Held::Yes {
                            expiry: Some((
                                m.us(a.pos),
                                at + u64::from(a.keep_alive_s) * 1_500_000 + slack,
                                expiry,
                            )),
                        }
                    } else {
                        Held::No
                    };
                    // Not processed: the old session (and its expiry) goes on.
                    held = match now {
                        Held::Yes { .. } => held.merge(if_processed),
                        other => other.merge(if_processed),
                    };
                }
            }
        }
    }
    stale_deliveries(&m, &mut out);
    taken_over_connections_closed(&m, slack, &mut out);
    out
}

/// A connection taken over by another process of its client identifier is closed by the broker
/// (3.1.1 [MQTT-3.1.4-2], 5.0 [MQTT-3.1.4-3]): the old process sees it end by a close or the
/// broker's DISCONNECT, not by its own keep-alive giving up, and does not stay connected to the
/// end of the run. Judged only where nothing else could keep the close from it: no fault on
/// the old process's link and the broker neither paused nor down from the new CONNECT to the
/// old process's end (a broker crash, pause or failing disk counts as such a fault), the
/// new CONNECT sent after the old connection's CONNACK (else the broker may have read the two
/// CONNECTs the other way round), and, for one still open, more than the network slack before
/// the end.
fn taken_over_connections_closed(m: &Model<'_>, slack: u64, out: &mut Vec<Violation>) {
    use crate::trace::{Event, LossCause};
    let Some(run_end) = m.end else {
        return;
    };
    for (&c, log) in &m.clients {
        for e in &log.epochs {
            let Some((taken, End::TakenOver)) = e.end else {
                continue;
            };
            let Some(by) = log
                .attempts
                .iter()
                .find(|a| a.connected == Some(taken) && a.process != e.process)
                // A CONNECT sent before this connection's CONNACK may have been read first.
                .filter(|a| a.pos > e.start)
            else {
                continue;
            };
            let seen = m.trace.events[taken + 1..run_end]
                .iter()
                .enumerate()
                .find(|(_, ev)| {
                    ev.process() == Some(e.process)
                        && matches!(
                            ev.event,
                            Event::ConnectionLost { .. }
                                | Event::Connecting { .. }
                                | Event::DisconnectSent { .. }
                        )
                })
                .map(|(i, ev)| (taken + 1 + i, &ev.event));
            let until = seen.map_or(run_end, |(p, _)| p);
            // Broker crashes, pauses and failing disks disturb every process's link.
            let quiet = !m.faults.iter().any(|f| {
                f.fault.disturbs(e.process)
                    && f.start <= until
                    && f.end.is_none_or(|end| end >= by.pos)
            });
            if !quiet {
                continue;
            }
            let id = if by.v5 {
                "MQTT-3.1.4-3" // 5.0
            } else {
                "MQTT-3.1.4-2" // 3.1.1
            };
            match seen {
                Some((
                    at,
                    Event::ConnectionLost {
                        cause: LossCause::KeepAliveTimeout,
                        ..
                    },
                )) => out.push(violation(
                    m,
                    at,
                    format!(
                        "{} (client {c}) was taken over by {} at {} us, but its connection ended only by its own keep-alive: the broker must close the connection it took the session from [{id}]",
                        e.process,
                        by.process,
                        m.us(taken)
                    ),
                )),
                None if m.us(run_end) > m.us(taken) + slack => out.push(violation(
                    m,
                    run_end,
                    format!(
                        "{} (client {c}) was taken over by {} at {} us, but its connection was still open at the end: the broker must close the connection it took the session from [{id}]",
                        e.process,
                        by.process,
                        m.us(taken)
                    ),
                )),
                _ => {}
            }
        }
    }
}

/// Session Present in the CONNACK at `pos` answering attempt `k` of client `c` (connection
/// `e`), given what the broker held for it then (`now`).
fn judge_flag(
    m: &Model<'_>,
    c: &str,
    log: &ClientLog<'_>,
    k: usize,
    (pos, e): (Pos, &Epoch),
    now: Held,
    out: &mut Vec<Violation>,
) {
    let a = &log.attempts[k];
    if a.clean_start && e.session_present {
        let id = if a.v5 {
            "MQTT-3.2.2-2" // 5.0
        } else {
            "MQTT-3.2.2-1" // 3.1.1
        };
        out.push(violation(
            m,
            pos,
            format!("{c} connected with clean start and got session present = 1 [{id}]"),
        ));
    } else if !a.clean_start {
        let id = if a.v5 || e.session_present {
            "MQTT-3.2.2-3"
        } else {
            "MQTT-3.2.2-2" // 3.1.1
        };
        match now {
            Held::Yes { .. } if !e.session_present => out.push(violation(m, pos, format!(
                "{c} resumed without clean start and got session present = 0, but the broker must still hold its session ({}) [{id}]",
                why_held(m, log, k)
            ))),
            Held::No if e.session_present => out.push(violation(m, pos, format!(
                "{c} got session present = 1, but the broker can hold no session for it ({}) [{id}]",
                why_not_held(m, log, k)
            ))),
            _ => {}
        }
    }
}

/// What the broker holds for client `c` after its connection `e` (from attempt `a`) ends:
/// nothing, the session for good (still connected), or the session until it expires, with
/// `expiry` seconds counted from some moment in a window (`persists`: the session outlives the
/// connection).
fn held_after(
    m: &Model<'_>,
    c: &str,
    a: &Attempt<'_>,
    e: &Epoch,
    (persists, expiry): (bool, u32),
    slack: u64,
) -> Held {
    match e.end {
        None => Held::Yes { expiry: None },
        Some((_, End::BrokerCrash)) if m.persistence == Persistence::None => Held::No,
        Some((end, _)) if persists => {
            let first_fault = m
                .faults
                .iter()
                .filter(|f| {
                    f.fault.disturbs(e.process)
                        && f.start <= end
                        && f.end.is_none_or(|fe| fe >= e.start)
                })
                .map(|f| m.us(f.start.max(e.start)))
                .min()
                .unwrap_or(u64::MAX);
            let lo = m.us(end).min(first_fault).saturating_sub(slack);
            let calm = || !m.disturbed(c, end, m.pos_at_us(m.us(end).saturating_add(slack)));
            let mut hi = match e.end {
                // A DISCONNECT no fault could hold up reached the broker within
                // the slack.
                Some((_, End::Disconnect { .. })) if calm() => m.us(end) + slack,
                _ => m.us(end) + u64::from(a.keep_alive_s) * 1_500_000 + slack,
            };
            // A session online at a crash (durable), from its CONNECT on (the CONNACK may
            // have crossed the crash), is restored offline: its interval starts when the
            // broker is back.
            if let Some(&crash) = m
                .broker_crashes
                .iter()
                .rev()
                .find(|&&b| a.pos < b && b <= end)
            {
                hi = hi.max(m.broker_back_us(crash).saturating_add(slack));
            }
            Held::Yes {
                expiry: Some((lo, hi, expiry)),
            }
        }
        // Whether the broker ends a session that does not persist before or after it
        // attaches the new connection of a takeover is not settled by the specification.
        Some((_, End::TakenOver)) => Held::Unknown,
        Some(_) => Held::No,
    }
}

/// Deliveries in a new session of messages only an earlier session can have held (module
/// documentation).
fn stale_deliveries(m: &Model<'_>, out: &mut Vec<Violation>) {
    for d in m.dels.iter().filter(|d| !d.retain) {
        let Some(p) = m.unique_pub(d.label) else {
            continue;
        };
        let Some(acked) = p.acked.filter(|&a| a < d.pos) else {
            continue;
        };
        let Some(log) = m.clients.get(d.client) else {
            continue;
        };
        // The start of the session the delivery arrived in.
        let Some(current) = log.epochs.iter().rev().find(|e| e.start < d.pos) else {
            continue;
        };
        let Some(first) = log
            .epochs
            .iter()
            .find(|e| e.chain == current.chain && !e.session_present)
        else {
            continue;
        };
        let shared = log.subs.iter().any(|s| {
            super::topic::shared(s.filter).is_some()
                && super::topic::subscription_matches(s.filter, p.topic)
        });
        let asked = log
            .subs
            .iter()
            .filter(|s| s.pos > first.start && s.pos < d.pos)
            .filter(|s| matches!(s.kind, SubKind::Requested(_)))
            .filter(|s| super::topic::subscription_matches(s.filter, p.topic))
            .map(|s| s.pos)
            .min();
        if shared || asked.is_some_and(|a| a < acked) {
            continue;
        }
        out.push(violation(
            m,
            d.pos,
            format!(
                "{} got {} (from {} on {}, acknowledged at {} us) in a session that began with session present 0 at {} us and {}: only an earlier session can have held it [MQTT-3.2.2-3]",
                d.client,
                d.label,
                p.client,
                p.topic,
                m.us(acked),
                m.us(first.start),
                match asked {
                    Some(a) => format!("asked for a matching subscription only at {} us", m.us(a)),
                    None => "never asked for a matching subscription in it".into(),
                }
            ),
        ));
    }
}

fn violation(m: &Model<'_>, pos: usize, message: String) -> Violation {
    Violation {
        checker: NAME,
        at_us: m.us(pos),
        message,
    }
}

fn why_held(m: &Model<'_>, log: &super::model::ClientLog<'_>, k: usize) -> String {
    match log.attempts[..k]
        .iter()
        .rev()
        .find(|a| a.connected.is_some())
    {
        Some(prev) => format!(
            "it last connected at {} us without ending its session{}",
            m.us(prev.pos),
            if m.broker_crashes
                .iter()
                .any(|&c| c > prev.pos && c < log.attempts[k].pos)
            {
                ", and broker persistence is durable"
            } else {
                ""
            }
        ),
        None => "an earlier CONNECT created it".into(),
    }
}

fn why_not_held(m: &Model<'_>, log: &super::model::ClientLog<'_>, k: usize) -> String {
    let at = log.attempts[k].pos;
    let lossy = m.persistence == Persistence::None;
    if let Some(c) = m
        .broker_crashes
        .iter()
        .rev()
        .find(|&&c| c < at)
        .filter(|_| lossy)
    {
        return format!(
            "the broker crashed at {} us with persistence none",
            m.us(*c)
        );
    }
    if k == 0 {
        return "it never connected before".into();
    }
    "its previous session ended or expired".into()
}
