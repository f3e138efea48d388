//! The node's fjall database, which holds the Raft logs, and the group-commit flusher: one
//! fsync covers every pending log append.
//!
//! Layout of a node's data dir:
//! - `db/`: the fjall database. Keyspaces are named per group (`g<gid>.<part>`, see
//!   [`keyspace_name`]), plus `node` (the node id this dir belongs to).
//! - `snapshots/`: state-machine snapshot files (`g<gid>-<snapshot id>.snap`). The state
//!   machine itself lives in memory (`shard::state_machine`): its snapshot plus the log
//!   after it are its durable form.
//!
//! The database is opened with manual journal persistence: writes become visible at once and
//! durable only at the next [`Storage::persist`] or flusher round, which log appends and
//! votes wait for.

mod flusher;
mod priority;
pub mod record;

pub use priority::idle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions};

use crate::raft::{Gid, NodeId};
use flusher::Flusher;

/// Memtable size per keyspace, below fjall's 64 MiB default to bound each log's memory.
/// Not smaller: each full memtable is written out as a table file and fsynced, a burst of
/// disk writes that every group's log fsyncs on the same disk queue behind. At 2 MiB a
/// 100k-key slot migration flushed each of the new owner's three logs about four times,
/// and an unaffected client's writes stalled 4-8 ms at each (`benches/migration.py`);
/// at 16 MiB none did. (Replication and apply read recent entries from the log's
/// in-memory tail, not from the memtable; SET throughput did not change.)
const MEMTABLE_SIZE: u64 = 16 * 1024 * 1024;

/// Storage failures. A failed fsync poisons fjall: the node must stop.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("storage: corrupt record: {0}")]
    Codec(#[from] postcard::Error),
    #[error("storage: io: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {dir} belongs to node {stored}, not to node {given}")]
    NodeIdMismatch {
        dir: PathBuf,
        stored: NodeId,
        given: NodeId,
    },
    #[error("storage: {0}")]
    Corrupt(String),
    #[error("storage: the disk failed ({0}); nothing more is acknowledged")]
    Failed(String),
}

/// The keyspace of one part of a group's state, e.g. `g3.log`. fjall accepts alphanumerics,
/// `_`, `-`, `.`, `#` and `$` in names.
pub fn keyspace_name(gid: Gid, part: &str) -> String {
    format!("g{gid}.{part}")
}

/// Cheap-clone handle to the node's database and its flusher.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    dir: PathBuf,
    node_id: NodeId,
    flusher: Flusher,
    /// Held by the flusher for each fsync; see [`Storage::commit`].
    gate: Arc<Mutex<()>>,
}

const NODE_KEYSPACE: &str = "node";
const NODE_ID_KEY: &[u8] = b"id";

/// Tells when every handle of a [`Storage`] is gone (see [`Storage::watch`]).
pub struct StorageWatch(std::sync::Weak<Inner>);

