//! Inbound QoS 2 state: the packet identifiers of PUBLISHes delivered to the application and
//! acknowledged with PUBREC, kept until the broker's PUBREL ([MQTT-4.3.3-8], [MQTT-4.3.3-9]).
//! A PUBLISH that arrives again with a kept identifier is a resend of a message already
//! delivered: it is answered with PUBREC and not delivered again.
//!
//! Bounded by our receive maximum ([MQTT-3.3.4-9]). QoS 0/1 need no state: QoS 1 is acked at
//! once. The packet handling itself lives in `mod.rs`.

use std::collections::BTreeSet;

#[derive(Debug)]
pub struct AwaitingRel {
    pkids: BTreeSet<u16>,
    max: usize,
}

/// What to do with an inbound QoS 2 PUBLISH.
#[derive(Debug, PartialEq, Eq)]
pub enum Qos2Publish {
    /// First time: deliver, then PUBREC.
    Deliver,
    /// Already delivered: PUBREC only.
    Duplicate,
    /// More unacknowledged QoS 2 messages than our receive maximum allows.
    OverLimit,
}

impl AwaitingRel {
    pub fn new(max: u16) -> AwaitingRel {
        AwaitingRel {
            pkids: BTreeSet::new(),
            max: usize::from(max),
        }
    }

    pub fn on_publish(&mut self, pkid: u16) -> Qos2Publish {
        if self.pkids.contains(&pkid) {
            Qos2Publish::Duplicate
        } else if self.pkids.len() >= self.max {
            Qos2Publish::OverLimit
        } else {
            self.pkids.insert(pkid);
            Qos2Publish::Deliver
        }
    }

    /// PUBREL: the identifier is released. Returns whether it was known.
    pub fn on_pubrel(&mut self, pkid: u16) -> bool {
        self.pkids.remove(&pkid)
    }

    /// The broker has no session: nothing will be released.
    pub fn clear(&mut self) {
        self.pkids.clear();
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
        assert!(a.on_pubrel(7));
        assert!(!a.on_pubrel(7));
        assert_eq!(
            a.on_publish(7),
            Qos2Publish::Deliver,
            "a released id is a new message"
        );
    }
}
