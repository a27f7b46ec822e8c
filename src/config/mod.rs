//! Configuration files as text, shared by scenarios, `broker.toml` and the client's
//! configuration: the one duration grammar ([`duration`]) and reading a TOML file so that every
//! problem is reported at once, in line order, as `FILE: line N: FIELD: REASON` ([`file`](mod@file)).
//!
//! Imports nothing else of this crate, so the cores may use it. Not here: the fields of any
//! file (each section's type declares them beside the code that uses them).

pub mod duration;
pub mod file;
