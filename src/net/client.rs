//! The async client: the sans-IO client core driven on `tokio` (real or simulated TCP).
//!
//! [`MqttClient::start`] spawns one event-loop task that owns the core and the current transport
//! (a reader and a writer task behind the [stream seam](crate::net::seam)). The returned
//! [`MqttClient`] is a cheap handle whose requests complete when the core says so: a
//! publish when its QoS handshake completes (QoS 0: when written), a subscribe on SUBACK. Every
//! [`ClientEvent`] also goes to the [`Events`] stream, in order.
//!
//! Framing, reconnecting, keep-alive, resending and buffering while offline are the core's; this
//! file only moves bytes (encoding the packets the core sends) and reads the clock. TLS and
//! WebSockets are the [`Connector`]'s (`transport.rs`): this file sees a byte stream.

use std::collections::BTreeMap;
use std::io;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use crate::client::{
    Client, ClientAction, ClientConfig, ClientError, ClientEvent, DownCause, LostReason, RequestId,
};
use crate::codec::{self, Packet, Properties, QoS, ReasonCode, Subscription};
use crate::net::clock::Timer;
use crate::net::seam::LinkControl;
use crate::net::transport::{Connector, HANDSHAKE_TIME};

/// Where and how the client connects.
#[derive(Clone)]
pub struct ClientOptions {
    /// `host:port` of the broker.
    pub broker: String,
    /// The transport under MQTT: plain TCP by default, or TLS and/or WebSockets.
    pub connector: Connector,
    pub config: ClientConfig,
    /// Seeds the core's reconnect jitter.
    pub seed: u64,
    /// Fault injection on this client's connections (a fresh, fault-free control by default).
    pub link: LinkControl,
    /// Events buffered for the application before the event loop waits for it to read.
    pub event_capacity: usize,
    /// Sees every packet sent and received, with the instant it happened (for traces).
    pub observer: Option<Observer>,
    /// Called before every CONNECT; its answer replaces the configured will for that CONNECT
    /// (the lab gives each connection's will its own payload this way).
    pub will_for_connect: Option<WillSource>,
    /// The process died when this turns `true`: the event loop stops at once without sending
    /// or observing anything more, and its connection closes as a killed process's would
    /// (a real-network lab run crashes a client this way).
    pub halt: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Chooses the will of the next CONNECT; see [`ClientOptions::will_for_connect`].
pub type WillSource = std::sync::Arc<dyn Fn() -> Option<crate::codec::LastWill> + Send + Sync>;

/// A packet crossing the client's connection, as seen by an [`Observer`].
#[derive(Debug, Clone, Copy)]
pub enum Wire<'a> {
    Sent(&'a Packet),
    Received(&'a Packet),
}

/// Called for every packet the client sends or receives.
pub type Observer = std::sync::Arc<dyn Fn(Instant, Wire<'_>) + Send + Sync>;

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("broker", &self.broker)
            .field("config", &self.config)
            .field("seed", &self.seed)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    pub fn new(broker: impl Into<String>, config: ClientConfig) -> ClientOptions {
        ClientOptions {
            broker: broker.into(),
            connector: Connector::default(),
            config,
            seed: 0,
            link: LinkControl::new(),
            event_capacity: 4096,
            observer: None,
            will_for_connect: None,
            halt: None,
        }
    }
}

/// Why a request did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("refused by the client: {0}")]
    Refused(String),
    #[error("publish was never confirmed: {0:?}")]
    Lost(LostReason),
    #[error("the broker answered with reason code {0:?}")]
    Rejected(ReasonCode),
    #[error("the client event loop has stopped")]
    Stopped,
}

impl From<ClientError> for RequestError {
    fn from(e: ClientError) -> Self {
        RequestError::Refused(e.to_string())
    }
}

type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

enum Command {
    Publish {
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        reply: Reply<ReasonCode>,
        accepted: oneshot::Sender<Result<RequestId, RequestError>>,
    },
    Subscribe {
        subs: Vec<Subscription>,
        properties: Properties,
        reply: Reply<Vec<ReasonCode>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        properties: Properties,
        reply: Reply<Vec<ReasonCode>>,
    },
    Disconnect {
        reason: ReasonCode,
        session_expiry: Option<u32>,
        reply: oneshot::Sender<()>,
    },
}

/// A handle to a running client. Clone it freely; the event loop stops after
/// [`disconnect`](MqttClient::disconnect) or when every handle and the event stream are gone.
#[derive(Debug, Clone)]
pub struct MqttClient {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Publish { .. } => "Publish",
            Command::Subscribe { .. } => "Subscribe",
            Command::Unsubscribe { .. } => "Unsubscribe",
            Command::Disconnect { .. } => "Disconnect",
        })
    }
}

