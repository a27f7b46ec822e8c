//! `run --coverage`: how often each behaviour worth testing happened over a run, counted from
//! the traces (what clients and the network observed, as the checkers see it), so that a blind
//! spot of a scenario library shows as a zero. [`BEHAVIOURS`] names them; [`count`] counts one
//! trace; [`Coverage`] adds seeds up and prints the table. Topic aliases are not in the trace,
//! so their reuse is not counted here (the integrity checker judges them).
//! Not here: judging (the checkers), running (`suite.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::check::model::{End, Model};
use crate::trace::payload::{LabelKind, parse_label};
use crate::trace::{AckPacket, Event, Fault, LossCause, Trace};

/// Every behaviour counted, `(name, what it is)`, in report order.
pub const BEHAVIOURS: &[(&str, &str)] = &[
    ("session_resumed", "a CONNACK with Session Present 1"),
    (
        "session_resumed_after_broker_crash",
        "a session resumed after a broker crash ended its connection",
    ),
    (
        "session_lost",
        "a client asking to resume (clean start 0) got a new session",
    ),
    (
        "takeover",
        "a connection closed because another process connected with its client identifier",
    ),
    (
        "takeover_in_flight",
        "a taken-over connection still had QoS 1/2 publishes unacknowledged",
    ),
    ("publish_resent", "a QoS 1/2 PUBLISH resent with DUP 1"),
    (
        "duplicate_received",
        "a subscriber received a PUBLISH with DUP 1",
    ),
    (
        "pubrel_after_reconnect",
        "a QoS 2 PUBREL sent on a later connection than its PUBREC arrived on",
    ),
    (
        "publish_lost",
        "a client gave up a publish (its session was gone)",
    ),
    ("will_published", "a will delivered to a subscriber"),
    (
        "will_delay_cancelled",
        "a connection with a delayed will ended and the session came back within the delay",
    ),
    (
        "retained_delivered",
        "a delivery with RETAIN 1 (a retained copy, or Retain As Published)",
    ),
    (
        "expiry_aged",
        "a delivery carrying less message expiry than its publisher sent",
    ),
    (
        "queue_may_overflow",
        "a client's messages outstanding exceeded the broker's queue limit",
    ),
    (
        "shared_subscription",
        "a shared subscription ($share/...) granted",
    ),
    (
        "subscription_ids",
        "a delivery carrying subscription identifiers",
    ),
    ("subscription_refused", "a SUBACK refusing a filter"),
    ("unsubscribed", "an UNSUBACK"),
    ("connack_refused", "a CONNACK refusing a connection"),
    (
        "keep_alive_timeout",
        "a client's keep-alive gave up on the broker",
    ),
    ("server_disconnect", "a DISCONNECT from the broker (5.0)"),
    (
        "protocol_error",
        "a client closed the connection for a protocol error of the broker",
    ),
    ("fault_cut", "a cut connection"),
    ("fault_black_hole", "a black-holed client"),
    ("fault_delay", "extra delay on a client's link"),
    ("fault_split_writes", "a client's writes split into pieces"),
    ("fault_partition", "a partition (one-way or both ways)"),
    ("fault_client_crash", "a client crash"),
    ("fault_client_power_off", "a client power-off"),
    ("fault_broker_crash", "a broker crash"),
    ("fault_pause", "a paused node"),
    ("fault_sync_error", "a failing disk sync"),
    ("fault_disk_full", "a full disk"),
    ("fault_slow_sync", "slow disk syncs"),
];

fn index(name: &str) -> usize {
    BEHAVIOURS
        .iter()
        .position(|(n, _)| *n == name)
        .expect("a behaviour of the list")
}

fn fault_name(f: &Fault) -> &'static str {
    match f {
        Fault::Cut { .. } => "fault_cut",
        Fault::BlackHole { .. } => "fault_black_hole",
        Fault::Delay { .. } => "fault_delay",
        Fault::SplitWrites { .. } => "fault_split_writes",
        Fault::Partition { .. } => "fault_partition",
        Fault::ClientCrash { .. } => "fault_client_crash",
        Fault::ClientPowerOff { .. } => "fault_client_power_off",
        Fault::BrokerCrash => "fault_broker_crash",
        Fault::Pause { .. } => "fault_pause",
        Fault::SyncError => "fault_sync_error",
        Fault::DiskFull => "fault_disk_full",
        Fault::SlowSync { .. } => "fault_slow_sync",
    }
}

