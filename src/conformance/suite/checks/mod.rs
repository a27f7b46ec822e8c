//! The checks, one file per part of the specifications. Each check names the statements it
//! judges in each version; a check with none for a version does not run under it.

mod auth;
mod connect;
mod inflight;
mod layout;
mod publish;
mod sender;
mod state;
mod v5;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;

use crate::codec::{self, Packet, Protocol};

use super::Check;
use super::probe::Fault;

/// Every check, group by group.
pub fn all() -> &'static [Check] {
    static ALL: OnceLock<Vec<Check>> = OnceLock::new();
    ALL.get_or_init(|| {
        [
            connect::CHECKS,
            layout::CHECKS,
            publish::CHECKS,
            sender::CHECKS,
            state::CHECKS,
            inflight::CHECKS,
            v5::CHECKS,
            auth::CHECKS,
        ]
        .concat()
    })
}

/// `packet` as our codec writes it for `protocol`.
pub(super) fn bytes_of(packet: &Packet, protocol: Protocol) -> Result<Vec<u8>, Fault> {
    let mut buf = BytesMut::new();
    codec::encode(packet, protocol, &mut buf)
        .map_err(|e| format!("the check could not encode its packet: {e}"))?;
    Ok(buf.to_vec())
}

/// How long a check listens for something that must not come.
pub(super) fn quiet(p: &super::Probe) -> Duration {
    (p.wait / 2).min(Duration::from_millis(750))
}

/// A little longer than `d`: what a check allows for the broker's timer and the network.
pub(super) fn grace(d: Duration) -> Duration {
    d + d / 2 + Duration::from_millis(500)
}
