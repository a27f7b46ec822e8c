//! The broker server: accept loops, one task per connection (its reader and writer), and one
//! task that owns the broker core.
//!
//! Data flow: readers send the bytes they read to the owner; the owner feeds them to the core
//! with `now`, drains the core's actions, encodes every packet queued for a connection into one
//! buffer and hands it to that connection's writer (`outbox.rs`), which writes and flushes what
//! it was handed in one go. An idle connection holds no buffer (`read_some`), and a quiet
//! plain TCP connection no task either (`park.rs`).
//!
//! Backpressure: the data read and not yet handled is bounded in bytes ([`QUEUED_BYTES`]) as
//! well as in events, and a connection whose messages leave another far behind is not read
//! until that one catches up (`throttle.rs`): a slow subscriber slows its publishers down
//! through TCP instead of the broker buffering for it. Only what no client's reading can hold
//! back grows a connection's backlog to [`MAX_PENDING_WRITE_BYTES`], where it is dropped.
//! With a store ([`Journal`]), the owner also takes the core's changes after every event, holds
//! the output they may be revealed by until the committer task has them on disk (`durability.rs`,
//! `commit.rs`; a PINGRESP does not wait), and tells the core when the store fails, fills up or
//! recovers; a failed store is rewritten whole, with backoff.
//!
//! A listener may wrap its connections in TLS and/or WebSockets ([`Upgrade`], `transport.rs`):
//! the handshake runs in the connection's own task, within the listener's handshake time
//! (`handshake_timeout`, 10 s by default), before the core
//! hears of the connection; a peer that fails it is logged and dropped.
//!
//! What is not here: protocol logic (the core), the store (`store`), the TLS and WebSocket
//! protocols (`transport.rs`).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::broker::{Action, BrokerCore, CloseCause, ConnId, StorageHealth};
use crate::codec;
use crate::net::clock::{Timer, wall_ms};
use crate::net::commit::{Committer, Job, Outcome, Storage};
use crate::net::durability::{Durability, Mode, Out};
use crate::net::metrics::{Figures, MetricsRequest};
use crate::net::outbox::{self, Asleep, Next};
use crate::net::park::{self, PARK_AFTER, PARK_AFTER_CONNECT, Parked, Waking, read_some};
use crate::net::throttle::Throttle;
use crate::net::transport::{Scheme, Upgrade};

/// Bytes a connection may have waiting for its writer before it is closed as too slow. Far
/// above the mark at which the connections feeding it are no longer read (`throttle.rs`): only
/// output no client's reading can hold back (retained messages, wills, `$SYS`, the
/// connection's own requests) grows it this far.
pub const MAX_PENDING_WRITE_BYTES: usize = 64 * 1024 * 1024;
/// Events the connection tasks may queue for the owner before readers wait (backpressure).
const EVENT_QUEUE: usize = 1024;
/// Bytes read from all connections and not yet handled by the owner: beyond it readers wait,
/// so the event queue holds at most this much data whatever the size of each read.
const QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// How long a connection whose writing ended is still read, until the client's end of it.
pub const LINGER: Duration = Duration::from_secs(2);

/// A socket the broker accepts connections on, and what it does with each before MQTT.
pub struct Listener {
    pub tcp: TcpListener,
    pub upgrade: Upgrade,
}

impl From<TcpListener> for Listener {
    /// Plain MQTT over TCP.
    fn from(tcp: TcpListener) -> Listener {
        Listener {
            tcp,
            upgrade: Upgrade::plain(),
        }
    }
}

enum ConnEvent {
    Opened {
        conn: ConnId,
        /// The owner's end of its outbox, which holds its peer and transport.
        writer: Outbox,
        /// The user its TLS client certificate names, when the listener makes it the user.
        identity: Option<Box<str>>,
    },
    Bytes {
        conn: ConnId,
        data: Bytes,
    },
    Closed {
        conn: ConnId,
        cause: CloseCause,
    },
    Written {
        conn: ConnId,
        bytes: usize,
    },
}

/// The owner's connections: the owner's end of each one's outbox, which holds what the owner
/// knows of it ([`ConnMeta`]) in the queue's allocation. One pointer per entry: a map's nodes
/// are filled about half by keys that only grow, and an idle connection should cost little
/// more than its outbox. With them the kennel, called for a parked connection whose outbox the
/// owner changes ([`Conns::wake`]); dropped, they are closed.
struct Conns {
    open: BTreeMap<ConnId, Outbox>,
    kennel: Kennel,
}

impl Conns {
    fn new(kennel: Kennel) -> Conns {
        Conns {
            open: BTreeMap::new(),
            kennel,
        }
    }

    fn get(&self, conn: &ConnId) -> Option<&Outbox> {
        self.open.get(conn)
    }

    fn get_mut(&mut self, conn: &ConnId) -> Option<&mut Outbox> {
        self.open.get_mut(conn)
    }

    fn contains_key(&self, conn: &ConnId) -> bool {
        self.open.contains_key(conn)
    }

    fn insert(&mut self, conn: ConnId, outbox: Outbox) {
        let previous = self.open.insert(conn, outbox);
        assert!(previous.is_none(), "connection {conn} opened twice");
    }

