//! The checkers on hand-written traces, one module per checker (plus the registry and options
//! that cut across them): each story says what happened, and the test says which violations the
//! checkers must find in it. Traces from simulated runs are judged in `tests/lab/`.

mod acl_and_options;
mod announced;
mod delivery;
mod figures;
mod handshake;
mod integrity;
mod misses;
mod ordering;
mod receives;
mod registry;
mod retained;
mod session;
mod shared;
mod subscription;
mod takeover;
mod undecided;
mod unsubscribe;
mod will;
