//! The shell with a journal store, on loopback TCP: nothing that depends on a change leaves
//! before the store committed it, PINGRESP does not wait, and a failing store closes every
//! connection and refuses new ones until the whole state is rewritten.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use mqtt_lab::broker::journal::ModelTables;
use mqtt_lab::broker::{Broker, BrokerConfig, Changes, DurableState};
use mqtt_lab::codec::{
    self, Connect, Framer, Packet, Properties, Protocol, QoS, ReasonCode, Subscribe, Subscription,
    SubscriptionOptions,
};
use mqtt_lab::net::commit::{Storage, StorageError};
use mqtt_lab::net::durability::Mode;
use mqtt_lab::net::server::{Journal, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the test controls about the store.
#[derive(Default)]
struct Gate {
    /// Commits wait while closed.
    closed: bool,
    /// The next commit or rewrite fails (`Some(full)`).
    fail: Option<bool>,
    commits: u64,
    rewrites: u64,
}

/// A store of model tables whose commits wait at a gate and may be told to fail.
struct Gated {
    tables: Arc<Mutex<ModelTables>>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

impl Gated {
    fn pass(&self) -> Result<(), StorageError> {
        let (lock, cv) = &*self.gate;
        let mut g = cv
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(10), |g| g.closed)
            .unwrap()
            .0;
        match g.fail.take() {
            Some(full) => Err(StorageError {
                full,
                message: "injected".into(),
            }),
            None => Ok(()),
        }
    }
}

impl Storage for Gated {
    fn commit(&mut self, changes: &Changes, _sync: bool, _at: u64) -> Result<u64, StorageError> {
        self.pass()?;
        self.tables.lock().unwrap().apply(changes);
        self.gate.0.lock().unwrap().commits += 1;
        Ok(0)
    }

    fn sync(&mut self, _clock: Duration, _at: u64) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn rewrite(&mut self, state: &DurableState, _at: u64) -> Result<u64, StorageError> {
        self.pass()?;
        *self.tables.lock().unwrap() = ModelTables::from_state(state);
        self.gate.0.lock().unwrap().rewrites += 1;
        Ok(0)
    }
}

struct Setup {
    port: u16,
    tables: Arc<Mutex<ModelTables>>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Setup {
    async fn start() -> Setup {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tables = Arc::new(Mutex::new(ModelTables::default()));
        let gate = Arc::new((Mutex::new(Gate::default()), Condvar::new()));
        let storage = Gated {
            tables: tables.clone(),
            gate: gate.clone(),
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let core = Broker::new(BrokerConfig::default());
            let journal = Journal::new(storage, Mode::Synced, Duration::from_secs(1), u64::MAX);
            let _ = serve(core, vec![listener], Some(journal), async {
                let _ = stop_rx.await;
            })
            .await;
        });
        Setup {
            port,
            tables,
            gate,
            _stop: stop,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Gate)) {
        f(&mut self.gate.0.lock().unwrap());
        self.gate.1.notify_all();
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.0.lock().unwrap()
    }
}

/// A raw MQTT connection.
struct Raw {
    stream: TcpStream,
    framer: Framer,
    protocol: Protocol,
}

impl Raw {
    async fn open(port: u16, protocol: Protocol) -> Raw {
        Raw {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            framer: Framer::new(Some(protocol), 1 << 20),
            protocol,
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        codec::encode(&packet, self.protocol, &mut buf).unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    /// The next packet within `wait`; `None` if none came (`Err` when the connection ended).
    async fn next(&mut self, wait: Duration) -> Result<Option<Packet>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(p) = self.framer.next_packet().unwrap() {
                return Ok(Some(p));
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(()),
                Ok(Ok(n)) => self.framer.push(&buf[..n]),
            }
        }
    }

    async fn expect(&mut self) -> Packet {
        match self.next(Duration::from_secs(5)).await {
            Ok(Some(p)) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }
}

fn connect(id: &str, protocol: Protocol, clean: bool) -> Packet {
    let mut properties = Properties::default();
    if protocol.is_v5() && !clean {
        properties.session_expiry_interval = Some(600);
    }
    Packet::Connect(Connect {
        protocol,
        clean_start: clean,
        keep_alive: 0,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties,
    })
}

fn subscribe(filter: &str) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }],
        properties: Properties::default(),
    })
}

const QUIET: Duration = Duration::from_millis(300);

