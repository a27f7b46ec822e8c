//! Inbound QoS 1/2 state: the packet identifiers of QoS 2 PUBLISHes delivered to the
//! application and acknowledged with PUBREC, kept until the broker's PUBREL ([MQTT-4.3.3-8],
//! [MQTT-4.3.3-9]), and the receive window of the current connection.
//!
//! A PUBLISH that arrives again with a kept identifier is a resend of a message already
//! delivered: it is answered with PUBREC and not delivered again. The identifiers kept belong to
//! the session and outlive connections; at most 65,535 (the identifier space).
//!
//! The receive window counts, per connection, the QoS 1/2 PUBLISHes received on it that we have
//! not yet completed with PUBACK or PUBCOMP: QoS 1 is acknowledged at once, so only QoS 2
//! identifiers awaiting PUBREL stay open. The broker must keep this count within the Receive
//! Maximum we announced ([MQTT-3.3.4-9]); one more is "Receive Maximum exceeded" (0x93,
//! section 4.9). The window starts empty on every connection: the send quota is not preserved
//! across network connections (section 4.9). The packet handling itself lives in `handle.rs`.

use std::collections::BTreeSet;

#[derive(Debug)]
pub struct AwaitingRel {
    /// Session: delivered QoS 2 identifiers awaiting PUBREL.
    pkids: BTreeSet<u16>,
    /// Connection: QoS 2 identifiers received on it and not yet completed.
    window: BTreeSet<u16>,
    max: usize,
}

/// What to do with an inbound QoS 2 PUBLISH.
#[derive(Debug, PartialEq, Eq)]
pub enum Qos2Publish {
    /// First time: deliver, then PUBREC.
    Deliver,
    /// Already delivered: PUBREC only.
    Duplicate,
    /// More unacknowledged QoS 1/2 messages on this connection than our receive maximum.
    OverLimit,
}

impl AwaitingRel {
    pub fn new(max: u16) -> AwaitingRel {
        AwaitingRel {
            pkids: BTreeSet::new(),
            window: BTreeSet::new(),
            max: usize::from(max),
        }
    }

    /// A new connection: its receive window starts empty.
    pub fn new_connection(&mut self) {
        self.window.clear();
    }

    /// Whether a QoS 1 PUBLISH fits the receive window (it is acknowledged at once, so it
    /// never stays in it).
    pub fn admit_qos1(&self) -> bool {
        self.window.len() < self.max
    }

    pub fn on_publish(&mut self, pkid: u16) -> Qos2Publish {
        if !self.window.contains(&pkid) {
            if self.window.len() >= self.max {
                return Qos2Publish::OverLimit;
            }
            self.window.insert(pkid);
        }
        if self.pkids.insert(pkid) {
            Qos2Publish::Deliver
        } else {
            Qos2Publish::Duplicate
        }
    }

    /// PUBREL: the identifier is released (PUBCOMP follows). Returns whether it was known.
    pub fn on_pubrel(&mut self, pkid: u16) -> bool {
        self.window.remove(&pkid);
        self.pkids.remove(&pkid)
    }

    /// The broker has no session: nothing will be released.
    pub fn clear(&mut self) {
        self.pkids.clear();
        self.window.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_once_until_pubrel_then_the_id_is_fresh() {
        let mut a = AwaitingRel::new(2);
        assert_eq!(a.on_publish(7), Qos2Publish::Deliver);
        assert_eq!(a.on_publish(7), Qos2Publish::Duplicate);
        assert_eq!(a.on_publish(8), Qos2Publish::Deliver);
        assert_eq!(a.on_publish(9), Qos2Publish::OverLimit);
        assert!(
            !a.admit_qos1(),
            "two QoS 2 open: a QoS 1 would be the third"
        );
        assert!(a.on_pubrel(7));
        assert!(!a.on_pubrel(7));
        assert!(a.admit_qos1());
        assert_eq!(
            a.on_publish(7),
            Qos2Publish::Deliver,
            "a released id is a new message"
        );
    }

    /// Section 4.9: the quota starts afresh on each connection, while identifiers awaiting
    /// PUBREL stay with the session; a resend of one of them counts on the new connection.
    #[test]
    fn window_is_per_connection_identifiers_per_session() {
        let mut a = AwaitingRel::new(1);
        assert_eq!(a.on_publish(1), Qos2Publish::Deliver);
        a.new_connection();
        assert_eq!(a.on_publish(2), Qos2Publish::Deliver);
        assert_eq!(a.on_publish(1), Qos2Publish::OverLimit);
        a.new_connection();
        assert_eq!(a.on_publish(1), Qos2Publish::Duplicate);
        assert!(a.on_pubrel(1));
        assert!(
            a.on_pubrel(2),
            "released on another connection than its PUBLISH"
        );
    }
}
