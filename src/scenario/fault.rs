//! Faults: the `[[fault]]` entries of a file ([`FaultSpec`], one table with `at` and exactly
//! one kind) and the concrete faults of a plan ([`FaultKind`], [`PlannedFault`]) that the
//! simulator applies; checking the entries and turning them into planned faults
//! ([`plan_scripted`]). Not here: drawing random faults (see `plan.rs`) or applying them.

use std::time::Duration;

use serde::Deserialize;

use super::checks::{Checks, d};
use super::trigger::Trigger;
use super::values::{Node, de_duration, de_opt_duration};
use crate::config::duration::{format_duration, format_instant};

/// Most scripted faults.
pub const MAX_FAULTS: usize = 1_000;

/// `[[fault]]` as written: `at` (or `after`) plus exactly one of the kind fields (checked by
/// validation, then turned into a [`FaultKind`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When the fault starts: from the start of the run, or with `after` from the trigger
    /// event. Required without `after` (default `"0s"` with it); before `faults_until`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub at: Option<Duration>,
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
    /// `sync_error = { for }`: every sync of the broker's disk fails (persistence `durable`).
    #[serde(default)]
    pub sync_error: Option<ForSpec>,
    /// `disk_full = { for }`: no file of the broker's disk may grow (persistence `durable`).
    #[serde(default)]
    pub disk_full: Option<ForSpec>,
    /// `slow_sync = { latency, for }`: every sync of the broker's disk takes `latency`
    /// (persistence `durable`).
    #[serde(default)]
    pub slow_sync: Option<SlowSyncSpec>,
    /// `after = { event = "...", <field> = <value>, nth = N }`: the fault starts `at` after the
    /// N-th trace event that matches (see [`Trigger`]), and never if none does.
    #[serde(default)]
    pub after: Option<Trigger>,
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

/// `{ restart_after = "2s", in_sync = true }`; `restart_after` defaults to 1s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashBrokerSpec {
    #[serde(default = "default_broker_restart", deserialize_with = "de_duration")]
    pub restart_after: Duration,
    /// The crash waits (at most [`MAX_IN_SYNC_WAIT`]) for a sync of the broker's disk to be in
    /// flight, and lands in its middle (persistence `durable`). Default `false`.
    #[serde(default)]
    pub in_sync: bool,
}

/// How long a `crash_broker` with `in_sync` waits for a sync in flight before it crashes the
/// broker anyway.
pub const MAX_IN_SYNC_WAIT: Duration = Duration::from_secs(5);

/// `{ latency = "200ms", for = "5s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowSyncSpec {
    #[serde(deserialize_with = "de_duration")]
    pub latency: Duration,
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
}

/// Default wait before a crashed broker starts again.
pub const DEFAULT_BROKER_RESTART: Duration = Duration::from_secs(1);

fn default_broker_restart() -> Duration {
    DEFAULT_BROKER_RESTART
}

/// `{ for = "2s" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForSpec {
    #[serde(rename = "for", deserialize_with = "de_duration")]
    pub duration: Duration,
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
    /// depends on `[broker] persistence`. With `in_sync`, the crash lands in the middle of a
    /// sync of the broker's disk.
    CrashBroker {
        restart_after: Duration,
        in_sync: bool,
    },
    /// The node freezes (no task runs, timers fire late) for `duration`, then resumes.
    Pause { node: Node, duration: Duration },
    /// Every sync of the broker's disk fails for `duration` (as on Linux, the writes it covered
    /// never reach the medium).
    SyncError { duration: Duration },
    /// The broker's disk is full for `duration`: no file may grow.
    DiskFull { duration: Duration },
    /// Every sync of the broker's disk takes `latency` for `duration`.
    SlowSync {
        latency: Duration,
        duration: Duration,
    },
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
            FaultKind::SyncError { .. } => "sync_error",
            FaultKind::DiskFull { .. } => "disk_full",
            FaultKind::SlowSync { .. } => "slow_sync",
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
            | FaultKind::Pause { duration, .. }
            | FaultKind::SyncError { duration }
            | FaultKind::DiskFull { duration }
            | FaultKind::SlowSync { duration, .. } => Some(*duration),
            FaultKind::Crash { restart_after, .. } | FaultKind::PowerOff { restart_after, .. } => {
                *restart_after
            }
            FaultKind::CrashBroker { restart_after, .. } => Some(*restart_after),
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
            FaultKind::CrashBroker {
                restart_after,
                in_sync,
            } => {
                let when = if *in_sync { " in a sync" } else { "" };
                write!(f, "crash_broker{when}, restart after {}", d(restart_after))
            }
            FaultKind::Pause { node, duration } => write!(f, "pause {node} for {}", d(duration)),
            FaultKind::SyncError { duration } => write!(f, "sync_error for {}", d(duration)),
            FaultKind::DiskFull { duration } => write!(f, "disk_full for {}", d(duration)),
            FaultKind::SlowSync { latency, duration } => {
                write!(f, "slow_sync {} for {}", d(latency), d(duration))
            }
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

