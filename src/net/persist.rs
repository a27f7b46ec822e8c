//! The broker's state file: a [`DurableStore`] that keeps the [`DurableState`] in one file, so
//! that the real broker finds its persistent sessions, queued and in-flight messages, retained
//! messages and waiting wills again after a restart.
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
//! A file is written whole or not at all: to a temporary file in the same folder, flushed to
//! disk, renamed over the old one, and the folder flushed. Reading checks, in order, the magic,
//! the version, the length, the checksum and only then decodes the body; a file larger than the
//! configured bound is refused before it is read. Every problem is an error naming the file.
//!
//! What is not here: when to save (the server, [`DurableStore::save_interval`]), the state's
//! meaning (`broker::state`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::broker::DurableState;
use crate::net::server::DurableStore;

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

/// A problem with the state file, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct PersistError {
    pub path: PathBuf,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error("cannot write: {0}")]
    Write(io::Error),
    #[error("{size} bytes is more than persistence_max_bytes ({max})")]
    TooLarge { size: u64, max: u64 },
    #[error("not a file name")]
    NotAFile,
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// The state kept in one file, written at most once per `interval` by the server.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    max_bytes: u64,
    interval: Duration,
}

impl FileStore {
    /// A store of `path`, refusing files larger than `max_bytes`, saved at most once per
    /// `interval` (and on a clean shutdown).
    pub fn new(path: PathBuf, max_bytes: u64, interval: Duration) -> FileStore {
        FileStore {
            path,
            max_bytes,
            interval,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, problem: Problem) -> PersistError {
        PersistError {
            path: self.path.clone(),
            problem,
        }
    }

    /// The state in the file and when it was saved; `None` when there is no file.
    pub fn read(&self) -> Result<Option<(DurableState, SystemTime)>, PersistError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(Problem::Read(e))),
        };
        let size = file
            .metadata()
            .map_err(|e| self.error(Problem::Read(e)))?
            .len();
        if size > self.max_bytes {
            return Err(self.error(Problem::TooLarge {
                size,
                max: self.max_bytes,
            }));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(Problem::Read(e)))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(self.error(Problem::TooLarge {
                size: bytes.len() as u64,
                max: self.max_bytes,
            }));
        }
        let (state, saved_at) = decode(&bytes).map_err(|e| self.error(e.into()))?;
        Ok(Some((state, saved_at)))
    }

    /// The state in the file [aged](DurableState::aged) by the wall-clock time since it was
    /// saved (nothing if the clock now reads earlier); `None` when there is no file.
    pub fn load_aged(&self) -> Result<Option<DurableState>, PersistError> {
        Ok(self.read()?.map(|(state, saved_at)| {
            let down = SystemTime::now()
                .duration_since(saved_at)
                .unwrap_or(Duration::ZERO);
            state.aged(down)
        }))
    }

    /// Replaces the file with `state`, atomically.
    pub fn write(&self, state: &DurableState) -> Result<(), PersistError> {
        let bytes = encode(state, SystemTime::now());
        if bytes.len() as u64 > self.max_bytes {
            return Err(self.error(Problem::TooLarge {
                size: bytes.len() as u64,
                max: self.max_bytes,
            }));
        }
        if self.path.file_name().is_none() {
            return Err(self.error(Problem::NotAFile));
        }
        replace_file(&self.path, &bytes).map_err(|e| self.error(Problem::Write(e)))
    }
}

/// Replaces the file at `path` with `bytes`, atomically and durably: the bytes go to a hidden
/// temporary file in the same folder (owner-only on Unix), which is flushed to disk, renamed
/// over `path`, and the folder flushed. A reader sees the old file or the new one, never a mix;
/// on error the temporary file is removed and `path` is as it was.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

impl DurableStore for FileStore {
    fn load(&self) -> io::Result<Option<DurableState>> {
        self.load_aged().map_err(io::Error::other)
    }

    fn save(&self, state: DurableState) -> io::Result<()> {
        self.write(&state).map_err(io::Error::other)
    }

    fn save_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
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
    use crate::codec::{LastWill, Properties, QoS, RetainHandling, SubscriptionOptions};

    fn message(id: u64, topic: &str, payload: &[u8], qos: QoS) -> Arc<Message> {
        Arc::new(Message {
            id,
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain: false,
            properties: Properties {
                content_type: Some("text/plain".into()),
                correlation_data: Some(Bytes::from_static(&[0, 255, 7])),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
                ..Properties::default()
            },
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
        let session = Session {
            expiry_interval: 3600,
            subscriptions: BTreeMap::from([("a/#".to_string(), grant)]),
            inflight: VecDeque::from([
                Inflight::Publish {
                    pkid: 1,
                    delivery: delivery(&m1, 1),
                },
                Inflight::Release { pkid: 2, seq: 2 },
            ]),
            queued: VecDeque::from([delivery(&m2, 4), delivery(&m1, 5)]),
            incoming_qos2: BTreeSet::from([9, 65535]),
            next_pkid: 3,
            next_seq: 0,
            expires_at: Some(Duration::from_secs(4000)),
            marks: Default::default(),
        };
        let legacy = Session {
            expiry_interval: u32::MAX,
            expires_at: None,
            ..session.clone()
        };
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
                        properties: Properties {
                            will_delay_interval: Some(60),
                            ..Properties::default()
                        },
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

    #[test]
    fn the_store_writes_atomically_reads_back_aged_and_treats_a_missing_file_as_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let store = FileStore::new(path.clone(), 1 << 20, Duration::from_secs(5));
        assert!(store.load_aged().unwrap().is_none());
        store.write(&sample()).unwrap();
        store.write(&sample()).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("state")],
            "no temp file left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "payloads and user names are the owner's only"
            );
        }
        let (back, saved_at) = store.read().unwrap().unwrap();
        assert_eq!(back, sample());
        let before = SystemTime::now().duration_since(saved_at).unwrap();
        let aged = store.load_aged().unwrap().unwrap();
        let after = SystemTime::now().duration_since(saved_at).unwrap();
        assert!(aged.clock >= sample().clock + before, "downtime counted");
        assert!(aged.clock <= sample().clock + after);
    }

    #[test]
    fn the_store_refuses_oversized_and_corrupt_files_naming_them_without_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let store = FileStore::new(path.clone(), 1 << 20, Duration::from_secs(5));
        store.write(&sample()).unwrap();
        let size = fs::metadata(&path).unwrap().len();
        let small = FileStore::new(path.clone(), size - 1, Duration::from_secs(5));
        let e = small.read().unwrap_err();
        assert!(matches!(e.problem, Problem::TooLarge { .. }), "{e}");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        assert!(
            small.write(&sample()).is_err(),
            "nothing written it could not read"
        );

        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 40;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let e = store.load_aged().unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
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
            for entry in &s.inflight {
                if let Inflight::Publish { delivery, .. } = entry {
                    ids.push(delivery.message.id);
                }
            }
            ids.extend(s.queued.iter().map(|d| d.message.id));
        }
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(!unique.contains(&0));
    }
}
