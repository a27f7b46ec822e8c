//! The seeded plan of one run: everything a seed derives from a scenario — the latency range,
//! the loss rate, which random fault kinds are on (swarm testing) and every concrete fault,
//! merged with the scripted ones in time order, and the values drawn for the instances of
//! client templates — and a text that prints it all.
//!
//! Each purpose draws from its own ChaCha stream, seeded by hashing the run seed with the
//! purpose's name ([`sub_seed`]), so adding a consumer never shifts the others' draws.
//! Not here: applying the plan (the simulator does that).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::document::Scenario;
use super::fault::{FaultKind, FaultSource, PlannedFault, TriggeredFault};
use super::random::*;
use super::template::{self, ClientDraw};
use super::values::Node;
use crate::config::duration::{format_duration, format_instant};

/// Attempts to place one random fault that takes a node down without overlapping another
/// such fault on the same node.
const PLACEMENT_ATTEMPTS: usize = 8;
/// Most random faults of one kind in one plan.
pub const MAX_RANDOM_PER_KIND: usize = 1_000;

/// What the seed decided for one random fault kind.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmDraw {
    /// The `[random]` field the kind comes from, like `"cuts_per_minute"`.
    pub field: &'static str,
    /// Whether the kind is on for this seed.
    pub enabled: bool,
    /// The drawn rate (per minute of the faults phase, or a probability for `split_writes`
    /// and `loss`); 0 when off.
    pub rate: f64,
    /// How many faults of this kind were drawn.
    pub drawn: usize,
    /// How many could be placed (node-down faults never overlap on one node).
    pub placed: usize,
}

/// Everything one seed derives from a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    pub duration: Duration,
    pub faults_until: Duration,
    pub settle_by: Duration,
    /// One-way latency of each write, drawn per write in `[min, max]`, for the whole run.
    pub latency: [Duration; 2],
    /// Loss rate during the faults phase (0 after it).
    pub loss: f64,
    /// The swarm decisions, one per random kind the scenario allows, in a fixed order.
    pub swarm: Vec<SwarmDraw>,
    /// Scripted and random faults in time order (ties: scripted first, then in drawing order).
    pub faults: Vec<PlannedFault>,
    /// Scripted faults fired by trace events (`after`), in file order.
    pub triggered: Vec<TriggeredFault>,
    /// The values drawn for the instances of client templates with ranges, in client order
    /// (empty without ranges).
    pub clients: Vec<ClientDraw>,
}

impl Scenario {
    /// The plan for `seed`: same seed, same plan. Random faults start and heal before
    /// `faults_until`; crashes, power-offs, broker crashes and pauses of one node never
    /// overlap (scripted ones included).
    pub fn plan(&self, seed: u64) -> Plan {
        let until = self.faults_until();
        let mut faults: Vec<PlannedFault> = self.scripted_faults().to_vec();
        let mut latency = self.network.latency;
        let mut loss = 0.0;
        let mut swarm = Vec::new();
        if let Some(random) = &self.random {
            let mut drawer = Drawer {
                seed,
                swarm: random.swarm,
                until,
                down: down_windows(&faults, self.duration),
                targets: random
                    .targets
                    .clone()
                    .unwrap_or_else(|| self.clients.iter().map(|c| c.id.clone()).collect()),
                draws: Vec::new(),
                faults: Vec::new(),
            };
            if let Some(range) = random.latency {
                let mut rng = stream(seed, "network/latency");
                let a = draw_duration(&mut rng, range);
                let b = draw_duration(&mut rng, range);
                latency = [a.min(b), a.max(b)];
            }
            if let Some(range) = random.loss {
                loss = drawer.loss(range);
            }
            drawer.all_kinds(random);
            swarm = drawer.draws;
            faults.extend(drawer.faults);
        }
        faults.sort_by_key(|f| (f.at, matches!(f.source, FaultSource::Random)));
        Plan {
            seed,
            scenario: self.name.clone(),
            duration: self.duration,
            faults_until: until,
            settle_by: self.settle_by(),
            latency,
            loss,
            swarm,
            faults,
            triggered: self.triggered_faults().to_vec(),
            clients: self.expansion.draws(seed),
        }
    }
}

/// Per node, the windows `[start, end)` during which it is down or paused.
fn down_windows(
    faults: &[PlannedFault],
    end_of_run: Duration,
) -> BTreeMap<Node, Vec<(Duration, Duration)>> {
    let mut windows: BTreeMap<Node, Vec<(Duration, Duration)>> = BTreeMap::new();
    for f in faults {
        if let Some(node) = f.kind.downs_node() {
            let end = f
                .heals_at()
                .unwrap_or(end_of_run)
                .max(f.at + Duration::from_millis(1));
            windows.entry(node).or_default().push((f.at, end));
        }
    }
    windows
}