/// How often each behaviour of [`BEHAVIOURS`] happened in `trace` (same order).
pub fn count(trace: &Trace) -> Vec<u64> {
    let mut n = vec![0u64; BEHAVIOURS.len()];
    let mut hit = |name: &str| n[index(name)] += 1;
    // Per client: connections so far, where the last one started, and the connection each
    // open PUBREC arrived on.
    let mut connections: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last_connected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pubrec_on: BTreeMap<(&str, u16), u64> = BTreeMap::new();
    let mut broker_crashes: Vec<usize> = Vec::new();
    let mut expiry_sent: BTreeMap<&str, u32> = BTreeMap::new();
    for (pos, e) in trace.events.iter().enumerate() {
        match &e.event {
            Event::FaultApplied { fault } => {
                if *fault == Fault::BrokerCrash {
                    broker_crashes.push(pos);
                }
                hit(fault_name(fault));
            }
            Event::Connected {
                client,
                clean_start,
                session_present,
                ..
            } => {
                let before = last_connected.insert(client, pos);
                if *session_present {
                    hit("session_resumed");
                    if before.is_some_and(|b| broker_crashes.iter().any(|&c| c > b)) {
                        hit("session_resumed_after_broker_crash");
                    }
                } else if !clean_start && before.is_some() {
                    hit("session_lost");
                }
                *connections.entry(client).or_default() += 1;
            }
            Event::ConnectFailed { code: Some(_), .. } => hit("connack_refused"),
            Event::ConnectionLost { cause, .. } => match cause {
                LossCause::KeepAliveTimeout => hit("keep_alive_timeout"),
                LossCause::ServerDisconnect => hit("server_disconnect"),
                LossCause::ProtocolError => hit("protocol_error"),
                LossCause::Closed => {}
            },
            Event::SubscribeGranted {
                filter, granted, ..
            } => match granted {
                None => hit("subscription_refused"),
                Some(_) if filter.starts_with("$share/") => hit("shared_subscription"),
                Some(_) => {}
            },
            Event::Unsubscribed { .. } => hit("unsubscribed"),
            Event::PublishRequested {
                payload,
                message_expiry_s: Some(s),
                ..
            } => {
                expiry_sent.insert(payload, *s);
            }
            Event::PublishSent { dup: true, .. } => hit("publish_resent"),
            Event::PublishReceived { dup: true, .. } => hit("duplicate_received"),
            Event::PublishLost { .. } => hit("publish_lost"),
            Event::AckReceived {
                client,
                packet: AckPacket::Pubrec,
                packet_id,
                ..
            } => {
                let on = connections.get(client.as_str()).copied().unwrap_or(0);
                pubrec_on.insert((client, *packet_id), on);
            }
            Event::AckSent {
                client,
                packet: AckPacket::Pubrel,
                packet_id,
                ..
            } => {
                let now = connections.get(client.as_str()).copied().unwrap_or(0);
                if pubrec_on
                    .get(&(client.as_str(), *packet_id))
                    .is_some_and(|&on| on != now)
                {
                    hit("pubrel_after_reconnect");
                }
            }
            Event::AckReceived {
                client,
                packet: AckPacket::Pubcomp,
                packet_id,
                ..
            } => {
                pubrec_on.remove(&(client.as_str(), *packet_id));
            }
            Event::Delivered {
                payload,
                retain,
                message_expiry_s,
                subscription_ids,
                ..
            } => {
                if matches!(parse_label(payload), Some(LabelKind::Will { .. })) {
                    hit("will_published");
                }
                if *retain {
                    hit("retained_delivered");
                }
                if !subscription_ids.is_empty() {
                    hit("subscription_ids");
                }
                if let (Some(got), Some(sent)) =
                    (message_expiry_s, expiry_sent.get(payload.as_str()))
                    && got < sent
                {
                    hit("expiry_aged");
                }
            }
            _ => {}
        }
    }
    from_model(trace, &mut n);
    n
}

/// The behaviours the model of a whole trace shows: takeovers, cancelled will delays, queues
/// past their limit.
fn from_model(trace: &Trace, n: &mut [u64]) {
    let m = Model::new(trace);
    for (&client, log) in &m.clients {
        for (i, epoch) in log.epochs.iter().enumerate() {
            let Some((end, how)) = epoch.end else {
                continue;
            };
            if how == End::TakenOver {
                n[index("takeover")] += 1;
                let open = m.pubs.iter().any(|p| {
                    p.client == client
                        && p.qos >= 1
                        && p.pos > epoch.start
                        && p.pos < end
                        && p.acked.is_none_or(|a| a > end)
                });
                if open {
                    n[index("takeover_in_flight")] += 1;
                }
            }
            let delay_us = log.attempts[epoch.attempt]
                .will
                .map_or(0, |w| u64::from(w.delay_s) * 1_000_000);
            let will_owed = !matches!(how, End::Disconnect { with_will: false });
            if delay_us > 0
                && will_owed
                && log.epochs.get(i + 1).is_some_and(|next| {
                    next.session_present && m.us(next.start) < m.us(end) + delay_us
                })
            {
                n[index("will_delay_cancelled")] += 1;
            }
        }
    }
    let overflowing: BTreeSet<&str> = m
        .clients
        .keys()
        .copied()
        .filter(|c| m.may_overflow(c, 0))
        .collect();
    n[index("queue_may_overflow")] += overflowing.len() as u64;
}

