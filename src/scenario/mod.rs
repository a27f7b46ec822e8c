//! Scenario files: the TOML format a user writes to describe one story — a broker, clients,
//! workloads, scripted and random faults, and what must hold — with checks whose errors name
//! the file, the line, the field and the reason (every problem at once), and the seeded [`Plan`]
//! of one run. A scenario is data: it imports no core beyond their configuration types.
//!
//! The complete field reference, with every default, is `scenarios/README.md`.
//!
//! - [`Scenario`] (`document.rs`): the whole file; `load`, `from_str`, phase accessors.
//! - Sections, each with its checks: [`BrokerSection`], [`ClientConfig`], [`Workload`],
//!   [`FaultSpec`], [`NetworkConfig`], [`RandomFaults`], [`Expect`], [`TargetSection`]; `checks.rs` holds what
//!   the checks share.
//! - [`Template`] (`template.rs`): a `[[client]]` with `count` standing for many clients, with
//!   ranges drawn per seed ([`ClientDraw`]), and the entries naming its instances.
//! - [`Plan`], [`PlannedFault`], [`FaultKind`] (`plan.rs`, `fault.rs`): what a seed derives;
//!   [`TriggeredFault`], [`Trigger`] (`trigger.rs`): faults fired by trace events.
//! - [`TimeScale`] (`scale.rs`): one seed's run on a scaled clock, for runs in real time.
//!
//! Not here: the duration grammar and reading TOML with every problem at once
//! ([`crate::config`]), turning a scenario into the cores' configurations and running it
//! (`sim`), judging a trace (`check`).

mod broker;
mod checks;
mod client;
mod document;
mod error;
mod expect;
mod fault;
mod plan;
mod properties;
mod random;
mod scale;
mod target;
mod template;
mod topic;
mod trigger;
mod values;
mod workload;

pub use broker::{BrokerSection, DEFAULT_SYNC_LATENCY, MAX_SYNC_LATENCY, Persistence, UserConfig};
pub use client::{
    ClientConfig, MAX_ID_LEN, ReconnectPolicy, SubscriptionConfig, UnsubscribeConfig, WillConfig,
};
pub use document::Scenario;
pub use error::ScenarioError;
pub use expect::{Checker, Expect, LossClass, Receives, WillReaches};
pub use fault::{
    ClientFor, CrashBrokerSpec, DEFAULT_BROKER_RESTART, DelaySpec, FaultKind, FaultSource,
    FaultSpec, MAX_FAULTS, MAX_IN_SYNC_WAIT, PartitionSpec, PauseSpec, PlannedFault, SlowSyncSpec,
    SplitSpec, TriggeredFault,
};
pub use plan::{MAX_RANDOM_PER_KIND, Plan, SwarmDraw};
pub use properties::{MAX_PROPERTY_STRING, MAX_USER_PROPERTIES, MessageProperties, PayloadFormat};
pub use random::{DEFAULT_LATENCY, NetworkConfig, RandomFaults, stream, sub_seed};
pub use scale::{SCALE_RANGE, TimeScale};
pub use target::TargetSection;
pub use template::{
    ClientDraw, MAX_EXPANDED, PLACEHOLDER, Range, Template, VARIABLE_FIELDS, Value,
};
pub use topic::{check_topic_filter, check_topic_name, filter_matches};
pub use trigger::{Trigger, event_fields, event_names};
pub use values::{BROKER, MAX_CLIENTS, MAX_DURATION, Node};
pub use workload::{DEFAULT_EVERY, DEFAULT_SIZE, MAX_COUNT, Workload};
