//! [`Store`]: one redb database file on a [`Disk`], holding the broker's durable state as rows
//! (`tables.rs`), changed by one write transaction per journal batch and read back whole at
//! open.
//!
//! Not here: the tables and their encoding (`tables.rs`), when to commit and what to do with a
//! failure (the caller).

use std::error::Error as StdError;
use std::io;

use redb::{Builder, Database, DatabaseError, ReadableDatabase, StorageError};

use super::disk::{Disk, LockError};
use super::overlay::Overlay;
use super::tables::{self, CommitStats, Fault, Loaded, Writer};
use crate::broker::{Changes, DurableState};

/// How a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced before `commit` returns: it survives any crash after that.
    Immediate,
    /// Visible to later reads, made durable by the next `Immediate` commit; a crash before then
    /// loses it (the store recovers the last `Immediate` commit).
    Deferred,
}

/// Settings of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            cache_bytes: 64 << 20,
        }
    }
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The state of the last completed commit (`Session::next_pkid` and `next_seq` 0, as
    /// `DurableState::normalized`), its clock the logical time of that commit.
    pub state: DurableState,
    /// The wall-clock time of that commit as its caller gave it (0 for a store never committed
    /// to); the caller ages the state by the time since ([`DurableState::aged`]).
    pub saved_at_ms: u64,
    /// The file did not exist and was created empty.
    pub created: bool,
    pub sessions: usize,
    /// Distinct messages stored, each once.
    pub messages: usize,
    /// Deliveries stored (queued, in flight or released).
    pub outbound: usize,
    pub retained: usize,
    pub wills: usize,
}

impl Recovered {
    /// The recovered state aged by the time since its commit (`since` turns the commit's
    /// `saved_at_ms` into that time), so the downtime counts towards every expiry and will
    /// delay; `None` for a store never committed to.
    pub fn aged(self, since: impl FnOnce(u64) -> std::time::Duration) -> Option<DurableState> {
        (self.saved_at_ms != 0).then(|| self.state.aged(since(self.saved_at_ms)))
    }
}

/// Why a store could not be opened or written. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{file}: in use by another broker ({holder} holds {lock})")]
    InUse {
        file: String,
        lock: String,
        holder: String,
    },
    /// The file is not a store this build reads, or its pages or rows do not hold together. The
    /// file was left as it was.
    #[error("{file}: the store is damaged: {what}; it was left as it was")]
    Damaged { file: String, what: String },
    /// The disk failed (write, sync, full, or a name operation).
    #[error("{file}: {doing}: {source}")]
    Io {
        file: String,
        doing: &'static str,
        /// The disk is full (`io::ErrorKind::StorageFull`).
        full: bool,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A write failed earlier: the file is not trusted until [`Store::rewrite`] succeeds.
    #[error("{file}: a write failed earlier; the store takes no commit until it is rewritten")]
    Failed { file: String },
}

impl StoreError {
    /// The disk is full.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Io { full: true, .. })
    }
}

/// A broker's store: a locked redb database file on a disk. See the module documentation of
/// `net::store`.
pub struct Store<D: Disk> {
    disk: D,
    name: String,
    options: StoreOptions,
    /// `None` after a failed write, until a rewrite succeeds.
    db: Option<Database>,
    _lock: D::Lock,
}

impl<D: Disk> std::fmt::Debug for Store<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("failed", &self.db.is_none())
            .finish_non_exhaustive()
    }
}

fn io_kind_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
}

fn redb_full(e: &redb::Error) -> bool {
    match e {
        redb::Error::Io(e) => io_kind_full(e),
        _ => false,
    }
}

/// Whether a redb error says the bytes are not a database redb trusts.
fn redb_damage(e: &redb::Error) -> bool {
    match e {
        redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_) => true,
        redb::Error::Io(e) => e.kind() == io::ErrorKind::InvalidData,
        _ => false,
    }
}

fn database_error(e: DatabaseError) -> redb::Error {
    match e {
        DatabaseError::Storage(StorageError::Corrupted(what)) => redb::Error::Corrupted(what),
        other => other.into(),
    }
}

