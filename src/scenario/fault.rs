//! Faults: the `[[fault]]` entries of a file ([`FaultSpec`], one table with `at` and exactly
//! one kind) and the concrete faults of a plan ([`FaultKind`], [`PlannedFault`]) that the
//! simulator applies. Not here: drawing random faults (see `plan.rs`) or applying them.

use std::time::Duration;

use serde::Deserialize;

use super::duration::{de_duration, de_opt_duration, format_duration, format_instant};
use super::values::Node;

/// `[[fault]]` as written: `at` plus exactly one of the kind fields (checked by validation,
/// then turned into a [`FaultKind`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When the fault starts. Required; before `faults_until`.
    #[serde(deserialize_with = "de_duration")]
    pub at: Duration,
    /// `cut = "client"`: close that client's connection.
    #[serde(default)]
    pub cut: Option<String>,
    /// `blackhole = { client, for }`: the connection stays open but nothing passes.
    #[serde(default)]
    pub blackhole: Option<ClientFor>,
    /// `delay = { client, extra, for }`: extra one-way delay on each write of the connection.
    #[serde(default)]
    pub delay: Option<DelaySpec>,
    /// `split_writes = { client, max_fragment, for }`: writes reach the peer in small pieces.
    #[serde(default)]
    pub split_writes: Option<SplitSpec>,
    /// `partition = { between = [a, b], oneway, for }`: no traffic between two nodes.
    #[serde(default)]
    pub partition: Option<PartitionSpec>,
    /// `crash = "client"`: the client process dies; its peer sees the connection reset.
    #[serde(default)]
    pub crash: Option<String>,
    /// `power_off = "client"`: the client freezes and goes silent; only keep-alive can tell.
    #[serde(default)]
    pub power_off: Option<String>,
    /// With `crash` or `power_off`: the client starts again after this long. Default: never.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub restart_after: Option<Duration>,
    /// `restart = "client"`: the client process dies and starts again at once.
    #[serde(default)]
    pub restart: Option<String>,
    /// `crash_broker = { restart_after }`: the broker dies and starts again.
    #[serde(default)]
    pub crash_broker: Option<CrashBrokerSpec>,
    /// `pause = { node, for }`: a node (client or `"broker"`) stalls, then resumes.
    #[serde(default)]
    pub pause: Option<PauseSpec>,
}

/// `{ client = "id", for = "5s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFor {
    pub client: String,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

/// `{ client = "id", extra = "200ms", for = "5s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    pub client: String,
    #[serde(deserialize_with = "de_duration")]
    pub extra: Duration,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

/// `{ client = "id", max_fragment = 3, for = "10s" }`; `max_fragment` defaults to 1 byte.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    pub client: String,
    #[serde(default = "one")]
    pub max_fragment: u32,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

fn one() -> u32 {
    1
}

/// `{ between = ["a", "b"], oneway = false, for = "8s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub between: Vec<String>,
    /// Only traffic from `between[0]` to `between[1]` is blocked. Default `false`.
    #[serde(default)]
    pub oneway: bool,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

/// `{ restart_after = "2s" }`; `restart_after` defaults to 1s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashBrokerSpec {
    #[serde(default = "default_broker_restart", deserialize_with = "de_duration")]
    pub restart_after: Duration,
}

/// Default wait before a crashed broker starts again.
pub const DEFAULT_BROKER_RESTART: Duration = Duration::from_secs(1);

fn default_broker_restart() -> Duration {
    DEFAULT_BROKER_RESTART
}

/// `{ node = "broker", for = "3s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseSpec {
    pub node: String,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

/// A concrete fault, with its targets and durations, as the simulator applies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Close the client's connection at the stream seam: both ends see it closed.
    Cut { client: String },
    /// Half-open connection: bytes written by either end are held back, nothing closes.
    /// After `duration` the held bytes flow again (if the connection still exists).
    Blackhole { client: String, duration: Duration },
    /// Each write on the client's connection, in both directions, arrives `extra` later.
    Delay {
        client: String,
        extra: Duration,
        duration: Duration,
    },
    /// Each write on the client's connection reaches the peer in pieces of at most
    /// `max_fragment` bytes, so the framer sees partial packets.
    SplitWrites {
        client: String,
        max_fragment: u32,
        duration: Duration,
    },
    /// No traffic from `from` to `to` (and, unless `oneway`, from `to` to `from`); existing
    /// connections stall, new connects are refused. Heals after `duration`.
    Partition {
        from: Node,
        to: Node,
        oneway: bool,
        duration: Duration,
    },
    /// The client process dies: its connection resets at once. It starts again (a fresh
    /// process, no memory of its session) after `restart_after`, or never.
    Crash {
        client: String,
        restart_after: Option<Duration>,
    },
    /// The client freezes and its network goes silent: the broker notices only by
    /// keep-alive. It starts again (a fresh process) after `restart_after`, or never.
    PowerOff {
        client: String,
        restart_after: Option<Duration>,
    },
    /// The client process dies and starts again at once.
    Restart { client: String },
    /// The broker process dies and starts again after `restart_after`; what survives
    /// depends on `[broker] persistence`.
    CrashBroker { restart_after: Duration },
    /// The node freezes (no task runs, timers fire late) for `duration`, then resumes.
    Pause { node: Node, duration: Duration },
}

