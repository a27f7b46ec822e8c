//! Judging a broker we did not write (`mqtt-lab run --target HOST:PORT`): a scenario's clients
//! (the lab's client application on our client core) run on real TCP and real time against the
//! target, each behind a fault proxy of its own ([`crate::net::proxy`]), and the same checkers
//! judge the trace.
//!
//! - Faults: cut, black hole, extra delay and split writes are the proxy's seam; a partition
//!   holds the blocked directions and closes new connections; a client crash aborts the client's
//!   task (its socket closes) and starts a fresh process after `restart_after`; a power-off
//!   black-holes the client's proxy and aborts the task (the close waits in the hole), and the
//!   power-on heals the hole and starts a fresh process. Faults fired by trace events work as in
//!   the simulator.
//! - A broker crash runs the user's commands ([`BrokerCommands`], `broker.rs`).
//! - What a target run cannot do is refused per scenario with the reason ([`unsupported`]):
//!   broker crashes without a command, broker and client pauses, crashes in a sync, storage
//!   faults, users and ACLs (the target's configuration).
//! - The network: each proxy adds the plan's latency to every relayed chunk, and its loss
//!   during the faults phase as TCP shows it, retransmission delay ([`Network`]).
//! - Time is real: a run takes its scenario's duration, so runs share the broker: each gets
//!   its own client identifier and topic prefix ([`Names`]), and the trace records the
//!   scenario's names. A scenario that needs the broker to itself ([`needs_broker_alone`]) runs
//!   alone with its names as written. After each run the sessions of its client identifiers
//!   are ended and the retained messages under its names cleared, so a later run finds
//!   nothing of it.
//! - A real network run is not bit-reproducible: the same seed gives the same plan (faults,
//!   workloads, client seeds), not the same trace.
//! - `--time-scale` multiplies every time of a run, the clients' protocol times too
//!   ([`TimeScale`], [`unscalable`]).
//! - A broker crash strikes out of the lab's sight: the trace records when the command started
//!   and when the lab knew the broker down (`fault_took_effect`), and the judgment is made at
//!   both ends of that window ([`crate::sim::judge_readings`]): what one end alone breaks is
//!   undecided.
//!
//! Not here: the simulator (`sim`), the checkers (`check`), the suite and its report (`cli`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::check::CheckConfig;
use crate::net::proxy::{Network, Partition, Proxy, ProxyControl};
use crate::net::seam::LinkControl;
use crate::scenario::{FaultKind, Node, Plan, Scenario, TimeScale, sub_seed};
use crate::sim::app::{ClientNode, ClientSpec, Disk, SessionNote};
pub use crate::sim::names::Names;
use crate::sim::recorder::{Recorder, Watch, lock, sleep_to};
use crate::sim::schedule::{StepKind, Steps, trace_fault};
use crate::sim::{RunOutcome, RunStatus, judged};
use crate::trace::{Event, Trace};

mod broker;
mod probe;
mod requirements;

pub use broker::{BrokerCommands, COMMAND_WAIT, UP_WAIT};
pub use probe::{Identity, Limits, probe};
pub use requirements::{Requirements, requirements};

/// The broker under test: where it listens, and the commands that crash and restart it.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub broker: BrokerCommands,
}

/// How long the clean-up after a run may take.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);