/// The client's events, in the order the core produced them.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
}

impl Events {
    /// The next event; `None` once the event loop has stopped.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }
}

/// A publish accepted by the core: its request id at once, its outcome later.
#[derive(Debug)]
pub struct PendingPublish {
    pub id: RequestId,
    outcome: oneshot::Receiver<Result<ReasonCode, RequestError>>,
}

impl PendingPublish {
    /// Completes when the QoS handshake does (QoS 0: when written).
    pub async fn outcome(self) -> Result<ReasonCode, RequestError> {
        self.outcome.await.unwrap_or(Err(RequestError::Stopped))
    }
}

impl MqttClient {
    /// Starts the event loop and begins connecting; progress arrives on [`Events`].
    pub fn start(options: ClientOptions) -> Result<(MqttClient, Events), RequestError> {
        let core = Client::try_new(options.config.clone(), options.seed)
            .map_err(|e| RequestError::Refused(e.to_string()))?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(options.event_capacity.max(1));
        tokio::spawn(event_loop(core, options, cmd_rx, ev_tx));
        Ok((MqttClient { commands: cmd_tx }, Events { rx: ev_rx }))
    }

    /// Queues a publish and returns once the core accepted it (with its request id).
    pub async fn publish_start(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<PendingPublish, RequestError> {
        let (reply, outcome) = oneshot::channel();
        let (accepted, accepted_rx) = oneshot::channel();
        self.commands
            .send(Command::Publish {
                topic: topic.into(),
                payload: payload.into(),
                qos,
                retain,
                properties,
                reply,
                accepted,
            })
            .map_err(|_| RequestError::Stopped)?;
        let id = accepted_rx.await.unwrap_or(Err(RequestError::Stopped))?;
        Ok(PendingPublish { id, outcome })
    }

    /// Publishes and waits for the QoS handshake to complete.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, RequestError> {
        self.publish_start(topic, payload, qos, retain, Properties::default())
            .await?
            .outcome()
            .await
    }

    /// Subscribes and waits for the SUBACK; one reason code per filter.
    pub async fn subscribe(
        &self,
        subs: Vec<Subscription>,
    ) -> Result<Vec<ReasonCode>, RequestError> {
        self.subscribe_with(subs, Properties::default()).await
    }

    pub async fn subscribe_with(
        &self,
        subs: Vec<Subscription>,
        properties: Properties,
    ) -> Result<Vec<ReasonCode>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe {
                subs,
                properties,
                reply,
            })
            .map_err(|_| RequestError::Stopped)?;
        rx.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Unsubscribes and waits for the UNSUBACK.
    pub async fn unsubscribe(&self, filters: Vec<String>) -> Result<Vec<ReasonCode>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Unsubscribe {
                filters,
                properties: Properties::default(),
                reply,
            })
            .map_err(|_| RequestError::Stopped)?;
        rx.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Disconnects (`Success`: normal, the will is discarded; 5.0 `DisconnectWithWillMessage`:
    /// the broker publishes the will) and stops the event loop once the transport is closed.
    pub async fn disconnect(&self, reason: ReasonCode) {
        self.disconnect_with(reason, None).await
    }

    /// [`disconnect`](MqttClient::disconnect), the 5.0 DISCONNECT also carrying the Session
    /// Expiry Interval `session_expiry` in seconds (see [`Client::disconnect_with`]).
    pub async fn disconnect_with(&self, reason: ReasonCode, session_expiry: Option<u32>) {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Disconnect {
                reason,
                session_expiry,
                reply,
            })
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// A subscription with default options at `qos`.
pub fn subscription(filter: impl Into<String>, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.into(),
        options: codec::SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }
}

