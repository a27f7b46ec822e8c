//! The `[expect]` section: which checkers judge the run, and explicit expectations about named
//! clients. Not here: the checkers themselves (`src/check/`).

use serde::Deserialize;

pub use crate::check::Checker;
pub use crate::check::expect::{Receives, WillReaches};

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
