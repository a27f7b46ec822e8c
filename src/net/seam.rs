//! The stream seam: where per-connection faults are injected, on real and on simulated TCP.
//!
//! The simulator can delay, clog and kill whole nodes, but it cannot cut one connection,
//! black-hole it, slow it down or fragment its writes. Those four live here, in a wrapper around
//! the two halves of a stream, driven by a [`LinkControl`] that the lab (or a test) holds:
//!
//! - **cut**: both halves fail at once and drop the stream, so the peer reads EOF. A cut ends
//!   the connections that exist when it is applied, never later ones.
//! - **black hole**: nothing passes in either direction and nothing closes (half-open). Bytes
//!   are held, not lost, so the byte stream stays intact; they flow again when the hole heals,
//!   as TCP retransmission would deliver them.
//! - **delay**: every write and every read is held back by an extra duration, in order.
//! - **split**: writes go out in fragments of at most N bytes, each flushed on its own, so the
//!   peer's framer sees partial packets.
//! - **hold one way**: as a black hole, for writes only or reads only (a one-way partition, as
//!   the fault proxy makes it).
//!
//! What is not here: node-wide latency, loss and partitions (the simulator's network does
//! those), and any clock other than `tokio::time`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// The faults in force on one logical link (all connections of one client, say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Bumped by each cut; a connection opened under epoch `e` is cut when the epoch moves on.
    pub cut_epoch: u64,
    pub blackhole: bool,
    /// Writes are held (reads pass), as in a black hole.
    pub hold_writes: bool,
    /// Reads are held (writes pass), as in a black hole.
    pub hold_reads: bool,
    pub extra_delay: Duration,
    /// Largest write fragment in bytes; `None` writes whole buffers.
    pub max_fragment: Option<usize>,
}

/// The handle that applies faults to a link. Cheap to clone; all clones act on the same link.
#[derive(Debug, Clone)]
pub struct LinkControl {
    tx: Arc<watch::Sender<LinkFaults>>,
}

impl Default for LinkControl {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkControl {
    pub fn new() -> LinkControl {
        let (tx, _rx) = watch::channel(LinkFaults::default());
        LinkControl { tx: Arc::new(tx) }
    }

    /// Cuts every connection currently open on this link.
    pub fn cut(&self) {
        self.tx.send_modify(|f| f.cut_epoch += 1);
    }

    pub fn set_blackhole(&self, on: bool) {
        self.tx.send_modify(|f| f.blackhole = on);
    }

    /// Holds writes (`writes`) and reads (`reads`) as a black hole would, each way apart.
    pub fn set_holds(&self, writes: bool, reads: bool) {
        self.tx.send_modify(|f| {
            f.hold_writes = writes;
            f.hold_reads = reads;
        });
    }

    pub fn set_extra_delay(&self, delay: Duration) {
        self.tx.send_modify(|f| f.extra_delay = delay);
    }

    pub fn set_max_fragment(&self, max: Option<usize>) {
        self.tx
            .send_modify(|f| f.max_fragment = max.map(|n| n.max(1)));
    }

    /// Removes every lasting fault (black hole, delay, split); cuts are instantaneous.
    pub fn heal(&self) {
        self.tx.send_modify(|f| {
            f.blackhole = false;
            f.hold_writes = false;
            f.hold_reads = false;
            f.extra_delay = Duration::ZERO;
            f.max_fragment = None;
        });
    }

    pub fn faults(&self) -> LinkFaults {
        self.tx.borrow().clone()
    }

    /// Wraps a freshly opened stream's halves. The connection belongs to the current cut epoch.
    pub fn wrap<R, W>(&self, reader: R, writer: W) -> (SeamReader<R>, SeamWriter<W>) {
        let epoch = self.tx.borrow().cut_epoch;
        (
            SeamReader {
                inner: Some(reader),
                faults: self.tx.subscribe(),
                epoch,
            },
            SeamWriter {
                inner: Some(writer),
                faults: self.tx.subscribe(),
                epoch,
            },
        )
    }
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by fault injection",
    )
}

