//! The fault proxy: a TCP relay between clients and a broker we did not write, so that the
//! per-connection faults of a scenario reach any broker over real TCP.
//!
//! A [`Proxy`] listens on an address of its own for one logical link (the connections of one
//! client) and relays every connection it accepts to the target, through the stream seam
//! ([`LinkControl`]) on the target's side. Its [`ProxyControl`] applies the faults:
//!
//! - **cut, black hole, extra delay, split writes**: the seam's, on the relayed connections
//!   (writes toward the target, reads from it). A cut closes both sides: the client and the
//!   target each read end of stream. In a black hole nothing passes, not even a close; what was
//!   sent passes after the heal.
//! - **partition** (both ways or one way): the blocked direction of every relayed connection is
//!   held as in a black hole (bytes are kept, as TCP retransmission would deliver them after the
//!   heal), and while any direction is blocked a new connection is closed as soon as it is
//!   accepted, without reaching the target (a TCP handshake needs both directions).
//!
//! - **latency and loss** ([`Network`]): what a network can do to a TCP connection. Each chunk
//!   relayed either way is held for a latency drawn in a range; with the loss rate a chunk is
//!   lost and retransmitted as TCP would (after 200 ms, the Linux minimum retransmission
//!   timeout, doubling while the retransmissions are lost too, at most 10 s in all). Bytes are
//!   never lost and never reordered: a chunk leaves no earlier than the one before it. Chunks in
//!   flight are pipelined, at most [`WIRE_CHUNKS`] per direction.
//!
//! What is not here: what a fault is or when it happens (the scenario and the runner).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::seam::LinkControl;

/// Bytes read at once from either side of a relayed connection.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight on one direction of a relayed connection (the bound on what the proxy
/// holds: `WIRE_CHUNKS` × 16 KiB).
pub const WIRE_CHUNKS: usize = 64;
/// The first retransmission of a lost chunk: Linux's minimum retransmission timeout.
pub const FIRST_RETRANSMIT: Duration = Duration::from_millis(200);
/// Longest a chunk's retransmissions may hold it.
pub const MAX_RETRANSMIT: Duration = Duration::from_secs(10);

/// The network between the clients and the target, as the proxy makes it: a latency per
/// chunk, and a loss rate turned into retransmission delay. Default: nothing added.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Network {
    /// Each chunk is held for a duration drawn in `[low, high]`.
    pub latency: [Duration; 2],
    /// The probability that a chunk (and each of its retransmissions) is lost, 0 to 1.
    pub loss: f64,
    /// Seeds the draws: each relayed connection and direction draws from its own stream.
    pub seed: u64,
}

/// One direction's draws: when each chunk arrives.
struct Wire {
    network: watch::Receiver<Network>,
    rng: ChaCha8Rng,
    last: Instant,
}

impl Wire {
    fn new(network: watch::Receiver<Network>, connection: u64, direction: u64) -> Wire {
        let seed = network.borrow().seed;
        Wire {
            network,
            rng: ChaCha8Rng::seed_from_u64(seed ^ connection.rotate_left(32) ^ direction),
            last: Instant::now(),
        }
    }

    /// When a chunk read now arrives: after its latency and any retransmissions, and no
    /// earlier than the chunk before it.
    fn due(&mut self) -> Instant {
        let net = *self.network.borrow();
        let [low, high] = net.latency;
        let mut hold = if high > low {
            Duration::from_micros(
                self.rng
                    .random_range(low.as_micros() as u64..=high.as_micros() as u64),
            )
        } else {
            low
        };
        let mut retransmit = FIRST_RETRANSMIT;
        let mut lost = Duration::ZERO;
        while net.loss > 0.0 && lost < MAX_RETRANSMIT && self.rng.random_bool(net.loss.min(1.0)) {
            lost = (lost + retransmit).min(MAX_RETRANSMIT);
            retransmit *= 2;
        }
        hold += lost;
        let due = (Instant::now() + hold).max(self.last);
        self.last = due;
        due
    }
}