impl<D: Disk> Store<D> {
    /// Opens the store `name` on `disk`, creating it empty if it is missing, and reads it
    /// whole. See the module documentation of `net::store` for the steps.
    pub fn open(
        disk: D,
        name: &str,
        options: StoreOptions,
    ) -> Result<(Store<D>, Recovered), StoreError> {
        let lock_name = format!("{name}.lock");
        let lock = disk.lock(&lock_name).map_err(|e| match e {
            LockError::InUse { holder, .. } => StoreError::InUse {
                file: name.to_owned(),
                lock: lock_name.clone(),
                holder,
            },
            LockError::Io { source, .. } => StoreError::Io {
                file: name.to_owned(),
                doing: "taking the lock",
                full: io_kind_full(&source),
                source: source.into(),
            },
        })?;
        let mut store = Store {
            disk,
            name: name.to_owned(),
            options,
            db: None,
            _lock: lock,
        };
        let tmp = store.tmp_name();
        if store.io("looking for a temporary file", store.disk.exists(&tmp))? {
            store.io("removing a stale temporary file", store.disk.remove(&tmp))?;
            store.io("syncing the folder", store.disk.sync_dir())?;
        }
        let created = !store.io("looking for the store", store.disk.exists(name))?;
        if created {
            store.install(&DurableState::default(), 0)?;
        }
        let loaded = store.dry_run()?;
        let file = store.io("opening the store", store.disk.open(name, false))?;
        let db = store
            .builder(false)
            .create_with_backend(file)
            .map_err(|e| store.redb("opening the store", database_error(e)))?;
        store.db = Some(db);
        let state = loaded.state;
        let recovered = Recovered {
            saved_at_ms: loaded.saved_at_ms,
            created,
            sessions: state.sessions.len(),
            messages: loaded.messages,
            outbound: loaded.outbound,
            retained: state.retained.len(),
            wills: state.wills.len(),
            state,
        };
        Ok((store, recovered))
    }

    /// The file's name on its disk.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size of the store's file in bytes.
    pub fn file_len(&self) -> Result<u64, StoreError> {
        let file = self.io("opening the store", self.disk.open(&self.name, false))?;
        redb::StorageBackend::len(&file)
            .map_err(|e| self.redb("reading the store's size", StorageError::from(e).into()))
    }

    /// Whether a write failed and the store waits for [`Store::rewrite`].
    pub fn failed(&self) -> bool {
        self.db.is_none()
    }

    /// Applies one batch in one write transaction, with the batch's clock and `saved_at_ms`
    /// (milliseconds since the UNIX epoch, read by the caller). Costs what the batch touches.
    /// Any error leaves the store [`Store::failed`]: the caller rewrites it before the next
    /// commit.
    pub fn commit(
        &mut self,
        changes: &Changes,
        saved_at_ms: u64,
        durability: Durability,
    ) -> Result<CommitStats, StoreError> {
        let db = self.db.take().ok_or_else(|| StoreError::Failed {
            file: self.name.clone(),
        })?;
        let stats = self.write(&db, durability, |w| w.apply(changes, saved_at_ms))?;
        self.db = Some(db);
        Ok(stats)
    }

    /// Replaces the file with one holding `state`: written whole under a temporary name,
    /// synced, renamed into place, the folder synced, and opened. The way back after a failed
    /// write, as the old file's pages cannot be trusted after a failed sync. Costs what is
    /// stored.
    pub fn rewrite(&mut self, state: &DurableState, saved_at_ms: u64) -> Result<(), StoreError> {
        if let Some(db) = self.db.take() {
            // Its pages are about to be replaced; a failure to close changes nothing here.
            let _ = db.close();
        }
        self.install(state, saved_at_ms)?;
        let file = self.io("opening the store", self.disk.open(&self.name, false))?;
        let db = self
            .builder(false)
            .create_with_backend(file)
            .map_err(|e| self.redb("opening the rewritten store", database_error(e)))?;
        self.db = Some(db);
        Ok(())
    }

    fn tmp_name(&self) -> String {
        format!("{}.tmp", self.name)
    }

    fn builder(&self, check_integrity: bool) -> Builder {
        let mut b = Builder::new();
        b.set_cache_size(self.options.cache_bytes)
            .set_check_integrity_on_open(check_integrity);
        b
    }

