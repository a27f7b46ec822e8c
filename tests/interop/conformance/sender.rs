//! The wrong brokers of the sender checks (src/conformance/suite/checks/sender.rs).

use super::{Wrong, down, kind};

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // Every QoS 1 and 2 delivery goes out with DUP 1, as if sent before.
        "broker-as-sender" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 3 && (p[0] >> 1) & 3 != 0 {
                p[0] |= 0x08;
            }
            Some(p)
        }),
        _ => return None,
    })
}
