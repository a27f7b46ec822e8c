//! [`Scenario`]: a whole scenario file, loaded from TOML and validated. Not here: the checks
//! (`validate.rs`) or the seeded plan (`plan.rs`).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::broker::BrokerConfig;
use super::client::ClientConfig;
use super::duration::{de_duration, de_opt_duration};
use super::error::{Problem, ScenarioError, line_of, offset_of, path_at};
use super::expect::Expect;
use super::fault::{FaultSpec, PlannedFault};
use super::random::{NetworkConfig, RandomFaults};
use super::validate;
use super::values::ProtocolVersion;
use super::workload::Workload;

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
    pub protocol: ProtocolVersion,
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
    /// `[broker]`.
    #[serde(default)]
    pub broker: BrokerConfig,
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
    /// Where the scenario came from (a path or a name given to `from_str`).
    #[serde(skip)]
    origin: String,
    /// `faults`, resolved and in time order.
    #[serde(skip)]
    scripted: Vec<PlannedFault>,
    /// The broker's users (hashed) and ACL, built once from `[broker]`.
    #[serde(skip)]
    auth: crate::broker::auth::Auth,
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
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let invalid = |problems: Vec<Problem>| ScenarioError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        let root = match toml::de::DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                return Err(invalid(vec![Problem {
                    field: String::new(),
                    line: e.span().map(|s| line_of(text, s.start)),
                    reason: e.message().trim().to_string(),
                }]));
            }
        };
        let mut scenario: Scenario = match toml::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                let (field, line) = match e.span() {
                    Some(span) => (
                        path_at(root.get_ref(), &span),
                        Some(line_of(text, span.start)),
                    ),
                    None => (String::new(), None),
                };
                return Err(invalid(vec![Problem {
                    field,
                    line,
                    reason: e.message().trim().to_string(),
                }]));
            }
        };
        scenario.origin = origin.to_string();
        match validate::validate(&scenario) {
            Ok(scripted) => {
                scenario.scripted = scripted;
                // Validation parsed the ACL and checked the user names already.
                scenario.auth = super::broker::broker_auth(&scenario.broker).map_err(|e| {
                    invalid(vec![Problem {
                        field: "broker.acl".to_string(),
                        line: offset_of(root.get_ref(), "broker.acl").map(|o| line_of(text, o)),
                        reason: e.to_string(),
                    }])
                })?;
                Ok(scenario)
            }
            Err(found) => Err(invalid(
                found
                    .into_iter()
                    .map(|(field, reason)| Problem {
                        line: offset_of(root.get_ref(), &field).map(|o| line_of(text, o)),
                        field,
                        reason,
                    })
                    .collect(),
            )),
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

    /// The broker's password file (users hashed) and ACL, as `[broker]` configures them.
    pub fn auth(&self) -> &crate::broker::auth::Auth {
        &self.auth
    }

    /// The client with this id.
    pub fn client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// The effective protocol of a client.
    pub fn client_protocol(&self, client: &ClientConfig) -> ProtocolVersion {
        client.protocol_or(self.protocol)
    }
}