/// Checks the `[[fault]]` entries; returns those that are sound: the timed ones as planned
/// faults in time order (ties keep file order), and the ones fired by trace events.
pub(crate) fn plan_scripted(
    c: &mut Checks<'_>,
    faults: &[FaultSpec],
) -> (Vec<PlannedFault>, Vec<TriggeredFault>) {
    if faults.len() > MAX_FAULTS {
        c.fail(
            "fault",
            format!("{} faults, more than {MAX_FAULTS}", faults.len()),
        );
    }
    let until = c.faults_until;
    let mut planned = Vec::new();
    let mut triggered = Vec::new();
    for (i, spec) in faults.iter().enumerate() {
        let base = format!("fault[{i}]");
        if let Some(t) = &spec.after {
            t.check(c, &format!("{base}.after"));
        }
        let at = match (spec.at, &spec.after) {
            (Some(at), _) => at,
            (None, Some(_)) => Duration::ZERO,
            (None, None) => {
                c.fail(
                    &base,
                    "a fault needs `at` (a time) or `after` (a trace event that fires it)",
                );
                Duration::ZERO
            }
        };
        let from = if spec.after.is_some() {
            " after its trigger"
        } else {
            ""
        };
        if at >= until {
            c.fail(
                format!("{base}.at"),
                format!(
                    "{} is not before faults_until {}: faults stop there",
                    d(at),
                    d(until)
                ),
            );
        }
        let Some((name, kind)) = spec.resolve(c, &base) else {
            continue;
        };
        if let Some(lasts) = kind.lasts()
            && at < until
            && at + lasts > until
        {
            c.fail(
                format!("{base}.{name}"),
                format!(
                    "heals at {} ({}{from} + {}), after faults_until {}: every fault must heal by then",
                    d(at + lasts),
                    d(at),
                    d(lasts),
                    d(until)
                ),
            );
        }
        match &spec.after {
            Some(trigger) => triggered.push(TriggeredFault {
                trigger: trigger.clone(),
                delay: at,
                kind,
                source: i,
            }),
            None => planned.push(PlannedFault {
                at,
                kind,
                source: FaultSource::Script(i),
            }),
        }
    }
    planned.sort_by_key(|f| f.at);
    (planned, triggered)
}