/// Why `scenario` cannot run against `target`, or `None` if it can.
pub fn unsupported(scenario: &Scenario, target: &Target) -> Option<String> {
    let crash = if target.broker.can_crash() {
        None
    } else {
        Some(
            "broker crashes (crash_broker: give --broker-restart, or --broker-stop and --broker-start)",
        )
    };
    let mut kinds: Vec<&'static str> = Vec::new();
    let plan = scenario.plan(1);
    let scripted = plan
        .faults
        .iter()
        .map(|f| &f.kind)
        .chain(plan.triggered.iter().map(|t| &t.kind));
    for kind in scripted {
        match kind {
            FaultKind::CrashBroker { in_sync: true, .. } => {
                kinds.push("broker crashes in the middle of a disk sync (in_sync)")
            }
            FaultKind::CrashBroker { .. } => kinds.extend(crash),
            FaultKind::Pause {
                node: Node::Broker, ..
            } => kinds.push("broker pauses"),
            FaultKind::Pause { .. } => kinds.push("client pauses"),
            FaultKind::SyncError { .. }
            | FaultKind::DiskFull { .. }
            | FaultKind::SlowSync { .. } => kinds.push("storage faults"),
            _ => {}
        }
    }
    if let Some(r) = &scenario.random {
        if r.broker_crashes_per_minute.is_some() {
            kinds.extend(crash);
        }
        if r.pauses_per_minute.is_some() {
            kinds.push("pauses");
        }
        if !r.storage_fields().is_empty() {
            kinds.push("storage faults");
        }
    }
    if scenario.broker.has_auth() {
        kinds.push("users or an ACL (the target's configuration)");
    }
    kinds.sort_unstable();
    kinds.dedup();
    (!kinds.is_empty()).then(|| format!("needs what a target run cannot do: {}", kinds.join(", ")))
}

/// Why `scenario`'s clock does not allow `scale` ([`Scenario::scalable`]), or `None`.
pub fn unscalable(scenario: &Scenario, scale: TimeScale) -> Option<String> {
    let refused = scenario.scalable(scale).err()?;
    Some(format!(
        "its clock does not allow --time-scale {scale}: {refused}"
    ))
}

/// Whether `scenario` crashes the broker (scripted, triggered or at random).
pub fn restarts_broker(scenario: &Scenario) -> bool {
    let plan = scenario.plan(1);
    let scripted = plan
        .faults
        .iter()
        .map(|f| &f.kind)
        .chain(plan.triggered.iter().map(|t| &t.kind))
        .any(|k| matches!(k, FaultKind::CrashBroker { .. }));
    scripted
        || scenario
            .random
            .as_ref()
            .is_some_and(|r| r.broker_crashes_per_minute.is_some())
}

/// Why `scenario` needs the broker to itself against a target (it runs alone, its names as
/// written), or `None` if it can share it with other runs under a prefix.
pub fn needs_broker_alone(scenario: &Scenario) -> Option<String> {
    if scenario.target.exclusive {
        return Some("it says so ([target] exclusive = true)".into());
    }
    if restarts_broker(scenario) {
        return Some("it restarts the broker".into());
    }
    let plan = scenario.plan(1);
    let drawn = scenario.drawn(&plan);
    let s = drawn.as_ref();
    let topics = s
        .workloads
        .iter()
        .map(|w| w.topic.as_str())
        .chain(s.clients.iter().flat_map(|c| {
            c.subscribe
                .iter()
                .map(|x| x.filter.as_str())
                .chain(c.unsubscribe.iter().map(|u| u.filter.as_str()))
                .chain(c.will.iter().map(|w| w.topic.as_str()))
        }));
    Names::fits(topics).map(|why| format!("a prefix would change its topics: {why}"))
}

/// Runs `seed` of `scenario` against the broker at `target` in real time, then judges it.
/// Call it from outside any async runtime: it builds its own.
/// `names` is how its clients write their identifiers and topics on the wire
/// ([`Names::default`] for a scenario that has the broker to itself).
/// `scale` multiplies every time of the run ([`TimeScale`]); a seed whose clock does not
/// allow it ends as a lab error with the reason ([`unscalable`] tells before any run).
pub fn run_seed(
    scenario: &Scenario,
    seed: u64,
    target: &Target,
    names: &Names,
    scale: TimeScale,
    check: &CheckConfig,
) -> RunOutcome {
    let plan = scenario.plan(seed);
    let wall = Instant::now();
    let drawn = scenario.drawn(&plan);
    let (scenario, plan) = match drawn.scaled(scale) {
        Ok(scaled) => (scaled, plan.scaled(scale)),
        Err(why) => {
            let status = RunStatus::Crashed(format!(
                "this seed's clock does not allow --time-scale {scale}: {why}"
            ));
            return judged(
                &drawn,
                plan,
                status,
                Trace::new(),
                Vec::new(),
                wall.elapsed(),
                check,
            );
        }
    };
    let scenario = &scenario;
    let trace = Arc::new(Mutex::new(Trace::new()));
    // One thread, as under the simulator: every event is recorded in the order its time was
    // read, so the trace's clock never runs backwards.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let (status, unfired) = match runtime {
        Err(e) => (
            RunStatus::Crashed(format!("cannot start a runtime: {e}")),
            Vec::new(),
        ),
        Ok(rt) => {
            let result = rt.block_on(supervise(
                Arc::new(scenario.clone()),
                plan.clone(),
                target,
                names,
                trace.clone(),
            ));
            rt.block_on(clean_up(scenario, target.addr, names));
            rt.shutdown_timeout(Duration::from_secs(1));
            match result {
                Ok(unfired) => (RunStatus::Completed, unfired),
                Err(e) => (RunStatus::Crashed(e), Vec::new()),
            }
        }
    };
    let trace = std::mem::take(&mut *lock(&trace));
    judged(
        scenario,
        plan,
        status,
        trace,
        unfired,
        wall.elapsed(),
        check,
    )
}

