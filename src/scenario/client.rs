//! A `[[client]]` entry: one simulated client node, its session settings, keep-alive, will,
//! subscriptions, reconnect policy and the times it connects and leaves; and its checks. Not
//! here: workloads (`[[workload]]`) and faults (`[[fault]]`), which refer to clients by id.

use std::time::Duration;

use serde::Deserialize;

use super::checks::{Checks, d};
use super::topic::{check_topic_filter, check_topic_name};
use super::values::{
    BROKER, MAX_INTERVAL_S, MAX_KEEP_ALIVE_S, MAX_SESSION_EXPIRY_S, de_duration, de_opt_duration,
    de_opt_expiry, de_opt_protocol, de_qos,
};
use crate::codec::{MAX_PACKET_SIZE, Protocol, QoS, varint};
use crate::config::duration::NEVER_EXPIRES;

/// Longest client id.
pub const MAX_ID_LEN: usize = 64;

/// `[[client]]`: one client node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The process: unique in the scenario, the node's name (faults and workloads name it),
    /// and the MQTT client identifier unless `client_id` is set. Required; not `"broker"`.
    pub id: String,
    /// The MQTT client identifier its CONNECTs carry, when it is not `id`: several processes
    /// with one `client_id` share one session, and each CONNECT takes it over from the
    /// connection holding it. Default: `id`. Not the `id` of another process that has a
    /// `client_id` of its own. `""` sends an empty client identifier, for which the broker
    /// assigns one (3.1.1 [MQTT-3.1.3-6], 5.0 [MQTT-3.1.3-6] with Assigned Client Identifier);
    /// it needs clean session / clean start on every connect ([MQTT-3.1.3-7]; a reconnect with
    /// an empty identifier is a new client), and the trace and the expectations name the client
    /// by `id`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// This client's MQTT version. Default: the scenario's `protocol`.
    #[serde(default, deserialize_with = "de_opt_protocol")]
    pub protocol: Option<Protocol>,
    /// 3.1.1 Clean Session flag. Default `true`. Only for 3.1.1 clients (5.0 uses
    /// `clean_start`). Read the effective value with [`ClientConfig::clean`].
    #[serde(default)]
    pub clean_session: Option<bool>,
    /// 5.0 Clean Start flag. Default `true`. Only for 5.0 clients.
    #[serde(default)]
    pub clean_start: Option<bool>,
    /// 5.0 Session Expiry Interval: a duration or `"never"`. Default `"0s"` (the session ends
    /// with the connection). Only for 5.0 clients; must be whole seconds.
    #[serde(default, deserialize_with = "de_opt_expiry")]
    pub session_expiry: Option<Duration>,
    /// Keep-alive interval, whole seconds up to 65535s; `"0s"` disables it. Default `"30s"`.
    #[serde(default = "default_keep_alive", deserialize_with = "de_duration")]
    pub keep_alive: Duration,
    /// The will message. Default: none.
    #[serde(default)]
    pub will: Option<WillConfig>,
    /// Subscriptions sent after every connect that finds no session on the broker.
    /// Default: none.
    #[serde(default)]
    pub subscribe: Vec<SubscriptionConfig>,
    /// Filters this client unsubscribes from, each at its time. Default: none.
    #[serde(default)]
    pub unsubscribe: Vec<UnsubscribeConfig>,
    /// Whether the subscriptions are sent again after a connect that resumed a session
    /// (`session_present = 1`), as many applications do. Default `false`: only after a connect
    /// that found no session.
    #[serde(default)]
    pub resubscribe: bool,
    /// How the client reconnects after losing its connection.
    #[serde(default)]
    pub reconnect: ReconnectPolicy,
    /// 5.0 Receive Maximum sent in CONNECT: QoS 1/2 messages the broker may have unacknowledged
    /// towards this client on one connection, 1 to 65535. The client disconnects a broker that
    /// sends more (0x93). Default: none sent (65535). Only for 5.0 clients.
    #[serde(default)]
    pub receive_maximum: Option<u16>,
    /// This client's own inflight window: its QoS 1/2 publishes (and requests) sent and not yet
    /// acknowledged, 1 to 65535; in 5.0 further capped by the broker's Receive Maximum.
    /// Default: the broker's `max_inflight`.
    #[serde(default)]
    pub max_inflight: Option<u16>,
    /// 5.0 Maximum Packet Size sent in CONNECT, in bytes, 64 to 268435460: the broker must not
    /// send larger packets (it drops such messages for this client; the client disconnects a
    /// broker that sends one, 0x95). Default: the broker's `max_packet_size`. Only for 5.0
    /// clients.
    #[serde(default)]
    pub max_packet_size: Option<u32>,
    /// 5.0 Topic Alias Maximum sent in CONNECT: topic aliases the broker may use towards this
    /// client per connection. Default 0 (none). Only for 5.0 clients.
    #[serde(default)]
    pub topic_alias_maximum: u16,
    /// Topic aliases this client uses on its own PUBLISHes per connection, capped by the
    /// broker's Topic Alias Maximum: the first distinct topics it sends on a connection get
    /// aliases. Default 0 (none). Only for 5.0 clients.
    #[serde(default)]
    pub topic_aliases: u16,
    /// When the client first connects. Default `"0s"`.
    #[serde(default, deserialize_with = "de_duration")]
    pub connect_at: Duration,
    /// When the client sends a normal DISCONNECT and goes offline (no will is published).
    /// Default: never.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub disconnect_at: Option<Duration>,
    /// The 5.0 Session Expiry Interval the DISCONNECT at `disconnect_at` carries: how long the
    /// broker is to keep the session from then on. Default: none (the CONNECT's goes on).
    /// Whole seconds or `"never"`; not with a `session_expiry` of `"0s"`.
    #[serde(default, deserialize_with = "de_opt_expiry")]
    pub disconnect_session_expiry: Option<Duration>,
    /// When the client connects again after `disconnect_at` (same id, same session settings).
    /// Default: it stays offline.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub reconnect_at: Option<Duration>,
    /// The clean flag (3.1.1 Clean Session, 5.0 Clean Start) of the connects from
    /// `reconnect_at` on. Default: the client's `clean_session` / `clean_start`. Needs
    /// `reconnect_at`.
    #[serde(default)]
    pub reconnect_clean_start: Option<bool>,
    /// User name sent in CONNECT. Default: none (anonymous).
    #[serde(default)]
    pub username: Option<String>,
    /// Password sent in CONNECT (plain text). Default: none. A 3.1.1 client needs a
    /// `username` with it.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

