//! The store's redb tables, the encoding of their rows, and the two ways through them: a
//! [`Writer`] applies journal changes inside one write transaction, [`load`] reads every table
//! back into a [`DurableState`] and checks that the rows hold together.
//!
//! Values are CBOR (`ciborium`); keys are redb's own tuple keys, so rows of one session sit
//! together and `SessionDelete` is a range walk. A message is one row of [`MESSAGES`] under its
//! `Message::id`, whatever the number of deliveries and retained topics holding it: each holder
//! is a row of [`MESSAGE_REFS`] (`(id, referrer)`), and the message row goes with its last
//! reference. Referrers are `"o\0<client>\0<seq>"` for a delivery and `"r\0<topic>"` for a
//! retained topic (U+0000 is not allowed in MQTT strings).
//!
//! Not here: files, locks and transactions' durability (`database.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::broker::journal::{ModelTables, OutRow, SessionRow};
use crate::broker::{Change, Changes, Delivery, DurableState, Grant, Message, PendingWill};
use crate::codec::QoS;

/// The format this build writes and reads (`meta` key `format`).
pub const FORMAT: u64 = 1;

/// `format`, `clock_secs`, `clock_nanos` (the broker's logical time of the last commit),
/// `saved_at_ms` (the wall-clock time of the last commit, as the caller gave it) and
/// `next_assigned`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Message id → CBOR `Message`.
pub const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// (message id, referrer) → ().
pub const MESSAGE_REFS: TableDefinition<(u64, &str), ()> = TableDefinition::new("message_refs");
/// Client → CBOR `SessionRow`.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (client, filter) → CBOR `Grant`.
pub const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// (client, packet identifier) → ().
pub const INCOMING_QOS2: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming_qos2");
/// (client, `Delivery::seq`) → CBOR [`OutRecord`].
pub const OUTBOUND: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbound");
/// Topic → message id.
pub const RETAINED: TableDefinition<&str, u64> = TableDefinition::new("retained");
/// Client → CBOR `PendingWill`.
pub const WILLS: TableDefinition<&str, &[u8]> = TableDefinition::new("wills");

const FORMAT_KEY: &str = "format";
const CLOCK_SECS: &str = "clock_secs";
const CLOCK_NANOS: &str = "clock_nanos";
const SAVED_AT_MS: &str = "saved_at_ms";
const NEXT_ASSIGNED: &str = "next_assigned";

/// A delivery as stored: its message by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeliveryRecord {
    message: u64,
    qos: QoS,
    retain: bool,
    subscription_ids: Vec<u32>,
    share: Option<String>,
    /// `Delivery::pkid`; absent in rows written before identifiers were reserved.
    #[serde(default)]
    pkid: u16,
}

/// An [`OutRow`] as stored (its `seq` is the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum OutRecord {
    Queued(DeliveryRecord),
    Publish { pkid: u16, delivery: DeliveryRecord },
    Release { pkid: u16 },
}

impl OutRecord {
    fn of(row: &OutRow) -> OutRecord {
        let record = |d: &Delivery| DeliveryRecord {
            message: d.message.id,
            qos: d.qos,
            retain: d.retain,
            subscription_ids: d.subscription_ids.clone(),
            share: d.share.clone(),
            pkid: d.pkid,
        };
        match row {
            OutRow::Queued(d) => OutRecord::Queued(record(d)),
            OutRow::Publish { pkid, delivery } => OutRecord::Publish {
                pkid: *pkid,
                delivery: record(delivery),
            },
            OutRow::Release { pkid } => OutRecord::Release { pkid: *pkid },
        }
    }

    fn message(&self) -> Option<u64> {
        match self {
            OutRecord::Queued(d) | OutRecord::Publish { delivery: d, .. } => Some(d.message),
            OutRecord::Release { .. } => None,
        }
    }