/// One client of the run: its proxy, its process (a task, and the signal that halts its
/// client's event loop) and the faults holding its link.
struct Client {
    /// What every life of the process starts from (its `halt` is replaced per life).
    app: ClientNode,
    proxy: Proxy,
    task: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    blackholes: u32,
    /// Fault index → extra delay.
    delays: BTreeMap<usize, Duration>,
    /// Fault index → largest fragment.
    splits: BTreeMap<usize, u32>,
    /// Partitions holding each direction (to the target, from it).
    partitions: (u32, u32),
}

impl Client {
    fn control(&self) -> ProxyControl {
        self.proxy.control()
    }

    /// Sets the proxy's lasting faults to the combination in force.
    fn faults_changed(&self) {
        let control = self.control();
        let link = control.link();
        link.set_blackhole(self.blackholes > 0);
        link.set_extra_delay(self.delays.values().copied().max().unwrap_or_default());
        link.set_max_fragment(self.splits.values().copied().min().map(|n| n as usize));
        control.set_partition(Partition {
            to_target: self.partitions.0 > 0,
            from_target: self.partitions.1 > 0,
        });
    }

    /// Starts a fresh process (nothing of the last one's memory but its disk).
    fn start(&mut self) {
        if self.task.is_none() {
            let (halt, halted) = watch::channel(false);
            let app = Arc::new(ClientNode {
                spec: self.app.spec.clone(),
                broker: self.app.broker.clone(),
                link: LinkControl::new(),
                disk: self.app.disk.clone(),
                session: self.app.session.clone(),
                rec: self.app.rec.clone(),
                start: self.app.start,
                halt: Some(halted),
            });
            self.task = Some((tokio::spawn(app.run()), halt));
        }
    }

    /// Kills the process: its client stops at once and its connection closes, with nothing
    /// sent.
    fn kill(&mut self) {
        if let Some((task, halt)) = self.task.take() {
            let _ = halt.send(true);
            task.abort();
        }
    }
}

