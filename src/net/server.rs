//! The broker server: accept loops, a reader and a writer task per connection, and one task
//! that owns the broker core.
//!
//! Data flow: reader tasks send the bytes they read to the owner; the owner feeds them to the
//! core with `now`, drains the core's actions, encodes every packet queued for a connection into
//! one buffer and hands it to that connection's writer, which writes and flushes it in one go.
//! In durable mode the owner saves the core's durable state before any of those bytes leave, so
//! no acknowledgement is ever sent for state a crash would lose; a store with a
//! [save interval](DurableStore::save_interval) is instead saved at most once per interval
//! after a change, and on shutdown.
//!
//! What is not here: protocol logic (the core), TLS, websockets.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::broker::{Action, BrokerCore, CloseCause, ConnId, DurableState};
use crate::codec;
use crate::net::clock::sleep_until_opt;

/// Where a durable broker keeps what must survive a crash.
pub trait DurableStore: Send + Sync {
    /// The state last saved, [aged](DurableState::aged) by the time since it was saved, so
    /// that a broker restored from it counts its downtime towards every expiry and will delay.
    fn load(&self) -> io::Result<Option<DurableState>>;
    fn save(&self, state: DurableState) -> io::Result<()>;
    /// `None`: every change is saved before the bytes it produced are written. `Some`: a
    /// change is saved at most this long after it, and whatever is unsaved on shutdown.
    fn save_interval(&self) -> Option<Duration> {
        None
    }
}

/// A store that outlives the broker task but not the process: in simulation it is captured by
/// the node's `init` closure, so a restarted broker node finds it again.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The state and the instant it was saved.
    state: Mutex<Option<(DurableState, Instant)>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl DurableStore for MemoryStore {
    fn load(&self) -> io::Result<Option<DurableState>> {
        let saved = self.state.lock().expect("store lock").clone();
        Ok(saved.map(|(state, at)| state.aged(Instant::now().saturating_duration_since(at))))
    }

    fn save(&self, state: DurableState) -> io::Result<()> {
        *self.state.lock().expect("store lock") = Some((state, Instant::now()));
        Ok(())
    }
}

/// Bytes a connection may have waiting for its writer before it is closed as too slow.
pub const MAX_PENDING_WRITE_BYTES: usize = 64 * 1024 * 1024;
/// Events the connection tasks may queue for the owner before readers wait (backpressure).
const EVENT_QUEUE: usize = 1024;
/// Largest single read.
const READ_CHUNK: usize = 64 * 1024;

enum ConnEvent {
    Opened {
        conn: ConnId,
        peer: SocketAddr,
        writer: mpsc::UnboundedSender<WriterCmd>,
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

enum WriterCmd {
    Data(Bytes),
    Close,
}

struct ConnHandle {
    writer: mpsc::UnboundedSender<WriterCmd>,
    pending_bytes: usize,
}

/// When the core's durable state is saved to the store.
struct Saver {
    store: Arc<dyn DurableStore>,
    interval: Option<Duration>,
    /// With an interval: when the unsaved change is saved.
    due: Option<Instant>,
}

impl Saver {
    /// After the core ran: saves a change at once, or schedules it.
    fn after_change<B: BrokerCore>(&mut self, core: &mut B) {
        if !core.take_dirty() {
            return;
        }
        match self.interval {
            None => self.save(core),
            Some(interval) => {
                if self.due.is_none() {
                    self.due = Some(Instant::now() + interval);
                }
            }
        }
    }

    /// Saves now; a failure is logged and retried after the interval.
    fn save<B: BrokerCore>(&mut self, core: &mut B) {
        self.due = None;
        if let Err(e) = self.store.save(core.durable_state()) {
            tracing::error!(error = %e, "cannot save the durable state");
            self.due = self.interval.map(|i| Instant::now() + i);
        }
    }

    /// On shutdown: saves whatever is unsaved, with the core's clock brought to now.
    fn flush<B: BrokerCore>(&mut self, core: &mut B) -> io::Result<()> {
        core.handle_timeout(Instant::now());
        if self.due.take().is_some() || core.take_dirty() {
            self.store.save(core.durable_state())?;
            tracing::info!("durable state saved");
        }
        Ok(())
    }
}

/// Runs a broker core on the given listeners until `shutdown` completes.
///
/// With a store, the core is expected to have been restored from it by the caller; every change
/// of its durable state is saved before the bytes it produced are written, or, if the store has
/// a save interval, within that interval and on shutdown (a failing save on shutdown is the
/// error returned).
pub async fn serve<B, F>(
    mut core: B,
    listeners: Vec<TcpListener>,
    store: Option<Arc<dyn DurableStore>>,
    shutdown: F,
) -> io::Result<()>
where
    B: BrokerCore + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let (events_tx, mut events_rx) = mpsc::channel::<ConnEvent>(EVENT_QUEUE);
    let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let tx = events_tx.clone();
        let ids = next_id.clone();
        accept_tasks.push(tokio::spawn(accept_loop(listener, tx, ids)));
    }
    drop(events_tx);

