//! The storage seam: [`Disk`], the folder the store's files live in, and [`OsDisk`], the
//! machine's file system behind it.
//!
//! A disk is one folder of plain file names (no separators, no `.` or `..`). It opens a file as
//! a `redb::StorageBackend`, renames and removes names, makes the folder's names durable
//! ([`Disk::sync_dir`]), and hands out the lock that keeps a second broker off a store.
//!
//! A sync is synchronous: when `StorageBackend::sync_data` or [`Disk::sync_dir`] returns `Ok`,
//! what it covers is durable, on every implementation. The store therefore needs no second
//! signal for "on the medium", and a crash can only fall before a sync returns or after it.
//!
//! Implementations: [`OsDisk`] (files in a folder, redb's `FileBackend`), `SeamDisk` in
//! [`super::seam`] (the lab's disk with crash semantics and faults), and `MemDisk` (unit tests
//! only: redb's `InMemoryBackend`, no crash semantics).
//!
//! Not here: the tables and what is written in them, and when to commit.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use redb::StorageBackend;
use redb::backends::FileBackend;

/// Longest lock holder description read back from a lock file.
const MAX_HOLDER_BYTES: u64 = 64;

/// A folder of named files that redb can store a database in.
pub trait Disk: Send + Sync + 'static {
    /// An open file, as redb storage.
    type File: StorageBackend;
    /// A held lock; dropping it releases the lock.
    type Lock: Send + 'static;

    /// Opens the file `name`. With `create`, a missing file is created empty and the folder
    /// synced, so the new name survives a crash; without it, a missing file is `NotFound`.
    fn open(&self, name: &str, create: bool) -> io::Result<Self::File>;
    fn exists(&self, name: &str) -> io::Result<bool>;
    /// Replaces `to` with `from` in one step; durable after [`Disk::sync_dir`].
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a name; durable after [`Disk::sync_dir`].
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes every creation, rename and removal in the folder durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Takes the exclusive lock `name`. It is released when the lock is dropped or the process
    /// (for `SeamDisk`: the simulated machine) dies.
    fn lock(&self, name: &str) -> Result<Self::Lock, LockError>;

    /// How long the syncs issued since the last [`Disk::complete_syncs`] still take, or `None`
    /// when none is in flight. A real disk's sync has completed when it returns (`None`); a
    /// simulated one may report a sync as issued and leave its caller to wait this long in
    /// virtual time before completing it, so a crash can land in the middle of a sync.
    fn syncs_in_flight(&self) -> Option<std::time::Duration> {
        None
    }

    /// Completes the syncs in flight: what they covered is durable from now on.
    fn complete_syncs(&self) {}
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{name} is held by {holder}")]
    InUse { name: String, holder: String },
    #[error("{name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Checks that `name` is a plain file name in the disk's folder.
pub fn check_name(name: &str) -> io::Result<()> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ))
    }
}

/// Files in one folder of the machine's file system. Files are created owner-only on Unix.
#[derive(Debug, Clone)]
pub struct OsDisk {
    dir: PathBuf,
}

/// The lock of an [`OsDisk`]: an open lock file holding an exclusive `flock`, with the holder's
/// process id written in it for the message a second broker prints.
#[derive(Debug)]
pub struct OsLock {
    _file: File,
}

impl OsDisk {
    pub fn new(dir: impl Into<PathBuf>) -> OsDisk {
        OsDisk { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl Disk for OsDisk {
    type File = FileBackend;
    type Lock = OsLock;

    fn open(&self, name: &str, create: bool) -> io::Result<FileBackend> {
        let path = self.path(name)?;
        let created = create && !fs::exists(&path)?;
        let file = owner_only(OpenOptions::new().read(true).write(true).create(create))
            .truncate(false)
            .open(&path)?;
        if created {
            self.sync_dir()?;
        }
        Ok(FileBackend::new(file))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        fs::exists(self.path(name)?)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from)?, self.path(to)?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name)?)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn lock(&self, name: &str) -> Result<OsLock, LockError> {
        let failed = |source| LockError::Io {
            name: name.to_string(),
            source,
        };
        let path = self.path(name).map_err(failed)?;
        let mut file = owner_only(OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(failed)?;
                writeln!(file, "pid {}", std::process::id()).map_err(failed)?;
                Ok(OsLock { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut held = Vec::new();
                (&file)
                    .take(MAX_HOLDER_BYTES)
                    .read_to_end(&mut held)
                    .map_err(failed)?;
                let held = String::from_utf8_lossy(&held).trim().to_string();
                Err(LockError::InUse {
                    name: name.to_string(),
                    holder: if held.is_empty() {
                        "another process".to_string()
                    } else {
                        held
                    },
                })
            }
            Err(TryLockError::Error(source)) => Err(failed(source)),
        }
    }
}

/// `MemDisk`: a disk for unit tests only.
#[cfg(test)]
mod mem {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io;
    use std::sync::{Arc, Mutex, MutexGuard};

    use redb::backends::InMemoryBackend;
    use redb::{BackendError, StorageBackend};

    use super::{Disk, LockError, check_name};

    /// A disk in memory for unit tests: redb's `InMemoryBackend` per name, shared by every handle
    /// opened on it; syncs do nothing and nothing is ever lost.
    #[derive(Debug, Clone, Default)]
    pub struct MemDisk {
        files: Arc<Mutex<BTreeMap<String, Arc<InMemoryBackend>>>>,
        locks: Arc<Mutex<BTreeSet<String>>>,
    }

    /// A file of a [`MemDisk`].
    #[derive(Debug)]
    pub struct MemFile(Arc<InMemoryBackend>);

    /// A lock of a [`MemDisk`].
    #[derive(Debug)]
    pub struct MemLock {
        name: String,
        locks: Arc<Mutex<BTreeSet<String>>>,
    }

    impl Drop for MemLock {
        fn drop(&mut self) {
            self.locks.lock().expect("lock set").remove(&self.name);
        }
    }

    impl StorageBackend for MemFile {
        fn len(&self) -> Result<u64, BackendError> {
            self.0.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
            self.0.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), BackendError> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> Result<(), BackendError> {
            self.0.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
            self.0.write(offset, data)
        }
    }

    impl MemDisk {
        fn files(&self) -> MutexGuard<'_, BTreeMap<String, Arc<InMemoryBackend>>> {
            self.files.lock().expect("file table")
        }
    }

    impl Disk for MemDisk {
        type File = MemFile;
        type Lock = MemLock;

        fn open(&self, name: &str, create: bool) -> io::Result<MemFile> {
            check_name(name)?;
            let mut files = self.files();
            match files.get(name) {
                Some(file) => Ok(MemFile(file.clone())),
                None if create => {
                    let file = Arc::new(InMemoryBackend::new());
                    files.insert(name.to_string(), file.clone());
                    Ok(MemFile(file))
                }
                None => Err(io::ErrorKind::NotFound.into()),
            }
        }

        fn exists(&self, name: &str) -> io::Result<bool> {
            check_name(name)?;
            Ok(self.files().contains_key(name))
        }

        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            check_name(from)?;
            check_name(to)?;
            let mut files = self.files();
            let file = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
            files.insert(to.to_string(), file);
            Ok(())
        }

        fn remove(&self, name: &str) -> io::Result<()> {
            check_name(name)?;
            self.files()
                .remove(name)
                .map(drop)
                .ok_or(io::ErrorKind::NotFound.into())
        }

        fn sync_dir(&self) -> io::Result<()> {
            Ok(())
        }

        fn lock(&self, name: &str) -> Result<MemLock, LockError> {
            if !self
                .locks
                .lock()
                .expect("lock set")
                .insert(name.to_string())
            {
                return Err(LockError::InUse {
                    name: name.to_string(),
                    holder: "this process".to_string(),
                });
            }
            Ok(MemLock {
                name: name.to_string(),
                locks: self.locks.clone(),
            })
        }
    }
}

