//! CONNECT: client identifier rules, keep-alive limit, session limit, takeover of a connected
//! client id, clean start or resumption, CONNACK (with the session-present flag), and the resend
//! of what was in flight when the session resumes.
//!
//! A 5.0 CONNECT with an authentication method is refused with 0x8C (bad authentication
//! method): no enhanced authentication method is supported ([MQTT-4.12.0-1]). Credentials and
//! the will topic are checked by `auth/` before any session is touched.
//!
//! Not here: session expiry timers and will delay (`expiry.rs`).

use std::time::Instant;

use crate::codec::alias::InboundAliases;
use crate::codec::topic::TopicRefusal;
use crate::codec::{ConnAck, Connect, LastWill, Packet, Properties, Protocol, ReasonCode};

use super::close::{Ending, Violation};
use super::session::Session;
use super::{Broker, ConnId, Phase, StorageHealth, keepalive};
use crate::codec::MAX_PACKET_SIZE;

/// MQTT 3.1 allows client identifiers of 1 to 23 characters.
const V3_1_MAX_CLIENT_ID: usize = 23;

impl Broker {
    pub(super) fn handle_connect(
        &mut self,
        now: Instant,
        conn: ConnId,
        c: Connect,
    ) -> Result<(), Violation> {
        let protocol = c.protocol;
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.protocol = protocol;
            if protocol.is_v5() {
                entry.aliases_in = InboundAliases::new(self.config.topic_alias_maximum);
            }
        }
        if protocol.is_v5() && c.properties.authentication_method.is_some() {
            return self.refuse(now, conn, ReasonCode::BadAuthenticationMethod);
        }
        self.check_will_topic(&c)?;

        let (client_id, assigned) = match self.client_id_for(&c) {
            Ok(ids) => ids,
            Err(code) => return self.refuse(now, conn, code),
        };
        // A session or will whose time has come is dealt with before this CONNECT is judged,
        // however late the shell calls `handle_timeout` (a paused or just restarted broker).
        self.fire_expiry_timers();
        let identity = self.conns.get(&conn).and_then(|e| e.identity.clone());
        let user = match self.authenticate(&c, &client_id, identity.as_deref().map(String::as_str))
        {
            Ok(user) => user,
            Err(code) => return self.refuse(now, conn, code),
        };

        let (keep_alive, server_keep_alive) = match self.keep_alive_for(&c) {
            Ok(k) => k,
            Err(code) => return self.refuse(now, conn, code),
        };

        if let Some(code) = self.session_limit_refusal(&client_id, protocol) {
            return self.refuse(now, conn, code);
        }
        if let Some(code) = self.storage_refusal(&client_id, &c) {
            return self.refuse(now, conn, code);
        }

        // [MQTT-3.1.4-3] Takeover: the existing connection of this client id is closed (its
        // will is published).
        if let Some(old) = self.sessions.conn_of(&client_id) {
            tracing::debug!(client_id, old, new = conn, "session taken over");
            self.end_connection(now, old, Ending::TakenOver);
        }

        let (session_present, expiry) = self.open_session(&client_id, &c);
        let asked = asked_expiry(&c);

        self.attach_connection(
            conn,
            &client_id,
            keep_alive,
            c.will.map(|w| *w),
            &c.properties,
        );
        if let Some(entry) = self.conns.get_mut(&conn) {
            entry.clean_start = c.clean_start;
        }
        self.attach(&client_id, conn);
        self.auth_attach(&client_id, user);
        self.deadlines
            .set(conn, keepalive::grace(keep_alive).map(|g| now + g));

        let mut properties = Properties::default();
        if protocol.is_v5() {
            properties = self.connack_properties(&c.properties);
            properties.assigned_client_identifier = assigned;
            properties.server_keep_alive = server_keep_alive;
            if expiry != asked {
                properties.session_expiry_interval = Some(expiry);
            }
        }
        self.send(
            conn,
            Packet::ConnAck(ConnAck {
                session_present,
                reason: ReasonCode::Success,
                properties,
            }),
        );