    /// The row, with its message taken from `messages`; `None` if the message is missing.
    fn row(self, seq: u64, messages: &BTreeMap<u64, Arc<Message>>) -> Option<OutRow> {
        let delivery = |d: DeliveryRecord| {
            Some(Delivery {
                message: messages.get(&d.message)?.clone(),
                seq,
                qos: d.qos,
                retain: d.retain,
                subscription_ids: d.subscription_ids,
                share: d.share,
                pkid: d.pkid,
                placed: Default::default(),
            })
        };
        Some(match self {
            OutRecord::Queued(d) => OutRow::Queued(delivery(d)?),
            OutRecord::Publish { pkid, delivery: d } => OutRow::Publish {
                pkid,
                delivery: delivery(d)?,
            },
            OutRecord::Release { pkid } => OutRow::Release { pkid },
        })
    }
}

/// Why the tables could not be written or read.
#[derive(Debug)]
pub enum Fault {
    /// redb failed: I/O, or a page that fails its checksum (`StorageError::Corrupted`).
    Redb(redb::Error),
    /// The rows do not make a store: `what` names the table and key.
    Damaged(String),
}

impl<E: Into<redb::Error>> From<E> for Fault {
    fn from(e: E) -> Fault {
        Fault::Redb(e.into())
    }
}

/// The row's CBOR, without the map entries whose value is null: an absent `Option` field
/// decodes as `None`, and a message's properties (some thirty optional fields, nearly all
/// absent) cost only what they hold. Sound for the row types here, which hold no `()` and no
/// map with optional values (where a dropped null would mean a dropped entry).
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let value = match ciborium::Value::serialized(value) {
        Ok(value) => without_nulls(value),
        Err(e) => panic!("a row cannot be encoded: {e}"),
    };
    let mut out = Vec::new();
    if let Err(e) = ciborium::into_writer(&value, &mut out) {
        panic!("a row cannot be encoded: {e}");
    }
    out
}

fn without_nulls(value: ciborium::Value) -> ciborium::Value {
    use ciborium::Value;
    match value {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(without_nulls(*inner))),
        other => other,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    table: &str,
    key: &dyn std::fmt::Debug,
) -> Result<T, Fault> {
    ciborium::from_reader(bytes)
        .map_err(|e| Fault::Damaged(format!("{table} row {key:?} does not decode: {e}")))
}

fn out_referrer(client: &str, seq: u64) -> String {
    format!("o\0{client}\0{seq}")
}

fn retained_referrer(topic: &str) -> String {
    format!("r\0{topic}")
}

/// What one commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Changes applied.
    pub ops: usize,
    /// Message rows written (first reference) and deleted (last reference gone).
    pub messages_written: usize,
    pub messages_deleted: usize,
}

/// Every table open in one write transaction; applies changes.
pub struct Writer<'t> {
    meta: Table<'t, &'static str, u64>,
    messages: Table<'t, u64, &'static [u8]>,
    refs: Table<'t, (u64, &'static str), ()>,
    sessions: Table<'t, &'static str, &'static [u8]>,
    subscriptions: Table<'t, (&'static str, &'static str), &'static [u8]>,
    qos2: Table<'t, (&'static str, u16), ()>,
    outbound: Table<'t, (&'static str, u64), &'static [u8]>,
    retained: Table<'t, &'static str, u64>,
    wills: Table<'t, &'static str, &'static [u8]>,
    pub stats: CommitStats,
}

impl<'t> Writer<'t> {
    /// Opens (and in a new file creates) every table.
    pub fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, Fault> {
        Ok(Writer {
            meta: txn.open_table(META)?,
            messages: txn.open_table(MESSAGES)?,
            refs: txn.open_table(MESSAGE_REFS)?,
            sessions: txn.open_table(SESSIONS)?,
            subscriptions: txn.open_table(SUBSCRIPTIONS)?,
            qos2: txn.open_table(INCOMING_QOS2)?,
            outbound: txn.open_table(OUTBOUND)?,
            retained: txn.open_table(RETAINED)?,
            wills: txn.open_table(WILLS)?,
            stats: CommitStats::default(),
        })
    }

