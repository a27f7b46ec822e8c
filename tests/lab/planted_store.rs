//! Bugs planted in test doubles of the broker's store: wrappers of the real store on the
//! simulated disk, given to a run as its [`StoreFactory`]. `planted_bugs.rs` proves the lab
//! catches and replays each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_lab::broker::{Changes, DurableState};
use mqtt_lab::net::clock::since_ms;
use mqtt_lab::net::commit::{Storage, StorageError};
use mqtt_lab::net::store::seam::SeamDisk;
use mqtt_lab::net::store::{Store, StoreOptions};
use mqtt_lab::sim::{STORE_FILE, StoreFactory, real_store};

/// One planted storage bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBug {
    /// A batch's sync is reported complete as soon as it is issued; it completes only when the
    /// store's next job starts. The broker acknowledges what is not yet durable.
    AckBeforeSync,
    /// A failed commit or sync (other than a full disk) is reported as a success. The broker
    /// acknowledges what never reached the disk, and the failed store takes no write again.
    SyncErrorIgnored,
    /// The store keeps every batch, but recovery starts from the state before the newest one
    /// (read from a copy that lags one batch behind).
    LastBatchIgnoredAtRecovery,
    /// Recovery accepts a batch cut by a crash as whole: a batch whose sync did not complete
    /// is recovered with every change but its last (kept aside, as a torn tail would be on
    /// disk, and written at the next start).
    TornBatchAccepted,
}

/// The store factory of a run with `bug` planted.
pub fn store_factory(bug: StoreBug) -> StoreFactory {
    let real = real_store();
    match bug {
        StoreBug::AckBeforeSync => Arc::new(move |disk| {
            let (inner, state) = real(disk)?;
            Ok((
                Box::new(Early { inner, owed: false }) as Box<dyn Storage>,
                state,
            ))
        }),
        StoreBug::SyncErrorIgnored => Arc::new(move |disk| {
            let (inner, state) = real(disk)?;
            Ok((Box::new(Deaf { inner, size: 0 }) as Box<dyn Storage>, state))
        }),
        StoreBug::LastBatchIgnoredAtRecovery => Arc::new(Lagging::open),
        StoreBug::TornBatchAccepted => {
            let tail: Tail = Arc::default();
            Arc::new(move |disk| Torn::open(&real, &tail, disk))
        }
    }
}

/// [`StoreBug::AckBeforeSync`].
struct Early {
    inner: Box<dyn Storage>,
    /// A sync was issued and not completed.
    owed: bool,
}

impl Early {
    fn begin(&mut self) {
        if self.owed {
            self.inner.complete_syncs();
            self.owed = false;
        }
    }

    fn end<T>(&mut self, r: T) -> T {
        self.owed = self.inner.syncs_in_flight().is_some();
        r
    }
}

impl Storage for Early {
    fn commit(&mut self, c: &Changes, sync: bool, at: u64) -> Result<u64, StorageError> {
        self.begin();
        let r = self.inner.commit(c, sync, at);
        self.end(r)
    }
    fn sync(&mut self, clock: Duration, at: u64) -> Result<u64, StorageError> {
        self.begin();
        let r = self.inner.sync(clock, at);
        self.end(r)
    }
    fn rewrite(&mut self, state: &DurableState, at: u64) -> Result<u64, StorageError> {
        self.begin();
        let r = self.inner.rewrite(state, at);
        self.end(r)
    }
    fn syncs_in_flight(&self) -> Option<Duration> {
        None
    }
}

/// [`StoreBug::SyncErrorIgnored`].
struct Deaf {
    inner: Box<dyn Storage>,
    /// The size the last successful job reported.
    size: u64,
}

impl Deaf {
    fn hear(&mut self, r: Result<u64, StorageError>) -> Result<u64, StorageError> {
        match r {
            Ok(size) => {
                self.size = size;
                Ok(size)
            }
            Err(e) if e.full => Err(e),
            Err(_) => Ok(self.size),
        }
    }
}

impl Storage for Deaf {
    fn commit(&mut self, c: &Changes, sync: bool, at: u64) -> Result<u64, StorageError> {
        let r = self.inner.commit(c, sync, at);
        self.hear(r)
    }
    fn sync(&mut self, clock: Duration, at: u64) -> Result<u64, StorageError> {
        let r = self.inner.sync(clock, at);
        self.hear(r)
    }
    fn rewrite(&mut self, state: &DurableState, at: u64) -> Result<u64, StorageError> {
        self.inner.rewrite(state, at)
    }
    fn syncs_in_flight(&self) -> Option<Duration> {
        self.inner.syncs_in_flight()
    }
    fn complete_syncs(&mut self) {
        self.inner.complete_syncs()
    }
}

/// The lagging copy [`StoreBug::LastBatchIgnoredAtRecovery`] recovers from.
const LAGGING_FILE: &str = "lagging.redb";