impl ClientConfig {
    /// The client identifier the trace and the expectations know this process's connections
    /// by: `client_id`, else (or when it is empty) `id`.
    pub fn mqtt_id(&self) -> &str {
        self.client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(&self.id)
    }

    /// The client identifier its CONNECTs carry: [`Self::mqtt_id`], or empty when
    /// `client_id = ""` (the broker assigns one).
    pub fn wire_id(&self) -> &str {
        match self.client_id.as_deref() {
            Some("") => "",
            _ => self.mqtt_id(),
        }
    }

    /// The effective protocol of this client, given the scenario's.
    pub fn protocol_or(&self, scenario: Protocol) -> Protocol {
        self.protocol.unwrap_or(scenario)
    }

    /// The effective Clean Session (3.1.1) or Clean Start (5.0) flag. Default `true`.
    pub fn clean(&self) -> bool {
        self.clean_session.or(self.clean_start).unwrap_or(true)
    }

    /// The effective 5.0 Session Expiry Interval. Default zero.
    pub fn session_expiry(&self) -> Duration {
        self.session_expiry.unwrap_or(Duration::ZERO)
    }

    /// Whether the broker keeps this client's session after its connection ends: 3.1.1 with
    /// Clean Session 0, or 5.0 with a non-zero Session Expiry Interval.
    pub fn persistent_session(&self, scenario: Protocol) -> bool {
        if self.protocol_or(scenario).is_v5() {
            self.session_expiry() > Duration::ZERO
        } else {
            !self.clean()
        }
    }
}

/// `will = { ... }`: the will message of a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WillConfig {
    /// Topic name (no wildcards). Required.
    pub topic: String,
    /// Payload text. Default `""`.
    #[serde(default)]
    pub payload: String,
    /// Default 0.
    #[serde(default, deserialize_with = "de_qos")]
    pub qos: QoS,
    /// Default `false`.
    #[serde(default)]
    pub retain: bool,
    /// 5.0 Will Delay Interval, whole seconds. Default `"0s"`. Only for 5.0 clients.
    #[serde(default, deserialize_with = "de_duration")]
    pub delay: Duration,
}

