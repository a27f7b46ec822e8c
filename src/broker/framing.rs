//! Bytes to packets for `handle_bytes`.

use std::time::Instant;

use crate::codec::ReasonCode;

use super::close::{Ending, Violation};
use super::{Broker, ConnId};

impl Broker {
    pub(super) fn feed_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        if bytes.is_empty() || !self.conns.contains_key(&conn) {
            return;
        }
        let v = Violation::new(ReasonCode::ImplementationSpecificError, "no decoder");
        self.end_connection(now, conn, Ending::Violation(v));
    }
}
