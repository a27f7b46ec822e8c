//! Requests accepted from the application but not yet written: made while disconnected, or
//! waiting for an inflight slot (max_inflight, the broker's receive maximum) or a packet
//! identifier. One FIFO, so requests leave in the order they were made; bounded by
//! `max_buffered` with the [`BufferPolicy`] deciding who is dropped on overflow.
//!
//! Subscribes and unsubscribes are never dropped: when the outbox is full of them they are
//! refused instead. No packet identifiers here: one is taken when a request leaves.

use std::collections::VecDeque;

use crate::codec::{Properties, Publish, Subscription};

use super::config::BufferPolicy;
use super::events::RequestId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `pkid` is 0 until sent.
    Publish(Publish),
    Subscribe(Vec<Subscription>, Properties),
    Unsubscribe(Vec<String>, Properties),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: RequestId,
    pub request: Request,
}

/// What `push` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued; this older publish was dropped to make room.
    Evicted(RequestId),
    /// Not queued: the new publish is lost (DropNewest).
    Dropped,
    /// Not queued: the caller gets an error (Reject, or a full outbox for a subscription).
    Refused,
}

#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Pending>,
    max: usize,
    policy: BufferPolicy,
}

impl Outbox {
    pub fn new(max: usize, policy: BufferPolicy) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            max,
            policy,
        }
    }

    pub fn push(&mut self, pending: Pending) -> Pushed {
        if self.queue.len() < self.max {
            self.queue.push_back(pending);
            return Pushed::Queued;
        }
        if !matches!(pending.request, Request::Publish(_)) {
            return Pushed::Refused;
        }
        match self.policy {
            BufferPolicy::Reject => Pushed::Refused,
            BufferPolicy::DropNewest => Pushed::Dropped,
            BufferPolicy::DropOldest => {
                let oldest = self
                    .queue
                    .iter()
                    .position(|p| matches!(p.request, Request::Publish(_)));
                match oldest {
                    Some(i) => {
                        let evicted = self.queue.remove(i).expect("index from position").id;
                        self.queue.push_back(pending);
                        Pushed::Evicted(evicted)
                    }
                    None => Pushed::Dropped,
                }
            }
        }
    }

    pub fn front(&self) -> Option<&Pending> {
        self.queue.front()
    }

    pub fn pop_front(&mut self) -> Option<Pending> {
        self.queue.pop_front()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Removes, in order, the publishes `verdict` gives a reason for, with that reason.
    pub fn drain_publishes_where<R>(
        &mut self,
        mut verdict: impl FnMut(&Publish) -> Option<R>,
    ) -> Vec<(RequestId, R)> {
        let mut removed = Vec::new();
        self.queue.retain(|p| match &p.request {
            Request::Publish(publish) => match verdict(publish) {
                Some(r) => {
                    removed.push((p.id, r));
                    false
                }
                None => true,
            },
            _ => true,
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(id: u64) -> Pending {
        Pending {
            id: RequestId(id),
            request: Request::Publish(Publish {
                dup: false,
                qos: crate::codec::QoS::AtLeastOnce,
                retain: false,
                topic: "t".into(),
                pkid: 0,
                properties: Properties::default(),
                payload: bytes::Bytes::new(),
            }),
        }
    }

    fn subscribe(id: u64) -> Pending {
        Pending {
            id: RequestId(id),
            request: Request::Subscribe(vec![], Properties::default()),
        }
    }

    #[test]
    fn drop_oldest_evicts_the_oldest_publish_not_a_subscribe() {
        let mut o = Outbox::new(2, BufferPolicy::DropOldest);
        assert_eq!(o.push(subscribe(1)), Pushed::Queued);
        assert_eq!(o.push(publish(2)), Pushed::Queued);
        assert_eq!(o.push(publish(3)), Pushed::Evicted(RequestId(2)));
        assert_eq!(o.push(subscribe(4)), Pushed::Refused);
        assert_eq!(o.len(), 2);
        assert_eq!(o.pop_front().unwrap().id, RequestId(1));
        assert_eq!(o.pop_front().unwrap().id, RequestId(3));
    }

    #[test]
    fn drop_newest_and_reject_keep_the_queue() {
        let mut o = Outbox::new(1, BufferPolicy::DropNewest);
        assert_eq!(o.push(publish(1)), Pushed::Queued);
        assert_eq!(o.push(publish(2)), Pushed::Dropped);
        assert_eq!(o.front().unwrap().id, RequestId(1));
        let mut o = Outbox::new(1, BufferPolicy::Reject);
        assert_eq!(o.push(publish(1)), Pushed::Queued);
        assert_eq!(o.push(publish(2)), Pushed::Refused);
        assert_eq!(o.front().unwrap().id, RequestId(1));
    }
}