/// The directions a partition blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Partition {
    /// From the client to the target.
    pub to_target: bool,
    /// From the target to the client.
    pub from_target: bool,
}

impl Partition {
    fn any(self) -> bool {
        self.to_target || self.from_target
    }
}

/// The handle that applies faults to a proxy's link. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProxyControl {
    link: LinkControl,
    partition: Arc<watch::Sender<Partition>>,
    network: Arc<watch::Sender<Network>>,
}

impl ProxyControl {
    /// Cut, black hole, extra delay and split writes, on every relayed connection.
    pub fn link(&self) -> &LinkControl {
        &self.link
    }

    /// Blocks the given directions (none: healed).
    pub fn set_partition(&self, partition: Partition) {
        self.partition.send_replace(partition);
        self.link
            .set_holds(partition.to_target, partition.from_target);
    }

    pub fn partition(&self) -> Partition {
        *self.partition.borrow()
    }

    /// The latency and loss of every relayed connection from now on.
    pub fn set_network(&self, network: Network) {
        self.network.send_replace(network);
    }

    pub fn network(&self) -> Network {
        *self.network.borrow()
    }
}

/// A running proxy; dropping it stops accepting (relayed connections end with their sides).
#[derive(Debug)]
pub struct Proxy {
    local: SocketAddr,
    control: ProxyControl,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any free port) and relays every connection to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let (partition, _) = watch::channel(Partition::default());
        let (network, _) = watch::channel(Network::default());
        let control = ProxyControl {
            link: LinkControl::new(),
            partition: Arc::new(partition),
            network: Arc::new(network),
        };
        let accept = tokio::spawn(accept_loop(listener, target, control.clone()));
        Ok(Proxy {
            local,
            control,
            accept,
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn control(&self) -> ProxyControl {
        self.control.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, control: ProxyControl) {
    let mut connections = 0u64;
    loop {
        let client = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "proxy: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if control.partition().any() {
            tracing::debug!("proxy: partitioned, closing a new connection");
            drop(client);
            continue;
        }
        connections += 1;
        let wires = [0, 1].map(|d| Wire::new(control.network.subscribe(), connections, d));
        tokio::spawn(relay(client, target, control.link.clone(), wires));
    }
}

/// Relays one connection until both sides have closed, or either fails or is cut. Each
/// direction is a reader that stamps each chunk with when it arrives ([`Wire`]) and a writer
/// that hands it on at that instant; an empty chunk is the end of the stream.
async fn relay(client: TcpStream, target: SocketAddr, link: LinkControl, wires: [Wire; 2]) {
    let upstream = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, %target, "proxy: the target refused a connection");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (up_read, up_write) = tokio::io::split(upstream);
    let (mut seam_read, mut seam_write) = link.wrap(up_read, up_write);
    let [mut up_wire, mut down_wire] = wires;
    let (up_tx, mut up_rx) = tokio::sync::mpsc::channel::<(Instant, Bytes)>(WIRE_CHUNKS);
    let (down_tx, mut down_rx) = tokio::sync::mpsc::channel::<(Instant, Bytes)>(WIRE_CHUNKS);

    let read_client = async move {
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            buf.reserve(CHUNK);
            let n = client_read.read_buf(&mut buf).await?;
            let chunk = buf.split().freeze();
            if up_tx.send((up_wire.due(), chunk)).await.is_err() || n == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    };
    let to_target = async {
        while let Some((due, chunk)) = up_rx.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            // The end of the stream passes the seam's gate like any byte.
            seam_write.write_all(&chunk).await?;
            if chunk.is_empty() {
                seam_write.shutdown().await;
                break;
            }
        }
        Ok::<(), io::Error>(())
    };
    let read_target = async move {
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            buf.reserve(CHUNK);
            let n = seam_read.read_buf(&mut buf).await?;
            let chunk = buf.split().freeze();
            if down_tx.send((down_wire.due(), chunk)).await.is_err() || n == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    };
    let to_client = async {
        while let Some((due, chunk)) = down_rx.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if chunk.is_empty() {
                client_write.shutdown().await?;
                break;
            }
            client_write.write_all(&chunk).await?;
        }
        Ok::<(), io::Error>(())
    };
    let up = async { tokio::try_join!(read_client, to_target).map(|_| ()) };
    let down = async { tokio::try_join!(read_target, to_client).map(|_| ()) };
    tokio::pin!(up, down);
    // A clean end of one direction waits for the other; a failure or a cut ends both, and
    // dropping the sockets closes them.
    tokio::select! {
        biased;
        r = &mut up => if r.is_ok() { let _ = down.await; },
        r = &mut down => if r.is_ok() { let _ = up.await; },
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const QUIET: Duration = Duration::from_millis(200);

    /// A target that hands every accepted connection to the test.
    struct Target {
        listener: TcpListener,
    }

    impl Target {
        async fn new() -> Target {
            Target {
                listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            }
        }

        fn addr(&self) -> SocketAddr {
            self.listener.local_addr().unwrap()
        }

        async fn accept(&self) -> TcpStream {
            tokio::time::timeout(Duration::from_secs(5), self.listener.accept())
                .await
                .expect("the proxy reaches the target")
                .unwrap()
                .0
        }

        /// No connection reaches the target within `QUIET`.
        async fn none_within_quiet(&self) -> bool {
            tokio::time::timeout(QUIET, self.listener.accept())
                .await
                .is_err()
        }
    }

    async fn setup() -> (Target, Proxy, TcpStream, TcpStream) {
        let target = Target::new().await;
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), target.addr())
            .await
            .unwrap();
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let mut server = target.accept().await;
        // One byte each way: the relay is running (a fault applies to relayed connections).
        client.write_all(b"?").await.unwrap();
        assert_eq!(read_exactly(&mut server, 1).await, b"?");
        server.write_all(b"!").await.unwrap();
        assert_eq!(read_exactly(&mut client, 1).await, b"!");
        (target, proxy, client, server)
    }

    async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("bytes arrive")
            .unwrap();
        buf
    }

    /// Nothing arrives within `QUIET`, and the connection stays open.
    async fn silent(s: &mut TcpStream) -> bool {
        let mut probe = [0u8; 1];
        tokio::time::timeout(QUIET, s.read(&mut probe))
            .await
            .is_err()
    }

    /// The stream ends (end of stream or reset) within a few seconds.
    async fn ends(s: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await {
            Ok(Ok(_)) | Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_and_a_close_reaches_the_other_side() {
        let (_t, _p, mut client, mut server) = setup().await;
        client.write_all(b"connect").await.unwrap();
        assert_eq!(read_exactly(&mut server, 7).await, b"connect");
        server.write_all(b"connack").await.unwrap();
        assert_eq!(read_exactly(&mut client, 7).await, b"connack");
        drop(client);
        assert!(
            ends(&mut server).await,
            "the target reads the client's close"
        );
    }

    #[tokio::test]
    async fn a_cut_is_seen_by_both_sides_and_spares_later_connections() {
        let (target, proxy, mut client, mut server) = setup().await;
        proxy.control().link().cut();
        assert!(ends(&mut client).await, "the client reads end of stream");
        assert!(ends(&mut server).await, "the target reads end of stream");
        let mut again = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let mut server = target.accept().await;
        again.write_all(b"hello").await.unwrap();
        assert_eq!(read_exactly(&mut server, 5).await, b"hello");
    }

    #[tokio::test]
    async fn a_black_hole_is_silent_both_ways_then_delivers_what_was_held() {
        let (_t, proxy, mut client, mut server) = setup().await;
        proxy.control().link().set_blackhole(true);
        client.write_all(b"up").await.unwrap();
        server.write_all(b"down").await.unwrap();
        assert!(silent(&mut server).await, "nothing reaches the target");
        assert!(silent(&mut client).await, "nothing reaches the client");
        drop(client);
        assert!(silent(&mut server).await, "not even the close passes");
        proxy.control().link().heal();
        assert_eq!(read_exactly(&mut server, 2).await, b"up");
        assert!(ends(&mut server).await, "then the close");
    }

    #[tokio::test]
    async fn a_partition_holds_its_directions_refuses_new_connections_and_heals() {
        let (target, proxy, mut client, mut server) = setup().await;
        let control = proxy.control();
        control.set_partition(Partition {
            to_target: true,
            from_target: false,
        });
        client.write_all(b"held").await.unwrap();
        server.write_all(b"passes").await.unwrap();
        assert_eq!(
            read_exactly(&mut client, 6).await,
            b"passes",
            "one way only"
        );
        assert!(silent(&mut server).await, "the blocked way holds");
        let mut refused = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert!(
            ends(&mut refused).await,
            "a new connection is closed at once"
        );
        assert!(
            target.none_within_quiet().await,
            "and never reaches the target"
        );

        control.set_partition(Partition::default());
        assert_eq!(read_exactly(&mut server, 4).await, b"held");
        let mut later = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let mut later_server = target.accept().await;
        later.write_all(b"ok").await.unwrap();
        assert_eq!(read_exactly(&mut later_server, 2).await, b"ok");

        control.set_partition(Partition {
            to_target: true,
            from_target: true,
        });
        server.write_all(b"back").await.unwrap();
        assert!(silent(&mut client).await, "both ways held");
        control.set_partition(Partition::default());
        assert_eq!(read_exactly(&mut client, 4).await, b"back");
    }

    #[tokio::test]
    async fn split_writes_deliver_the_same_bytes_and_delay_holds_them_back() {
        let (_t, proxy, mut client, mut server) = setup().await;
        proxy.control().link().set_max_fragment(Some(3));
        let sent: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        client.write_all(&sent).await.unwrap();
        assert_eq!(read_exactly(&mut server, sent.len()).await, sent);
        server.write_all(&sent).await.unwrap();
        assert_eq!(read_exactly(&mut client, sent.len()).await, sent);

        proxy.control().link().heal();
        proxy
            .control()
            .link()
            .set_extra_delay(Duration::from_millis(300));
        let start = tokio::time::Instant::now();
        client.write_all(b"late").await.unwrap();
        assert_eq!(read_exactly(&mut server, 4).await, b"late");
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn latency_and_loss_hold_chunks_back_in_order_and_lose_no_byte() {
        let ms = Duration::from_millis;
        let (_t, proxy, mut client, mut server) = setup().await;
        proxy.control().set_network(Network {
            latency: [ms(40), ms(60)],
            loss: 0.0,
            seed: 7,
        });
        let start = Instant::now();
        client.write_all(b"slow").await.unwrap();
        assert_eq!(read_exactly(&mut server, 4).await, b"slow");
        assert!(start.elapsed() >= ms(40), "{:?}", start.elapsed());
        let start = Instant::now();
        server.write_all(b"back").await.unwrap();
        assert_eq!(read_exactly(&mut client, 4).await, b"back");
        assert!(start.elapsed() >= ms(40), "{:?}", start.elapsed());

        // A fifth of the chunks are lost at least once: some wait for a retransmission, and
        // every byte still arrives, in order (a chunk lost five times in a row waits 6.2 s).
        proxy.control().set_network(Network {
            latency: [Duration::ZERO; 2],
            loss: 0.2,
            seed: 7,
        });
        let start = Instant::now();
        let mut sent = Vec::new();
        for i in 0..40u8 {
            let chunk = [i; 100];
            client.write_all(&chunk).await.unwrap();
            sent.extend(chunk);
            tokio::time::sleep(ms(5)).await;
        }
        let mut got = vec![0u8; sent.len()];
        tokio::time::timeout(MAX_RETRANSMIT * 3, server.read_exact(&mut got))
            .await
            .expect("bytes arrive")
            .unwrap();
        assert_eq!(got, sent);
        assert!(start.elapsed() >= FIRST_RETRANSMIT, "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn a_target_that_refuses_closes_the_client() {
        let target = Target::new().await;
        let addr = target.addr();
        drop(target);
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), addr)
            .await
            .unwrap();
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert!(ends(&mut client).await);
    }
}
