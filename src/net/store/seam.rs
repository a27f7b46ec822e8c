//! The disk seam: [`SeamDisk`], a [`Disk`] in memory that can crash, and [`DiskControl`], the
//! handle the lab (or a test) crashes it and switches its faults with.
//!
//! The simulator's own file system has no crash semantics, so the lab's broker writes its store
//! here. Each file keeps two images: what reads see (the page cache) and what survives a crash
//! (the medium), plus the operations (`write`, `set_len`) issued since the last sync. The folder
//! keeps names the same way: what listings see, what is durable, and the creations, renames and
//! removals since the last [`Disk::sync_dir`].
//!
//! - **sync**: `sync_data` makes the file's pending operations durable before it returns `Ok`;
//!   `sync_dir` does the same for the folder. With a sync latency
//!   ([`DiskControl::set_sync_latency`]) a sync only marks what it covers as requested: it is
//!   durable once the caller, having waited the latency, calls [`Disk::complete_syncs`], and a
//!   crash before then treats it as unsynced (a seeded prefix survives): a crash in the middle
//!   of a sync.
//! - **crash** ([`DiskControl::crash`]): per file, a seeded prefix of the pending operations
//!   reaches the medium; the first operation after that prefix, if it is a write of two bytes or
//!   more, may leave a seeded byte prefix of itself (a torn write; a single byte is never torn,
//!   a length change never is); the rest is lost. The folder keeps a seeded prefix of its pending
//!   operations. Then reads see the medium again, every handle opened before the crash is stale
//!   (every call through it fails and changes nothing), and every lock is released.
//! - **sync error** ([`DiskControl::set_sync_error`]): every sync fails with an I/O error, and,
//!   as on Linux, the writes it covered never become durable while reads still see them.
//! - **disk full** ([`DiskControl::set_full`]): a write or length change that would make a file
//!   longer fails with `StorageFull`; writes inside a file's length and shrinking still succeed.
//!
//! Bounds: a file is at most [`MAX_FILE_LEN`] bytes; when a file's unsynced operations pass
//! [`MAX_UNSYNCED_BYTES`], or the folder's pass [`MAX_UNSYNCED_DIR_OPS`], the oldest reach the
//! medium, as a kernel writes back dirty pages on its own (a crash may keep unsynced data).
//!
//! Deterministic: every random choice comes from the seed given to [`SeamDisk::new`], state is
//! kept in ordered collections, and nothing here reads a clock or runs a task, so both builds
//! (real and `--cfg madsim`) behave the same. The lock is held in memory, not as a file.
//!
//! Not here: when the lab crashes the disk or switches a fault (the world and its supervisor),
//! and the waiting out of a sync's latency (the committer, in virtual time).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{BackendError, StorageBackend};

use super::disk::{Disk, LockError, check_name};

/// Largest file the seam holds.
pub const MAX_FILE_LEN: u64 = 1 << 30;
/// Unsynced bytes a file may carry before the oldest operations reach the medium unasked.
pub const MAX_UNSYNCED_BYTES: usize = 16 << 20;
/// Unsynced folder operations before the oldest reach the medium unasked.
pub const MAX_UNSYNCED_DIR_OPS: usize = 1024;
/// What one pending operation costs towards [`MAX_UNSYNCED_BYTES`] besides its data.
const OP_OVERHEAD: usize = 16;

/// The faults switched on at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskFaults {
    pub sync_error: bool,
    pub full: bool,
}

/// A simulated disk: one folder of files in memory with crash semantics. Cheap to clone; all
/// clones are the same disk, which outlives the broker that writes to it.
#[derive(Debug, Clone)]
pub struct SeamDisk {
    shared: Arc<Mutex<Medium>>,
}

/// The handle that crashes a [`SeamDisk`] and switches its faults. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DiskControl {
    shared: Arc<Mutex<Medium>>,
}

/// An open file of a [`SeamDisk`], valid until the disk crashes.
#[derive(Debug)]
pub struct SeamFile {
    shared: Arc<Mutex<Medium>>,
    inode: u64,
    incarnation: u64,
}

/// A held lock of a [`SeamDisk`]; released on drop or by a crash.
#[derive(Debug)]
pub struct SeamLock {
    shared: Arc<Mutex<Medium>>,
    name: String,
    id: u64,
}

#[derive(Debug)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    fn cost(&self) -> usize {
        match self {
            Op::Write { data, .. } => data.len() + OP_OVERHEAD,
            Op::SetLen(_) => OP_OVERHEAD,
        }
    }

    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            Op::Write { offset, data } => write_at(image, *offset, data),
            Op::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }
}

#[derive(Debug)]
enum DirOp {
    Link { name: String, inode: u64 },
    Rename { from: String, to: String },
    Remove { name: String },
}