    let mut conns: BTreeMap<ConnId, ConnHandle> = BTreeMap::new();
    let mut out: BTreeMap<ConnId, BytesMut> = BTreeMap::new();
    let mut saver = store.map(|store| Saver {
        interval: store.save_interval(),
        store,
        due: None,
    });
    tokio::pin!(shutdown);
    loop {
        let deadline = core.poll_timeout();
        // Biased, in this order, for determinism under the simulator and so that neither
        // shutdown nor a due deadline waits behind a busy event queue.
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
            _ = sleep_until_opt(deadline) => {
                core.handle_timeout(Instant::now());
            }
            _ = sleep_until_opt(saver.as_ref().and_then(|s| s.due)) => {
                // The store stamps the state with the save's time: the core's clock must
                // stand there too, or the time since its last event would be lost.
                core.handle_timeout(Instant::now());
                if let Some(s) = saver.as_mut() {
                    s.save(&mut core);
                }
            }
            ev = events_rx.recv() => {
                let Some(ev) = ev else { break };
                let now = Instant::now();
                match ev {
                    ConnEvent::Opened { conn, peer, writer } => {
                        tracing::debug!(conn, %peer, "accepted");
                        conns.insert(conn, ConnHandle { writer, pending_bytes: 0 });
                        core.handle_accept(now, conn);
                    }
                    ConnEvent::Bytes { conn, data } => {
                        if conns.contains_key(&conn) {
                            core.handle_bytes(now, conn, &data);
                        }
                    }
                    ConnEvent::Closed { conn, cause } => {
                        if conns.remove(&conn).is_some() {
                            tracing::debug!(conn, ?cause, "connection closed");
                            core.handle_closed(now, conn, cause);
                        }
                    }
                    ConnEvent::Written { conn, bytes } => {
                        if let Some(h) = conns.get_mut(&conn) {
                            h.pending_bytes = h.pending_bytes.saturating_sub(bytes);
                        }
                    }
                }
            }
        }
        drain_actions(&mut core, &mut conns, &mut out, saver.as_mut());
    }
    for task in accept_tasks {
        task.abort();
    }
    for (_, h) in conns {
        let _ = h.writer.send(WriterCmd::Close);
    }
    match saver.as_mut() {
        Some(s) => s.flush(&mut core),
        None => Ok(()),
    }
}

/// Applies everything the core asked for: one encoded buffer per connection, then closes.
fn drain_actions<B: BrokerCore>(
    core: &mut B,
    conns: &mut BTreeMap<ConnId, ConnHandle>,
    out: &mut BTreeMap<ConnId, BytesMut>,
    saver: Option<&mut Saver>,
) {
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
                let buf = out.entry(conn).or_default();
                if let Err(e) = codec::encode(&packet, protocol, buf) {
                    panic!("the broker core produced a packet it cannot encode: {e}: {packet:?}");
                }
            }
            Action::Close { conn, reason } => {
                tracing::debug!(conn, ?reason, "broker closes connection");
                closes.push(conn);
            }
        }
    }
    if let Some(saver) = saver {
        saver.after_change(core);
    }
    let mut slow: Vec<ConnId> = Vec::new();
    for (conn, buf) in std::mem::take(out) {
        let Some(h) = conns.get_mut(&conn) else {
            continue;
        };
        if buf.is_empty() {
            continue;
        }
        h.pending_bytes += buf.len();
        if h.pending_bytes > MAX_PENDING_WRITE_BYTES {
            tracing::warn!(
                conn,
                pending = h.pending_bytes,
                "closing a connection that does not read"
            );
            slow.push(conn);
            continue;
        }
        let _ = h.writer.send(WriterCmd::Data(buf.freeze()));
    }
    for conn in closes {
        if let Some(h) = conns.remove(&conn) {
            let _ = h.writer.send(WriterCmd::Close);
        }
    }
    for conn in slow {
        if let Some(h) = conns.remove(&conn) {
            let _ = h.writer.send(WriterCmd::Close);
            core.handle_closed(Instant::now(), conn, CloseCause::Io);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    events: mpsc::Sender<ConnEvent>,
    ids: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let conn = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (wtx, wrx) = mpsc::unbounded_channel();
        if events
            .send(ConnEvent::Opened {
                conn,
                peer,
                writer: wtx,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::spawn(connection(conn, stream, events.clone(), wrx));
    }
}

async fn connection(
    conn: ConnId,
    stream: TcpStream,
    events: mpsc::Sender<ConnEvent>,
    mut writer_rx: mpsc::UnboundedReceiver<WriterCmd>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write_events = events.clone();
    let writer_task = async move {
        while let Some(cmd) = writer_rx.recv().await {
            match cmd {
                WriterCmd::Data(bytes) => {
                    let n = bytes.len();
                    let r = match writer.write_all(&bytes).await {
                        Ok(()) => writer.flush().await,
                        Err(e) => Err(e),
                    };
                    if r.is_err() {
                        return CloseCause::Io;
                    }
                    let _ = write_events
                        .send(ConnEvent::Written { conn, bytes: n })
                        .await;
                }
                WriterCmd::Close => {
                    let _ = writer.shutdown().await;
                    return CloseCause::Local;
                }
            }
        }
        CloseCause::Local
    };
    let read_events = events.clone();
    let reader_task = async move {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match reader.read_buf(&mut buf).await {
                Ok(0) => return CloseCause::PeerClosed,
                Ok(_) => {
                    let data = buf.split().freeze();
                    if read_events
                        .send(ConnEvent::Bytes { conn, data })
                        .await
                        .is_err()
                    {
                        return CloseCause::Local;
                    }
                }
                Err(_) => return CloseCause::Io,
            }
        }
    };
    let cause = tokio::select! {
        biased;
        c = writer_task => c,
        c = reader_task => c,
    };
    let _ = events.send(ConnEvent::Closed { conn, cause }).await;
}