enum TransportEvent {
    Up {
        generation: u64,
        writer: mpsc::UnboundedSender<WriterCmd>,
    },
    Bytes {
        generation: u64,
        data: Bytes,
    },
    Down {
        generation: u64,
        cause: DownCause,
    },
}

enum WriterCmd {
    Data(Bytes),
    /// Shut the write side down once everything before it is written; the sender (if any) is
    /// dropped when that is done.
    Close(Option<oneshot::Sender<()>>),
}

/// How long a stopping event loop waits for its last bytes (DISCONNECT) to be written.
const CLOSE_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a transport whose write failed keeps reading what the broker sent before it closed.
const DRAIN_AFTER_WRITE_ERROR: std::time::Duration = std::time::Duration::from_secs(1);

struct Pending {
    publishes: BTreeMap<RequestId, Reply<ReasonCode>>,
    subscribes: BTreeMap<RequestId, Reply<Vec<ReasonCode>>>,
    unsubscribes: BTreeMap<RequestId, Reply<Vec<ReasonCode>>>,
    disconnect: Vec<oneshot::Sender<()>>,
}

async fn event_loop(
    mut core: Client,
    options: ClientOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<ClientEvent>,
) {
    let (tx, mut transport_rx) = mpsc::unbounded_channel::<TransportEvent>();
    let mut link = Link {
        generation: 0,
        writer: None,
        closing: None,
    };
    let mut pending = Pending {
        publishes: BTreeMap::new(),
        subscribes: BTreeMap::new(),
        unsubscribes: BTreeMap::new(),
        disconnect: Vec::new(),
    };
    let mut commands_open = true;
    let mut stopping = false;
    let mut halt = options.halt.clone();
    core.connect(Instant::now());
    let mut timer = Timer::default();
    loop {
        if halt.as_mut().is_some_and(|h| *h.borrow_and_update()) {
            return;
        }
        perform_actions(&mut core, &options, &mut link, &tx);
        // Hand events to the application and complete requests.
        let mut stopped = false;
        while let Some(event) = core.poll_event() {
            complete(&mut pending, &event);
            if matches!(event, ClientEvent::Disconnected) && stopping {
                stopped = true;
            }
            let _ = events.send(event).await;
        }
        if stopped {
            if let Some(w) = link.writer.take() {
                let (done, done_rx) = oneshot::channel();
                let _ = w.send(WriterCmd::Close(Some(done)));
                link.closing = Some(done_rx);
            }
            // The DISCONNECT must reach the socket before `disconnect()` returns: a caller that
            // exits right after would otherwise drop it, and the broker would publish the will.
            if let Some(done) = link.closing.take() {
                let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, done).await;
            }
            for r in pending.disconnect.drain(..) {
                let _ = r.send(());
            }
            return;
        }
        if !commands_open && events.is_closed() && !stopping {
            stopping = true;
            core.disconnect(Instant::now(), ReasonCode::Success);
            continue;
        }

        timer.set(core.poll_timeout());
        // Biased for determinism under the simulator: the network first, then due timers, then
        // the application, so a stream of requests cannot starve acknowledgements.
        tokio::select! {
            biased;
            _ = halted(halt.as_mut()) => return,
            ev = transport_rx.recv() => {
                let Some(ev) = ev else { return };
                let now = Instant::now();
                match ev {
                    TransportEvent::Up { generation: g, writer: w } if g == link.generation => {
                        link.writer = Some(w);
                        if let Some(will_for_connect) = &options.will_for_connect
                            && let Err(e) = core.set_will(will_for_connect())
                        {
                            tracing::warn!(error = %e, "will for this CONNECT refused; the previous one is kept");
                        }
                        core.handle_transport_up(now);
                    }
                    TransportEvent::Bytes { generation: g, data } if g == link.generation => {
                        core.handle_bytes(now, &data, |packet| {
                            if let Some(observe) = &options.observer {
                                observe(now, Wire::Received(packet));
                            }
                        });
                    }
                    TransportEvent::Down { generation: g, cause } if g == link.generation => {
                        link.writer = None;
                        link.generation += 1;
                        core.handle_transport_down(now, cause);
                    }
                    _ => {}
                }
            }
            () = timer.fired() => {
                core.handle_timeout(Instant::now());
            }
            cmd = commands.recv(), if commands_open => match cmd {
                None => commands_open = false,
                Some(cmd) => stopping |= handle_command(&mut core, Instant::now(), cmd, &mut pending),
            }
        }
    }
}

