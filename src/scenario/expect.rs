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
    /// What `client` receives on topics matching `filter` (default all): how many distinct
    /// messages (`at_least`, `at_most`, `exactly`; `exactly = 0` for nothing), at which QoS and
    /// with which RETAIN flag.
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
        self.check_processes(c, cx);
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

    /// Expectations are about sessions, named by client id: a process with a `client_id` of
    /// its own is named by that id.
    fn check_processes(&self, c: &mut Checks<'_>, cx: &ExpectContext<'_>) {
        let named = self
            .will_reaches
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                [
                    (format!("expect.will_reaches[{i}].client"), &w.client),
                    (
                        format!("expect.will_reaches[{i}].subscriber"),
                        &w.subscriber,
                    ),
                ]
            })
            .chain(
                self.no_will
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("expect.no_will[{i}]"), id)),
            )
            .chain(
                self.receives
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("expect.receives[{i}].client"), &r.client)),
            )
            .chain(
                self.overflow
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("expect.overflow[{i}]"), id)),
            );
        for (field, name) in named {
            if let Some(p) = cx.client(name).filter(|p| p.mqtt_id() != p.id) {
                c.fail(
                    field,
                    format!(
                        "{name:?} is a process that connects as {:?}: expectations name client ids",
                        p.mqtt_id()
                    ),
                );
            }
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
    /// valid filter that some workload or will publishes on, bounds that do not contradict one
    /// another and that the messages published can meet, and flags those messages can carry.
    fn check(&self, c: &mut Checks<'_>, base: &str, cx: &ExpectContext<'_>) {
        let at = |f: &str| format!("{base}.{f}");
        let known = c.client_ref(&at("client"), &self.client);
        if let Some(filter) = &self.filter
            && let Err(reason) = check_topic_filter(filter)
        {
            c.fail(at("filter"), reason);
        }
        if self.exactly.is_none()
            && self.at_least.is_none()
            && self.at_most.is_none()
            && self.qos.is_none()
            && self.retain.is_none()
        {
            c.fail(
                base,
                "says nothing: give at_least, at_most, exactly (0 for nothing), qos or retain",
            );
        }
        if self.at_least == Some(0) {
            c.fail(
                at("at_least"),
                "must be at least 1 (exactly = 0 says nothing arrives)",
            );
        }
        if self.exactly.is_some() {
            for (field, given) in [
                ("at_least", self.at_least.is_some()),
                ("at_most", self.at_most.is_some()),
            ] {
                if given {
                    c.fail(
                        at(field),
                        format!("{field} contradicts exactly: give one or the other"),
                    );
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.at_least, self.at_most)
            && lo > hi
        {
            c.fail(
                at("at_least"),
                format!("{lo} is more than at_most {hi}: no count can meet both"),
            );
        }
        if self.exactly == Some(0) {
            for (field, given) in [
                ("qos", self.qos.is_some()),
                ("retain", self.retain.is_some()),
            ] {
                if given {
                    c.fail(
                        at(field),
                        format!(
                            "says nothing with exactly = 0: no message arrives to carry a {field}"
                        ),
                    );
                }
            }
        }
        if let Some(q) = self.qos
            && q > 2
        {
            c.fail(at("qos"), format!("qos must be 0, 1 or 2, got {q}"));
        }
        let filter = self.filter.as_deref().unwrap_or("#");
        if check_topic_filter(filter).is_err() {
            return;
        }
        let workloads: Vec<&Workload> = cx
            .workloads
            .iter()
            .filter(|w| filter_matches(filter, &w.topic))
            .collect();
        let published: u64 = workloads.iter().map(|w| u64::from(w.count)).sum();
        let wills: Vec<&super::client::WillConfig> = cx
            .clients
            .iter()
            .filter_map(|cl| cl.will.as_ref())
            .filter(|w| filter_matches(filter, &w.topic))
            .collect();
        if published == 0 && wills.is_empty() {
            c.fail(
                at("filter"),
                format!("no workload or will publishes on a topic matching {filter:?}"),
            );
            return;
        }
        let least = self.exactly.or(self.at_least).unwrap_or(0);
        let field = if self.exactly.is_some() {
            "exactly"
        } else {
            "at_least"
        };
        if wills.is_empty() && u64::from(least) > published {
            c.fail(
                at(field),
                format!("{least} is more than the {published} messages published on topics matching {filter:?}"),
            );
        }
        if let Some(q) = self.qos.filter(|q| *q <= 2) {
            let top = workloads
                .iter()
                .map(|w| w.qos.as_u8())
                .chain(wills.iter().map(|w| w.qos.as_u8()))
                .max()
                .unwrap_or(0);
            if q > top {
                c.fail(
                    at("qos"),
                    format!("no message on a topic matching {filter:?} is published above QoS {top}, so none arrives at QoS {q}"),
                );
            } else if known
                && let Some(client) = cx.client(&self.client)
                && let Some(granted) = client
                    .subscribe
                    .iter()
                    .filter(|s| check_topic_filter(&s.filter).is_ok())
                    .filter(|s| overlaps(&s.filter, &workloads, &wills))
                    .map(|s| s.qos.as_u8())
                    .max()
                && q > granted
            {
                c.fail(
                    at("qos"),
                    format!("{:?} subscribes to these topics at QoS {granted} at most, so nothing arrives at QoS {q}", self.client),
                );
            }
        }
        if self.retain == Some(true)
            && !workloads.iter().any(|w| w.retain)
            && !wills.iter().any(|w| w.retain)
        {
            c.fail(
                at("retain"),
                format!("no message on a topic matching {filter:?} is published retained"),
            );
        }
    }
}

/// Whether subscription filter `sub` matches a topic some of these workloads or wills publish
/// on (those matching the entry's filter).
fn overlaps(sub: &str, workloads: &[&Workload], wills: &[&super::client::WillConfig]) -> bool {
    let sub = sub
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/').map(|(_, f)| f))
        .unwrap_or(sub);
    workloads.iter().any(|w| filter_matches(sub, &w.topic))
        || wills.iter().any(|w| filter_matches(sub, &w.topic))
}