    /// Forgets `conn`; its outbox, which the caller closes or aborts and hands the result to
    /// [`Conns::wake`], or drops when the connection's task has ended (a connection whose task
    /// ended is not parked).
    fn remove(&mut self, conn: &ConnId) -> Option<Outbox> {
        self.open.remove(conn)
    }

    /// Calls the kennel for `conn` when a change of its outbox found it parked.
    fn wake(&self, conn: ConnId, Asleep(asleep): Asleep) {
        if asleep {
            self.kennel.call(conn);
        }
    }

    /// Closes every connection after what is queued for it.
    fn close_all(&mut self) {
        for (conn, h) in std::mem::take(&mut self.open) {
            self.wake(conn, h.close());
        }
    }
}

impl Drop for Conns {
    fn drop(&mut self) {
        self.close_all();
    }
}

type Outbox = outbox::Outbox<ConnMeta>;
type Mailbox = outbox::Mailbox<ConnMeta>;
type Kennel = park::Kennel<ConnMeta>;
type Watch = park::Watch<ConnMeta>;

/// What the owner knows of a connection, besides its queue.
struct ConnMeta {
    /// Bytes handed to its writer and not yet written, saturated at `u32::MAX` (far above
    /// [`MAX_PENDING_WRITE_BYTES`], beyond which the connection is closed): 4 bytes, so that
    /// its outbox fits a smaller allocation.
    pending: u32,
    peer: SocketAddr,
    /// The client identifier, once the broker accepted a CONNECT (for the close's log line);
    /// shared with the broker's session.
    client: Option<std::sync::Arc<str>>,
    transport: Scheme,
}

impl ConnMeta {
    fn pending_bytes(&self) -> usize {
        self.pending as usize
    }

    /// Counts `n` more bytes handed to the writer; returns the bytes now unwritten.
    fn handed(&mut self, n: usize) -> usize {
        self.set_pending_bytes(self.pending_bytes().saturating_add(n))
    }

    /// Counts `n` bytes the writer wrote; returns the bytes still unwritten.
    fn written(&mut self, n: usize) -> usize {
        self.set_pending_bytes(self.pending_bytes().saturating_sub(n))
    }

    fn set_pending_bytes(&mut self, bytes: usize) -> usize {
        self.pending = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.pending_bytes()
    }

    fn client(&self) -> &str {
        self.client.as_deref().unwrap_or("-")
    }
}

/// Where and how the broker keeps its durable state: the core's change journal, committed
/// batch by batch to a store (see `durability.rs`).
pub struct Journal {
    committer: Committer,
    mode: Mode,
    /// [`Mode::Interval`]: how often committed batches are synced.
    sync_interval: Duration,
    /// The store's soft size limit in bytes: above it the broker refuses new durable work.
    quota: u64,
}

impl Journal {
    /// Starts the committer for `storage`, which holds the core's durable state as it is.
    pub fn new<S: Storage>(storage: S, mode: Mode, sync_interval: Duration, quota: u64) -> Journal {
        Journal {
            committer: Committer::spawn(storage),
            mode,
            sync_interval,
            quota,
        }
    }
}

/// First wait before a failed store is rewritten; doubled after each failure up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The owner's side of a journal: what is held, the job in flight, the store's health.
struct Keeper {
    journal: Journal,
    durability: Durability,
    /// A job was sent and its outcome has not come back.
    busy: bool,
    /// The job in flight is a rewrite.
    rewriting: bool,
    health: StorageHealth,
    /// Failed: when the next rewrite is tried, and the wait after it.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Interval mode: when committed batches are synced next, if any are unsynced.
    sync_at: Option<Instant>,
}

impl Keeper {
    fn new<B: BrokerCore>(journal: Journal, core: &mut B) -> Keeper {
        core.record_changes();
        Keeper {
            durability: Durability::new(journal.mode),
            journal,
            busy: false,
            rewriting: false,
            health: StorageHealth::Ok,
            retry_at: None,
            backoff: FIRST_RETRY,
            sync_at: None,
        }
    }

    /// The next moment a timer of the keeper fires.
    fn timer(&self) -> Option<Instant> {
        if self.busy {
            return None;
        }
        self.retry_at.or(self.sync_at)
    }

