//! The black-box conformance suite: checks that judge any broker over real TCP, statement by
//! statement (`mqtt-lab conformance --target HOST:PORT`).
//!
//! Each [`Check`] names the statements it judges in each version and runs once per version it
//! has statements for, with a [`Probe`]: connections that speak through our codec or send raw
//! bytes (bad flags, wrong lengths, protocol violations), every packet both ways kept in a
//! transcript, every wait bounded by [`Settings::wait`]. A result is pass, fail (with the
//! transcript and the statements' words), not applicable (an optional feature the broker
//! declines), undecided (with why) or skipped (a setting it needs was not given, with what to
//! configure). Each check leaves nothing behind: the retained messages and sessions it may have
//! created are removed after it.
//!
//! Checks run in parallel ([`Settings::parallel`]); each uses client identifiers and topics of
//! its own (`mqtt-lab-conformance/<run>/<check>/...`).

mod checks;
pub mod probe;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::codec::Protocol;

pub use probe::{Conn, Fault, Got, Probe};

use super::Spec;

/// A setting of the broker under test that some checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    /// A user name and password the broker accepts (`--user`, `--password`).
    User,
    /// A topic the configured user (or an anonymous client) may not publish to
    /// (`--denied-topic`).
    DeniedTopic,
}

impl Need {
    /// What to configure, with mosquitto's option names.
    pub fn how(self) -> &'static str {
        match self {
            Need::User => {
                "give --user and --password of a user the broker accepts (mosquitto: `password_file` with a user made by mosquitto_passwd, `allow_anonymous false`)"
            }
            Need::DeniedTopic => {
                "give --denied-topic, a topic the client may not publish to (mosquitto: `acl_file` with `topic read TOPIC` for that user, or `pattern read ...`)"
            }
        }
    }
}

/// What the broker under test is configured with, and how the suite runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Credentials every check's CONNECT carries.
    pub user: Option<(String, String)>,
    pub denied_topic: Option<String>,
    /// How long to wait for an answer the broker owes at once (and for a close it owes).
    pub wait: Duration,
    /// Checks run at once.
    pub parallel: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            user: None,
            denied_topic: None,
            wait: Duration::from_secs(3),
            parallel: 8,
        }
    }
}

impl Settings {
    fn has(&self, need: Need) -> bool {
        match need {
            Need::User => self.user.is_some(),
            Need::DeniedTopic => self.denied_topic.is_some(),
        }
    }
}

/// How a check ended when it did not fail (a failure is its `Err`, a [`Fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// An optional feature the broker declines, or a choice the statement leaves to it.
    NotApplicable(String),
    /// The broker's answer does not decide the statement either way.
    Undecided(String),
}

/// One black-box check.
#[derive(Clone, Copy)]
pub struct Check {
    /// Short, unique, kebab-case: `pingreq-reserved-flags`.
    pub name: &'static str,
    /// What it does, in a sentence.
    pub about: &'static str,
    /// The MQTT 3.1.1 statements it judges; empty: it does not run under 3.1.1.
    pub v3: &'static [&'static str],
    /// The MQTT 5.0 statements it judges; empty: it does not run under 5.0.
    pub v5: &'static [&'static str],
    pub needs: &'static [Need],
    pub run: fn(&mut Probe) -> Result<Outcome, Fault>,
}

impl Check {
    /// The statements it judges in `spec`.
    pub fn statements(&self, spec: Spec) -> &'static [&'static str] {
        match spec {
            Spec::V3_1_1 => self.v3,
            Spec::V5_0 => self.v5,
        }
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

/// Every check, in the order they run and report.
pub fn checks() -> &'static [Check] {
    checks::all()
}

/// The specification of a protocol version (3.1 is judged as 3.1.1).
pub fn spec_of(protocol: Protocol) -> Spec {
    if protocol.is_v5() {
        Spec::V5_0
    } else {
        Spec::V3_1_1
    }
}

/// A check's result in one version.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub protocol: &'static str,
    pub statements: &'static [&'static str],
    pub result: Verdict,
    /// Why, for anything but a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Every packet both ways, for anything but a pass or a skip.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
    pub millis: u64,
}