impl StorageWatch {
    pub fn released(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl Storage {
    /// A watch that does not keep the database open.
    pub fn watch(&self) -> StorageWatch {
        StorageWatch(Arc::downgrade(&self.inner))
    }

    /// Opens (or creates) the node's data dir. The first open records `node_id`; a later open
    /// with another id fails, because a node that comes back with someone else's log (or an
    /// empty one under an old id) breaks Raft's safety and panics the leader.
    pub fn open(dir: &Path, node_id: NodeId) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(dir.join("snapshots"))?;
        let obsolete = dir.join("sm");
        if obsolete.exists() {
            // Earlier builds kept a copy of the state machine in fjall; its snapshot and
            // log (never purged past the snapshot) hold everything it did.
            tracing::info!(dir = %obsolete.display(), "removing the obsolete state-machine database");
            std::fs::remove_dir_all(&obsolete)?;
        }
        let db = Database::builder(dir.join("db"))
            .manual_journal_persist(true)
            // With two workers, fjall's worker 0 hands every compaction request back to
            // the queue while worker 1 compacts: a busy loop that cost ~7% of a write's
            // CPU.
            .worker_threads(1)
            .open()?;
        let node = db.keyspace(NODE_KEYSPACE, KeyspaceCreateOptions::default)?;
        match node.get(NODE_ID_KEY)? {
            Some(v) => {
                let stored = decode_u64(&v)?;
                if stored != node_id {
                    return Err(StorageError::NodeIdMismatch {
                        dir: dir.to_path_buf(),
                        stored,
                        given: node_id,
                    });
                }
            }
            None => {
                node.insert(NODE_ID_KEY, node_id.to_be_bytes())?;
                db.persist(fjall::PersistMode::SyncAll)?;
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let flusher = Flusher::start(db.clone(), gate.clone())?;
        Ok(Storage {
            inner: Arc::new(Inner {
                db,
                dir: dir.to_path_buf(),
                node_id,
                flusher,
                gate,
            }),
        })
    }

    /// The node id this data dir belongs to.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The node's data dir.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where snapshot files live.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.inner.dir.join("snapshots")
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

    /// Opens or creates a keyspace.
    pub(crate) fn keyspace(&self, name: &str) -> Result<Keyspace, StorageError> {
        Ok(self.inner.db.keyspace(name, || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(MEMTABLE_SIZE)
                // Log entries are deleted behind every snapshot, within seconds to
                // minutes: compressing them when they reach a deeper level (lz4, fjall's
                // default from L2) was 4% of a slot migration's CPU, for nothing.
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
        })?)
    }

    /// Runs `commit`, a fjall write to `keyspace`, on this thread unless it may wait: the
    /// flusher is mid-fsync (fjall fsyncs its journal under the journal's lock), or fjall
    /// may throttle the write (it sleeps in the commit while memtables or level-0 tables
    /// pile up). Then the worker is handed over for the wait ([`blocking`]). A write that
    /// holds the gate keeps the flusher from starting an fsync; handing the worker over on
    /// every log append cost more than a tenth of a write's CPU.
    pub fn commit<T>(&self, keyspace: &Keyspace, commit: impl FnOnce() -> T) -> T {
        // fjall stalls a write at 4 sealed memtables or 20 level-0 runs; one commit seals
        // at most one memtable.
        let may_stall = keyspace.sealed_memtable_count() >= 2 || keyspace.l0_table_count() >= 16;
        if !may_stall {
            if let Ok(_gate) = self.inner.gate.try_lock() {
                return commit();
            }
        }
        blocking(|| {
            let _gate =
                (!may_stall).then(|| self.inner.gate.lock().unwrap_or_else(|e| e.into_inner()));
            commit()
        })
    }

    /// Runs `done` once everything committed so far is on disk. Calls arriving while an
    /// fsync runs share the next one (group commit).
    pub fn flush_then(&self, done: impl FnOnce() + Send + 'static) {
        self.inner.flusher.submit(Box::new(done));
    }

    /// Makes everything committed so far durable, sharing the fsync with concurrent callers.
    /// Fails if the disk has failed: then nothing may be reported durable.
    pub async fn persist(&self) -> Result<(), StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.flush_then(move || {
            let _ = tx.send(());
        });
        rx.await
            .map_err(|_| StorageError::Failed(self.failure().unwrap_or_default()))
    }

    /// Why the disk failed (an fsync error), if it has; see [`Storage::failed`].
    pub fn failure(&self) -> Option<String> {
        self.inner.flusher.failed().borrow().clone()
    }

    /// Resolves once an fsync has failed, with its error; never if the storage closes
    /// cleanly. Holds no handle on the database. Raft already stops on its own (its log
    /// write fails); a node process then exits, as Redis does.
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.inner.flusher.failed();
        async move {
            let why = rx
                .wait_for(Option::is_some)
                .await
                .map(|why| why.clone().unwrap_or_default());
            match why {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Fault injection for tests: from now on every fsync fails, as on a failed or full
    /// disk.
    pub fn fail_syncs(&self) {
        self.inner.flusher.fail_syncs();
    }

    /// How many fsyncs the flusher has done (tests check group commit with it).
    pub fn persist_count(&self) -> u64 {
        self.inner.flusher.persist_count()
    }
}

/// Converts a storage failure into openraft's error, which shuts the Raft group down.
pub(crate) fn raft_err<NID: openraft::NodeId>(
    subject: openraft::ErrorSubject<NID>,
    verb: openraft::ErrorVerb,
    e: impl Into<StorageError>,
) -> openraft::StorageError<NID> {
    let e = e.into();
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

/// A fixed-width big-endian u64, as stored for ids and log indexes.
pub(crate) fn decode_u64(v: &[u8]) -> Result<u64, StorageError> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("expected 8 bytes, got {}", v.len())))?;
    Ok(u64::from_be_bytes(b))
}

/// Runs a fjall write that may wait on the journal lock while the flusher fsyncs, without
/// stalling the tokio worker's other tasks: on the multi-thread runtime the worker hands its
/// queue to another thread for the duration (`block_in_place`).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_recorded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Storage::open(dir.path(), 7).unwrap();
            assert_eq!(s.node_id(), 7);
        }
        assert!(Storage::open(dir.path(), 7).is_ok());
        match Storage::open(dir.path(), 8) {
            Err(StorageError::NodeIdMismatch {
                stored: 7,
                given: 8,
                ..
            }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened another node's dir"),
        }
    }

    #[tokio::test]
    async fn a_failed_fsync_acknowledges_nothing_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 1).unwrap();
        s.persist().await.unwrap();
        assert_eq!(s.failure(), None);
        s.fail_syncs();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        s.flush_then(move || tx.send(()).unwrap());
        assert!(s.persist().await.is_err());
        assert!(s.failed().await.contains("injected"));
        // The earlier callback was dropped, never run.
        assert!(rx.recv().is_err());
        assert!(matches!(s.persist().await, Err(StorageError::Failed(_))));
    }

    #[test]
    fn concurrent_flushes_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), 1).unwrap();
        let before = s.persist_count();
        let (tx, rx) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        let tx = tx.clone();
                        s.flush_then(move || tx.send(()).unwrap());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for _ in 0..2000 {
            rx.recv().unwrap();
        }
        let fsyncs = s.persist_count() - before;
        assert!(fsyncs < 200, "{fsyncs} fsyncs for 2000 flush requests");
    }
}
