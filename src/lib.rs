//! mqtt-lab: an MQTT 3.1.1 and 5.0 broker and client, and the deterministic simulation lab that
//! judges them under faults.
//!
//! - [`config`]: configuration files as text: the duration grammar, every problem at once.
//! - [`codec`]: the wire format (sans-IO).
//! - [`broker`]: the broker core (sans-IO: events in with `now`, actions out).
//! - [`client`]: the client core (sans-IO).
//! - [`net`]: the one async shell on `tokio` (madsim-tokio), real or simulated TCP.
//! - [`scenario`]: scenario files.
//! - [`sim`]: the simulated world and the per-seed runner.
//! - [`check`]: the checkers, pure functions of a trace.
//! - [`trace`]: what clients and the network observed during a run.

pub mod broker;
pub mod check;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod net;
pub mod scenario;
pub mod sim;
pub mod trace;