/// Uniform in `[low, high]`, whole milliseconds (or microseconds below 1ms).
fn draw_duration(rng: &mut ChaCha8Rng, range: [Duration; 2]) -> Duration {
    let (lo, hi) = (range[0].as_micros() as u64, range[1].as_micros() as u64);
    let us = rng.random_range(lo..=hi);
    if us >= 1_000 && lo >= 1_000 {
        Duration::from_millis(us / 1_000)
    } else {
        Duration::from_micros(us)
    }
}

fn draw_f64(rng: &mut ChaCha8Rng, range: [f64; 2]) -> f64 {
    if range[0] >= range[1] {
        return range[0];
    }
    // Rounded so the plan prints exactly what it uses.
    let x = rng.random_range(range[0]..=range[1]);
    (x * 1_000.0).round() / 1_000.0
}

struct Drawer {
    seed: u64,
    swarm: bool,
    until: Duration,
    down: BTreeMap<Node, Vec<(Duration, Duration)>>,
    targets: Vec<String>,
    draws: Vec<SwarmDraw>,
    faults: Vec<PlannedFault>,
}

impl Drawer {
    /// A kind's own stream, and whether the swarm coin leaves it on.
    fn toggle(&self, field: &'static str, upper: f64) -> (ChaCha8Rng, bool) {
        let mut rng = stream(self.seed, &format!("faults/{field}"));
        let coin = rng.random_bool(0.5);
        (rng, upper > 0.0 && (!self.swarm || coin))
    }

    fn loss(&mut self, range: [f64; 2]) -> f64 {
        let (mut rng, enabled) = self.toggle("loss", range[1]);
        let rate = if enabled {
            draw_f64(&mut rng, range)
        } else {
            0.0
        };
        self.draws.push(SwarmDraw {
            field: "loss",
            enabled,
            rate,
            drawn: 0,
            placed: 0,
        });
        rate
    }

    fn all_kinds(&mut self, r: &RandomFaults) {
        self.connection_kinds(r);
        self.process_kinds(r);
        if let Some(p) = r.split_writes {
            self.split_writes(p, r.split_fragment.unwrap_or(DEFAULT_SPLIT_FRAGMENT));
        }
        self.storage_kinds(r);
    }

    /// Sync errors, full disks and slow syncs of the broker's disk, in this order.
    fn storage_kinds(&mut self, r: &RandomFaults) {
        let or = |x: Option<[Duration; 2]>, default| x.unwrap_or(default);
        if let Some(range) = r.sync_errors_per_minute {
            let span = or(r.sync_error_for, DEFAULT_SYNC_ERROR_FOR);
            self.kind("sync_errors_per_minute", range, |_, rng, _| {
                let duration = draw_duration(rng, span);
                (FaultKind::SyncError { duration }, duration)
            });
        }
        if let Some(range) = r.disk_full_per_minute {
            let span = or(r.disk_full_for, DEFAULT_DISK_FULL_FOR);
            self.kind("disk_full_per_minute", range, |_, rng, _| {
                let duration = draw_duration(rng, span);
                (FaultKind::DiskFull { duration }, duration)
            });
        }
        if let Some(range) = r.slow_syncs_per_minute {
            let latency = or(r.slow_sync_latency, DEFAULT_SLOW_SYNC_LATENCY);
            let span = or(r.slow_sync_for, DEFAULT_SLOW_SYNC_FOR);
            self.kind("slow_syncs_per_minute", range, |_, rng, _| {
                let latency = draw_duration(rng, latency);
                let duration = draw_duration(rng, span);
                (FaultKind::SlowSync { latency, duration }, duration)
            });
        }
    }

