//! The simulated world of one run, inside madsim: a broker node, a node per client, and the
//! supervisor (the future given to `block_on`) that records `run_started`, applies and heals
//! the plan's faults at their times, starts the settle phase at `faults_until` and ends the run
//! at `duration`.
//!
//! How each fault is produced:
//! - cut, black hole, extra delay, split writes: the client's [`LinkControl`] (the stream
//!   seam), held here; overlapping faults of one kind on one link are counted, so healing one
//!   keeps the others;
//! - partition: `NetSim::clog_link` in the blocked directions, counted per direction;
//! - client crash: `kill`, then `restart` after `restart_after` (never without it); restart: both
//!   at once;
//! - power-off: the link black-holed and the node paused (silent: only keep-alive tells); power-on:
//!   `kill` (the broker reads EOF if it still holds the connection), hole healed, `restart`;
//! - broker crash: the broker's disk crashes (with persistence `durable`: a [`SeamDisk`] that
//!   outlives the node, so what was not synced may be lost or torn), the node is `kill`ed, then
//!   `restart`ed after `restart_after`: with `durable` the new broker opens its store on that
//!   disk and recovers the last commit, with `none` it starts empty;
//!   with `in_sync`, the crash waits until a sync of that disk is in flight (the disk's sync
//!   latency: `[broker] sync_latency`, or a `slow_sync` fault's), so it lands in its middle;
//! - storage faults: sync errors, a full disk, slow syncs: switched on the [`DiskControl`];
//! - pause: `pause`, then `resume`;
//! - loss: the network's `packet_loss_rate` during the faults phase, back to 0 at
//!   `faults_until`. Latency is the runtime's `send_latency` for the whole run.
//!
//! Not here: the per-seed thread and verdict (`runner.rs`), the client application (`app.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::app::{ClientNode, ClientSpec, Disk, SessionNote};
use super::options::{RunOptions, broker_auth, broker_config};
use super::recorder::sleep_to;
use super::recorder::{Recorder, Watch};
use super::schedule::{StepKind, Steps, trace_fault};
use crate::net::commit::Storage;
use crate::net::durability::Mode;
use crate::net::seam::LinkControl;
use crate::net::server::{Journal, serve};
use crate::net::store::StoreError;
use crate::net::store::seam::{DiskControl, SeamDisk};
use crate::scenario::{FaultKind, MAX_IN_SYNC_WAIT, Node, Persistence, Plan, Scenario, sub_seed};
use crate::trace::{self, Event, Trace};

/// The broker's address.
pub const BROKER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const BROKER_PORT: u16 = 1883;

/// The address of the `i`-th client node (from 0): 10.0.1.1, 10.0.1.2, ..., 10.0.1.250,
/// 10.0.2.1, ...
fn client_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

// Room for 254 × 250 clients: more than a scenario may have.
const _: () = assert!(crate::scenario::MAX_CLIENTS <= 254 * 250);

/// The overlapping faults that hold one client's link, counted so that each heals
/// independently; [`apply_to`](FaultTally::apply_to) sets the link's seam to their combination.
#[derive(Default)]
struct FaultTally {
    blackholes: u32,
    /// Fault index → extra delay.
    delays: BTreeMap<usize, Duration>,
    /// Fault index → largest fragment.
    splits: BTreeMap<usize, u32>,
}

impl FaultTally {
    fn apply_to(&self, link: &LinkControl) {
        link.set_blackhole(self.blackholes > 0);
        link.set_extra_delay(self.delays.values().copied().max().unwrap_or_default());
        link.set_max_fragment(self.splits.values().copied().min().map(|n| n as usize));
    }
}

struct ClientHandle {
    node: NodeHandle,
    link: LinkControl,
    faults: FaultTally,
}

/// The supervisor's view of the world.
struct World {
    handle: Handle,
    net: Arc<NetSim>,
    broker: NodeHandle,
    /// The broker's disk, with persistence `durable`.
    disk: Option<DiskControl>,
    /// The disk's sync latency outside `slow_sync` faults.
    sync_latency: Duration,
    /// How many `sync_error` and `disk_full` faults are in force.
    sync_errors: u32,
    fulls: u32,
    /// Fault index → the sync latency a `slow_sync` fault sets.
    slow_syncs: BTreeMap<usize, Duration>,
    /// Where in a sync a `crash_broker` with `in_sync` lands.
    in_sync_rng: ChaCha8Rng,
    clients: BTreeMap<String, ClientHandle>,
    /// Directed clogs (from, to) → how many partitions hold them.
    clogs: BTreeMap<(String, String), u32>,
    /// Node → how many pauses hold it.
    pauses: BTreeMap<String, u32>,
}

