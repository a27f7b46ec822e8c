//! One client process of the simulated world: the application around our async client.
//!
//! It connects at `connect_at`, subscribes after every connect until the broker has granted
//! every subscription in the current session (a connect that finds no session,
//! `session_present = 0`, starts a new one), publishes its workloads when each message is due, disconnects
//! normally at `disconnect_at` and connects again at `reconnect_at`. Messages due while it is
//! offline (between a DISCONNECT and the reconnect, or while the process is down) are published
//! as soon as it runs again, in order.
//!
//! What outlives a crash is in [`Disk`], captured by the node's `init` closure like a file on
//! disk: the workload cursors and the message and CONNECT counters, so sequence numbers and will
//! labels never repeat. Everything else (the client core, its session state) is lost.
//!
//! Not here: faults (the supervisor's) and trace details (`recorder.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;

use super::names::Names;
use super::options::SubscribePacket;
use super::recorder::{ClientRecorder, Recorder, lock, sleep_to, sleep_to_opt};
use crate::client::{ClientConfig, ClientEvent};
use crate::codec::{Properties, PropertySet, ReasonCode};
use crate::net::client::{ClientOptions, Events, MqttClient, Observer, WillSource};
use crate::net::seam::LinkControl;
use crate::scenario::Workload;
use crate::trace::payload;

/// Events the client may buffer for the application before its event loop waits.
const EVENT_CAPACITY: usize = 1 << 16;
/// How long a normal DISCONNECT may take before the process gives up waiting for it.
const DISCONNECT_WAIT: Duration = Duration::from_secs(10);

/// What a client process keeps across crashes.
#[derive(Debug, Default)]
pub struct Disk {
    /// Per workload of this client (in scenario order): messages already requested.
    pub cursors: Vec<u32>,
    /// Messages requested so far over all workloads (the last sequence number used).
    pub published: u64,
    /// CONNECTs sent so far (the last will label number used).
    pub connects: u64,
    /// Per `unsubscribe` entry of this client (in spec order): its UNSUBACK has arrived.
    pub unsubscribed: Vec<bool>,
}

/// What the application knows of its client identifier's session on the broker, kept across
/// crashes and shared by every process using that identifier (a second process taking a
/// session over is the same application moved to another machine).
#[derive(Debug, Default)]
pub struct SessionNote {
    /// Sessions begun so far: connects that found no session (`session_present = 0`).
    pub sessions: u64,
    /// Whether every SUBSCRIBE of the current session has had its SUBACK. A connect whose
    /// CONNACK was lost can leave a session the broker rightly reports present on the next
    /// connect but that holds no subscription yet: the application subscribes until this is set.
    pub subscribed: bool,
}

/// Everything fixed about one client, derived from the scenario.
#[derive(Debug)]
pub struct ClientSpec {
    /// The process (node) name: names its payload labels.
    pub id: String,
    /// The client identifier the trace knows its connections by (`config.client_id` is the
    /// one its CONNECTs carry: the same, or empty for a broker-assigned one).
    pub client_id: String,
    pub config: ClientConfig,
    /// The SUBSCRIBE packets sent after a connect until they are all granted in the session.
    pub subscribes: Vec<SubscribePacket>,
    /// Whether they are also sent after a connect that resumed a session.
    pub resubscribe: bool,
    /// The filters to unsubscribe from and when, in time order.
    pub unsubscribes: Vec<(Duration, String)>,
    /// This client's workloads, in scenario order.
    pub workloads: Vec<Workload>,
    /// Online windows `[open, close)`; `None`: until the end of the run.
    pub windows: Vec<(Duration, Option<Duration>)>,
    /// The clean flag of the connects of the windows after the first (`reconnect_clean_start`),
    /// if it differs from the configuration's.
    pub reconnect_clean: Option<bool>,
    /// The Session Expiry Interval its DISCONNECT carries, in seconds
    /// (`disconnect_session_expiry`).
    pub disconnect_session_expiry: Option<u32>,
    /// Seeds the client core.
    pub seed: u64,
    /// How its client identifier and topics are written on the wire.
    pub names: Names,
}