/// The kind of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    NotApplicable,
    Undecided,
    Skipped,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "n/a",
            Verdict::Undecided => "undecided",
            Verdict::Skipped => "skipped",
        }
    }
}

/// Which checks a run takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these versions (empty: both).
    pub protocols: Vec<Protocol>,
    /// Only checks whose name or one of whose statements contains one of these (empty: all).
    pub only: Vec<String>,
}

impl Selection {
    fn takes(&self, check: &Check, protocol: Protocol) -> bool {
        let spec = spec_of(protocol);
        !check.statements(spec).is_empty()
            && (self.protocols.is_empty() || self.protocols.contains(&protocol))
            && (self.only.is_empty()
                || self.only.iter().any(|o| {
                    check.name.contains(o.as_str())
                        || check
                            .statements(spec)
                            .iter()
                            .any(|s| s.contains(o.as_str()))
                }))
    }
}

/// Runs the selected checks against `target`.
pub fn run(
    target: SocketAddr,
    settings: &Settings,
    selection: &Selection,
    mut progress: impl FnMut(&CheckResult) + Send,
) -> Vec<CheckResult> {
    let mut jobs: Vec<(usize, &'static Check, Protocol)> = Vec::new();
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        for check in checks() {
            if selection.takes(check, protocol) {
                jobs.push((jobs.len(), check, protocol));
            }
        }
    }
    let tag = run_tag();
    let queue = Mutex::new(jobs.clone().into_iter());
    let done: Mutex<Vec<(usize, CheckResult)>> = Mutex::new(Vec::new());
    let progress = Mutex::new(&mut progress);
    std::thread::scope(|s| {
        for _ in 0..settings.parallel.clamp(1, 64) {
            s.spawn(|| {
                // Each turn takes one job off a finite queue.
                loop {
                    let Some((n, check, protocol)) =
                        queue.lock().map(|mut q| q.next()).ok().flatten()
                    else {
                        return;
                    };
                    let result =
                        run_one(target, settings, &format!("{tag}{n:03}"), check, protocol);
                    if let Ok(mut p) = progress.lock() {
                        (*p)(&result);
                    }
                    if let Ok(mut d) = done.lock() {
                        d.push((n, result));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(n, _)| *n);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Six characters `[0-9a-z]` that differ between runs, so that two runs against one broker
/// (or a run and what an earlier one left) never share a client identifier or a topic.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        ^ u128::from(std::process::id()) << 64;
    let mut n = (nanos % 36u128.pow(6)) as u64;
    let mut s = String::new();
    for _ in 0..6 {
        s.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

/// One check in one version: skipped when a setting is missing; otherwise run, then cleaned
/// up after.
pub fn run_one(
    target: SocketAddr,
    settings: &Settings,
    tag: &str,
    check: &'static Check,
    protocol: Protocol,
) -> CheckResult {
    let spec = spec_of(protocol);
    let statements = check.statements(spec);
    let start = Instant::now();
    let missing: Vec<&str> = check
        .needs
        .iter()
        .filter(|n| !settings.has(**n))
        .map(|n| n.how())
        .collect();
    if !missing.is_empty() {
        return CheckResult {
            check: check.name,
            protocol: spec.name(),
            statements,
            result: Verdict::Skipped,
            why: Some(missing.join("; ")),
            transcript: Vec::new(),
            millis: 0,
        };
    }
    let mut probe = Probe::new(target, protocol, settings, tag.to_string(), check.name);
    let outcome = (check.run)(&mut probe);
    probe.clean_up();
    let (result, why) = match outcome {
        Ok(Outcome::Pass) => (Verdict::Pass, None),
        Err(f) => (Verdict::Fail, Some(f)),
        Ok(Outcome::NotApplicable(w)) => (Verdict::NotApplicable, Some(w)),
        Ok(Outcome::Undecided(w)) => (Verdict::Undecided, Some(w)),
    };
    CheckResult {
        check: check.name,
        protocol: spec.name(),
        statements,
        result,
        why,
        transcript: if result == Verdict::Pass {
            Vec::new()
        } else {
            probe.transcript()
        },
        millis: start.elapsed().as_millis() as u64,
    }
}
