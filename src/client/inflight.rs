//! Outbound requests that hold a packet identifier, until the broker completes them: QoS 1
//! PUBLISH awaiting PUBACK, QoS 2 PUBLISH awaiting PUBREC, PUBREL awaiting PUBCOMP, SUBSCRIBE
//! awaiting SUBACK, UNSUBSCRIBE awaiting UNSUBACK.
//!
//! Entries are kept in the order they must be re-sent after a resumed session: a PUBLISH by
//! when it was first sent ([MQTT-4.6.0-1]), a PUBREL by when its PUBREC arrived
//! ([MQTT-4.6.0-3]). The identifier pool and the decisions about acknowledgements live in
//! `mod.rs`; this is bookkeeping only.

use std::collections::BTreeMap;

use crate::codec::{Publish, Subscribe, Unsubscribe};

use super::events::RequestId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 awaiting PUBACK or QoS 2 awaiting PUBREC; the packet as first sent (DUP 0).
    Publish(Publish),
    /// QoS 2 after PUBREC: PUBREL sent, awaiting PUBCOMP. The message itself is dropped.
    PubRel,
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
}

impl Stage {
    /// Whether the entry counts against the broker's receive maximum.
    pub fn is_publish(&self) -> bool {
        matches!(self, Stage::Publish(_) | Stage::PubRel)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: RequestId,
    pub stage: Stage,
    /// Written on the current connection (false after a reconnect until re-sent).
    pub sent: bool,
}

#[derive(Debug, Default)]
pub struct Inflight {
    /// pkid → (order key, entry)
    entries: BTreeMap<u16, (u64, Entry)>,
    /// order key → pkid
    order: BTreeMap<u64, u16>,
    next_key: u64,
    publishes: usize,
}

impl Inflight {
    pub fn insert(&mut self, pkid: u16, entry: Entry) {
        let key = self.next_key;
        self.next_key += 1;
        if entry.stage.is_publish() {
            self.publishes += 1;
        }
        self.order.insert(key, pkid);
        let old = self.entries.insert(pkid, (key, entry));
        assert!(old.is_none(), "packet identifier {pkid} inserted twice");
    }

    pub fn get(&self, pkid: u16) -> Option<&Entry> {
        self.entries.get(&pkid).map(|(_, e)| e)
    }

    pub fn remove(&mut self, pkid: u16) -> Option<Entry> {
        let (key, entry) = self.entries.remove(&pkid)?;
        self.order.remove(&key);
        if entry.stage.is_publish() {
            self.publishes -= 1;
        }
        Some(entry)
    }

    /// A QoS 2 publish got its PUBREC: it becomes a PUBREL, ordered after everything so far.
    pub fn mark_pubrel(&mut self, pkid: u16) {
        let (key, entry) = self
            .entries
            .get_mut(&pkid)
            .expect("mark_pubrel of a known pkid");
        assert!(
            matches!(entry.stage, Stage::Publish(_)),
            "mark_pubrel of a non-publish"
        );
        entry.stage = Stage::PubRel;
        entry.sent = true;
        self.order.remove(key);
        *key = self.next_key;
        self.order.insert(self.next_key, pkid);
        self.next_key += 1;
    }

    pub fn mark_sent(&mut self, pkid: u16) {
        self.entries
            .get_mut(&pkid)
            .expect("mark_sent of a known pkid")
            .1
            .sent = true;
    }

    pub fn mark_all_unsent(&mut self) {
        for (_, e) in self.entries.values_mut() {
            e.sent = false;
        }
    }

    /// Packet identifiers in re-send order.
    pub fn pkids_in_order(&self) -> Vec<u16> {
        self.order.values().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// QoS 1/2 publishes not yet completed (the receive-maximum count).
    pub fn publishes(&self) -> usize {
        self.publishes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Properties, QoS};

    fn publish(pkid: u16) -> Stage {
        Stage::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t".into(),
            pkid,
            properties: Properties::default(),
            payload: bytes::Bytes::new(),
        })
    }

    /// [MQTT-4.6.0-3] PUBRELs re-send in the order their PUBRECs arrived.
    #[test]
    fn mqtt_4_6_0_3_pubrel_order_follows_pubrec_order() {
        let mut f = Inflight::default();
        for pkid in [1, 2, 3] {
            f.insert(
                pkid,
                Entry {
                    id: RequestId(pkid.into()),
                    stage: publish(pkid),
                    sent: true,
                },
            );
        }
        f.mark_pubrel(3);
        f.mark_pubrel(1);
        assert_eq!(f.pkids_in_order(), vec![2, 3, 1]);
        assert_eq!(f.publishes(), 3);
        assert!(f.remove(3).is_some());
        assert_eq!(f.pkids_in_order(), vec![2, 1]);
        assert_eq!(f.publishes(), 2);
    }
}
