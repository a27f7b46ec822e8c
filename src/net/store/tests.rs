//! Tests of the store: random broker runs recovered exactly, a crash at every backend call of a
//! commit, damage refused without touching the file, the lock, sharing of messages, and the
//! figures (an ignored test prints them).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{
    BackendError, Builder, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
};

use super::disk::{Disk, LockError, MemDisk};
use super::seam::{DiskControl, SeamDisk, SeamFile, SeamLock};
use super::tables;
use super::{Durability, Store, StoreError, StoreOptions};
use crate::broker::DurableState;
use crate::broker::journal::ModelTables;
use crate::broker::{Action, Broker, BrokerConfig, BrokerCore, Changes, CloseCause, ConnId};
use crate::codec::{
    Ack, Connect, Disconnect, LastWill, Packet, Properties, PropertySet, Protocol, Publish, QoS,
    ReasonCode, Subscribe, Subscription, SubscriptionOptions, Unsubscribe,
};

const NAME: &str = "state.redb";

fn options() -> StoreOptions {
    StoreOptions {
        cache_bytes: 4 << 20,
    }
}

/// Every byte of `name` as reads see it now.
fn bytes_of(disk: &impl Disk, name: &str) -> Vec<u8> {
    let file = disk.open(name, false).unwrap();
    let mut out = vec![0; file.len().unwrap() as usize];
    file.read(0, &mut out).unwrap();
    out
}

/// Makes `name` hold exactly `bytes`.
fn put_bytes(disk: &impl Disk, name: &str, bytes: &[u8]) {
    let file = disk.open(name, true).unwrap();
    file.set_len(bytes.len() as u64).unwrap();
    file.write(0, bytes).unwrap();
}