impl DirOp {
    /// Applies the operation to a name table; an operation whose source name is missing (its
    /// creation was lost to a failed sync) changes nothing.
    fn apply(&self, names: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Link { name, inode } => {
                names.insert(name.clone(), *inode);
            }
            DirOp::Rename { from, to } => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
            DirOp::Remove { name } => {
                names.remove(name);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inode {
    /// What survives a crash.
    durable: Vec<u8>,
    /// What reads see.
    cache: Vec<u8>,
    /// Operations since the last sync, oldest first.
    pending: VecDeque<Op>,
    pending_cost: usize,
    /// How many of `pending` (the oldest) a sync in flight covers.
    requested: usize,
    /// Handles open in the current incarnation.
    open: usize,
}

impl Inode {
    fn push(&mut self, op: Op) {
        op.apply(&mut self.cache);
        self.pending_cost += op.cost();
        self.pending.push_back(op);
        while self.pending_cost > MAX_UNSYNCED_BYTES {
            let oldest = self
                .pending
                .pop_front()
                .expect("a cost implies an operation");
            self.pending_cost -= oldest.cost();
            self.requested = self.requested.saturating_sub(1);
            oldest.apply(&mut self.durable);
        }
    }

    /// Makes the oldest `count` pending operations durable.
    fn make_durable(&mut self, count: usize) {
        for op in self.pending.drain(..count) {
            self.pending_cost -= op.cost();
            op.apply(&mut self.durable);
        }
        self.requested = self.requested.saturating_sub(count);
    }

    fn forget_pending(&mut self) {
        self.pending.clear();
        self.pending_cost = 0;
        self.requested = 0;
    }

    /// Keeps a seeded prefix of the pending operations, perhaps with the next write torn.
    fn crash(&mut self, rng: &mut ChaCha8Rng) {
        let kept = rng.random_range(0..=self.pending.len());
        for op in self.pending.iter().take(kept) {
            op.apply(&mut self.durable);
        }
        if let Some(Op::Write { offset, data }) = self.pending.get(kept)
            && data.len() > 1
        {
            let cut = rng.random_range(0..data.len());
            if cut > 0 {
                write_at(&mut self.durable, *offset, &data[..cut]);
            }
        }
        self.forget_pending();
        self.cache = self.durable.clone();
        self.open = 0;
    }
}

#[derive(Debug)]
struct Medium {
    rng: ChaCha8Rng,
    /// Bumped by every crash; handles of an older incarnation are stale.
    incarnation: u64,
    faults: DiskFaults,
    /// How long a sync takes; zero: it completes before it returns.
    sync_latency: Duration,
    /// A sync was issued with a latency and not completed yet.
    in_flight: bool,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// The names listings see.
    names: BTreeMap<String, u64>,
    /// The names that survive a crash.
    durable_names: BTreeMap<String, u64>,
    dir_pending: VecDeque<DirOp>,
    /// How many of `dir_pending` (the oldest) a sync in flight covers.
    dir_requested: usize,
    /// Held locks: name → lock id.
    locks: BTreeMap<String, u64>,
    next_lock: u64,
}

fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

/// Converts a length already checked against [`MAX_FILE_LEN`].
fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("lengths are bounded by MAX_FILE_LEN")
}

fn sync_failed() -> io::Error {
    io::Error::other("simulated disk: sync failed (EIO)")
}

fn stale() -> io::Error {
    io::Error::new(
        io::ErrorKind::StaleNetworkFileHandle,
        "simulated disk: the file was opened before the disk crashed",
    )
}

impl Medium {
    fn lock_shared(shared: &Mutex<Medium>) -> MutexGuard<'_, Medium> {
        shared.lock().expect("simulated disk state")
    }

    fn inode(&mut self, inode: u64, incarnation: u64) -> io::Result<&mut Inode> {
        if incarnation != self.incarnation {
            return Err(stale());
        }
        Ok(self
            .inodes
            .get_mut(&inode)
            .expect("an open handle keeps its inode"))
    }

    /// Refuses to make a file longer than `len` allows: beyond the largest file, or on a full
    /// disk.
    fn check_growth(&self, current: usize, len: u64) -> io::Result<()> {
        if len > MAX_FILE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("simulated disk: a file is at most {MAX_FILE_LEN} bytes"),
            ));
        }
        if self.faults.full && len > current as u64 {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk: no space left on device",
            ));
        }
        Ok(())
    }

    fn dir_push(&mut self, op: DirOp) {
        op.apply(&mut self.names);
        self.dir_pending.push_back(op);
        while self.dir_pending.len() > MAX_UNSYNCED_DIR_OPS {
            let oldest = self.dir_pending.pop_front().expect("over the bound");
            self.dir_requested = self.dir_requested.saturating_sub(1);
            oldest.apply(&mut self.durable_names);
        }
        self.collect();
    }

    /// Renames or removes the existing name `name`.
    fn change_name(&mut self, name: &str, op: DirOp) -> io::Result<()> {
        check_name(name)?;
        if !self.names.contains_key(name) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.dir_push(op);
        Ok(())
    }

    /// Drops every file no name refers to, durable or not, and no handle holds.
    fn collect(&mut self) {
        let names = &self.names;
        let durable_names = &self.durable_names;
        self.inodes.retain(|inode, file| {
            file.open > 0
                || names.values().any(|i| i == inode)
                || durable_names.values().any(|i| i == inode)
        });
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        if self.faults.sync_error {
            self.dir_pending.clear();
            self.dir_requested = 0;
            self.collect();
            return Err(sync_failed());
        }
        if self.sync_latency.is_zero() {
            self.dir_durable(self.dir_pending.len());
        } else {
            self.dir_requested = self.dir_pending.len();
            self.in_flight = true;
        }
        Ok(())
    }

    /// Makes the oldest `count` pending folder operations durable.
    fn dir_durable(&mut self, count: usize) {
        for op in self.dir_pending.drain(..count) {
            op.apply(&mut self.durable_names);
        }
        self.dir_requested = self.dir_requested.saturating_sub(count);
        self.collect();
    }

    /// A sync of file `inode` succeeds: now, or once the syncs in flight complete.
    fn sync_file(&mut self, inode: u64) {
        let latency = !self.sync_latency.is_zero();
        let file = self
            .inodes
            .get_mut(&inode)
            .expect("an open handle keeps its inode");
        if latency {
            file.requested = file.pending.len();
            self.in_flight = true;
        } else {
            let all = file.pending.len();
            file.make_durable(all);
        }
    }

    /// Completes every sync in flight.
    fn complete_syncs(&mut self) {
        for file in self.inodes.values_mut() {
            let count = file.requested;
            file.make_durable(count);
        }
        self.dir_durable(self.dir_requested);
        self.in_flight = false;
    }

    fn crash(&mut self) {
        for file in self.inodes.values_mut() {
            file.crash(&mut self.rng);
        }
        let kept = self.rng.random_range(0..=self.dir_pending.len());
        for op in self.dir_pending.iter().take(kept) {
            op.apply(&mut self.durable_names);
        }
        self.dir_pending.clear();
        self.dir_requested = 0;
        self.in_flight = false;
        self.names = self.durable_names.clone();
        self.incarnation += 1;
        self.locks.clear();
        self.collect();
    }
}