    fn io<T>(&self, doing: &'static str, r: io::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| StoreError::Io {
            file: self.name.clone(),
            doing,
            full: io_kind_full(&e),
            source: e.into(),
        })
    }

    fn redb(&self, doing: &'static str, e: redb::Error) -> StoreError {
        StoreError::Io {
            file: self.name.clone(),
            doing,
            full: redb_full(&e),
            source: e.into(),
        }
    }

    fn fault(&self, doing: &'static str, f: Fault) -> StoreError {
        match f {
            Fault::Redb(e) if redb_damage(&e) => self.damaged(e.to_string()),
            Fault::Redb(e) => self.redb(doing, e),
            Fault::Damaged(what) => self.damaged(what),
        }
    }

    fn damaged(&self, what: String) -> StoreError {
        StoreError::Damaged {
            file: self.name.clone(),
            what,
        }
    }

    /// One write transaction running `f`, committed with `durability`.
    fn write(
        &self,
        db: &Database,
        durability: Durability,
        f: impl FnOnce(&mut Writer<'_>) -> Result<(), Fault>,
    ) -> Result<CommitStats, StoreError> {
        let doing = "committing";
        let mut txn = db.begin_write().map_err(|e| self.redb(doing, e.into()))?;
        txn.set_durability(match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::Deferred => redb::Durability::None,
        })
        .map_err(|e| self.redb(doing, e.into()))?;
        let stats = {
            let mut writer = Writer::open(&txn).map_err(|f| self.fault(doing, f))?;
            f(&mut writer).map_err(|f| self.fault(doing, f))?;
            writer.stats
        };
        txn.commit().map_err(|e| self.redb(doing, e.into()))?;
        Ok(stats)
    }

    /// Writes `state` into a fresh file under the temporary name and renames it into place,
    /// durably.
    fn install(&self, state: &DurableState, saved_at_ms: u64) -> Result<(), StoreError> {
        let tmp = self.tmp_name();
        if self.io("looking for a temporary file", self.disk.exists(&tmp))? {
            self.io("removing a stale temporary file", self.disk.remove(&tmp))?;
        }
        let file = self.io("creating a temporary file", self.disk.open(&tmp, true))?;
        let db = self
            .builder(false)
            .create_with_backend(file)
            .map_err(|e| self.redb("creating a database", database_error(e)))?;
        self.write(&db, Durability::Immediate, |w| {
            w.write_whole(state, saved_at_ms)
        })?;
        db.close()
            .map_err(|e| self.redb("closing the new database", database_error(e)))?;
        self.io(
            "renaming the new file into place",
            self.disk.rename(&tmp, &self.name),
        )?;
        self.io("syncing the folder", self.disk.sync_dir())
    }

    /// Opens the file through an [`Overlay`] with redb's integrity check and reads it whole:
    /// repair and check run for real, and the file's bytes stay as they are.
    fn dry_run(&self) -> Result<Loaded, StoreError> {
        let doing = "reading the store";
        let file = self.io(doing, self.disk.open(&self.name, false))?;
        let overlay =
            Overlay::new(file).map_err(|e| self.redb(doing, StorageError::from(e).into()))?;
        let db = self
            .builder(true)
            .create_with_backend(overlay)
            .map_err(|e| self.fault(doing, Fault::Redb(database_error(e))))?;
        let txn = db
            .begin_read()
            .map_err(|e| self.fault(doing, Fault::Redb(e.into())))?;
        tables::load(&txn).map_err(|f| self.fault(doing, f))
    }
}

/// The committer drives a store: a commit, a sync (an empty synced commit) or a rewrite, each
/// answered with the file's size.
impl<D: Disk> crate::net::commit::Storage for Store<D> {
    fn commit(
        &mut self,
        changes: &Changes,
        sync: bool,
        saved_at_ms: u64,
    ) -> Result<u64, crate::net::commit::StorageError> {
        let durability = if sync {
            Durability::Immediate
        } else {
            Durability::Deferred
        };
        Store::commit(self, changes, saved_at_ms, durability).map_err(storage_error)?;
        self.file_len().map_err(storage_error)
    }

    fn sync(
        &mut self,
        clock: std::time::Duration,
        saved_at_ms: u64,
    ) -> Result<u64, crate::net::commit::StorageError> {
        let empty = Changes {
            ops: Vec::new(),
            clock,
            ..Changes::default()
        };
        Store::commit(self, &empty, saved_at_ms, Durability::Immediate).map_err(storage_error)?;
        self.file_len().map_err(storage_error)
    }

    fn rewrite(
        &mut self,
        state: &DurableState,
        saved_at_ms: u64,
    ) -> Result<u64, crate::net::commit::StorageError> {
        Store::rewrite(self, state, saved_at_ms).map_err(storage_error)?;
        self.file_len().map_err(storage_error)
    }

    fn syncs_in_flight(&self) -> Option<std::time::Duration> {
        self.disk.syncs_in_flight()
    }

    fn complete_syncs(&mut self) {
        self.disk.complete_syncs()
    }
}

fn storage_error(e: StoreError) -> crate::net::commit::StorageError {
    crate::net::commit::StorageError {
        full: e.is_full(),
        message: e.to_string(),
    }
}