        // [MQTT-4.4.0-1] Resend what was in flight, in order, then the queue.
        if session_present {
            self.resume_session(&client_id);
        }
        Ok(())
    }

    /// Attaches `client_id`'s session, which exists and is attached to no connection, to `conn`.
    fn attach(&mut self, client_id: &str, conn: ConnId) {
        match self.sessions.set_conn(client_id, Some(conn)) {
            Some(None) => {}
            Some(Some(old)) => panic!("{client_id:?} attached to {conn} while on {old}"),
            None => panic!("{client_id:?} attached without a session"),
        }
        self.online += 1;
        self.count_connected();
    }

    /// The connection now carries `client_id`'s session: its keep-alive, will and the limits
    /// its CONNECT asked for (`asked`: its properties).
    fn attach_connection(
        &mut self,
        conn: ConnId,
        client_id: &str,
        keep_alive: u16,
        will: Option<LastWill>,
        asked: &Properties,
    ) {
        let entry = self
            .conns
            .get_mut(&conn)
            .expect("connection checked by the dispatcher");
        entry.phase = Phase::Connected {
            client_id: self
                .sessions
                .client_id(client_id)
                .expect("the session was opened"),
        };
        entry.keep_alive = keep_alive;
        entry.will = will.map(Box::new);
        entry.receive_maximum = asked.receive_maximum.unwrap_or(u16::MAX).max(1);
        if entry.protocol.is_v5() {
            let out = &mut entry.outbound;
            if let Some(max) = asked.maximum_packet_size {
                out.max_packet_size = max;
            }
            out.problem_information = asked.request_problem_information != Some(0);
            out.aliases.reset(
                asked
                    .topic_alias_maximum
                    .unwrap_or(0)
                    .min(self.config.max_outbound_topic_aliases),
            );
        }
    }

    /// The will topic must be a valid topic name within the limits.
    fn check_will_topic(&self, c: &Connect) -> Result<(), Violation> {
        let Some(will) = &c.will else {
            return Ok(());
        };
        self.topic_limits()
            .check_name(&will.topic)
            .map_err(|e| match e {
                TopicRefusal::Invalid(_) => {
                    Violation::new(ReasonCode::TopicNameInvalid, "invalid will topic")
                }
                TopicRefusal::BeyondLimits => {
                    Violation::new(ReasonCode::TopicNameInvalid, "will topic beyond limits")
                }
            })
    }

    /// The refusal a new session meets when `max_sessions` sessions exist already.
    fn session_limit_refusal(&self, client_id: &str, protocol: Protocol) -> Option<ReasonCode> {
        if self.sessions.contains_key(client_id) || self.sessions.len() < self.config.max_sessions {
            return None;
        }
        tracing::warn!(
            client_id,
            max = self.config.max_sessions,
            "CONNECT refused: session limit"
        );
        Some(if protocol.is_v5() {
            ReasonCode::ServerBusy
        } else {
            ReasonCode::ServerUnavailable
        })
    }

    /// The refusal of a CONNECT the store cannot take (`storage.rs`): any while it failed, one
    /// creating a persistent session while it is over its size limit.
    fn storage_refusal(&self, client_id: &str, c: &Connect) -> Option<ReasonCode> {
        let creates = (c.clean_start || !self.sessions.contains_key(client_id))
            && asked_expiry(c).min(self.config.max_session_expiry) != 0;
        let refused = match self.storage {
            StorageHealth::Ok => false,
            StorageHealth::OverQuota => creates,
            StorageHealth::Failed { .. } => true,
        };
        if !refused {
            return None;
        }
        tracing::warn!(client_id, health = ?self.storage, "CONNECT refused: storage");
        self.storage.connack_refusal(c.protocol)
    }

    /// The client identifier of `c` ([MQTT-3.1.3-6..9]) and, when the broker assigned it, the
    /// same again for CONNACK; `Err` is the refusal's reason.
    fn client_id_for(&mut self, c: &Connect) -> Result<(String, Option<String>), ReasonCode> {
        if c.client_id.is_empty() {
            if !c.clean_start || c.protocol == Protocol::V3_1 {
                // [MQTT-3.1.3-8] An empty id without clean session is refused (0x02 / 0x85).
                return Err(ReasonCode::ClientIdentifierNotValid);
            }
            let id = self.assign_client_id();
            return Ok((id.clone(), Some(id)));
        }
        let max = if c.protocol == Protocol::V3_1 {
            V3_1_MAX_CLIENT_ID
        } else {
            self.config.max_client_id_len
        };
        if c.client_id.len() > max {
            return Err(ReasonCode::ClientIdentifierNotValid);
        }
        Ok((c.client_id.clone(), None))
    }

    /// The keep-alive within `max_keep_alive`: (the one in force, the Server Keep Alive to
    /// announce). 5.0 gets the maximum announced; 3.1.1 cannot be told and is refused.
    fn keep_alive_for(&self, c: &Connect) -> Result<(u16, Option<u16>), ReasonCode> {
        let max = self.config.max_keep_alive;
        if max == u16::MAX || (c.keep_alive != 0 && c.keep_alive <= max) {
            return Ok((c.keep_alive, None));
        }
        if c.protocol.is_v5() {
            Ok((max, Some(max)))
        } else {
            Err(ReasonCode::ClientIdentifierNotValid)
        }
    }

    /// Starts or resumes the session of `client_id` for `c`: (session present, the expiry
    /// interval granted).
    fn open_session(&mut self, client_id: &str, c: &Connect) -> (bool, u32) {
        // [MQTT-3.1.2-6] Clean start discards any existing session (a delayed will is
        // published now, as the session ends).
        if c.clean_start {
            self.end_session(client_id);
        }
        let expiry = asked_expiry(c).min(self.config.max_session_expiry);
        // [MQTT-3.2.2-2] [MQTT-3.2.2-3] Session present iff a session is resumed.
        let session_present = self.sessions.contains_key(client_id);
        let session = self
            .sessions
            .get_or_insert_with(client_id, || Session::new(expiry));
        session.expiry_interval = expiry;
        session.marks.row = true;
        self.resumed(client_id);
        (session_present, expiry)
    }

    /// The 5.0 CONNACK properties that follow from the configuration and what CONNECT asked.
    fn connack_properties(&self, asked: &Properties) -> Properties {
        let mut properties = Properties::default();
        if self.config.receive_maximum < u16::MAX {
            properties.receive_maximum = Some(self.config.receive_maximum);
        }
        if self.config.max_packet_size < MAX_PACKET_SIZE {
            properties.maximum_packet_size = Some(self.config.max_packet_size);
        }
        if !self.config.shared_subscriptions {
            properties.shared_subscription_available = Some(0);
        }
        if self.config.topic_alias_maximum > 0 {
            properties.topic_alias_maximum = Some(self.config.topic_alias_maximum);
        }
        if asked.request_response_information == Some(1) {
            properties.response_information = self.config.response_information.clone();
        }
        properties
    }

    /// Answers CONNECT with a refusing CONNACK (session present 0, [MQTT-3.2.2-4]) and closes
    /// ([MQTT-3.2.2-5]).
    fn refuse(&mut self, now: Instant, conn: ConnId, reason: ReasonCode) -> Result<(), Violation> {
        tracing::info!(conn, ?reason, "CONNECT refused");
        self.send(
            conn,
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason,
                properties: Properties::default(),
            }),
        );
        self.end_connection(now, conn, Ending::Refused(reason));
        Ok(())
    }

    /// A fresh client identifier that names no session. Bounded: at most one try per session.
    fn assign_client_id(&mut self) -> String {
        loop {
            let id = format!("mqtt-lab-{}", self.next_assigned);
            self.next_assigned += 1;
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The session expiry interval CONNECT asks for: 5.0 says it (0 when absent); 3.1.1 has a
/// session for ever or, with clean session, none.
fn asked_expiry(c: &Connect) -> u32 {
    match c.protocol {
        Protocol::V5 => c.properties.session_expiry_interval.unwrap_or(0),
        Protocol::V3_1 | Protocol::V3_1_1 => {
            if c.clean_start {
                0
            } else {
                u32::MAX
            }
        }
    }
}
