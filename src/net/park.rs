//! Idle connections, parked. A plain TCP connection that neither read nor wrote for
//! [`PARK_AFTER`] ([`PARK_AFTER_CONNECT`] for one just accepted that read only its CONNECT)
//! gives its socket and its mailbox to the [`Kennel`] and its task ends: while
//! parked it costs an entry in the kennel's map, instead of a task, the runtime's readiness
//! record of its socket and the split stream. The kennel hands it back, to a new task
//! ([`Watch::next`]), when its socket has something to read (data, the peer's end, an error)
//! or when the owner changes its mailbox (output, a close, an abort, the gate opening): the
//! mailbox then tells the owner that the connection is asleep, and the owner calls the kennel
//! with its id ([`Kennel::call`]).
//!
//! On real TCP the parked sockets leave the runtime's reactor for an epoll instance of the
//! kennel's own (`mio`), which the runtime watches as one descriptor. On simulated TCP
//! (`--cfg madsim`) there are no descriptors: the kennel's task polls each parked stream for a
//! read itself, and what it read goes to the connection's new task. Either way the decision to
//! park, the handover and the wake-ups are this code and `server.rs`'s, under the lab as on the
//! real network.
//!
//! TLS and WebSocket connections keep their task: their state is in the process, not only in
//! the kernel.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use crate::broker::ConnId;
use crate::net::outbox::Mailbox;

/// How long a connection is quiet (nothing read, nothing written) before it is parked.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// How long a connection just accepted, which has read once (its CONNECT, usually), is quiet
/// before it is parked. Most idle clients go quiet right after their CONNACK; parked this soon,
/// the tasks of a burst of new connections are not alive together (freed after the session
/// and connection state their CONNECTs allocated, their memory would stay with the process as
/// gaps between them), and a client that goes on at once is parked and woken at most once.
pub const PARK_AFTER_CONNECT: Duration = Duration::from_millis(5);

/// Largest single read: the size of each runtime thread's read buffer ([`poll_read_some`]).
pub const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The read buffer of this runtime thread, lent to one read at a time.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Polls `reader` for what it has to give (empty at its end), read into the thread's buffer
/// and copied out at its exact size: a connection waiting for data holds no buffer.
pub fn poll_read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Bytes>> {
    SCRATCH.with_borrow_mut(|scratch| {
        let mut buf = ReadBuf::new(scratch);
        std::pin::Pin::new(&mut *reader)
            .poll_read(cx, &mut buf)
            .map_ok(|()| Bytes::copy_from_slice(buf.filled()))
    })
}

/// [`poll_read_some`] as a future.
pub async fn read_some<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Bytes> {
    std::future::poll_fn(|cx| poll_read_some(reader, cx)).await
}

/// A parked connection handed back.
pub struct Waking<T = ()> {
    pub conn: ConnId,
    /// Its socket, back in the runtime (an error: it could not be, and the connection is lost).
    pub stream: io::Result<TcpStream>,
    pub mailbox: Mailbox<T>,
    /// What the kennel read from it, if it read (the simulated network's kennel reads to learn
    /// that there is something).
    pub first: Option<io::Result<Bytes>>,
}

/// Where connections are parked; cheap to clone, every clone the same kennel. `T`: the owner's
/// data in the connections' outboxes.
pub struct Kennel<T = ()>(Arc<Shared<T>>);

impl<T> Clone for Kennel<T> {
    fn clone(&self) -> Kennel<T> {
        Kennel(self.0.clone())
    }
}

/// The kennel's task side: hands parked connections back ([`Watch::next`]).
pub struct Watch<T = ()> {
    shared: Arc<Shared<T>>,
    #[cfg(not(madsim))]
    poll: tokio::io::unix::AsyncFd<mio::Poll>,
    #[cfg(not(madsim))]
    events: mio::Events,
}

/// How parking went.
pub enum Parked<T = ()> {
    /// The connection sleeps in the kennel; its task may end.
    Asleep,
    /// Something waits for the connection's task (output, a close, a shut gate): it goes on.
    Awake(TcpStream, Mailbox<T>),
    /// The socket could not be moved: the connection is lost.
    Lost(io::Error),
}

struct Shared<T> {
    sleepers: Mutex<BTreeMap<ConnId, Sleeper<T>>>,
    calls: Mutex<Calls>,
    #[cfg(not(madsim))]
    registry: mio::Registry,
}