fn recover<D: Disk>(disk: D) -> DurableState {
    match Store::open(disk, NAME, options()) {
        Ok((_, recovered)) => recovered.state,
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A broker driven by random clients.

const CLIENTS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const TOPICS: [&str; 4] = ["a", "a/b", "b", "c"];
const FILTERS: [&str; 6] = ["a", "a/#", "#", "b", "+/b", "$share/g/a"];

/// A broker, its clients' connections and what each client owes it.
struct Driver {
    broker: Broker,
    now: Instant,
    /// Client index → its connection.
    conns: BTreeMap<usize, ConnId>,
    next_conn: ConnId,
    /// Connection → acknowledgements its client owes, oldest first.
    owed: BTreeMap<ConnId, Vec<Packet>>,
    next_pkid: u16,
}

fn subscribe(pkid: u16, filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid,
        filters: vec![Subscription {
            filter: filter.to_owned(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Properties::default(),
    })
}

impl Driver {
    fn new() -> Driver {
        let config = BrokerConfig {
            max_inflight: 2,
            ..BrokerConfig::default()
        };
        let mut broker = Broker::new(config);
        broker.record_changes();
        Driver {
            broker,
            now: Instant::now(),
            conns: BTreeMap::new(),
            next_conn: 1,
            owed: BTreeMap::new(),
            next_pkid: 1,
        }
    }

    fn pkid(&mut self) -> u16 {
        self.next_pkid = self.next_pkid % 60_000 + 1;
        self.next_pkid
    }

    fn drain(&mut self) {
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send { conn, packet, .. } => {
                    let owe = match &packet {
                        Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                            Some(Packet::PubAck(Ack::new(p.pkid)))
                        }
                        Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                            Some(Packet::PubRec(Ack::new(p.pkid)))
                        }
                        Packet::PubRec(a) => Some(Packet::PubRel(Ack::new(a.pkid))),
                        Packet::PubRel(a) => Some(Packet::PubComp(Ack::new(a.pkid))),
                        _ => None,
                    };
                    if let Some(owe) = owe {
                        self.owed.entry(conn).or_default().push(owe);
                    }
                }
                Action::Close { conn, .. } => self.forget(conn),
            }
        }
        while self.broker.poll_event().is_some() {}
    }

    /// Sends every acknowledgement the client of `conn` owes.
    /// Sends every acknowledgement the client of `conn` owes, and those owed for what they
    /// release, until it owes none.
    fn answer(&mut self, conn: ConnId) {
        for _ in 0..10_000 {
            let owed = self.owed.remove(&conn).unwrap_or_default();
            if owed.is_empty() {
                return;
            }
            for packet in owed {
                self.packet(conn, packet);
            }
        }
        panic!("connection {conn}: the acknowledgements never end");
    }

    fn forget(&mut self, conn: ConnId) {
        self.owed.remove(&conn);
        self.conns.retain(|_, c| *c != conn);
    }

    fn packet(&mut self, conn: ConnId, packet: Packet) {
        self.broker.handle_packet(self.now, conn, packet);
        self.drain();
    }

    fn connect(&mut self, client: usize, kind: u8) {
        if let Some(old) = self.conns.remove(&client) {
            self.broker
                .handle_closed(self.now, old, CloseCause::PeerClosed);
            self.owed.remove(&old);
            self.drain();
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let mut connect = Connect {
            protocol: Protocol::V3_1_1,
            clean_start: kind == 0,
            keep_alive: 0,
            client_id: CLIENTS[client].to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        if kind >= 2 {
            connect.protocol = Protocol::V5;
            connect.clean_start = kind == 4;
            connect.properties.session_expiry_interval = Some(30);
        }
        if kind == 3 {
            let properties = Properties::from(PropertySet {
                will_delay_interval: Some(5),
                ..PropertySet::default()
            });
            connect.will = Some(Box::new(LastWill {
                topic: "a/b".into(),
                payload: Bytes::from_static(b"will"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties,
            }));
        }
        self.broker.handle_accept(self.now, conn);
        self.conns.insert(client, conn);
        self.packet(conn, Packet::Connect(connect));
    }

    fn publish(&mut self, conn: ConnId, topic: &str, qos: QoS, retain: bool, payload: Bytes) {
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else {
            self.pkid()
        };
        let properties = Properties::from(PropertySet {
            message_expiry_interval: (payload.len() == 3).then_some(20),
            ..PropertySet::default()
        });
        self.packet(
            conn,
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain,
                topic: topic.to_owned(),
                pkid,
                properties,
                payload,
            }),
        );
    }

    /// One random event.
    fn step(&mut self, rng: &mut ChaCha8Rng) {
        let client = rng.random_range(0..CLIENTS.len());
        let conn = self.conns.get(&client).copied();
        let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][rng.random_range(0..3)];
        match (rng.random_range(0..12), conn) {
            (0, _) | (_, None) => self.connect(client, rng.random_range(0..5)),
            (1, Some(conn)) => {
                let (pkid, filter) = (self.pkid(), FILTERS[rng.random_range(0..FILTERS.len())]);
                self.packet(conn, subscribe(pkid, filter, qos));
            }
            (2, Some(conn)) => {
                let (pkid, filter) = (self.pkid(), FILTERS[rng.random_range(0..FILTERS.len())]);
                let packet = Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    filters: vec![filter.to_owned()],
                    properties: Properties::default(),
                });
                self.packet(conn, packet);
            }
            (3..=5, Some(conn)) => {
                let topic = TOPICS[rng.random_range(0..TOPICS.len())];
                let retain = rng.random_ratio(1, 4);
                let len = rng.random_range(0..6);
                let payload = Bytes::from(vec![b'x'; len]);
                self.publish(conn, topic, qos, retain, payload);
            }
            (6..=8, Some(conn)) => {
                let owed = self.owed.entry(conn).or_default();
                if !owed.is_empty() {
                    let i = if rng.random_ratio(3, 4) {
                        0
                    } else {
                        rng.random_range(0..owed.len())
                    };
                    let packet = owed.remove(i);
                    self.packet(conn, packet);
                }
            }
            (9, Some(conn)) => {
                if rng.random_bool(0.5) {
                    self.packet(
                        conn,
                        Packet::Disconnect(Disconnect {
                            reason: ReasonCode::Success,
                            properties: Properties::default(),
                        }),
                    );
                }
                self.broker
                    .handle_closed(self.now, conn, CloseCause::PeerClosed);
                self.forget(conn);
                self.drain();
            }
            _ => self.advance(Duration::from_secs(rng.random_range(1..15))),
        }
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(d) = self.broker.poll_timeout()
            && d <= target
        {
            self.now = self.now.max(d);
            self.broker.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }
}

/// The batches of a random run of `steps` events, each with the state after it.
fn run(seed: u64, steps: usize) -> Vec<(Changes, DurableState)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut driver = Driver::new();
    let mut model = ModelTables::default();
    (0..steps)
        .map(|_| {
            driver.step(&mut rng);
            let changes = driver.broker.take_changes();
            model.apply(&changes);
            let state = model.state().expect("journal rows make a state");
            assert_eq!(state, driver.broker.durable_state().normalized());
            (changes, state)
        })
        .collect()
}