    /// Sends the next job if the store is free: a batch, else a due rewrite or sync.
    fn submit<B: BrokerCore>(&mut self, core: &mut B, now: Instant) {
        if self.busy {
            return;
        }
        if self.durability.failed() {
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                self.durability.after_event(core.take_changes(), []);
                self.durability.rewriting();
                self.send(Job::Rewrite {
                    state: Box::new(core.durable_state()),
                    saved_at_ms: wall_ms(),
                });
                self.rewriting = true;
            }
            return;
        }
        if let Some(batch) = self.durability.take_batch() {
            let sync = self.journal.mode == Mode::Synced;
            if !sync && self.sync_at.is_none() {
                self.sync_at = Some(now + self.journal.sync_interval);
            }
            self.send(Job::Commit {
                epoch: batch.epoch,
                changes: batch.changes,
                sync,
                saved_at_ms: wall_ms(),
            });
        } else if self.sync_at.is_some_and(|at| at <= now) {
            self.sync_at = None;
            self.send(Job::Sync {
                clock: self.durability.clock(),
                saved_at_ms: wall_ms(),
            });
        }
    }

    fn send(&mut self, job: Job) {
        self.busy = true;
        self.journal.committer.send(job);
    }

    /// A job ended. Returns the output it releases; a change of health is told to the core.
    fn outcome<B: BrokerCore>(
        &mut self,
        core: &mut B,
        now: Instant,
        outcome: Outcome,
    ) -> Vec<(ConnId, Out)> {
        self.busy = false;
        let rewrite = std::mem::take(&mut self.rewriting);
        match outcome {
            Outcome::Done { epoch, size } => {
                let mut ready = Vec::new();
                if rewrite {
                    tracing::info!(bytes = size, "storage recovered: the state was rewritten");
                    self.durability.restored();
                    self.backoff = FIRST_RETRY;
                } else if let Some(epoch) = epoch {
                    ready = self.durability.committed(epoch);
                }
                let health = match self.health {
                    _ if size > self.journal.quota => StorageHealth::OverQuota,
                    StorageHealth::OverQuota if size > self.journal.quota / 10 * 9 => {
                        StorageHealth::OverQuota
                    }
                    _ => StorageHealth::Ok,
                };
                self.set_health(core, now, health);
                ready
            }
            Outcome::Failed(e) => {
                tracing::error!(
                    error = %e,
                    full = e.full,
                    retry_in = ?self.backoff,
                    "storage failed: nothing is acknowledged until the state is rewritten"
                );
                let unanswered = self.durability.fail();
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_RETRY);
                self.sync_at = None;
                // Their CONNACK was dropped: they are closed without a word (a DISCONNECT
                // before the CONNACK would be a protocol error), as if the network had failed.
                for &conn in &unanswered {
                    core.handle_closed(now, conn, CloseCause::Local);
                }
                self.set_health(core, now, StorageHealth::Failed { full: e.full });
                unanswered.into_iter().map(|c| (c, Out::Close)).collect()
            }
        }
    }

    fn set_health<B: BrokerCore>(&mut self, core: &mut B, now: Instant, health: StorageHealth) {
        if self.health != health {
            self.health = health;
            core.handle_storage(now, health);
        }
    }

    /// On shutdown: commits what is left, synced, and waits for it.
    async fn flush<B: BrokerCore>(&mut self, core: &mut B) -> io::Result<()> {
        core.handle_timeout(Instant::now());
        let outcomes = &mut self.journal.committer.outcomes;
        if self.busy {
            let _ = outcomes.recv().await;
            self.busy = false;
        }
        if self.durability.failed() {
            return Err(io::Error::other(
                "the store failed; the last changes are not saved",
            ));
        }
        let mut changes = self.durability.take_rest();
        let more = core.take_changes();
        changes.ops.extend(more.ops);
        changes.clock = more.clock;
        self.journal.committer.send(Job::Commit {
            epoch: 0,
            changes,
            sync: true,
            saved_at_ms: wall_ms(),
        });
        match self.journal.committer.outcomes.recv().await {
            Some(Outcome::Done { .. }) => {
                tracing::info!("durable state saved");
                Ok(())
            }
            Some(Outcome::Failed(e)) => Err(io::Error::other(e)),
            None => Err(io::Error::other("the store stopped")),
        }
    }
}

/// Runs a broker core on the given listeners until `shutdown` completes.
///
/// With a journal, the core is expected to have been restored from its store by the caller;
/// output waits for the changes it may depend on (`durability.rs`), and what is left is
/// committed on shutdown (a failing commit then is the error returned).
pub async fn serve<B, F, L>(
    core: B,
    listeners: Vec<L>,
    journal: Option<Journal>,
    shutdown: F,
) -> io::Result<()>
where
    B: BrokerCore + Send + 'static,
    F: std::future::Future<Output = ()>,
    L: Into<Listener>,
{
    serve_observed(core, listeners, journal, None, shutdown).await
}