    /// Cuts, black holes, delays and partitions, in this order.
    fn connection_kinds(&mut self, r: &RandomFaults) {
        let or = |x: Option<[Duration; 2]>, default| x.unwrap_or(default);
        if let Some(range) = r.cuts_per_minute {
            self.kind("cuts_per_minute", range, |_, rng, targets| {
                (
                    FaultKind::Cut {
                        client: pick(rng, targets),
                    },
                    Duration::ZERO,
                )
            });
        }
        if let Some(range) = r.blackholes_per_minute {
            let span = or(r.blackhole_for, DEFAULT_BLACKHOLE_FOR);
            self.kind("blackholes_per_minute", range, |_, rng, targets| {
                let client = pick(rng, targets);
                let duration = draw_duration(rng, span);
                (FaultKind::Blackhole { client, duration }, duration)
            });
        }
        if let Some(range) = r.delays_per_minute {
            let span = or(r.delay_for, DEFAULT_DELAY_FOR);
            let extra_range = or(r.delay_extra, DEFAULT_DELAY_EXTRA);
            self.kind("delays_per_minute", range, |_, rng, targets| {
                let client = pick(rng, targets);
                let extra = draw_duration(rng, extra_range);
                let duration = draw_duration(rng, span);
                (
                    FaultKind::Delay {
                        client,
                        extra,
                        duration,
                    },
                    duration,
                )
            });
        }
        if let Some(range) = r.partitions_per_minute {
            let span = or(r.partition_for, DEFAULT_PARTITION_FOR);
            let oneway_p = r.partition_oneway.unwrap_or(DEFAULT_PARTITION_ONEWAY);
            self.kind("partitions_per_minute", range, |_, rng, targets| {
                let client = Node::Client(pick(rng, targets));
                let duration = draw_duration(rng, span);
                let oneway = rng.random_bool(oneway_p);
                let (from, to) = if oneway && rng.random_bool(0.5) {
                    (Node::Broker, client)
                } else {
                    (client, Node::Broker)
                };
                (
                    FaultKind::Partition {
                        from,
                        to,
                        oneway,
                        duration,
                    },
                    duration,
                )
            });
        }
    }

    /// Client crashes and power-offs, broker crashes and pauses, in this order.
    fn process_kinds(&mut self, r: &RandomFaults) {
        let or = |x: Option<[Duration; 2]>, default| x.unwrap_or(default);
        let restart = or(r.client_restart_after, DEFAULT_CLIENT_RESTART_AFTER);
        if let Some(range) = r.crashes_per_minute {
            self.kind("crashes_per_minute", range, |_, rng, targets| {
                let client = pick(rng, targets);
                let after = draw_duration(rng, restart);
                (
                    FaultKind::Crash {
                        client,
                        restart_after: Some(after),
                    },
                    after,
                )
            });
        }
        if let Some(range) = r.power_offs_per_minute {
            self.kind("power_offs_per_minute", range, |_, rng, targets| {
                let client = pick(rng, targets);
                let after = draw_duration(rng, restart);
                (
                    FaultKind::PowerOff {
                        client,
                        restart_after: Some(after),
                    },
                    after,
                )
            });
        }
        if let Some(range) = r.broker_crashes_per_minute {
            let span = or(r.broker_restart_after, DEFAULT_BROKER_RESTART_AFTER);
            let in_sync = r.broker_crash_in_sync;
            self.kind("broker_crashes_per_minute", range, |_, rng, _| {
                let after = draw_duration(rng, span);
                (
                    FaultKind::CrashBroker {
                        restart_after: after,
                        in_sync: in_sync.is_some_and(|p| rng.random_bool(p)),
                    },
                    after,
                )
            });
        }
        if let Some(range) = r.pauses_per_minute {
            let span = or(r.pause_for, DEFAULT_PAUSE_FOR);
            self.kind("pauses_per_minute", range, |_, rng, targets| {
                let which = rng.random_range(0..=targets.len());
                let node = match targets.get(which) {
                    Some(id) => Node::Client(id.clone()),
                    None => Node::Broker,
                };
                let duration = draw_duration(rng, span);
                (FaultKind::Pause { node, duration }, duration)
            });
        }
    }

    /// Draws one rate-based kind: the swarm coin, the rate, the count, then each fault's
    /// details and start time (so that it heals before `faults_until`).
    fn kind(
        &mut self,
        field: &'static str,
        range: [f64; 2],
        mut make: impl FnMut(usize, &mut ChaCha8Rng, &[String]) -> (FaultKind, Duration),
    ) {
        let (mut rng, enabled) = self.toggle(field, range[1]);
        let mut draw = SwarmDraw {
            field,
            enabled,
            rate: 0.0,
            drawn: 0,
            placed: 0,
        };
        if enabled && !self.targets.is_empty() && !self.until.is_zero() {
            draw.rate = draw_f64(&mut rng, range);
            let expected = draw.rate * self.until.as_secs_f64() / 60.0;
            let mut count = expected.floor() as usize;
            if rng.random_bool((expected - expected.floor()).clamp(0.0, 1.0)) {
                count += 1;
            }
            draw.drawn = count.min(MAX_RANDOM_PER_KIND);
            let targets = self.targets.clone();
            for i in 0..draw.drawn {
                let (kind, lasts) = make(i, &mut rng, &targets);
                if self.place(&mut rng, kind, lasts) {
                    draw.placed += 1;
                }
            }
        }
        self.draws.push(draw);
    }