#[test]
fn random_broker_runs_are_recovered_exactly_after_every_few_commits() {
    let mut seen = (0, 0, 0);
    for seed in 0..12 {
        let disk = MemDisk::default();
        let (mut store, recovered) = Store::open(disk.clone(), NAME, options()).unwrap();
        assert!(recovered.created);
        let batches = run(seed, 300);
        for (i, (changes, state)) in batches.iter().enumerate() {
            store
                .commit(changes, 1_000 + i as u64, Durability::Immediate)
                .unwrap();
            if i % 17 == 16 || i + 1 == batches.len() {
                drop(store);
                let (reopened, recovered) = Store::open(disk.clone(), NAME, options()).unwrap();
                store = reopened;
                assert_eq!(&recovered.state, state, "seed {seed}, batch {i}");
                assert_eq!(recovered.saved_at_ms, 1_000 + i as u64);
                assert!(!recovered.created);
                seen.0 += recovered.outbound;
                seen.1 += recovered.retained;
                seen.2 += recovered.wills;
            }
        }
    }
    assert!(
        seen.0 > 0 && seen.1 > 0 && seen.2 > 0,
        "the runs store deliveries, retained messages and wills: {seen:?}"
    );
}

#[test]
fn deferred_commits_are_read_back_and_made_durable_by_the_next_immediate_one() {
    let disk = SeamDisk::new(7);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    let batches = run(3, 40);
    for (changes, _) in &batches[..39] {
        store.commit(changes, 1, Durability::Deferred).unwrap();
    }
    store
        .commit(&batches[39].0, 2, Durability::Immediate)
        .unwrap();
    disk.control().crash();
    drop(store);
    assert_eq!(recover(disk), batches[39].1);
}

// ---------------------------------------------------------------------------------------------
// Opening, the lock, damage.

#[test]
fn an_empty_store_opens_as_an_empty_state_and_a_second_opener_is_refused() {
    let disk = MemDisk::default();
    let (store, recovered) = Store::open(disk.clone(), NAME, options()).unwrap();
    assert_eq!(recovered.state, DurableState::default());
    assert_eq!((recovered.saved_at_ms, recovered.created), (0, true));
    let err = Store::open(disk.clone(), NAME, options()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains(NAME), "{err}");
    assert!(!disk.exists(&format!("{NAME}.tmp")).unwrap());
    drop(store);
    let (_, recovered) = Store::open(disk, NAME, options()).unwrap();
    assert_eq!(recovered.state, DurableState::default());
    assert!(!recovered.created);
}

#[test]
fn a_store_on_real_files_is_locked_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let disk = super::disk::OsDisk::new(dir.path());
    let batches = run(9, 80);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    for (changes, _) in &batches {
        store.commit(changes, 77, Durability::Immediate).unwrap();
    }
    let err = Store::open(disk.clone(), NAME, options()).unwrap_err();
    let pid = format!("pid {}", std::process::id());
    assert!(err.to_string().contains(&pid), "{err}");
    drop(store);
    let (_, recovered) = Store::open(disk, NAME, options()).unwrap();
    assert_eq!(recovered.state, batches[79].1);
    assert_eq!(recovered.saved_at_ms, 77);
}

#[test]
fn a_stale_temporary_file_is_removed_and_the_store_kept() {
    let disk = MemDisk::default();
    let batches = run(1, 30);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    for (changes, _) in &batches {
        store.commit(changes, 1, Durability::Immediate).unwrap();
    }
    drop(store);
    put_bytes(&disk, &format!("{NAME}.tmp"), b"half a rewrite");
    assert_eq!(recover(disk.clone()), batches.last().unwrap().1);
    assert!(!disk.exists(&format!("{NAME}.tmp")).unwrap());
}

/// A store holding a random run's state on a `MemDisk`, closed.
fn stored(seed: u64) -> (MemDisk, DurableState) {
    let disk = MemDisk::default();
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    let batches = run(seed, 120);
    for (changes, _) in &batches {
        store.commit(changes, 5, Durability::Immediate).unwrap();
    }
    (disk, batches.last().unwrap().1.clone())
}

/// Opens the store expecting damage; checks the bytes did not change.
fn expect_damaged(disk: &MemDisk) -> String {
    let before = bytes_of(disk, NAME);
    let err = Store::open(disk.clone(), NAME, options()).unwrap_err();
    assert_eq!(bytes_of(disk, NAME), before, "the file is left as it was");
    match err {
        StoreError::Damaged { ref file, ref what } => {
            assert_eq!(file, NAME);
            assert!(err.to_string().contains(NAME));
            what.clone()
        }
        other => panic!("expected damage, got {other}"),
    }
}