/// [`serve`], also answering requests for the core's figures arriving on `metrics` (from the
/// metrics endpoint, `metrics.rs`).
pub async fn serve_observed<B, F, L>(
    mut core: B,
    listeners: Vec<L>,
    journal: Option<Journal>,
    mut metrics: Option<mpsc::Receiver<MetricsRequest>>,
    shutdown: F,
) -> io::Result<()>
where
    B: BrokerCore + Send + 'static,
    F: std::future::Future<Output = ()>,
    L: Into<Listener>,
{
    let (events_tx, mut events_rx) = mpsc::channel::<ConnEvent>(EVENT_QUEUE);
    let budget = Arc::new(Semaphore::new(QUEUED_BYTES));
    let owner = Owner {
        events: events_tx,
        budget: budget.clone(),
    };
    let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let (kennel, watch) = park::kennel()?;
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let ids = next_id.clone();
        accept_tasks.push(tokio::spawn(accept_loop(
            listener.into(),
            owner.clone(),
            ids,
            kennel.clone(),
        )));
    }
    tokio::spawn(wake_parked(watch, kennel.clone(), owner));

    let mut conns = Conns::new(kennel.clone());
    let mut throttle = Throttle::default();
    let mut keeper = journal.map(|j| Keeper::new(j, &mut core));
    tokio::pin!(shutdown);
    // Kept across turns, so a turn registers a timer with the runtime only when a deadline moves.
    let mut timer = Timer::default();
    let mut stall_timer = Timer::default();
    let mut keeper_timer = Timer::default();
    loop {
        timer.set(core.poll_timeout());
        stall_timer.set(throttle.deadline());
        keeper_timer.set(keeper.as_ref().and_then(Keeper::timer));
        let taking = keeper.as_ref().is_none_or(|k| !k.durability.full());
        // The connection whose bytes this turn handles: it is held back if its messages leave
        // another connection too far behind.
        let mut source = None;
        // Biased, in this order, for determinism under the simulator and so that neither
        // shutdown nor a due deadline waits behind a busy event queue.
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
            () = timer.fired() => {
                core.handle_timeout(Instant::now());
            }
            () = stall_timer.fired() => {
                let durability = keeper.as_mut().map(|k| &mut k.durability);
                stalled(&mut core, &mut conns, &mut throttle, durability);
            }
            outcome = next_outcome(keeper.as_mut()) => {
                let k = keeper.as_mut().expect("an outcome comes from a keeper");
                let Some(outcome) = outcome else {
                    return Err(io::Error::other("the store stopped"));
                };
                let ready = k.outcome(&mut core, Instant::now(), outcome);
                write_out(&mut core, &mut conns, &mut throttle, ready, Some(&mut k.durability));
                k.submit(&mut core, Instant::now());
            }
            () = keeper_timer.fired() => {}
            Some(request) = next_request(metrics.as_mut()) => {
                let figures = core.metrics(Instant::now()).map(|core| Figures {
                    core,
                    connections_parked: kennel.len() as u64,
                });
                let _ = request.send(figures);
            }
            ev = events_rx.recv(), if taking => {
                let Some(ev) = ev else { break };
                let now = Instant::now();
                match ev {
                    ConnEvent::Opened { conn, writer, identity } => {
                        let peer = writer.peer;
                        tracing::debug!(conn, %peer, identity = identity.as_deref(), "accepted");
                        conns.insert(conn, writer);
                        match identity {
                            None => core.handle_accept(now, conn),
                            Some(id) => core.handle_accept_as(now, conn, Some(&id)),
                        }
                    }
                    ConnEvent::Bytes { conn, data } => {
                        if conns.contains_key(&conn) {
                            core.handle_bytes(now, conn, &data);
                            source = Some(conn);
                        }
                        budget.add_permits(data.len());
                    }
                    ConnEvent::Closed { conn, cause } => {
                        if let Some(h) = remove(&mut core, &mut conns, &mut throttle, conn) {
                            tracing::info!(
                                conn,
                                peer = %h.peer,
                                client_id = %h.client(),
                                ?cause,
                                "connection closed"
                            );
                            if let Some(k) = keeper.as_mut() {
                                k.durability.closed(conn);
                            }
                            core.handle_closed(now, conn, cause);
                        }
                    }
                    ConnEvent::Written { conn, bytes } => {
                        core.count_bytes_sent(bytes);
                        if let Some(h) = conns.get_mut(&conn) {
                            let free = throttle.wrote(now, conn, h.written(bytes));
                            read_again(&mut core, &conns, now, free);
                        }
                    }
                }
            }
        }
        let (output, urgent) = drain_actions(&mut core, &mut conns, keeper.is_some());
        let fed: Vec<ConnId> = match source {
            Some(s) => output
                .iter()
                .filter(|(c, o)| *c != s && matches!(o, Out::Bytes(_)))
                .map(|(c, _)| *c)
                .collect(),
            None => Vec::new(),
        };
        match keeper.as_mut() {
            Some(k) => {
                let d = Some(&mut k.durability);
                write_out(&mut core, &mut conns, &mut throttle, urgent, d);
                let ready = k.durability.after_event(core.take_changes(), output);
                let d = Some(&mut k.durability);
                write_out(&mut core, &mut conns, &mut throttle, ready, d);
                k.submit(&mut core, Instant::now());
            }
            None => write_out(&mut core, &mut conns, &mut throttle, output, None),
        }
        if let Some(s) = source {
            hold_back(&mut core, &conns, &mut throttle, s, &fed);
        }
    }
    for task in accept_tasks {
        task.abort();
    }
    // Readers waiting for room learn that the owner is gone.
    budget.close();
    conns.close_all();
    match keeper.as_mut() {
        Some(k) => k.flush(&mut core).await,
        None => Ok(()),
    }
}

/// The next outcome of the keeper's committer; pending forever without a keeper or a job.
async fn next_outcome(keeper: Option<&mut Keeper>) -> Option<Outcome> {
    match keeper {
        Some(k) if k.busy => k.journal.committer.outcomes.recv().await,
        _ => std::future::pending().await,
    }
}

