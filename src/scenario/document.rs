//! [`Scenario`]: a whole scenario file, read from TOML with every problem reported at once,
//! and its checks: the top-level fields here, each section's beside its type. Not here: the
//! seeded plan (`plan.rs`), or the cores' configurations a scenario becomes (`sim`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::broker::BrokerSection;
use super::checks::{Checks, d};
use super::client::{ClientConfig, ClientContext};
use super::error::ScenarioError;
use super::expect::{Expect, ExpectContext};
use super::fault::{FaultSource, FaultSpec, PlannedFault, TriggeredFault, plan_scripted};
use super::random::{NetworkConfig, RandomFaults};
use super::target::TargetSection;
use super::template::{self, Expansion, Template};
use super::values::{MAX_CLIENTS, MAX_DURATION, de_duration, de_opt_duration, de_protocol};
use super::workload::Workload;
use crate::codec::Protocol;
use crate::config::file::{Document, Problem, in_line_order};

/// One scenario: a world (broker, clients, network), what the clients do, the faults, and
/// what must hold. Build it with [`Scenario::load`] or [`Scenario::from_str`]; both validate.
///
/// A run has two phases. From 0 to [`Scenario::faults_until`] faults happen (scripted and
/// random) while safety is checked. Then every fault heals and the system must settle by
/// [`Scenario::settle_by`]: clients reconnected, queues drained, pending deliveries
/// complete. The run ends at `duration`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A one-line title. Required.
    pub name: String,
    /// A longer story. Default `""`.
    #[serde(default)]
    pub description: String,
    /// `"3.1.1"` or `"5.0"`. Required.
    #[serde(deserialize_with = "de_protocol")]
    pub protocol: Protocol,
    /// Virtual length of the run. Required.
    #[serde(deserialize_with = "de_duration")]
    pub duration: Duration,
    /// End of the faults phase. Default: two thirds of `duration` (whole milliseconds).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub faults_until: Option<Duration>,
    /// How long after `faults_until` the system has to settle. Default: the rest of the run
    /// (`duration - faults_until`).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub settle: Option<Duration>,
    /// Most seeds the lab runs of this scenario: the first ones of the range it is given. For
    /// scenarios whose seeds are slow. Default: every seed of the range.
    #[serde(default)]
    pub max_seeds: Option<std::num::NonZeroU64>,
    /// `[broker]` (read on its own: see [`BrokerSection`]).
    #[serde(skip)]
    pub broker: BrokerSection,
    /// `[network]`.
    #[serde(default)]
    pub network: NetworkConfig,
    /// `[[client]]` entries, at least one.
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    /// `[[workload]]` entries.
    #[serde(default, rename = "workload")]
    pub workloads: Vec<Workload>,
    /// `[[fault]]` entries, as written.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// `[random]`. Default: no random faults.
    #[serde(default)]
    pub random: Option<RandomFaults>,
    /// `[expect]`. Required.
    pub expect: Expect,
    /// `[target]`: what a run against a real broker needs. Default: nothing special.
    #[serde(default)]
    pub target: TargetSection,
    /// Where the scenario came from (a path or a name given to `from_str`).
    #[serde(skip)]
    origin: String,
    /// `faults` at fixed times, resolved and in time order.
    #[serde(skip)]
    pub(super) scripted: Vec<PlannedFault>,
    /// `faults` fired by trace events, in file order.
    #[serde(skip)]
    pub(super) triggered: Vec<TriggeredFault>,
    /// The text the scenario was read from, to place problems found later on their lines.
    #[serde(skip)]
    text: String,
    /// The client templates and what they expanded to.
    #[serde(skip)]
    pub(super) expansion: Expansion,
}

