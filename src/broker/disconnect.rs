//! DISCONNECT from a client: the will is discarded ([MQTT-3.1.2-10]) unless a 5.0 client asks
//! for it with reason 0x04; a 5.0 client may change its session expiry interval, but not from 0
//! to non-zero ([MQTT-3.14.2-2]). The connection is then closed (`close.rs`).

use std::time::Instant;

use crate::codec::{Disconnect, ReasonCode};

use super::close::{Ending, Violation};
use super::{Broker, ConnId};

impl Broker {
    pub(super) fn handle_disconnect(
        &mut self,
        now: Instant,
        conn: ConnId,
        client_id: &str,
        d: Disconnect,
    ) -> Result<(), Violation> {
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        if v5 && let Some(expiry) = d.properties.session_expiry_interval {
            let s = self
                .sessions
                .get_mut(client_id)
                .expect("connected client has a session");
            if s.expiry_interval == 0 && expiry != 0 {
                return Err(Violation::protocol(
                    "session expiry set on DISCONNECT after 0 on CONNECT",
                ));
            }
            s.expiry_interval = expiry.min(self.config.max_session_expiry);
            s.marks.row = true;
        }
        let will = v5 && d.reason == ReasonCode::DisconnectWithWillMessage;
        self.end_connection(now, conn, Ending::ClientDisconnect { will });
        Ok(())
    }
}
