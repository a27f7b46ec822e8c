//! The wrong brokers of the authorization checks (src/conformance/suite/checks/auth.rs).

use super::{Wrong, down, kind};

/// The wrong broker for each check: the one behaviour it gets wrong.
pub fn wrong_for(check: &str) -> Option<Wrong> {
    Some(match check {
        // Any password will do: the refusing CONNACK becomes an acceptance.
        "bad-password-refused" => down(|p, _| {
            let mut p = p.to_vec();
            if kind(&p) == 2 {
                p[3] = 0;
            }
            Some(p)
        }),
        // An unauthorised PUBLISH is neither acknowledged nor answered with a close.
        "publish-denied" => down(|p, _| (kind(p) != 4).then(|| p.to_vec())),
        _ => return None,
    })
}