/// The behaviours of a run, added up over its seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Seeds counted.
    pub seeds: u64,
    /// Per behaviour (as [`BEHAVIOURS`]): how often it happened, and in how many seeds.
    pub times: Vec<u64>,
    pub seeds_with: Vec<u64>,
}

impl Coverage {
    /// Adds one seed's [`count`].
    pub fn add(&mut self, counts: &[u64]) {
        if self.times.is_empty() {
            self.times = vec![0; BEHAVIOURS.len()];
            self.seeds_with = vec![0; BEHAVIOURS.len()];
        }
        self.seeds += 1;
        for (i, &c) in counts.iter().enumerate().take(BEHAVIOURS.len()) {
            self.times[i] += c;
            self.seeds_with[i] += u64::from(c > 0);
        }
    }

    /// Adds another run's coverage (the shards of one run).
    pub fn merge(&mut self, other: &Coverage) {
        if other.times.is_empty() {
            return;
        }
        if self.times.is_empty() {
            *self = other.clone();
            return;
        }
        self.seeds += other.seeds;
        for i in 0..BEHAVIOURS.len() {
            self.times[i] += other.times[i];
            self.seeds_with[i] += other.seeds_with[i];
        }
    }

    /// The table: one row per behaviour with its count and seeds, zeros marked, then how
    /// many behaviours never happened.
    pub fn render(&self) -> String {
        let mut out = format!("coverage over {} seeds:\n", self.seeds);
        let width = BEHAVIOURS.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut zeros = 0;
        for (i, (name, what)) in BEHAVIOURS.iter().enumerate() {
            let times = self.times.get(i).copied().unwrap_or(0);
            let seeds = self.seeds_with.get(i).copied().unwrap_or(0);
            zeros += usize::from(times == 0);
            let _ = writeln!(
                out,
                "  {}{name:<width$}  {times:>8} times in {seeds:>6} seeds  {what}",
                if times == 0 { "ZERO " } else { "     " }
            );
        }
        let _ = writeln!(
            out,
            "{zeros} of {} behaviours never happened{}",
            BEHAVIOURS.len(),
            if zeros > 0 {
                ": no scenario of this run exercises them"
            } else {
                ""
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::story::Story;
    use crate::trace::Persistence;

    fn counted(trace: &Trace) -> BTreeMap<&'static str, u64> {
        BEHAVIOURS
            .iter()
            .map(|(n, _)| *n)
            .zip(count(trace))
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    #[test]
    fn a_calm_run_counts_only_what_happened() {
        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "t/#", 1)
            .connect("pub", true, false);
        let l = st.publish("pub", "t/1", 1);
        st.ack("pub", &l).deliver("mon", &l);
        assert_eq!(counted(&st.end()), BTreeMap::new());
    }

    #[test]
    fn resumed_sessions_crashes_wills_and_retained_copies_are_counted() {
        let mut st = Story::new("3.1.1", Persistence::Durable);
        st.connect("mon", false, false)
            .subscribe("mon", "#", 1)
            .will("pub", "w/pub", 1, false)
            .connect("pub", true, false)
            .crash("pub")
            .after_ms(5)
            .deliver_will("mon", "pub")
            .broker_crash()
            .after_ms(100)
            .broker_restart()
            .connect("mon", false, true);
        let l = st.publish_retained("mon", "r/1", 1);
        st.ack("mon", &l).deliver_retained("mon", &l, 1);
        let c = counted(&st.end());
        assert_eq!(c.get("will_published"), Some(&1), "{c:?}");
        assert_eq!(c.get("fault_client_crash"), Some(&1), "{c:?}");
        assert_eq!(c.get("fault_broker_crash"), Some(&1), "{c:?}");
        assert_eq!(c.get("session_resumed"), Some(&1), "{c:?}");
        assert_eq!(
            c.get("session_resumed_after_broker_crash"),
            Some(&1),
            "{c:?}"
        );
        assert_eq!(c.get("retained_delivered"), Some(&1), "{c:?}");
        assert_eq!(c.get("takeover"), None, "{c:?}");
    }

    #[test]
    fn the_table_marks_what_never_happened() {
        let mut cov = Coverage::default();
        let mut one = vec![0; BEHAVIOURS.len()];
        one[index("publish_resent")] = 3;
        cov.add(&one);
        cov.add(&vec![0; BEHAVIOURS.len()]);
        let mut other = Coverage::default();
        other.add(&one);
        cov.merge(&other);
        let text = cov.render();
        assert!(text.starts_with("coverage over 3 seeds:\n"), "{text}");
        let row = text.lines().find(|l| l.contains("publish_resent")).unwrap();
        assert!(row.contains("       6 times in      2 seeds"), "{row}");
        assert!(!row.contains("ZERO"), "{row}");
        assert!(
            text.lines()
                .find(|l| l.contains(" takeover "))
                .unwrap()
                .contains("ZERO takeover"),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "{} of {} behaviours never happened: no scenario of this run exercises them\n",
                BEHAVIOURS.len() - 1,
                BEHAVIOURS.len()
            )),
            "{text}"
        );
    }
}