impl ClientSpec {
    /// The spec of scenario client `c` in the run of `seed`.
    pub fn of(
        scenario: &crate::scenario::Scenario,
        c: &crate::scenario::ClientConfig,
        seed: u64,
    ) -> ClientSpec {
        ClientSpec {
            id: c.id.clone(),
            client_id: c.mqtt_id().to_string(),
            config: super::options::client_config(scenario, c),
            subscribes: super::options::subscribe_packets(scenario, c),
            resubscribe: c.resubscribe,
            unsubscribes: ClientSpec::unsubscribes(c),
            workloads: scenario
                .workloads
                .iter()
                .filter(|w| w.client == c.id)
                .cloned()
                .collect(),
            windows: ClientSpec::windows(c),
            reconnect_clean: c.reconnect_clean_start,
            disconnect_session_expiry: c
                .disconnect_session_expiry
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            seed: crate::scenario::sub_seed(seed, &format!("client/{}", c.id)),
            names: Names::default(),
        }
    }

    /// A scenario client's unsubscribes, in time order (ties in file order).
    pub fn unsubscribes(c: &crate::scenario::ClientConfig) -> Vec<(Duration, String)> {
        let mut u: Vec<(Duration, String)> = c
            .unsubscribe
            .iter()
            .map(|u| (u.at, u.filter.clone()))
            .collect();
        u.sort_by_key(|(at, _)| *at);
        u
    }

    /// The online windows of a scenario client: from `connect_at` to `disconnect_at`, then from
    /// `reconnect_at` on.
    pub fn windows(c: &crate::scenario::ClientConfig) -> Vec<(Duration, Option<Duration>)> {
        let mut w = vec![(c.connect_at, c.disconnect_at)];
        if let (Some(_), Some(again)) = (c.disconnect_at, c.reconnect_at) {
            w.push((again, None));
        }
        w
    }
}

/// A client node: its spec, where the broker is, its link, its disk and the recorder.
pub struct ClientNode {
    pub spec: Arc<ClientSpec>,
    pub broker: String,
    pub link: LinkControl,
    pub disk: Arc<Mutex<Disk>>,
    /// Shared with the other processes of the same client identifier.
    pub session: Arc<Mutex<SessionNote>>,
    pub rec: Recorder,
    /// The start of the run (virtual time).
    pub start: Instant,
    /// Turns `true` when the process is killed, where killing its task does not end its
    /// client's tasks (a real-network run); `None` under the simulator, whose node kill does.
    pub halt: Option<tokio::sync::watch::Receiver<bool>>,
}

impl ClientNode {
    /// One life of the process: its online windows from its (re)start on, then idle.
    pub async fn run(self: Arc<Self>) {
        {
            let mut d = lock(&self.disk);
            d.cursors.resize(self.spec.workloads.len(), 0);
            d.unsubscribed.resize(self.spec.unsubscribes.len(), false);
        }
        for (i, &(open, close)) in self.spec.windows.iter().enumerate() {
            if close.is_some_and(|c| self.start + c <= Instant::now()) {
                continue;
            }
            sleep_to(self.start + open).await;
            self.window(close, i > 0).await;
        }
        // The process lives on, offline: if it returned, the simulator would end the node and
        // drop the sockets of a DISCONNECT still being written.
        std::future::pending::<()>().await;
    }

    /// The next workload message due: its time and workload index.
    fn next_due(&self) -> Option<(Duration, usize)> {
        let d = lock(&self.disk);
        self.spec
            .workloads
            .iter()
            .enumerate()
            .filter(|(i, w)| d.cursors[*i] < w.count)
            .map(|(i, w)| (w.due(d.cursors[i]), i))
            .min()
    }

