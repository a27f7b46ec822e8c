//! What a 5.0 CONNACK announced holds for its connection, judged for the "integrity" checker.
//!
//! Shared Subscription Available (property 0x2A, 5.0 section 3.2.2.3.13): after a CONNACK
//! carrying 0, the broker supports no shared subscription on that connection, so a SUBSCRIBE of
//! a `$share/...` filter is refused with 0x9E Shared Subscriptions not supported (in the SUBACK
//! or a DISCONNECT), and a SUBACK on that connection granting such a filter a QoS is a
//! violation. The section has no numbered normative statement; the violation names the
//! section. An absent property means available, and a 3.1.1 CONNACK announces nothing (3.1.1
//! has no shared subscriptions: to a 3.1.1 client, `$share/...` is a filter like any other,
//! which a broker may grant or refuse with 0x80), so 3.1.1 connections are not judged here.
//!
//! The connection is the recording process's latest `connected`: a SUBACK arrives on the
//! connection its SUBSCRIBE was sent on, and a process holds one connection at a time.

use std::collections::BTreeMap;

use super::Violation;
use crate::trace::{Event, Trace};

/// Every SUBACK granting a `$share/...` filter on a connection whose CONNACK announced Shared
/// Subscription Available 0, reported under `checker`.
pub fn violations(trace: &Trace, checker: &'static str) -> Vec<Violation> {
    let mut out = Vec::new();
    // Per process: what the CONNACK of its current connection said (`None`: nothing).
    let mut announced: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    for e in &trace.events {
        let process = e.process().unwrap_or_default();
        match &e.event {
            Event::Connecting { .. } => {
                announced.remove(process);
            }
            Event::Connected {
                shared_subscription_available,
                ..
            } => {
                announced.insert(process, *shared_subscription_available);
            }
            Event::SubscribeGranted {
                client,
                filter,
                granted: Some(qos),
                ..
            } if filter.starts_with("$share/")
                && announced.get(process).copied().flatten() == Some(false) =>
            {
                out.push(Violation {
                    checker,
                    at_us: e.at_us,
                    message: format!(
                        "{client} was granted QoS {qos} for the shared subscription {filter} on a connection whose CONNACK announced Shared Subscription Available 0: the broker must refuse it with 0x9E Shared Subscriptions not supported (MQTT 5.0 section 3.2.2.3.13)"
                    ),
                });
            }
            _ => {}
        }
    }
    out
}
