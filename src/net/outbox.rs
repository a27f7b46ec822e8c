//! What the broker's owner task hands a connection's writer: buffers to write, in order, then
//! possibly the order to close. A channel that costs next to nothing while empty (a connection
//! is idle most of its life): a short queue behind a lock and the waker of the connection's
//! task, where a channel of tokio's allocates blocks of slots up front.
//!
//! [`Outbox`] is the owner's end, [`Mailbox`] the connection task's. Dropping the owner's end
//! closes the writer's after what was queued, like a dropped sender. The owner also opens and
//! shuts the connection's gate ([`Mailbox::open`]): its reader reads only while the gate is
//! open (backpressure, see `throttle.rs`). The writer, the reader and the wait for an abort
//! are polled by one task, so one waker serves them all.
//!
//! A parked connection (`park.rs`) has no task to wake: its mailbox only remembers that it is
//! asleep, and the owner's change that finds it so says it did ([`Asleep`]); the owner, which
//! knows the connection's id, then calls the kennel. No waker is kept per parked connection.
//!
//! The owner keeps what else it knows of the connection in the same allocation: an
//! [`Outbox`] derefs to the `T` given to [`pair`], which only the owner's end reaches.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

struct Shared<T> {
    state: Mutex<State>,
    /// The owner's data: reached only through the one [`Outbox`], which is not `Clone`.
    owner: UnsafeCell<T>,
}

// SAFETY: `owner` is reached only through the `Outbox` (`Deref`, `DerefMut`), so a `&T` only
// through a `&Outbox` (hence `T: Sync`) and a `&mut T` only through the unique `&mut Outbox`;
// it is dropped by whichever end goes last (hence `T: Send`). `state` is a `Mutex`.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// No more buffers: the writer ends after those queued.
    closed: bool,
    /// The gate is shut: the reader waits.
    held: bool,
    /// The owner gave up on the connection: it ends now, whatever is queued.
    aborted: bool,
    /// The connection sleeps in the kennel: no task waits, the owner's next change that would
    /// wake one calls the kennel instead ([`Asleep`]).
    parked: bool,
    /// The connection's task, waiting for buffers, at the shut gate or for an abort (one task
    /// polls all three).
    waiting: Option<std::task::Waker>,
}

impl State {
    /// Registers the task of `cx` to be woken by the owner.
    fn wait(&mut self, cx: &std::task::Context<'_>) {
        match &mut self.waiting {
            Some(w) => w.clone_from(cx.waker()),
            None => self.waiting = Some(cx.waker().clone()),
        }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing is left half-done under the lock, so a poisoned one is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The owner's end: queues buffers for the writer, or closes; derefs to the owner's data.
pub struct Outbox<T = ()>(Arc<Shared<T>>);

/// The writer's end.
pub struct Mailbox<T = ()>(Arc<Shared<T>>);

/// What the writer does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write these, in order.
    Write(VecDeque<Bytes>),
    /// Everything queued was taken and the owner closed (or dropped) its end.
    Close,
}

/// Whether an owner's change found the connection asleep in the kennel (`park.rs`), where only
/// a call of the kennel with the connection's id wakes it: true once per sleep, for the first
/// change that would wake its task.
#[must_use = "a parked connection wakes only when the kennel is called for it"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asleep(pub bool);

/// A new, empty pair; the owner's end holds `owner`.
pub fn pair<T>(owner: T) -> (Outbox<T>, Mailbox<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::default(),
        owner: UnsafeCell::new(owner),
    });
    (Outbox(shared.clone()), Mailbox(shared))
}

impl<T> std::ops::Deref for Outbox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: only the `Outbox` reaches `owner` (see `Shared`), and this borrows it.
        unsafe { &*self.0.owner.get() }
    }
}

impl<T> std::ops::DerefMut for Outbox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: only the `Outbox` reaches `owner` (see `Shared`), and this borrows it
        // uniquely.
        unsafe { &mut *self.0.owner.get() }
    }
}

impl<T> Outbox<T> {
    /// Queues `data` for the writer (nothing after a close).
    pub fn send(&self, data: Bytes) -> Asleep {
        self.change(|s| {
            if s.closed {
                return false;
            }
            s.queue.push_back(data);
            true
        })
    }

