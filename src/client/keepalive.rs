//! Keep-alive: when to send PINGREQ and when the connection is dead.
//!
//! A PINGREQ is due when nothing was sent for the keep-alive interval ([MQTT-3.1.2-23]) and
//! also when nothing was received for it, so a client that keeps publishing QoS 0 into a
//! half-open connection still notices. After a PINGREQ, if no packet at all arrives within
//! `ping_timeout`, the connection is dead. So a silent broker is detected at most
//! keep-alive + ping_timeout after its last packet. Keep-alive 0 disables all of it.
//!
//! Only the timer arithmetic; sending and closing happen in `mod.rs`.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct KeepAlive {
    interval: Option<Duration>,
    ping_timeout: Duration,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    /// When the outstanding PINGREQ was sent.
    ping_sent: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeepAliveDue {
    Nothing,
    SendPing,
    Dead,
}

impl KeepAlive {
    pub fn new(ping_timeout: Duration) -> KeepAlive {
        KeepAlive {
            interval: None,
            ping_timeout,
            last_sent: None,
            last_received: None,
            ping_sent: None,
        }
    }

    /// Starts timing a connection (at CONNACK) with this keep-alive in seconds.
    pub fn start(&mut self, now: Instant, keep_alive_secs: u16) {
        self.interval = (keep_alive_secs > 0).then(|| Duration::from_secs(keep_alive_secs.into()));
        self.last_sent = Some(now);
        self.last_received = Some(now);
        self.ping_sent = None;
    }

    pub fn stop(&mut self) {
        self.interval = None;
        self.ping_sent = None;
    }

    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
    }

    /// Any packet from the broker answers an outstanding PINGREQ.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = Some(now);
        self.ping_sent = None;
    }

    pub fn on_ping_sent(&mut self, now: Instant) {
        self.ping_sent = Some(now);
        self.last_sent = Some(now);
    }

    pub fn deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        match self.ping_sent {
            Some(at) => Some(at + self.ping_timeout),
            None => {
                let sent = self.last_sent.expect("started");
                let received = self.last_received.expect("started");
                Some(sent.min(received) + interval)
            }
        }
    }

    pub fn poll(&self, now: Instant) -> KeepAliveDue {
        match self.deadline() {
            Some(d) if now >= d => {
                if self.ping_sent.is_some() {
                    KeepAliveDue::Dead
                } else {
                    KeepAliveDue::SendPing
                }
            }
            _ => KeepAliveDue::Nothing,
        }
    }
}
