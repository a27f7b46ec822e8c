//! The `[expect]` section: which checkers judge the run, and explicit expectations about named
//! clients; and its checks. Not here: the checkers themselves (`src/check/`).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::checks::Checks;
use super::client::ClientConfig;
use super::topic::{check_topic_filter, filter_matches};
use super::workload::Workload;
use crate::codec::Protocol;

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

/// What the checks of `[expect]` need to know of the rest of the scenario.
pub(crate) struct ExpectContext<'a> {
    pub clients: &'a [ClientConfig],
    pub workloads: &'a [Workload],
    pub protocol: Protocol,
}

impl ExpectContext<'_> {
    fn client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }
}

impl Expect {
    pub(crate) fn check(&self, c: &mut Checks<'_>, cx: &ExpectContext<'_>) {
        if self.checkers.is_empty() {
            c.fail(
                "expect.checkers",
                format!(
                    "name at least one checker: {}",
                    crate::check::registry::names()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, checker) in self.checkers.iter().enumerate() {
            if !seen.insert(*checker) {
                c.fail(
                    format!("expect.checkers[{i}]"),
                    format!("{:?} is listed twice", checker.name()),
                );
            }
        }
        self.check_wills(c, cx);
        let mut seen = BTreeSet::new();
        for (i, class) in self.no_loss.iter().enumerate() {
            if !seen.insert(*class) {
                c.fail(format!("expect.no_loss[{i}]"), "listed twice");
            }
        }
        self.check_overflow(c, cx);
        for (i, r) in self.receives.iter().enumerate() {
            r.check(c, &format!("expect.receives[{i}]"), cx);
        }
    }

    /// `will_reaches` and `no_will`: clients with a will, subscribers that can receive it.
    fn check_wills(&self, c: &mut Checks<'_>, cx: &ExpectContext<'_>) {
        for (i, w) in self.will_reaches.iter().enumerate() {
            let base = format!("expect.will_reaches[{i}]");
            let client_ok = c.client_ref(&format!("{base}.client"), &w.client);
            let sub_ok = c.client_ref(&format!("{base}.subscriber"), &w.subscriber);
            if !(client_ok && sub_ok) {
                continue;
            }
            let Some(will) = cx.client(&w.client).and_then(|cl| cl.will.as_ref()) else {
                c.fail(
                    format!("{base}.client"),
                    format!("client {:?} has no will", w.client),
                );
                continue;
            };
            let subscriber = cx.client(&w.subscriber).expect("checked above");
            if !subscriber.subscribe.iter().any(|sub| {
                check_topic_filter(&sub.filter).is_ok() && filter_matches(&sub.filter, &will.topic)
            }) {
                c.fail(
                    format!("{base}.subscriber"),
                    format!(
                        "{:?} has no subscription matching the will topic {:?}",
                        w.subscriber, will.topic
                    ),
                );
            }
        }
        for (i, id) in self.no_will.iter().enumerate() {
            let field = format!("expect.no_will[{i}]");
            if c.client_ref(&field, id) && cx.client(id).is_some_and(|cl| cl.will.is_none()) {
                c.fail(
                    field,
                    format!("client {id:?} has no will, so this says nothing"),
                );
            }
        }
    }

    /// `overflow`: each client once, offline for a while with a persistent session and a
    /// QoS 1 or 2 subscription.
    fn check_overflow(&self, c: &mut Checks<'_>, cx: &ExpectContext<'_>) {
        for (i, id) in self.overflow.iter().enumerate() {
            let field = format!("expect.overflow[{i}]");
            if !c.client_ref(&field, id) {
                continue;
            }
            if self.overflow[..i].contains(id) {
                c.fail(&field, format!("client {id:?} is listed twice"));
                continue;
            }
            let client = cx.client(id).expect("checked above");
            if client.disconnect_at.is_none() || client.reconnect_at.is_none() {
                c.fail(
                    &field,
                    format!("client {id:?} needs disconnect_at and reconnect_at: its queue overflows while it is offline"),
                );
            }
            if !client.persistent_session(cx.protocol) {
                c.fail(
                    &field,
                    format!(
                        "client {id:?} needs a persistent session, or nothing is queued for it"
                    ),
                );
            }
            if !client.subscribe.iter().any(|sub| sub.qos.as_u8() >= 1) {
                c.fail(
                    &field,
                    format!(
                        "client {id:?} has no QoS 1 or 2 subscription: QoS 0 messages are not judged"
                    ),
                );
            }
        }
    }
}

impl Receives {
    /// Checks one `receives` entry (`base`, like `expect.receives[0]`): a known client, a
    /// valid filter that some workload or will publishes on, and enough messages published.
    fn check(&self, c: &mut Checks<'_>, base: &str, cx: &ExpectContext<'_>) {
        c.client_ref(&format!("{base}.client"), &self.client);
        if let Some(filter) = &self.filter
            && let Err(reason) = check_topic_filter(filter)
        {
            c.fail(format!("{base}.filter"), reason);
        }
        if self.at_least == 0 {
            c.fail(format!("{base}.at_least"), "must be at least 1");
        }
        let filter = self.filter.as_deref().unwrap_or("#");
        if check_topic_filter(filter).is_err() {
            return;
        }
        let published: u64 = cx
            .workloads
            .iter()
            .filter(|w| filter_matches(filter, &w.topic))
            .map(|w| u64::from(w.count))
            .sum();
        let wills = cx
            .clients
            .iter()
            .filter_map(|cl| cl.will.as_ref())
            .filter(|w| filter_matches(filter, &w.topic))
            .count();
        if published == 0 && wills == 0 {
            c.fail(
                format!("{base}.filter"),
                format!("no workload or will publishes on a topic matching {filter:?}"),
            );
        } else if wills == 0 && u64::from(self.at_least) > published {
            c.fail(
                format!("{base}.at_least"),
                format!("{} is more than the {published} messages published on topics matching {filter:?}", self.at_least),
            );
        }
    }
}
