//! `mqtt-lab shrink`: a scenario file that fails on one seed, cut down to a smaller file that
//! still fails the same way on that seed.
//!
//! - [`ShrinkArgs`], [`shrink_with`]: the command: load, shrink, write the file, print what
//!   was removed, the sizes before and after, and the replay command of the result.
//! - [`shrink`]: the algorithm on scenario text, given the world as a function of (scenario,
//!   seed). First the seed's random faults are frozen into `[[fault]]` entries and `[random]`
//!   dropped; then, until no step helps or the run budget is spent: clients, workloads,
//!   faults, subscriptions and expectations are removed by delta debugging (halves, then
//!   smaller chunks, then single items), and template counts, message counts, the duration
//!   and payload sizes are lowered. Every candidate is checked with the scenario loader
//!   (invalid ones are skipped without a run) and run on the seed.
//! - [`Failure`], [`signature`], [`rule`]: what "the same way" means.
//!
//! The file is edited as a TOML document, so the result has none of the source's comments or
//! layout. Not here: the world, the checkers, the scenario format itself.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use toml::{Table, Value};

use super::summary::replay_command;
use crate::config::duration::{format_duration, parse_duration};
use crate::scenario::{FaultKind, FaultSource, Plan, Scenario};
use crate::sim::{RunOutcome, RunStatus};

/// Most candidate runs of one shrink, unless `--max-runs` says otherwise.
pub const MAX_RUNS: usize = 500;

#[derive(Debug, Clone, Args)]
pub struct ShrinkArgs {
    /// The scenario file that fails.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// The seed it fails on.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Where to write the shrunk scenario. Default: `<stem>-seed-<N>.shrunk.toml` in the
    /// current directory.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Most candidate runs; the shrink stops there and says so.
    #[arg(long, value_name = "N", default_value_t = MAX_RUNS)]
    pub max_runs: usize,
    /// Keep the first violation this checker reports (`delivery`, `expect`, ...) instead of
    /// the run's first violation.
    #[arg(long, value_name = "NAME")]
    pub checker: Option<String>,
}

/// One entry of a failure signature: a checker and the rule it says was broken (a normative
/// tag such as `[MQTT-x.y.z-n]`, or a trailing tag such as `(receives)`), if its message
/// names one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub checker: String,
    pub rule: Option<String>,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "[{}] {rule}", self.checker),
            None => write!(f, "[{}]", self.checker),
        }
    }
}

/// What a candidate must still show to be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A violation whose signature holds this mark: the first violation's of the original run.
    Violated(Mark),
    /// A crash of our own code (any message).
    Crashed,
    /// The run's time limit.
    TimeLimit,
}

impl Failure {
    /// How `outcome` failed, or `None` if it did not (passed, or undecided): its first
    /// violation, or with `checker` its first violation reported by that checker.
    pub fn of(outcome: &RunOutcome, checker: Option<&str>) -> Option<Failure> {
        match &outcome.status {
            RunStatus::Crashed(_) => Some(Failure::Crashed),
            RunStatus::TimeLimit => Some(Failure::TimeLimit),
            RunStatus::Completed => outcome
                .violations
                .iter()
                .find(|v| checker.is_none_or(|c| v.checker == c))
                .map(|v| {
                    Failure::Violated(Mark {
                        checker: v.checker.to_string(),
                        rule: rule(&v.message),
                    })
                }),
        }
    }

    /// Whether `outcome` fails this way.
    pub fn seen_in(&self, outcome: &RunOutcome) -> bool {
        match (self, &outcome.status) {
            (Failure::Crashed, RunStatus::Crashed(_)) => true,
            (Failure::TimeLimit, RunStatus::TimeLimit) => true,
            (Failure::Violated(mark), RunStatus::Completed) => signature(outcome).contains(mark),
            _ => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Violated(mark) => write!(f, "a violation {mark}"),
            Failure::Crashed => write!(f, "a crash"),
            Failure::TimeLimit => write!(f, "the time limit"),
        }
    }
}

/// The set of (checker, rule) of a run's violations.
pub fn signature(outcome: &RunOutcome) -> BTreeSet<Mark> {
    outcome
        .violations
        .iter()
        .map(|v| Mark {
            checker: v.checker.to_string(),
            rule: rule(&v.message),
        })
        .collect()
}

/// The rule a violation message names: its first `[MQTT-...]` tag, else a trailing
/// `(word)` tag such as `(receives)` or `(no_loss)`, else none.
pub fn rule(message: &str) -> Option<String> {
    if let Some(start) = message.find("[MQTT-")
        && let Some(len) = message[start..].find(']')
    {
        return Some(message[start..=start + len].to_string());
    }
    let body = message.trim_end().strip_suffix(')')?;
    let open = body.rfind('(')?;
    let tag = &body[open + 1..];
    let is_tag = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit());
    is_tag.then(|| format!("({tag})"))
}

/// How big a scenario is on one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Client processes (template instances counted one by one).
    pub clients: usize,
    /// Faults of the seed's plan (scripted, random and fired by trace events).
    pub faults: usize,
    /// Messages the workloads publish.
    pub messages: u64,
    pub duration: Duration,
}

impl Size {
    pub fn of(scenario: &Scenario, seed: u64) -> Size {
        Size {
            clients: scenario.clients.len(),
            faults: scenario.plan(seed).faults.len() + scenario.triggered_faults().len(),
            messages: scenario.workloads.iter().map(|w| u64::from(w.count)).sum(),
            duration: scenario.duration,
        }
    }

    /// Smaller on some measure and larger on none.
    pub fn smaller_than(&self, other: &Size) -> bool {
        let le = self.clients <= other.clients
            && self.faults <= other.faults
            && self.messages <= other.messages
            && self.duration <= other.duration;
        le && self != other
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} client{}, {} fault{}, {} message{}, {}",
            self.clients,
            s(self.clients as u64),
            self.faults,
            s(self.faults as u64),
            self.messages,
            s(self.messages),
            format_duration(self.duration)
        )
    }
}