/// Runs the whole world of one seed; returns at `duration` with the `[[fault]]` indices of the
/// faults fired by trace events that never fired (before `faults_until`).
pub async fn supervise(
    scenario: Arc<Scenario>,
    plan: Plan,
    options: RunOptions,
    trace: Arc<Mutex<Trace>>,
) -> Vec<usize> {
    let handle = Handle::current();
    let start = Instant::now();
    let (fired_tx, mut fired_rx) = tokio::sync::mpsc::unbounded_channel();
    let rec = if plan.triggered.is_empty() {
        Recorder::new(trace, start)
    } else {
        let triggers = plan.triggered.iter().map(|t| t.trigger.clone()).collect();
        Recorder::watched(trace, start, Watch::new(triggers, fired_tx))
    };
    let persistence = scenario.broker.persistence;
    rec.push(Event::RunStarted {
        scenario: scenario.name.clone(),
        seed: plan.seed,
        protocol: scenario.protocol.to_string(),
        persistence,
        max_queued_messages: Some(scenario.broker.config.max_queued_messages as u64),
        max_inflight: Some(u64::from(scenario.broker.config.max_inflight)),
    });
    if scenario.broker.has_auth() {
        rec.push(Event::AuthConfigured {
            allow_anonymous: scenario.broker.config.allow_anonymous,
            users: scenario
                .broker
                .users
                .iter()
                .map(|u| trace::UserSpec {
                    name: u.name.clone(),
                    password: u.password.clone(),
                })
                .collect(),
            acl: scenario.broker.acl.clone(),
        });
    }

    let disk = (scenario.broker.persistence == Persistence::Durable)
        .then(|| SeamDisk::new(sub_seed(plan.seed, "disk")));
    let broker = broker_node(&handle, &scenario, &options, disk.clone());
    let clients = client_nodes(&handle, &scenario, plan.seed, &rec, start);
    let mut world = World {
        net: NetSim::current(),
        handle,
        broker,
        disk: disk.as_ref().map(SeamDisk::control),
        sync_latency: scenario.broker.sync_latency(),
        sync_errors: 0,
        fulls: 0,
        slow_syncs: BTreeMap::new(),
        in_sync_rng: ChaCha8Rng::seed_from_u64(sub_seed(plan.seed, "in_sync")),
        clients,
        clogs: BTreeMap::new(),
        pauses: BTreeMap::new(),
    };

    world.sync_latency_changed();
    if plan.loss > 0.0 {
        world.net.update_config(|c| c.packet_loss_rate = plan.loss);
    }
    let mut steps = Steps::new(&plan);
    while let Some((kind, index)) = steps.next(&mut fired_rx, start).await {
        let fault = steps.kind(index);
        match kind {
            StepKind::Apply => {
                if let FaultKind::CrashBroker { in_sync: true, .. } = fault {
                    world.await_sync_in_flight().await;
                }
                rec.push(Event::FaultApplied {
                    fault: trace_fault(fault),
                });
                world.apply(index, fault);
            }
            StepKind::Heal => {
                world.heal(index, fault);
                rec.push(Event::FaultHealed {
                    fault: trace_fault(fault),
                });
            }
        }
    }
    sleep_to(start + plan.faults_until).await;
    if plan.loss > 0.0 {
        world.net.update_config(|c| c.packet_loss_rate = 0.0);
    }
    rec.push(Event::SettleStarted);
    sleep_to(start + plan.duration).await;
    rec.push(Event::RunEnded);
    steps.unfired()
}

/// A node per client of the scenario, in its order (10.0.1.1, 10.0.1.2, ...), each with its
/// link's seam and no fault in force.
fn client_nodes(
    handle: &Handle,
    scenario: &Scenario,
    seed: u64,
    rec: &Recorder,
    start: Instant,
) -> BTreeMap<String, ClientHandle> {
    let broker_addr = format!("{BROKER_IP}:{BROKER_PORT}");
    let mut clients = BTreeMap::new();
    let mut sessions: BTreeMap<&str, Arc<Mutex<SessionNote>>> = BTreeMap::new();
    for (i, c) in scenario.clients.iter().enumerate() {
        let spec = Arc::new(ClientSpec::of(scenario, c, seed));
        let link = LinkControl::new();
        let app = Arc::new(ClientNode {
            spec,
            broker: broker_addr.clone(),
            link: link.clone(),
            disk: Arc::new(Mutex::new(Disk::default())),
            session: Arc::clone(sessions.entry(c.mqtt_id()).or_default()),
            rec: rec.clone(),
            start,
            halt: None,
        });
        let node = handle
            .create_node()
            .name(c.id.clone())
            .ip(IpAddr::V4(client_ip(i)))
            .init(move || app.clone().run())
            .build();
        clients.insert(
            c.id.clone(),
            ClientHandle {
                node,
                link,
                faults: FaultTally::default(),
            },
        );
    }
    clients
}