impl FaultKind {
    /// The kind's name as written in files (`"cut"`, `"crash_broker"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Cut { .. } => "cut",
            FaultKind::Blackhole { .. } => "blackhole",
            FaultKind::Delay { .. } => "delay",
            FaultKind::SplitWrites { .. } => "split_writes",
            FaultKind::Partition { .. } => "partition",
            FaultKind::Crash { .. } => "crash",
            FaultKind::PowerOff { .. } => "power_off",
            FaultKind::Restart { .. } => "restart",
            FaultKind::CrashBroker { .. } => "crash_broker",
            FaultKind::Pause { .. } => "pause",
        }
    }

    /// How long after it starts the fault is healed: `Some(ZERO)` for an instant fault
    /// (cut, restart), `None` for a client that never comes back.
    pub fn lasts(&self) -> Option<Duration> {
        match self {
            FaultKind::Cut { .. } | FaultKind::Restart { .. } => Some(Duration::ZERO),
            FaultKind::Blackhole { duration, .. }
            | FaultKind::Delay { duration, .. }
            | FaultKind::SplitWrites { duration, .. }
            | FaultKind::Partition { duration, .. }
            | FaultKind::Pause { duration, .. } => Some(*duration),
            FaultKind::Crash { restart_after, .. } | FaultKind::PowerOff { restart_after, .. } => {
                *restart_after
            }
            FaultKind::CrashBroker { restart_after } => Some(*restart_after),
        }
    }

    /// The node the fault takes down (crash, power-off, restart, broker crash, pause), if any.
    pub fn downs_node(&self) -> Option<Node> {
        match self {
            FaultKind::Crash { client, .. }
            | FaultKind::PowerOff { client, .. }
            | FaultKind::Restart { client } => Some(Node::Client(client.clone())),
            FaultKind::CrashBroker { .. } => Some(Node::Broker),
            FaultKind::Pause { node, .. } => Some(node.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |d: &Duration| format_duration(*d);
        let restart = |r: &Option<Duration>| match r {
            Some(r) => format!("restart after {}", format_duration(*r)),
            None => "no restart".to_string(),
        };
        match self {
            FaultKind::Cut { client } => write!(f, "cut {client}"),
            FaultKind::Blackhole { client, duration } => {
                write!(f, "blackhole {client} for {}", d(duration))
            }
            FaultKind::Delay {
                client,
                extra,
                duration,
            } => write!(f, "delay {client} +{} for {}", d(extra), d(duration)),
            FaultKind::SplitWrites {
                client,
                max_fragment,
                duration,
            } => write!(
                f,
                "split_writes {client} max {max_fragment} B for {}",
                d(duration)
            ),
            FaultKind::Partition {
                from,
                to,
                oneway,
                duration,
            } => {
                let arrow = if *oneway { "->" } else { "<->" };
                write!(f, "partition {from} {arrow} {to} for {}", d(duration))
            }
            FaultKind::Crash {
                client,
                restart_after,
            } => write!(f, "crash {client}, {}", restart(restart_after)),
            FaultKind::PowerOff {
                client,
                restart_after,
            } => write!(f, "power_off {client}, {}", restart(restart_after)),
            FaultKind::Restart { client } => write!(f, "restart {client}"),
            FaultKind::CrashBroker { restart_after } => {
                write!(f, "crash_broker, restart after {}", d(restart_after))
            }
            FaultKind::Pause { node, duration } => write!(f, "pause {node} for {}", d(duration)),
        }
    }
}

/// Where a planned fault came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultSource {
    /// The `[[fault]]` entry with this index (from 0).
    Script(usize),
    /// Drawn from `[random]` by the seed.
    Random,
}

/// One fault of a plan: what happens and when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlannedFault {
    /// Virtual time from the start of the run.
    pub at: Duration,
    pub kind: FaultKind,
    pub source: FaultSource,
}

impl PlannedFault {
    /// When the fault is healed (`at` for instant faults), or `None` if never.
    pub fn heals_at(&self) -> Option<Duration> {
        self.kind.lasts().map(|l| self.at + l)
    }
}

impl std::fmt::Display for PlannedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            FaultSource::Script(i) => format!("fault[{i}]"),
            FaultSource::Random => "random".to_string(),
        };
        write!(
            f,
            "{:>10}  {}  ({source})",
            format_instant(self.at),
            self.kind
        )
    }
}