/// `subscribe = [{ filter = "...", qos = 1 }]`: one subscription.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Topic filter; `+` and `#` allowed. Required.
    pub filter: String,
    /// Maximum QoS. Default 0.
    #[serde(default, deserialize_with = "de_qos")]
    pub qos: QoS,
    /// 5.0 No Local: do not receive own publishes. Default `false`. Only for 5.0 clients.
    #[serde(default)]
    pub no_local: bool,
    /// 5.0 Retain As Published. Default `false`. Only for 5.0 clients.
    #[serde(default)]
    pub retain_as_published: bool,
    /// 5.0 Retain Handling: 0 send retained on subscribe, 1 only if the subscription is new,
    /// 2 never. Default 0. Only for 5.0 clients.
    #[serde(default)]
    pub retain_handling: u8,
    /// 5.0 Subscription Identifier, 1 to 268435455, carried by the messages this subscription
    /// matches. Default: none. Entries with different identifiers go in separate SUBSCRIBE
    /// packets (the identifier belongs to the packet). Only for 5.0 clients.
    #[serde(default)]
    pub id: Option<u32>,
}

/// `unsubscribe = [{ filter = "...", at = "10s" }]`: one UNSUBSCRIBE of a filter the client
/// subscribes to. Sent at `at` if the client is connected, else as soon as it is (and again
/// after each reconnect until its UNSUBACK arrives, by a process that did not get one); from
/// `at` on the filter is left out of the subscriptions sent after a connect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeConfig {
    /// One of the client's `subscribe` filters. Required.
    pub filter: String,
    /// When to unsubscribe. Required; after `connect_at`, before the end of the run.
    #[serde(deserialize_with = "de_duration")]
    pub at: Duration,
}

/// `reconnect = { ... }`: the client's reconnect policy. Backoff doubles from `min_backoff`
/// up to `max_backoff` after each failed attempt and resets after a successful CONNACK.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectPolicy {
    /// Whether the client reconnects at all. Default `true`.
    pub enabled: bool,
    /// First wait after a lost connection. Default `"100ms"`.
    #[serde(deserialize_with = "de_duration")]
    pub min_backoff: Duration,
    /// Longest wait between attempts. Default `"5s"`.
    #[serde(deserialize_with = "de_duration")]
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

/// What the checks of one `[[client]]` need to know of the rest of the scenario.
pub(crate) struct ClientContext<'a> {
    /// The clients before this one in the file.
    pub earlier: &'a [ClientConfig],
    /// The scenario's protocol.
    pub protocol: Protocol,
    /// Whether `[broker]` lists any users.
    pub broker_has_users: bool,
}

impl ClientConfig {
    /// Checks `client[i]`.
    pub(crate) fn check(&self, c: &mut Checks<'_>, i: usize, cx: &ClientContext<'_>) {
        let v5 = self.protocol_or(cx.protocol).is_v5();
        self.check_id(c, i, cx.earlier);
        self.check_session(c, i, v5);
        self.check_will(c, i, v5);
        for (j, sub) in self.subscribe.iter().enumerate() {
            sub.check(
                c,
                &format!("client[{i}].subscribe[{j}]"),
                &self.subscribe[..j],
                v5,
            );
        }
        self.check_flow_control(c, i, v5);
        self.check_unsubscribe(c, i);
        self.check_credentials(c, i, v5, cx.broker_has_users);
        self.check_times(c, i);
    }

    fn check_id(&self, c: &mut Checks<'_>, i: usize, earlier: &[ClientConfig]) {
        let field = format!("client[{i}].id");
        if !valid_id(&self.id) {
            c.fail(
                field,
                format!(
                    "{:?} is not a client id: use 1 to {MAX_ID_LEN} letters, digits, '-', '_' or '.'",
                    self.id
                ),
            );
        } else if self.id == BROKER {
            c.fail(
                field,
                "\"broker\" names the broker node; pick another client id",
            );
        } else if earlier.iter().any(|o| o.id == self.id) {
            c.fail(field, format!("client id {:?} is used twice", self.id));
        }
        let alias = |p: &ClientConfig| p.id != p.mqtt_id();
        if let Some(o) = earlier.iter().find(|o| {
            (alias(o) && self.mqtt_id() == o.id) || (alias(self) && o.mqtt_id() == self.id)
        }) {
            c.fail(
                format!("client[{i}].client_id"),
                format!(
                    "process {:?} connects as {:?} and process {:?} as {:?}: a name is either a client id or the name of a process with another client id, not both",
                    self.id,
                    self.mqtt_id(),
                    o.id,
                    o.mqtt_id()
                ),
            );
        }
        let Some(client_id) = &self.client_id else {
            return;
        };
        let field = format!("client[{i}].client_id");
        if client_id.is_empty() {
            if !self.clean() || self.reconnect_clean_start == Some(false) {
                c.fail(
                    field,
                    "an empty client id needs clean_session / clean_start = true on every connect [MQTT-3.1.3-7]: the broker assigns a new identifier each time, so no session can be resumed",
                );
            }
        } else if !valid_id(client_id) {
            c.fail(
                field,
                format!(
                    "{client_id:?} is not a client id: use 1 to {MAX_ID_LEN} letters, digits, '-', '_' or '.'"
                ),
            );
        } else if client_id == BROKER {
            c.fail(
                field,
                "\"broker\" names the broker node; pick another client id",
            );
        }
    }