/// The next request for figures; pending forever without an endpoint or once it is gone.
async fn next_request(
    metrics: Option<&mut mpsc::Receiver<MetricsRequest>>,
) -> Option<MetricsRequest> {
    match metrics {
        Some(rx) => match rx.recv().await {
            Some(r) => Some(r),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Output for connections, in the order it is written.
type Output = Vec<(ConnId, Out)>;

/// Everything the core asked for, in order: one encoded buffer per connection then its close;
/// with `split_pings`, the PINGRESPs apart (they reveal nothing and need not wait for the
/// store).
fn drain_actions<B: BrokerCore>(
    core: &mut B,
    conns: &mut Conns,
    split_pings: bool,
) -> (Output, Output) {
    let mut out: BTreeMap<ConnId, BytesMut> = BTreeMap::new();
    let mut urgent: BTreeMap<ConnId, BytesMut> = BTreeMap::new();
    let mut closes: Vec<ConnId> = Vec::new();
    while let Some(action) = core.poll_action() {
        match action {
            Action::Send {
                conn,
                protocol,
                packet,
            } => {
                if closes.contains(&conn) {
                    continue;
                }
                if let codec::Packet::ConnAck(ack) = &packet
                    && ack.reason == codec::ReasonCode::Success
                {
                    log_connected(core, conns, conn, ack.session_present);
                }
                let buf = match packet {
                    codec::Packet::PingResp if split_pings => urgent.entry(conn).or_default(),
                    _ => out.entry(conn).or_default(),
                };
                if let Err(e) = codec::encode(&packet, protocol, buf) {
                    panic!("the broker core produced a packet it cannot encode: {e}: {packet:?}");
                }
            }
            Action::Close { conn, reason } => {
                match conns.get(&conn) {
                    Some(h) => tracing::info!(
                        conn,
                        peer = %h.peer,
                        client_id = %h.client(),
                        ?reason,
                        "connection closed"
                    ),
                    None => tracing::debug!(conn, ?reason, "broker closes connection"),
                }
                closes.push(conn);
            }
        }
    }
    let bytes = |m: BTreeMap<ConnId, BytesMut>| {
        m.into_iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(c, b)| (c, Out::Bytes(b.freeze())))
    };
    let mut output: Output = bytes(out).collect();
    output.extend(closes.into_iter().map(|c| (c, Out::Close)));
    (output, bytes(urgent).collect())
}

/// The log line of a connection the broker accepted: who, from where, with what.
fn log_connected<B: BrokerCore>(core: &B, conns: &mut Conns, conn: ConnId, session_present: bool) {
    let (Some(h), Some(info)) = (conns.get_mut(&conn), core.connection_info(conn)) else {
        return;
    };
    tracing::info!(
        conn,
        peer = %h.peer,
        transport = %h.transport,
        client_id = %info.client_id,
        protocol = %info.protocol,
        keep_alive = info.keep_alive,
        clean_start = info.clean_start,
        session_present,
        user = %info.user.as_deref().unwrap_or("-"),
        "client connected"
    );
    h.client = Some(info.client_id);
}

/// Hands output to the connections' writers, in order; closes a connection that does not read.
fn write_out<B: BrokerCore>(
    core: &mut B,
    conns: &mut Conns,
    throttle: &mut Throttle,
    output: Vec<(ConnId, Out)>,
    mut durability: Option<&mut Durability>,
) {
    for (conn, out) in output {
        let Some(h) = conns.get_mut(&conn) else {
            continue;
        };
        match out {
            Out::Bytes(buf) => {
                if h.handed(buf.len()) > MAX_PENDING_WRITE_BYTES {
                    let d = durability.as_deref_mut();
                    cut(core, conns, throttle, d, conn, "does not read");
                    continue;
                }
                let asleep = h.send(buf);
                conns.wake(conn, asleep);
            }
            Out::Close => {
                if let Some(h) = remove(core, conns, throttle, conn) {
                    conns.wake(conn, h.close());
                }
                if let Some(d) = durability.as_deref_mut() {
                    d.closed(conn);
                }
            }
        }
    }
}

/// Closes `conn`, which the broker gave up on (`why`), as if the network had failed.
fn cut<B: BrokerCore>(
    core: &mut B,
    conns: &mut Conns,
    throttle: &mut Throttle,
    durability: Option<&mut Durability>,
    conn: ConnId,
    why: &str,
) {
    let Some(h) = remove(core, conns, throttle, conn) else {
        return;
    };
    tracing::warn!(
        conn,
        peer = %h.peer,
        client_id = %h.client(),
        pending = h.pending_bytes(),
        "closing a connection that {why}"
    );
    conns.wake(conn, h.abort());
    if let Some(d) = durability {
        d.closed(conn);
    }
    core.handle_closed(Instant::now(), conn, CloseCause::Io);
}

/// Forgets `conn`; the connections it held back are read again.
fn remove<B: BrokerCore>(
    core: &mut B,
    conns: &mut Conns,
    throttle: &mut Throttle,
    conn: ConnId,
) -> Option<Outbox> {
    let h = conns.remove(&conn)?;
    let free = throttle.gone(conn);
    read_again(core, conns, Instant::now(), free);
    Some(h)
}

/// Stops reading `source` if the output of its last event, which went to `fed`, left one of
/// them too far behind (`throttle.rs`).
fn hold_back<B: BrokerCore>(
    core: &mut B,
    conns: &Conns,
    throttle: &mut Throttle,
    source: ConnId,
    fed: &[ConnId],
) {
    let now = Instant::now();
    for &target in fed {
        let Some(t) = conns.get(&target) else {
            continue;
        };
        if throttle.fed(now, source, target, t.pending_bytes())
            && let Some(h) = conns.get(&source)
        {
            tracing::debug!(
                conn = source,
                client_id = %h.client(),
                behind = %t.client(),
                pending = t.pending_bytes(),
                "reading paused: a connection it feeds is behind"
            );
            conns.wake(source, h.hold_reading(true));
            core.handle_held(now, source, true);
        }
    }
}

/// Reads each of `sources` that is still open again.
fn read_again<B: BrokerCore>(core: &mut B, conns: &Conns, now: Instant, sources: Vec<ConnId>) {
    for source in sources {
        if let Some(h) = conns.get(&source) {
            tracing::debug!(conn = source, client_id = %h.client(), "reading resumed");
            conns.wake(source, h.hold_reading(false));
            core.handle_held(now, source, false);
        }
    }
}

/// Closes the connections that hold others back and have written nothing for
/// [`throttle::MAX_STALL`](crate::net::throttle::MAX_STALL).
fn stalled<B: BrokerCore>(
    core: &mut B,
    conns: &mut Conns,
    throttle: &mut Throttle,
    mut durability: Option<&mut Durability>,
) {
    for conn in throttle.stalled(Instant::now()) {
        let d = durability.as_deref_mut();
        cut(
            core,
            conns,
            throttle,
            d,
            conn,
            "holds others back and does not read",
        );
        // Known or not, it no longer holds anyone.
        let free = throttle.gone(conn);
        read_again(core, conns, Instant::now(), free);
    }
}

/// What a connection's task holds of the owner: its event queue and the budget of bytes read
/// and not yet handled ([`QUEUED_BYTES`]).
#[derive(Clone)]
struct Owner {
    events: mpsc::Sender<ConnEvent>,
    budget: Arc<Semaphore>,
}

impl Owner {
    /// Hands `data`, read from `conn`, to the owner once the budget has room for it (see
    /// [`tell`]).
    fn bytes(&self, conn: ConnId, data: Bytes) -> Told<'_> {
        let n = u32::try_from(data.len()).expect("one read is at most READ_CHUNK bytes");
        match self.budget.try_acquire_many(n) {
            Ok(permits) => permits.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return Told::Done(false),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Told::Wait(Box::pin(async move {
                    match self.budget.acquire_many(n).await {
                        Ok(permits) => permits.forget(),
                        Err(_) => return false,
                    }
                    tell(&self.events, ConnEvent::Bytes { conn, data })
                        .done()
                        .await
                }));
            }
        }
        tell(&self.events, ConnEvent::Bytes { conn, data })
    }
}