/// Completes when the process is halted; never without a halt signal (or once its sender is
/// gone without halting).
async fn halted(halt: Option<&mut tokio::sync::watch::Receiver<bool>>) {
    match halt {
        Some(h) => {
            if h.wait_for(|&halted| halted).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// The event loop's hold on the current transport.
struct Link {
    /// Numbers transports; events of an older one are stale.
    generation: u64,
    writer: Option<mpsc::UnboundedSender<WriterCmd>>,
    /// Completes when the last transport asked to close has written everything and shut down.
    closing: Option<oneshot::Receiver<()>>,
}

/// Performs everything the core asked for, in order: opens transports, encodes and writes the
/// packets it sends (seen by the observer), closes.
fn perform_actions(
    core: &mut Client,
    options: &ClientOptions,
    link: &mut Link,
    tx: &mpsc::UnboundedSender<TransportEvent>,
) {
    let mut out = BytesMut::new();
    while let Some(action) = core.poll_action() {
        match action {
            ClientAction::OpenTransport => {
                if let Some(w) = link.writer.take() {
                    let _ = w.send(WriterCmd::Close(None));
                }
                link.generation += 1;
                tokio::spawn(transport(
                    link.generation,
                    options.broker.clone(),
                    options.connector.clone(),
                    options.link.clone(),
                    tx.clone(),
                ));
            }
            ClientAction::Send(packet) => {
                if let Some(observe) = &options.observer {
                    observe(Instant::now(), Wire::Sent(&packet));
                }
                if let Err(e) = codec::encode(&packet, core.protocol(), &mut out) {
                    panic!("the client core produced a packet it cannot encode: {e}: {packet:?}");
                }
            }
            ClientAction::CloseTransport => {
                if let Some(w) = link.writer.take() {
                    if !out.is_empty() {
                        let _ = w.send(WriterCmd::Data(out.split().freeze()));
                    }
                    let (done, done_rx) = oneshot::channel();
                    let _ = w.send(WriterCmd::Close(Some(done)));
                    link.closing = Some(done_rx);
                }
                out.clear();
                // Whatever that transport still reports is stale.
                link.generation += 1;
            }
        }
    }
    if !out.is_empty()
        && let Some(w) = &link.writer
    {
        let _ = w.send(WriterCmd::Data(out.freeze()));
    }
}

/// Hands an application request to the core; true when it asked to stop (disconnect).
fn handle_command(core: &mut Client, now: Instant, cmd: Command, pending: &mut Pending) -> bool {
    match cmd {
        Command::Publish {
            topic,
            payload,
            qos,
            retain,
            properties,
            reply,
            accepted,
        } => match core.publish(now, topic, payload, qos, retain, properties) {
            Ok(id) => {
                pending.publishes.insert(id, reply);
                let _ = accepted.send(Ok(id));
            }
            Err(e) => {
                let _ = accepted.send(Err(e.into()));
            }
        },
        Command::Subscribe {
            subs,
            properties,
            reply,
        } => match core.subscribe(now, subs, properties) {
            Ok(id) => {
                pending.subscribes.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        },
        Command::Unsubscribe {
            filters,
            properties,
            reply,
        } => match core.unsubscribe(now, filters, properties) {
            Ok(id) => {
                pending.unsubscribes.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        },
        Command::Disconnect {
            reason,
            session_expiry,
            reply,
        } => {
            pending.disconnect.push(reply);
            core.disconnect_with(now, reason, session_expiry);
            return true;
        }
    }
    false
}

fn complete(pending: &mut Pending, event: &ClientEvent) {
    match event {
        ClientEvent::PublishSent { id } => {
            if let Some(r) = pending.publishes.remove(id) {
                let _ = r.send(Ok(ReasonCode::Success));
            }
        }
        ClientEvent::PublishAcked { id, reason } => {
            if let Some(r) = pending.publishes.remove(id) {
                let _ = r.send(if reason.is_error() {
                    Err(RequestError::Rejected(*reason))
                } else {
                    Ok(*reason)
                });
            }
        }
        ClientEvent::PublishLost { id, why } => {
            if let Some(r) = pending.publishes.remove(id) {
                let _ = r.send(Err(RequestError::Lost(*why)));
            }
        }
        ClientEvent::Subscribed { id, reasons, .. } => {
            if let Some(r) = pending.subscribes.remove(id) {
                let _ = r.send(Ok(reasons.clone()));
            }
        }
        ClientEvent::Unsubscribed { id, reasons, .. } => {
            if let Some(r) = pending.unsubscribes.remove(id) {
                let _ = r.send(Ok(reasons.clone()));
            }
        }
        _ => {}
    }
}

/// One transport: connect, then a reader and a writer until either ends.
async fn transport(
    generation: u64,
    broker: String,
    connector: Connector,
    link: LinkControl,
    events: mpsc::UnboundedSender<TransportEvent>,
) {
    if connector.is_plain() {
        let stream = match tokio::net::TcpStream::connect(broker.as_str()).await {
            Ok(s) => s,
            Err(e) => {
                let _ = events.send(TransportEvent::Down {
                    generation,
                    cause: DownCause::Io(e.kind()),
                });
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        return run_transport(generation, stream, link, events).await;
    }
    let connecting = tokio::time::timeout(HANDSHAKE_TIME, connector.connect(&broker));
    let connected = connecting.await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the TLS or WebSocket handshake took too long",
        ))
    });
    match connected {
        Ok(stream) => run_transport(generation, stream, link, events).await,
        Err(e) => {
            tracing::debug!(broker, error = %e, "cannot connect");
            let _ = events.send(TransportEvent::Down {
                generation,
                cause: DownCause::Io(e.kind()),
            });
        }
    }
}

/// A reader and a writer on a connected stream until either ends.
async fn run_transport<S>(
    generation: u64,
    stream: S,
    link: LinkControl,
    events: mpsc::UnboundedSender<TransportEvent>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (r, w) = tokio::io::split(stream);
    let (mut reader, mut writer) = link.wrap(r, w);
    let (wtx, mut wrx) = mpsc::unbounded_channel();
    if events
        .send(TransportEvent::Up {
            generation,
            writer: wtx,
        })
        .is_err()
    {
        return;
    }
    let write_side = async {
        while let Some(cmd) = wrx.recv().await {
            match cmd {
                WriterCmd::Data(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        return Some(DownCause::Io(e.kind()));
                    }
                }
                WriterCmd::Close(done) => {
                    writer.shutdown().await;
                    drop(done);
                    return None;
                }
            }
        }
        None
    };
    let read_side = async {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            buf.reserve(16 * 1024);
            match reader.read_buf(&mut buf).await {
                Ok(0) => return Some(DownCause::PeerClosed),
                Ok(_) => {
                    if events
                        .send(TransportEvent::Bytes {
                            generation,
                            data: buf.split().freeze(),
                        })
                        .is_err()
                    {
                        return None;
                    }
                }
                Err(e) => return Some(io_cause(e)),
            }
        }
    };
    tokio::pin!(write_side, read_side);
    let cause = tokio::select! {
        biased;
        c = &mut write_side => match c {
            // A write that fails because the broker closed: what it sent before closing (a
            // DISCONNECT with its reason) may still be on its way, as on TCP, where it arrives
            // before the reset. Read it first, for a bounded time.
            Some(DownCause::Io(kind)) => {
                let _ = tokio::time::timeout(DRAIN_AFTER_WRITE_ERROR, &mut read_side).await;
                Some(DownCause::Io(kind))
            }
            other => other,
        },
        c = &mut read_side => c,
    };
    if let Some(cause) = cause {
        let _ = events.send(TransportEvent::Down { generation, cause });
    }
}

fn io_cause(e: io::Error) -> DownCause {
    DownCause::Io(e.kind())
}