/// What a shrink came to.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The shrunk scenario file, header comment included.
    pub text: String,
    /// What was removed or lowered, in the order it was.
    pub removed: Vec<String>,
    /// Remarks: `[random]` kept, the run budget spent.
    pub notes: Vec<String>,
    /// How the original fails, which the result still shows.
    pub failure: Failure,
    pub before: Size,
    pub after: Size,
    /// Candidate runs made (the original's run included).
    pub runs: usize,
    /// The run budget was spent before no step helped.
    pub bounded: bool,
}

/// How far a shrink goes, and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Most runs, the original's included.
    pub max_runs: usize,
    /// Keep the first violation of this checker rather than the run's first violation.
    pub checker: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_runs: MAX_RUNS,
            checker: None,
        }
    }
}

/// Shrinks the scenario `text` (named `origin`) that fails on `seed` when `run` runs it,
/// within `settings`. Same input, same result. An error if the text is no valid scenario or
/// does not fail on the seed (with the checker `settings` names).
pub fn shrink<R>(
    text: &str,
    origin: &str,
    seed: u64,
    settings: &Settings,
    run: R,
) -> Result<Shrunk, String>
where
    R: Fn(&Scenario, u64) -> RunOutcome,
{
    let max_runs = settings.max_runs;
    let scenario = Scenario::from_str(text, origin).map_err(|e| e.to_string())?;
    let first = run(&scenario, seed);
    let Some(failure) = Failure::of(&first, settings.checker.as_deref()) else {
        if let (Some(checker), false) = (&settings.checker, first.violations.is_empty()) {
            let found: BTreeSet<&str> = first.violations.iter().map(|v| v.checker).collect();
            let found: Vec<&str> = found.into_iter().collect();
            return Err(format!(
                "{origin} fails on seed {seed}, but checker {checker:?} reports nothing \
                 (violations by {}): nothing to shrink",
                found.join(", ")
            ));
        }
        return Err(format!(
            "{origin} does not fail on seed {seed} ({}): nothing to shrink",
            if first.passed() {
                "it passes"
            } else {
                "undecided"
            }
        ));
    };
    let doc: Table = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    let mut s = Shrinker {
        run,
        seed,
        origin,
        failure,
        runs: 1,
        max_runs: max_runs.max(1),
        bounded: false,
        removed: Vec::new(),
        notes: Vec::new(),
        doc,
    };
    s.freeze(&scenario.plan(seed));
    loop {
        let mut progress = false;
        for kind in KINDS {
            progress |= s.remove_all(kind);
        }
        for knob in KNOBS {
            progress |= s.lower_all(knob);
        }
        if !progress || s.bounded {
            break;
        }
    }
    if s.bounded {
        s.notes.push(format!(
            "stopped at the bound of {} candidate runs: the result may shrink further",
            s.max_runs
        ));
    }
    let body = toml::to_string(&s.doc).map_err(|e| format!("cannot write the scenario: {e}"))?;
    let shrunk = Scenario::from_str(&body, origin)
        .unwrap_or_else(|e| panic!("a kept candidate is always valid: {e}"));
    let mut header = String::new();
    let _ = writeln!(
        header,
        "# Shrunk by `mqtt-lab shrink` from {origin}, seed {seed}: still fails with {}.",
        s.failure
    );
    let _ = writeln!(
        header,
        "# Edited as a TOML document: the comments and layout of the source are not kept."
    );
    if s.removed.is_empty() {
        let _ = writeln!(header, "# Nothing could be removed.");
    } else {
        let _ = writeln!(header, "# Removed:");
        for r in &s.removed {
            let _ = writeln!(header, "#   {r}");
        }
    }
    for n in &s.notes {
        let _ = writeln!(header, "# Note: {n}");
    }
    header.push('\n');
    Ok(Shrunk {
        text: header + &body,
        before: Size::of(&scenario, seed),
        after: Size::of(&shrunk, seed),
        removed: s.removed,
        notes: s.notes,
        failure: s.failure,
        runs: s.runs,
        bounded: s.bounded,
    })
}

struct Shrinker<'a, R> {
    run: R,
    seed: u64,
    origin: &'a str,
    failure: Failure,
    runs: usize,
    max_runs: usize,
    bounded: bool,
    removed: Vec<String>,
    notes: Vec<String>,
    /// The smallest document found so far that fails the same way.
    doc: Table,
}