    /// Clean session or start, session expiry and keep-alive.
    fn check_session(&self, c: &mut Checks<'_>, i: usize, v5: bool) {
        let at = |f: &str| format!("client[{i}].{f}");
        if v5 && self.clean_session.is_some() {
            c.fail(
                at("clean_session"),
                "clean_session is MQTT 3.1.1; a 5.0 client uses clean_start",
            );
        }
        if !v5 && self.clean_start.is_some() {
            c.fail(
                at("clean_start"),
                "clean_start is MQTT 5.0; a 3.1.1 client uses clean_session",
            );
        }
        if let Some(expiry) = self.session_expiry {
            if !v5 {
                c.fail(
                    at("session_expiry"),
                    "session_expiry is MQTT 5.0; a 3.1.1 session is kept by clean_session = false",
                );
            } else if expiry != NEVER_EXPIRES {
                c.whole_seconds(&at("session_expiry"), expiry, MAX_SESSION_EXPIRY_S);
            }
        }
        if let Some(e) = self.disconnect_session_expiry {
            let field = at("disconnect_session_expiry");
            if self.disconnect_at.is_none() {
                c.fail(field, "disconnect_session_expiry needs a disconnect_at");
            } else if !v5 {
                c.fail(field, "disconnect_session_expiry is MQTT 5.0");
            } else if !e.is_zero() && self.session_expiry().is_zero() {
                c.fail(
                    field,
                    "a client whose CONNECT asked for session expiry 0 must not send another on DISCONNECT [MQTT-3.14.2-2]; set session_expiry",
                );
            } else if e != NEVER_EXPIRES {
                c.whole_seconds(&field, e, MAX_SESSION_EXPIRY_S);
            }
        }
        c.whole_seconds(&at("keep_alive"), self.keep_alive, MAX_KEEP_ALIVE_S);
    }

    fn check_will(&self, c: &mut Checks<'_>, i: usize, v5: bool) {
        let Some(will) = &self.will else {
            return;
        };
        if let Err(reason) = check_topic_name(&will.topic) {
            c.fail(format!("client[{i}].will.topic"), reason);
        }
        if !will.delay.is_zero() {
            let field = format!("client[{i}].will.delay");
            if !v5 {
                c.fail(field, "will delay is MQTT 5.0 only");
            } else {
                c.whole_seconds(&field, will.delay, MAX_INTERVAL_S);
            }
        }
    }

    /// The 5.0 connection limits and topic aliases.
    fn check_flow_control(&self, c: &mut Checks<'_>, i: usize, v5: bool) {
        let at = |f: &str| format!("client[{i}].{f}");
        if self.max_inflight == Some(0) {
            c.fail(at("max_inflight"), "must be between 1 and 65535");
        }
        let set = [
            ("receive_maximum", self.receive_maximum.is_some()),
            ("max_packet_size", self.max_packet_size.is_some()),
            ("topic_alias_maximum", self.topic_alias_maximum > 0),
            ("topic_aliases", self.topic_aliases > 0),
        ];
        if !v5 {
            for (field, given) in set {
                if given {
                    c.fail(at(field), format!("{field} is MQTT 5.0 only"));
                }
            }
            return;
        }
        if self.receive_maximum == Some(0) {
            c.fail(
                at("receive_maximum"),
                "must be between 1 and 65535 (0 is a protocol error)",
            );
        }
        if let Some(max) = self.max_packet_size
            && !(64..=MAX_PACKET_SIZE).contains(&max)
        {
            c.fail(
                at("max_packet_size"),
                format!("must be between 64 and {MAX_PACKET_SIZE} bytes, got {max}"),
            );
        }
    }

    /// Each unsubscribe names a subscribed filter once, at a time after `connect_at`.
    fn check_unsubscribe(&self, c: &mut Checks<'_>, i: usize) {
        for (j, u) in self.unsubscribe.iter().enumerate() {
            let at = |f: &str| format!("client[{i}].unsubscribe[{j}].{f}");
            if !self.subscribe.iter().any(|s| s.filter == u.filter) {
                let filters: Vec<&str> = self.subscribe.iter().map(|s| s.filter.as_str()).collect();
                c.fail(
                    at("filter"),
                    format!(
                        "{:?} is not one of this client's subscribe filters ({})",
                        u.filter,
                        if filters.is_empty() {
                            "none".to_string()
                        } else {
                            filters.join(", ")
                        }
                    ),
                );
            } else if self.unsubscribe[..j].iter().any(|o| o.filter == u.filter) {
                c.fail(
                    at("filter"),
                    format!("{:?} is unsubscribed twice", u.filter),
                );
            }
            c.within_run(&at("at"), u.at);
            if u.at < self.connect_at {
                c.fail(
                    at("at"),
                    format!("{} is before connect_at {}", d(u.at), d(self.connect_at)),
                );
            }
        }
    }

