//! Where the broker's durable state is kept: the storage seam ([`disk`]: the folder of files a
//! store lives in, on the machine's file system), the lab's disk ([`seam`]: the same seam
//! with crash semantics and storage faults, compiled in both builds, driven only by the lab and
//! tests), and the store itself ([`Store`]: the durable state as rows of a redb database, one
//! write transaction per journal batch).
//!
//! Every redb call of the crate lives under this module.
//!
//! # The store
//!
//! One redb file `<name>` on a [`disk::Disk`], guarded by the lock `<name>.lock`. Its tables
//! (`tables.rs`):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `&str` | `u64`: `format` (1), `clock_secs` and `clock_nanos` (the broker's logical time of the last commit), `saved_at_ms` (its wall-clock time, from the caller), `next_assigned` |
//! | `messages` | message id | CBOR `Message` |
//! | `message_refs` | (message id, referrer) | `()` |
//! | `sessions` | client | CBOR `SessionRow` (expiry interval, expiry time, user) |
//! | `subscriptions` | (client, filter) | CBOR `Grant` |
//! | `incoming_qos2` | (client, packet identifier) | `()` |
//! | `outbound` | (client, `Delivery::seq`) | CBOR queued / in flight / released, the message by id |
//! | `retained` | topic | message id |
//! | `wills` | client | CBOR `PendingWill` |
//!
//! A message is stored once, however many deliveries and retained topics hold it: each holder
//! is a `message_refs` row (`"o\0<client>\0<seq>"` or `"r\0<topic>"`), and the message row is
//! deleted with its last reference.
//!
//! **Writing.** [`Store::commit`] applies one batch of the broker's change journal
//! (`broker::journal`) in one write transaction: each change is a put or delete of a row by key
//! (a session delete walks that session's key ranges), so a commit costs what the batch
//! touches, never what is stored. [`Durability::Immediate`] syncs once per commit (redb's
//! commit: data pages, then the commit slot, one `sync_data`). After any failed write redb
//! latches the error, so the store drops its database and takes no commit until
//! [`Store::rewrite`] has written the whole state into a fresh file: after a failed sync the
//! old file's pages cannot be trusted.
//!
//! **Creating and rewriting.** A new file is made under `<name>.tmp`, committed and synced,
//! renamed over `<name>`, and the folder synced: a crash while redb initialises a file can
//! leave one it refuses to open, and this way `<name>` is always a whole store. A stale
//! `<name>.tmp` is removed at open.
//!
//! **Recovery** ([`Store::open`]): take the lock (a second opener gets
//! [`StoreError::InUse`]); remove a stale temporary file; create a missing store; then a dry
//! run: redb opens the file through an in-memory overlay (`overlay.rs`) with its integrity
//! check (every page checksum of the committed trees), rolls a torn tail back to the last
//! completed commit, and every table is read into a `DurableState` (one `Arc` per message id,
//! deliveries in `seq` order), checking that every row decodes, every reference names a stored
//! message and every message is referenced. Any problem is [`StoreError::Damaged`], and the
//! file's bytes are untouched. Only then is the file opened for writing.
//!
//! Why redb: pure Rust, one file, ACID transactions whose torn commits roll back on open, page
//! checksums, B-trees for O(log n) row updates, and a `StorageBackend` trait the lab's disk
//! implements. An append-only log would need its own framing, checksums, compaction and
//! recovery.
//!
//! Not here: when to commit, what a failure does to connections, the clock (the caller passes
//! `saved_at_ms`).

mod database;
pub mod disk;
mod overlay;
pub mod seam;
mod tables;

pub use database::{Durability, Recovered, Store, StoreError, StoreOptions};
pub use tables::CommitStats;

#[cfg(test)]
mod tests;
