//! The `[broker]` section: persistence, limits, users and ACL of the one broker node. Every
//! field has a default, so the section may be left out. Not here: how the broker enforces
//! them.

use serde::Deserialize;

/// What survives a broker crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing survives: sessions, subscriptions, inflight and queued messages and retained
    /// messages are lost with the process (the default).
    #[default]
    None,
    /// Sessions, subscriptions, inflight and queued messages and retained messages survive a
    /// crash, as a store outside the node's memory would keep them.
    Durable,
}

/// What the broker does when a session's queue of messages for an offline (or slow) client
/// is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The new message is dropped (the default; mosquitto's behaviour).
    #[default]
    DropNewest,
    /// The oldest queued message is dropped to make room.
    DropOldest,
}

/// `[broker]`: settings of the broker node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// What survives a broker crash. Default `"none"`.
    pub persistence: Persistence,
    /// QoS 1 and 2 messages in flight towards one client at a time (5.0: the broker's
    /// Receive Maximum as well). Default 20.
    pub max_inflight: u16,
    /// Messages queued per session beyond the inflight window. Default 1000.
    pub max_queued: usize,
    /// What happens when a queue is full. Default `"drop_newest"`.
    pub queue_overflow: OverflowPolicy,
    /// Largest packet accepted, in bytes. Default 1,048,576 (1 MiB).
    pub max_packet_size: u32,
    /// Retained messages kept at most. Default 10,000.
    pub max_retained: usize,
    /// Sessions (connected or not) kept at most. Default 1,000.
    pub max_sessions: usize,
    /// Upper bound on a 5.0 Session Expiry Interval the broker accepts (a longer request is
    /// cut to this). Default: none (`"never"` is honoured).
    #[serde(deserialize_with = "super::duration::de_opt_duration")]
    pub max_session_expiry: Option<std::time::Duration>,
    /// Connections open at once; one more is closed right after it is accepted. Default
    /// 10,000.
    pub max_connections: usize,
    /// Subscriptions per session; a filter beyond it is refused in SUBACK. Default 1,000.
    pub max_subscriptions: usize,
    /// Longest topic name or filter, in bytes (1 to 65535). Default 65535.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter. Default 128.
    pub max_topic_levels: usize,
    /// Payload bytes queued per session; a message beyond it is dropped. Default 64 MiB.
    pub max_queued_bytes: usize,
    /// Time allowed between accepting a connection and receiving its CONNECT. Default
    /// `"10s"`.
    #[serde(deserialize_with = "super::duration::de_duration")]
    pub connect_timeout: std::time::Duration,
    /// Whether clients without a user name may connect. Default `true`.
    pub allow_anonymous: bool,
    /// Users allowed to log in with a password. Default: none (no password file: a client
    /// giving a user name is treated as anonymous).
    pub users: Vec<UserConfig>,
    /// Access control rules, in the syntax of the broker's ACL file. Default: none
    /// (everything is allowed).
    pub acl: Option<String>,
}

/// `users = [{ name = "alice", password = "..." }]`: one user of the password file. The
/// password is plain text: a scenario is a test fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
}

impl BrokerConfig {
    /// Whether the scenario configures authentication or authorization at all.
    pub fn has_auth(&self) -> bool {
        !self.allow_anonymous || !self.users.is_empty() || self.acl.is_some()
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            persistence: Persistence::None,
            max_inflight: 20,
            max_queued: 1000,
            queue_overflow: OverflowPolicy::DropNewest,
            max_packet_size: 1_048_576,
            max_retained: 10_000,
            max_sessions: 1_000,
            max_session_expiry: None,
            max_connections: 10_000,
            max_subscriptions: 1_000,
            max_topic_length: 65_535,
            max_topic_levels: 128,
            max_queued_bytes: 64 * 1024 * 1024,
            connect_timeout: std::time::Duration::from_secs(10),
            allow_anonymous: true,
            users: Vec::new(),
            acl: None,
        }
    }
}

/// The broker's [`Auth`](crate::broker::auth::Auth) for `[broker]`: a password file with
/// each user's password hashed at the cheapest Argon2 cost (a fixture, never a real password;
/// the salt is derived from the user name so the same scenario gives the same hashes), and
/// the parsed ACL. Built once when the scenario is loaded, not per seed. `None` when the
/// section configures no authentication.
pub(crate) fn broker_auth(
    b: &BrokerConfig,
) -> Result<crate::broker::auth::Auth, crate::broker::auth::FileError> {
    use crate::broker::auth::password::{SALT_LEN, hash_password};
    use crate::broker::auth::{Acl, Auth, HashCost, PasswordFile};
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
    let acl = match &b.acl {
        Some(text) => Some(Acl::parse("acl", text)?),
        None => None,
    };
    Ok(Auth { passwords, acl })
}