    /// A username needs users on the broker; a 3.1.1 password needs a username.
    fn check_credentials(&self, c: &mut Checks<'_>, i: usize, v5: bool, broker_has_users: bool) {
        if self.password.is_some() && self.username.is_none() && !v5 {
            c.fail(
                format!("client[{i}].password"),
                "a 3.1.1 client sends a password only with a username [MQTT-3.1.2-22]",
            );
        }
        if self.username.is_some() && !broker_has_users {
            c.fail(
                format!("client[{i}].username"),
                "the broker has no users: add [broker] users, or leave the username out",
            );
        }
    }

    /// Reconnect backoff, and connect, disconnect and reconnect inside the run, in order.
    fn check_times(&self, c: &mut Checks<'_>, i: usize) {
        let at = |f: &str| format!("client[{i}].{f}");
        let r = &self.reconnect;
        if r.min_backoff < Duration::from_millis(1) {
            c.fail(at("reconnect.min_backoff"), "must be at least 1ms");
        } else if r.min_backoff > r.max_backoff {
            c.fail(
                at("reconnect.max_backoff"),
                format!(
                    "{} is below min_backoff {}",
                    d(r.max_backoff),
                    d(r.min_backoff)
                ),
            );
        }
        c.within_run(&at("connect_at"), self.connect_at);
        if let Some(off) = self.disconnect_at {
            c.within_run(&at("disconnect_at"), off);
            if off <= self.connect_at {
                c.fail(
                    at("disconnect_at"),
                    format!("{} is not after connect_at {}", d(off), d(self.connect_at)),
                );
            }
        }
        if self.reconnect_clean_start.is_some() && self.reconnect_at.is_none() {
            c.fail(
                at("reconnect_clean_start"),
                "reconnect_clean_start needs a reconnect_at",
            );
        }
        match (self.disconnect_at, self.reconnect_at) {
            (None, Some(_)) => c.fail(
                at("reconnect_at"),
                "reconnect_at needs a disconnect_at before it",
            ),
            (Some(off), Some(on)) => {
                c.within_run(&at("reconnect_at"), on);
                if on <= off {
                    c.fail(
                        at("reconnect_at"),
                        format!("{} is not after disconnect_at {}", d(on), d(off)),
                    );
                }
            }
            _ => {}
        }
    }
}

impl SubscriptionConfig {
    /// Checks one subscription (`base`, like `client[0].subscribe[1]`) given the ones before it.
    fn check(&self, c: &mut Checks<'_>, base: &str, earlier: &[SubscriptionConfig], v5: bool) {
        let f = |name: &str| format!("{base}.{name}");
        if let Err(reason) = check_topic_filter(&self.filter) {
            c.fail(f("filter"), reason);
        } else if earlier.iter().any(|o| o.filter == self.filter) {
            c.fail(
                f("filter"),
                format!("filter {:?} is subscribed twice", self.filter),
            );
        }
        if self.filter.starts_with("$share/") {
            if !v5 {
                c.fail(
                    f("filter"),
                    "shared subscriptions ($share/<group>/<filter>) are MQTT 5.0 only",
                );
            } else if self.no_local {
                c.fail(
                    f("no_local"),
                    "no_local on a shared subscription is a protocol error [MQTT-3.8.3-4]",
                );
            }
        }
        if !v5 && (self.no_local || self.retain_as_published || self.retain_handling != 0) {
            c.fail(
                base,
                "no_local, retain_as_published and retain_handling are MQTT 5.0 only",
            );
        }
        if let Some(id) = self.id {
            if !v5 {
                c.fail(f("id"), "subscription identifiers are MQTT 5.0 only");
            } else if !(1..=varint::MAX).contains(&id) {
                c.fail(
                    f("id"),
                    format!("must be 1 to {} (section 3.8.2.1.2), got {id}", varint::MAX),
                );
            }
        }
        if self.retain_handling > 2 {
            c.fail(
                f("retain_handling"),
                format!("must be 0, 1 or 2, got {}", self.retain_handling),
            );
        }
    }
}