    /// Applies a batch in order, then records its clock and `saved_at_ms`.
    pub fn apply(&mut self, changes: &Changes, saved_at_ms: u64) -> Result<(), Fault> {
        for change in &changes.ops {
            self.apply_one(change)?;
            self.stats.ops += 1;
        }
        self.set_meta(changes.clock, saved_at_ms)
    }

    /// Writes the format number, `clock` and `saved_at_ms`.
    pub fn set_meta(&mut self, clock: Duration, saved_at_ms: u64) -> Result<(), Fault> {
        self.meta.insert(FORMAT_KEY, FORMAT)?;
        self.meta.insert(CLOCK_SECS, clock.as_secs())?;
        self.meta
            .insert(CLOCK_NANOS, u64::from(clock.subsec_nanos()))?;
        self.meta.insert(SAVED_AT_MS, saved_at_ms)?;
        Ok(())
    }

    /// Writes every row of `state` into empty tables.
    pub fn write_whole(&mut self, state: &DurableState, saved_at_ms: u64) -> Result<(), Fault> {
        let t = ModelTables::from_state(state);
        let mut ops = Vec::new();
        for (client, row) in t.sessions {
            ops.push(Change::SessionPut { client, row });
        }
        for ((client, filter), grant) in t.subscriptions {
            ops.push(Change::SubPut {
                client,
                filter,
                grant,
            });
        }
        for (client, pkid) in t.incoming_qos2 {
            ops.push(Change::Qos2Put { client, pkid });
        }
        for ((client, seq), row) in t.outbound {
            ops.push(Change::OutPut { client, seq, row });
        }
        for (topic, message) in t.retained {
            ops.push(Change::RetainedPut { topic, message });
        }
        for (client, will) in t.wills {
            ops.push(Change::WillPut {
                client,
                will: Box::new(will),
            });
        }
        ops.push(Change::NextAssigned(t.next_assigned));
        self.apply(
            &Changes {
                ops,
                clock: t.clock,
                ..Changes::default()
            },
            saved_at_ms,
        )
    }

    fn apply_one(&mut self, change: &Change) -> Result<(), Fault> {
        match change {
            Change::SessionPut { client, row } => {
                self.sessions
                    .insert(client.as_str(), encode(row).as_slice())?;
            }
            Change::SessionDelete { client } => self.delete_session(client)?,
            Change::SubPut {
                client,
                filter,
                grant,
            } => {
                self.subscriptions
                    .insert((client.as_str(), filter.as_str()), encode(grant).as_slice())?;
            }
            Change::SubDelete { client, filter } => {
                self.subscriptions
                    .remove((client.as_str(), filter.as_str()))?;
            }
            Change::Qos2Put { client, pkid } => {
                self.qos2.insert((client.as_str(), *pkid), ())?;
            }
            Change::Qos2Delete { client, pkid } => {
                self.qos2.remove((client.as_str(), *pkid))?;
            }
            Change::OutPut { client, seq, row } => {
                let record = OutRecord::of(row);
                let old = self
                    .outbound
                    .insert((client.as_str(), *seq), encode(&record).as_slice())?
                    .map(|v| old_message(v.value(), client, *seq))
                    .transpose()?
                    .flatten();
                let new = row.message();
                if old != new.map(|m| m.id) {
                    let referrer = out_referrer(client, *seq);
                    if let Some(id) = old {
                        self.release(id, &referrer)?;
                    }
                    if let Some(m) = new {
                        self.acquire(m, &referrer)?;
                    }
                }
            }
            Change::OutDelete { client, seq } => {
                let old = self
                    .outbound
                    .remove((client.as_str(), *seq))?
                    .map(|v| old_message(v.value(), client, *seq))
                    .transpose()?
                    .flatten();
                if let Some(id) = old {
                    self.release(id, &out_referrer(client, *seq))?;
                }
            }
            Change::RetainedPut { topic, message } => {
                let old = self
                    .retained
                    .insert(topic.as_str(), message.id)?
                    .map(|v| v.value());
                if old != Some(message.id) {
                    let referrer = retained_referrer(topic);
                    if let Some(id) = old {
                        self.release(id, &referrer)?;
                    }
                    self.acquire(message, &referrer)?;
                }
            }
            Change::RetainedDelete { topic } => {
                let old = self.retained.remove(topic.as_str())?.map(|v| v.value());
                if let Some(id) = old {
                    self.release(id, &retained_referrer(topic))?;
                }
            }
            Change::WillPut { client, will } => {
                self.wills
                    .insert(client.as_str(), encode(will.as_ref()).as_slice())?;
            }
            Change::WillDelete { client } => {
                self.wills.remove(client.as_str())?;
            }
            Change::NextAssigned(n) => {
                self.meta.insert(NEXT_ASSIGNED, *n)?;
            }
        }
        Ok(())
    }