impl FaultSpec {
    /// The one kind field given; records a problem unless exactly one is.
    fn given_kind(&self, c: &mut Checks<'_>, base: &str) -> Option<&'static str> {
        let given: Vec<&'static str> = [
            ("cut", self.cut.is_some()),
            ("blackhole", self.blackhole.is_some()),
            ("delay", self.delay.is_some()),
            ("split_writes", self.split_writes.is_some()),
            ("partition", self.partition.is_some()),
            ("crash", self.crash.is_some()),
            ("power_off", self.power_off.is_some()),
            ("restart", self.restart.is_some()),
            ("crash_broker", self.crash_broker.is_some()),
            ("pause", self.pause.is_some()),
            ("sync_error", self.sync_error.is_some()),
            ("disk_full", self.disk_full.is_some()),
            ("slow_sync", self.slow_sync.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        match given.as_slice() {
            [one] => Some(*one),
            [] => {
                c.fail(
                    base,
                    "a fault needs one kind: cut, blackhole, delay, split_writes, partition, crash, power_off, restart, crash_broker, pause, sync_error, disk_full or slow_sync",
                );
                None
            }
            many => {
                c.fail(
                    base,
                    format!("one fault per [[fault]] entry, found {}", many.join(", ")),
                );
                None
            }
        }
    }

    /// Resolves the one kind field of this entry (`base`, like `fault[2]`); records problems
    /// and returns `None` if it cannot.
    fn resolve(&self, c: &mut Checks<'_>, base: &str) -> Option<(&'static str, FaultKind)> {
        let name = self.given_kind(c, base)?;
        if self.restart_after.is_some() && !matches!(name, "crash" | "power_off") {
            c.fail(
                format!("{base}.restart_after"),
                "restart_after goes with crash or power_off (crash_broker has its own)",
            );
        }
        let field = format!("{base}.{name}");
        let before = c.problems.len();
        let kind = match name {
            "cut" | "crash" | "power_off" | "restart" => self.client_kind(c, base, name)?,
            "partition" => self.partition.as_ref()?.resolve(c, &field)?,
            _ => self.timed_kind(c, &field, name)?,
        };
        (c.problems.len() == before).then_some((name, kind))
    }

    /// `cut`, `crash`, `power_off` and `restart`: a client's name, and maybe `restart_after`.
    fn client_kind(&self, c: &mut Checks<'_>, base: &str, name: &str) -> Option<FaultKind> {
        let client = match name {
            "cut" => &self.cut,
            "crash" => &self.crash,
            "power_off" => &self.power_off,
            _ => &self.restart,
        }
        .clone()?;
        c.client_ref(&format!("{base}.{name}"), &client);
        if let Some(r) = self.restart_after
            && matches!(name, "crash" | "power_off")
        {
            c.positive(&format!("{base}.restart_after"), r);
        }
        let restart_after = self.restart_after;
        Some(match name {
            "cut" => FaultKind::Cut { client },
            "crash" => FaultKind::Crash {
                client,
                restart_after,
            },
            "power_off" => FaultKind::PowerOff {
                client,
                restart_after,
            },
            _ => FaultKind::Restart { client },
        })
    }

    /// `blackhole`, `delay`, `split_writes`, `crash_broker`, `pause`, `sync_error`,
    /// `disk_full` and `slow_sync`: a table with a length.
    fn timed_kind(&self, c: &mut Checks<'_>, field: &str, name: &str) -> Option<FaultKind> {
        let sub = |f: &str| format!("{field}.{f}");
        Some(match name {
            "blackhole" => {
                let b = self.blackhole.as_ref()?;
                c.client_ref(&sub("client"), &b.client);
                c.positive(&sub("for"), b.duration);
                FaultKind::Blackhole {
                    client: b.client.clone(),
                    duration: b.duration,
                }
            }
            "delay" => {
                let b = self.delay.as_ref()?;
                c.client_ref(&sub("client"), &b.client);
                c.positive(&sub("extra"), b.extra);
                c.positive(&sub("for"), b.duration);
                FaultKind::Delay {
                    client: b.client.clone(),
                    extra: b.extra,
                    duration: b.duration,
                }
            }
            "split_writes" => {
                let b = self.split_writes.as_ref()?;
                c.client_ref(&sub("client"), &b.client);
                if b.max_fragment == 0 {
                    c.fail(sub("max_fragment"), "must be at least 1 byte");
                }
                c.positive(&sub("for"), b.duration);
                FaultKind::SplitWrites {
                    client: b.client.clone(),
                    max_fragment: b.max_fragment,
                    duration: b.duration,
                }
            }
            "crash_broker" => {
                let b = self.crash_broker.as_ref()?;
                c.positive(&sub("restart_after"), b.restart_after);
                FaultKind::CrashBroker {
                    restart_after: b.restart_after,
                    in_sync: b.in_sync,
                }
            }
            "pause" => {
                let p = self.pause.as_ref()?;
                let node = c.node_ref(&sub("node"), &p.node)?;
                c.positive(&sub("for"), p.duration);
                FaultKind::Pause {
                    node,
                    duration: p.duration,
                }
            }
            "sync_error" => {
                let s = self.sync_error.as_ref()?;
                c.positive(&sub("for"), s.duration);
                FaultKind::SyncError {
                    duration: s.duration,
                }
            }
            "disk_full" => {
                let s = self.disk_full.as_ref()?;
                c.positive(&sub("for"), s.duration);
                FaultKind::DiskFull {
                    duration: s.duration,
                }
            }
            "slow_sync" => {
                let s = self.slow_sync.as_ref()?;
                c.positive(&sub("latency"), s.latency);
                if s.latency > super::broker::MAX_SYNC_LATENCY {
                    c.fail(
                        sub("latency"),
                        format!(
                            "at most {}",
                            format_duration(super::broker::MAX_SYNC_LATENCY)
                        ),
                    );
                }
                c.positive(&sub("for"), s.duration);
                FaultKind::SlowSync {
                    latency: s.latency,
                    duration: s.duration,
                }
            }
            other => unreachable!("fault kind {other} is listed in given_kind"),
        })
    }
}

impl PartitionSpec {
    /// The partition of `field` (like `fault[2].partition`), if both sides are sound.
    fn resolve(&self, c: &mut Checks<'_>, field: &str) -> Option<FaultKind> {
        c.positive(&format!("{field}.for"), self.duration);
        let between = format!("{field}.between");
        if self.between.len() != 2 {
            c.fail(
                &between,
                format!(
                    "names two nodes, like [\"sensor-1\", \"broker\"]; got {}",
                    self.between.len()
                ),
            );
            return None;
        }
        let a = c.node_ref(&between, &self.between[0]);
        let b = c.node_ref(&between, &self.between[1]);
        let (Some(from), Some(to)) = (a, b) else {
            return None;
        };
        if from == to {
            c.fail(&between, "names the same node twice");
        } else if from != Node::Broker && to != Node::Broker {
            c.fail(
                &between,
                "clients only talk to the broker: one side must be \"broker\"",
            );
        }
        Some(FaultKind::Partition {
            from,
            to,
            oneway: self.oneway,
            duration: self.duration,
        })
    }
}

/// A fault that starts `delay` after its trigger fires, if that is before `faults_until` (and
/// heals by then at the latest); never, if the trigger never fires.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggeredFault {
    pub trigger: Trigger,
    pub delay: Duration,
    pub kind: FaultKind,
    /// The `[[fault]]` entry's index (from 0).
    pub source: usize,
}

impl std::fmt::Display for TriggeredFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "after {} + {}: {}  (fault[{}])",
            self.trigger,
            format_duration(self.delay),
            self.kind,
            self.source
        )
    }
}
