//! What a run is given besides the scenario and the seed ([`RunOptions`]: the broker core to run
//! and the checkers' parameters), and the one place where a scenario's sections become the
//! cores' configurations: [`broker_config`], [`broker_auth`] (users hashed, ACL parsed; its
//! problems are reported like any other of the file, by [`load`]), [`client_config`].
//!
//! Pure data and conversions; nothing here touches the simulator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::auth::Auth;
use crate::broker::{
    Action, Broker, BrokerConfig, BrokerCore, BrokerEvent, CloseCause, ConnId, DurableState,
};
use crate::check::CheckConfig;
use crate::client::{ClientConfig, ReconnectPolicy};
use crate::codec::{
    LastWill, MAX_PACKET_SIZE, Packet, Properties, PropertySet, Subscription, SubscriptionOptions,
};
use crate::net::clock::since_ms;
use crate::net::commit::Storage;
use crate::net::store::seam::SeamDisk;
use crate::net::store::{Store, StoreError, StoreOptions};
use crate::scenario::{self, Scenario, ScenarioError};

/// Builds the broker core of one broker process: its configuration, the users and ACL it checks
/// clients against, and the durable state it resumes from (`None` on a first start, or when
/// nothing survives a crash).
pub type BrokerFactory = Arc<
    dyn Fn(BrokerConfig, Auth, Option<DurableState>) -> Box<dyn BrokerCore + Send> + Send + Sync,
>;

/// The real broker: [`Broker::new`], or [`Broker::restore_at`] from a saved state at the
/// (simulated) instant the broker process starts, so its timers run from the start even
/// before any client connects; with [`Broker::with_auth`].
pub fn real_broker() -> BrokerFactory {
    Arc::new(|config, auth, state| match state {
        Some(state) => Box::new(Broker::restore_at(config, state, Instant::now()).with_auth(auth)),
        None => Box::new(Broker::new(config).with_auth(auth)),
    })
}

/// Opens the store of a durable broker process on its simulated disk, at every start: the
/// storage its journal writes through, and the state it resumes from (`None` for a store never
/// committed to), aged by the time since its last commit.
pub type StoreFactory = Arc<
    dyn Fn(SeamDisk) -> Result<(Box<dyn Storage>, Option<DurableState>), StoreError> + Send + Sync,
>;

/// The broker's store on its simulated disk.
pub const STORE_FILE: &str = "state.redb";
/// The lab broker's page cache: small, as the lab's stores are.
const STORE_CACHE_BYTES: usize = 4 << 20;

/// The real store: [`Store::open`] of [`STORE_FILE`], the state it recovered aged by the
/// (virtual) time since its commit.
pub fn real_store() -> StoreFactory {
    Arc::new(|disk| {
        let options = StoreOptions {
            cache_bytes: STORE_CACHE_BYTES,
        };
        let (store, recovered) = Store::open(disk, STORE_FILE, options)?;
        Ok((
            Box::new(store) as Box<dyn Storage>,
            recovered.aged(since_ms),
        ))
    })
}