impl<R: Fn(&Scenario, u64) -> RunOutcome> Shrinker<'_, R> {
    /// Whether `candidate` is a valid scenario that still fails the same way (one run, unless
    /// it is invalid or the budget is spent).
    fn holds(&mut self, candidate: &Table) -> bool {
        if self.bounded {
            return false;
        }
        let Ok(text) = toml::to_string(candidate) else {
            return false;
        };
        let Ok(scenario) = Scenario::from_str(&text, self.origin) else {
            return false;
        };
        if self.runs >= self.max_runs {
            self.bounded = true;
            return false;
        }
        self.runs += 1;
        let outcome = (self.run)(&scenario, self.seed);
        self.failure.seen_in(&outcome)
    }

    /// Replaces `[random]` by the faults it drew on the seed, if that still fails the same way.
    fn freeze(&mut self, plan: &Plan) {
        if !self.doc.contains_key("random") {
            return;
        }
        let mut frozen = self.doc.clone();
        frozen.remove("random");
        let drawn: Vec<Table> = plan
            .faults
            .iter()
            .filter(|f| f.source == FaultSource::Random)
            .map(|f| scripted(f.at, &f.kind))
            .collect();
        let n = drawn.len();
        let faults = array_mut(&mut frozen, "fault");
        faults.extend(drawn.into_iter().map(Value::Table));
        if faults.is_empty() {
            frozen.remove("fault");
        }
        let network = frozen
            .entry("network")
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(network) = network {
            let latency = plan.latency.iter().map(|d| duration(*d)).collect();
            network.insert("latency".into(), Value::Array(latency));
        }
        let mut what = format!(
            "[random]: its {n} fault{} of seed {} frozen into [[fault]] entries, \
             its latency into [network]",
            if n == 1 { "" } else { "s" },
            self.seed
        );
        if plan.loss > 0.0 {
            let _ = write!(what, ", its loss ({:.1}%) dropped", plan.loss * 100.0);
        }
        if self.holds(&frozen) {
            self.doc = frozen;
            self.removed.push(what);
        } else {
            self.notes.push(format!(
                "[random] kept: with its faults frozen the seed no longer fails with {} \
                 (the seed draws more than the faults)",
                self.failure
            ));
        }
    }

    /// Delta debugging over the items of one kind: removes chunks of half the list, then of
    /// halves of that, down to single items, as long as any removal helps.
    fn remove_all(&mut self, kind: Kind) -> bool {
        let mut progress = false;
        let mut chunk = items(&self.doc, kind).len().div_ceil(2).max(1);
        loop {
            let mut helped = false;
            let mut start = 0;
            loop {
                let list = items(&self.doc, kind);
                if start >= list.len() || self.bounded {
                    break;
                }
                let part = &list[start..(start + chunk).min(list.len())];
                let candidate = remove(&self.doc, part);
                if candidate != self.doc && self.holds(&candidate) {
                    let dependents = if kind == Kind::Clients {
                        naming(&self.doc) - naming(&candidate)
                    } else {
                        0
                    };
                    for item in part {
                        self.removed.push(label(&self.doc, *item));
                    }
                    if dependents > 0 {
                        self.removed.push(format!(
                            "  and {dependents} entr{} naming {}",
                            if dependents == 1 { "y" } else { "ies" },
                            if part.len() == 1 { "it" } else { "them" }
                        ));
                    }
                    self.doc = candidate;
                    helped = true;
                    progress = true;
                } else {
                    start += chunk;
                }
            }
            if self.bounded || (!helped && chunk == 1) {
                return progress;
            }
            if !helped {
                chunk = chunk.div_ceil(2);
            }
        }
    }

    /// Lowers every number of one knob: to its least value if that still fails, else by
    /// bisection between the least value and the current one.
    fn lower_all(&mut self, knob: Knob) -> bool {
        let mut progress = false;
        for place in knob.places(&self.doc) {
            let Some(start) = knob.get(&self.doc, place) else {
                continue;
            };
            // `high` always fails the same way; `low` does not (or is the untried least).
            let (mut low, mut high) = (knob.least(), start);
            let mut first = true;
            while low < high && !self.bounded {
                let value = if first { low } else { low + (high - low) / 2 };
                if !first && value == low {
                    break;
                }
                first = false;
                let Some(candidate) = knob.set(&self.doc, place, value) else {
                    break;
                };
                if self.holds(&candidate) {
                    self.doc = candidate;
                    high = value;
                } else {
                    low = value;
                }
            }
            if high != start {
                progress = true;
                self.removed
                    .push(knob.describe(&self.doc, place, start, high));
            }
            if self.bounded {
                break;
            }
        }
        progress
    }
}

/// What delta debugging removes, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Clients,
    Workloads,
    Faults,
    Subscriptions,
    Expectations,
}

const KINDS: [Kind; 5] = [
    Kind::Clients,
    Kind::Workloads,
    Kind::Faults,
    Kind::Subscriptions,
    Kind::Expectations,
];

/// One removable entry of the document, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Client(usize),
    Workload(usize),
    Fault(usize),
    /// `client[i].subscribe[j]`
    Subscribe(usize, usize),
    /// `client[i].unsubscribe[j]`
    Unsubscribe(usize, usize),
    /// `expect.<key>[j]`
    Expect(&'static str, usize),
}

/// The `[expect]` lists whose entries can go.
const EXPECT_LISTS: [&str; 5] = ["receives", "will_reaches", "no_will", "no_loss", "overflow"];

fn items(doc: &Table, kind: Kind) -> Vec<Item> {
    let len = |key: &str| array(doc, key).len();
    match kind {
        Kind::Clients => (0..len("client")).map(Item::Client).collect(),
        Kind::Workloads => (0..len("workload")).map(Item::Workload).collect(),
        Kind::Faults => (0..len("fault")).map(Item::Fault).collect(),
        Kind::Subscriptions => {
            let mut out = Vec::new();
            for (i, c) in array(doc, "client").iter().enumerate() {
                let Some(c) = c.as_table() else { continue };
                out.extend((0..array(c, "subscribe").len()).map(|j| Item::Subscribe(i, j)));
                out.extend((0..array(c, "unsubscribe").len()).map(|j| Item::Unsubscribe(i, j)));
            }
            out
        }
        Kind::Expectations => {
            let Some(expect) = doc.get("expect").and_then(Value::as_table) else {
                return Vec::new();
            };
            EXPECT_LISTS
                .iter()
                .flat_map(|key| (0..array(expect, key).len()).map(|j| Item::Expect(key, j)))
                .collect()
        }
    }
}

/// How many entries of `doc` may name a client: workloads, faults, expectations and random
/// targets.
fn naming(doc: &Table) -> usize {
    let random_targets = doc
        .get("random")
        .map(|r| array_of(r, "targets").len())
        .unwrap_or(0);
    [Kind::Workloads, Kind::Faults, Kind::Expectations]
        .iter()
        .map(|k| items(doc, *k).len())
        .sum::<usize>()
        + random_targets
}