/// Which half passes a gate.
#[derive(Clone, Copy)]
enum Way {
    Read,
    Write,
}

/// Waits until the link lets `way` through (no black hole, no hold that way); fails if this
/// connection was cut meanwhile.
async fn pass_gate(
    faults: &mut watch::Receiver<LinkFaults>,
    epoch: u64,
    way: Way,
) -> io::Result<Duration> {
    loop {
        let now = faults.borrow_and_update().clone();
        if now.cut_epoch != epoch {
            return Err(cut_error());
        }
        let held = match way {
            Way::Read => now.hold_reads,
            Way::Write => now.hold_writes,
        };
        if !now.blackhole && !held {
            return Ok(now.extra_delay);
        }
        if faults.changed().await.is_err() {
            // The control is gone: nobody can heal the hole, so it stays.
            std::future::pending::<()>().await;
        }
    }
}

/// Completes when this connection is cut (never, if the control is dropped).
async fn wait_cut(faults: &mut watch::Receiver<LinkFaults>, epoch: u64) {
    loop {
        if faults.borrow_and_update().cut_epoch != epoch {
            return;
        }
        if faults.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The read half of a connection behind the seam.
#[derive(Debug)]
pub struct SeamReader<R> {
    inner: Option<R>,
    faults: watch::Receiver<LinkFaults>,
    epoch: u64,
}

impl<R: AsyncRead + Unpin> SeamReader<R> {
    /// Reads what is available into `buf`; `Ok(0)` is end of stream.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(cut_error());
        };
        let epoch = self.epoch;
        let mut cut_watch = self.faults.clone();
        let n = tokio::select! {
            biased;
            r = inner.read_buf(buf) => r?,
            _ = wait_cut(&mut cut_watch, epoch) => {
                self.inner = None;
                return Err(cut_error());
            }
        };
        // Bytes, and the end of the stream, that arrive while black-holed are held until the
        // hole heals (or the cut).
        match pass_gate(&mut self.faults, epoch, Way::Read).await {
            Ok(_) if n == 0 => Ok(0),
            Ok(delay) => {
                if !delay.is_zero() {
                    tokio::select! {
                        biased;
                        _ = tokio::time::sleep(delay) => {}
                        _ = wait_cut(&mut cut_watch, epoch) => {
                            self.inner = None;
                            return Err(cut_error());
                        }
                    }
                }
                Ok(n)
            }
            Err(e) => {
                self.inner = None;
                Err(e)
            }
        }
    }
}

/// The write half of a connection behind the seam.
#[derive(Debug)]
pub struct SeamWriter<W> {
    inner: Option<W>,
    faults: watch::Receiver<LinkFaults>,
    epoch: u64,
}