async fn accept_loop(
    listener: Listener,
    owner: Owner,
    ids: Arc<std::sync::atomic::AtomicU64>,
    kennel: Kennel,
) {
    let Listener { tcp, upgrade } = listener;
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let conn = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        if !upgrade.is_plain() {
            tokio::spawn(upgraded(conn, peer, stream, upgrade.clone(), owner.clone()));
            continue;
        }
        let Some(wrx) = open(&owner.events, conn, peer, None, Scheme::Mqtt).await else {
            return;
        };
        tokio::spawn(plain(
            conn,
            stream,
            owner.clone(),
            wrx,
            kennel.clone(),
            None,
        ));
    }
}

/// The kennel's task: starts a task again for each parked connection that wakes. Ends once
/// the owner is gone and no connection is parked (the owner closes every connection as it
/// goes, which wakes the parked ones).
async fn wake_parked(mut watch: Watch, kennel: Kennel, owner: Owner) {
    let mut owner_gone = false;
    loop {
        tokio::select! {
            biased;
            woken = watch.next() => {
                for Waking { conn, stream, mailbox, first } in woken {
                    match stream {
                        Ok(stream) => {
                            tracing::trace!(conn, "woken");
                            let (owner, kennel) = (owner.clone(), kennel.clone());
                            tokio::spawn(plain(conn, stream, owner, mailbox, kennel, first));
                        }
                        Err(e) => {
                            tracing::debug!(conn, error = %e, "lost while waking");
                            let cause = CloseCause::Io;
                            if !tell(&owner.events, ConnEvent::Closed { conn, cause }).done().await {
                                owner_gone = true;
                            }
                        }
                    }
                }
            }
            () = owner.events.closed(), if !owner_gone => owner_gone = true,
        }
        if owner_gone && kennel.is_empty() {
            return;
        }
    }
}

