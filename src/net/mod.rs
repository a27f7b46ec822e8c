//! The one async shell: runs the sans-IO cores on `tokio` (madsim-tokio), so the same code
//! serves real TCP and, built with `--cfg madsim`, simulated TCP. The only place that reads a
//! clock or touches a socket.
//!
//! - [`server`]: the broker on a set of listeners.
//! - [`client`]: the async client API over the client core.
//! - [`seam`]: per-connection fault injection (cut, black hole, delay, split writes).
//! - [`clock`]: the one timer adapter between real tokio and madsim.
//! - [`persist`]: the state file of the real broker.
//! - [`commit`]: the task that writes batches to the store, off the routing task.
//! - [`durability`]: output commit: what the broker wrote waits until the changes it may depend
//!   on are durable; group commit.
//! - [`store`]: the storage seam (files as redb storage) and the lab's disk that can crash.
//! - `memory`: freed memory handed back to the system after a load peak (real build only).
//! - [`metrics`]: the Prometheus endpoint, serving the core's figures.
//! - [`outbox`]: what the owner task hands a connection's writer; empty, it costs nothing.
//! - [`park`]: quiet plain TCP connections parked without a task, woken by a read or by their
//!   mailbox.
//! - [`throttle`]: backpressure: which connections are not read while a connection they feed
//!   is far behind.
//! - [`transport`]: TLS and WebSockets under MQTT (real network build only).
//! - [`proxy`]: the fault proxy, which puts the stream seam between clients and any broker.
//!
//! Every `select!` here is `biased` (branches polled in written order): tokio's unbiased
//! `select!` draws from a thread-local generator seeded from a process-wide counter, which
//! would make two simulations of one seed in one process differ.

pub mod client;
pub mod clock;
pub mod commit;
pub mod durability;
#[cfg(not(madsim))]
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod park;
pub mod persist;
pub mod proxy;
pub mod seam;
pub mod server;
pub mod store;
pub mod throttle;
pub mod transport;
