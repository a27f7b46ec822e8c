//! Authentication and authorization: who may connect, publish, subscribe and receive.
//!
//! The shell loads the password file and the ACL (see docs/auth.md) into an [`Auth`] and
//! hands it to the core with [`Broker::with_auth`]; the core reads no files and draws no random
//! numbers (verifying an Argon2 hash needs none). The core consults it at four points:
//!
//! | where | check | refused as |
//! | --- | --- | --- |
//! | CONNECT | user name and password; anonymous clients if `allow_anonymous`; the will topic is writable | CONNACK 0x04 / 0x05 (3.1.1), 0x86 / 0x87 (5.0); no session is created or touched |
//! | PUBLISH | the topic is writable | 3.1.1: acknowledged as usual and dropped ([MQTT-3.3.5-2]); 5.0: PUBACK / PUBREC 0x87 |
//! | SUBSCRIBE | the filter can match a readable topic | its SUBACK slot 0x80 (3.1.1) / 0x87 (5.0) |
//! | delivery | the topic is readable by the receiving session | the message is not offered to it |
//!
//! A connection the shell authenticated itself (a verified TLS client certificate whose name is
//! the user name, [`BrokerCore::handle_accept_as`](super::BrokerCore::handle_accept_as)) is that
//! user: its CONNECT's user name and password are not looked at.
//!
//! A client that gives a user name while no password file is configured cannot be verified: it is
//! treated as anonymous (refused when `allow_anonymous` is off; `user` sections and `%u` do not
//! apply to it). Without an ACL every authenticated client may do everything.
//!
//! The user name of a session is remembered while the session lives, and kept in the durable
//! state with it: a session restored after a broker restart is judged under the same user name
//! before its client connects again.
//!
//! Not here: file formats (`password.rs`, `acl.rs`), reading files (the command line), enhanced
//! authentication (AUTH packets).

pub mod acl;
pub mod password;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::codec::{Ack, Connect, Packet, Publish, QoS, ReasonCode};

use super::{Broker, ConnId};

pub use acl::{Access, Acl, Who};
pub use password::{HashCost, PasswordFile};

/// A line of a password or ACL file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct FileError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl FileError {
    pub fn new(file: &str, line: usize, message: String) -> FileError {
        FileError {
            file: file.to_owned(),
            line,
            message,
        }
    }
}

/// What the broker checks clients against. The default checks nothing beyond
/// `BrokerConfig::allow_anonymous`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Users allowed to log in with a password; `None`: no password file.
    pub passwords: Option<PasswordFile>,
    /// Who may publish and receive what; `None`: everything is allowed.
    pub acl: Option<Acl>,
}

/// Counters of what authentication and authorization refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// CONNECTs refused (credentials, anonymous, will topic).
    pub connects_refused: u64,
    /// PUBLISH packets whose topic the client may not write.
    pub publishes_denied: u64,
    /// Subscription filters refused.
    pub subscriptions_denied: u64,
    /// Messages not offered to a matching session that may not read them.
    pub deliveries_withheld: u64,
}

/// The broker's authorization state: the rules and the verified user name of each session.
#[derive(Debug, Default)]
pub(crate) struct Authorizer {
    auth: Auth,
    /// Client id → verified user name, for the sessions that connected with one since start
    /// (an anonymous session has no entry).
    users: BTreeMap<String, String>,
    stats: AuthStats,
}

impl Authorizer {
    /// The verified user name of the session `client_id`, if it has one.
    pub(crate) fn user_of(&self, client_id: &str) -> Option<String> {
        self.users.get(client_id).cloned()
    }
}

impl Broker {
    /// Checks clients against `auth` from now on.
    pub fn with_auth(mut self, auth: Auth) -> Broker {
        self.auth.auth = auth;
        self
    }

    pub fn auth_stats(&self) -> AuthStats {
        self.auth.stats
    }

    fn who<'a>(&'a self, client_id: &'a str) -> Who<'a> {
        Who {
            user: self.auth.users.get(client_id).map(String::as_str),
            client_id,
        }
    }

    /// CONNECT: the verified user name (`None` for anonymous), or the CONNACK code refusing it.
    /// A connection the shell authenticated (`identity`) is that user, whatever it sends.
    pub(super) fn authenticate(
        &mut self,
        c: &Connect,
        client_id: &str,
        identity: Option<&str>,
    ) -> Result<Option<String>, ReasonCode> {
        let credentials = match identity {
            Some(user) => Ok(Some(user.to_owned())),
            None => self.check_credentials(c),
        };
        let result = credentials.and_then(|user| {
            let who = Who {
                user: user.as_deref(),
                client_id,
            };
            match (&c.will, &self.auth.auth.acl) {
                (Some(will), Some(acl)) if !acl.may_write(who, &will.topic) => {
                    tracing::info!(client_id, topic = %will.topic, "CONNECT refused: will topic not writable");
                    Err(ReasonCode::NotAuthorized)
                }
                _ => Ok(user),
            }
        });
        if result.is_err() {
            self.auth.stats.connects_refused += 1;
        }
        result
    }