impl SeamDisk {
    /// An empty disk whose crashes draw from `seed`.
    pub fn new(seed: u64) -> SeamDisk {
        let medium = Medium {
            rng: ChaCha8Rng::seed_from_u64(seed),
            incarnation: 0,
            faults: DiskFaults::default(),
            sync_latency: Duration::ZERO,
            in_flight: false,
            inodes: BTreeMap::new(),
            next_inode: 0,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dir_pending: VecDeque::new(),
            dir_requested: 0,
            locks: BTreeMap::new(),
            next_lock: 0,
        };
        SeamDisk {
            shared: Arc::new(Mutex::new(medium)),
        }
    }

    pub fn control(&self) -> DiskControl {
        DiskControl {
            shared: self.shared.clone(),
        }
    }

    fn medium(&self) -> MutexGuard<'_, Medium> {
        Medium::lock_shared(&self.shared)
    }
}

impl DiskControl {
    /// Crashes the disk now: unsynced data is lost or partly kept, handles go stale, locks are
    /// released.
    pub fn crash(&self) {
        Medium::lock_shared(&self.shared).crash();
    }

    /// Makes every sync fail (`true`) or succeed again (`false`).
    pub fn set_sync_error(&self, on: bool) {
        Medium::lock_shared(&self.shared).faults.sync_error = on;
    }

    /// Makes every growth fail with `StorageFull` (`true`) or succeed again (`false`).
    pub fn set_full(&self, on: bool) {
        Medium::lock_shared(&self.shared).faults.full = on;
    }

    /// Sets how long every sync takes from now on (zero: it completes before it returns).
    pub fn set_sync_latency(&self, latency: Duration) {
        Medium::lock_shared(&self.shared).sync_latency = latency;
    }

    pub fn sync_latency(&self) -> Duration {
        Medium::lock_shared(&self.shared).sync_latency
    }

    /// Whether a sync is in flight: issued, not completed.
    pub fn sync_in_flight(&self) -> bool {
        Medium::lock_shared(&self.shared).in_flight
    }

    pub fn faults(&self) -> DiskFaults {
        Medium::lock_shared(&self.shared).faults
    }

    /// How many times the disk has crashed.
    pub fn crashes(&self) -> u64 {
        Medium::lock_shared(&self.shared).incarnation
    }
}

impl Disk for SeamDisk {
    type File = SeamFile;
    type Lock = SeamLock;

