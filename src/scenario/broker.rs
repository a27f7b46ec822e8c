//! The `[broker]` section: the broker core's configuration — the very table `broker.toml` has
//! under `[broker]`, with the same fields, defaults and checks ([`BrokerConfig`]) — plus what
//! only the lab gives a broker: what survives a crash, users with plain passwords, and ACL text.
//! Every field has a default, so the section may be left out. Not here: how the broker enforces
//! the limits, or turning users and ACL into the broker's `Auth` (the simulator does, once).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use super::checks::Checks;
use super::values::de_opt_duration;
use crate::broker::BrokerConfig;
use crate::config::file::{Document, Problem};
pub use crate::trace::Persistence;

/// `[broker]`: settings of the broker node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokerSection {
    /// The broker core's limits and policies, as in `broker.toml`.
    pub config: BrokerConfig,
    /// What survives a broker crash. Default `"none"`.
    pub persistence: Persistence,
    /// Users allowed to log in with a password. Default: none (no password file: a client
    /// giving a user name is treated as anonymous).
    pub users: Vec<UserConfig>,
    /// Access control rules, in the syntax of the broker's ACL file. Default: none
    /// (everything is allowed).
    pub acl: Option<String>,
    /// How long a sync of the broker's simulated disk takes (persistence `durable`); a crash
    /// can land inside it. Default [`DEFAULT_SYNC_LATENCY`] (see [`BrokerSection::sync_latency`]).
    pub sync_latency: Option<Duration>,
}

/// A sync of the simulated disk when `[broker] sync_latency` is not given: a fast SSD's flush.
pub const DEFAULT_SYNC_LATENCY: Duration = Duration::from_millis(1);
/// The slowest sync a scenario may ask for.
pub const MAX_SYNC_LATENCY: Duration = Duration::from_secs(10);

/// `users = [{ name = "alice", password = "..." }]`: one user of the password file. The
/// password is plain text: a scenario is a test fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
}

/// The fields of `[broker]` that only a scenario has.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LabFields {
    persistence: Persistence,
    users: Vec<UserConfig>,
    acl: Option<String>,
    #[serde(deserialize_with = "de_opt_duration")]
    sync_latency: Option<Duration>,
}

const LAB_FIELDS: [&str; 4] = ["persistence", "users", "acl", "sync_latency"];

impl BrokerSection {
    /// Reads `[broker]` (`table`, a table of `doc`): the lab's fields, and the rest as the
    /// broker core's configuration.
    pub(crate) fn read<'t>(
        doc: &Document<'t>,
        table: Spanned<DeTable<'t>>,
    ) -> Result<BrokerSection, Vec<Problem>> {
        let span = table.span();
        let mut core = table.into_inner();
        let mut lab = DeTable::new();
        for name in LAB_FIELDS {
            if let Some((key, value)) = core.remove_entry(name) {
                lab.insert(key, value);
            }
        }
        let config = doc
            .read::<BrokerConfig>(
                Spanned::new(span.clone(), core),
                &crate::broker::config::RENAMED_FIELDS,
            )
            .map_err(|mut problems| {
                for p in &mut problems {
                    if p.reason.starts_with("unknown field") {
                        p.reason
                            .push_str(", or one of `persistence`, `users`, `acl`, `sync_latency`");
                    }
                }
                problems
            });
        let lab = doc.read::<LabFields>(Spanned::new(span, lab), &[]);
        match (config, lab) {
            (Ok(config), Ok(lab)) => Ok(BrokerSection {
                config,
                persistence: lab.persistence,
                users: lab.users,
                acl: lab.acl,
                sync_latency: lab.sync_latency,
            }),
            (config, lab) => {
                let mut problems = config.err().unwrap_or_default();
                problems.extend(lab.err().unwrap_or_default());
                Err(problems)
            }
        }
    }

    /// How long a sync of the broker's simulated disk takes.
    pub fn sync_latency(&self) -> Duration {
        self.sync_latency.unwrap_or(DEFAULT_SYNC_LATENCY)
    }

    /// Whether the scenario configures authentication or authorization at all.
    pub fn has_auth(&self) -> bool {
        !self.config.allow_anonymous || !self.users.is_empty() || self.acl.is_some()
    }

    /// The broker's own checks, then: enough sessions for every client, each user once.
    pub(crate) fn check(&self, c: &mut Checks<'_>) {
        for (field, reason) in self.config.problems() {
            c.fail(format!("broker.{field}"), reason);
        }
        let clients = c.ids.len();
        if self.config.max_sessions < clients {
            c.fail(
                "broker.max_sessions",
                format!(
                    "{} is fewer than the {clients} clients of the scenario",
                    self.config.max_sessions
                ),
            );
        }
        for (i, u) in self.users.iter().enumerate() {
            if self.users[..i].iter().any(|o| o.name == u.name) {
                c.fail(
                    format!("broker.users[{i}].name"),
                    format!("user {:?} is listed twice", u.name),
                );
            }
        }
        if let Some(latency) = self.sync_latency {
            if self.persistence != Persistence::Durable {
                c.fail(
                    "broker.sync_latency",
                    "a sync latency needs the broker's disk: set [broker] persistence = \"durable\"",
                );
            } else if latency > MAX_SYNC_LATENCY {
                c.fail(
                    "broker.sync_latency",
                    format!(
                        "at most {}",
                        crate::config::duration::format_duration(MAX_SYNC_LATENCY)
                    ),
                );
            }
        }
    }
}