struct Sleeper<T> {
    #[cfg(not(madsim))]
    stream: std::net::TcpStream,
    #[cfg(madsim)]
    stream: TcpStream,
    mailbox: Mailbox<T>,
}

/// Parked connections whose mailbox changed, and the kennel task to wake for them.
#[derive(Default)]
struct Calls {
    conns: Vec<ConnId>,
    task: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing is left half-done under these locks, so a poisoned one is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Shared<T> {
    /// Wakes the kennel's task, for `conn` if given.
    fn call(&self, conn: Option<ConnId>) {
        let task = {
            let mut calls = lock(&self.calls);
            calls.conns.extend(conn);
            calls.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
    }

    /// The connections called since the last time, the kennel's task registered for the next.
    fn take_calls(&self, cx: &Context<'_>) -> Vec<ConnId> {
        let mut calls = lock(&self.calls);
        calls.task = Some(cx.waker().clone());
        std::mem::take(&mut calls.conns)
    }
}

/// A new kennel and its task side.
pub fn kennel<T>() -> io::Result<(Kennel<T>, Watch<T>)> {
    #[cfg(not(madsim))]
    {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let shared = Arc::new(Shared {
            sleepers: Mutex::default(),
            calls: Mutex::default(),
            registry,
        });
        let watch = Watch {
            shared: shared.clone(),
            // SAFETY: the `mio::Poll` owns its epoll descriptor, which stays open and the
            // same until the poll is dropped, and the poll is dropped only with the `AsyncFd`.
            poll: unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    poll,
                    tokio::io::Interest::READABLE,
                )?
            },
            events: mio::Events::with_capacity(256),
        };
        Ok((Kennel(shared), watch))
    }
    #[cfg(madsim)]
    {
        let shared = Arc::new(Shared {
            sleepers: Mutex::default(),
            calls: Mutex::default(),
        });
        Ok((
            Kennel(shared.clone()),
            Watch {
                shared: shared.clone(),
            },
        ))
    }
}