    fn open(&self, name: &str, create: bool) -> io::Result<SeamFile> {
        check_name(name)?;
        let mut medium = self.medium();
        let inode = match medium.names.get(name) {
            Some(&inode) => inode,
            None if create => {
                let inode = medium.next_inode;
                medium.next_inode += 1;
                medium.inodes.insert(inode, Inode::default());
                medium.dir_push(DirOp::Link {
                    name: name.to_string(),
                    inode,
                });
                medium.sync_dir()?;
                inode
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        let incarnation = medium.incarnation;
        medium.inodes.get_mut(&inode).expect("a named inode").open += 1;
        Ok(SeamFile {
            shared: self.shared.clone(),
            inode,
            incarnation,
        })
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        check_name(name)?;
        Ok(self.medium().names.contains_key(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        check_name(to)?;
        self.medium().change_name(
            from,
            DirOp::Rename {
                from: from.to_string(),
                to: to.to_string(),
            },
        )
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.medium().change_name(
            name,
            DirOp::Remove {
                name: name.to_string(),
            },
        )
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.medium().sync_dir()
    }

    fn syncs_in_flight(&self) -> Option<Duration> {
        let medium = self.medium();
        medium.in_flight.then_some(medium.sync_latency)
    }

    fn complete_syncs(&self) {
        self.medium().complete_syncs();
    }

    fn lock(&self, name: &str) -> Result<SeamLock, LockError> {
        check_name(name).map_err(|source| LockError::Io {
            name: name.to_string(),
            source,
        })?;
        let mut medium = self.medium();
        if medium.locks.contains_key(name) {
            return Err(LockError::InUse {
                name: name.to_string(),
                holder: format!("a store of incarnation {}", medium.incarnation),
            });
        }
        let id = medium.next_lock;
        medium.next_lock += 1;
        medium.locks.insert(name.to_string(), id);
        Ok(SeamLock {
            shared: self.shared.clone(),
            name: name.to_string(),
            id,
        })
    }
}

impl Drop for SeamLock {
    fn drop(&mut self) {
        let mut medium = Medium::lock_shared(&self.shared);
        if medium.locks.get(&self.name) == Some(&self.id) {
            medium.locks.remove(&self.name);
        }
    }
}

impl SeamFile {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Medium, u64) -> io::Result<T>,
    ) -> Result<T, BackendError> {
        let mut medium = Medium::lock_shared(&self.shared);
        medium.inode(self.inode, self.incarnation)?;
        Ok(f(&mut medium, self.inode)?)
    }
}

impl StorageBackend for SeamFile {
    fn len(&self) -> Result<u64, BackendError> {
        self.with(|m, i| Ok(m.inodes[&i].cache.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.with(|m, i| {
            let cache = &m.inodes[&i].cache;
            let end = offset.checked_add(out.len() as u64);
            match end {
                Some(end) if end <= cache.len() as u64 => {
                    out.copy_from_slice(&cache[to_usize(offset)..to_usize(end)]);
                    Ok(())
                }
                _ => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "simulated disk: read past the end of the file",
                )),
            }
        })
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        self.with(|m, i| {
            m.check_growth(m.inodes[&i].cache.len(), len)?;
            m.inode(i, m.incarnation)?.push(Op::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        self.with(|m, i| {
            let sync_error = m.faults.sync_error;
            let file = m.inode(i, m.incarnation)?;
            if sync_error {
                file.forget_pending();
                return Err(sync_failed());
            }
            m.sync_file(i);
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.with(|m, i| {
            let end = offset.checked_add(data.len() as u64).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "write past u64::MAX")
            })?;
            m.check_growth(m.inodes[&i].cache.len(), end)?;
            m.inode(i, m.incarnation)?.push(Op::Write {
                offset,
                data: data.to_vec(),
            });
            Ok(())
        })
    }
}

impl Drop for SeamFile {
    fn drop(&mut self) {
        let mut medium = Medium::lock_shared(&self.shared);
        if self.incarnation == medium.incarnation {
            medium
                .inodes
                .get_mut(&self.inode)
                .expect("an open handle keeps its inode")
                .open -= 1;
            medium.collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU64, Ordering};

    use redb::{Builder, Database, Durability};

    use super::*;
    use crate::net::store::disk::tests::{ROWS, rows};

    const SEEDS: std::ops::Range<u64> = 0..64;

    /// What reads of `name` see now, through a fresh handle.
    fn image(disk: &SeamDisk, name: &str) -> Vec<u8> {
        let file = disk.open(name, false).unwrap();
        let mut out = vec![0; file.len().unwrap() as usize];
        file.read(0, &mut out).unwrap();
        out
    }

    fn kind(err: BackendError) -> io::ErrorKind {
        match err {
            BackendError::Io(e) => e.kind(),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    /// A file holding `synced`, durable, on a fresh disk.
    fn synced_file(seed: u64, synced: &[u8]) -> (SeamDisk, SeamFile) {
        let disk = SeamDisk::new(seed);
        let file = disk.open("f", true).unwrap();
        file.write(0, synced).unwrap();
        file.sync_data().unwrap();
        (disk, file)
    }

    #[test]
    fn synced_data_survives_every_crash() {
        for seed in SEEDS {
            let (disk, file) = synced_file(seed, b"synced bytes");
            file.write(100, b"unsynced").unwrap();
            file.set_len(4).unwrap();
            disk.control().crash();
            let after = image(&disk, "f");
            assert_eq!(
                &after[..12.min(after.len())],
                &b"synced bytes"[..12.min(after.len())]
            );
            assert!(after.len() >= 4, "seed {seed}: {after:?}");
            disk.control().crash();
            assert_eq!(
                image(&disk, "f"),
                after,
                "seed {seed}: nothing pending, nothing moves"
            );
        }
        for seed in SEEDS {
            let (disk, _file) = synced_file(seed, b"synced bytes");
            disk.control().crash();
            assert_eq!(image(&disk, "f"), b"synced bytes", "seed {seed}");
        }
    }

    #[test]
    fn unsynced_writes_are_lost_or_only_a_prefix_of_them_survives() {
        let writes: [(u64, [u8; 8]); 3] = [(0, [1; 8]), (8, [2; 8]), (16, [3; 8])];
        let mut kept_counts = BTreeSet::new();
        for seed in SEEDS {
            let (disk, file) = synced_file(seed, b"");
            for (offset, data) in &writes {
                file.write(*offset, data).unwrap();
            }
            disk.control().crash();
            let after = image(&disk, "f");
            // Some whole writes, then perhaps a byte prefix of the next one.
            let whole = after.len() / 8;
            assert!(whole <= writes.len(), "seed {seed}: {after:?}");
            for (i, byte) in after.iter().enumerate() {
                assert_eq!(*byte, writes[i / 8].1[0], "seed {seed}: {after:?}");
            }
            kept_counts.insert(after.len());
        }
        assert!(kept_counts.contains(&0), "some crash loses every write");
        assert!(kept_counts.contains(&24), "some crash keeps every write");
    }

    #[test]
    fn a_torn_write_keeps_only_a_prefix_of_its_bytes() {
        let mut torn = 0;
        for seed in SEEDS {
            let (disk, file) = synced_file(seed, &[0; 100]);
            file.write(0, &[0xab; 100]).unwrap();
            disk.control().crash();
            let after = image(&disk, "f");
            assert_eq!(after.len(), 100);
            let cut = after.iter().take_while(|b| **b == 0xab).count();
            assert!(
                after[cut..].iter().all(|b| *b == 0),
                "seed {seed}: {after:?}"
            );
            if 0 < cut && cut < 100 {
                torn += 1;
            }
        }
        assert!(torn > 0, "some crash tears the write");
    }

    #[test]
    fn a_handle_opened_before_a_crash_can_neither_write_nor_read() {
        let (disk, old) = synced_file(1, b"before");
        disk.control().crash();
        assert_eq!(
            kind(old.write(0, b"after!").unwrap_err()),
            io::ErrorKind::StaleNetworkFileHandle
        );
        assert!(old.set_len(0).is_err());
        assert!(old.sync_data().is_err());
        assert!(old.len().is_err());
        drop(old);
        assert_eq!(image(&disk, "f"), b"before");
        disk.control().crash();
        assert_eq!(image(&disk, "f"), b"before");
    }

    #[test]
    fn a_full_disk_refuses_only_writes_that_grow_a_file() {
        let (disk, file) = synced_file(2, &[0; 10]);
        disk.control().set_full(true);
        file.write(0, &[1; 10]).unwrap();
        assert_eq!(
            kind(file.write(5, &[2; 10]).unwrap_err()),
            io::ErrorKind::StorageFull
        );
        assert_eq!(
            kind(file.set_len(11).unwrap_err()),
            io::ErrorKind::StorageFull
        );
        file.set_len(5).unwrap();
        file.sync_data().unwrap();
        assert_eq!(image(&disk, "f"), [1; 5]);
        disk.control().set_full(false);
        file.write(5, &[3; 10]).unwrap();
        assert_eq!(image(&disk, "f").len(), 15);
    }

    #[test]
    fn after_a_failed_sync_reads_see_the_writes_and_a_crash_loses_them() {
        for seed in SEEDS {
            let (disk, file) = synced_file(seed, b"old");
            file.write(0, b"new").unwrap();
            disk.control().set_sync_error(true);
            assert!(file.sync_data().is_err());
            assert_eq!(image(&disk, "f"), b"new", "reads see the unsynced write");
            disk.control().set_sync_error(false);
            file.sync_data().unwrap();
            disk.control().crash();
            assert_eq!(
                image(&disk, "f"),
                b"old",
                "seed {seed}: the failed write never lands"
            );
        }
    }

    /// Runs the same writes and crashes on a disk of `seed`; returns what survives.
    fn crashed_bytes(seed: u64) -> (Vec<u8>, bool) {
        let disk = SeamDisk::new(seed);
        let file = disk.open("f", true).unwrap();
        for round in 0..4u8 {
            for i in 0..8u64 {
                file.write(i * 7, &[round * 10 + i as u8; 9]).unwrap();
            }
            if round % 2 == 0 {
                file.sync_data().unwrap();
            }
        }
        disk.open("g", true).unwrap();
        disk.rename("g", "h").unwrap();
        disk.control().crash();
        (image(&disk, "f"), disk.exists("h").unwrap())
    }

    #[test]
    fn the_same_seed_keeps_the_same_bytes_after_a_crash() {
        let mut outcomes = BTreeSet::new();
        for seed in SEEDS {
            let first = crashed_bytes(seed);
            assert_eq!(first, crashed_bytes(seed), "seed {seed}");
            outcomes.insert(first);
        }
        assert!(outcomes.len() > 1, "seeds choose different outcomes");
    }

    #[test]
    fn an_unsynced_rename_is_lost_or_kept_whole_and_a_synced_one_survives() {
        let mut seen = BTreeSet::new();
        for seed in SEEDS {
            let disk = SeamDisk::new(seed);
            let a = disk.open("a", true).unwrap();
            a.write(0, b"a").unwrap();
            a.sync_data().unwrap();
            let b = disk.open("b", true).unwrap();
            b.write(0, b"b").unwrap();
            b.sync_data().unwrap();
            disk.rename("a", "b").unwrap();
            assert!(!disk.exists("a").unwrap());
            disk.control().crash();
            let state = (disk.exists("a").unwrap(), image(&disk, "b"));
            assert!(
                state == (true, b"b".to_vec()) || state == (false, b"a".to_vec()),
                "seed {seed}: {state:?}"
            );
            seen.insert(state);
        }
        assert_eq!(seen.len(), 2, "both outcomes happen");

        let disk = SeamDisk::new(3);
        disk.open("a", true).unwrap();
        disk.remove("a").unwrap();
        disk.sync_dir().unwrap();
        disk.control().crash();
        assert!(!disk.exists("a").unwrap());
    }

    #[test]
    fn a_crash_releases_the_lock_and_a_stale_guard_cannot_release_its_successor() {
        let disk = SeamDisk::new(4);
        let old = disk.lock("store.lock").unwrap();
        assert!(matches!(
            disk.lock("store.lock"),
            Err(LockError::InUse { .. })
        ));
        disk.control().crash();
        let new = disk.lock("store.lock").unwrap();
        drop(old);
        assert!(matches!(
            disk.lock("store.lock"),
            Err(LockError::InUse { .. })
        ));
        drop(new);
        disk.lock("store.lock").unwrap();
    }

    #[test]
    fn a_sync_in_flight_is_durable_only_once_completed_and_a_crash_inside_it_keeps_a_prefix() {
        let latency = Duration::from_millis(5);
        let mut kept = BTreeSet::new();
        for seed in SEEDS {
            let (disk, file) = synced_file(seed, b"old");
            let control = disk.control();
            control.set_sync_latency(latency);
            assert_eq!(disk.syncs_in_flight(), None, "nothing issued yet");
            file.write(0, b"new").unwrap();
            file.write(3, b" and more").unwrap();
            file.sync_data().unwrap();
            assert!(control.sync_in_flight());
            assert_eq!(disk.syncs_in_flight(), Some(latency));
            assert_eq!(image(&disk, "f"), b"new and more", "reads see the writes");
            control.crash();
            assert!(!control.sync_in_flight(), "a crash ends the sync");
            let after = image(&disk, "f");
            let torn_first = (0..=3).any(|k| after == [&b"new"[..k], &b"old"[k..]].concat());
            let torn_second = (0..=9).any(|k| after == [&b"new"[..], &b" and more"[..k]].concat());
            assert!(torn_first || torn_second, "seed {seed}: {after:?}");
            kept.insert(after);
        }
        assert!(kept.contains(b"old".as_slice()), "{kept:?}");
        assert!(kept.contains(b"new and more".as_slice()), "{kept:?}");

        for seed in SEEDS {
            let (disk, file) = synced_file(seed, b"old");
            disk.control().set_sync_latency(latency);
            file.write(0, b"new").unwrap();
            file.sync_data().unwrap();
            file.write(3, b"!").unwrap();
            disk.complete_syncs();
            assert_eq!(disk.syncs_in_flight(), None);
            disk.control().crash();
            let after = image(&disk, "f");
            assert!(
                after == b"new" || after == b"new!",
                "seed {seed}: {after:?}"
            );
        }
    }

    #[test]
    fn a_folder_sync_in_flight_completes_with_the_files() {
        let mut outcomes = BTreeSet::new();
        for seed in SEEDS {
            let disk = SeamDisk::new(seed);
            disk.control().set_sync_latency(Duration::from_millis(1));
            let _a = disk.open("a", true).unwrap();
            disk.complete_syncs();
            disk.rename("a", "b").unwrap();
            disk.sync_dir().unwrap();
            assert!(disk.control().sync_in_flight());
            disk.control().crash();
            outcomes.insert((disk.exists("a").unwrap(), disk.exists("b").unwrap()));

            let disk = SeamDisk::new(seed);
            disk.control().set_sync_latency(Duration::from_millis(1));
            let _a = disk.open("a", true).unwrap();
            disk.rename("a", "b").unwrap();
            disk.sync_dir().unwrap();
            disk.complete_syncs();
            disk.control().crash();
            assert_eq!(
                (disk.exists("a").unwrap(), disk.exists("b").unwrap()),
                (false, true),
                "seed {seed}"
            );
        }
        assert_eq!(
            outcomes,
            BTreeSet::from([(true, false), (false, true)]),
            "a crash in the sync keeps the rename or not"
        );
    }

    #[test]
    fn redb_commits_in_a_slow_sync_survive_a_crash_only_once_the_sync_completes() {
        let mut lost = 0;
        for seed in SEEDS {
            let disk = SeamDisk::new(seed);
            let db = Builder::new()
                .create_with_backend(disk.open(NAME, true).unwrap())
                .unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(ROWS).unwrap().insert(1, "one").unwrap();
            txn.commit().unwrap();
            disk.control().set_sync_latency(Duration::from_millis(3));
            let txn = db.begin_write().unwrap();
            txn.open_table(ROWS).unwrap().insert(2, "two").unwrap();
            txn.commit().unwrap();
            assert!(disk.syncs_in_flight().is_some(), "seed {seed}");
            let completed = seed % 2 == 0;
            if completed {
                disk.complete_syncs();
            }
            disk.control().crash();
            drop(db);
            let db = Builder::new()
                .create_with_backend(disk.open(NAME, false).unwrap())
                .unwrap_or_else(|e| panic!("seed {seed}: the database opens: {e}"));
            let got = rows(&db);
            let one = BTreeMap::from([(1, "one".to_string())]);
            let both = BTreeMap::from([(1, "one".to_string()), (2, "two".to_string())]);
            if completed {
                assert_eq!(got, both, "seed {seed}");
            } else {
                assert!(got == one || got == both, "seed {seed}: {got:?}");
                lost += usize::from(got == one);
            }
        }
        assert!(
            lost > 0,
            "a crash in the middle of a sync can lose the commit"
        );
    }

    const NAME: &str = "state.redb";

    #[test]
    fn redb_on_the_seam_keeps_committed_transactions_and_loses_unsynced_ones_across_a_crash() {
        for seed in SEEDS {
            let disk = SeamDisk::new(seed);
            let db = Builder::new()
                .create_with_backend(disk.open(NAME, true).unwrap())
                .unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(ROWS).unwrap().insert(1, "one").unwrap();
            txn.commit().unwrap();

            let mut txn = db.begin_write().unwrap();
            txn.set_durability(Durability::None).unwrap();
            txn.open_table(ROWS)
                .unwrap()
                .insert(2, "not synced")
                .unwrap();
            txn.commit().unwrap();

            let txn = db.begin_write().unwrap();
            txn.open_table(ROWS)
                .unwrap()
                .insert(3, "not committed")
                .unwrap();
            disk.control().crash();
            drop(txn);
            drop(db);

            let db = Builder::new()
                .create_with_backend(disk.open(NAME, false).unwrap())
                .unwrap_or_else(|e| panic!("seed {seed}: the database opens: {e}"));
            assert_eq!(
                rows(&db),
                BTreeMap::from([(1, "one".to_string())]),
                "seed {seed}"
            );
        }
    }

    /// A backend that crashes its disk just before its `at`-th call (counting from 1).
    #[derive(Debug)]
    struct CrashAt {
        file: SeamFile,
        control: DiskControl,
        calls: Arc<AtomicU64>,
        at: u64,
    }

    impl CrashAt {
        fn tick(&self) {
            if self.calls.fetch_add(1, Ordering::Relaxed) + 1 == self.at {
                self.control.crash();
            }
        }
    }

    impl StorageBackend for CrashAt {
        fn len(&self) -> Result<u64, BackendError> {
            self.tick();
            self.file.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
            self.tick();
            self.file.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), BackendError> {
            self.tick();
            self.file.set_len(len)
        }
        fn sync_data(&self) -> Result<(), BackendError> {
            self.tick();
            self.file.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
            self.tick();
            self.file.write(offset, data)
        }
    }

    /// Each transaction: rows to insert, keys to remove.
    type Txn = (&'static [(u64, &'static str)], &'static [u64]);

    const TXNS: [Txn; 4] = [
        (&[(1, "one"), (2, "two"), (3, "three")], &[]),
        (&[(4, "four"), (5, "five")], &[1]),
        (&[(2, "two again"), (6, "six")], &[]),
        (&[(7, "seven")], &[3, 4]),
    ];

    /// The rows after the first `n` transactions.
    fn expected(n: usize) -> BTreeMap<u64, String> {
        let mut rows = BTreeMap::new();
        for (inserts, removes) in &TXNS[..n] {
            for (k, v) in *inserts {
                rows.insert(*k, v.repeat(if *k == 6 { 600 } else { 1 }));
            }
            for k in *removes {
                rows.remove(k);
            }
        }
        rows
    }

    fn apply(db: &Database, (inserts, removes): &Txn) -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(ROWS)?;
            for (k, v) in *inserts {
                table.insert(k, v.repeat(if *k == 6 { 600 } else { 1 }).as_str())?;
            }
            for k in *removes {
                table.remove(k)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Opens the database through a backend crashing at call `at` and commits the transactions
    /// until one fails; then crashes (if the backend did not), reopens and returns the
    /// transactions acknowledged, the rows recovered and the backend calls made.
    fn run_to_crash(seed: u64, at: u64) -> (usize, BTreeMap<u64, String>, u64) {
        let disk = SeamDisk::new(seed);
        let control = disk.control();
        drop(
            Builder::new()
                .create_with_backend(disk.open(NAME, true).unwrap())
                .unwrap(),
        );
        let calls = Arc::new(AtomicU64::new(0));
        let backend = CrashAt {
            file: disk.open(NAME, false).unwrap(),
            control: control.clone(),
            calls: calls.clone(),
            at,
        };
        let mut acked = 0;
        if let Ok(db) = Builder::new().create_with_backend(backend) {
            for txn in &TXNS {
                if apply(&db, txn).is_err() {
                    break;
                }
                acked += 1;
            }
        }
        if control.crashes() == 0 {
            control.crash();
        }
        let db = Builder::new()
            .create_with_backend(disk.open(NAME, false).unwrap())
            .unwrap_or_else(|e| panic!("seed {seed}, crash at call {at}: reopen: {e}"));
        (acked, rows(&db), calls.load(Ordering::Relaxed))
    }

    #[test]
    fn a_crash_at_any_backend_call_recovers_a_committed_prefix_holding_every_acknowledged_commit() {
        let (acked, recovered, total) = run_to_crash(0, u64::MAX);
        assert_eq!((acked, &recovered), (TXNS.len(), &expected(TXNS.len())));
        let mut acked_counts = BTreeSet::new();
        for seed in 0..3 {
            for at in 1..=total + 1 {
                let (acked, recovered, _) = run_to_crash(seed, at);
                assert!(
                    (acked..=TXNS.len()).any(|n| recovered == expected(n)),
                    "seed {seed}, crash at call {at} of {total}: {acked} commits acknowledged, \
                     recovered {recovered:?}"
                );
                acked_counts.insert(acked);
            }
        }
        assert_eq!(
            acked_counts,
            (0..=TXNS.len()).collect(),
            "crash points fall before, between and after every commit ({total} calls)"
        );
    }

    /// redb initialises a file with a sync before it writes its magic number, so a crash
    /// between the two leaves a file of the full initial length without that number, and
    /// `create_with_backend` refuses it instead of initialising it again. A new store must
    /// therefore be made under another name and renamed into place once redb has made it.
    #[test]
    fn a_crash_while_redb_creates_a_database_can_leave_a_file_redb_refuses() {
        let mut refused = 0;
        for seed in 0..3 {
            for at in 1..=30 {
                let disk = SeamDisk::new(seed);
                let control = disk.control();
                let backend = CrashAt {
                    file: disk.open(NAME, true).unwrap(),
                    control: control.clone(),
                    calls: Arc::new(AtomicU64::new(0)),
                    at,
                };
                drop(Builder::new().create_with_backend(backend));
                if control.crashes() == 0 {
                    control.crash();
                }
                let file = disk.open(NAME, false).unwrap();
                match Builder::new().create_with_backend(file) {
                    Ok(_) => {}
                    Err(e) if e.to_string().contains("magic number mismatch") => refused += 1,
                    Err(e) => panic!("seed {seed}, crash at call {at}: {e}"),
                }
            }
        }
        assert!(refused > 0, "some crash point leaves a file redb refuses");
    }
}