/// The faults of the plan applied to the clients' proxies and processes, in real time.
async fn supervise(
    scenario: Arc<Scenario>,
    plan: Plan,
    target: &Target,
    names: &Names,
    trace: Arc<Mutex<Trace>>,
) -> Result<Vec<usize>, String> {
    let start = Instant::now();
    let (fired_tx, mut fired_rx) = tokio::sync::mpsc::unbounded_channel();
    let rec = if plan.triggered.is_empty() {
        Recorder::new(trace.clone(), start)
    } else {
        let triggers = plan.triggered.iter().map(|t| t.trigger.clone()).collect();
        Recorder::watched(trace.clone(), start, Watch::new(triggers, fired_tx))
    };
    rec.push(Event::RunStarted {
        scenario: scenario.name.clone(),
        seed: plan.seed,
        protocol: scenario.protocol.to_string(),
        persistence: scenario.broker.persistence,
        // The queue bound is what the scenario requires of the broker (a target that drops
        // more is reported); its inflight window is the target's own setting, which no
        // protocol rule exposes (a 5.0 client's Receive Maximum still binds it).
        max_queued_messages: Some(scenario.broker.config.max_queued_messages as u64),
        max_inflight: None,
    });

    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, Arc<Mutex<SessionNote>>> = BTreeMap::new();
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    for c in &scenario.clients {
        let proxy = Proxy::start(listen, target.addr)
            .await
            .map_err(|e| format!("cannot start a fault proxy: {e}"))?;
        proxy.control().set_network(Network {
            latency: plan.latency,
            loss: plan.loss,
            seed: sub_seed(plan.seed, &format!("proxy/{}", c.id)),
        });
        let app = ClientNode {
            spec: Arc::new(ClientSpec {
                names: names.clone(),
                ..ClientSpec::of(&scenario, c, plan.seed)
            }),
            broker: proxy.local_addr().to_string(),
            link: LinkControl::new(),
            disk: Arc::new(Mutex::new(Disk::default())),
            session: Arc::clone(sessions.entry(c.mqtt_id()).or_default()),
            rec: rec.clone(),
            start,
            halt: None,
        };
        let mut client = Client {
            app,
            proxy,
            task: None,
            blackholes: 0,
            delays: BTreeMap::new(),
            splits: BTreeMap::new(),
            partitions: (0, 0),
        };
        client.start();
        clients.insert(c.id.clone(), client);
    }

    let mut steps = Steps::new(&plan);
    while let Some((kind, index)) = steps.next(&mut fired_rx, start).await {
        let fault = steps.kind(index);
        match kind {
            StepKind::Apply => {
                rec.push(Event::FaultApplied {
                    fault: trace_fault(fault),
                });
                if let FaultKind::CrashBroker { .. } = fault {
                    let took_effect = || {
                        rec.push(Event::FaultTookEffect {
                            fault: trace_fault(fault),
                        })
                    };
                    target.broker.crash(target.addr, took_effect).await?;
                } else {
                    apply(&mut clients, index, fault)?;
                }
            }
            StepKind::Heal => {
                if let FaultKind::CrashBroker { .. } = fault {
                    target.broker.recover(target.addr).await?;
                } else {
                    heal(&mut clients, index, fault)?;
                }
                rec.push(Event::FaultHealed {
                    fault: trace_fault(fault),
                });
            }
        }
    }
    sleep_to(start + plan.faults_until).await;
    // Loss is a fault: it ends with the faults phase; latency stays.
    for client in clients.values() {
        client.control().set_network(Network {
            loss: 0.0,
            ..client.control().network()
        });
    }
    rec.push(Event::SettleStarted);
    sleep_to(start + plan.duration).await;
    rec.push(Event::RunEnded);
    // What the clients' ends would record is no part of the run.
    let recorded = std::mem::take(&mut *lock(&trace));
    for client in clients.values_mut() {
        client.kill();
    }
    *lock(&trace) = recorded;
    Ok(steps.unfired())
}

fn client<'a>(
    clients: &'a mut BTreeMap<String, Client>,
    id: &str,
) -> Result<&'a mut Client, String> {
    clients
        .get_mut(id)
        .ok_or_else(|| format!("the plan names unknown client {id:?}"))
}

/// The client side of a partition between `from` and `to` (one of them the broker), and the
/// direction it blocks: `true` toward the target.
fn partition_side<'n>(from: &'n Node, to: &'n Node) -> Result<(&'n str, bool), String> {
    match (from, to) {
        (Node::Client(c), Node::Broker) => Ok((c, true)),
        (Node::Broker, Node::Client(c)) => Ok((c, false)),
        _ => Err("a partition needs the broker on one side".into()),
    }
}