/// Tells the owner of a new connection; the commands for its writer, or `None` when the
/// owner is gone.
async fn open(
    events: &mpsc::Sender<ConnEvent>,
    conn: ConnId,
    peer: SocketAddr,
    identity: Option<Box<str>>,
    transport: Scheme,
) -> Option<Mailbox> {
    let (wtx, wrx) = outbox::pair(ConnMeta {
        pending: 0,
        peer,
        client: None,
        transport,
    });
    events
        .send(ConnEvent::Opened {
            conn,
            writer: wtx,
            identity,
        })
        .await
        .ok()?;
    Some(wrx)
}

/// A connection of a TLS or WebSocket listener: its handshake, bounded in time, then MQTT.
async fn upgraded(
    conn: ConnId,
    peer: SocketAddr,
    stream: TcpStream,
    upgrade: Upgrade,
    owner: Owner,
) {
    let limit = upgrade.handshake_time();
    let (stream, identity) = match tokio::time::timeout(limit, upgrade.accept(stream)).await {
        Ok(Ok(upgraded)) => upgraded,
        Ok(Err(reason)) => {
            tracing::info!(%peer, transport = %upgrade.scheme(), %reason, "connection refused");
            return;
        }
        Err(_) => {
            tracing::info!(
                %peer,
                transport = %upgrade.scheme(),
                reason = %format_args!("handshake not done within {limit:?}"),
                "connection refused"
            );
            return;
        }
    };
    let identity = identity.map(String::into_boxed_str);
    let Some(wrx) = open(&owner.events, conn, peer, identity, upgrade.scheme()).await else {
        return;
    };
    connection(conn, stream, owner, wrx).await;
}

/// A connection's byte stream: plain TCP, which can be parked (`park.rs`), or a TLS or
/// WebSocket stream, which cannot.
trait Link: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl Link for TcpStream {}

impl Link for crate::net::transport::BoxStream {}

/// How one run of a connection's task ended.
enum Run<S> {
    /// The connection is over, for this cause.
    Ended(CloseCause),
    /// Quiet for [`PARK_AFTER`]: its stream, to park.
    Idle(S),
}

/// A plain TCP connection: runs until it ends, parking it each time it goes quiet; the task
/// ends while the connection is parked, and the kennel's task starts another when it wakes
/// (`first`: what the kennel read from it).
async fn plain(
    conn: ConnId,
    mut stream: TcpStream,
    owner: Owner,
    mut mailbox: Mailbox,
    kennel: Kennel,
    mut first: Option<io::Result<Bytes>>,
) {
    // a connection just accepted has read nothing yet; a woken one brings its first read
    let mut parking = if first.is_none() {
        Parking::New
    } else {
        Parking::Quiet
    };
    let cause = loop {
        match run(conn, stream, &owner, &mailbox, parking, first.take()).await {
            Run::Ended(cause) => break cause,
            Run::Idle(s) => match kennel.park(conn, s, mailbox) {
                Parked::Asleep => return,
                Parked::Awake(s, m) => {
                    stream = s;
                    mailbox = m;
                    parking = Parking::Quiet;
                }
                Parked::Lost(e) => {
                    tracing::debug!(conn, error = %e, "lost while parking");
                    break CloseCause::Io;
                }
            },
        }
    };
    tell(&owner.events, ConnEvent::Closed { conn, cause })
        .done()
        .await;
}

/// A connection that is never parked (TLS, WebSockets).
async fn connection<S: Link>(conn: ConnId, stream: S, owner: Owner, mailbox: Mailbox) {
    let cause = match run(conn, stream, &owner, &mailbox, Parking::Never, None).await {
        Run::Ended(cause) => cause,
        Run::Idle(_) => unreachable!("a connection that does not park went idle"),
    };
    tell(&owner.events, ConnEvent::Closed { conn, cause })
        .done()
        .await;
}

/// When a connection's task gives its stream to the kennel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parking {
    /// Never (TLS, WebSockets).
    Never,
    /// Once quiet for [`PARK_AFTER`].
    Quiet,
    /// A connection just accepted: once quiet for [`PARK_AFTER_CONNECT`] while it has read
    /// once (its CONNECT, usually), then as [`Parking::Quiet`].
    New,
}

impl Parking {
    /// How long the task waits, quiet, before it parks, having read `reads` times so far.
    fn quiet_for(self, reads: u64) -> Option<Duration> {
        match self {
            Parking::Never => None,
            Parking::New if reads <= 1 => Some(PARK_AFTER_CONNECT),
            Parking::New | Parking::Quiet => Some(PARK_AFTER),
        }
    }
}