    /// Removes a session's own row and every row under it.
    fn delete_session(&mut self, client: &str) -> Result<(), Fault> {
        self.sessions.remove(client)?;
        let mut filters = Vec::new();
        for row in self.subscriptions.range((client, "")..)? {
            let (k, _) = row?;
            let (c, filter) = k.value();
            if c != client {
                break;
            }
            filters.push(filter.to_owned());
        }
        for filter in filters {
            self.subscriptions.remove((client, filter.as_str()))?;
        }
        self.qos2
            .retain_in((client, 0)..=(client, u16::MAX), |_, _| false)?;
        let deliveries: Vec<(u64, Option<u64>)> = self
            .outbound
            .range((client, 0)..=(client, u64::MAX))?
            .map(|row| {
                let (k, v) = row?;
                let seq = k.value().1;
                Ok((seq, old_message(v.value(), client, seq)?))
            })
            .collect::<Result<_, Fault>>()?;
        for (seq, message) in deliveries {
            self.outbound.remove((client, seq))?;
            if let Some(id) = message {
                self.release(id, &out_referrer(client, seq))?;
            }
        }
        Ok(())
    }

    /// Adds a reference to `message`, writing its row if it has none yet.
    fn acquire(&mut self, message: &Message, referrer: &str) -> Result<(), Fault> {
        self.refs.insert((message.id, referrer), ())?;
        if self.messages.get(message.id)?.is_none() {
            self.messages
                .insert(message.id, encode(message).as_slice())?;
            self.stats.messages_written += 1;
        }
        Ok(())
    }

    /// Removes a reference to message `id`, and the message with its last reference.
    fn release(&mut self, id: u64, referrer: &str) -> Result<(), Fault> {
        self.refs.remove((id, referrer))?;
        let first = self
            .refs
            .range((id, "")..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value().0);
        if first != Some(id) && self.messages.remove(id)?.is_some() {
            self.stats.messages_deleted += 1;
        }
        Ok(())
    }
}

/// The message id of a stored outbound row.
fn old_message(bytes: &[u8], client: &str, seq: u64) -> Result<Option<u64>, Fault> {
    let record: OutRecord = decode(bytes, "outbound", &(client, seq))?;
    Ok(record.message())
}

/// What a store held at its last commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub state: DurableState,
    pub saved_at_ms: u64,
    pub messages: usize,
    pub outbound: usize,
}