/// Counts a partition between `from` and `to` (and back, unless `oneway`) in force (`on`) or
/// healed on its client's proxy.
fn partition(
    clients: &mut BTreeMap<String, Client>,
    from: &Node,
    to: &Node,
    oneway: bool,
    on: bool,
) -> Result<(), String> {
    for (a, b, blocked) in [(from, to, true), (to, from, !oneway)] {
        if blocked {
            let (id, toward) = partition_side(a, b)?;
            let c = client(clients, id)?;
            let count = if toward {
                &mut c.partitions.0
            } else {
                &mut c.partitions.1
            };
            *count = if on {
                *count + 1
            } else {
                count.saturating_sub(1)
            };
            c.faults_changed();
        }
    }
    Ok(())
}

fn apply(
    clients: &mut BTreeMap<String, Client>,
    index: usize,
    kind: &FaultKind,
) -> Result<(), String> {
    match kind {
        FaultKind::Cut { client: id } => client(clients, id)?.control().link().cut(),
        FaultKind::Blackhole { client: id, .. } => {
            let c = client(clients, id)?;
            c.blackholes += 1;
            c.faults_changed();
        }
        FaultKind::Delay {
            client: id, extra, ..
        } => {
            let c = client(clients, id)?;
            c.delays.insert(index, *extra);
            c.faults_changed();
        }
        FaultKind::SplitWrites {
            client: id,
            max_fragment,
            ..
        } => {
            let c = client(clients, id)?;
            c.splits.insert(index, *max_fragment);
            c.faults_changed();
        }
        FaultKind::Partition {
            from, to, oneway, ..
        } => partition(clients, from, to, *oneway, true)?,
        FaultKind::Crash { client: id, .. } | FaultKind::Restart { client: id } => {
            client(clients, id)?.kill()
        }
        FaultKind::PowerOff { client: id, .. } => {
            let c = client(clients, id)?;
            c.blackholes += 1;
            c.faults_changed();
            c.kill();
        }
        other => return Err(format!("a target run cannot apply {other}")),
    }
    Ok(())
}

fn heal(
    clients: &mut BTreeMap<String, Client>,
    index: usize,
    kind: &FaultKind,
) -> Result<(), String> {
    match kind {
        FaultKind::Cut { .. } => {}
        FaultKind::Blackhole { client: id, .. } => {
            let c = client(clients, id)?;
            c.blackholes = c.blackholes.saturating_sub(1);
            c.faults_changed();
        }
        FaultKind::Delay { client: id, .. } => {
            let c = client(clients, id)?;
            c.delays.remove(&index);
            c.faults_changed();
        }
        FaultKind::SplitWrites { client: id, .. } => {
            let c = client(clients, id)?;
            c.splits.remove(&index);
            c.faults_changed();
        }
        FaultKind::Partition {
            from, to, oneway, ..
        } => partition(clients, from, to, *oneway, false)?,
        FaultKind::Crash { client: id, .. } | FaultKind::Restart { client: id } => {
            client(clients, id)?.start()
        }
        FaultKind::PowerOff { client: id, .. } => {
            let c = client(clients, id)?;
            c.blackholes = c.blackholes.saturating_sub(1);
            c.faults_changed();
            c.start();
        }
        other => return Err(format!("a target run cannot heal {other}")),
    }
    Ok(())
}

