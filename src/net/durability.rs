//! Output commit: no byte the broker produced leaves before every change of the durable state it
//! may depend on is on disk, and one sync covers many events (group commit).
//!
//! [`Durability`] is the bookkeeping, without IO: the shell hands it, after each event, the
//! core's changes ([`Changes`]) and the output the event produced for each connection; it says
//! which output may go out now, holds the rest, hands out the next batch for the store to
//! commit, and releases held output once the store reports a batch committed.
//!
//! Batches are numbered (epochs). Changes accumulate in the next batch while the previous one is
//! being committed; the accumulated batch is handed out as soon as the store is free, so at most
//! one commit is in flight and the batch grows with the load. Output produced while the next
//! batch has changes waits for that batch; output produced when it has none waits only for the
//! last batch handed out (an event that changed nothing depends at most on what came before).
//! Output the core says reveals only the changes of earlier events (`Changes::output_needs`:
//! queued messages, whose packet identifiers were reserved when they were queued, moved into
//! flight by an acknowledgement) waits only for the batch holding those events' changes, often
//! one already durable. Each connection's output leaves in the order it was produced; output
//! for different connections may overtake one another when it needs an earlier batch.
//!
//! Every output is held, not only acknowledgements: a QoS 2 message forwarded before its
//! publisher's packet identifier is durable would be routed again after a crash, when the
//! publisher resends it. [`Mode::Interval`] holds nothing (the weaker mode: changes are
//! committed without a sync and made durable every interval, so a crash may lose what was
//! acknowledged since the last sync).
//!
//! Not here: the store and its worker (`store`), encoding and writing (`server.rs`).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::broker::{Changes, ConnId};

/// Changes a batch may carry before the shell stops taking events while a commit is in flight.
pub const MAX_BATCH_CHANGES: usize = 64 * 1024;
/// Output bytes that may be held before the shell stops taking events.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// When acknowledged changes become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Before any output that may depend on them leaves.
    Synced,
    /// Output is not held; the store syncs at an interval.
    Interval,
}

/// What the shell writes on a connection: bytes, or the close that comes after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Bytes(Bytes),
    Close,
}

/// A batch for the store to commit.
#[derive(Debug)]
pub struct Batch {
    pub epoch: u64,
    pub changes: Changes,
}

/// Output commit and group commit bookkeeping (see the module documentation).
#[derive(Debug)]
pub struct Durability {
    mode: Mode,
    /// The changes accumulating for batch `next`.
    pending: Changes,
    /// The epoch of the batch accumulating.
    next: u64,
    /// The last batch handed out (0: none).
    handed: u64,
    /// The batch being committed, with the last broker event whose changes it holds.
    in_flight: Option<(u64, u64)>,
    /// Every batch up to this one is durable...
    durable: u64,
    /// ...and with them the changes of every broker event up to this one.
    durable_event: u64,
    /// The last broker event whose changes the state being rewritten holds.
    rewrite_event: u64,
    /// Output waiting for the batch it needs, by (that batch, the order it was produced in).
    held: BTreeMap<(u64, u64), (ConnId, Out)>,
    /// Output produced so far (the order of held output).
    produced: u64,
    /// Connections with held output: the batch the last of it needs (a connection's later
    /// output needs at least as much, so its bytes keep their order) and how much is held.
    held_by: BTreeMap<ConnId, (u64, usize)>,
    held_bytes: usize,
    /// The store failed: nothing is held (the broker produces only refusals and closes) and
    /// no batch is handed out until [`Durability::restored`].
    failed: bool,
    /// Open connections some output of which has left (so their CONNACK has).
    answered: BTreeSet<ConnId>,
}

impl Durability {
    pub fn new(mode: Mode) -> Durability {
        Durability {
            mode,
            pending: Changes::default(),
            next: 1,
            handed: 0,
            in_flight: None,
            durable: 0,
            durable_event: 0,
            rewrite_event: 0,
            held: BTreeMap::new(),
            produced: 0,
            held_by: BTreeMap::new(),
            held_bytes: 0,
            failed: false,
            answered: BTreeSet::new(),
        }
    }