#[test]
fn flipped_bytes_are_damage_or_harmless_and_never_change_the_file() {
    let (disk, state) = stored(2);
    let original = bytes_of(&disk, NAME);
    let mut damaged = 0;
    let mut harmless = 0;
    for offset in (0..original.len()).step_by(97) {
        let mut flipped = original.clone();
        flipped[offset] ^= 0x5a;
        put_bytes(&disk, NAME, &flipped);
        match Store::open(disk.clone(), NAME, options()) {
            Err(StoreError::Damaged { .. }) => {
                assert_eq!(bytes_of(&disk, NAME), flipped, "offset {offset}");
                damaged += 1;
            }
            Ok((store, recovered)) => {
                assert_eq!(recovered.state, state, "offset {offset}: a harmless byte");
                harmless += 1;
                drop(store);
            }
            Err(e) => panic!("offset {offset}: {e}"),
        }
    }
    assert!(damaged > 0, "{damaged} damaged, {harmless} harmless");
}

#[test]
fn a_file_that_is_not_a_store_is_damage_left_untouched() {
    let disk = MemDisk::default();
    put_bytes(&disk, NAME, b"MQLSTATE\0\0\0\x01 an old state file");
    let what = expect_damaged(&disk);
    assert!(
        what.to_lowercase().contains("not a redb database"),
        "{what}"
    );

    let disk = MemDisk::default();
    disk.open(NAME, true).unwrap();
    let what = expect_damaged(&disk);
    assert!(what.contains("no meta table"), "{what}");

    let disk = MemDisk::default();
    drop(
        Builder::new()
            .create_with_backend(disk.open(NAME, true).unwrap())
            .unwrap(),
    );
    let what = expect_damaged(&disk);
    assert!(what.contains("no meta table"), "{what}");
}

