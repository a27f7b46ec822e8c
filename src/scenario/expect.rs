//! The `[expect]` section: which checkers judge the run, and explicit expectations about named
//! clients. Not here: the checkers themselves (`src/check/`).

use serde::Deserialize;

pub use crate::check::expect::{Receives, WillReaches};

/// A checker that judges a run's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    /// QoS 0 never duplicated, QoS 1 at least once, QoS 2 exactly once to every entitled
    /// subscriber.
    Delivery,
    /// Order per publisher and topic as the specification promises.
    Ordering,
    /// A new subscriber sees the latest retained value, and none after a clear.
    Retained,
    /// A will is published exactly once if and only if its client went away abnormally.
    Will,
    /// Session Present is right after every reconnect and broker restart.
    Session,
    /// Nothing is delivered that was never published; payloads arrive intact.
    Integrity,
    /// Each message matching a shared subscription reaches one member of its group (QoS 1
    /// and 2: at least one, another only after a member's session ends).
    Shared,
    /// 5.0 subscription options and identifiers: No Local, the identifiers a message carries,
    /// Retain As Published.
    Subscription,
    /// Wrong credentials are refused; nobody receives what its read rights forbid or what its
    /// publisher may not write; a subscription the ACL forbids is refused.
    Acl,
}

impl Checker {
    /// All checkers, in a fixed order.
    pub const ALL: [Checker; 9] = [
        Checker::Delivery,
        Checker::Ordering,
        Checker::Retained,
        Checker::Will,
        Checker::Session,
        Checker::Integrity,
        Checker::Shared,
        Checker::Subscription,
        Checker::Acl,
    ];

    /// The name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            Checker::Delivery => "delivery",
            Checker::Ordering => "ordering",
            Checker::Retained => "retained",
            Checker::Will => "will",
            Checker::Session => "session",
            Checker::Integrity => "integrity",
            Checker::Shared => "shared",
            Checker::Subscription => "subscription",
            Checker::Acl => "acl",
        }
    }
}

/// A QoS level named in `no_loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossClass {
    Qos1,
    Qos2,
}

/// `[expect]`: checkers and explicit expectations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Checkers to run; at least one, no repeats. Required.
    pub checkers: Vec<Checker>,
    /// The will of `client` must reach `subscriber` at least once during the run.
    #[serde(default)]
    pub will_reaches: Vec<WillReaches>,
    /// These clients' wills must never be published.
    #[serde(default)]
    pub no_will: Vec<String>,
    /// No message of these QoS levels may be lost for any entitled subscriber, even one that
    /// the delivery checker would excuse (queue overflow, persistence `none`): the scenario
    /// promises its setup never drops one.
    #[serde(default)]
    pub no_loss: Vec<LossClass>,
    /// `client` must receive at least `at_least` messages (matching `filter`, default all) by
    /// the end of the run.
    #[serde(default)]
    pub receives: Vec<Receives>,
    /// These clients' queues overflow while they are offline (from `disconnect_at` to
    /// `reconnect_at`, persistent session): of the QoS 1 and 2 messages published for them
    /// meanwhile, the ones they receive after reconnecting must be the oldest (`queue_overflow
    /// = "drop_newest"`) or the newest (`"drop_oldest"`), without gaps, and fewer than were
    /// published.
    #[serde(default)]
    pub overflow: Vec<String>,
}
