//! How a connection ends: the one place that decides, for every reason a connection can end,
//! whether the will is published, whether a 5.0 client first gets a DISCONNECT with a reason
//! code, whether the shell is asked to close, and what happens to the session.
//!
//! | ending | will | 5.0 DISCONNECT first | `Close` action |
//! | --- | --- | --- | --- |
//! | client DISCONNECT (0x00) | discarded | no | `ClientDisconnect` |
//! | client DISCONNECT 0x04 (5.0) | published | no | `ClientDisconnect` |
//! | closed by the peer / IO error / locally | published | no | none (already closed) |
//! | keep-alive timeout | published | 0x8D | `KeepAliveTimeout` |
//! | session taken over | published | 0x8E | `SessionTakenOver` |
//! | protocol violation, malformed bytes | published | its code | `ProtocolViolation` |
//! | CONNECT timeout, CONNECT refused | (none yet) | no | `ConnectTimeout` / `ConnectRefused` |
//! | the store failed (`storage.rs`) | published | 0x97 (disk full) or 0x80 | `StorageFailed` |
//!
//! A 5.0 will with a will delay interval waits (`expiry.rs`) if the session outlives the
//! connection. A session with expiry interval 0 ends with its connection (a waiting will is then
//! published at once); others stay offline and their expiry timer starts. The DISCONNECT sent
//! to a 5.0 client carries what happened as its reason string (unless the client asked for no
//! problem information).

use std::time::Instant;

use crate::codec::{Disconnect, Packet, Properties, PropertySet, ReasonCode};

use super::{Action, Broker, CloseCause, CloseReason, ConnId, Phase};

/// A peer mistake that ends its connection: the reason code and what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    pub reason: ReasonCode,
    pub detail: &'static str,
}

impl Violation {
    pub fn new(reason: ReasonCode, detail: &'static str) -> Violation {
        Violation { reason, detail }
    }

    /// A protocol error (0x82).
    pub fn protocol(detail: &'static str) -> Violation {
        Violation::new(ReasonCode::ProtocolError, detail)
    }
}

/// Every way a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The client sent DISCONNECT; `will` is true for 5.0 reason 0x04.
    ClientDisconnect {
        will: bool,
    },
    /// The shell saw the connection end.
    Closed(CloseCause),
    ConnectTimeout,
    KeepAliveTimeout,
    TakenOver,
    Violation(Violation),
    /// CONNECT was refused with this code (the CONNACK is already queued).
    Refused(ReasonCode),
    /// The store failed; `full`: the disk is full.
    StorageFailed {
        full: bool,
    },
}

impl Ending {
    /// [MQTT-3.1.2-8] The will is published on every close not caused by a DISCONNECT;
    /// [MQTT-3.1.2-10] a DISCONNECT discards it (5.0: unless its reason is 0x04).
    fn publishes_will(self) -> bool {
        match self {
            Ending::ClientDisconnect { will } => will,
            _ => true,
        }
    }

    /// The reason code a connected 5.0 client is told in a DISCONNECT before the close.
    fn disconnect_code(self) -> Option<ReasonCode> {
        match self {
            Ending::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
            Ending::TakenOver => Some(ReasonCode::SessionTakenOver),
            Ending::Violation(v) => Some(v.reason),
            Ending::StorageFailed { full } => Some(storage_code(full)),
            _ => None,
        }
    }

    /// What the shell is asked to do; `None` when the shell itself reported the close.
    fn close_reason(self) -> Option<CloseReason> {
        Some(match self {
            Ending::ClientDisconnect { .. } => CloseReason::ClientDisconnect,
            Ending::Closed(_) => return None,
            Ending::ConnectTimeout => CloseReason::ConnectTimeout,
            Ending::KeepAliveTimeout => CloseReason::KeepAliveTimeout,
            Ending::TakenOver => CloseReason::SessionTakenOver,
            Ending::Violation(v) => CloseReason::ProtocolViolation(v.reason),
            Ending::Refused(code) => CloseReason::ConnectRefused(code),
            Ending::StorageFailed { full } => CloseReason::StorageFailed(storage_code(full)),
        })
    }
}