#[cfg(test)]
pub use mem::{MemDisk, MemFile, MemLock};

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableDefinition};

    /// The one table the storage tests write.
    pub const ROWS: TableDefinition<u64, &str> = TableDefinition::new("rows");

    /// Every row of [`ROWS`] (none if the table was never made).
    pub fn rows(db: &Database) -> BTreeMap<u64, String> {
        let txn = db.begin_read().unwrap();
        let table = match txn.open_table(ROWS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return BTreeMap::new(),
            Err(e) => panic!("{e}"),
        };
        table
            .iter()
            .unwrap()
            .map(|row| {
                let (k, v) = row.unwrap();
                (k.value(), v.value().to_string())
            })
            .collect()
    }

    /// Writes `rows` in one transaction into `state.redb` on `disk`, then reads the table back
    /// from a fresh open.
    fn round_trip(disk: &impl Disk, new_rows: &[(u64, &str)]) -> BTreeMap<u64, String> {
        {
            let db = Builder::new()
                .create_with_backend(disk.open("state.redb", true).unwrap())
                .unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(ROWS).unwrap();
                for (k, v) in new_rows {
                    table.insert(k, v).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let db = Builder::new()
            .create_with_backend(disk.open("state.redb", false).unwrap())
            .unwrap();
        rows(&db)
    }

    #[test]
    fn os_disk_keeps_a_redb_database_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path());
        let rows = round_trip(&disk, &[(1, "one"), (2, "two")]);
        assert_eq!(
            rows,
            BTreeMap::from([(1, "one".to_string()), (2, "two".to_string())])
        );
        assert!(disk.exists("state.redb").unwrap());
    }

    #[test]
    fn mem_disk_keeps_a_redb_database_across_opens() {
        let disk = MemDisk::default();
        let rows = round_trip(&disk, &[(7, "seven")]);
        assert_eq!(rows, BTreeMap::from([(7, "seven".to_string())]));
    }

    #[test]
    fn os_disk_opening_a_missing_file_without_create_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path());
        let err = disk.open("absent.redb", false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!disk.exists("absent.redb").unwrap());
    }

    #[test]
    fn os_disk_rename_replaces_and_remove_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path());
        disk.open("a", true).unwrap();
        disk.open("b", true).unwrap();
        disk.rename("a", "b").unwrap();
        disk.sync_dir().unwrap();
        assert!(!disk.exists("a").unwrap());
        disk.remove("b").unwrap();
        assert!(!disk.exists("b").unwrap());
    }

    #[test]
    fn a_name_with_a_separator_or_dots_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path());
        for name in ["", ".", "..", "a/b", "../x"] {
            let err = disk.open(name, true).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn os_disk_lock_keeps_a_second_holder_off_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path());
        let held = disk.lock("state.redb.lock").unwrap();
        match disk.lock("state.redb.lock") {
            Err(LockError::InUse { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("expected the lock to be in use, got {other:?}"),
        }
        drop(held);
        disk.lock("state.redb.lock").unwrap();
    }

    #[test]
    fn mem_disk_lock_is_exclusive_until_dropped() {
        let disk = MemDisk::default();
        let held = disk.lock("l").unwrap();
        assert!(matches!(disk.lock("l"), Err(LockError::InUse { .. })));
        drop(held);
        disk.lock("l").unwrap();
    }
}
