//! The retained-message store: at most one message per topic, replaced by a newer one and
//! cleared by an empty payload ([MQTT-3.3.1-5], [MQTT-3.3.1-10], [MQTT-3.3.1-11]); bounded by
//! `max_retained`. A retained message whose message expiry interval has passed is removed
//! ([MQTT-3.3.2-5]): it is not sent to new subscribers and frees its place.
//!
//! Not here: sending retained messages to a new subscriber (`subscribe.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::journal::Change;
use super::session::Message;

/// What `store` did with a retained message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Stored, replacing any earlier one for the topic.
    Kept,
    /// An empty payload: the topic's retained message (if any) was removed.
    Cleared,
    /// The store was full and the topic had no retained message: not retained.
    Full,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Retained {
    by_topic: BTreeMap<String, Arc<Message>>,
    /// `Some` while the journal records: topics whose message changed since it last looked.
    touched: Option<BTreeSet<String>>,
}

impl Retained {
    pub fn from_map(by_topic: BTreeMap<String, Arc<Message>>) -> Retained {
        Retained {
            by_topic,
            touched: None,
        }
    }

    pub fn store(&mut self, message: Arc<Message>, max: usize, now: Duration) -> Stored {
        if message.payload.is_empty() {
            if self.by_topic.remove(&message.topic).is_some() {
                self.touch(&message.topic);
            }
            return Stored::Cleared;
        }
        if !self.by_topic.contains_key(&message.topic) && self.by_topic.len() >= max {
            self.purge(now);
        }
        if !self.by_topic.contains_key(&message.topic) && self.by_topic.len() >= max {
            return Stored::Full;
        }
        self.touch(&message.topic);
        self.by_topic.insert(message.topic.clone(), message);
        Stored::Kept
    }

    /// Removes the messages expired at `now`.
    fn purge(&mut self, now: Duration) {
        let touched = &mut self.touched;
        self.by_topic.retain(|topic, m| {
            let keep = !m.expired(now);
            if !keep && let Some(t) = touched {
                t.insert(topic.clone());
            }
            keep
        });
    }

    fn touch(&mut self, topic: &str) {
        if let Some(t) = &mut self.touched {
            t.insert(topic.to_owned());
        }
    }

    /// Starts recording changed topics.
    pub fn record(&mut self) {
        self.touched.get_or_insert_default();
    }

    /// The changes since the last call, while recording.
    pub fn take(&mut self, ops: &mut Vec<Change>) {
        let Some(touched) = &mut self.touched else {
            return;
        };
        for topic in std::mem::take(touched) {
            ops.push(match self.by_topic.get(&topic) {
                Some(message) => Change::RetainedPut {
                    topic,
                    message: message.clone(),
                },
                None => Change::RetainedDelete { topic },
            });
        }
    }

    /// Retained messages whose topic matches `filter` and which have not expired at logical
    /// time `now`, in topic order.
    pub fn matching(&mut self, filter: &str, now: Duration) -> Vec<Arc<Message>> {
        self.purge(now);
        self.by_topic
            .iter()
            .filter(|(topic, _)| crate::codec::topic::matches(filter, topic))
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn map(&self) -> &BTreeMap<String, Arc<Message>> {
        &self.by_topic
    }
}