impl<T> Kennel<T> {
    /// Parks connection `conn` unless something waits for its task (see [`Parked`]).
    pub fn park(&self, conn: ConnId, stream: TcpStream, mailbox: Mailbox<T>) -> Parked<T> {
        // Under the map's lock from the mailbox's going to sleep to the entry's insertion, so
        // a call in between finds the entry once the kennel's task can look.
        let mut sleepers = lock(&self.0.sleepers);
        if !mailbox.sleep() {
            return Parked::Awake(stream, mailbox);
        }
        #[cfg(not(madsim))]
        let stream = {
            use std::os::fd::AsRawFd;
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    mailbox.wake();
                    return Parked::Lost(e);
                }
            };
            let token = mio::Token(usize::try_from(conn).expect("a 64-bit target"));
            let fd = stream.as_raw_fd();
            let source = &mut mio::unix::SourceFd(&fd);
            if let Err(e) = self
                .0
                .registry
                .register(source, token, mio::Interest::READABLE)
            {
                tracing::debug!(conn, error = %e, "not parked");
                mailbox.wake();
                return match TcpStream::from_std(stream) {
                    Ok(s) => Parked::Awake(s, mailbox),
                    Err(e) => Parked::Lost(e),
                };
            }
            stream
        };
        let previous = sleepers.insert(conn, Sleeper { stream, mailbox });
        assert!(previous.is_none(), "connection {conn} parked twice");
        drop(sleepers);
        tracing::trace!(conn, "parked");
        // The simulated kennel learns of a stream to poll only from its task.
        if cfg!(madsim) {
            self.0.call(None);
        }
        Parked::Asleep
    }

    /// Hands connection `conn` back to a task: the owner changed its mailbox, which said the
    /// connection was asleep ([`Asleep`](crate::net::outbox::Asleep)). A call for a connection
    /// handed back already is ignored.
    pub fn call(&self, conn: ConnId) {
        self.0.call(Some(conn));
    }

    /// Connections parked now.
    pub fn len(&self) -> usize {
        lock(&self.0.sleepers).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Watch<T> {
    /// The next parked connections to hand back: called by their mailbox, or with something
    /// to read.
    pub async fn next(&mut self) -> Vec<Waking<T>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    #[cfg(not(madsim))]
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Waking<T>>> {
        use std::os::fd::AsRawFd;
        loop {
            let mut conns = self.shared.take_calls(cx);
            // Readiness of the parked sockets: drained until the epoll instance has nothing,
            // then cleared, so the runtime reports its next event.
            let mut polled = false;
            while let Poll::Ready(ready) = self.poll.poll_read_ready_mut(cx) {
                let mut guard = match ready {
                    Ok(guard) => guard,
                    Err(e) => {
                        tracing::warn!(error = %e, "parked connections not watched");
                        break;
                    }
                };
                match guard
                    .get_inner_mut()
                    .poll(&mut self.events, Some(Duration::ZERO))
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "parked connections not watched");
                        break;
                    }
                }
                if self.events.is_empty() {
                    guard.clear_ready();
                    continue;
                }
                conns.extend(self.events.iter().map(|e| e.token().0 as ConnId));
                polled = true;
                break;
            }
            let mut sleepers = lock(&self.shared.sleepers);
            let woken: Vec<Waking<T>> = conns
                .into_iter()
                .filter_map(|conn| {
                    let s = sleepers.remove(&conn)?;
                    let fd = s.stream.as_raw_fd();
                    let _ = self
                        .shared
                        .registry
                        .deregister(&mut mio::unix::SourceFd(&fd));
                    s.mailbox.wake();
                    Some(Waking {
                        conn,
                        stream: TcpStream::from_std(s.stream),
                        mailbox: s.mailbox,
                        first: None,
                    })
                })
                .collect();
            drop(sleepers);
            if !woken.is_empty() {
                return Poll::Ready(woken);
            }
            // Stale calls or events (of connections already handed back): look again while
            // the epoll instance had any, so its readiness is drained or waited for.
            if !polled {
                return Poll::Pending;
            }
        }
    }

    #[cfg(madsim)]
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Waking<T>>> {
        let conns = self.shared.take_calls(cx);
        let mut sleepers = lock(&self.shared.sleepers);
        let mut woken = Vec::new();
        for conn in conns {
            if let Some(s) = sleepers.remove(&conn) {
                woken.push((conn, s, None));
            }
        }
        let read: Vec<(ConnId, io::Result<Bytes>)> = sleepers
            .iter_mut()
            .filter_map(|(conn, s)| match poll_read_some(&mut s.stream, cx) {
                Poll::Ready(r) => Some((*conn, r)),
                Poll::Pending => None,
            })
            .collect();
        for (conn, r) in read {
            let s = sleepers.remove(&conn).expect("read from a sleeper");
            woken.push((conn, s, Some(r)));
        }
        drop(sleepers);
        if woken.is_empty() {
            return Poll::Pending;
        }
        Poll::Ready(
            woken
                .into_iter()
                .map(|(conn, s, first)| {
                    s.mailbox.wake();
                    Waking {
                        conn,
                        stream: Ok(s.stream),
                        mailbox: s.mailbox,
                        first,
                    }
                })
                .collect(),
        )
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::net::outbox::{self, Asleep};

    /// Both ends of a fresh TCP connection: (the broker's, the client's).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    async fn next_within(watch: &mut Watch, limit: Duration) -> Option<Vec<Waking>> {
        tokio::time::timeout(limit, watch.next()).await.ok()
    }

    fn asleep(p: Parked) {
        match p {
            Parked::Asleep => {}
            Parked::Awake(..) => panic!("stayed awake"),
            Parked::Lost(e) => panic!("lost: {e}"),
        }
    }

    #[tokio::test]
    async fn a_parked_connection_wakes_when_its_peer_writes_and_nothing_is_lost() {
        let (kennel, mut watch) = kennel().unwrap();
        let (server, mut client) = tcp_pair().await;
        let (_outbox, mailbox) = outbox::pair(());
        asleep(kennel.park(7, server, mailbox));
        assert_eq!(kennel.len(), 1);
        assert!(
            next_within(&mut watch, Duration::from_millis(100))
                .await
                .is_none(),
            "a quiet connection stays parked"
        );
        client.write_all(b"hello").await.unwrap();
        let woken = next_within(&mut watch, Duration::from_secs(5))
            .await
            .expect("woken by the write");
        assert_eq!(woken.len(), 1);
        let Waking { conn, stream, .. } = woken.into_iter().next().unwrap();
        assert_eq!(conn, 7);
        assert!(kennel.is_empty());
        let mut buf = [0; 5];
        stream.unwrap().read_exact(&mut buf).await.unwrap();
        assert_eq!(
            &buf, b"hello",
            "the bytes that woke it are still to be read"
        );
    }

    #[tokio::test]
    async fn a_parked_connection_wakes_when_the_owner_has_output_for_it() {
        let (kennel, mut watch) = kennel().unwrap();
        let (server, _client) = tcp_pair().await;
        let (outbox, mailbox) = outbox::pair(());
        asleep(kennel.park(3, server, mailbox));
        assert_eq!(outbox.send(Bytes::from_static(b"out")), Asleep(true));
        assert!(
            next_within(&mut watch, Duration::from_millis(100))
                .await
                .is_none(),
            "the output alone wakes nothing: the owner calls the kennel"
        );
        kennel.call(3);
        let woken = next_within(&mut watch, Duration::from_secs(5))
            .await
            .expect("woken by the output");
        let Waking { conn, mailbox, .. } = woken.into_iter().next().unwrap();
        assert_eq!(conn, 3);
        assert_eq!(
            mailbox.next().await,
            outbox::Next::Write([Bytes::from_static(b"out")].into())
        );
    }

    #[tokio::test]
    async fn a_parked_connection_wakes_at_its_peers_end() {
        let (kennel, mut watch) = kennel().unwrap();
        let (server, client) = tcp_pair().await;
        let (_outbox, mailbox) = outbox::pair(());
        asleep(kennel.park(9, server, mailbox));
        drop(client);
        let woken = next_within(&mut watch, Duration::from_secs(5))
            .await
            .expect("woken by the close");
        let Waking { stream, .. } = woken.into_iter().next().unwrap();
        let mut buf = [0; 1];
        assert_eq!(stream.unwrap().read(&mut buf).await.unwrap(), 0, "EOF");
    }

    #[tokio::test]
    async fn a_connection_with_output_queued_or_its_gate_shut_is_not_parked() {
        let (kennel, _watch) = kennel().unwrap();
        let (server, _client) = tcp_pair().await;
        let (outbox, mailbox) = outbox::pair(());
        assert_eq!(outbox.send(Bytes::from_static(b"out")), Asleep(false));
        let Parked::Awake(server, mailbox) = kennel.park(1, server, mailbox) else {
            panic!("parked with output queued");
        };
        assert_eq!(
            mailbox.next().await,
            outbox::Next::Write([Bytes::from_static(b"out")].into())
        );
        assert_eq!(outbox.hold_reading(true), Asleep(false));
        let Parked::Awake(server, mailbox) = kennel.park(1, server, mailbox) else {
            panic!("parked at a shut gate");
        };
        assert_eq!(outbox.close(), Asleep(false));
        let Parked::Awake(..) = kennel.park(1, server, mailbox) else {
            panic!("parked after its close");
        };
        assert!(kennel.is_empty());
    }

    #[tokio::test]
    async fn many_parked_connections_each_wake_for_their_own_cause() {
        let (kennel, mut watch) = kennel().unwrap();
        let mut clients = Vec::new();
        let mut outboxes = Vec::new();
        for conn in 0..40 {
            let (server, client) = tcp_pair().await;
            let (outbox, mailbox) = outbox::pair(());
            asleep(kennel.park(conn, server, mailbox));
            clients.push(client);
            outboxes.push(outbox);
        }
        // Even ones by a write of their peer, multiples of 5 by output: 0..40 has 20 even
        // ones and 4 odd multiples of 5.
        for (conn, client) in clients.iter_mut().enumerate() {
            if conn % 2 == 0 {
                client.write_all(b"x").await.unwrap();
            }
        }
        for (conn, outbox) in outboxes.iter().enumerate() {
            if conn % 5 == 0 && outbox.send(Bytes::from_static(b"y")).0 {
                kennel.call(conn as ConnId);
            }
        }
        let mut woken = std::collections::BTreeSet::new();
        while woken.len() < 24 {
            let batch = next_within(&mut watch, Duration::from_secs(5))
                .await
                .expect("all of them woken");
            for w in batch {
                assert!(woken.insert(w.conn), "woken twice");
            }
        }
        let expected: std::collections::BTreeSet<ConnId> =
            (0..40).filter(|c| c % 2 == 0 || c % 5 == 0).collect();
        assert_eq!(woken, expected);
        assert_eq!(kennel.len(), 16);
        assert!(
            next_within(&mut watch, Duration::from_millis(100))
                .await
                .is_none(),
            "the others sleep on"
        );
        for (conn, outbox) in outboxes.iter().enumerate() {
            if outbox.close().0 {
                kennel.call(conn as ConnId);
            }
        }
        let closed = next_within(&mut watch, Duration::from_secs(5))
            .await
            .expect("the closed ones woken");
        assert_eq!(closed.len(), 16, "each sleeper, once");
        assert!(kennel.is_empty());
    }
}