impl<W: AsyncWrite + Unpin> SeamWriter<W> {
    /// Writes and flushes all of `bytes`, as the link's faults allow.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.inner.is_none() {
            return Err(cut_error());
        }
        let epoch = self.epoch;
        let delay = match pass_gate(&mut self.faults, epoch, Way::Write).await {
            Ok(d) => d,
            Err(e) => {
                self.inner = None;
                return Err(e);
            }
        };
        if !delay.is_zero() {
            let mut cut_watch = self.faults.clone();
            tokio::select! {
                biased;
                _ = tokio::time::sleep(delay) => {}
                _ = wait_cut(&mut cut_watch, epoch) => {
                    self.inner = None;
                    return Err(cut_error());
                }
            }
        }
        let max_fragment = self.faults.borrow().max_fragment;
        let inner = self.inner.as_mut().expect("checked above");
        let result = match max_fragment {
            Some(max) => {
                let mut r = Ok(());
                for chunk in bytes.chunks(max) {
                    r = inner.write_all(chunk).await;
                    if r.is_ok() {
                        r = inner.flush().await;
                    }
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            None => match inner.write_all(bytes).await {
                Ok(()) => inner.flush().await,
                Err(e) => Err(e),
            },
        };
        if result.is_err() {
            self.inner = None;
        }
        result
    }

    /// Closes the write side (the peer reads EOF once the read half is gone too).
    pub async fn shutdown(&mut self) {
        if let Some(mut w) = self.inner.take() {
            let _ = w.shutdown().await;
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    async fn pair(
        ctl: &LinkControl,
    ) -> (
        SeamReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
        SeamWriter<tokio::io::WriteHalf<tokio::io::DuplexStream>>,
        tokio::io::DuplexStream,
    ) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let (r, w) = ctl.wrap(r, w);
        (r, w, theirs)
    }

    #[tokio::test]
    async fn cut_fails_both_halves_and_peer_reads_eof() {
        let ctl = LinkControl::new();
        let (mut r, mut w, mut peer) = pair(&ctl).await;
        w.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        ctl.cut();
        let mut buf = BytesMut::new();
        assert_eq!(
            r.read_buf(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
        assert!(w.write_all(b"x").await.is_err());
        drop(r);
        drop(w);
        let mut rest = Vec::new();
        assert_eq!(
            peer.read_to_end(&mut rest).await.unwrap(),
            0,
            "peer must see end of stream"
        );
    }

    #[tokio::test]
    async fn cut_spares_connections_opened_after_it() {
        let ctl = LinkControl::new();
        ctl.cut();
        let (_r, mut w, mut peer) = pair(&ctl).await;
        w.write_all(b"ok").await.unwrap();
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ok");
    }

    #[tokio::test]
    async fn blackhole_holds_bytes_until_healed_in_order() {
        let ctl = LinkControl::new();
        let (_r, mut w, mut peer) = pair(&ctl).await;
        ctl.set_blackhole(true);
        let writer = tokio::spawn(async move {
            w.write_all(b"one").await.unwrap();
            w.write_all(b"two").await.unwrap();
            w
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut probe = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(20), peer.read(&mut probe)).await;
        assert!(early.is_err(), "nothing may pass a black hole");
        ctl.heal();
        let _w = writer.await.unwrap();
        let mut got = [0u8; 6];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");
    }

    #[tokio::test]
    async fn blackhole_holds_the_end_of_the_stream_too() {
        let ctl = LinkControl::new();
        let (mut r, _w, peer) = pair(&ctl).await;
        ctl.set_blackhole(true);
        drop(peer);
        let mut buf = BytesMut::new();
        let early = tokio::time::timeout(Duration::from_millis(20), r.read_buf(&mut buf)).await;
        assert!(early.is_err(), "a close may not cross a black hole");
        ctl.heal();
        assert_eq!(r.read_buf(&mut buf).await.unwrap(), 0);
    }

    /// Records the size of every write and every flush boundary.
    #[derive(Default)]
    struct Recorder {
        flushed: Vec<Vec<u8>>,
        pending: Vec<u8>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.pending.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let chunk = std::mem::take(&mut self.pending);
            if !chunk.is_empty() {
                self.flushed.push(chunk);
            }
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn split_writes_flush_fragments_of_at_most_n_bytes() {
        let ctl = LinkControl::new();
        let (_r, mut w) = ctl.wrap(tokio::io::empty(), Recorder::default());
        w.write_all(b"whole").await.unwrap();
        ctl.set_max_fragment(Some(3));
        w.write_all(b"abcdefgh").await.unwrap();
        let rec = w.inner.take().unwrap();
        let sizes: Vec<usize> = rec.flushed.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![5, 3, 3, 2]);
        assert_eq!(rec.flushed.concat(), b"wholeabcdefgh");
    }

    #[tokio::test]
    async fn extra_delay_holds_writes_back() {
        let ctl = LinkControl::new();
        ctl.set_extra_delay(Duration::from_millis(50));
        let (_r, mut w, _peer) = pair(&ctl).await;
        let start = tokio::time::Instant::now();
        w.write_all(b"x").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