/// `doc` without `items`; a client goes with every entry that names it.
fn remove(doc: &Table, items: &[Item]) -> Table {
    let mut out = doc.clone();
    let mut gone: Vec<Value> = Vec::new();
    // Highest index first, so the others keep theirs.
    let mut sorted = items.to_vec();
    sorted.sort();
    for item in sorted.into_iter().rev() {
        match item {
            Item::Client(i) => gone.push(array_mut(&mut out, "client").remove(i)),
            Item::Workload(i) => {
                array_mut(&mut out, "workload").remove(i);
            }
            Item::Fault(i) => {
                array_mut(&mut out, "fault").remove(i);
            }
            Item::Subscribe(i, j) | Item::Unsubscribe(i, j) => {
                let key = if matches!(item, Item::Subscribe(..)) {
                    "subscribe"
                } else {
                    "unsubscribe"
                };
                if let Some(Value::Table(c)) = array_mut(&mut out, "client").get_mut(i) {
                    array_mut(c, key).remove(j);
                }
            }
            Item::Expect(key, j) => {
                if let Some(Value::Table(e)) = out.get_mut("expect") {
                    array_mut(e, key).remove(j);
                }
            }
        }
    }
    for client in &gone {
        forget_client(&mut out, client);
    }
    for key in ["workload", "fault"] {
        if array(&out, key).is_empty() {
            out.remove(key);
        }
    }
    out
}

/// Removes every workload, fault, expectation and random target naming `client` (a
/// `[[client]]` entry; a template names all its instances).
fn forget_client(doc: &mut Table, client: &Value) {
    let Some(id) = client.get("id").and_then(Value::as_str) else {
        return;
    };
    let names = |v: &Value| mentions(v, id);
    for key in ["workload", "fault"] {
        array_mut(doc, key).retain(|entry| !names(entry));
    }
    if let Some(Value::Table(expect)) = doc.get_mut("expect") {
        for key in EXPECT_LISTS {
            if expect.contains_key(key) {
                array_mut(expect, key).retain(|entry| !names(entry));
            }
        }
    }
    if let Some(Value::Table(random)) = doc.get_mut("random")
        && random.contains_key("targets")
    {
        array_mut(random, "targets").retain(|t| !names(t));
    }
}

/// Whether some string in `value` (at any depth) names the client `id`, or an instance of it
/// if `id` is a template's (`sensor-{n}` names `sensor-7`).
fn mentions(value: &Value, id: &str) -> bool {
    match value {
        Value::String(s) => names_client(s, id),
        Value::Array(a) => a.iter().any(|v| mentions(v, id)),
        Value::Table(t) => t
            .iter()
            .any(|(k, v)| k != "topic" && k != "filter" && k != "payload" && mentions(v, id)),
        _ => false,
    }
}

fn names_client(s: &str, id: &str) -> bool {
    if s == id {
        return true;
    }
    let Some((prefix, suffix)) = id.split_once(crate::scenario::PLACEHOLDER) else {
        return false;
    };
    s.len() > prefix.len() + suffix.len()
        && s.starts_with(prefix)
        && s.ends_with(suffix)
        && s[prefix.len()..s.len() - suffix.len()]
            .chars()
            .all(|c| c.is_ascii_digit())
}

/// A line saying what `item` of `doc` was.
fn label(doc: &Table, item: Item) -> String {
    let entry = |key: &str, i: usize| array(doc, key).get(i).cloned().unwrap_or(Value::from(""));
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    match item {
        Item::Client(i) => {
            let c = entry("client", i);
            match c.get("count").and_then(Value::as_integer) {
                Some(n) => format!("client template {} ({n} clients)", field(&c, "id")),
                None => format!("client {}", field(&c, "id")),
            }
        }
        Item::Workload(i) => {
            let w = entry("workload", i);
            let count = w.get("count").and_then(Value::as_integer).unwrap_or(1);
            format!(
                "workload: {} publishes {count} on {}",
                field(&w, "client"),
                field(&w, "topic")
            )
        }
        Item::Fault(i) => format!("fault {}", inline(&entry("fault", i))),
        Item::Subscribe(i, j) | Item::Unsubscribe(i, j) => {
            let c = entry("client", i);
            let key = if matches!(item, Item::Subscribe(..)) {
                "subscribe"
            } else {
                "unsubscribe"
            };
            let what = array_of(&c, key).get(j).map(|s| field(s, "filter"));
            format!(
                "{key} {} of client {}",
                what.unwrap_or_default(),
                field(&c, "id")
            )
        }
        Item::Expect(key, j) => {
            let e = doc.get("expect").cloned().unwrap_or(Value::from(""));
            let v = array_of(&e, key).get(j).cloned().unwrap_or(Value::from(""));
            format!("expect.{key} {}", inline(&v))
        }
    }
}