/// Changes the closed store's rows directly.
fn tamper(disk: &MemDisk, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Builder::new()
        .create_with_backend(disk.open(NAME, false).unwrap())
        .unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

/// What a store whose rows `f` changed is refused for (its bytes checked unchanged).
fn damage_of(f: impl FnOnce(&redb::WriteTransaction)) -> String {
    let (disk, _) = stored(4);
    tamper(&disk, f);
    expect_damaged(&disk)
}

#[test]
fn rows_that_do_not_decode_or_do_not_hold_together_are_damage_left_untouched() {
    let what = damage_of(|txn| {
        let mut sessions = txn.open_table(tables::SESSIONS).unwrap();
        sessions.insert("zz", &b"\xff\xfe not cbor"[..]).unwrap();
    });
    assert!(
        what.contains("sessions row \"zz\" does not decode"),
        "{what}"
    );
    let what = damage_of(|txn| {
        let mut messages = txn.open_table(tables::MESSAGES).unwrap();
        let id = messages.first().unwrap().expect("a message").0.value();
        messages.remove(id).unwrap();
    });
    assert!(what.contains("which is missing"), "{what}");
    let what = damage_of(|txn| {
        let mut refs = txn.open_table(tables::MESSAGE_REFS).unwrap();
        refs.insert((1u64 << 40, "r\0nowhere"), ()).unwrap();
    });
    assert!(what.contains("message_refs"), "{what}");
    let what = damage_of(|txn| {
        let mut meta = txn.open_table(tables::META).unwrap();
        meta.insert("format", 99).unwrap();
    });
    assert!(what.contains("format 99"), "{what}");
}

// ---------------------------------------------------------------------------------------------
// Sharing of messages.

/// A broker with `subscribers` persistent QoS 1 subscribers of `t` (online when `online`) and
/// a 3.1.1 publisher on connection 1; recording, its first batch taken.
fn fan_out(subscribers: usize, online: bool) -> (Driver, Changes) {
    let mut d = Driver::new();
    d.connect(0, 1);
    for i in 1..=subscribers {
        let conn = d.next_conn;
        d.next_conn += 1;
        d.broker.handle_accept(d.now, conn);
        d.packet(
            conn,
            Packet::Connect(Connect {
                protocol: Protocol::V3_1_1,
                clean_start: false,
                keep_alive: 0,
                client_id: format!("sub{i}"),
                will: None,
                username: None,
                password: None,
                properties: Properties::default(),
            }),
        );
        d.packet(conn, subscribe(1, "t", QoS::AtLeastOnce));
        if !online {
            d.broker.handle_closed(d.now, conn, CloseCause::PeerClosed);
            d.forget(conn);
            d.drain();
        } else {
            d.conns.insert(100 + i, conn);
        }
    }
    let first = d.broker.take_changes();
    (d, first)
}

#[test]
fn a_message_for_many_sessions_is_stored_once_and_deleted_with_its_last_delivery() {
    let disk = MemDisk::default();
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    let (mut d, first) = fan_out(3, true);
    store.commit(&first, 0, Durability::Immediate).unwrap();
    let publisher = d.conns[&0];
    d.publish(
        publisher,
        "t",
        QoS::AtLeastOnce,
        true,
        Bytes::from_static(b"hello"),
    );
    let stats = store
        .commit(&d.broker.take_changes(), 0, Durability::Immediate)
        .unwrap();
    assert_eq!((stats.messages_written, stats.messages_deleted), (1, 0));
    drop(store);
    let (s, recovered) = Store::open(disk.clone(), NAME, options()).unwrap();
    store = s;
    assert_eq!(
        (recovered.messages, recovered.outbound, recovered.retained),
        (1, 3, 1)
    );
    let mut ids = BTreeSet::new();
    for session in recovered.state.sessions.values() {
        for entry in session.inflight() {
            if let crate::broker::Inflight::Publish { delivery, .. } = entry {
                ids.insert(Arc::as_ptr(&delivery.message));
            }
        }
    }
    ids.insert(Arc::as_ptr(&recovered.state.retained["t"]));
    assert_eq!(ids.len(), 1, "one shared Arc for the message");

    // Acknowledged by every subscriber and its retained copy cleared: the row goes.
    let subs: Vec<ConnId> = d.conns.range(101..).map(|(_, c)| *c).collect();
    for conn in subs {
        d.answer(conn);
    }
    d.publish(publisher, "t", QoS::AtMostOnce, true, Bytes::new());
    let stats = store
        .commit(&d.broker.take_changes(), 0, Durability::Immediate)
        .unwrap();
    assert_eq!((stats.messages_written, stats.messages_deleted), (0, 1));
    drop(store);
    let db = Builder::new()
        .create_with_backend(disk.open(NAME, false).unwrap())
        .unwrap();
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(tables::MESSAGES).unwrap().len().unwrap(), 0);
    assert_eq!(
        txn.open_table(tables::MESSAGE_REFS).unwrap().len().unwrap(),
        0
    );
    assert_eq!(txn.open_table(tables::OUTBOUND).unwrap().len().unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Crashes.

/// A [`SeamDisk`] that crashes just before its `at`-th file or folder operation once armed,
/// and fails every operation after that, as the process that issued them is gone.
#[derive(Debug, Clone)]
struct CrashDisk {
    disk: SeamDisk,
    control: DiskControl,
    calls: Arc<AtomicU64>,
    at: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
}

#[derive(Debug)]
struct CrashFile {
    file: SeamFile,
    disk: CrashDisk,
}

impl CrashDisk {
    fn new(seed: u64) -> CrashDisk {
        CrashDisk::over(SeamDisk::new(seed))
    }

    /// The disk `disk`, not armed.
    fn over(disk: SeamDisk) -> CrashDisk {
        CrashDisk {
            control: disk.control(),
            disk,
            calls: Arc::default(),
            at: Arc::default(),
            dead: Arc::default(),
        }
    }

    /// Crashes before the `at`-th operation from now (never with 0).
    fn arm(&self, at: u64) {
        self.calls.store(0, Ordering::SeqCst);
        self.at.store(at, Ordering::SeqCst);
    }

    fn tick(&self) -> io::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.at.load(Ordering::SeqCst) {
            self.control.crash();
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Err(io::Error::other("crashed"));
        }
        Ok(())
    }

    /// Crashes now if the armed point was not reached.
    fn finish(&self) {
        if !self.dead.swap(true, Ordering::SeqCst) {
            self.control.crash();
        }
    }
}

impl StorageBackend for CrashFile {
    fn len(&self) -> Result<u64, BackendError> {
        self.disk.tick()?;
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.disk.tick()?;
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        self.disk.tick()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), BackendError> {
        self.disk.tick()?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.disk.tick()?;
        self.file.write(offset, data)
    }
}

impl Disk for CrashDisk {
    type File = CrashFile;
    type Lock = SeamLock;

    fn open(&self, name: &str, create: bool) -> io::Result<CrashFile> {
        self.tick()?;
        Ok(CrashFile {
            file: self.disk.open(name, create)?,
            disk: self.clone(),
        })
    }
    fn exists(&self, name: &str) -> io::Result<bool> {
        self.tick()?;
        self.disk.exists(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.tick()?;
        self.disk.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.tick()?;
        self.disk.remove(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.tick()?;
        self.disk.sync_dir()
    }
    fn lock(&self, name: &str) -> Result<SeamLock, LockError> {
        self.disk.lock(name)
    }
}

/// What one crash point gave: whether the operation returned `Ok`, and the state recovered.
fn crash_once(
    seed: u64,
    at: u64,
    batches: &[(Changes, DurableState)],
    last: impl FnOnce(&mut Store<CrashDisk>) -> Result<(), StoreError>,
) -> (bool, DurableState, u64) {
    let disk = CrashDisk::new(seed);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    for (changes, _) in batches {
        store.commit(changes, 9, Durability::Immediate).unwrap();
    }
    disk.arm(at);
    let ok = last(&mut store).is_ok();
    let calls = disk.calls.load(Ordering::SeqCst);
    disk.finish();
    drop(store);
    let state = match Store::open(disk.disk.clone(), NAME, options()) {
        Ok((_, recovered)) => recovered.state,
        Err(e) => panic!("seed {seed}, crash at operation {at}: {e}"),
    };
    (ok, state, calls)
}

/// Crashes before every operation of `last` after `batches`, on several seeds (each tears or
/// keeps the unsynced writes differently): recovery gives `before` or `after`, and `after`
/// whenever `last` returned `Ok`. Returns the outcomes seen.
fn enumerate(
    batches: &[(Changes, DurableState)],
    before: &DurableState,
    after: &DurableState,
    last: impl Fn(&mut Store<CrashDisk>) -> Result<(), StoreError>,
) -> BTreeSet<(bool, bool)> {
    let (ok, state, total) = crash_once(0, 0, batches, &last);
    assert!(ok);
    assert_eq!(&state, after);
    let mut outcomes = BTreeSet::new();
    for seed in 0..8 {
        for at in 1..=total + 1 {
            let (ok, state, _) = crash_once(seed, at, batches, &last);
            let is_after = &state == after;
            assert!(
                is_after || &state == before,
                "seed {seed}, crash at operation {at} of {total}: neither before nor after"
            );
            assert!(
                !ok || is_after,
                "seed {seed}, crash at operation {at} of {total}: Ok, but the batch is lost"
            );
            outcomes.insert((ok, is_after));
        }
    }
    outcomes
}

#[test]
fn a_crash_at_any_point_of_a_commit_recovers_the_state_before_or_after_it() {
    let batches = run(5, 60);
    // The largest batches make the longest commits.
    let mut by_size: Vec<usize> = (1..batches.len()).collect();
    by_size.sort_by_key(|i| std::cmp::Reverse(batches[*i].0.ops.len()));
    let mut outcomes = BTreeSet::new();
    for &i in by_size.iter().take(3) {
        let (changes, after) = &batches[i];
        outcomes.extend(enumerate(
            &batches[..i],
            &batches[i - 1].1,
            after,
            |store| store.commit(changes, 10, Durability::Immediate).map(drop),
        ));
    }
    assert!(outcomes.contains(&(false, false)), "{outcomes:?}");
    assert!(outcomes.contains(&(true, true)), "{outcomes:?}");
}

#[test]
fn a_crash_in_the_middle_of_a_slow_sync_recovers_the_state_before_or_after_and_after_once_completed()
 {
    use crate::net::commit::Storage;
    let batches = run(5, 60);
    let last = batches.len() - 1;
    let mut seen = BTreeSet::new();
    for seed in 0..16 {
        for complete in [false, true] {
            let disk = SeamDisk::new(seed);
            let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
            for (changes, _) in &batches[..last] {
                store.commit(changes, 9, Durability::Immediate).unwrap();
            }
            disk.control().set_sync_latency(Duration::from_millis(5));
            Storage::commit(&mut store, &batches[last].0, true, 10).unwrap();
            assert_eq!(
                Storage::syncs_in_flight(&store),
                Some(Duration::from_millis(5))
            );
            if complete {
                Storage::complete_syncs(&mut store);
                assert_eq!(Storage::syncs_in_flight(&store), None);
            }
            disk.control().crash();
            drop(store);
            let (_, recovered) =
                Store::open(disk, NAME, options()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let after = recovered.state == batches[last].1;
            assert!(
                after || recovered.state == batches[last - 1].1,
                "seed {seed}: neither before nor after"
            );
            assert!(!complete || after, "seed {seed}: a completed sync was lost");
            seen.insert((complete, after));
        }
    }
    assert!(seen.contains(&(false, false)), "{seen:?}");
}

#[test]
fn a_crash_at_any_point_of_a_rewrite_recovers_the_old_or_the_new_file() {
    let batches = run(6, 40);
    let (old, new) = (&batches[19].1, &batches[39].1);
    let outcomes = enumerate(&batches[..20], old, new, |store| store.rewrite(new, 11));
    assert!(outcomes.contains(&(false, false)), "{outcomes:?}");
    assert!(outcomes.contains(&(true, true)), "{outcomes:?}");
}

/// A disk whose last commit of `batches` was cut by a crash before its `k`-th operation, then
/// whose recovery (an open) was cut before its `j`-th (never with 0); returns the state a
/// further open recovers and the operations of the cut open.
fn crash_twice(
    seed: u64,
    batches: &[(Changes, DurableState)],
    k: u64,
    j: u64,
) -> (DurableState, u64) {
    let (last, done) = batches.split_last().unwrap();
    let first = CrashDisk::new(seed);
    let (mut store, _) = Store::open(first.clone(), NAME, options()).unwrap();
    for (changes, _) in done {
        store.commit(changes, 1, Durability::Immediate).unwrap();
    }
    first.arm(k);
    let _ = store.commit(&last.0, 2, Durability::Immediate);
    first.finish();
    drop(store);
    let second = CrashDisk::over(first.disk.clone());
    second.arm(j);
    drop(Store::open(second.clone(), NAME, options()));
    let calls = second.calls.load(Ordering::SeqCst);
    second.finish();
    (recover(first.disk.clone()), calls)
}

#[test]
fn a_crash_while_recovering_from_a_crash_recovers_the_same_state() {
    let batches = run(5, 30);
    let (before, after) = (&batches[28].1, &batches[29].1);
    let mut outcomes = BTreeSet::new();
    for seed in 0..3 {
        for k in [4, 10, 20, 40] {
            let (expected, total) = crash_twice(seed, &batches, k, 0);
            assert!(
                &expected == before || &expected == after,
                "seed {seed}, k {k}"
            );
            outcomes.insert(&expected == after);
            for j in 1..=total {
                let (state, _) = crash_twice(seed, &batches, k, j);
                assert_eq!(
                    state, expected,
                    "seed {seed}, commit cut at {k}, open cut at {j}"
                );
            }
        }
    }
    assert_eq!(outcomes.len(), 2, "some cut commits survive, some do not");
}

#[test]
fn a_crash_while_a_store_is_created_leaves_no_store_or_an_empty_one() {
    for seed in 0..4 {
        for at in 1..=60 {
            let disk = CrashDisk::new(seed);
            disk.arm(at);
            let opened = Store::open(disk.clone(), NAME, options());
            let ok = opened.is_ok();
            disk.finish();
            drop(opened);
            let (_, recovered) = Store::open(disk.disk.clone(), NAME, options())
                .unwrap_or_else(|e| panic!("seed {seed}, crash at operation {at}: {e}"));
            assert_eq!(recovered.state, DurableState::default());
            assert!(!ok || !recovered.created, "seed {seed}, at {at}");
        }
    }
}

#[test]
fn a_failed_sync_fails_the_store_until_a_rewrite_and_nothing_acknowledged_is_lost() {
    let disk = SeamDisk::new(8);
    let batches = run(7, 50);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    for (changes, _) in &batches[..30] {
        store.commit(changes, 1, Durability::Immediate).unwrap();
    }
    disk.control().set_sync_error(true);
    let err = store
        .commit(&batches[30].0, 1, Durability::Immediate)
        .unwrap_err();
    assert!(matches!(err, StoreError::Io { full: false, .. }), "{err}");
    assert!(store.failed());
    let err = store
        .commit(&batches[31].0, 1, Durability::Immediate)
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed { .. }), "{err}");
    assert!(
        store.rewrite(&batches[31].1, 2).is_err(),
        "the disk still fails"
    );
    disk.control().set_sync_error(false);
    store.rewrite(&batches[31].1, 2).unwrap();
    assert!(!store.failed());
    for (changes, _) in &batches[32..] {
        store.commit(changes, 3, Durability::Immediate).unwrap();
    }
    disk.control().crash();
    drop(store);
    assert_eq!(recover(disk), batches[49].1);
}

#[test]
fn a_full_disk_is_reported_as_full() {
    let disk = SeamDisk::new(9);
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    let (mut d, first) = fan_out(3, false);
    store.commit(&first, 0, Durability::Immediate).unwrap();
    disk.control().set_full(true);
    let publisher = d.conns[&0];
    let mut full = None;
    for i in 0..2000 {
        d.publish(
            publisher,
            "t",
            QoS::AtLeastOnce,
            false,
            Bytes::from(vec![i as u8; 4000]),
        );
        if let Err(e) = store.commit(&d.broker.take_changes(), 0, Durability::Immediate) {
            full = Some(e);
            break;
        }
    }
    let err = full.expect("the disk fills up");
    assert!(err.is_full(), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Figures.

fn file_len(disk: &impl Disk) -> u64 {
    disk.open(NAME, false).unwrap().len().unwrap()
}

/// Commits of one QoS 1 PUBLISH (or 100) to 3 online persistent subscribers, then of their
/// acknowledgements, after `preload` retained messages; returns (mean publish commit, mean ack
/// commit) and the file length after every fifth of the batches.
fn measure<D: Disk + Clone>(
    disk: D,
    per_batch: usize,
    batches: usize,
    preload: usize,
) -> (Duration, Duration, Vec<u64>) {
    let (mut store, _) = Store::open(disk.clone(), NAME, options()).unwrap();
    let (mut d, first) = fan_out(3, true);
    store.commit(&first, 0, Durability::Immediate).unwrap();
    let publisher = d.conns[&0];
    for i in 0..preload {
        let payload = Bytes::from(vec![b'r'; 100]);
        d.publish(publisher, &format!("r/{i}"), QoS::AtMostOnce, true, payload);
        if i % 100 == 99 {
            let changes = d.broker.take_changes();
            store.commit(&changes, 0, Durability::Immediate).unwrap();
        }
    }
    let subs: Vec<ConnId> = d.conns.range(101..).map(|(_, c)| *c).collect();
    let (mut publish_time, mut ack_time) = (Duration::ZERO, Duration::ZERO);
    let mut sizes = Vec::new();
    let payload = Bytes::from(vec![b'p'; 100]);
    let mut timed_commit = |d: &mut Driver, total: &mut Duration| {
        let changes = d.broker.take_changes();
        let t = Instant::now();
        store.commit(&changes, 0, Durability::Immediate).unwrap();
        *total += t.elapsed();
    };
    for b in 0..batches {
        for _ in 0..per_batch {
            d.publish(publisher, "t", QoS::AtLeastOnce, false, payload.clone());
            d.answer(publisher);
        }
        timed_commit(&mut d, &mut publish_time);
        for &conn in &subs {
            d.answer(conn);
        }
        timed_commit(&mut d, &mut ack_time);
        if (b + 1) % (batches / 5).max(1) == 0 {
            sizes.push(file_len(&disk));
        }
    }
    assert!(
        d.broker
            .durable_state()
            .sessions
            .values()
            .all(|s| s.inflight().is_empty())
    );
    (
        publish_time / batches as u32,
        ack_time / batches as u32,
        sizes,
    )
}

#[test]
#[ignore = "prints figures; run with --ignored --nocapture"]
fn figures() {
    for per_batch in [1, 100] {
        let batches = 10_000 / per_batch;
        let (p, a, sizes) = measure(MemDisk::default(), per_batch, batches, 0);
        println!(
            "MemDisk  {per_batch:>3} PUBLISH/batch to 3 subscribers: publish commit {p:?}, ack commit {a:?}; file bytes every {} msgs: {sizes:?}",
            10_000 / 5
        );
        let (p, a, sizes) = measure(SeamDisk::new(1), per_batch, batches, 0);
        println!(
            "SeamDisk {per_batch:>3} PUBLISH/batch to 3 subscribers: publish commit {p:?}, ack commit {a:?}; file bytes every {} msgs: {sizes:?}",
            10_000 / 5
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (p, a, sizes) = measure(super::disk::OsDisk::new(dir.path()), 1, 300, 0);
    println!(
        "OsDisk     1 PUBLISH/batch (fsync per commit): publish commit {p:?}, ack commit {a:?}; sizes {sizes:?}"
    );
    let disk = MemDisk::default();
    let (p, a, sizes) = measure(disk.clone(), 1, 1000, 10_000);
    println!(
        "MemDisk    1 PUBLISH/batch with 10,000 retained messages stored: publish commit {p:?}, ack commit {a:?}; sizes {sizes:?}"
    );
    let t = Instant::now();
    let (_, recovered) = Store::open(disk, NAME, options()).unwrap();
    println!(
        "open (dry run + integrity check + load) of that store: {:?}, {} retained messages",
        t.elapsed(),
        recovered.retained
    );
}
