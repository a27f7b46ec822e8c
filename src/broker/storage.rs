//! The health of the store behind the broker, as the shell reports it
//! ([`super::BrokerCore::handle_storage`]), and how the broker refuses what it cannot make
//! durable.
//!
//! - [`StorageHealth::Failed`]: a write or sync failed (or the disk is full). Changes made since
//!   the last durable batch may never reach the disk, and any output could reveal them, so every
//!   connection ends (`close.rs`: the will is published, a 5.0 client first gets
//!   DISCONNECT 0x97 when the disk is full, else 0x80), and every CONNECT is refused (5.0:
//!   CONNACK 0x97 or 0x80; 3.1.1: 0x03 server unavailable) until the shell reports
//!   [`StorageHealth::Ok`] again (it rewrote the whole state into a fresh store).
//! - [`StorageHealth::OverQuota`]: the store passed its soft size limit. The broker refuses new
//!   durable work packet by packet and serves the rest: a new QoS 1/2 PUBLISH is refused (5.0:
//!   PUBACK/PUBREC 0x97, not routed; 3.1.1 has no negative acknowledgement, so the connection
//!   is closed and the publisher resends later), a new subscription of a persistent session is
//!   refused (SUBACK 0x97; 3.1.1: 0x80), and a CONNECT that would create a persistent session is
//!   refused (CONNACK 0x97; 3.1.1: 0x03). Acknowledgements, PUBRELs, unsubscriptions and
//!   resumed sessions shrink the store and are served.
//!
//! Not here: measuring the store, retrying it (the shell).

use crate::codec::{Protocol, ReasonCode};

/// What the shell says about the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageHealth {
    #[default]
    Ok,
    /// Above its soft size limit: new durable work is refused.
    OverQuota,
    /// Writes fail (`full`: the disk is full): nothing is served.
    Failed { full: bool },
}

impl StorageHealth {
    /// The reason code refusing work for this health (5.0), if it refuses any.
    pub(crate) fn refusal(self) -> Option<ReasonCode> {
        match self {
            StorageHealth::Ok => None,
            StorageHealth::OverQuota | StorageHealth::Failed { full: true } => {
                Some(ReasonCode::QuotaExceeded)
            }
            StorageHealth::Failed { full: false } => Some(ReasonCode::UnspecifiedError),
        }
    }

    /// The CONNACK code refusing a CONNECT in `protocol`.
    pub(crate) fn connack_refusal(self, protocol: Protocol) -> Option<ReasonCode> {
        let code = self.refusal()?;
        Some(if protocol.is_v5() {
            code
        } else {
            ReasonCode::ServerUnavailable
        })
    }
}