    /// After an event: its changes, and the output it produced, in order. Returns the output
    /// that may leave now, in order; the rest is held.
    pub fn after_event(
        &mut self,
        changes: Changes,
        output: impl IntoIterator<Item = (ConnId, Out)>,
    ) -> Vec<(ConnId, Out)> {
        if !changes.is_empty() {
            self.pending.ops.extend(changes.ops);
        }
        self.pending.clock = changes.clock;
        self.pending.event = changes.event;
        let need = match changes.output_needs {
            Some(event) => self.batch_of(event),
            None if self.pending.is_empty() => self.handed,
            None => self.next,
        };
        let mut ready = Vec::new();
        for (conn, out) in output {
            if self.failed || self.mode == Mode::Interval {
                self.answered.insert(conn);
                ready.push((conn, out));
                continue;
            }
            let need = need.max(self.held_by.get(&conn).map_or(0, |&(last, _)| last));
            if need <= self.durable {
                self.answered.insert(conn);
                ready.push((conn, out));
            } else {
                self.held_bytes += out_len(&out);
                self.produced += 1;
                self.held.insert((need, self.produced), (conn, out));
                let by = self.held_by.entry(conn).or_insert((need, 0));
                *by = (need, by.1 + 1);
            }
        }
        ready
    }

    /// The batch that makes the changes of broker event `event` (and of those before it)
    /// durable.
    fn batch_of(&self, event: u64) -> u64 {
        match self.in_flight {
            _ if event <= self.durable_event => self.durable,
            Some((epoch, last)) if event <= last => epoch,
            // The event is not in a batch handed out: its changes, if any, are pending.
            _ if self.pending.is_empty() => self.handed,
            _ => self.next,
        }
    }

    /// The batch to commit now, if the store is free and changes are waiting.
    pub fn take_batch(&mut self) -> Option<Batch> {
        if self.failed || self.in_flight.is_some() || self.pending.is_empty() {
            return None;
        }
        let epoch = self.next;
        self.next += 1;
        self.handed = epoch;
        self.in_flight = Some((epoch, self.pending.event));
        let rest = Changes {
            ops: Vec::new(),
            clock: self.pending.clock,
            event: self.pending.event,
            output_needs: None,
        };
        let changes = std::mem::replace(&mut self.pending, rest);
        Some(Batch { epoch, changes })
    }

    /// Everything not yet handed out, for a last commit (shutdown).
    pub fn take_rest(&mut self) -> Changes {
        std::mem::take(&mut self.pending)
    }

    /// The store committed batch `epoch` (durably, in [`Mode::Synced`]). Returns the output it
    /// releases, in order. Panics if `epoch` is not the batch in flight: the store commits
    /// what it is given, in order.
    pub fn committed(&mut self, epoch: u64) -> Vec<(ConnId, Out)> {
        let in_flight = self.in_flight.take();
        let Some((_, last)) = in_flight.filter(|&(e, _)| e == epoch) else {
            panic!("the store reported a batch that was not in flight: {epoch}, {in_flight:?}");
        };
        self.durable = epoch;
        self.durable_event = last;
        let mut ready = Vec::new();
        while let Some(entry) = self.held.first_entry()
            && entry.key().0 <= self.durable
        {
            let (conn, out) = entry.remove();
            self.held_bytes -= out_len(&out);
            if let Some(by) = self.held_by.get_mut(&conn) {
                by.1 -= 1;
                if by.1 == 0 {
                    self.held_by.remove(&conn);
                }
            }
            self.answered.insert(conn);
            ready.push((conn, out));
        }
        ready
    }

    /// The connection ended: its held output is dropped.
    pub fn closed(&mut self, conn: ConnId) {
        self.answered.remove(&conn);
        if self.held_by.remove(&conn).is_none() {
            return;
        }
        let mut dropped = 0;
        self.held.retain(|_, (c, out)| {
            let keep = *c != conn;
            if !keep {
                dropped += out_len(out);
            }
            keep
        });
        self.held_bytes -= dropped;
    }