    fn will_source(&self) -> Option<WillSource> {
        let template = self.spec.config.will.clone()?;
        let disk = self.disk.clone();
        let id = self.spec.id.clone();
        let names = self.spec.names.clone();
        Some(Arc::new(move || {
            let mut d = lock(&disk);
            d.connects += 1;
            let mut will = template.clone();
            will.topic = names.topic(&will.topic);
            will.payload = Bytes::from(payload::will_payload(&id, d.connects));
            Some(will)
        }))
    }

    /// One online window: a fresh client connects, works, and (at `close`) disconnects.
    /// `again`: a window after the first, which connects with `reconnect_clean` if set.
    async fn window(&self, close: Option<Duration>, again: bool) {
        let crec = Arc::new(ClientRecorder::new(
            &self.spec.client_id,
            &self.spec.id,
            self.spec.names.clone(),
            self.rec.clone(),
        ));
        let observer: Observer = {
            let crec = crec.clone();
            Arc::new(move |_, wire| crec.observe(wire))
        };
        let mut config = self.spec.config.clone();
        config.client_id = self.spec.names.client_id(&config.client_id);
        if let Some(will) = &mut config.will {
            will.topic = self.spec.names.topic(&will.topic);
        }
        if let Some(clean) = self.spec.reconnect_clean.filter(|_| again) {
            config.clean_start = clean;
        }
        let options = ClientOptions {
            broker: self.broker.clone(),
            connector: Default::default(),
            config,
            seed: self.spec.seed,
            link: self.link.clone(),
            event_capacity: EVENT_CAPACITY,
            observer: Some(observer),
            will_for_connect: self.will_source(),
            halt: self.halt.clone(),
        };
        let (client, mut events) = match MqttClient::start(options) {
            Ok(x) => x,
            Err(e) => panic!("client {}: invalid configuration: {e}", self.spec.id),
        };
        let close_at = close.map(|c| self.start + c);
        // Unsubscribes this process has asked for: the core keeps each until its UNSUBACK.
        let mut unsubscribing = vec![false; self.spec.unsubscribes.len()];
        loop {
            let due = self.next_due().map(|(t, _)| self.start + t);
            let unsub_due = self.next_unsubscribe(&unsubscribing);
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(&client, &crec, ev),
                    None => return,
                },
                _ = sleep_to_opt(close_at) => {
                    self.disconnect(&client, &crec, &mut events).await;
                    return;
                }
                _ = sleep_to_opt(due) => {
                    if !self.publish_due(&client, &crec, &mut events).await {
                        return;
                    }
                }
                _ = sleep_to_opt(unsub_due) => self.unsubscribe_due(&client, &mut unsubscribing),
            }
        }
    }

    /// When the next unsubscribe this process has not asked for is due (now, if overdue and not
    /// yet acknowledged to an earlier process).
    fn next_unsubscribe(&self, asked: &[bool]) -> Option<Instant> {
        let d = lock(&self.disk);
        self.spec
            .unsubscribes
            .iter()
            .enumerate()
            .find(|(k, _)| !asked[*k] && !d.unsubscribed[*k])
            .map(|(_, (at, _))| self.start + *at)
    }

    /// Asks the client to unsubscribe every filter due by now; the UNSUBACK is kept on disk.
    fn unsubscribe_due(&self, client: &MqttClient, asked: &mut [bool]) {
        let now = Instant::now();
        for (k, (at, filter)) in self.spec.unsubscribes.iter().enumerate() {
            if asked[k] || lock(&self.disk).unsubscribed[k] || self.start + *at > now {
                continue;
            }
            asked[k] = true;
            let client = client.clone();
            let filter = self.spec.names.filter(filter);
            let disk = self.disk.clone();
            tokio::spawn(async move {
                if client.unsubscribe(vec![filter]).await.is_ok() {
                    lock(&disk).unsubscribed[k] = true;
                }
            });
        }
    }

    /// Whether `filter` has been given up: its unsubscribe time has come.
    fn retired(&self, filter: &str) -> bool {
        let now = Instant::now();
        self.spec
            .unsubscribes
            .iter()
            .any(|(at, f)| f == filter && self.start + *at <= now)
    }

    fn on_event(&self, client: &MqttClient, crec: &ClientRecorder, ev: ClientEvent) {
        crec.event(&ev);
        let ClientEvent::Connected {
            session_present, ..
        } = ev
        else {
            return;
        };
        let session = {
            let mut d = lock(&self.session);
            if !session_present {
                d.sessions += 1;
                d.subscribed = false;
            }
            if d.subscribed && !self.spec.resubscribe || self.spec.subscribes.is_empty() {
                return;
            }
            d.sessions
        };
        let client = client.clone();
        let note = Arc::clone(&self.session);
        let mut packets = self.spec.subscribes.clone();
        if !self.spec.unsubscribes.is_empty() {
            for p in &mut packets {
                p.filters.retain(|f| !self.retired(&f.filter));
            }
            packets.retain(|p| !p.filters.is_empty());
        }
        for f in packets.iter_mut().flat_map(|p| p.filters.iter_mut()) {
            f.filter = self.spec.names.filter(&f.filter);
        }
        tokio::spawn(async move {
            for p in packets {
                let properties = Properties::from(PropertySet {
                    subscription_identifiers: p.id.into_iter().collect(),
                    ..PropertySet::default()
                });
                if client.subscribe_with(p.filters, properties).await.is_err() {
                    return;
                }
            }
            let mut d = lock(&note);
            if d.sessions == session {
                d.subscribed = true;
            }
        });
    }

    /// Handles every event already waiting; false once the client has stopped.
    fn drain_ready(&self, client: &MqttClient, crec: &ClientRecorder, events: &mut Events) -> bool {
        loop {
            match events.recv().now_or_never() {
                Some(Some(ev)) => self.on_event(client, crec, ev),
                Some(None) => return false,
                None => return true,
            }
        }
    }

    /// Publishes every message due by now, in due order; false once the client has stopped.
    async fn publish_due(
        &self,
        client: &MqttClient,
        crec: &ClientRecorder,
        events: &mut Events,
    ) -> bool {
        while let Some((due, i)) = self.next_due() {
            if self.start + due > Instant::now() {
                break;
            }
            let seq = {
                let mut d = lock(&self.disk);
                d.cursors[i] += 1;
                d.published += 1;
                d.published
            };
            let w = &self.spec.workloads[i];
            let body = match &w.payload {
                Some(text) => Bytes::from(text.clone().into_bytes()),
                None => Bytes::from(payload::workload_payload(
                    &self.spec.id,
                    seq,
                    w.size() as usize,
                )),
            };
            let label = payload::label(&body);
            let expiry = w.message_expiry_s();
            let properties = Properties::from(PropertySet {
                message_expiry_interval: expiry,
                ..w.properties
                    .as_ref()
                    .map(|p| p.to_codec())
                    .unwrap_or_default()
                    .into_set()
            });
            crec.publish_requested(
                &w.topic,
                w.qos.as_u8(),
                w.retain,
                &label,
                body.len(),
                &properties,
            );
            match client
                .publish_start(
                    self.spec.names.topic(&w.topic),
                    body,
                    w.qos,
                    w.retain,
                    properties,
                )
                .await
            {
                Ok(pending) => crec.publish_accepted(pending.id, &label),
                Err(_) => crec.publish_refused(&label),
            }
            if !self.drain_ready(client, crec, events) {
                return false;
            }
        }
        true
    }

    /// A normal DISCONNECT; waits until the client has stopped, recording what it reports.
    async fn disconnect(&self, client: &MqttClient, crec: &ClientRecorder, events: &mut Events) {
        if !self.drain_ready(client, crec, events) {
            return;
        }
        let give_up = Instant::now() + DISCONNECT_WAIT;
        let done = client.disconnect_with(ReasonCode::Success, self.spec.disconnect_session_expiry);
        tokio::pin!(done);
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(client, crec, ev),
                    None => return,
                },
                _ = &mut done => break,
                _ = sleep_to(give_up) => return,
            }
        }
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(client, crec, ev),
                    None => return,
                },
                _ = sleep_to(give_up) => return,
            }
        }
    }
}