/// How long a broker whose store failed to open (a disk error) waits before it starts again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How often a `crash_broker` with `in_sync` looks for a sync in flight.
const IN_SYNC_POLL: Duration = Duration::from_micros(100);

/// The broker node: with a disk (durable), opens its store there and restores what it holds;
/// else starts empty. Then serves forever.
fn broker_node(
    handle: &Handle,
    scenario: &Scenario,
    options: &RunOptions,
    disk: Option<SeamDisk>,
) -> NodeHandle {
    let config = broker_config(scenario);
    let auth = broker_auth(scenario).unwrap_or_else(|e| panic!("{e}"));
    let factory = options.broker.clone();
    let open_store = options.store.clone();
    handle
        .create_node()
        .name("broker")
        .ip(IpAddr::V4(BROKER_IP))
        .init(move || {
            let config = config.clone();
            let auth = auth.clone();
            let disk = disk.clone();
            let factory = factory.clone();
            let open_store = open_store.clone();
            async move {
                let (store, state) = match disk {
                    Some(disk) => {
                        let (mut store, state) = loop {
                            match open_store(disk.clone()) {
                                Ok(opened) => break opened,
                                // As a service manager restarts a broker that exited on a
                                // failing disk: again after a pause, until the disk works.
                                Err(e @ StoreError::Io { .. }) => {
                                    tracing::warn!(error = %e, "the broker's store failed to open; starting again");
                                    tokio::time::sleep(STORE_RETRY).await;
                                }
                                Err(e) => panic!("the broker's store failed: {e}"),
                            }
                        };
                        if let Some(latency) = store.syncs_in_flight() {
                            tokio::time::sleep(latency).await;
                            store.complete_syncs();
                        }
                        (Some(store), state)
                    }
                    None => (None, None),
                };
                let core = factory(config, auth, state);
                let listener = loop {
                    match tokio::net::TcpListener::bind(("0.0.0.0", BROKER_PORT)).await {
                        Ok(l) => break l,
                        Err(e) => {
                            tracing::warn!(error = %e, "broker bind failed; retrying");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                };
                let journal =
                    store.map(|s| Journal::new(s, Mode::Synced, Duration::from_secs(1), u64::MAX));
                if let Err(e) = serve(core, vec![listener], journal, std::future::pending()).await {
                    panic!("broker server failed: {e}");
                }
            }
        })
        .build()
}

impl World {
    fn client(&mut self, id: &str) -> &mut ClientHandle {
        match self.clients.get_mut(id) {
            Some(c) => c,
            None => panic!("the plan names unknown client {id:?}"),
        }
    }

    fn node_id(&self, node: &Node) -> madsim::task::NodeId {
        match node {
            Node::Broker => self.broker.id(),
            Node::Client(id) => match self.clients.get(id) {
                Some(c) => c.node.id(),
                None => panic!("the plan names unknown client {id:?}"),
            },
        }
    }

    fn link_changed(&mut self, id: &str) {
        let c = self.client(id);
        c.faults.apply_to(&c.link);
    }

    fn clog(&mut self, from: &Node, to: &Node, on: bool) {
        let (a, b) = (self.node_id(from), self.node_id(to));
        let key = (from.name().to_string(), to.name().to_string());
        let count = self.clogs.entry(key).or_default();
        if on {
            *count += 1;
            if *count == 1 {
                self.net.clog_link(a, b);
            }
        } else if *count > 0 {
            *count -= 1;
            if *count == 0 {
                self.net.unclog_link(a, b);
            }
        }
    }

    fn pause(&mut self, node: &Node, on: bool) {
        let id = self.node_id(node);
        let count = self.pauses.entry(node.name().to_string()).or_default();
        if on {
            *count += 1;
            if *count == 1 {
                self.handle.pause(id);
            }
        } else if *count > 0 {
            *count -= 1;
            if *count == 0 {
                self.handle.resume(id);
            }
        }
    }

    fn apply(&mut self, index: usize, kind: &FaultKind) {
        match kind {
            FaultKind::Cut { client } => self.client(client).link.cut(),
            FaultKind::Blackhole { client, .. } => {
                self.client(client).faults.blackholes += 1;
                self.link_changed(client);
            }
            FaultKind::Delay { client, extra, .. } => {
                self.client(client).faults.delays.insert(index, *extra);
                self.link_changed(client);
            }
            FaultKind::SplitWrites {
                client,
                max_fragment,
                ..
            } => {
                self.client(client)
                    .faults
                    .splits
                    .insert(index, *max_fragment);
                self.link_changed(client);
            }
            FaultKind::Partition {
                from, to, oneway, ..
            } => {
                self.clog(from, to, true);
                if !oneway {
                    self.clog(to, from, true);
                }
            }
            FaultKind::Crash { client, .. } | FaultKind::Restart { client } => {
                let id = self.client(client).node.id();
                self.handle.kill(id);
            }
            FaultKind::PowerOff { client, .. } => {
                self.client(client).faults.blackholes += 1;
                self.link_changed(client);
                self.pause(&Node::Client(client.clone()), true);
            }
            FaultKind::CrashBroker { .. } => {
                if let Some(disk) = &self.disk {
                    disk.crash();
                }
                self.handle.kill(self.broker.id());
            }
            FaultKind::Pause { node, .. } => self.pause(node, true),
            FaultKind::SyncError { .. } => {
                self.sync_errors += 1;
                self.disk().set_sync_error(true);
            }
            FaultKind::DiskFull { .. } => {
                self.fulls += 1;
                self.disk().set_full(true);
            }
            FaultKind::SlowSync { latency, .. } => {
                self.slow_syncs.insert(index, *latency);
                self.sync_latency_changed();
            }
        }
    }

    /// Sets the disk's sync latency: the slowest `slow_sync` in force, else the scenario's.
    fn sync_latency_changed(&self) {
        if let Some(disk) = &self.disk {
            let slow = self.slow_syncs.values().copied().max();
            disk.set_sync_latency(slow.unwrap_or(self.sync_latency));
        }
    }

    /// Waits until a sync of the broker's disk is in flight (at most [`MAX_IN_SYNC_WAIT`]),
    /// then a seeded part of its latency, so the crash lands at a seeded instant inside it.
    async fn await_sync_in_flight(&mut self) {
        let disk = self.disk().clone();
        let deadline = Instant::now() + MAX_IN_SYNC_WAIT;
        while !disk.sync_in_flight() && Instant::now() < deadline {
            tokio::time::sleep(IN_SYNC_POLL).await;
        }
        // Seen within one poll of its start: the sync lasts at least this much longer.
        let rest = disk.sync_latency().saturating_sub(IN_SYNC_POLL);
        if disk.sync_in_flight() && !rest.is_zero() {
            let nanos = u64::try_from(rest.as_nanos()).unwrap_or(u64::MAX);
            let into = self.in_sync_rng.random_range(0..nanos);
            tokio::time::sleep(Duration::from_nanos(into)).await;
        }
    }

    /// The broker's disk; the scenario checks guarantee one for storage faults.
    fn disk(&self) -> &DiskControl {
        match &self.disk {
            Some(d) => d,
            None => panic!("a storage fault in a run without persistence `durable`"),
        }
    }

    fn heal(&mut self, index: usize, kind: &FaultKind) {
        match kind {
            FaultKind::Cut { .. } => {}
            FaultKind::Blackhole { client, .. } => {
                let c = self.client(client);
                c.faults.blackholes = c.faults.blackholes.saturating_sub(1);
                self.link_changed(client);
            }
            FaultKind::Delay { client, .. } => {
                self.client(client).faults.delays.remove(&index);
                self.link_changed(client);
            }
            FaultKind::SplitWrites { client, .. } => {
                self.client(client).faults.splits.remove(&index);
                self.link_changed(client);
            }
            FaultKind::Partition {
                from, to, oneway, ..
            } => {
                self.clog(from, to, false);
                if !oneway {
                    self.clog(to, from, false);
                }
            }
            FaultKind::Crash { client, .. } | FaultKind::Restart { client } => {
                let id = self.client(client).node.id();
                // Killed when applied; killed again so the restart never meets a live socket.
                self.handle.kill(id);
                self.handle.restart(id);
                self.pauses.remove(client.as_str());
            }
            FaultKind::PowerOff { client, .. } => {
                let node = Node::Client(client.clone());
                let id = self.node_id(&node);
                self.handle.kill(id);
                let c = self.client(client);
                c.faults.blackholes = c.faults.blackholes.saturating_sub(1);
                self.link_changed(client);
                self.handle.restart(id);
                self.pauses.remove(client.as_str());
            }
            FaultKind::CrashBroker { .. } => {
                self.handle.kill(self.broker.id());
                self.handle.restart(self.broker.id());
                self.pauses.remove(crate::trace::BROKER);
            }
            FaultKind::Pause { node, .. } => self.pause(node, false),
            FaultKind::SyncError { .. } => {
                self.sync_errors = self.sync_errors.saturating_sub(1);
                self.disk().set_sync_error(self.sync_errors > 0);
            }
            FaultKind::DiskFull { .. } => {
                self.fulls = self.fulls.saturating_sub(1);
                self.disk().set_full(self.fulls > 0);
            }
            FaultKind::SlowSync { .. } => {
                self.slow_syncs.remove(&index);
                self.sync_latency_changed();
            }
        }
    }
}
