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
//! - `target` (real-network build): the scenario's clients against a broker we did not write,
//!   through fault proxies, in real time.
//! - [`check`]: the checkers, pure functions of a trace.
//! - [`trace`]: what clients and the network observed during a run.
//! - [`conformance`]: the normative statements of MQTT 3.1.1 and 5.0, as data.

pub mod broker;
pub mod check;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod conformance;
pub mod net;
pub mod scenario;
pub mod sim;
#[cfg(not(madsim))]
pub mod target;
pub mod trace;

/// The pages of the docs as doctest modules: `cargo test --doc` compiles and runs every Rust
/// sample in them (`tests/docs/main.rs` checks the other samples, and that every page with a Rust
/// sample is listed here).
#[cfg(doctest)]
pub mod docs {
    #[doc = include_str!("../README.md")]
    pub mod readme {}
    #[doc = include_str!("../docs/ARCHITECTURE.md")]
    pub mod architecture {}
    #[doc = include_str!("../docs/auth.md")]
    pub mod auth {}
    #[doc = include_str!("../docs/broker.md")]
    pub mod broker {}
    #[doc = include_str!("../docs/checkers.md")]
    pub mod checkers {}
    #[doc = include_str!("../docs/client.md")]
    pub mod client {}
    #[doc = include_str!("../docs/codec.md")]
    pub mod codec {}
    #[doc = include_str!("../docs/conformance.md")]
    pub mod conformance {}
    #[doc = include_str!("../docs/conformance-suite.md")]
    pub mod conformance_suite {}
    #[doc = include_str!("../docs/lab.md")]
    pub mod lab {}
    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/world.md")]
    pub mod world {}
    #[doc = include_str!("../scenarios/README.md")]
    pub mod scenarios {}
}