/// Everything a run needs besides the scenario and the seed.
#[derive(Clone)]
pub struct RunOptions {
    /// The broker core every broker process runs. Tests wrap the real one to plant bugs.
    pub broker: BrokerFactory,
    /// The store a durable broker process writes through. Tests wrap the real one to plant
    /// storage bugs.
    pub store: StoreFactory,
    /// The checkers' parameters.
    pub check: CheckConfig,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            broker: real_broker(),
            store: real_store(),
            check: CheckConfig::default(),
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// A boxed core is a core, so the server can run whatever a [`BrokerFactory`] returns.
impl BrokerCore for Box<dyn BrokerCore + Send> {
    fn handle_accept(&mut self, now: Instant, conn: ConnId) {
        (**self).handle_accept(now, conn)
    }
    fn handle_accept_as(&mut self, now: Instant, conn: ConnId, identity: Option<&str>) {
        (**self).handle_accept_as(now, conn, identity)
    }
    fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        (**self).handle_bytes(now, conn, bytes)
    }
    fn handle_packet(&mut self, now: Instant, conn: ConnId, packet: Packet) {
        (**self).handle_packet(now, conn, packet)
    }
    fn handle_closed(&mut self, now: Instant, conn: ConnId, cause: CloseCause) {
        (**self).handle_closed(now, conn, cause)
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn poll_action(&mut self) -> Option<Action> {
        (**self).poll_action()
    }
    fn poll_event(&mut self) -> Option<BrokerEvent> {
        (**self).poll_event()
    }
    fn durable_state(&self) -> DurableState {
        (**self).durable_state()
    }
    fn record_changes(&mut self) {
        (**self).record_changes()
    }
    fn take_changes(&mut self) -> crate::broker::Changes {
        (**self).take_changes()
    }
    fn handle_storage(&mut self, now: Instant, health: crate::broker::StorageHealth) {
        (**self).handle_storage(now, health)
    }
    fn connection_info(&self, conn: ConnId) -> Option<crate::broker::ConnectionInfo> {
        (**self).connection_info(conn)
    }
    fn handle_held(&mut self, now: Instant, conn: ConnId, held: bool) {
        (**self).handle_held(now, conn, held)
    }
    fn count_bytes_sent(&mut self, bytes: usize) {
        (**self).count_bytes_sent(bytes)
    }
    fn metrics(&self, now: Instant) -> Option<crate::broker::Metrics> {
        (**self).metrics(now)
    }
}

/// Reads a scenario file and checks what only its conversion to the cores can tell (user
/// names, the ACL text: see [`broker_auth`]), so that a mistake is reported before any seed
/// runs, in the same `FILE: line N: FIELD: REASON` form as every other.
pub fn load(path: impl AsRef<std::path::Path>) -> Result<Scenario, ScenarioError> {
    let scenario = Scenario::load(path)?;
    broker_auth(&scenario)?;
    Ok(scenario)
}

/// The broker core's configuration for a scenario's `[broker]` section: the section's own
/// (the same table as `broker.toml`'s `[broker]`).
pub fn broker_config(s: &Scenario) -> BrokerConfig {
    s.broker.config.clone()
}

/// The broker's [`Auth`] for `[broker]`: a password file with each user's password hashed at
/// the cheapest Argon2 cost (a fixture, never a real password; the salt is derived from the
/// user name so the same scenario gives the same hashes), and the parsed ACL. Problems name
/// their field and line: a user name the broker would refuse, an ACL line it cannot parse.
pub fn broker_auth(s: &Scenario) -> Result<Auth, ScenarioError> {
    use crate::broker::auth::password::{SALT_LEN, hash_password, valid_user_name};
    use crate::broker::auth::{Acl, HashCost, PasswordFile};
    let b = &s.broker;
    let mut problems = Vec::new();
    for (i, u) in b.users.iter().enumerate() {
        if !valid_user_name(&u.name) {
            problems.push((
                format!("broker.users[{i}].name"),
                format!(
                    "{:?} is not a user name: not empty, no ':', no leading '#', no control characters or surrounding spaces",
                    u.name
                ),
            ));
        }
    }
    let acl = match b.acl.as_deref().map(|text| Acl::parse("acl", text)) {
        None => None,
        Some(Ok(acl)) => Some(acl),
        Some(Err(e)) => {
            problems.push((
                "broker.acl".to_string(),
                format!("ACL line {}: {}", e.line, e.message),
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(s.invalid(problems));
    }
    let passwords = (!b.users.is_empty()).then(|| {
        let mut file = PasswordFile::default();
        for u in &b.users {
            let mut salt = [b's'; SALT_LEN];
            for (slot, byte) in salt.iter_mut().zip(u.name.bytes()) {
                *slot = byte;
            }
            file.set(
                &u.name,
                hash_password(u.password.as_bytes(), &salt, HashCost::MINIMAL),
            );
        }
        file
    });
    Ok(Auth { passwords, acl })
}

/// Whole seconds, capped at `u32::MAX` (`"never"` is 0xFFFFFFFF seconds).
fn secs_u32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The client core's configuration for one `[[client]]` of a scenario. The will keeps the
/// configured payload here; the world replaces it at every CONNECT with a payload naming the
/// connection (`<client>#will-<n>`). Reconnect backoff has no jitter: the client waits exactly
/// `min_backoff`, doubling up to `max_backoff`, as the reference says. The client buffers every
/// message its workloads can produce, so nothing due while offline is dropped by the client.
pub fn client_config(s: &Scenario, c: &scenario::ClientConfig) -> ClientConfig {
    let protocol = s.client_protocol(c);
    let v5 = protocol.is_v5();
    let workload_total: usize = s
        .workloads
        .iter()
        .filter(|w| w.client == c.id)
        .map(|w| w.count as usize)
        .sum();
    ClientConfig {
        protocol,
        client_id: c.wire_id().to_string(),
        clean_start: c.clean(),
        session_expiry: v5.then(|| secs_u32(c.session_expiry())),
        keep_alive: u16::try_from(c.keep_alive.as_secs()).unwrap_or(u16::MAX),
        will: c.will.as_ref().map(|w| LastWill {
            topic: w.topic.clone(),
            payload: w.payload.clone().into_bytes().into(),
            qos: w.qos,
            retain: w.retain,
            properties: Properties::from(PropertySet {
                will_delay_interval: (v5 && !w.delay.is_zero()).then(|| secs_u32(w.delay)),
                ..PropertySet::default()
            }),
        }),
        max_packet_size: c
            .max_packet_size
            .unwrap_or(s.broker.config.max_packet_size)
            .clamp(64, MAX_PACKET_SIZE),
        receive_maximum: c
            .receive_maximum
            .unwrap_or(ClientConfig::default().receive_maximum),
        topic_alias_maximum: if v5 { c.topic_alias_maximum } else { 0 },
        outbound_topic_aliases: if v5 { c.topic_aliases } else { 0 },
        max_inflight: c
            .max_inflight
            .unwrap_or(s.broker.config.max_inflight)
            .max(1),
        reconnect: ReconnectPolicy {
            enabled: c.reconnect.enabled,
            min_backoff: c.reconnect.min_backoff,
            max_backoff: c.reconnect.max_backoff,
            jitter: 0.0,
        },
        max_buffered: workload_total.max(ClientConfig::default().max_buffered),
        username: c.username.clone(),
        password: c.password.clone().map(|p| p.into_bytes().into()),
        ..ClientConfig::default()
    }
}

/// The SUBSCRIBE entries of a client (5.0 options only for 5.0 clients).
pub fn subscriptions(s: &Scenario, c: &scenario::ClientConfig) -> Vec<Subscription> {
    let v5 = s.client_protocol(c).is_v5();
    c.subscribe
        .iter()
        .map(|sub| Subscription {
            filter: sub.filter.clone(),
            options: SubscriptionOptions {
                qos: sub.qos,
                no_local: v5 && sub.no_local,
                retain_as_published: v5 && sub.retain_as_published,
                retain_handling: match sub.retain_handling {
                    1 if v5 => crate::codec::RetainHandling::SendIfNew,
                    2 if v5 => crate::codec::RetainHandling::DoNotSend,
                    _ => crate::codec::RetainHandling::SendAtSubscribe,
                },
            },
        })
        .collect()
}

/// One SUBSCRIBE of a client: its filters and the subscription identifier they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribePacket {
    pub id: Option<u32>,
    pub filters: Vec<Subscription>,
}

/// The SUBSCRIBE packets a client sends after a connect: one per distinct subscription
/// identifier (entries without one together), in the order each identifier first appears.
pub fn subscribe_packets(s: &Scenario, c: &scenario::ClientConfig) -> Vec<SubscribePacket> {
    let v5 = s.client_protocol(c).is_v5();
    let mut out: Vec<SubscribePacket> = Vec::new();
    for (entry, sub) in c.subscribe.iter().zip(subscriptions(s, c)) {
        let id = entry.id.filter(|_| v5);
        match out.iter_mut().find(|p| p.id == id) {
            Some(p) => p.filters.push(sub),
            None => out.push(SubscribePacket {
                id,
                filters: vec![sub],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Protocol, QoS};

    fn scenario(text: &str) -> Scenario {
        Scenario::from_str(text, "test.toml").unwrap()
    }

    const BASE: &str = r#"
name = "t"
protocol = "5.0"
duration = "10s"
[broker]
persistence = "durable"
max_inflight = 7
max_queued_messages = 33
queue_overflow = "drop_oldest"
[[client]]
id = "a"
clean_start = false
session_expiry = "never"
keep_alive = "5s"
will = { topic = "w/a", payload = "bye", qos = 1, retain = true, delay = "3s" }
subscribe = [{ filter = "t/#", qos = 2, no_local = true, retain_handling = 2 }]
reconnect = { min_backoff = "250ms", max_backoff = "2s" }
[[client]]
id = "b"
protocol = "3.1.1"
clean_session = false
[[workload]]
client = "a"
topic = "t/1"
count = 5000
every = "1ms"
[expect]
checkers = ["delivery"]
"#;

    /// The 5.0 limits and aliases of a `[[client]]` reach the client core; 3.1.1 clients and
    /// unset fields keep the core's defaults (the packet size: the broker's).
    #[test]
    fn client_config_maps_limits_and_aliases() {
        let text = BASE.replacen(
            "keep_alive = \"5s\"",
            "keep_alive = \"5s\"\nreceive_maximum = 2\nmax_packet_size = 256\ntopic_alias_maximum = 4\ntopic_aliases = 3",
            1,
        );
        let s = scenario(&text);
        let a = client_config(&s, &s.clients[0]);
        assert_eq!(
            (
                a.receive_maximum,
                a.max_packet_size,
                a.topic_alias_maximum,
                a.outbound_topic_aliases
            ),
            (2, 256, 4, 3)
        );
        let b = client_config(&s, &s.clients[1]);
        assert_eq!(
            (
                b.receive_maximum,
                b.max_packet_size,
                b.topic_alias_maximum,
                b.outbound_topic_aliases
            ),
            (u16::MAX, s.broker.config.max_packet_size, 0, 0)
        );
    }

    /// A client's own `max_inflight` is its core's window, whatever the broker's.
    #[test]
    fn client_max_inflight_is_the_client_s_own_window() {
        let s = scenario(&BASE.replacen(
            "keep_alive = \"5s\"",
            "keep_alive = \"5s\"\nmax_inflight = 2",
            1,
        ));
        assert_eq!(client_config(&s, &s.clients[0]).max_inflight, 2);
        assert_eq!(client_config(&s, &s.clients[1]).max_inflight, 7);
    }

    #[test]
    fn broker_config_carries_every_limit_of_the_scenario() {
        let s = scenario(BASE);
        let b = broker_config(&s);
        assert_eq!(b.max_inflight, 7);
        assert_eq!(b.receive_maximum, u16::MAX);
        assert_eq!(b.max_queued_messages, 33);
        assert_eq!(b.queue_overflow, crate::broker::QueueOverflow::DropOldest);
        b.validate().unwrap();
    }

    #[test]
    fn client_config_maps_session_will_keepalive_and_backoff() {
        let s = scenario(BASE);
        let a = client_config(&s, &s.clients[0]);
        assert_eq!(a.protocol, Protocol::V5);
        assert_eq!(a.client_id, "a");
        assert!(!a.clean_start);
        assert_eq!(a.session_expiry, Some(u32::MAX));
        assert_eq!(a.keep_alive, 5);
        let will = a.will.as_ref().unwrap();
        assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
        assert_eq!(will.properties.will_delay_interval, Some(3));
        assert_eq!(a.reconnect.min_backoff, Duration::from_millis(250));
        assert_eq!(a.reconnect.jitter, 0.0);
        assert_eq!(a.max_buffered, 5000);
        assert_eq!(a.max_inflight, 7, "the broker's window by default");
        a.validate().unwrap();

        let b = client_config(&s, &s.clients[1]);
        assert_eq!(b.protocol, Protocol::V3_1_1);
        assert!(!b.clean_start);
        assert_eq!(b.session_expiry, None);
        assert_eq!(b.keep_alive, 30);
        assert_eq!(b.max_buffered, ClientConfig::default().max_buffered);
        b.validate().unwrap();
    }

    #[test]
    fn subscriptions_keep_v5_options_only_for_v5_clients() {
        let s = scenario(BASE);
        let subs = subscriptions(&s, &s.clients[0]);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].options.qos, QoS::ExactlyOnce);
        assert!(subs[0].options.no_local);
        assert_eq!(
            subs[0].options.retain_handling,
            crate::codec::RetainHandling::DoNotSend
        );
    }

    #[test]
    fn subscriptions_with_different_identifiers_go_in_separate_packets() {
        let s = scenario(
            r#"
name = "t"
protocol = "5.0"
duration = "10s"
[[client]]
id = "a"
subscribe = [
  { filter = "a/#", id = 7 },
  { filter = "b/#" },
  { filter = "c/#", id = 7 },
  { filter = "d/#", id = 9 },
]
[expect]
checkers = ["integrity"]
"#,
        );
        let packets = subscribe_packets(&s, &s.clients[0]);
        let shape: Vec<(Option<u32>, Vec<&str>)> = packets
            .iter()
            .map(|p| (p.id, p.filters.iter().map(|f| f.filter.as_str()).collect()))
            .collect();
        assert_eq!(
            shape,
            [
                (Some(7), vec!["a/#", "c/#"]),
                (None, vec!["b/#"]),
                (Some(9), vec!["d/#"])
            ]
        );
    }
}