    fn check_credentials(&self, c: &Connect) -> Result<Option<String>, ReasonCode> {
        let anonymous = || {
            if self.config.allow_anonymous {
                Ok(None)
            } else {
                tracing::info!(client_id = %c.client_id, "CONNECT refused: anonymous access is off");
                Err(ReasonCode::NotAuthorized)
            }
        };
        let Some(passwords) = &self.auth.auth.passwords else {
            // Nothing to verify a user name against.
            return anonymous();
        };
        match (&c.username, &c.password) {
            (None, None) => anonymous(),
            (Some(user), Some(password)) if passwords.verify(user, password) => {
                Ok(Some(user.clone()))
            }
            (user, _) => {
                tracing::info!(client_id = %c.client_id, user = ?user, "CONNECT refused: bad user name or password");
                Err(ReasonCode::BadUserNameOrPassword)
            }
        }
    }

    /// Remembers the verified user name of the session `client_id` (CONNECT accepted).
    pub(super) fn auth_attach(&mut self, client_id: &str, user: Option<String>) {
        match user {
            Some(user) => {
                self.auth.users.insert(client_id.to_owned(), user);
            }
            None => {
                self.auth.users.remove(client_id);
            }
        }
        if let Some(s) = self.sessions.get_mut(client_id) {
            s.marks.row = true;
        }
        // Bounded: names of sessions that ended are dropped in batches.
        if self.auth.users.len() > self.sessions.len() + 64 {
            let sessions = &self.sessions;
            self.auth.users.retain(|id, _| sessions.contains_key(id));
        }
    }

    /// The user names of `sessions` (those authenticated with one), for the durable state.
    pub(super) fn durable_users<V>(
        &self,
        sessions: &BTreeMap<String, V>,
    ) -> BTreeMap<String, String> {
        self.auth
            .users
            .iter()
            .filter(|(id, _)| sessions.contains_key(*id))
            .map(|(id, user)| (id.clone(), user.clone()))
            .collect()
    }

    /// Restores the user names of restored sessions (`DurableState::users`).
    pub(super) fn restore_users(&mut self, users: BTreeMap<String, String>) {
        for (id, user) in users {
            if self.sessions.contains_key(&id) {
                self.auth.users.insert(id, user);
            }
        }
    }

    /// SUBSCRIBE: may `client_id` subscribe to `filter`? Counts a refusal.
    pub(super) fn may_subscribe(&mut self, client_id: &str, filter: &str) -> bool {
        let allowed = self
            .auth
            .auth
            .acl
            .as_ref()
            .is_none_or(|acl| acl.may_subscribe(self.who(client_id), filter));
        if !allowed {
            self.auth.stats.subscriptions_denied += 1;
            tracing::info!(client_id, filter, "subscription not authorized");
        }
        allowed
    }

    /// Delivery: may the session `client_id` receive a message on `topic`? Counts a refusal.
    pub(super) fn may_read(&mut self, client_id: &str, topic: &str) -> bool {
        let allowed = self
            .auth
            .auth
            .acl
            .as_ref()
            .is_none_or(|acl| acl.may_read(self.who(client_id), topic));
        if !allowed {
            self.auth.stats.deliveries_withheld += 1;
            tracing::debug!(
                client_id,
                topic,
                "delivery withheld: not authorized to read"
            );
        }
        allowed
    }

    /// PUBLISH: true if `client_id` may not publish `p`, after answering it as its protocol
    /// wants (3.1.1: the usual PUBACK / PUBREC, the message dropped; 5.0: reason 0x87).
    pub(super) fn publish_denied(&mut self, conn: ConnId, client_id: &str, p: &Publish) -> bool {
        let allowed = self
            .auth
            .auth
            .acl
            .as_ref()
            .is_none_or(|acl| acl.may_write(self.who(client_id), &p.topic));
        if allowed {
            return false;
        }
        self.auth.stats.publishes_denied += 1;
        tracing::info!(client_id, topic = %p.topic, "publish not authorized: dropped");
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let mut ack = Ack::new(p.pkid);
        if v5 {
            ack.reason = ReasonCode::NotAuthorized;
        }
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(conn, Packet::PubAck(ack)),
            QoS::ExactlyOnce => self.send(conn, Packet::PubRec(ack)),
        }
        true
    }
}
