//! The MQTT 3.1.1 and 5.0 wire format, sans-IO: no sockets, no clock.

pub mod types;

pub use types::*;