    /// The writer ends once it has written what is queued. Also opens the gate, so the reader
    /// can read to the client's end.
    pub fn close(&self) -> Asleep {
        self.change(|s| {
            s.closed = true;
            s.held = false;
            true
        })
    }

    /// The connection ends now: what is queued is dropped, the writer and reader stop (see
    /// [`Mailbox::aborted`]).
    pub fn abort(&self) -> Asleep {
        self.change(|s| {
            s.queue = VecDeque::new();
            s.closed = true;
            s.held = false;
            s.aborted = true;
            true
        })
    }

    /// Shuts (`true`) or opens the connection's gate ([`Mailbox::open`]).
    pub fn hold_reading(&self, held: bool) -> Asleep {
        // Shutting the gate wakes nobody: the reader finds it shut on its next read.
        self.change(|s| {
            s.held = held;
            !held
        })
    }

    /// Applies `f`, then, if it says so, wakes the connection's task, or tells that the
    /// connection is asleep in the kennel.
    fn change(&self, f: impl FnOnce(&mut State) -> bool) -> Asleep {
        let waiting = {
            let mut s = self.0.lock();
            if !f(&mut s) {
                return Asleep(false);
            }
            if std::mem::take(&mut s.parked) {
                return Asleep(true);
            }
            s.waiting.take()
        };
        if let Some(task) = waiting {
            task.wake();
        }
        Asleep(false)
    }
}

