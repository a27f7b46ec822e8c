//! The committer: the task that writes the broker's batches to its store, off the task that
//! routes messages, one job at a time.
//!
//! [`Storage`] is what it drives (the redb store in `store`, a model in tests). A job is
//! a batch to commit (synced or not), a sync of what was committed unsynced, or a rewrite of the
//! whole state into a fresh store (after a failure). In the real build the store's work runs on
//! tokio's blocking pool, so a slow disk never stalls the connections; under the simulator it
//! runs inline (the simulated disk does no IO, and madsim has no blocking pool), and the
//! simulated disk's sync latency is waited out here, in virtual time, before the job's outcome
//! is reported ([`Storage::syncs_in_flight`]): a crash in that wait is a crash in the middle of
//! a sync, and nothing the job covered has been acknowledged.
//!
//! Not here: which batch to commit when, and what output waits for it (`durability.rs`).

use std::time::Duration;

use tokio::sync::mpsc;

use crate::broker::{Changes, DurableState};

/// Why the store could not do a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// The disk is full (or the store would pass its hard limit).
    pub full: bool,
    pub message: String,
}

/// A store the committer can drive. Every method returns the store's size in bytes after it.
pub trait Storage: Send + 'static {
    /// Writes one batch; with `sync`, it is durable when this returns `Ok`.
    fn commit(
        &mut self,
        changes: &Changes,
        sync: bool,
        saved_at_ms: u64,
    ) -> Result<u64, StorageError>;
    /// Makes every batch committed without a sync durable; `clock` is the broker's logical
    /// time now (as `Changes::clock`).
    fn sync(&mut self, clock: Duration, saved_at_ms: u64) -> Result<u64, StorageError>;
    /// Replaces everything stored by `state`, durably, in a fresh file.
    fn rewrite(&mut self, state: &DurableState, saved_at_ms: u64) -> Result<u64, StorageError>;
    /// How long the syncs the last job issued still take (`None`: none in flight, as on a real
    /// disk, whose sync has completed when it returns).
    fn syncs_in_flight(&self) -> Option<Duration> {
        None
    }
    /// Completes the syncs in flight, after their latency was waited out.
    fn complete_syncs(&mut self) {}
}

/// A boxed store is a store, so the lab can run whatever store a test gives it.
impl Storage for Box<dyn Storage> {
    fn commit(
        &mut self,
        changes: &Changes,
        sync: bool,
        saved_at_ms: u64,
    ) -> Result<u64, StorageError> {
        (**self).commit(changes, sync, saved_at_ms)
    }
    fn sync(&mut self, clock: Duration, saved_at_ms: u64) -> Result<u64, StorageError> {
        (**self).sync(clock, saved_at_ms)
    }
    fn rewrite(&mut self, state: &DurableState, saved_at_ms: u64) -> Result<u64, StorageError> {
        (**self).rewrite(state, saved_at_ms)
    }
    fn syncs_in_flight(&self) -> Option<Duration> {
        (**self).syncs_in_flight()
    }
    fn complete_syncs(&mut self) {
        (**self).complete_syncs()
    }
}

/// Work for the store.
#[derive(Debug)]
pub enum Job {
    Commit {
        epoch: u64,
        changes: Changes,
        sync: bool,
        saved_at_ms: u64,
    },
    Sync {
        clock: Duration,
        saved_at_ms: u64,
    },
    Rewrite {
        state: Box<DurableState>,
        saved_at_ms: u64,
    },
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job succeeded (`epoch`: the batch, for a commit); the store now holds `size` bytes.
    Done {
        epoch: Option<u64>,
        size: u64,
    },
    Failed(StorageError),
}

/// The owner's end of the committer: it sends jobs and receives their outcomes, in order.
pub struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl Committer {
    /// Starts the committer task for `storage`.
    pub fn spawn<S: Storage>(storage: S) -> Committer {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        tokio::spawn(run(storage, jobs_rx, outcomes_tx));
        Committer { jobs, outcomes }
    }

    /// Queues a job. The owner sends one at a time and waits for its outcome, so the queue
    /// holds at most one.
    pub fn send(&self, job: Job) {
        // The task ends only when this end is dropped, or if the store panicked (then the
        // owner sees the outcome channel close).
        let _ = self.jobs.send(job);
    }
}

async fn run<S: Storage>(
    mut storage: S,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    while let Some(job) = jobs.recv().await {
        let (back, outcome) = work(storage, job).await;
        storage = back;
        if let Some(latency) = storage.syncs_in_flight() {
            tokio::time::sleep(latency).await;
            storage.complete_syncs();
        }
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

/// Does one job: on the blocking pool in the real build, inline under the simulator.
async fn work<S: Storage>(storage: S, job: Job) -> (S, Outcome) {
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(move || apply(storage, job))
            .await
            .expect("the store panicked")
    }
    #[cfg(madsim)]
    {
        apply(storage, job)
    }
}

fn apply<S: Storage>(mut storage: S, job: Job) -> (S, Outcome) {
    let (epoch, result) = match job {
        Job::Commit {
            epoch,
            changes,
            sync,
            saved_at_ms,
        } => (Some(epoch), storage.commit(&changes, sync, saved_at_ms)),
        Job::Sync { clock, saved_at_ms } => (None, storage.sync(clock, saved_at_ms)),
        Job::Rewrite { state, saved_at_ms } => (None, storage.rewrite(&state, saved_at_ms)),
    };
    let outcome = match result {
        Ok(size) => Outcome::Done { epoch, size },
        Err(e) => Outcome::Failed(e),
    };
    (storage, outcome)
}