/// A CONNACK that says a session is present, and a SUBACK of a persistent session, leave only
/// once the store committed the session and the subscription; a PINGRESP does not wait.
#[tokio::test]
async fn acknowledgements_wait_for_the_commit_and_pingresp_does_not() {
    let s = Setup::start().await;
    s.set(|g| g.closed = true);
    let mut c = Raw::open(s.port, Protocol::V3_1_1).await;
    c.send(connect("keeper", Protocol::V3_1_1, false)).await;
    assert_eq!(
        c.next(QUIET).await,
        Ok(None),
        "CONNACK held while the commit waits"
    );
    s.set(|g| g.closed = false);
    assert!(matches!(c.expect().await, Packet::ConnAck(a) if a.reason == ReasonCode::Success));
    assert!(s.tables.lock().unwrap().sessions.contains_key("keeper"));

    s.set(|g| g.closed = true);
    c.send(subscribe("t/#")).await;
    c.send(Packet::PingReq).await;
    assert_eq!(
        c.expect().await,
        Packet::PingResp,
        "PINGRESP overtakes the held SUBACK"
    );
    assert_eq!(c.next(QUIET).await, Ok(None));
    let before = s.gate().commits;
    s.set(|g| g.closed = false);
    assert!(matches!(c.expect().await, Packet::SubAck(_)));
    assert!(s.gate().commits > before);
    let tables = s.tables.lock().unwrap();
    assert!(
        tables
            .subscriptions
            .contains_key(&("keeper".to_owned(), "t/#".to_owned()))
    );
}

/// A failed commit: the SUBACK it held never leaves, the 5.0 client gets DISCONNECT 0x80 and
/// the connection closes; CONNECTs are refused (0x80, or 0x97 while the disk is full) until a
/// rewrite of the whole state succeeds, then served again, and the store holds the broker's
/// state.
#[tokio::test]
async fn a_failed_commit_closes_every_connection_until_the_state_is_rewritten() {
    let s = Setup::start().await;
    let mut c = Raw::open(s.port, Protocol::V5).await;
    c.send(connect("keeper", Protocol::V5, false)).await;
    assert!(matches!(c.expect().await, Packet::ConnAck(a) if a.reason == ReasonCode::Success));

    // The commit fails, and so does the first rewrite.
    s.set(|g| g.fail = Some(false));
    c.send(subscribe("t/#")).await;
    match c.expect().await {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::UnspecifiedError),
        other => panic!("expected DISCONNECT 0x80, got {other:?}"),
    }
    assert_eq!(
        c.next(Duration::from_secs(5)).await,
        Err(()),
        "closed, no SUBACK"
    );
    s.set(|g| g.fail = Some(true));

    let mut refused = 0;
    loop {
        let mut c = Raw::open(s.port, Protocol::V5).await;
        c.send(connect("keeper", Protocol::V5, false)).await;
        let Packet::ConnAck(a) = c.expect().await else {
            panic!("no CONNACK")
        };
        if a.reason == ReasonCode::Success {
            assert!(a.session_present);
            break;
        }
        assert!(
            matches!(
                a.reason,
                ReasonCode::UnspecifiedError | ReasonCode::QuotaExceeded
            ),
            "{a:?}"
        );
        refused += 1;
        assert!(refused < 200, "the store never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.gate().rewrites >= 1);
    let tables = s.tables.lock().unwrap();
    assert!(tables.sessions.contains_key("keeper"));
    assert!(
        tables
            .subscriptions
            .contains_key(&("keeper".to_owned(), "t/#".to_owned())),
        "the rewrite holds the broker's whole state, the unacknowledged subscription too"
    );
}

/// [MQTT-3.2.0-1] A CONNECT whose CONNACK waits for a commit that fails: nothing may precede a
/// CONNACK, so the connection is closed without a packet (no DISCONNECT), and the client's
/// next CONNECT is answered.
#[tokio::test]
async fn mqtt_3_2_0_1_a_failed_commit_holding_a_connack_closes_without_a_packet() {
    let s = Setup::start().await;
    s.set(|g| g.closed = true);
    let mut c = Raw::open(s.port, Protocol::V5).await;
    c.send(connect("newcomer", Protocol::V5, false)).await;
    assert_eq!(
        c.next(Duration::from_millis(300)).await,
        Ok(None),
        "the CONNACK waits for the commit"
    );
    s.set(|g| {
        g.fail = Some(false);
        g.closed = false;
    });
    assert_eq!(
        c.next(Duration::from_secs(5)).await,
        Err(()),
        "closed with no packet at all"
    );
    for _ in 0..200 {
        let mut c = Raw::open(s.port, Protocol::V5).await;
        c.send(connect("newcomer", Protocol::V5, false)).await;
        let Packet::ConnAck(a) = c.expect().await else {
            panic!("a CONNECT is answered with a CONNACK")
        };
        if a.reason == ReasonCode::Success {
            return;
        }
        assert_eq!(a.reason, ReasonCode::UnspecifiedError, "{a:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store never recovered");
}