/// Reads every table into a durable state (one `Arc` per message id), checking that every
/// reference names a message, every message is referenced, and the references are exactly the
/// rows holding messages.
pub fn load(txn: &ReadTransaction) -> Result<Loaded, Fault> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(Fault::Damaged(
                "no meta table: the file is a redb database but not a store".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let get = |key: &str| -> Result<u64, Fault> {
        meta.get(key)?
            .map(|v| v.value())
            .ok_or_else(|| Fault::Damaged(format!("meta has no {key}")))
    };
    let format = get(FORMAT_KEY)?;
    if format != FORMAT {
        return Err(Fault::Damaged(format!(
            "format {format}, this build reads format {FORMAT}"
        )));
    }
    let nanos = u32::try_from(get(CLOCK_NANOS)?)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| Fault::Damaged("meta clock_nanos is not below one second".into()))?;
    let clock = Duration::new(get(CLOCK_SECS)?, nanos);
    let saved_at_ms = get(SAVED_AT_MS)?;
    let next_assigned = meta.get(NEXT_ASSIGNED)?.map_or(0, |v| v.value());

    let mut messages: BTreeMap<u64, Arc<Message>> = BTreeMap::new();
    for row in txn.open_table(MESSAGES)?.iter()? {
        let (k, v) = row?;
        let id = k.value();
        let message: Message = decode(v.value(), "messages", &id)?;
        if message.id != id {
            return Err(Fault::Damaged(format!(
                "messages row {id} holds message {}",
                message.id
            )));
        }
        messages.insert(id, Arc::new(message));
    }
    let mut refs = BTreeSet::new();
    for row in txn.open_table(MESSAGE_REFS)?.iter()? {
        let (k, _) = row?;
        let (id, referrer) = k.value();
        refs.insert((id, referrer.to_owned()));
    }

    let mut t = ModelTables {
        next_assigned,
        clock,
        ..ModelTables::default()
    };
    for row in txn.open_table(SESSIONS)?.iter()? {
        let (k, v) = row?;
        let client = k.value().to_owned();
        let session: SessionRow = decode(v.value(), "sessions", &client)?;
        t.sessions.insert(client, session);
    }
    for row in txn.open_table(SUBSCRIPTIONS)?.iter()? {
        let (k, v) = row?;
        let (client, filter) = k.value();
        let grant: Grant = decode(v.value(), "subscriptions", &(client, filter))?;
        t.subscriptions
            .insert((client.to_owned(), filter.to_owned()), grant);
    }
    for row in txn.open_table(INCOMING_QOS2)?.iter()? {
        let (k, _) = row?;
        let (client, pkid) = k.value();
        t.incoming_qos2.insert((client.to_owned(), pkid));
    }
    let mut expected_refs = BTreeSet::new();
    let missing = |what: String, id: u64| {
        Fault::Damaged(format!("{what} names message {id}, which is missing"))
    };
    for row in txn.open_table(OUTBOUND)?.iter()? {
        let (k, v) = row?;
        let (client, seq) = k.value();
        let record: OutRecord = decode(v.value(), "outbound", &(client, seq))?;
        let id = record.message();
        let row = record
            .row(seq, &messages)
            .ok_or_else(|| missing(format!("outbound row ({client:?}, {seq})"), id.unwrap_or(0)))?;
        if let Some(id) = id {
            expected_refs.insert((id, out_referrer(client, seq)));
        }
        t.outbound.insert((client.to_owned(), seq), row);
    }
    for row in txn.open_table(RETAINED)?.iter()? {
        let (k, v) = row?;
        let (topic, id) = (k.value(), v.value());
        let message = messages
            .get(&id)
            .ok_or_else(|| missing(format!("retained row {topic:?}"), id))?;
        expected_refs.insert((id, retained_referrer(topic)));
        t.retained.insert(topic.to_owned(), message.clone());
    }
    for row in txn.open_table(WILLS)?.iter()? {
        let (k, v) = row?;
        let client = k.value().to_owned();
        let will: PendingWill = decode(v.value(), "wills", &client)?;
        t.wills.insert(client, will);
    }

    if let Some((id, referrer)) = refs.symmetric_difference(&expected_refs).next() {
        let held = if refs.contains(&(*id, referrer.clone())) {
            "a reference no row holds"
        } else {
            "a row without its reference"
        };
        return Err(Fault::Damaged(format!(
            "message_refs: {held}: message {id}, referrer {referrer:?}"
        )));
    }
    let referenced: BTreeSet<u64> = refs.iter().map(|(id, _)| *id).collect();
    if let Some(id) = messages.keys().find(|id| !referenced.contains(id)) {
        return Err(Fault::Damaged(format!(
            "messages row {id} has no reference"
        )));
    }
    let outbound = t.outbound.len();
    let state = t
        .state()
        .map_err(|e| Fault::Damaged(format!("the rows do not make a state: {e}")))?;
    Ok(Loaded {
        state,
        saved_at_ms,
        messages: messages.len(),
        outbound,
    })
}
