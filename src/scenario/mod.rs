//! Scenario files: the TOML format a user writes to describe one story — a broker, clients,
//! workloads, scripted and random faults, and what must hold — plus validation with errors
//! that name the file, the field and the reason, and the seeded [`Plan`] of one run.
//!
//! The complete field reference, with every default, is `scenarios/README.md`.
//!
//! - [`Scenario`] (`document.rs`): the whole file; `load`, `from_str`, phase accessors.
//! - Sections: [`BrokerConfig`], [`ClientConfig`], [`Workload`], [`FaultSpec`],
//!   [`NetworkConfig`], [`RandomFaults`], [`Expect`].
//! - [`Plan`], [`PlannedFault`], [`FaultKind`] (`plan.rs`, `fault.rs`): what a seed derives.
//! - [`parse_duration`] / [`format_duration`]: the duration syntax.
//!
//! Not here: running a scenario (`sim`), judging a trace (`check`).

mod broker;
mod client;
mod document;
mod duration;
mod error;
mod expect;
mod fault;
mod plan;
mod properties;
mod random;
mod topic;
mod validate;
mod values;
mod workload;

pub use broker::{BrokerConfig, OverflowPolicy, Persistence, UserConfig};
pub use client::{ClientConfig, ReconnectPolicy, SubscriptionConfig, WillConfig};
pub use document::Scenario;
pub use duration::{
    DurationError, MAX_DURATION, NEVER_EXPIRES, format_duration, format_instant, parse_duration,
};
pub use error::{Problem, ScenarioError};
pub use expect::{Checker, Expect, LossClass, Receives, WillReaches};
pub use fault::{
    ClientFor, CrashBrokerSpec, DEFAULT_BROKER_RESTART, DelaySpec, FaultKind, FaultSource,
    FaultSpec, PartitionSpec, PauseSpec, PlannedFault, SplitSpec,
};
pub use plan::{MAX_RANDOM_PER_KIND, Plan, SwarmDraw, stream, sub_seed};
pub use properties::{MAX_PROPERTY_STRING, MAX_USER_PROPERTIES, MessageProperties, PayloadFormat};
pub use random::{DEFAULT_LATENCY, NetworkConfig, RandomFaults};
pub use topic::{check_topic_filter, check_topic_name, filter_matches};
pub use validate::{MAX_CLIENTS, MAX_COUNT, MAX_FAULTS, MQTT_MAX_PACKET};
pub use values::{BROKER, Node, ProtocolVersion};
pub use workload::{DEFAULT_EVERY, DEFAULT_SIZE, Workload};