/// Reads and writes a connection until it ends or, unless `parking` is `Never`, until it was
/// quiet (see [`Parking`]) with nothing half-done (a read not yet handed to the owner, a batch not yet
/// written and reported). `first`: what was read from it before this run.
async fn run<S: Link>(
    conn: ConnId,
    stream: S,
    owner: &Owner,
    mailbox: &Mailbox,
    parking: Parking,
    first: Option<io::Result<Bytes>>,
) -> Run<S> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Reads and writes done, reads alone, and whether one is half-done; only this task
    // touches them.
    let activity = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let busy = AtomicBool::new(false);
    let ended = {
        let (activity, reads, busy) = (&activity, &reads, &busy);
        let writer = &mut writer;
        let reader = &mut reader;
        let writer_task = async move {
            loop {
                let Next::Write(batch) = mailbox.next().await else {
                    let _ = writer.shutdown().await;
                    return CloseCause::Local;
                };
                busy.store(true, Relaxed);
                let mut batch = batch;
                let Ok(n) = outbox::write_batch(writer, &mut batch).await else {
                    return CloseCause::Io;
                };
                if writer.flush().await.is_err() {
                    return CloseCause::Io;
                }
                tell(&owner.events, ConnEvent::Written { conn, bytes: n })
                    .done()
                    .await;
                activity.fetch_add(1, Relaxed);
                busy.store(false, Relaxed);
            }
        };
        let reader_task = async move {
            let mut first = first;
            loop {
                mailbox.open().await;
                let read = match first.take() {
                    Some(read) => read,
                    None => read_some(reader).await,
                };
                match read {
                    Ok(data) if data.is_empty() => return CloseCause::PeerClosed,
                    Ok(data) => {
                        busy.store(true, Relaxed);
                        if !owner.bytes(conn, data).done().await {
                            return CloseCause::Local;
                        }
                        activity.fetch_add(1, Relaxed);
                        reads.fetch_add(1, Relaxed);
                        busy.store(false, Relaxed);
                    }
                    Err(_) => return CloseCause::Io,
                }
            }
        };
        let quiet = async move {
            let Some(period) = parking.quiet_for(reads.load(Relaxed)) else {
                return std::future::pending().await;
            };
            // Boxed: a task that runs is only as large as its idle state.
            let mut timer = Box::pin(tokio::time::sleep(period));
            loop {
                let seen = activity.load(Relaxed);
                timer.as_mut().await;
                if activity.load(Relaxed) == seen && !busy.load(Relaxed) {
                    return;
                }
                let period = parking
                    .quiet_for(reads.load(Relaxed))
                    .expect("a connection that never parks returned above");
                timer.as_mut().reset(tokio::time::Instant::now() + period);
            }
        };
        tokio::pin!(writer_task, reader_task, quiet);
        tokio::select! {
            biased;
            // The broker gave up on the connection (it does not read): what is queued is
            // dropped and the socket closed at once.
            () = mailbox.aborted() => Some(CloseCause::Local),
            c = &mut writer_task => {
                // Whether the write failed (the client went away: what it wrote before, such
                // as a DISCONNECT, still counts) or the broker closed the connection (the
                // client still writing gets the broker's last packets, such as a DISCONNECT,
                // instead of a reset), the reader goes on until the client's end, for a
                // bounded time. The simulator's TCP sends no FIN at shutdown (only a drop
                // closes), so there the broker's own close is not held open: its client would
                // learn of it LINGER late.
                if c == CloseCause::Io || !cfg!(madsim) {
                    match Box::pin(tokio::time::timeout(LINGER, &mut reader_task)).await {
                        Ok(read) if c == CloseCause::Io => Some(read),
                        _ => Some(c),
                    }
                } else {
                    Some(c)
                }
            }
            c = &mut reader_task => Some(c),
            () = &mut quiet => None,
        }
    };
    match ended {
        Some(cause) => Run::Ended(cause),
        None => Run::Idle(reader.unsplit(writer)),
    }
}

/// Hands `ev` to the owner task: at once when its queue has room, else [`Told::Wait`]s for
/// room, boxed, so a connection's task is only as large as its idle state.
fn tell(events: &mpsc::Sender<ConnEvent>, ev: ConnEvent) -> Told<'_> {
    match events.try_send(ev) {
        Ok(()) => Told::Done(true),
        Err(mpsc::error::TrySendError::Full(ev)) => {
            Told::Wait(Box::pin(async move { events.send(ev).await.is_ok() }))
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Told::Done(false),
    }
}

enum Told<'a> {
    /// Handed over (true), or the owner is gone (false).
    Done(bool),
    Wait(std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>),
}

impl Told<'_> {
    /// Whether the owner has the event (false: the owner is gone).
    async fn done(self) -> bool {
        match self {
            Told::Done(sent) => sent,
            Told::Wait(wait) => wait.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection just accepted parks soon after its first read; once it read again, or once
    /// woken, after `PARK_AFTER`; TLS and WebSocket connections never.
    #[test]
    fn a_new_connection_quiet_after_its_connect_parks_sooner() {
        assert!(PARK_AFTER_CONNECT < PARK_AFTER);
        assert_eq!(Parking::New.quiet_for(0), Some(PARK_AFTER_CONNECT));
        assert_eq!(Parking::New.quiet_for(1), Some(PARK_AFTER_CONNECT));
        assert_eq!(Parking::New.quiet_for(2), Some(PARK_AFTER));
        assert_eq!(Parking::Quiet.quiet_for(0), Some(PARK_AFTER));
        assert_eq!(Parking::Quiet.quiet_for(5), Some(PARK_AFTER));
        assert_eq!(Parking::Never.quiet_for(0), None);
    }
}
