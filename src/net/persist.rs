//! The snapshot format of the broker's state: the whole [`DurableState`] in one file. The broker
//! keeps its state in a store (`store`); a file of this format found where the store should be
//! is read once and imported (`mqtt-lab broker`'s start-up).
//!
//! The file, all integers big-endian:
//!
//! | bytes | what |
//! | --- | --- |
//! | 8 | magic `MQLSTATE` |
//! | 4 | format version (1) |
//! | 8 | wall-clock time of the save, milliseconds since the UNIX epoch |
//! | 8 | body length `n` |
//! | `n` | the body: the state in CBOR |
//! | 32 | SHA-256 of everything before it |
//!
//! The body is CBOR (RFC 8949, through `ciborium`): a binary format, so payloads and
//! correlation data are stored as byte strings at their own size (JSON would spell every byte
//! as a decimal number), and self-describing, so a decoding error names what it expected.
//! Messages shared by several sessions are written once per session; a restored broker shares
//! them again by their id (`Message::id`).
//!
//! Reading checks, in order, the magic, the version, the length, the checksum and only then
//! decodes the body.
//!
//! What is not here: the state's meaning (`broker::state`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::broker::DurableState;

/// The first bytes of every state file.
pub const MAGIC: [u8; 8] = *b"MQLSTATE";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Magic, version, save time, body length.
const HEADER_LEN: usize = 8 + 4 + 8 + 8;
const CHECKSUM_LEN: usize = 32;

/// Why the bytes of a state file are not a state.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not an mqtt-lab state file (wrong magic bytes)")]
    Magic,
    #[error("format version {0} is not supported (this build reads version {FORMAT_VERSION})")]
    Version(u32),
    #[error("truncated: {found} bytes where the header announces {expected}")]
    Truncated { expected: u64, found: u64 },
    #[error("{0} bytes after the checksum")]
    Trailing(u64),
    #[error("checksum mismatch: the file is corrupt")]
    Checksum,
    #[error("the state cannot be decoded: {0}")]
    Body(String),
}

/// The state file's bytes for `state`, saved at `saved_at`.
pub fn encode(state: &DurableState, saved_at: SystemTime) -> Vec<u8> {
    let mut body = Vec::new();
    if let Err(e) = ciborium::into_writer(state, &mut body) {
        panic!("the durable state cannot be encoded: {e}");
    }
    let millis = saved_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let millis = u64::try_from(millis).unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + CHECKSUM_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&millis.to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&body);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// The state in `bytes` and the time it was saved.