impl Scenario {
    /// Reads and validates a scenario file. Errors name the file, field, line and reason.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            origin: origin.clone(),
            source,
        })?;
        Scenario::from_str(&text, &origin)
    }

    /// Parses and validates scenario text; `origin` names it in errors (a path, or any label).
    /// Every problem is reported, in line order: first those of the file's shape (syntax,
    /// unknown fields, wrong types, durations without a unit), or, when the shape is sound,
    /// those of the values.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let invalid = |problems: Vec<Problem>| ScenarioError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        let doc = Document::parse(text).map_err(invalid)?;
        let mut scenario = Scenario::read(&doc).map_err(invalid)?;
        scenario.origin = origin.to_string();
        scenario.text = text.to_string();
        match scenario.check() {
            Ok((mut scripted, mut triggered)) => {
                // Faults name the `[[fault]]` entry they come from in the file.
                let entry = |i| scenario.expansion.entry("fault", i);
                for f in &mut scripted {
                    if let FaultSource::Script(i) = &mut f.source {
                        *i = entry(*i);
                    }
                }
                for t in &mut triggered {
                    t.source = entry(t.source);
                }
                scenario.scripted = scripted;
                scenario.triggered = triggered;
                Ok(scenario)
            }
            Err(found) => Err(scenario.invalid(found)),
        }
    }

    /// The scenario as `doc` writes it, `[broker]` read on its own.
    fn read(doc: &Document<'_>) -> Result<Scenario, Vec<Problem>> {
        let mut root = doc.root().clone();
        let expansion = template::expand(doc, root.get_mut()).map_err(|mut problems| {
            in_line_order(&mut problems);
            problems
        })?;
        let broker = match root.get_mut().remove_entry("broker") {
            None => Ok(BrokerSection::default()),
            Some((_, value)) => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Table(table) => BrokerSection::read(doc, Spanned::new(span, table)),
                    _ => Err(vec![doc.problem("broker", "expected a table")]),
                }
            }
        };
        match (doc.read::<Scenario>(root, &[]), broker) {
            (Ok(mut scenario), Ok(broker)) => {
                scenario.broker = broker;
                scenario.expansion = expansion;
                Ok(scenario)
            }
            (scenario, broker) => {
                let mut problems = scenario.err().unwrap_or_default();
                problems.extend(broker.err().unwrap_or_default());
                // Entries expanded from one template entry share its problems.
                let mut once = Vec::new();
                for p in problems {
                    if !once.contains(&p) {
                        once.push(p);
                    }
                }
                in_line_order(&mut once);
                Err(once)
            }
        }
    }

    /// An error for `found` problems (`(field, reason)`), each on the line of its field, in
    /// line order. A field of a template instance or of an entry expanded over a template is
    /// shown on its template entry (`client[2] (sensor-{n}).keep_alive`), with the problems of
    /// the first instance that has any there, and how many other instances differ.
    pub fn invalid(&self, found: Vec<(String, String)>) -> ScenarioError {
        let doc = Document::parse(&self.text).ok();
        let mut problems: Vec<Problem> = Vec::new();
        // Per field shown on a template: the instance kept, and the others that differ.
        let mut kept: BTreeMap<String, (usize, BTreeSet<usize>)> = BTreeMap::new();
        for (field, reason) in found {
            let (located, shown, instance) = self.expansion.place(&field);
            if let Some(instance) = instance {
                let (first, others) = kept
                    .entry(shown.clone())
                    .or_insert((instance, BTreeSet::new()));
                if *first != instance {
                    let same = problems
                        .iter()
                        .any(|p| p.field == shown && p.reason == reason);
                    if !same {
                        others.insert(instance);
                    }
                    continue;
                }
            }
            let mut p = match &doc {
                Some(doc) => doc.problem(located, reason),
                None => Problem::new(located, reason),
            };
            p.field = shown;
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        for (shown, (_, others)) in kept {
            if let Some(p) = problems.iter_mut().rev().find(|p| p.field == shown)
                && !others.is_empty()
            {
                p.reason = format!("{} (and {} more of its instances)", p.reason, others.len());
            }
        }
        in_line_order(&mut problems);
        ScenarioError::Invalid {
            origin: self.origin.clone(),
            problems,
        }
    }

    /// Every check of every section; on success the scripted faults in time order and those
    /// fired by trace events.
    #[allow(clippy::type_complexity)]
    fn check(&self) -> Result<(Vec<PlannedFault>, Vec<TriggeredFault>), Vec<(String, String)>> {
        let mut c = Checks {
            ids: self.clients.iter().map(|cl| cl.id.as_str()).collect(),
            duration: self.duration,
            faults_until: self.faults_until(),
            problems: Vec::new(),
        };
        self.check_top_level(&mut c);
        self.network.check(&mut c);
        self.broker.check(&mut c);
        for (i, client) in self.clients.iter().enumerate() {
            let cx = ClientContext {
                earlier: &self.clients[..i],
                protocol: self.protocol,
                broker_has_users: !self.broker.users.is_empty(),
            };
            client.check(&mut c, i, &cx);
        }
        self.check_template_ends(&mut c);
        for (i, w) in self.workloads.iter().enumerate() {
            w.check(&mut c, i, &self.clients, self.protocol, &self.broker.config);
        }
        let scripted = plan_scripted(&mut c, &self.faults);
        if self.broker.persistence != crate::trace::Persistence::Durable {
            for (i, f) in self.faults.iter().enumerate() {
                for (name, given) in [
                    ("sync_error", f.sync_error.is_some()),
                    ("disk_full", f.disk_full.is_some()),
                    ("slow_sync", f.slow_sync.is_some()),
                    (
                        "crash_broker.in_sync",
                        f.crash_broker.as_ref().is_some_and(|b| b.in_sync),
                    ),
                ] {
                    if given {
                        c.fail(
                            format!("fault[{i}].{name}"),
                            "storage faults need the broker's disk: set [broker] persistence = \"durable\"",
                        );
                    }
                }
            }
        }
        if let Some(random) = &self.random {
            random.check(&mut c);
            if self.broker.persistence != crate::trace::Persistence::Durable {
                for name in random.storage_fields() {
                    c.fail(
                        format!("random.{name}"),
                        "storage faults need the broker's disk: set [broker] persistence = \"durable\"",
                    );
                }
            }
        }
        let cx = ExpectContext {
            clients: &self.clients,
            workloads: &self.workloads,
            protocol: self.protocol,
        };
        self.expect.check(&mut c, &cx);
        if c.problems.is_empty() {
            Ok(scripted)
        } else {
            Err(c.problems)
        }
    }

    /// The checks of each template's first instance again with its ranges at their other ends
    /// (see [`Template::corners`]); what only those ends break is said so.
    fn check_template_ends(&self, c: &mut Checks<'_>) {
        let cx = ClientContext {
            earlier: &[],
            protocol: self.protocol,
            broker_has_users: !self.broker.users.is_empty(),
        };
        for t in &self.expansion.templates {
            for corner in t.corners(&self.clients[t.first]) {
                let before = c.problems.len();
                corner.check(c, t.first, &cx);
                let found = c.problems.split_off(before);
                for (field, reason) in found {
                    if !c.problems.iter().any(|(f, r)| *f == field && *r == reason) {
                        let reason = format!("{reason} (with the template's ranges at these ends)");
                        c.problems.push((field, reason));
                    }
                }
            }
        }
    }

    /// `name`, the run's phases, and how many clients.
    fn check_top_level(&self, c: &mut Checks<'_>) {
        if self.name.trim().is_empty() {
            c.fail("name", "must not be empty");
        }
        if c.positive("duration", self.duration) && self.duration > MAX_DURATION {
            c.fail("duration", "more than one week");
        }
        if let Some(until) = self.faults_until
            && until > self.duration
        {
            c.fail(
                "faults_until",
                format!(
                    "{} is after the end of the run (duration {})",
                    d(until),
                    d(self.duration)
                ),
            );
        }
        if let Some(settle) = self.settle {
            let end = self.faults_until() + settle;
            if end > self.duration {
                c.fail(
                    "settle",
                    format!(
                        "faults_until {} + settle {} = {} is after the end of the run (duration {})",
                        d(self.faults_until()),
                        d(settle),
                        d(end),
                        d(self.duration)
                    ),
                );
            }
        }
        if self.clients.is_empty() {
            c.fail("client", "a scenario needs at least one [[client]]");
        }
        if self.clients.len() > MAX_CLIENTS {
            c.fail(
                "client",
                format!("{} clients, more than {MAX_CLIENTS}", self.clients.len()),
            );
        }
    }

    /// Where the scenario came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// End of the faults phase.
    pub fn faults_until(&self) -> Duration {
        self.faults_until
            .unwrap_or_else(|| Duration::from_millis((self.duration.as_millis() * 2 / 3) as u64))
    }

    /// The time by which everything must have settled (liveness is judged here).
    pub fn settle_by(&self) -> Duration {
        match self.settle {
            Some(settle) => self.faults_until() + settle,
            None => self.duration,
        }
    }

    /// The `[[fault]]` entries as concrete faults, in time order (ties keep file order).
    pub fn scripted_faults(&self) -> &[PlannedFault] {
        &self.scripted
    }

    /// The `[[fault]]` entries fired by trace events (`after`), in file order.
    pub fn triggered_faults(&self) -> &[TriggeredFault] {
        &self.triggered
    }

    /// The client templates (`[[client]]` entries with `count`), in file order; their
    /// instances are in [`Scenario::clients`].
    pub fn templates(&self) -> &[Template] {
        &self.expansion.templates
    }

    /// The client with this id.
    pub fn client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// The effective protocol of a client.
    pub fn client_protocol(&self, client: &ClientConfig) -> Protocol {
        client.protocol_or(self.protocol)
    }
}