    /// Picks a start so the fault heals strictly before `faults_until`, avoiding overlap of
    /// node-down faults on one node; `false` if no place was found.
    fn place(&mut self, rng: &mut ChaCha8Rng, kind: FaultKind, lasts: Duration) -> bool {
        let until_ms = self.until.as_millis() as u64;
        let lasts_ms = lasts.as_micros().div_ceil(1_000) as u64;
        if lasts_ms >= until_ms {
            return false;
        }
        let latest = until_ms - lasts_ms - 1;
        let node = kind.downs_node();
        for _ in 0..PLACEMENT_ATTEMPTS {
            let at = Duration::from_millis(rng.random_range(0..=latest));
            let end = at + lasts.max(Duration::from_millis(1));
            if let Some(node) = &node {
                let windows = self.down.entry(node.clone()).or_default();
                if windows.iter().any(|(s, e)| at < *e && *s < end) {
                    continue;
                }
                windows.push((at, end));
            }
            self.faults.push(PlannedFault {
                at,
                kind,
                source: FaultSource::Random,
            });
            return true;
        }
        false
    }

    /// Each target client splits its writes during the whole faults phase with probability
    /// `p` (the swarm coin first).
    fn split_writes(&mut self, p: f64, fragment: [u32; 2]) {
        let (mut rng, enabled) = self.toggle("split_writes", p);
        let mut draw = SwarmDraw {
            field: "split_writes",
            enabled,
            rate: if enabled { p } else { 0.0 },
            drawn: 0,
            placed: 0,
        };
        if enabled && !self.until.is_zero() {
            for client in self.targets.clone() {
                let on = rng.random_bool(p);
                let max_fragment = rng.random_range(fragment[0]..=fragment[1]);
                if on {
                    draw.drawn += 1;
                    draw.placed += 1;
                    self.faults.push(PlannedFault {
                        at: Duration::ZERO,
                        kind: FaultKind::SplitWrites {
                            client,
                            max_fragment,
                            duration: self.until,
                        },
                        source: FaultSource::Random,
                    });
                }
            }
        }
        self.draws.push(draw);
    }
}

fn pick(rng: &mut ChaCha8Rng, targets: &[String]) -> String {
    targets[rng.random_range(0..targets.len())].clone()
}

impl Plan {
    /// Everything the seed derived, one item per line, identical for identical plans.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "seed {}: {}", self.seed, self.scenario);
        let _ = writeln!(
            out,
            "  phases: faults 0s..{}, settle by {}, end {}",
            format_duration(self.faults_until),
            format_duration(self.settle_by),
            format_duration(self.duration)
        );
        let _ = writeln!(
            out,
            "  network: latency {}..{}, loss {:.1}% during faults",
            format_duration(self.latency[0]),
            format_duration(self.latency[1]),
            self.loss * 100.0
        );
        if !self.swarm.is_empty() {
            let _ = writeln!(out, "  swarm:");
            for d in &self.swarm {
                let line = match (d.enabled, d.field) {
                    (false, _) => "off".to_string(),
                    (true, "loss") => format!("on, {:.1}%", d.rate * 100.0),
                    (true, "split_writes") => {
                        format!("on, p {:.3}, {} client(s) split", d.rate, d.placed)
                    }
                    (true, _) if d.placed == d.drawn => {
                        format!("on, {:.3}/min, {} fault(s)", d.rate, d.drawn)
                    }
                    (true, _) => format!(
                        "on, {:.3}/min, {} fault(s) drawn, {} placed",
                        d.rate, d.drawn, d.placed
                    ),
                };
                let _ = writeln!(out, "    {:<26} {line}", d.field);
            }
        }
        let _ = writeln!(out, "  faults: {}", self.faults.len());
        for f in &self.faults {
            let heal = match f.heals_at() {
                Some(h) if h > f.at => format!(", healed at {}", format_instant(h)),
                Some(_) => String::new(),
                None => ", never healed".to_string(),
            };
            let _ = writeln!(out, "  {f}{heal}");
        }
        if !self.clients.is_empty() {
            let _ = writeln!(out, "  drawn from client templates: {}", self.clients.len());
            for c in &self.clients {
                let _ = writeln!(out, "    {c}");
            }
        }
        if !self.triggered.is_empty() {
            let _ = writeln!(out, "  fired by trace events: {}", self.triggered.len());
            for t in &self.triggered {
                let _ = writeln!(out, "    {t}");
            }
        }
        out
    }
}

impl Scenario {
    /// The scenario a run of `plan` uses: its template instances with the values the seed
    /// drew. Without ranges, the scenario itself.
    pub fn drawn(&self, plan: &Plan) -> std::borrow::Cow<'_, Scenario> {
        if plan.clients.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut s = self.clone();
        template::apply(&mut s.clients, &plan.clients);
        std::borrow::Cow::Owned(s)
    }
}