pub fn decode(bytes: &[u8]) -> Result<(DurableState, SystemTime), FormatError> {
    let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
    if !MAGIC.starts_with(magic_seen) {
        return Err(FormatError::Magic);
    }
    let found = bytes.len() as u64;
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            expected: (HEADER_LEN + CHECKSUM_LEN) as u64,
            found,
        });
    }
    let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let version = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let millis = word(12);
    let body_len = word(20);
    let expected = body_len.saturating_add((HEADER_LEN + CHECKSUM_LEN) as u64);
    if found < expected {
        return Err(FormatError::Truncated { expected, found });
    }
    if found > expected {
        return Err(FormatError::Trailing(found - expected));
    }
    let (signed, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(signed).as_slice() != sum {
        return Err(FormatError::Checksum);
    }
    let state: DurableState = ciborium::from_reader(&signed[HEADER_LEN..])
        .map_err(|e| FormatError::Body(e.to_string()))?;
    let saved_at = UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH);
    Ok((state, saved_at))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::broker::{
        Broker, BrokerCore, Delivery, Grant, Inflight, Message, PendingWill, Session,
    };
    use crate::codec::{
        LastWill, Properties, PropertySet, QoS, RetainHandling, SubscriptionOptions,
    };

    fn message(id: u64, topic: &str, payload: &[u8], qos: QoS) -> Arc<Message> {
        Arc::new(Message {
            id,
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain: false,
            properties: Properties::from(PropertySet {
                content_type: Some("text/plain".into()),
                correlation_data: Some(Bytes::from_static(&[0, 255, 7])),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
                ..PropertySet::default()
            }),
            expires_at: Some(Duration::from_millis(90_500)),
        })
    }

    fn delivery(m: &Arc<Message>, seq: u64) -> Delivery {
        Delivery {
            message: m.clone(),
            seq,
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![3, 70_000],
            share: Some("$share/g/a/+".into()),
            pkid: 0,
            placed: Default::default(),
        }
    }

    /// A state with something in every field: sessions with grants, in-flight, queued and
    /// inbound QoS 2 state, retained messages, a waiting will, a user name.
    fn sample() -> DurableState {
        let m1 = message(1, "a/b", b"\x00binary\xffpayload", QoS::ExactlyOnce);
        let m2 = message(2, "a/c", b"", QoS::AtLeastOnce);
        let grant = Grant {
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::SendIfNew,
            },
            id: Some(42),
        };
        let mut session = Session::new(3600);
        session.subscriptions = BTreeMap::from([("a/#".to_string(), grant)]);
        let flow = session.flow_mut();
        flow.inflight = VecDeque::from([
            Inflight::Publish {
                pkid: 1,
                delivery: delivery(&m1, 1),
            },
            Inflight::Release { pkid: 2, seq: 2 },
        ]);
        flow.queued = VecDeque::from([delivery(&m2, 4), delivery(&m1, 5)]);
        flow.incoming_qos2 = BTreeSet::from([9, 65535]);
        session.next_pkid = 3;
        session.next_seq = 0;
        session.expires_at = Some(Duration::from_secs(4000));
        let mut legacy = session.clone();
        legacy.expiry_interval = u32::MAX;
        legacy.expires_at = None;
        DurableState {
            sessions: BTreeMap::from([("s1".into(), session), ("s2".into(), legacy)]),
            retained: BTreeMap::from([("a/b".into(), m1)]),
            wills: BTreeMap::from([(
                "gone".into(),
                PendingWill {
                    due: Duration::from_secs(120),
                    will: LastWill {
                        topic: "wills/gone".into(),
                        payload: Bytes::from_static(b"bye"),
                        qos: QoS::AtLeastOnce,
                        retain: true,
                        properties: Properties::from(PropertySet {
                            will_delay_interval: Some(60),
                            ..PropertySet::default()
                        }),
                    },
                },
            )]),
            users: BTreeMap::from([("s1".into(), "alice".into())]),
            next_assigned: 17,
            clock: Duration::from_millis(123_456),
        }
    }

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn a_state_and_its_save_time_come_back_unchanged() {
        let state = sample();
        let bytes = encode(&state, at(1_700_000_000_123));
        assert_eq!(&bytes[..8], b"MQLSTATE");
        let (back, saved_at) = decode(&bytes).unwrap();
        assert_eq!(back, state);
        assert_eq!(saved_at, at(1_700_000_000_123));
        let (empty, _) = decode(&encode(&DurableState::default(), at(0))).unwrap();
        assert_eq!(empty, DurableState::default());
    }

    #[test]
    fn any_flipped_byte_in_the_body_or_checksum_is_a_checksum_error() {
        let bytes = encode(&sample(), at(5));
        for i in (HEADER_LEN..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                matches!(decode(&bad), Err(FormatError::Checksum)),
                "byte {i}: {:?}",
                decode(&bad).err()
            );
        }
        let mut bad = bytes.clone();
        bad[13] ^= 1; // the save time is covered too
        assert!(matches!(decode(&bad), Err(FormatError::Checksum)));
    }

    #[test]
    fn a_truncated_or_extended_file_is_refused_by_its_length() {
        let bytes = encode(&sample(), at(5));
        for len in [0, 3, 8, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
            match decode(&bytes[..len]) {
                Err(FormatError::Truncated { found, .. }) => assert_eq!(found, len as u64),
                other => panic!("{len} bytes: {other:?}"),
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(FormatError::Trailing(1))));
        let mut huge_len = bytes.clone();
        huge_len[20..28].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            decode(&huge_len),
            Err(FormatError::Truncated {
                expected: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn wrong_magic_or_version_is_refused_before_the_checksum() {
        let bytes = encode(&sample(), at(5));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert!(matches!(decode(&magic), Err(FormatError::Magic)));
        assert!(matches!(decode(b"{\"json\": 1}"), Err(FormatError::Magic)));
        let mut version = bytes.clone();
        version[8..12].copy_from_slice(&2u32.to_be_bytes());
        let e = decode(&version).unwrap_err();
        assert!(matches!(e, FormatError::Version(2)));
        assert!(e.to_string().contains("version 2 is not supported"), "{e}");
    }

    #[test]
    fn a_body_that_is_not_a_state_is_a_decode_error() {
        let mut bytes = encode(&sample(), at(5));
        bytes.truncate(HEADER_LEN);
        bytes[20..28].copy_from_slice(&3u64.to_be_bytes());
        bytes.extend_from_slice(&[0x83, 1, 2]); // a CBOR array of three with two items
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        assert!(matches!(decode(&bytes), Err(FormatError::Body(_))));
    }

    /// `state` as a file written without message ids and sequence numbers.
    fn without_ids(state: &DurableState) -> Vec<u8> {
        use ciborium::Value;
        fn strip(v: &mut Value) {
            match v {
                Value::Map(entries) => {
                    let has =
                        |e: &[(Value, Value)], key| e.iter().any(|(k, _)| k.as_text() == Some(key));
                    let message = has(entries, "payload");
                    entries.retain(|(k, _)| match k.as_text() {
                        Some("seq") => false,
                        Some("id") => !message,
                        _ => true,
                    });
                    entries.iter_mut().for_each(|(_, v)| strip(v));
                }
                Value::Array(items) => items.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut value = Value::serialized(state).unwrap();
        strip(&mut value);
        let mut body = Vec::new();
        ciborium::into_writer(&value, &mut body).unwrap();
        let mut out = encode(&DurableState::default(), at(5));
        out.truncate(HEADER_LEN);
        out[20..28].copy_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend_from_slice(&body);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// A file written without message ids and sequence numbers loads; the restored broker
    /// numbers every message and delivery afresh, each copy its own message.
    #[test]
    fn a_state_written_without_ids_loads_and_is_numbered_on_restore() {
        let (old, _) = decode(&without_ids(&sample())).unwrap();
        let s1 = &old.sessions["s1"];
        assert_eq!(s1.seqs().collect::<Vec<_>>(), vec![0, 0, 0, 0]);
        assert_eq!(old.retained["a/b"].id, 0);
        let broker = Broker::restore(Default::default(), old);
        let state = broker.durable_state();
        let mut ids = vec![state.retained["a/b"].id];
        for s in state.sessions.values() {
            assert_eq!(s.seqs().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
            for entry in s.inflight() {
                if let Inflight::Publish { delivery, .. } = entry {
                    ids.push(delivery.message.id);
                }
            }
            ids.extend(s.queued().iter().map(|d| d.message.id));
        }
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(!unique.contains(&0));
    }
}