impl<T> Mailbox<T> {
    /// For the connection's reader: returns at once while the gate is open, else once the
    /// owner opens it.
    pub async fn open(&self) {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock();
            if !s.held {
                return Poll::Ready(());
            }
            s.wait(cx);
            Poll::Pending
        })
        .await
    }

    /// For a connection going to sleep (`park.rs`): when nothing waits for its task (nothing
    /// queued, not closed, the gate open), it is marked asleep, so that the owner's next change
    /// tells the owner to call the kennel ([`Asleep`]), and true; else false, and nothing
    /// changes.
    pub fn sleep(&self) -> bool {
        let mut s = self.0.lock();
        if !s.queue.is_empty() || s.closed || s.held {
            return false;
        }
        s.waiting = None;
        s.parked = true;
        true
    }

    /// For a connection the kennel hands back to a task: no longer asleep, the owner's changes
    /// wake its task again.
    pub fn wake(&self) {
        self.0.lock().parked = false;
    }

    /// Returns once the owner aborted the connection ([`Outbox::abort`]).
    pub async fn aborted(&self) {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock();
            if s.aborted {
                return Poll::Ready(());
            }
            s.wait(cx);
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Outbox<T> {
    /// Closes; the owner closes a parked connection itself first, calling the kennel.
    fn drop(&mut self) {
        let Asleep(asleep) = self.close();
        assert!(
            !asleep || std::thread::panicking(),
            "an outbox dropped while its connection was parked, without calling the kennel"
        );
    }
}

impl<T> Mailbox<T> {
    /// What is queued so far, up to [`MAX_BATCH`] bytes (at least one buffer), waiting until
    /// there is something; [`Next::Close`] once the owner closed and nothing is left. The
    /// queue's memory goes with what is taken, so an idle connection keeps none.
    pub async fn next(&self) -> Next {
        std::future::poll_fn(|cx| {
            let mut s = self.0.lock();
            if !s.queue.is_empty() {
                let mut size = 0;
                let count = s
                    .queue
                    .iter()
                    .take_while(|b| {
                        let first = size == 0;
                        size += b.len();
                        first || size <= MAX_BATCH
                    })
                    .count();
                if count == s.queue.len() {
                    return Poll::Ready(Next::Write(std::mem::take(&mut s.queue)));
                }
                return Poll::Ready(Next::Write(s.queue.drain(..count).collect()));
            }
            if s.closed {
                return Poll::Ready(Next::Close);
            }
            s.wait(cx);
            Poll::Pending
        })
        .await
    }
}

/// The most bytes the writer takes at once (unless one buffer is larger): it reports each
/// batch written, and the owner learns of progress at least this often.
pub const MAX_BATCH: usize = 1024 * 1024;

/// The most buffers one vectored write hands to the stream.
const WRITE_SLICES: usize = 64;

/// Writes `batch` in order, as many buffers per system call as the stream takes (one at a time
/// for a stream without vectored writes); the bytes written.
pub async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &mut VecDeque<Bytes>,
) -> io::Result<usize> {
    let mut total = 0;
    while !batch.is_empty() {
        if batch.front().is_some_and(|b| b.is_empty()) {
            batch.pop_front();
            continue;
        }
        let mut written = {
            let slices: Vec<io::IoSlice<'_>> = batch
                .iter()
                .take(WRITE_SLICES)
                .map(|b| io::IoSlice::new(b))
                .collect();
            writer.write_vectored(&slices).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        total += written;
        while written > 0 {
            let front = batch.front_mut().expect("no more written than was given");
            if written < front.len() {
                front.advance(written);
                written = 0;
            } else {
                written -= front.len();
                batch.pop_front();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<F: std::future::Future>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(x) => Some(x),
            std::task::Poll::Pending => None,
        }
    }

    /// A waker that raises a flag.
    fn flag() -> (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::task::Waker,
    ) {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waker = std::task::Waker::from(std::sync::Arc::new(Flag(woken.clone())));
        (woken, waker)
    }

    /// An owner's change that found the connection's task awake, not parked.
    fn awake(a: Asleep) {
        assert_eq!(a, Asleep(false), "no connection here is parked");
    }

    #[test]
    fn a_parked_connection_tells_the_first_change_that_would_wake_it_then_wakes_its_task() {
        let (tx, rx) = pair(());
        awake(tx.hold_reading(true));
        assert!(!rx.sleep(), "a shut gate waits for the task: no sleep");
        awake(tx.hold_reading(false));
        assert!(rx.sleep());
        assert_eq!(
            tx.hold_reading(true),
            Asleep(false),
            "shutting the gate wakes nobody"
        );
        assert_eq!(tx.hold_reading(false), Asleep(true), "opening it does");
        rx.wake();
        assert!(rx.sleep());
        assert_eq!(tx.send(Bytes::from_static(b"a")), Asleep(true));
        assert_eq!(
            tx.send(Bytes::from_static(b"b")),
            Asleep(false),
            "told once: the kennel was called"
        );
        assert!(!rx.sleep(), "output queued: no sleep");
        rx.wake();
        assert_eq!(
            now(rx.next()),
            Some(Next::Write(
                [Bytes::from_static(b"a"), Bytes::from_static(b"b")].into()
            ))
        );
        assert!(rx.sleep());
        rx.wake();
        let (woken, waker) = flag();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut next = Box::pin(rx.next());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        awake(tx.close());
        assert!(
            woken.load(std::sync::atomic::Ordering::SeqCst),
            "handed back, its task is woken again"
        );
        assert!(!rx.sleep(), "closed: no sleep");
    }

    #[test]
    #[should_panic(expected = "parked")]
    fn dropping_the_outbox_of_a_parked_connection_is_a_bug() {
        let (tx, rx) = pair(());
        assert!(rx.sleep());
        drop(tx);
    }

    #[test]
    fn buffers_come_out_in_order_then_the_close() {
        let (tx, rx) = pair(());
        assert_eq!(now(rx.next()), None, "nothing queued: waits");
        awake(tx.send(Bytes::from_static(b"a")));
        awake(tx.send(Bytes::from_static(b"b")));
        awake(tx.close());
        awake(tx.send(Bytes::from_static(b"after the close")));
        assert_eq!(
            now(rx.next()),
            Some(Next::Write(
                [Bytes::from_static(b"a"), Bytes::from_static(b"b")].into()
            ))
        );
        assert_eq!(now(rx.next()), Some(Next::Close));
    }

    #[test]
    fn a_batch_is_at_most_max_batch_bytes_unless_one_buffer_is_larger() {
        let (tx, rx) = pair(());
        let big = Bytes::from(vec![1; MAX_BATCH + 1]);
        let half = Bytes::from(vec![2; MAX_BATCH / 2]);
        for b in [&big, &half, &half, &half] {
            awake(tx.send(b.clone()));
        }
        assert_eq!(now(rx.next()), Some(Next::Write([big].into())));
        assert_eq!(
            now(rx.next()),
            Some(Next::Write([half.clone(), half.clone()].into()))
        );
        assert_eq!(now(rx.next()), Some(Next::Write([half].into())));
        assert_eq!(now(rx.next()), None);
    }

    #[test]
    fn a_shut_gate_holds_the_reader_until_the_owner_opens_it() {
        let (tx, rx) = pair(());
        let gate = &rx;
        assert_eq!(now(gate.open()), Some(()), "open from the start");
        awake(tx.hold_reading(true));
        let (woken, waker) = flag();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut open = Box::pin(gate.open());
        assert!(open.as_mut().poll(&mut cx).is_pending());
        awake(tx.hold_reading(true));
        assert!(!woken.load(std::sync::atomic::Ordering::SeqCst));
        awake(tx.hold_reading(false));
        assert!(
            woken.load(std::sync::atomic::Ordering::SeqCst),
            "opening wakes it"
        );
        assert!(open.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn an_abort_drops_what_is_queued_and_wakes_the_task() {
        let (tx, rx) = pair(());
        let gate = &rx;
        awake(tx.send(Bytes::from_static(b"never written")));
        awake(tx.hold_reading(true));
        assert_eq!(now(gate.aborted()), None);
        assert_eq!(now(gate.open()), None, "held");
        awake(tx.abort());
        assert_eq!(now(gate.aborted()), Some(()));
        assert_eq!(now(gate.open()), Some(()), "an aborted gate is open");
        assert_eq!(now(rx.next()), Some(Next::Close), "the queue was dropped");
    }

    #[test]
    fn dropping_the_owner_closes_after_what_was_queued() {
        let (tx, rx) = pair(());
        awake(tx.send(Bytes::from_static(b"last")));
        drop(tx);
        assert_eq!(
            now(rx.next()),
            Some(Next::Write([Bytes::from_static(b"last")].into()))
        );
        assert_eq!(now(rx.next()), Some(Next::Close));
    }

    #[test]
    fn a_send_wakes_a_waiting_writer() {
        let (tx, rx) = pair(());
        let (woken, waker) = flag();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut next = Box::pin(rx.next());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        awake(tx.send(Bytes::from_static(b"x")));
        assert!(woken.load(std::sync::atomic::Ordering::SeqCst));
        assert!(next.as_mut().poll(&mut cx).is_ready());
    }

    /// A stream taking at most `max` bytes per write, vectored or not; counts its calls.
    struct Stingy {
        out: Vec<u8>,
        max: usize,
        vectored: bool,
        calls: usize,
    }

    impl AsyncWrite for Stingy {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            self.calls += 1;
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> std::task::Poll<io::Result<usize>> {
            if !self.vectored {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]);
                return self.poll_write(
                    &mut std::task::Context::from_waker(std::task::Waker::noop()),
                    first,
                );
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.max {
                    break;
                }
            }
            self.calls += 1;
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_batch_is_written_whole_and_in_order_through_short_writes() {
        let chunks: Vec<Bytes> = (0..100u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect();
        let whole: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        for (max, vectored) in [(1000, true), (5, true), (3, false), (10_000, false)] {
            let mut w = Stingy {
                out: Vec::new(),
                max,
                vectored,
                calls: 0,
            };
            let mut batch: VecDeque<Bytes> = chunks.iter().cloned().collect();
            let n = now(write_batch(&mut w, &mut batch)).expect("never waits");
            assert_eq!(
                n.expect("writes"),
                whole.len(),
                "max {max} vectored {vectored}"
            );
            assert_eq!(w.out, whole, "max {max} vectored {vectored}");
            assert!(batch.is_empty());
            if vectored && max >= whole.len() {
                assert!(
                    w.calls <= 2,
                    "{} calls for 100 buffers of {} bytes",
                    w.calls,
                    whole.len()
                );
            }
        }
    }
}