/// [`StoreBug::LastBatchIgnoredAtRecovery`]: the real store, and a copy on the same disk
/// that receives each batch when the next one is committed.
struct Lagging {
    store: Store<SeamDisk>,
    copy: Store<SeamDisk>,
    /// The newest batch, not yet in the copy.
    newest: Option<Changes>,
}

impl Lagging {
    fn open(
        disk: SeamDisk,
    ) -> Result<(Box<dyn Storage>, Option<DurableState>), mqtt_lab::net::store::StoreError> {
        let options = StoreOptions {
            cache_bytes: 4 << 20,
        };
        let (mut store, _ignored) = Store::open(disk.clone(), STORE_FILE, options)?;
        let (copy, recovered) = Store::open(disk, LAGGING_FILE, options)?;
        // The store is made to agree with what the broker resumes from.
        store.rewrite(&recovered.state, recovered.saved_at_ms)?;
        let state = recovered.aged(since_ms);
        let lagging = Lagging {
            store,
            copy,
            newest: None,
        };
        Ok((Box::new(lagging) as Box<dyn Storage>, state))
    }
}

impl Storage for Lagging {
    fn commit(&mut self, c: &Changes, sync: bool, at: u64) -> Result<u64, StorageError> {
        let size = Storage::commit(&mut self.store, c, sync, at)?;
        if let Some(older) = self.newest.replace(c.clone()) {
            Storage::commit(&mut self.copy, &older, true, at)?;
        }
        Ok(size)
    }
    fn sync(&mut self, clock: Duration, at: u64) -> Result<u64, StorageError> {
        Storage::sync(&mut self.copy, clock, at)?;
        Storage::sync(&mut self.store, clock, at)
    }
    fn rewrite(&mut self, state: &DurableState, at: u64) -> Result<u64, StorageError> {
        self.newest = None;
        Storage::rewrite(&mut self.copy, state, at)?;
        Storage::rewrite(&mut self.store, state, at)
    }
    fn syncs_in_flight(&self) -> Option<Duration> {
        Storage::syncs_in_flight(&self.store)
    }
    fn complete_syncs(&mut self) {
        Storage::complete_syncs(&mut self.store)
    }
}

/// What a crash in the middle of a sync leaves of the batch being synced, for
/// [`StoreBug::TornBatchAccepted`]: its changes but the last, and when it was committed. One
/// factory serves one run at a time (the proofs run their seeds in turn); a fresh disk, the
/// first start of a run, drops what an earlier run left.
type Tail = Arc<Mutex<Option<(Changes, u64)>>>;

/// [`StoreBug::TornBatchAccepted`]: the real store, which notes each batch's torn form until
/// the batch is durable; the next start writes a noted torn form before recovering.
struct Torn {
    inner: Box<dyn Storage>,
    tail: Tail,
}

impl Torn {
    fn open(
        real: &StoreFactory,
        tail: &Tail,
        disk: SeamDisk,
    ) -> Result<(Box<dyn Storage>, Option<DurableState>), mqtt_lab::net::store::StoreError> {
        let torn = tail.lock().expect("not poisoned").take();
        let (mut inner, mut state) = real(disk.clone())?;
        match (&state, torn) {
            // A fresh disk: a new run, whatever an earlier one left.
            (None, _) | (_, None) => {}
            (Some(_), Some((changes, at))) => {
                if Storage::commit(&mut *inner, &changes, true, at).is_ok() {
                    Storage::complete_syncs(&mut *inner);
                }
                drop(inner);
                (inner, state) = real(disk)?;
            }
        }
        let torn = Torn {
            inner,
            tail: tail.clone(),
        };
        Ok((Box::new(torn) as Box<dyn Storage>, state))
    }

    fn note(&self, torn: Option<(Changes, u64)>) {
        *self.tail.lock().expect("not poisoned") = torn;
    }
}

impl Storage for Torn {
    fn commit(&mut self, c: &Changes, sync: bool, at: u64) -> Result<u64, StorageError> {
        let kept = c.ops.len().saturating_sub(1);
        self.note((kept > 0).then(|| {
            let torn = Changes {
                ops: c.ops[..kept].to_vec(),
                ..c.clone()
            };
            (torn, at)
        }));
        let r = self.inner.commit(c, sync, at);
        if r.is_err() || self.inner.syncs_in_flight().is_none() {
            self.note(None);
        }
        r
    }
    fn sync(&mut self, clock: Duration, at: u64) -> Result<u64, StorageError> {
        self.inner.sync(clock, at)
    }
    fn rewrite(&mut self, state: &DurableState, at: u64) -> Result<u64, StorageError> {
        self.note(None);
        self.inner.rewrite(state, at)
    }
    fn syncs_in_flight(&self) -> Option<Duration> {
        self.inner.syncs_in_flight()
    }
    fn complete_syncs(&mut self) {
        self.inner.complete_syncs();
        self.note(None);
    }
}