    /// The store failed: every held output is dropped (it may reveal changes that will never
    /// be durable) and nothing is held or handed out until [`Durability::restored`]. Changes
    /// keep accumulating. Returns the connections whose first output was dropped: their
    /// clients have not seen a CONNACK, so nothing else may be sent to them ([MQTT-3.2.0-1]);
    /// the shell closes them.
    pub fn fail(&mut self) -> Vec<ConnId> {
        self.failed = true;
        self.in_flight = None;
        let unanswered: BTreeSet<ConnId> = self
            .held_by
            .keys()
            .copied()
            .filter(|conn| !self.answered.contains(conn))
            .collect();
        self.held.clear();
        self.held_by.clear();
        self.held_bytes = 0;
        unanswered.into_iter().collect()
    }

    /// The whole state is about to be written afresh: the changes accumulated so far are in it.
    pub fn rewriting(&mut self) {
        self.pending.ops.clear();
        self.rewrite_event = self.pending.event;
    }

    /// The store holds the state again (rewritten): what accumulated since goes in the next
    /// batch, and output is held again.
    pub fn restored(&mut self) {
        self.failed = false;
        self.durable = self.handed;
        self.durable_event = self.rewrite_event;
    }

    /// The broker's logical time at the last event.
    pub fn clock(&self) -> std::time::Duration {
        self.pending.clock
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the shell should stop taking events until the commit in flight ends: the next
    /// batch is full.
    pub fn full(&self) -> bool {
        self.in_flight.is_some()
            && (self.pending.ops.len() >= MAX_BATCH_CHANGES || self.held_bytes >= MAX_HELD_BYTES)
    }

    /// Bytes held for `conn`.
    #[cfg(test)]
    pub fn held_bytes(&self, conn: ConnId) -> usize {
        self.held
            .values()
            .filter(|(c, _)| *c == conn)
            .map(|(_, out)| out_len(out))
            .sum()
    }

    /// Whether nothing is held and nothing waits to be committed.
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        self.held.is_empty() && self.pending.is_empty() && self.in_flight.is_none()
    }
}