/// A value on one line, as TOML writes it inline.
fn inline(v: &Value) -> String {
    match v {
        Value::Table(t) => {
            let parts: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The numbers lowered after removal, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Knob {
    /// `count` of a client template.
    TemplateCount,
    /// `count` of a workload.
    MessageCount,
    /// The run's `duration` (with `faults_until` and `settle` in proportion), in whole
    /// seconds.
    Duration,
    /// `size` of a workload's payloads.
    PayloadSize,
}

const KNOBS: [Knob; 4] = [
    Knob::TemplateCount,
    Knob::MessageCount,
    Knob::Duration,
    Knob::PayloadSize,
];

impl Knob {
    fn least(self) -> i64 {
        1
    }

    /// The entries that have this number (by index; the top level is 0).
    fn places(self, doc: &Table) -> Vec<usize> {
        match self {
            Knob::TemplateCount => (0..array(doc, "client").len()).collect(),
            Knob::MessageCount | Knob::PayloadSize => (0..array(doc, "workload").len()).collect(),
            Knob::Duration => vec![0],
        }
    }

    fn get(self, doc: &Table, place: usize) -> Option<i64> {
        match self {
            Knob::TemplateCount => array(doc, "client").get(place)?.get("count")?.as_integer(),
            Knob::MessageCount => array(doc, "workload")
                .get(place)
                .map(|w| w.get("count").and_then(Value::as_integer).unwrap_or(1)),
            Knob::PayloadSize => array(doc, "workload").get(place)?.get("size")?.as_integer(),
            Knob::Duration => {
                let d = parse_duration(doc.get("duration")?.as_str()?).ok()?;
                i64::try_from(d.as_millis().div_ceil(1_000)).ok()
            }
        }
    }

    /// `doc` with the number at `place` set to `value`.
    fn set(self, doc: &Table, place: usize, value: i64) -> Option<Table> {
        let mut out = doc.clone();
        match self {
            Knob::TemplateCount | Knob::MessageCount | Knob::PayloadSize => {
                let key = if self == Knob::TemplateCount {
                    "client"
                } else {
                    "workload"
                };
                let field = if self == Knob::PayloadSize {
                    "size"
                } else {
                    "count"
                };
                let entry = array_mut(&mut out, key).get_mut(place)?.as_table_mut()?;
                entry.insert(field.into(), Value::Integer(value));
            }
            Knob::Duration => {
                let old = parse_duration(doc.get("duration")?.as_str()?).ok()?;
                let new = Duration::from_secs(value as u64);
                let scale = |key: &str, out: &mut Table| -> Option<()> {
                    if let Some(v) = doc.get(key).and_then(Value::as_str) {
                        let part = parse_duration(v).ok()?.as_millis() * new.as_millis()
                            / old.as_millis().max(1);
                        out.insert(key.into(), duration(Duration::from_millis(part as u64)));
                    }
                    Some(())
                };
                out.insert("duration".into(), duration(new));
                scale("faults_until", &mut out)?;
                scale("settle", &mut out)?;
            }
        }
        Some(out)
    }

    fn describe(self, doc: &Table, place: usize, from: i64, to: i64) -> String {
        let id = |key: &str, field: &str| {
            array(doc, key)
                .get(place)
                .and_then(|e| e.get(field))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        match self {
            Knob::TemplateCount => format!(
                "client template {}: count {from} -> {to}",
                id("client", "id")
            ),
            Knob::MessageCount => format!(
                "workload ({} on {}): count {from} -> {to}",
                id("workload", "client"),
                id("workload", "topic")
            ),
            Knob::PayloadSize => format!(
                "workload ({} on {}): size {from} -> {to} bytes",
                id("workload", "client"),
                id("workload", "topic")
            ),
            Knob::Duration => format!(
                "duration {} -> {}",
                format_duration(Duration::from_secs(from as u64)),
                format_duration(Duration::from_secs(to as u64))
            ),
        }
    }
}

/// A `[[fault]]` entry for a planned fault.
fn scripted(at: Duration, kind: &FaultKind) -> Table {
    let mut t = Table::new();
    t.insert("at".into(), duration(at));
    let table = |pairs: Vec<(&str, Value)>| {
        Value::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    let s = |s: &str| Value::String(s.to_string());
    let (key, value) = match kind {
        FaultKind::Cut { client } => ("cut", s(client)),
        FaultKind::Restart { client } => ("restart", s(client)),
        FaultKind::Blackhole {
            client,
            duration: d,
        } => (
            "blackhole",
            table(vec![("client", s(client)), ("for", duration(*d))]),
        ),
        FaultKind::Delay {
            client,
            extra,
            duration: d,
        } => (
            "delay",
            table(vec![
                ("client", s(client)),
                ("extra", duration(*extra)),
                ("for", duration(*d)),
            ]),
        ),
        FaultKind::SplitWrites {
            client,
            max_fragment,
            duration: d,
        } => (
            "split_writes",
            table(vec![
                ("client", s(client)),
                ("max_fragment", Value::Integer(i64::from(*max_fragment))),
                ("for", duration(*d)),
            ]),
        ),
        FaultKind::Partition {
            from,
            to,
            oneway,
            duration: d,
        } => (
            "partition",
            table(vec![
                ("between", Value::Array(vec![s(from.name()), s(to.name())])),
                ("oneway", Value::Boolean(*oneway)),
                ("for", duration(*d)),
            ]),
        ),
        FaultKind::Crash {
            client,
            restart_after,
        }
        | FaultKind::PowerOff {
            client,
            restart_after,
        } => {
            if let Some(r) = restart_after {
                t.insert("restart_after".into(), duration(*r));
            }
            (kind.name(), s(client))
        }
        FaultKind::CrashBroker {
            restart_after,
            in_sync,
        } => (
            "crash_broker",
            table(vec![
                ("restart_after", duration(*restart_after)),
                ("in_sync", Value::Boolean(*in_sync)),
            ]),
        ),
        FaultKind::Pause { node, duration: d } => (
            "pause",
            table(vec![("node", s(node.name())), ("for", duration(*d))]),
        ),
        FaultKind::SyncError { duration: d } => ("sync_error", table(vec![("for", duration(*d))])),
        FaultKind::DiskFull { duration: d } => ("disk_full", table(vec![("for", duration(*d))])),
        FaultKind::SlowSync {
            latency,
            duration: d,
        } => (
            "slow_sync",
            table(vec![("latency", duration(*latency)), ("for", duration(*d))]),
        ),
    };
    t.insert(key.into(), value);
    t
}

fn duration(d: Duration) -> Value {
    Value::String(format_duration(d))
}

/// The array at `key` of a table value, or nothing.
fn array_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn array<'a>(t: &'a Table, key: &str) -> &'a [Value] {
    t.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The array at `key`, created empty if missing (a non-array value is replaced: only arrays
/// are ever asked for where the format has arrays).
fn array_mut<'a>(t: &'a mut Table, key: &str) -> &'a mut Vec<Value> {
    let slot = t
        .entry(key.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

/// The default output: `<stem>-seed-<N>.shrunk.toml` in the current directory.
pub fn default_out(scenario: &Path, seed: u64) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    PathBuf::from(format!("{stem}-seed-{seed}.shrunk.toml"))
}

/// `shrink` with the world given: shrinks the file, writes the result to `--out`, prints the
/// report to `out`; returns the exit code (0), or an error (nothing written).
pub fn shrink_with<W>(args: &ShrinkArgs, world: W, out: &mut dyn Write) -> Result<i32, String>
where
    W: Fn(&Scenario, u64) -> RunOutcome,
{
    let path = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| format!("{path}: cannot read the scenario: {e}"))?;
    let settings = Settings {
        max_runs: args.max_runs,
        checker: args.checker.clone(),
    };
    let shrunk = shrink(&text, &path, args.seed, &settings, world)?;
    let file = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.scenario, args.seed));
    std::fs::write(&file, &shrunk.text)
        .map_err(|e| format!("{}: cannot write the shrunk scenario: {e}", file.display()))?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "shrink {path} seed {}: fails with {}",
        args.seed, shrunk.failure
    );
    let _ = writeln!(report, "removed ({}):", shrunk.removed.len());
    for r in &shrunk.removed {
        let _ = writeln!(report, "  {r}");
    }
    for n in &shrunk.notes {
        let _ = writeln!(report, "note: {n}");
    }
    let _ = writeln!(report, "before: {}", shrunk.before);
    let _ = writeln!(report, "after:  {}", shrunk.after);
    let _ = writeln!(report, "runs: {} of at most {}", shrunk.runs, args.max_runs);
    let _ = writeln!(report, "wrote {}", file.display());
    let _ = writeln!(
        report,
        "replay: {}",
        replay_command(&file.display().to_string(), args.seed)
    );
    out.write_all(report.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    Ok(crate::cli::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Violation;
    use crate::cli::lab::verdict::tests::outcome;

    /// Four clients (one a template of three), workloads, scripted and random faults,
    /// expectations.
    const STORY: &str = r#"
# The comment the shrunk file does not keep.
name = "many things"
protocol = "3.1.1"
duration = "40s"
faults_until = "20s"

[[client]]
id = "monitor"
subscribe = [{ filter = "sensors/#", qos = 1 }, { filter = "status/#", qos = 0 }]

[[client]]
id = "bystander"
subscribe = [{ filter = "sensors/#", qos = 0 }]
will = { topic = "status/bystander", qos = 1 }

[[client]]
count = 3
id = "sensor-{n}"

[[client]]
id = "culprit"

[[workload]]
client = "sensor-{n}"
topic = "sensors/{n}/temp"
qos = 1
count = 50
size = 64

[[workload]]
client = "culprit"
topic = "sensors/culprit"
qos = 1
count = 200
size = 100

[[fault]]
at = "5s"
cut = "bystander"

[[fault]]
at = "6s"
crash = "culprit"
restart_after = "1s"

[[fault]]
at = "7s"
partition = { between = ["sensor-2", "broker"], for = "2s" }

[random]
cuts_per_minute = [2, 6]
swarm = false

[expect]
checkers = ["delivery", "ordering"]
will_reaches = [{ client = "bystander", subscriber = "monitor" }]
"#;

    /// A normative tag as violations carry it (spelt in two pieces, so that the conformance
    /// matrix does not take this test for one that checks the statement).
    const RULE: &str = concat!("[MQTT-", "4.3.3-1]");

    /// A world that fails iff client `culprit` publishes at least 10 messages: a delivery
    /// violation naming a rule, beside an ordering one without rule when `monitor` exists.
    fn fake(s: &Scenario, seed: u64) -> RunOutcome {
        let mut out = outcome(seed, RunStatus::Completed, 0);
        let culprit: u32 = s
            .workloads
            .iter()
            .filter(|w| w.client == "culprit")
            .map(|w| w.count)
            .sum();
        if culprit >= 10 {
            out.violations.push(Violation {
                checker: "delivery",
                at_us: 2,
                message: format!("culprit#1 delivered twice {RULE}"),
            });
            if s.client("monitor").is_some() {
                out.violations.push(Violation {
                    checker: "ordering",
                    at_us: 1,
                    message: "monitor received culprit#3 before culprit#2".into(),
                });
            }
        }
        out
    }

    #[test]
    fn rules_are_the_normative_tag_or_the_trailing_one() {
        assert_eq!(
            rule(concat!(
                "x got y twice [MQTT-",
                "4.3.3-1] and [MQTT-",
                "4.3.3-2]"
            )),
            Some(RULE.into())
        );
        assert_eq!(
            rule("monitor: at least 3, got 1 (receives)"),
            Some("(receives)".into())
        );
        assert_eq!(
            rule("lost qos1 message a#1 (no_loss)"),
            Some("(no_loss)".into())
        );
        assert_eq!(rule("monitor never received sensor-1#1"), None);
        assert_eq!(rule("gone (a broker crash without persistence)"), None);
    }

    #[test]
    fn a_world_failing_on_one_client_shrinks_to_that_client() {
        let shrunk = shrink(STORY, "story.toml", 7, &Settings::default(), fake).unwrap();
        let s = Scenario::from_str(&shrunk.text, "shrunk.toml").unwrap();
        let ids: Vec<&str> = s.clients.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["culprit"], "{}", shrunk.text);
        assert_eq!(s.workloads.len(), 1);
        assert_eq!(s.workloads[0].count, 10, "the least count that still fails");
        assert_eq!(s.workloads[0].size, Some(1), "payloads as small as they go");
        assert!(s.faults.is_empty() && s.random.is_none(), "{}", shrunk.text);
        assert!(s.expect.will_reaches.is_empty());
        assert!(s.duration < Duration::from_secs(40));
        assert_eq!(
            shrunk.failure,
            Failure::Violated(Mark {
                checker: "delivery".into(),
                rule: Some(RULE.into()),
            })
        );
        assert!(
            fake(&s, 7)
                .violations
                .iter()
                .any(|v| v.checker == "delivery")
        );
        assert_eq!(shrunk.before.clients, 6);
        assert_eq!(shrunk.before.messages, 350);
        assert_eq!(shrunk.after.clients, 1);
        assert_eq!(shrunk.after.faults, 0);
        assert!(shrunk.after.smaller_than(&shrunk.before));
        assert!(!shrunk.bounded);
        let header = shrunk.text.split("\n\n").next().unwrap();
        assert!(header.contains("from story.toml, seed 7"), "{header}");
        assert!(header.contains("#   client monitor\n"), "{header}");
        assert!(header.contains("frozen into [[fault]] entries"), "{header}");
        assert!(
            !shrunk.text.contains("The comment"),
            "comments are not kept"
        );
    }

    #[test]
    fn a_client_goes_with_every_entry_naming_it() {
        let doc: Table = toml::from_str(STORY).unwrap();
        let bystander = remove(&doc, &[Item::Client(1)]);
        assert_eq!(array(&bystander, "fault").len(), 2, "its cut goes");
        let expect = bystander["expect"].as_table().unwrap();
        assert!(array(expect, "will_reaches").is_empty());
        let template = remove(&doc, &[Item::Client(2)]);
        assert_eq!(
            array(&template, "workload").len(),
            1,
            "its instances' workload"
        );
        assert_eq!(
            array(&template, "fault").len(),
            2,
            "the partition of its instance sensor-2"
        );
        assert!(
            Scenario::from_str(&toml::to_string(&template).unwrap(), "t").is_ok(),
            "what is left is a valid scenario"
        );
    }

    #[test]
    fn the_same_input_gives_the_same_file() {
        let a = shrink(STORY, "story.toml", 7, &Settings::default(), fake).unwrap();
        let b = shrink(STORY, "story.toml", 7, &Settings::default(), fake).unwrap();
        assert_eq!(a.text, b.text);
        assert_eq!(a.runs, b.runs);
        assert_eq!(a.removed, b.removed);
    }

    #[test]
    fn the_run_budget_bounds_the_shrink_and_is_reported() {
        let full = shrink(STORY, "story.toml", 7, &Settings::default(), fake).unwrap();
        let runs = std::cell::Cell::new(0);
        let counting = |s: &Scenario, seed: u64| {
            runs.set(runs.get() + 1);
            fake(s, seed)
        };
        let five = Settings {
            max_runs: 5,
            checker: None,
        };
        let bounded = shrink(STORY, "story.toml", 7, &five, counting).unwrap();
        assert_eq!(runs.get(), 5, "the original's run and four candidates");
        assert!(bounded.bounded && bounded.runs == 5);
        assert!(bounded.notes.iter().any(|n| n.contains("bound of 5")));
        assert!(bounded.text.contains("# Note: stopped at the bound of 5"));
        assert!(full.runs > 5 && !full.bounded);
        let s = Scenario::from_str(&bounded.text, "b").unwrap();
        assert!(!fake(&s, 7).passed(), "a bounded result still fails");
    }

    #[test]
    fn another_violation_is_not_the_same_failure() {
        // Fails with ordering first; delivery alone is not the same failure, so the
        // monitor, whose absence leaves only delivery, stays.
        let ordering_first = |s: &Scenario, seed| {
            let mut out = fake(s, seed);
            out.violations.sort_by_key(|v| v.checker != "ordering");
            out
        };
        let shrunk = shrink(STORY, "story.toml", 7, &Settings::default(), ordering_first).unwrap();
        let s = Scenario::from_str(&shrunk.text, "s").unwrap();
        assert!(s.client("monitor").is_some(), "{}", shrunk.text);
        assert!(s.client("culprit").is_some());
        assert_eq!(s.clients.len(), 2);

        // Told to keep the delivery violation, it lets the monitor go.
        let delivery = Settings {
            checker: Some("delivery".into()),
            ..Settings::default()
        };
        let shrunk = shrink(STORY, "story.toml", 7, &delivery, ordering_first).unwrap();
        let s = Scenario::from_str(&shrunk.text, "s").unwrap();
        let ids: Vec<&str> = s.clients.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["culprit"], "{}", shrunk.text);

        let acl = Settings {
            checker: Some("acl".into()),
            ..Settings::default()
        };
        let err = shrink(STORY, "story.toml", 7, &acl, ordering_first).unwrap_err();
        assert!(
            err.contains("checker \"acl\" reports nothing (violations by delivery, ordering)"),
            "{err}"
        );
    }

    #[test]
    fn a_passing_seed_is_refused_and_nothing_is_written() {
        let passing = |_: &Scenario, seed| outcome(seed, RunStatus::Completed, 0);
        let err = shrink(STORY, "story.toml", 7, &Settings::default(), passing).unwrap_err();
        assert!(err.contains("does not fail on seed 7"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("story.toml");
        std::fs::write(&file, STORY).unwrap();
        let out = dir.path().join("out.toml");
        let args = ShrinkArgs {
            scenario: file,
            seed: 7,
            out: Some(out.clone()),
            max_runs: MAX_RUNS,
            checker: None,
        };
        let mut report = Vec::new();
        assert!(shrink_with(&args, passing, &mut report).is_err());
        assert!(!out.exists(), "nothing written");
        let code = shrink_with(&args, fake, &mut report).unwrap();
        assert_eq!(code, 0);
        let report = String::from_utf8(report).unwrap();
        assert!(out.exists());
        assert!(
            report.contains("before: 6 clients, 4 faults, 350 messages, 40s\n"),
            "{report}"
        );
        assert!(
            report.contains("after:  1 client, 0 faults, 10 messages,"),
            "{report}"
        );
        assert!(
            report.ends_with(&format!(
                "replay: cargo sim-run replay {} --seed 7\n",
                out.display()
            )),
            "{report}"
        );
    }

    #[test]
    fn a_template_count_is_lowered_to_the_instance_that_fails() {
        // Fails iff sensor-2 of the template exists (and some fault is scripted, so the
        // frozen faults must stay).
        let world = |s: &Scenario, seed| {
            let fails = s.client("sensor-2").is_some() && !s.faults.is_empty();
            outcome(seed, RunStatus::Completed, usize::from(fails))
        };
        let shrunk = shrink(STORY, "story.toml", 7, &Settings::default(), world).unwrap();
        let s = Scenario::from_str(&shrunk.text, "s").unwrap();
        let ids: Vec<&str> = s.clients.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["sensor-1", "sensor-2"], "{}", shrunk.text);
        assert_eq!(
            s.faults.len(),
            1,
            "one fault is all it needs: {}",
            shrunk.text
        );
        assert!(
            shrunk
                .removed
                .iter()
                .any(|r| r == "client template sensor-{n}: count 3 -> 2"),
            "{:#?}",
            shrunk.removed
        );
    }

    #[test]
    fn random_faults_stay_when_the_frozen_ones_do_not_fail() {
        // Fails only while [random] is there: the freeze is refused and said so.
        let world = |s: &Scenario, seed| {
            outcome(seed, RunStatus::Completed, usize::from(s.random.is_some()))
        };
        let shrunk = shrink(STORY, "story.toml", 7, &Settings::default(), world).unwrap();
        let s = Scenario::from_str(&shrunk.text, "s").unwrap();
        assert!(s.random.is_some(), "{}", shrunk.text);
        assert_eq!(
            s.clients.len(),
            1,
            "the rest still shrinks: {}",
            shrunk.text
        );
        assert!(shrunk.notes.iter().any(|n| n.starts_with("[random] kept")));
        assert!(shrunk.text.contains("# Note: [random] kept"));
    }

    #[test]
    fn shrink_flags_and_the_real_network_build() {
        use crate::cli::{Cli, Command, EXIT_USAGE};
        use clap::Parser;
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("mqtt-lab").chain(args.iter().copied()))
                .map(|c| c.command)
        };
        let Ok(Command::Shrink(a)) = parse(&["shrink", "dir/x.toml", "--seed", "9"]) else {
            panic!("shrink parses");
        };
        assert_eq!(
            (a.seed, a.max_runs, a.out, a.checker),
            (9, MAX_RUNS, None, None)
        );
        assert_eq!(
            default_out(&a.scenario, 9),
            PathBuf::from("x-seed-9.shrunk.toml"),
            "in the current directory"
        );
        let Ok(Command::Shrink(a)) = parse(&[
            "shrink",
            "x.toml",
            "--seed",
            "2",
            "--out",
            "o.toml",
            "--max-runs",
            "40",
            "--checker",
            "will",
        ]) else {
            panic!("shrink parses");
        };
        assert_eq!(a.out, Some(PathBuf::from("o.toml")));
        assert_eq!((a.max_runs, a.checker.as_deref()), (40, Some("will")));
        assert!(parse(&["shrink", "x.toml"]).is_err(), "--seed is required");
        if !cfg!(madsim) {
            assert_eq!(crate::cli::lab::shrink(a), EXIT_USAGE);
        }
    }

    #[test]
    fn frozen_random_faults_are_the_plan_s_faults() {
        let s = Scenario::from_str(STORY, "story.toml").unwrap();
        let plan = s.plan(7);
        let mut doc: Table = toml::from_str(STORY).unwrap();
        doc.remove("random");
        let drawn: Vec<Value> = plan
            .faults
            .iter()
            .filter(|f| f.source == FaultSource::Random)
            .map(|f| Value::Table(scripted(f.at, &f.kind)))
            .collect();
        assert!(!drawn.is_empty());
        array_mut(&mut doc, "fault").extend(drawn);
        let frozen = Scenario::from_str(&toml::to_string(&doc).unwrap(), "f").unwrap();
        let kinds = |p: &Plan| -> Vec<(Duration, FaultKind)> {
            p.faults.iter().map(|f| (f.at, f.kind.clone())).collect()
        };
        let mut want = kinds(&plan);
        let mut got = kinds(&frozen.plan(7));
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn every_fault_kind_freezes_into_a_valid_entry() {
        use crate::scenario::Node;
        let ms = Duration::from_millis;
        let kinds = [
            FaultKind::Cut { client: "a".into() },
            FaultKind::Restart { client: "a".into() },
            FaultKind::Blackhole {
                client: "a".into(),
                duration: ms(1500),
            },
            FaultKind::Delay {
                client: "a".into(),
                extra: ms(40),
                duration: ms(2000),
            },
            FaultKind::SplitWrites {
                client: "a".into(),
                max_fragment: 3,
                duration: ms(900),
            },
            FaultKind::Partition {
                from: Node::Broker,
                to: Node::Client("a".into()),
                oneway: true,
                duration: ms(1234),
            },
            FaultKind::Crash {
                client: "a".into(),
                restart_after: Some(ms(300)),
            },
            FaultKind::PowerOff {
                client: "a".into(),
                restart_after: None,
            },
            FaultKind::CrashBroker {
                restart_after: ms(700),
                in_sync: true,
            },
            FaultKind::Pause {
                node: Node::Broker,
                duration: ms(100),
            },
            FaultKind::SyncError { duration: ms(200) },
            FaultKind::DiskFull { duration: ms(500) },
            FaultKind::SlowSync {
                latency: ms(20),
                duration: ms(1000),
            },
        ];
        for kind in kinds {
            let mut doc: Table = toml::from_str(
                "name = \"k\"\nprotocol = \"3.1.1\"\nduration = \"30s\"\n\
                 [broker]\npersistence = \"durable\"\n[[client]]\nid = \"a\"\n\
                 [expect]\ncheckers = [\"delivery\"]\n",
            )
            .unwrap();
            array_mut(&mut doc, "fault").push(Value::Table(scripted(ms(2500), &kind)));
            let s = Scenario::from_str(&toml::to_string(&doc).unwrap(), "k")
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            let planned = &s.plan(1).faults;
            assert_eq!(planned.len(), 1, "{kind}");
            assert_eq!((planned[0].at, &planned[0].kind), (ms(2500), &kind));
        }
    }
}