/// Ends the sessions of the scenario's client identifiers and clears the retained messages
/// under its names, so a later run finds nothing of this one. Best effort, bounded by
/// [`CLEANUP_WAIT`]; what it cannot do is logged.
async fn clean_up(scenario: &Scenario, target: SocketAddr, names: &Names) {
    use crate::client::{ClientConfig, ClientEvent};
    use crate::codec::{QoS, ReasonCode};
    use crate::net::client::{ClientOptions, Events, MqttClient, subscription};

    async fn connect(target: SocketAddr, config: ClientConfig) -> Option<(MqttClient, Events)> {
        let (client, mut events) =
            MqttClient::start(ClientOptions::new(target.to_string(), config)).ok()?;
        while let Some(ev) = events.recv().await {
            if let ClientEvent::Connected { .. } = ev {
                return Some((client, events));
            }
        }
        None
    }

    let work = async {
        let mut ids: Vec<&str> = scenario.clients.iter().map(|c| c.mqtt_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids.into_iter().filter(|id| !id.is_empty()) {
            let config = ClientConfig {
                client_id: names.client_id(id),
                clean_start: true,
                protocol: scenario.protocol,
                ..ClientConfig::default()
            };
            if let Some((client, _events)) = connect(target, config).await {
                client.disconnect(ReasonCode::Success).await;
            }
        }
        let config = ClientConfig {
            client_id: names.client_id("mqtt-lab-cleaner"),
            clean_start: true,
            protocol: scenario.protocol,
            ..ClientConfig::default()
        };
        let Some((client, mut events)) = connect(target, config).await else {
            return;
        };
        // `#` does not match topics beginning with `$` [MQTT-4.7.2-1]: those the scenario
        // writes to are asked for by name.
        let mut filters = vec![names.everything()];
        let written = scenario.workloads.iter().map(|w| w.topic.as_str()).chain(
            scenario
                .clients
                .iter()
                .filter_map(|c| c.will.as_ref().map(|w| w.topic.as_str())),
        );
        filters.extend(
            written
                .filter(|t| t.starts_with('$'))
                .map(|t| names.topic(t))
                .collect::<std::collections::BTreeSet<_>>(),
        );
        let filters = filters
            .into_iter()
            .map(|f| subscription(f, QoS::AtMostOnce))
            .collect();
        if client.subscribe(filters).await.is_err() {
            return;
        }
        let mut retained = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(300), events.recv()).await
        {
            if let ClientEvent::Message(m) = ev
                && m.retain
                && !m.payload.is_empty()
            {
                retained.push(m.topic.clone());
            }
        }
        for topic in retained {
            let _ = client
                .publish(topic, bytes::Bytes::new(), QoS::AtMostOnce, true)
                .await;
        }
        client.disconnect(ReasonCode::Success).await;
    };
    if tokio::time::timeout(CLEANUP_WAIT, work).await.is_err() {
        tracing::warn!("target clean-up did not finish in {CLEANUP_WAIT:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra_client: &str, tail: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nprotocol = \"5.0\"\nduration = \"10s\"\n\
             [[client]]\nid = \"a\"\n{extra_client}\n{tail}\n\
             [expect]\ncheckers = [\"delivery\"]\n"
        );
        Scenario::from_str(&text, "t.toml").unwrap()
    }

    fn target(can_crash: bool) -> Target {
        Target {
            addr: ([127, 0, 0, 1], 1883).into(),
            broker: BrokerCommands::new(can_crash.then(|| "true".to_string()), None, None).unwrap(),
        }
    }

    #[test]
    fn a_plain_story_shares_the_broker() {
        let s = scenario("subscribe = [{ filter = \"s/#\", qos = 1 }]", "");
        assert_eq!(needs_broker_alone(&s), None);
        assert!(!restarts_broker(&s));
        assert_eq!(unsupported(&s, &target(false)), None);
    }

    #[test]
    fn a_story_runs_alone_when_it_says_so_restarts_the_broker_or_uses_dollar_topics() {
        let said = scenario("", "[target]\nexclusive = true\n");
        assert!(needs_broker_alone(&said).unwrap().contains("exclusive"));
        let dollar = scenario("subscribe = [{ filter = \"$SYS/#\", qos = 0 }]", "");
        assert!(needs_broker_alone(&dollar).unwrap().contains("$SYS/#"));
        let crash = scenario("", "[[fault]]\nat = \"1s\"\ncrash_broker = {}\n");
        assert!(restarts_broker(&crash));
        assert!(
            needs_broker_alone(&crash)
                .unwrap()
                .contains("restarts the broker")
        );
        // A crash needs the user's commands, and one inside a disk sync cannot be done.
        assert!(
            unsupported(&crash, &target(false))
                .unwrap()
                .contains("--broker-restart")
        );
        assert_eq!(unsupported(&crash, &target(true)), None);
        let in_sync = scenario(
            "",
            "[broker]\npersistence = \"durable\"\n[[fault]]\nat = \"1s\"\ncrash_broker = { in_sync = true }\n",
        );
        assert!(
            unsupported(&in_sync, &target(true))
                .unwrap()
                .contains("in_sync")
        );
    }
}