fn out_len(out: &Out) -> usize {
    match out {
        Out::Bytes(b) => b.len(),
        Out::Close => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::broker::Change;

    fn changes(n: u64) -> Changes {
        Changes {
            ops: (0..n).map(Change::NextAssigned).collect(),
            clock: Duration::ZERO,
            event: 0,
            output_needs: None,
        }
    }

    fn bytes(s: &'static str) -> Out {
        Out::Bytes(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn output_of_a_change_waits_for_its_batch() {
        let mut d = Durability::new(Mode::Synced);
        let ready = d.after_event(changes(1), [(1, bytes("puback"))]);
        assert!(ready.is_empty(), "held until the batch is durable");
        let batch = d.take_batch().expect("a batch waits");
        assert_eq!(batch.changes.ops.len(), 1);
        assert!(d.take_batch().is_none(), "one batch in flight at a time");
        assert_eq!(d.committed(batch.epoch), vec![(1, bytes("puback"))]);
        assert!(d.idle());
    }

    #[test]
    fn output_without_changes_leaves_at_once_when_nothing_is_pending() {
        let mut d = Durability::new(Mode::Synced);
        assert_eq!(
            d.after_event(changes(0), [(1, bytes("suback"))]),
            vec![(1, bytes("suback"))]
        );
    }

    #[test]
    fn output_without_changes_waits_for_the_batch_before_it() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(1), [(1, bytes("a"))]);
        let first = d.take_batch().unwrap();
        // A QoS 0 forward produced while the first batch commits may carry what it holds.
        assert!(d.after_event(changes(0), [(2, bytes("b"))]).is_empty());
        assert_eq!(
            d.committed(first.epoch),
            vec![(1, bytes("a")), (2, bytes("b"))]
        );
    }

    #[test]
    fn changes_accumulate_into_one_batch_while_one_commits() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(1), [(1, bytes("a1"))]);
        let first = d.take_batch().unwrap();
        d.after_event(changes(2), [(1, bytes("a2"))]);
        d.after_event(changes(3), [(2, bytes("b1"))]);
        assert!(d.take_batch().is_none());
        assert_eq!(d.committed(first.epoch), vec![(1, bytes("a1"))]);
        let second = d.take_batch().expect("the accumulated batch");
        assert_eq!(second.changes.ops.len(), 5, "one commit for both events");
        assert_eq!(
            d.committed(second.epoch),
            vec![(1, bytes("a2")), (2, bytes("b1"))]
        );
    }

    #[test]
    fn a_connection_keeps_its_order_behind_held_output() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(1), [(1, bytes("puback"))]);
        let batch = d.take_batch().unwrap();
        assert!(d.committed(batch.epoch).len() == 1);
        d.after_event(changes(1), [(1, bytes("pubrec"))]);
        // Nothing new to commit for this event, but the PUBREC before it is still held.
        assert!(d.after_event(changes(0), [(1, bytes("suback"))]).is_empty());
        let batch = d.take_batch().unwrap();
        assert_eq!(
            d.committed(batch.epoch),
            vec![(1, bytes("pubrec")), (1, bytes("suback"))]
        );
    }

    #[test]
    fn a_closed_connection_drops_its_held_output() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(
            changes(1),
            [(1, bytes("a")), (2, bytes("b")), (1, Out::Close)],
        );
        d.closed(1);
        assert_eq!(d.held_bytes(1), 0);
        assert_eq!(d.held_bytes(2), 1);
        let batch = d.take_batch().unwrap();
        assert_eq!(d.committed(batch.epoch), vec![(2, bytes("b"))]);
    }

    #[test]
    fn interval_mode_holds_nothing_but_still_hands_out_batches() {
        let mut d = Durability::new(Mode::Interval);
        assert_eq!(
            d.after_event(changes(2), [(1, bytes("puback"))]),
            vec![(1, bytes("puback"))]
        );
        let batch = d.take_batch().expect("changes are still written");
        assert!(d.committed(batch.epoch).is_empty());
    }

    #[test]
    fn a_full_batch_stops_the_shell_only_while_one_commits() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(MAX_BATCH_CHANGES as u64), []);
        assert!(!d.full(), "nothing in flight: it is handed out at once");
        let first = d.take_batch().unwrap();
        d.after_event(changes(MAX_BATCH_CHANGES as u64), []);
        assert!(d.full());
        d.committed(first.epoch);
        assert!(!d.full());
    }

    #[test]
    fn a_failed_store_drops_held_output_and_holds_nothing_until_restored() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(1), [(1, bytes("puback"))]);
        let _lost = d.take_batch().unwrap();
        d.after_event(changes(1), [(2, bytes("suback"))]);
        d.fail();
        assert_eq!(d.held_bytes(1) + d.held_bytes(2), 0, "never sent");
        assert_eq!(
            d.after_event(changes(1), [(3, bytes("connack 0x80"))]),
            vec![(3, bytes("connack 0x80"))],
            "refusals leave at once"
        );
        assert!(
            d.take_batch().is_none(),
            "nothing is committed on a failed store"
        );
        d.rewriting();
        d.after_event(changes(2), []);
        d.restored();
        let batch = d.take_batch().expect("what came after the rewrite");
        assert_eq!(batch.changes.ops.len(), 2);
        assert!(d.after_event(changes(0), [(3, bytes("x"))]).is_empty());
        assert_eq!(d.committed(batch.epoch), vec![(3, bytes("x"))]);
    }

    /// [MQTT-3.2.0-1] A client whose CONNACK was held when the store failed has seen nothing:
    /// it is named, so the shell closes it instead of sending a DISCONNECT first.
    #[test]
    fn mqtt_3_2_0_1_a_failed_store_names_the_connections_that_saw_no_connack() {
        let mut d = Durability::new(Mode::Synced);
        // 1 got its CONNACK out and has more held; 2's CONNACK is held; 3 had nothing.
        d.after_event(changes(0), [(1, bytes("connack"))]);
        d.after_event(changes(1), [(1, bytes("puback")), (2, bytes("connack"))]);
        let _lost = d.take_batch().unwrap();
        d.after_event(changes(1), [(4, bytes("connack"))]);
        d.closed(4);
        assert_eq!(d.fail(), vec![2]);

        let mut d = Durability::new(Mode::Synced);
        d.after_event(changes(1), [(5, bytes("connack"))]);
        let batch = d.take_batch().unwrap();
        d.committed(batch.epoch);
        d.after_event(changes(1), [(5, bytes("puback"))]);
        assert_eq!(d.fail(), Vec::<ConnId>::new(), "5 saw its CONNACK");
    }

    /// Changes of broker event `event` whose output reveals only events up to `needs`.
    fn narrow(event: u64, n: u64, needs: u64) -> Changes {
        Changes {
            event,
            output_needs: Some(needs),
            ..changes(n)
        }
    }

    fn wide(event: u64, n: u64) -> Changes {
        Changes {
            event,
            ..changes(n)
        }
    }

    #[test]
    fn output_revealing_only_durable_events_leaves_while_later_changes_wait() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(wide(1, 1), [(1, bytes("puback 1"))]);
        let first = d.take_batch().unwrap();
        d.committed(first.epoch);
        // Event 2 changes something; its PUBACK waits for the batch holding it.
        assert!(
            d.after_event(wide(2, 1), [(1, bytes("puback 2"))])
                .is_empty()
        );
        // Event 3 (an acknowledgement) moves a message queued at event 1 into flight: it
        // reveals nothing pending and leaves now, though event 3 changed rows too.
        assert_eq!(
            d.after_event(narrow(3, 2, 1), [(2, bytes("publish"))]),
            vec![(2, bytes("publish"))]
        );
        // The same for a connection with held output waits behind it, in order.
        assert!(
            d.after_event(narrow(4, 1, 1), [(1, bytes("publish"))])
                .is_empty()
        );
        let second = d.take_batch().unwrap();
        assert_eq!(second.changes.ops.len(), 4, "every change is still written");
        assert_eq!(
            d.committed(second.epoch),
            vec![(1, bytes("puback 2")), (1, bytes("publish"))]
        );
        assert!(d.idle());
    }

    #[test]
    fn output_revealing_an_event_of_the_batch_in_flight_waits_for_that_batch_only() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(wide(1, 1), [(1, bytes("puback 1"))]);
        let first = d.take_batch().unwrap();
        d.after_event(wide(2, 1), [(1, bytes("puback 2"))]);
        assert!(
            d.after_event(narrow(3, 1, 1), [(2, bytes("publish"))])
                .is_empty()
        );
        assert_eq!(
            d.committed(first.epoch),
            vec![(1, bytes("puback 1")), (2, bytes("publish"))]
        );
        // An event after the batch handed out, with nothing pending, reveals nothing new.
        let second = d.take_batch().unwrap();
        assert!(
            d.after_event(narrow(4, 0, 3), [(2, bytes("publish 2"))])
                .is_empty(),
            "event 3's changes are in the batch in flight"
        );
        assert_eq!(
            d.committed(second.epoch),
            vec![(1, bytes("puback 2")), (2, bytes("publish 2"))]
        );
    }

    #[test]
    fn after_a_rewrite_the_events_it_holds_are_durable() {
        let mut d = Durability::new(Mode::Synced);
        d.after_event(wide(1, 1), []);
        let _lost = d.take_batch().unwrap();
        d.fail();
        d.after_event(wide(2, 1), []);
        d.rewriting();
        d.after_event(wide(3, 1), []);
        d.restored();
        assert_eq!(
            d.after_event(narrow(4, 0, 2), [(1, bytes("publish"))]),
            vec![(1, bytes("publish"))],
            "event 2 is in the rewritten state"
        );
        assert!(
            d.after_event(narrow(5, 0, 3), [(1, bytes("publish 2"))])
                .is_empty(),
            "event 3 came after it"
        );
    }

    #[test]
    #[should_panic(expected = "not in flight")]
    fn a_commit_report_out_of_order_is_a_bug() {
        let mut d = Durability::new(Mode::Synced);
        d.committed(1);
    }
}