/// The reason code of a connection ended by a failed store.
fn storage_code(full: bool) -> ReasonCode {
    if full {
        ReasonCode::QuotaExceeded
    } else {
        ReasonCode::UnspecifiedError
    }
}

impl Broker {
    /// Ends `conn` as `ending` says (see the module table). Unknown connections are ignored.
    pub(super) fn end_connection(&mut self, _now: Instant, conn: ConnId, ending: Ending) {
        if let Some(reason) = ending.disconnect_code()
            && self.is_v5(conn)
            && self
                .conns
                .get(&conn)
                .is_some_and(|c| matches!(c.phase, Phase::Connected { .. }))
        {
            let detail = match ending {
                Ending::Violation(v) => v.detail,
                Ending::KeepAliveTimeout => "keep-alive timeout",
                Ending::TakenOver => "session taken over by another connection",
                Ending::StorageFailed { full: true } => "storage full",
                Ending::StorageFailed { full: false } => "storage failed",
                _ => "",
            };
            let properties = Properties::from(PropertySet {
                reason_string: (!detail.is_empty()).then(|| detail.to_owned()),
                ..PropertySet::default()
            });
            self.send(conn, Packet::Disconnect(Disconnect { reason, properties }));
        }
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.deadlines.remove(&conn);
        match ending {
            Ending::Violation(v) => {
                tracing::info!(conn, reason = ?v.reason, detail = v.detail, "closing connection: protocol violation")
            }
            _ => tracing::debug!(conn, ?ending, "connection ends"),
        }
        if let Phase::Connected { client_id } = c.phase {
            let attached = self.detach(&client_id, conn);
            let ends_session = self
                .sessions
                .get(&client_id)
                .is_some_and(|s| !s.is_persistent());
            if ending.publishes_will()
                && let Some(will) = c.will.map(|w| *w)
            {
                let delay = if c.protocol.is_v5() {
                    will.properties.will_delay_interval.unwrap_or(0)
                } else {
                    0
                };
                if delay > 0 && !ends_session && attached {
                    self.delay_will(&client_id, will, delay);
                } else {
                    self.publish_will(&client_id, will);
                }
            }
            if ends_session {
                self.end_session(&client_id);
            } else if attached {
                self.start_session_expiry(&client_id);
            }
        }
        if let Some(reason) = ending.close_reason() {
            self.actions.push_back(Action::Close { conn, reason });
        }
    }

    /// Detaches `client_id`'s session from `conn`, freeing the room of its message traffic if
    /// it holds none. `false`: it was not attached to `conn` (it was taken over, or the
    /// connection never carried it).
    fn detach(&mut self, client_id: &str, conn: ConnId) -> bool {
        if self.sessions.conn_of(client_id) != Some(conn) {
            return false;
        }
        self.sessions.set_conn(client_id, None);
        self.sessions.trim(client_id);
        self.online -= 1;
        true
    }

    /// Forgets a session and its subscriptions; what it held from shared subscriptions and
    /// had not completed goes to other members of each group (`shared.rs`), except QoS 2
    /// messages already sent to it (`Session::take_shared`). Use `end_session`,
    /// which also publishes a delayed will.
    pub(super) fn discard_session(&mut self, client_id: &str) {
        if let Some(mut s) = self.sessions.remove(client_id) {
            assert!(
                s.conn.0.get().is_none(),
                "{client_id:?}: session discarded while attached"
            );
            for filter in s.subscriptions.keys() {
                self.subs.remove(filter, client_id);
            }
            for d in s.take_shared() {
                self.redistribute(client_id, d);
            }
            for filter in s.subscriptions.keys() {
                if self.share_cursors.contains_key(filter)
                    && self.subs.share_members(filter).is_empty()
                {
                    self.share_cursors.remove(filter);
                }
            }
        }
    }
}
