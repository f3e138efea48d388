//! openraft's `RaftStateMachine` for a shard group on fjall.
//!
//! Keyspaces per group (see [`crate::storage`]):
//! - `g<gid>.sm`: last applied, membership, key/expiry counters, current data generation,
//!   current snapshot pointer.
//! - `g<gid>.data.<gen>`: storage key ([`crate::db::keys::data_key`]) → postcard [`Value`].
//! - `g<gid>.ttl.<gen>`: `expire_at (u64 BE) ++ storage key` → empty, for the expiry task.
//! - `g<gid>.dedup.<gen>`: client id (u64 BE) → postcard [`DedupEntry`]: exactly-once
//!   retries; a slot that moves takes its part of each entry along.
//! - The meta keyspace also holds the group's [`ClusterMeta`] (configurations, slot states).
//!
//! Data lives in numbered *generations* so that replacing the whole state (snapshot install,
//! FLUSHALL) is atomic without a range delete: the new state is written into generation
//! g+1, one batch flips the current generation together with last-applied and counters, and
//! generation g is dropped. A crash in between leaves a stray generation, deleted on open.
//!
//! `apply` never fsyncs: the log is durable, so a lost tail of applies is replayed.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use fjall::{Keyspace, Readable};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError as RaftStorageError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncSeekExt;

use crate::db::keys::{data_key, pos_start, scan_pos, user_key};
use crate::db::{DbRead, DbWrite, Value};
use crate::raft::{Gid, NodeAddr, NodeId, ShardTC};
use crate::shard::apply::{dedup_client, dedup_key, ClusterMeta, DedupEntry};
use crate::shard::request::ShardResponse;
use crate::shard::row_cache::RowCache;
use crate::storage::record::{read_record, write_record};
use crate::storage::{decode_u64, keyspace_name, raft_err, Storage, StorageError};

/// Every replica hashes every written key twice or more per apply; SipHash was a visible
/// share of it. foldhash is seeded per process, so crafted keys still can't collide at will.
type HashMap<K, V> = foldhash::HashMap<K, V>;

const APPLIED: &[u8] = b"applied";
const MEMBERSHIP: &[u8] = b"membership";
const KEYS: &[u8] = b"keys";
const EXPIRES: &[u8] = b"expires";
const GEN: &[u8] = b"gen";
const SNAPSHOT: &[u8] = b"snapshot";
/// The latest entry time applied: the group's clock never runs backwards past it, whatever
/// the clock of the leader that stamps the next entry.
const CLOCK: &[u8] = b"clock";
/// The postcard [`ClusterMeta`].
const CLUSTER: &[u8] = b"cluster";

/// Snapshot file format version, in the header record.
const SNAPSHOT_VERSION: u32 = 2;
/// Bound on one install batch, so a large snapshot never sits in memory whole.
const INSTALL_BATCH_BYTES: usize = 4 << 20;
const INSTALL_BATCH_ITEMS: usize = 16_384;

type Membership = StoredMembership<NodeId, NodeAddr>;
type Meta = SnapshotMeta<NodeId, NodeAddr>;
type RaftRes<T> = Result<T, RaftStorageError<NodeId>>;

/// The records of a snapshot file, in order: one header, the data entries in storage order,
/// one end marker (a file without it is truncated).
#[derive(Serialize, Deserialize)]
enum SnapRecord {
    Header {
        version: u32,
        meta: Meta,
        clock: u64,
        cluster: Box<ClusterMeta>,
    },
    Kv(Bytes, Bytes),
    End {
        entries: u64,
    },
    /// An exactly-once entry (storage key, value); before `End`, not counted in it.
    Dedup(Bytes, Bytes),
}

/// Where the current snapshot is: persisted with the state it describes.
#[derive(Clone, Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: Meta,
    file: String,
}

/// One generation of a group's data: the data keyspace, its ttl index, and the
/// exactly-once entries.
#[derive(Clone)]
pub(super) struct Generation {
    id: u64,
    pub(super) data: Keyspace,
    ttl: Keyspace,
    pub(super) dedup: Keyspace,
}

/// Keyspace name parts of a generation, in `names()` order.
const GENERATION_PARTS: [&str; 3] = ["data.", "ttl.", "dedup."];

impl Generation {
    fn names(gid: Gid, id: u64) -> [String; 3] {
        GENERATION_PARTS.map(|part| keyspace_name(gid, &format!("{part}{id}")))
    }

    fn open(storage: &Storage, gid: Gid, id: u64) -> Result<Generation, StorageError> {
        let [data, ttl, dedup] = Self::names(gid, id);
        Ok(Generation {
            id,
            data: storage.keyspace(&data)?,
            ttl: storage.keyspace(&ttl)?,
            dedup: storage.keyspace(&dedup)?,
        })
    }

    /// An empty generation `id`, discarding leftovers of an earlier failed attempt.
    fn create_empty(storage: &Storage, gid: Gid, id: u64) -> Result<Generation, StorageError> {
        for name in Self::names(gid, id) {
            storage.delete_keyspace(&name)?;
        }
        Self::open(storage, gid, id)
    }
}

fn ttl_key(expire_at: u64, data_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + data_key.len());
    k.extend_from_slice(&expire_at.to_be_bytes());
    k.extend_from_slice(data_key);
    k
}

/// State shared by the state machine, its readers and its snapshot builders.
struct Shared {
    storage: Storage,
    gid: Gid,
    meta: Keyspace,
    /// The current generation. Held for writing across the commit that flips it, so a
    /// snapshot builder never pairs new meta with old data.
    gen: RwLock<Generation>,
    /// Serializes snapshot builds and installs, and so the snapshot files and pointer.
    snap_lock: tokio::sync::Mutex<()>,
    /// CLOCK as committed, for readers.
    clock: std::sync::atomic::AtomicU64,
    /// CLUSTER as committed: read by every apply and every routed command.
    cluster: RwLock<Arc<ClusterMeta>>,
    /// Recently applied rows, as committed: read by applies and by client reads.
    rows: RwLock<RowCache>,
    /// Odd while a commit or an install changes the state (see [`Epoch`]).
    epoch: std::sync::atomic::AtomicU64,
    /// Size of the current snapshot file (0: none yet), for the snapshot trigger.
    snapshot_bytes: std::sync::atomic::AtomicU64,
}

/// A seqlock over the state: the epoch is odd from before a commit (or install) touches
/// fjall until its rows are cached. A read view that sees the same even epoch around its
/// fjall snapshot, and again after a cache lookup, knows the cached row is the snapshot's.
struct Epoch<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Epoch<'a> {
    fn enter(a: &'a std::sync::atomic::AtomicU64) -> Self {
        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Epoch(a)
    }
}

impl Drop for Epoch<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Shared {
    fn generation(&self) -> Generation {
        self.gen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.meta.get(key)? {
            Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
            None => Ok(None),
        }
    }

    fn get_counter(&self, key: &[u8]) -> Result<u64, StorageError> {
        self.meta.get(key)?.map_or(Ok(0), |v| decode_u64(&v))
    }

    fn cluster(&self) -> Arc<ClusterMeta> {
        self.cluster
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn applied(&self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(APPLIED)?.flatten())
    }

    fn snapshot_path(&self, file: &str) -> PathBuf {
        self.storage.snapshot_dir().join(file)
    }

    /// Records the size of the current snapshot file.
    fn note_snapshot_size(&self) -> Result<(), StorageError> {
        let size = match self.get_meta::<CurrentSnapshot>(SNAPSHOT)? {
            Some(cur) => match std::fs::metadata(self.snapshot_path(&cur.file)) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e.into()),
            },
            None => 0,
        };
        self.snapshot_bytes
            .store(size, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Removes this group's snapshot files except the current one (temp files of builds and
    /// receives that a crash or an install left behind).
    fn clean_snapshot_files(&self) -> Result<(), StorageError> {
        let keep = self.get_meta::<CurrentSnapshot>(SNAPSHOT)?.map(|c| c.file);
        let prefix = format!("g{}-", self.gid);
        for entry in std::fs::read_dir(self.storage.snapshot_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && Some(&name) != keep.as_ref() {
                std::fs::remove_file(self.snapshot_path(&name))?;
            }
        }
        Ok(())
    }
}

/// A shard group's state machine. Reads go through [`ShardReader`]s.
pub struct ShardStateMachine {
    shared: Arc<Shared>,
    /// Counters of the committed state, the base of the next apply.
    keys: u64,
    expires: u64,
    /// The exactly-once entries of the current generation, in memory: every write through
    /// the proxy reads its client's entry for the slot, which is usually absent, and an
    /// LSM point lookup (a miss walks the memtable and every table's filter) was a sixth
    /// of such a write's CPU. fjall stays the durable copy, written in the same batch.
    /// None: to be loaded from the current generation before the next apply (at open,
    /// after a snapshot install or a failed commit).
    dedup_mem: Option<DedupMem>,
}

/// Client → its exactly-once entry, decoded: a proxy client's writes in one apply
/// update its entry in place and encode it once, at commit.
type DedupMem = HashMap<u64, DedupEntry>;

fn load_dedup(ks: &Keyspace) -> Result<DedupMem, StorageError> {
    let mut m = DedupMem::default();
    for kv in ks.iter() {
        let (k, v) = kv.into_inner()?;
        match (dedup_client(&k), postcard::from_bytes::<DedupEntry>(&v)) {
            (Some(client), Ok(e)) => {
                m.insert(client, e);
            }
            _ => tracing::warn!("skipping an undecodable exactly-once entry"),
        }
    }
    Ok(m)
}

impl ShardStateMachine {
    /// Opens (or creates) the state machine of group `gid`, dropping stray generations and
    /// snapshot files that a crash mid-install or mid-build left behind.
    pub fn open(storage: &Storage, gid: Gid) -> Result<Self, StorageError> {
        let meta = storage.keyspace(&keyspace_name(gid, "sm"))?;
        let gen_id = meta.get(GEN)?.map_or(Ok(0), |v| decode_u64(&v))?;
        let gen = Generation::open(storage, gid, gen_id)?;
        let current = Generation::names(gid, gen_id);
        for part in GENERATION_PARTS {
            for name in storage.keyspace_names(&keyspace_name(gid, part)) {
                if !current.contains(&name) {
                    tracing::info!(gid, keyspace = %name, "dropping stray data generation");
                    storage.delete_keyspace(&name)?;
                }
            }
        }
        let shared = Arc::new(Shared {
            storage: storage.clone(),
            gid,
            meta,
            gen: RwLock::new(gen),
            snap_lock: tokio::sync::Mutex::new(()),
            clock: std::sync::atomic::AtomicU64::new(0),
            cluster: RwLock::default(),
            rows: RwLock::default(),
            epoch: Default::default(),
            snapshot_bytes: Default::default(),
        });
        let cluster: ClusterMeta = shared.get_meta(CLUSTER)?.unwrap_or_default();
        *shared
            .cluster
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(cluster);
        shared.clock.store(
            shared.get_counter(CLOCK)?,
            std::sync::atomic::Ordering::Relaxed,
        );
        shared.clean_snapshot_files()?;
        shared.note_snapshot_size()?;
        let keys = shared.get_counter(KEYS)?;
        let expires = shared.get_counter(EXPIRES)?;
        Ok(ShardStateMachine {
            shared,
            keys,
            expires,
            dedup_mem: None,
        })
    }

    /// A read handle on the committed state; follows generation flips.
    pub fn reader(&self) -> ShardReader {
        ShardReader {
            shared: self.shared.clone(),
        }
    }

    /// Writes an apply's effects, last applied and membership in one batch. After a
    /// `clear()` the surviving writes go into a fresh generation flipped in by that batch.
    fn commit(
        &mut self,
        ov: Overlay<'_>,
        gen: &Generation,
        last: &LogId<NodeId>,
        membership: Option<Membership>,
    ) -> Result<(), StorageError> {
        // Moved out first: on any failure below it is dropped and reloaded before the
        // next apply (it changes only once the batch is committed).
        let mut dedup_mem = ov.dedup_mem;
        if let Some(e) = ov.error.into_inner() {
            return Err(e);
        }
        let sh = &self.shared;
        let target = match ov.base {
            Some(_) => gen.clone(),
            None => Generation::create_empty(&sh.storage, sh.gid, gen.id + 1)?,
        };
        let fresh = target.id != gen.id;
        let mut batch = sh.storage.db().batch();
        for (k, v) in &ov.writes {
            match v {
                Some(v) => batch.insert(&target.data, k.as_slice(), crate::codec::to_vec(v)?),
                None if !fresh => batch.remove(&target.data, k.as_slice()),
                None => {}
            }
        }
        for (k, insert) in ov.ttl {
            if insert {
                batch.insert(&target.ttl, k, Vec::new());
            } else if !fresh {
                batch.remove(&target.ttl, k);
            }
        }
        for (client, e) in &ov.dedup {
            match e {
                Some(e) => {
                    batch.insert(&target.dedup, dedup_key(*client), crate::codec::to_vec(e)?)
                }
                None if !fresh => batch.remove(&target.dedup, dedup_key(*client)),
                None => {}
            }
        }
        let cluster = match ov.cluster {
            Some(c) => {
                batch.insert(&sh.meta, CLUSTER, crate::codec::to_vec(&c)?);
                Some(Arc::new(c))
            }
            None => None,
        };
        batch.insert(&sh.meta, APPLIED, crate::codec::to_vec(&Some(last))?);
        if let Some(m) = membership {
            batch.insert(&sh.meta, MEMBERSHIP, crate::codec::to_vec(&m)?);
        }
        batch.insert(&sh.meta, KEYS, ov.keys.to_be_bytes());
        batch.insert(&sh.meta, EXPIRES, ov.expires.to_be_bytes());
        batch.insert(&sh.meta, CLOCK, ov.clock.to_be_bytes());
        let _epoch = Epoch::enter(&sh.epoch);
        {
            // Readers must never see data committed under a config they don't see yet.
            let mut cur = cluster
                .as_ref()
                .map(|_| sh.cluster.write().unwrap_or_else(PoisonError::into_inner));
            if fresh {
                batch.insert(&sh.meta, GEN, target.id.to_be_bytes());
                flip(sh, batch, target, gen)?;
            } else {
                batch.commit()?;
            }
            if let (Some(cur), Some(c)) = (cur.as_mut(), cluster) {
                **cur = c;
            }
        }
        self.keys = ov.keys;
        self.expires = ov.expires;
        sh.clock
            .fetch_max(ov.clock, std::sync::atomic::Ordering::Relaxed);
        if fresh {
            dedup_mem.clear();
        }
        for (client, e) in ov.dedup {
            match e {
                Some(e) => dedup_mem.insert(client, e),
                None => dedup_mem.remove(&client),
            };
        }
        self.dedup_mem = Some(dedup_mem);
        let mut cache = sh.rows.write().unwrap_or_else(PoisonError::into_inner);
        if fresh {
            cache.clear();
        }
        for (k, v) in ov.reads.into_inner() {
            // A key written too is cached with its new value just below.
            if !ov.writes.contains_key(&k) {
                cache.insert(&k, &v);
            }
        }
        for (k, v) in &ov.writes {
            if ov.bulk {
                // A migration chunk's keys are not hot: caching them would cost more than
                // the chunk's own writes and push the hot rows out.
                cache.forget(k);
            } else {
                cache.insert(k, v);
            }
        }
        Ok(())
    }

    /// Test hook: runs `f` against an overlay and commits it as the apply of `log_id`, for
    /// commands that do not exist yet.
    #[cfg(test)]
    fn write_with(&mut self, log_id: LogId<NodeId>, f: impl FnOnce(&mut Overlay<'_>)) {
        let shared = self.shared.clone();
        let gen = shared.generation();
        let mem = self.take_dedup(&gen).unwrap();
        let mut ov = Overlay::new(&gen.data, self.keys, self.expires).with_cluster(
            &gen.dedup,
            mem,
            self.shared.cluster(),
        );
        ov.rows = Some(&shared.rows);
        f(&mut ov);
        self.commit(ov, &gen, &log_id, None).unwrap();
    }
}

impl ShardStateMachine {
    /// The in-memory exactly-once entries for an apply on `gen`, loaded if needed.
    fn take_dedup(&mut self, gen: &Generation) -> Result<DedupMem, StorageError> {
        match self.dedup_mem.take() {
            Some(m) => Ok(m),
            None => crate::storage::blocking(|| load_dedup(&gen.dedup)),
        }
    }

    /// `apply` proper: one overlay and one fjall batch for all `entries`.
    fn apply_sync(
        &mut self,
        entries: impl IntoIterator<Item = openraft::Entry<ShardTC>>,
    ) -> Result<Vec<ShardResponse>, Box<RaftStorageError<NodeId>>> {
        let shared = self.shared.clone();
        let gen = shared.generation();
        let cluster = shared.cluster();
        let mem = self
            .take_dedup(&gen)
            .map_err(|e| Box::new(raft_err(ErrorSubject::StateMachine, ErrorVerb::Read, e)))?;
        let mut ov =
            Overlay::new(&gen.data, self.keys, self.expires).with_cluster(&gen.dedup, mem, cluster);
        ov.rows = Some(&shared.rows);
        ov.clock = self.shared.clock.load(std::sync::atomic::Ordering::Relaxed);
        let gid = self.shared.gid;
        let mut replies = Vec::new();
        let mut last = None;
        let mut membership = None;
        for e in entries {
            match e.payload {
                EntryPayload::Blank => replies.push(Vec::new()),
                EntryPayload::Normal(req) => {
                    let req = req.decode().map_err(|err| {
                        Box::new(raft_err(
                            ErrorSubject::Apply(e.log_id),
                            ErrorVerb::Read,
                            err,
                        ))
                    })?;
                    // A new leader with a slower clock must not un-expire keys.
                    ov.clock = ov.clock.max(req.now_ms);
                    let now = ov.clock;
                    replies.push(
                        req.cmds
                            .iter()
                            .map(|c| super::apply::apply(&mut ov, gid, c, now))
                            .collect(),
                    )
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(e.log_id), m));
                    replies.push(Vec::new());
                }
            }
            last = Some(e.log_id);
        }
        let Some(last) = last else {
            self.dedup_mem = Some(ov.dedup_mem);
            return Ok(replies);
        };
        self.commit(ov, &gen, &last, membership)
            .map_err(|e| Box::new(raft_err(ErrorSubject::Apply(last), ErrorVerb::Write, e)))?;
        Ok(replies)
    }
}

/// Commits `batch` (which sets the current generation to `new`) and switches readers to
/// `new` atomically with it, then drops `old` once the flip is on disk: fjall records
/// keyspace deletions durably at once, while the flip sits in the journal until the next
/// fsync, so deleting earlier could lose both generations in a crash.
fn flip(
    sh: &Shared,
    batch: fjall::OwnedWriteBatch,
    new: Generation,
    old: &Generation,
) -> Result<(), StorageError> {
    {
        let mut cur = sh.gen.write().unwrap_or_else(PoisonError::into_inner);
        batch.commit()?;
        *cur = new;
    }
    // A database handle, not a `Storage`: the flusher must not own its own handle.
    let db = sh.storage.db().clone();
    let names = Generation::names(sh.gid, old.id);
    let gid = sh.gid;
    sh.storage.flush_then(move || {
        for name in names {
            if let Err(e) = crate::storage::delete_keyspace(&db, &name) {
                // Harmless: a stray generation is dropped at the next open.
                tracing::warn!(gid, keyspace = %name, error = %e, "dropping old generation");
            }
        }
    });
    Ok(())
}

/// The keyspace as an apply sees it: the committed generation plus this apply's earlier
/// writes. Keeps the ttl index and counters in step with every write. The last write of a
/// key wins, so the batch holds one operation per key (fjall gives a batch one seqno).
pub(super) struct Overlay<'a> {
    /// None after `clear()`: nothing committed is visible any more.
    base: Option<&'a Keyspace>,
    /// The committed exactly-once entries (None after `clear()`, like `base`).
    dedup_base: Option<&'a Keyspace>,
    /// Exactly-once entries written by this apply, by client (None: removed).
    dedup: BTreeMap<u64, Option<DedupEntry>>,
    /// The committed exactly-once entries (the base's contents), moved in for the apply.
    dedup_mem: DedupMem,
    /// The committed cluster state, and this apply's changed copy of it.
    cluster_base: Arc<ClusterMeta>,
    cluster: Option<ClusterMeta>,
    /// Committed values known without a lookup (consulted only while `base` is visible);
    /// only `commit` changes them, after this apply.
    rows: Option<&'a RwLock<RowCache>>,
    writes: BTreeMap<Vec<u8>, Option<Value>>,
    /// The apply installed pulled slot data: its writes are not cached (see `commit`).
    bulk: bool,
    /// ttl index key → insert (true) or remove (false).
    ttl: BTreeMap<Vec<u8>, bool>,
    keys: u64,
    expires: u64,
    /// The group clock: the latest entry time applied (see CLOCK).
    clock: u64,
    /// Values read from the base during this apply: a command reads a key and its write then
    /// needs the old value again (counters, ttl index), so each key costs one fjall get.
    reads: RefCell<HashMap<Vec<u8>, Option<Value>>>,
    /// The first read failure; `DbRead` is infallible, so the apply fails at commit.
    error: RefCell<Option<StorageError>>,
}

impl<'a> Overlay<'a> {
    fn new(base: &'a Keyspace, keys: u64, expires: u64) -> Self {
        Overlay {
            base: Some(base),
            dedup_base: None,
            dedup: BTreeMap::new(),
            dedup_mem: DedupMem::default(),
            cluster_base: Arc::default(),
            cluster: None,
            rows: None,
            writes: BTreeMap::new(),
            bulk: false,
            ttl: BTreeMap::new(),
            keys,
            expires,
            clock: 0,
            reads: RefCell::default(),
            error: RefCell::new(None),
        }
    }

    /// Attaches the generation's exactly-once entries and the committed cluster state.
    fn with_cluster(
        mut self,
        dedup: &'a Keyspace,
        dedup_mem: DedupMem,
        cluster: Arc<ClusterMeta>,
    ) -> Self {
        self.dedup_base = Some(dedup);
        self.dedup_mem = dedup_mem;
        self.cluster_base = cluster;
        self
    }

    /// The cluster state as of this point of the apply.
    pub(super) fn cluster(&self) -> &ClusterMeta {
        self.cluster.as_ref().unwrap_or(&self.cluster_base)
    }

    /// The cluster state to change; written back with the apply's batch.
    pub(super) fn cluster_mut(&mut self) -> &mut ClusterMeta {
        let base = &self.cluster_base;
        self.cluster.get_or_insert_with(|| (**base).clone())
    }

    pub(super) fn dedup_get(&self, client: u64) -> Option<&DedupEntry> {
        if let Some(e) = self.dedup.get(&client) {
            return e.as_ref();
        }
        self.dedup_base?;
        self.dedup_mem.get(&client)
    }

    /// The client's entry to change (a new one if it has none), written with the batch.
    pub(super) fn dedup_mut(&mut self, client: u64) -> &mut DedupEntry {
        let committed = self.dedup_base.and(self.dedup_mem.get(&client));
        self.dedup
            .entry(client)
            .or_insert_with(|| committed.cloned())
            .get_or_insert_with(DedupEntry::default)
    }

    pub(super) fn dedup_remove(&mut self, client: u64) {
        self.dedup.insert(client, None);
    }

    /// Deletes up to `limit` stored keys of `slot` after storage key `after`, lowest
    /// first. Returns how many, and the last one deleted while more remain (None once
    /// none remain). Exactly-once replies of the slot stay: they are true wherever kept,
    /// and go with their client's entry once it is idle.
    pub(super) fn delete_slot_part(
        &mut self,
        slot: u16,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> (u64, Option<Vec<u8>>) {
        let (start, end) = crate::db::keys::slot_range(slot);
        let lower = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Included(start),
        };
        let mut stored: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut more = false;
        if let Some(base) = self.base {
            for kv in base.range((lower, std::ops::Bound::Excluded(end))) {
                match kv.into_inner() {
                    Ok((k, _)) if self.writes.contains_key(&*k) => {}
                    Ok(_) if stored.len() >= limit => {
                        more = true;
                        break;
                    }
                    Ok((k, v)) => match postcard::from_bytes::<Value>(&v) {
                        Ok(v) => stored.push((k.to_vec(), v)),
                        Err(e) => self.fail(e),
                    },
                    Err(e) => self.fail(e),
                }
            }
        }
        let n = stored.len() as u64;
        let last = stored.last().map(|(k, _)| k.clone());
        for (dk, old) in stored {
            self.account(&dk, Some(&old), None);
            self.writes.insert(dk, None);
        }
        if more {
            return (n, last);
        }
        (n + self.delete_slot(slot), None)
    }

    /// Deletes every key of `slot`; returns how many.
    pub(super) fn delete_slot(&mut self, slot: u16) -> u64 {
        let (start, end) = crate::db::keys::slot_range(slot);
        // One sequential scan gives every stored value (for the counters and ttl index):
        // no point lookups, which a slot of 100k keys would otherwise cost.
        let mut stored: Vec<(Vec<u8>, Value)> = Vec::new();
        if let Some(base) = self.base {
            for kv in base.range(start.clone()..end.clone()) {
                match kv.into_inner() {
                    Ok((k, v)) if !self.writes.contains_key(&*k) => {
                        match postcard::from_bytes::<Value>(&v) {
                            Ok(v) => stored.push((k.to_vec(), v)),
                            Err(e) => self.fail(e),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => self.fail(e),
                }
            }
        }
        let mut n = 0;
        for (dk, old) in stored {
            self.account(&dk, Some(&old), None);
            self.writes.insert(dk, None);
            n += 1;
        }
        let written: Vec<Vec<u8>> = self
            .writes
            .range(start.clone()..end.clone())
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for dk in written {
            if self.delete(user_key(&dk)) {
                n += 1;
            }
        }
        n
    }

    /// Stores a key known to be absent (a slot being pulled holds only what its current
    /// pull installed, in increasing key order): no lookup of an old value.
    pub(super) fn put_absent(&mut self, key: &[u8], value: Value) {
        let dk = data_key(key);
        if self.writes.contains_key(&dk) || key.len() > crate::cmd::MAX_KEY_LEN {
            return self.put(key, value);
        }
        self.account(&dk, None, Some(&value));
        self.writes.insert(dk, Some(value));
        self.bulk = true;
    }

    fn fail(&self, e: impl Into<StorageError>) {
        self.error.borrow_mut().get_or_insert(e.into());
    }

    fn lookup(&self, dk: &[u8]) -> Option<Value> {
        if let Some(w) = self.writes.get(dk) {
            return w.clone();
        }
        if let Some(r) = self.reads.borrow().get(dk) {
            return r.clone();
        }
        let base = self.base?;
        if let Some(rows) = self.rows {
            if let Some(v) = rows.read().unwrap_or_else(PoisonError::into_inner).get(dk) {
                return v;
            }
        }
        let v = match base.get(dk) {
            Ok(Some(v)) => postcard::from_bytes(&v).map_err(|e| self.fail(e)).ok(),
            Ok(None) => None,
            Err(e) => {
                self.fail(e);
                None
            }
        };
        self.reads.borrow_mut().insert(dk.to_vec(), v.clone());
        v
    }

    /// Accounts for `dk` going from `old` to `new` in counters and ttl index.
    fn account(&mut self, dk: &[u8], old: Option<&Value>, new: Option<&Value>) {
        match (old.is_some(), new.is_some()) {
            (false, true) => self.keys += 1,
            (true, false) => self.keys = self.keys.saturating_sub(1),
            _ => {}
        }
        if let Some(t) = old.and_then(|v| v.expire_at) {
            self.expires = self.expires.saturating_sub(1);
            self.ttl.insert(ttl_key(t, dk), false);
        }
        if let Some(t) = new.and_then(|v| v.expire_at) {
            self.expires += 1;
            self.ttl.insert(ttl_key(t, dk), true);
        }
    }
}

impl DbRead for Overlay<'_> {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        self.lookup(&data_key(key))
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        let start = pos_start(pos).to_vec();
        let mut base = self
            .base
            .into_iter()
            .flat_map(|b| b.range(start.clone()..))
            .filter_map(|kv| match kv.into_inner() {
                Ok((k, v)) => match postcard::from_bytes::<Value>(&v) {
                    Ok(v) => Some((k.to_vec(), Some(v))),
                    Err(e) => {
                        self.fail(e);
                        None
                    }
                },
                Err(e) => {
                    self.fail(e);
                    None
                }
            })
            .peekable();
        let mut over = self
            .writes
            .range(pos_start(pos).to_vec()..)
            .map(|(k, v)| (k.clone(), v.clone()))
            .peekable();
        let merged = std::iter::from_fn(move || loop {
            let order = match (base.peek(), over.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(b), Some(o)) => b.0.cmp(&o.0),
            };
            let item = match order {
                Ordering::Less => base.next(),
                Ordering::Greater => over.next(),
                Ordering::Equal => {
                    base.next();
                    over.next()
                }
            };
            if let Some((k, Some(v))) = item {
                return Some((k, v));
            }
        });
        collect_scan(merged, count)
    }

    fn key_count(&self) -> u64 {
        self.keys
    }

    fn expires_count(&self) -> u64 {
        self.expires
    }
}

impl DbWrite for Overlay<'_> {
    fn put(&mut self, key: &[u8], value: Value) {
        if key.len() > crate::cmd::MAX_KEY_LEN {
            // cmd::parse rejects such keys; a log entry that has one anyway must not panic
            // fjall on every replica (and again on every replay). Same decision everywhere.
            tracing::error!(len = key.len(), "dropping a write of an over-long key");
            return;
        }
        let dk = data_key(key);
        let old = self.lookup(&dk);
        self.account(&dk, old.as_ref(), Some(&value));
        self.writes.insert(dk, Some(value));
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        let dk = data_key(key);
        let Some(old) = self.lookup(&dk) else {
            return false;
        };
        self.account(&dk, Some(&old), None);
        self.writes.insert(dk, None);
        true
    }

    /// O(1): the commit starts a fresh generation instead of deleting key by key.
    fn clear(&mut self) {
        self.base = None;
        self.dedup_base = None;
        self.dedup.clear();
        self.reads.get_mut().clear();
        self.writes.clear();
        self.ttl.clear();
        self.keys = 0;
        self.expires = 0;
    }
}

/// One SCAN page from entries in storage order: the same grouping as `MemDb::scan`.
fn collect_scan<K: AsRef<[u8]>>(
    entries: impl Iterator<Item = (K, Value)>,
    count: usize,
) -> (Vec<(Bytes, Value)>, u64) {
    let mut out = Vec::new();
    let mut last_pos = None;
    for (k, v) in entries {
        let k = k.as_ref();
        let p = scan_pos(k);
        if out.len() >= count.max(1) && Some(p) != last_pos {
            return (out, p);
        }
        last_pos = Some(p);
        out.push((Bytes::copy_from_slice(user_key(k)), v));
    }
    (out, 0)
}

/// Reads of a group's committed state, for the leader after a read barrier and for the
/// expiry task. Cheap to clone.
#[derive(Clone)]
pub struct ShardReader {
    shared: Arc<Shared>,
}

impl ShardReader {
    /// Size in bytes of the group's current snapshot file (0 before the first).
    pub fn snapshot_bytes(&self) -> u64 {
        self.shared
            .snapshot_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The group clock (latest entry time applied): reads take the later of it and the
    /// wall clock, so a key that expired under one leader stays expired under the next.
    pub fn clock(&self) -> u64 {
        self.shared.clock.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Up to `limit` user keys whose expiry time is ≤ `now_ms`, soonest first.
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        let gen = self.shared.generation();
        let end = match now_ms.checked_add(1) {
            Some(e) => std::ops::Bound::Excluded(e.to_be_bytes().to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in gen
            .ttl
            .range::<Vec<u8>, _>((std::ops::Bound::Unbounded, end))
            .take(limit)
        {
            match kv.key() {
                Ok(k) if k.len() >= 8 => out.push(Bytes::copy_from_slice(user_key(&k[8..]))),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(gid = self.shared.gid, error = %e, "reading the ttl index");
                    break;
                }
            }
        }
        out
    }

    /// The cluster state as committed (configuration, slot states, controller history).
    pub fn cluster(&self) -> Arc<ClusterMeta> {
        self.shared.cluster()
    }

    /// Up to `limit` user keys stored in `slot` (expired ones included, as Redis's
    /// CLUSTER GETKEYSINSLOT), and how many there are in all when `limit` is usize::MAX.
    pub fn slot_keys(&self, slot: u16, limit: usize) -> (Vec<Bytes>, u64) {
        let gen = self.shared.generation();
        let (start, end) = crate::db::keys::slot_range(slot);
        let (mut keys, mut n) = (Vec::new(), 0u64);
        for kv in gen.data.range(start..end) {
            let Some(k) = self.logged(kv.key().map_err(StorageError::from)) else {
                break;
            };
            n += 1;
            if keys.len() < limit {
                keys.push(Bytes::copy_from_slice(user_key(&k)));
            } else if limit != usize::MAX {
                break;
            }
        }
        (keys, n)
    }

    /// Up to `limit` exactly-once entries last used before `before_ms` (storage keys),
    /// looking at no more than `scan` entries after storage key `after`. Returns them and
    /// where to go on from (None: the end was reached). There is one entry per client
    /// seen in the last minutes, and a proxy opens one per connection, so the table is
    /// walked a bounded step at a time, never whole at once.
    pub fn idle_dedup(
        &self,
        before_ms: u64,
        after: Option<&[u8]>,
        scan: usize,
        limit: usize,
    ) -> (Vec<Bytes>, Option<Vec<u8>>) {
        let gen = self.shared.generation();
        let lower = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut seen = 0;
        for kv in gen
            .dedup
            .range::<Vec<u8>, _>((lower, std::ops::Bound::Unbounded))
        {
            let Some((k, v)) = self.logged(kv.into_inner().map_err(StorageError::from)) else {
                return (out, None);
            };
            let idle = postcard::from_bytes::<super::apply::DedupEntry>(&v)
                .map(|e| e.at_ms < before_ms)
                .unwrap_or(true);
            if idle {
                out.push(Bytes::copy_from_slice(&k));
            }
            seen += 1;
            if out.len() >= limit || seen >= scan {
                return (out, Some(k.to_vec()));
            }
        }
        (out, None)
    }

    /// The index of the last applied log entry.
    pub fn applied_index(&self) -> Option<u64> {
        self.logged(self.shared.applied())
            .flatten()
            .map(|l| l.index)
    }

    fn logged<T>(&self, r: Result<T, StorageError>) -> Option<T> {
        r.map_err(|e| tracing::error!(gid = self.shared.gid, error = %e, "state machine read"))
            .ok()
    }
}

/// Read failures (I/O errors, corruption) are logged and read as absent: `DbRead` is
/// infallible, and fjall poisons itself on write failures anyway.
impl DbRead for ShardReader {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        let gen = self.shared.generation();
        let v = self.logged(gen.data.get(data_key(key)).map_err(StorageError::from))??;
        self.logged(postcard::from_bytes(&v).map_err(StorageError::from))
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        let gen = self.shared.generation();
        let entries = gen.data.range(pos_start(pos)..).map_while(|kv| {
            let (k, v) = self.logged(kv.into_inner().map_err(StorageError::from))?;
            let v = self.logged(postcard::from_bytes::<Value>(&v).map_err(StorageError::from))?;
            Some((k, v))
        });
        collect_scan(entries, count)
    }

    fn key_count(&self) -> u64 {
        self.logged(self.shared.get_counter(KEYS)).unwrap_or(0)
    }

    fn expires_count(&self) -> u64 {
        self.logged(self.shared.get_counter(EXPIRES)).unwrap_or(0)
    }
}

impl ShardReader {
    /// A consistent view of the committed state at this moment: every read through it
    /// sees the same point of the log, so a batch of reads (or one MGET) never sees half
    /// of an apply that commits meanwhile.
    pub fn view(&self) -> ReadView {
        // Cluster state first: the fjall snapshot taken after it holds at least the
        // writes committed with it (a pull must see every write before its slot froze).
        let cluster = self.shared.cluster();
        let epoch = &self.shared.epoch;
        let before = epoch.load(std::sync::atomic::Ordering::SeqCst);
        let (gen, snap) = {
            let g = self
                .shared
                .gen
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (g.clone(), self.shared.storage.db().snapshot())
        };
        let stable =
            before.is_multiple_of(2) && epoch.load(std::sync::atomic::Ordering::SeqCst) == before;
        ReadView {
            reader: self.clone(),
            gen,
            snap,
            cluster,
            epoch: std::cell::Cell::new(stable.then_some(before)),
            missed: Default::default(),
        }
    }
}

/// See [`ShardReader::view`].
pub struct ReadView {
    reader: ShardReader,
    gen: Generation,
    snap: fjall::Snapshot,
    cluster: Arc<ClusterMeta>,
    /// The epoch the snapshot was taken in, while cached rows still belong to it (None:
    /// the state changed since, read the snapshot only).
    epoch: std::cell::Cell<Option<u64>>,
    /// Rows read from the snapshot, not the cache: cached when the view is dropped if the
    /// state is still the snapshot's. Applies cache only the keys they touch, so without
    /// this a GET of an absent key (or of one not written since a restart) paid an LSM
    /// point read every time: 14% of the CPU of a proxied GET run where a third missed.
    missed: RefCell<Vec<(Vec<u8>, Option<Value>)>>,
}

/// One piece of a migration pull: data of consecutive slots, in storage order.
pub struct SlotChunk {
    /// Storage keys and stored values.
    pub kvs: Vec<(Bytes, Bytes)>,
    /// Exactly-once entries of the slots in `complete`.
    pub dedup: Vec<(Bytes, Bytes)>,
    /// Slots whose data begins in this chunk.
    pub started: Vec<u16>,
    /// Slots whose data ends in this chunk (all of it has now been sent).
    pub complete: Vec<u16>,
}

impl ReadView {
    /// The data of `slots` (ascending), starting after storage key `after` (within the
    /// first slot) or at the first slot's beginning, up to about `max_bytes`.
    pub fn slots_chunk(&self, slots: &[u16], after: Option<&[u8]>, max_bytes: usize) -> SlotChunk {
        let empty = || SlotChunk {
            kvs: Vec::new(),
            dedup: Vec::new(),
            started: Vec::new(),
            complete: Vec::new(),
        };
        let mut out = empty();
        self.slots_data(&mut out, slots, after, max_bytes);
        if !self.dedup_for(&mut out) {
            // An empty chunk: the puller asks again.
            return empty();
        }
        out
    }

    fn slots_data(
        &self,
        out: &mut SlotChunk,
        slots: &[u16],
        after: Option<&[u8]>,
        max_bytes: usize,
    ) {
        let r = &self.reader;
        let mut bytes = 0;
        for (i, &slot) in slots.iter().enumerate() {
            let (start, end) = crate::db::keys::slot_range(slot);
            let lower = match after.filter(|_| i == 0) {
                Some(a) => std::ops::Bound::Excluded(a.to_vec()),
                None => {
                    out.started.push(slot);
                    std::ops::Bound::Included(start.clone())
                }
            };
            for kv in self.snap.range(
                &self.gen.data,
                (lower, std::ops::Bound::Excluded(end.clone())),
            ) {
                if bytes >= max_bytes {
                    return;
                }
                let Some((k, v)) = r.logged(kv.into_inner().map_err(StorageError::from)) else {
                    return;
                };
                bytes += k.len() + v.len();
                out.kvs
                    .push((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)));
            }
            out.complete.push(slot);
            if bytes >= max_bytes {
                return;
            }
        }
    }

    /// Each client's exactly-once entry as the slots `out` completes need it: the group
    /// taking them over answers retries of their writes from it. False if storage failed.
    fn dedup_for(&self, out: &mut SlotChunk) -> bool {
        if out.complete.is_empty() {
            return true;
        }
        for kv in self.snap.iter(&self.gen.dedup) {
            let Some((k, v)) = self
                .reader
                .logged(kv.into_inner().map_err(StorageError::from))
            else {
                return false;
            };
            let Ok(e) = postcard::from_bytes::<DedupEntry>(&v) else {
                continue;
            };
            let part = e.for_slots(&out.complete);
            if part.floor == 0 && part.recent.is_empty() {
                continue;
            }
            match crate::codec::to_vec(&part) {
                Ok(v) => out.dedup.push((Bytes::copy_from_slice(&k), Bytes::from(v))),
                Err(e) => tracing::error!(error = %e, "encoding an exactly-once entry"),
            }
        }
        true
    }

    /// Whether `client`'s write `seq` had applied (or been acknowledged) at this view's
    /// moment: a read that must see it waits otherwise.
    pub fn settled(&self, client: u64, seq: u64) -> bool {
        let v = self
            .snap
            .get(&self.gen.dedup, dedup_key(client))
            .map_err(StorageError::from);
        let Some(Some(v)) = self.reader.logged(v) else {
            return false;
        };
        postcard::from_bytes::<DedupEntry>(&v).is_ok_and(|e| e.settled(seq))
    }

    /// The cluster state of this view's moment.
    pub fn cluster(&self) -> Arc<ClusterMeta> {
        self.cluster.clone()
    }

    fn counter(&self, key: &[u8]) -> u64 {
        let v = self
            .snap
            .get(&self.reader.shared.meta, key)
            .map_err(StorageError::from);
        let v = self.reader.logged(v).flatten();
        v.and_then(|v| self.reader.logged(decode_u64(&v)))
            .unwrap_or(0)
    }
}

impl ReadView {
    /// The cached row of `dk` if it is the snapshot's: a GET then costs a hash lookup,
    /// not an LSM point read (memtable, filters, blocks), which was a third of its CPU.
    fn cached(&self, dk: &[u8]) -> Option<Option<Value>> {
        let e = self.epoch.get()?;
        let sh = &self.reader.shared;
        // Never waits: a commit holds the lock only while the epoch is odd anyway.
        let v = sh.rows.try_read().ok()?.get(dk);
        if sh.epoch.load(std::sync::atomic::Ordering::SeqCst) != e {
            self.epoch.set(None);
            return None;
        }
        v
    }
}

impl Drop for ReadView {
    /// Caches the rows read from the snapshot, under the write lock and only if no commit
    /// or install has begun since the snapshot: one that begins later updates the cache
    /// after this (it needs the lock), so it overwrites whatever it changes.
    fn drop(&mut self) {
        let missed = std::mem::take(self.missed.get_mut());
        let (Some(e), false) = (self.epoch.get(), missed.is_empty()) else {
            return;
        };
        let sh = &self.reader.shared;
        // Never waits: skipping is only a missed chance.
        let Ok(mut rows) = sh.rows.try_write() else {
            return;
        };
        if sh.epoch.load(std::sync::atomic::Ordering::SeqCst) != e {
            return;
        }
        for (dk, v) in missed {
            rows.insert(&dk, &v);
        }
    }
}

impl DbRead for ReadView {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        let r = &self.reader;
        let dk = data_key(key);
        if let Some(v) = self.cached(&dk) {
            return v;
        }
        let stored = r.logged(
            self.snap
                .get(&self.gen.data, &dk)
                .map_err(StorageError::from),
        )?;
        let v = match stored {
            Some(v) => Some(r.logged(postcard::from_bytes(&v).map_err(StorageError::from))?),
            None => None,
        };
        if self.epoch.get().is_some() {
            self.missed.borrow_mut().push((dk, v.clone()));
        }
        v
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        let r = &self.reader;
        let entries = self
            .snap
            .range(&self.gen.data, pos_start(pos)..)
            .map_while(|kv| {
                let (k, v) = r.logged(kv.into_inner().map_err(StorageError::from))?;
                let v = r.logged(postcard::from_bytes::<Value>(&v).map_err(StorageError::from))?;
                Some((k, v))
            });
        collect_scan(entries, count)
    }

    fn key_count(&self) -> u64 {
        self.counter(KEYS)
    }

    fn expires_count(&self) -> u64 {
        self.counter(EXPIRES)
    }
}

/// Builds snapshot files from a consistent fjall snapshot of the group.
pub struct ShardSnapshotBuilder {
    shared: Arc<Shared>,
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Keeps a snapshot id (chosen by whichever leader built it) safe as part of a file name.
fn file_name(gid: Gid, snapshot_id: &str) -> String {
    let id: String = snapshot_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("g{gid}-{id}.snap")
}

/// Streams the state as of one fjall snapshot into a new file; returns its meta and name.
fn write_snapshot_file(sh: &Shared) -> Result<CurrentSnapshot, StorageError> {
    let (gen, snap) = {
        let g = sh.gen.read().unwrap_or_else(PoisonError::into_inner);
        (g.clone(), sh.storage.db().snapshot())
    };
    let cluster: ClusterMeta = match snap.get(&sh.meta, CLUSTER)? {
        Some(v) => postcard::from_bytes(&v)?,
        None => ClusterMeta::default(),
    };
    let read =
        |key: &[u8]| -> Result<Option<fjall::Slice>, StorageError> { Ok(snap.get(&sh.meta, key)?) };
    let last_log_id: Option<LogId<NodeId>> = match read(APPLIED)? {
        Some(v) => postcard::from_bytes(&v)?,
        None => None,
    };
    let last_membership: Membership = match read(MEMBERSHIP)? {
        Some(v) => postcard::from_bytes(&v)?,
        None => Membership::default(),
    };
    let snapshot_id = match &last_log_id {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, unique_suffix()),
        None => format!("none-{}", unique_suffix()),
    };
    let meta = Meta {
        last_log_id,
        last_membership,
        snapshot_id,
    };
    let file = file_name(sh.gid, &meta.snapshot_id);
    let path = sh.snapshot_path(&file);
    let tmp = path.with_extension("snap.tmp");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    write_record(
        &mut w,
        &SnapRecord::Header {
            version: SNAPSHOT_VERSION,
            meta: meta.clone(),
            clock: match read(CLOCK)? {
                Some(v) => decode_u64(&v)?,
                None => 0,
            },
            cluster: Box::new(cluster),
        },
    )?;
    let mut entries = 0u64;
    for kv in snap.iter(&gen.data) {
        let (k, v) = kv.into_inner()?;
        write_record(&mut w, &SnapRecord::Kv(k.into(), v.into()))?;
        entries += 1;
    }
    for kv in snap.iter(&gen.dedup) {
        let (k, v) = kv.into_inner()?;
        write_record(&mut w, &SnapRecord::Dedup(k.into(), v.into()))?;
    }
    write_record(&mut w, &SnapRecord::End { entries })?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(&sh.storage.snapshot_dir())?;
    Ok(CurrentSnapshot { meta, file })
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

async fn open_snapshot(
    sh: &Shared,
    cur: CurrentSnapshot,
) -> Result<Snapshot<ShardTC>, StorageError> {
    let f = tokio::fs::File::open(sh.snapshot_path(&cur.file)).await?;
    Ok(Snapshot {
        meta: cur.meta,
        snapshot: Box::new(f),
    })
}

fn snap_err(e: impl Into<StorageError>) -> RaftStorageError<NodeId> {
    raft_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e)
}

fn join_err(e: tokio::task::JoinError) -> StorageError {
    StorageError::Io(std::io::Error::other(e))
}

impl RaftSnapshotBuilder<ShardTC> for ShardSnapshotBuilder {
    /// Writes the file, then makes the state machine (not synced by apply) and the pointer
    /// durable before returning: openraft purges the log behind the snapshot.
    async fn build_snapshot(&mut self) -> RaftRes<Snapshot<ShardTC>> {
        let sh = self.shared.clone();
        let _guard = sh.snap_lock.lock().await;
        let built = {
            let sh = sh.clone();
            tokio::task::spawn_blocking(move || write_snapshot_file(&sh))
                .await
                .map_err(|e| snap_err(join_err(e)))?
                .map_err(snap_err)?
        };
        sh.meta
            .insert(SNAPSHOT, crate::codec::to_vec(&built).map_err(snap_err)?)
            .map_err(snap_err)?;
        sh.storage.persist().await.map_err(snap_err)?;
        sh.clean_snapshot_files().map_err(snap_err)?;
        sh.note_snapshot_size().map_err(snap_err)?;
        tracing::info!(gid = sh.gid, id = %built.meta.snapshot_id, "built snapshot");
        open_snapshot(&sh, built).await.map_err(snap_err)
    }
}

/// Streams a snapshot file into a fresh generation in bounded batches, then flips it in
/// with last applied, membership, counters and the snapshot pointer in one batch.
/// Returns the new counters.
fn install_file(sh: &Shared, cur: &CurrentSnapshot) -> Result<(u64, u64), StorageError> {
    let mut r =
        BufReader::with_capacity(1 << 20, std::fs::File::open(sh.snapshot_path(&cur.file))?);
    let mut buf = Vec::new();
    let (clock, cluster) = match read_record(&mut r, &mut buf)? {
        Some(SnapRecord::Header {
            version: SNAPSHOT_VERSION,
            meta,
            clock,
            cluster,
        }) if meta.last_log_id == cur.meta.last_log_id => (clock, *cluster),
        _ => {
            return Err(StorageError::Corrupt(
                "snapshot header does not match".into(),
            ))
        }
    };
    let old = sh.generation();
    let new = Generation::create_empty(&sh.storage, sh.gid, old.id + 1)?;
    let db = sh.storage.db();
    let mut fill = || -> Result<(fjall::OwnedWriteBatch, u64, u64), StorageError> {
        let (mut batch, mut bytes, mut keys, mut expires) = (db.batch(), 0usize, 0u64, 0u64);
        loop {
            match read_record(&mut r, &mut buf)? {
                Some(SnapRecord::Kv(k, v)) => {
                    let value: Value = postcard::from_bytes(&v)?;
                    if let Some(t) = value.expire_at {
                        batch.insert(&new.ttl, ttl_key(t, &k), Vec::new());
                        expires += 1;
                    }
                    keys += 1;
                    bytes += k.len() + v.len();
                    batch.insert(&new.data, k, v);
                    if bytes >= INSTALL_BATCH_BYTES || batch.len() >= INSTALL_BATCH_ITEMS {
                        std::mem::replace(&mut batch, db.batch()).commit()?;
                        bytes = 0;
                    }
                }
                Some(SnapRecord::Dedup(k, v)) => {
                    bytes += k.len() + v.len();
                    batch.insert(&new.dedup, k, v);
                }
                Some(SnapRecord::End { entries }) if entries == keys => {
                    return Ok((batch, keys, expires))
                }
                _ => return Err(StorageError::Corrupt("snapshot file is truncated".into())),
            }
        }
    };
    let (mut batch, keys, expires) = match fill() {
        Ok(x) => x,
        Err(e) => {
            for name in Generation::names(sh.gid, new.id) {
                sh.storage.delete_keyspace(&name)?;
            }
            return Err(e);
        }
    };
    batch.insert(&sh.meta, GEN, new.id.to_be_bytes());
    batch.insert(
        &sh.meta,
        APPLIED,
        crate::codec::to_vec(&cur.meta.last_log_id)?,
    );
    batch.insert(
        &sh.meta,
        MEMBERSHIP,
        crate::codec::to_vec(&cur.meta.last_membership)?,
    );
    batch.insert(&sh.meta, KEYS, keys.to_be_bytes());
    batch.insert(&sh.meta, EXPIRES, expires.to_be_bytes());
    batch.insert(&sh.meta, SNAPSHOT, crate::codec::to_vec(cur)?);
    batch.insert(&sh.meta, CLOCK, clock.to_be_bytes());
    batch.insert(&sh.meta, CLUSTER, crate::codec::to_vec(&cluster)?);
    {
        let mut cur = sh.cluster.write().unwrap_or_else(PoisonError::into_inner);
        flip(sh, batch, new, &old)?;
        *cur = Arc::new(cluster);
    }
    sh.clock.store(clock, std::sync::atomic::Ordering::Relaxed);
    Ok((keys, expires))
}

impl RaftStateMachine<ShardTC> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(&mut self) -> RaftRes<(Option<LogId<NodeId>>, Membership)> {
        let err = |e| raft_err(ErrorSubject::StateMachine, ErrorVerb::Read, e);
        let applied = self.shared.applied().map_err(err)?;
        let membership = self
            .shared
            .get_meta(MEMBERSHIP)
            .map_err(err)?
            .unwrap_or_default();
        Ok((applied, membership))
    }

    /// One fjall batch for all `entries`, with last applied and membership; one response
    /// per entry (empty for blank and membership entries).
    async fn apply<I>(&mut self, entries: I) -> RaftRes<Vec<ShardResponse>>
    where
        I: IntoIterator<Item = openraft::Entry<ShardTC>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // The whole apply runs off the async workers: a large entry (a migration chunk,
        // a big MSET) then delays other groups' tasks by OS time slicing, not by holding
        // a worker that their queued tasks wait behind.
        crate::storage::blocking(|| self.apply_sync(entries)).map_err(|e| *e)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        ShardSnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    /// A fresh temp file; openraft writes the received chunks into it.
    async fn begin_receiving_snapshot(&mut self) -> RaftRes<Box<tokio::fs::File>> {
        let name = format!("g{}-recv-{}.tmp", self.shared.gid, unique_suffix());
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.shared.snapshot_path(&name))
            .await
            .map_err(snap_err)?;
        Ok(Box::new(f))
    }

    /// Copies the received data to the snapshot's own file (the handle may not be the one
    /// `begin_receiving_snapshot` gave out), installs it atomically, and keeps it as the
    /// current snapshot.
    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> RaftRes<()> {
        // Whatever happens below, cached rows may no longer match the state; views see an
        // odd epoch until it is over and read only their fjall snapshots.
        let sh = self.shared.clone();
        let _epoch = Epoch::enter(&sh.epoch);
        sh.rows
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.dedup_mem = None;
        let _guard = sh.snap_lock.lock().await;
        let cur = CurrentSnapshot {
            meta: meta.clone(),
            file: file_name(sh.gid, &meta.snapshot_id),
        };
        let path = sh.snapshot_path(&cur.file);
        let tmp = path.with_extension("snap.tmp");
        let copy = async {
            snapshot.seek(SeekFrom::Start(0)).await?;
            let mut out = tokio::fs::File::create(&tmp).await?;
            tokio::io::copy(&mut *snapshot, &mut out).await?;
            out.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        copy.await.map_err(snap_err)?;
        let (keys, expires) = {
            let sh = sh.clone();
            let cur = cur.clone();
            tokio::task::spawn_blocking(move || install_file(&sh, &cur))
                .await
                .map_err(|e| snap_err(join_err(e)))?
                .map_err(snap_err)?
        };
        self.keys = keys;
        self.expires = expires;
        sh.storage.persist().await.map_err(snap_err)?;
        sh.clean_snapshot_files().map_err(snap_err)?;
        sh.note_snapshot_size().map_err(snap_err)?;
        tracing::info!(gid = sh.gid, id = %meta.snapshot_id, keys, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> RaftRes<Option<Snapshot<ShardTC>>> {
        let err = |e| raft_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        // A concurrent build may replace the file between reading the pointer and opening it.
        let mut attempts = 0;
        loop {
            let Some(cur) = self
                .shared
                .get_meta::<CurrentSnapshot>(SNAPSHOT)
                .map_err(err)?
            else {
                return Ok(None);
            };
            match open_snapshot(&self.shared, cur).await {
                Ok(s) => return Ok(Some(s)),
                Err(StorageError::Io(e))
                    if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::testing::{log_id, membership_ent, StoreBuilder, Suite};
    use openraft::{Entry, RaftSnapshotBuilder};
    use tempfile::TempDir;

    use super::*;
    use crate::cmd::WriteCmd;
    use crate::db::mem::MemDb;
    use crate::raft::log_store::LogStore;
    use crate::shard::request::ShardRequest;
    use redraft_proxy::wire::Reply;

    struct FjallBuilder;

    impl StoreBuilder<ShardTC, LogStore<ShardTC>, ShardStateMachine, TempDir> for FjallBuilder {
        async fn build(&self) -> RaftRes<(TempDir, LogStore<ShardTC>, ShardStateMachine)> {
            let dir = tempfile::tempdir().map_err(snap_err)?;
            let storage = Storage::open(dir.path(), 0).map_err(snap_err)?;
            let log = LogStore::open(&storage, 1).map_err(snap_err)?;
            let sm = ShardStateMachine::open(&storage, 1).map_err(snap_err)?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn handles_are_shareable() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<ShardReader>();
        shareable::<Storage>();
        shareable::<LogStore<ShardTC>>();
    }

    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(FjallBuilder).unwrap();
    }

    fn open(dir: &Path) -> (Storage, ShardStateMachine) {
        let storage = Storage::open(dir, 1).unwrap();
        let sm = ShardStateMachine::open(&storage, 1).unwrap();
        (storage, sm)
    }

    fn normal(index: u64, now_ms: u64, cmds: Vec<WriteCmd>) -> Entry<ShardTC> {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(ShardRequest::new(now_ms, cmds)),
        }
    }

    fn ttl_value(s: &str, expire_at: Option<u64>) -> Value {
        Value {
            expire_at,
            ..Value::string(s.to_string())
        }
    }

    fn full_scan(db: &dyn DbRead, count: usize) -> Vec<(Vec<(Bytes, Value)>, u64)> {
        let mut pages = Vec::new();
        let mut pos = 0;
        loop {
            let (page, next) = db.scan(pos, count);
            pages.push((page, next));
            if next == 0 {
                return pages;
            }
            pos = next;
        }
    }

    /// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[tokio::test]
    async fn apply_batches_commands_and_keeps_counters_and_ttl_index() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| {
            db.put(b"a", ttl_value("1", None));
            db.put(b"b", ttl_value("2", Some(100)));
            db.put(b"c", ttl_value("3", Some(200)));
            // Reads see the batch's own writes.
            assert_eq!(db.get_raw(b"b"), Some(ttl_value("2", Some(100))));
            assert!(db.delete(b"a"));
            assert!(!db.delete(b"a"));
            assert_eq!(db.get_raw(b"a"), None);
            db.put(b"a", ttl_value("1", None));
            db.put(b"c", ttl_value("3", Some(300)));
            assert_eq!((db.key_count(), db.expires_count()), (3, 2));
        });
        assert_eq!((reader.key_count(), reader.expires_count()), (3, 2));
        assert_eq!(reader.expired_keys(250, 10), vec![Bytes::from_static(b"b")]);
        assert_eq!(
            reader.expired_keys(1000, 10),
            vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")]
        );
        assert_eq!(reader.expired_keys(1000, 1).len(), 1);
        assert_eq!(reader.expired_keys(99, 10), Vec::<Bytes>::new());

        let replies = sm
            .apply([
                normal(
                    2,
                    150,
                    vec![
                        WriteCmd::DeleteExpired(vec![
                            Bytes::from_static(b"b"),
                            Bytes::from_static(b"a"),
                            Bytes::from_static(b"zz"),
                        ]),
                        WriteCmd::DeleteExpired(vec![Bytes::from_static(b"b")]),
                    ],
                ),
                openraft::testing::blank_ent::<ShardTC>(1, 1, 3),
                membership_ent::<ShardTC>(1, 1, 4, vec![BTreeSet::from([1, 2])]),
                normal(
                    5,
                    400,
                    vec![WriteCmd::DeleteExpired(vec![Bytes::from_static(b"c")])],
                ),
            ])
            .await
            .unwrap();
        assert_eq!(
            replies,
            vec![
                vec![Reply::Int(1), Reply::Int(0)],
                vec![],
                vec![],
                vec![Reply::Int(1)]
            ]
        );
        assert_eq!((reader.key_count(), reader.expires_count()), (1, 0));
        assert_eq!(reader.expired_keys(u64::MAX, 10), Vec::<Bytes>::new());
        assert_eq!(reader.get_raw(b"a"), Some(ttl_value("1", None)));
        assert_eq!(reader.applied_index(), Some(5));
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 5)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1, 4)));
    }

    #[tokio::test]
    async fn read_view_is_one_point_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| db.put(b"a", ttl_value("0", None)));
        let view = reader.view();
        sm.write_with(log_id(1, 1, 2), |db| {
            db.put(b"a", ttl_value("1", None));
            db.put(b"b", ttl_value("1", None));
        });
        assert_eq!(view.get_raw(b"a"), Some(ttl_value("0", None)));
        assert_eq!(view.get_raw(b"b"), None);
        assert_eq!(view.key_count(), 1);
        assert_eq!(view.scan(0, 10).0.len(), 1);
        assert_eq!(reader.view().get_raw(b"b"), Some(ttl_value("1", None)));
        assert_eq!(reader.view().key_count(), 2);
    }

    #[tokio::test]
    async fn views_read_cached_rows_only_while_they_are_the_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| db.put(b"a", ttl_value("0", None)));
        // The row vanishes from fjall behind the cache's back: what a view still finds
        // comes from the cache.
        let gen = sm.shared.generation();
        gen.data.remove(data_key(b"a")).unwrap();
        let view = reader.view();
        assert_eq!(view.get_raw(b"a"), Some(ttl_value("0", None)));
        // A commit after the view was taken: the view no longer trusts the cache.
        sm.write_with(log_id(1, 1, 2), |db| db.put(b"b", ttl_value("1", None)));
        assert_eq!(view.get_raw(b"a"), None);
        assert_eq!(view.get_raw(b"b"), None);
        // A view taken while the state changes (odd epoch) reads its snapshot only.
        let changing = Epoch::enter(&sm.shared.epoch);
        assert_eq!(reader.view().get_raw(b"a"), None);
        drop(changing);
        assert_eq!(reader.view().get_raw(b"a"), Some(ttl_value("0", None)));
        assert_eq!(reader.view().get_raw(b"b"), Some(ttl_value("1", None)));
    }

    #[test]
    fn views_cache_what_they_read_only_if_the_state_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        let cached =
            |sm: &ShardStateMachine, k: &[u8]| sm.shared.rows.read().unwrap().get(&data_key(k));
        sm.write_with(log_id(1, 1, 1), |db| db.put(b"a", ttl_value("0", None)));
        // Not read by the apply, so not cached by it (a restart empties the cache too).
        sm.shared.rows.write().unwrap().clear();
        {
            let view = reader.view();
            assert_eq!(view.get_raw(b"a"), Some(ttl_value("0", None)));
            assert_eq!(view.get_raw(b"absent"), None);
            assert_eq!(cached(&sm, b"a"), None);
        }
        assert_eq!(cached(&sm, b"a"), Some(Some(ttl_value("0", None))));
        assert_eq!(cached(&sm, b"absent"), Some(None));
        // A view whose snapshot is older than a commit caches nothing: its rows may be
        // stale, and the commit cached only the keys it touched.
        sm.shared.rows.write().unwrap().clear();
        let view = reader.view();
        assert_eq!(view.get_raw(b"b"), None);
        sm.write_with(log_id(1, 1, 2), |db| db.put(b"b", ttl_value("1", None)));
        sm.shared.rows.write().unwrap().clear();
        drop(view);
        assert_eq!(cached(&sm, b"b"), None);
        assert_eq!(reader.view().get_raw(b"b"), Some(ttl_value("1", None)));
    }

    #[tokio::test]
    async fn group_clock_never_runs_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| {
            db.put(b"k", ttl_value("v", Some(1500)))
        });
        let normal = |index, now_ms, cmds| openraft::Entry::<ShardTC> {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(crate::shard::request::ShardRequest::new(now_ms, cmds)),
        };
        sm.apply([normal(2, 2000, vec![])]).await.unwrap();
        assert_eq!(reader.clock(), 2000);
        // The next leader's clock is behind: the key is still expired for it.
        let del = crate::cmd::WriteCmd::DeleteExpired(vec![Bytes::from_static(b"k")]);
        let replies = sm.apply([normal(3, 1000, vec![del])]).await.unwrap();
        assert_eq!(replies, vec![vec![redraft_proxy::wire::Reply::Int(1)]]);
        assert_eq!(reader.clock(), 2000);
    }

    #[test]
    fn pulled_rows_replace_cached_ones_and_stay_out_of_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| db.put(b"a", ttl_value("old", None)));
        // Deleted when its slot left: the cache now says "absent".
        sm.write_with(log_id(1, 1, 2), |db| assert!(db.delete(b"a")));
        let cached = |sm: &ShardStateMachine| {
            let rows = sm.shared.rows.read().unwrap();
            rows.get(&data_key(b"a"))
        };
        assert_eq!(cached(&sm), Some(None));
        // The slot comes back with a pull.
        sm.write_with(log_id(1, 1, 3), |ov| {
            ov.put_absent(b"a", ttl_value("new", None))
        });
        assert_eq!(cached(&sm), None);
        assert_eq!(reader.view().get_raw(b"a"), Some(ttl_value("new", None)));
        assert_eq!(reader.key_count(), 1);
    }

    #[tokio::test]
    async fn clear_starts_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, mut sm) = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |db| {
            db.put(b"x", ttl_value("1", Some(5)));
            db.put(b"y", ttl_value("2", None));
        });
        sm.write_with(log_id(1, 1, 2), |db| {
            db.put(b"z", ttl_value("0", None));
            db.clear();
            assert_eq!(db.get_raw(b"x"), None);
            assert_eq!(db.scan(0, 10).0, vec![]);
            db.put(b"w", ttl_value("3", Some(7)));
        });
        assert_eq!((reader.key_count(), reader.expires_count()), (1, 1));
        assert_eq!(reader.get_raw(b"x"), None);
        assert_eq!(reader.get_raw(b"w"), Some(ttl_value("3", Some(7))));
        // The next apply sees the cleared state, not rows cached before the clear.
        sm.write_with(log_id(1, 1, 3), |db| {
            assert_eq!(db.get_raw(b"y"), None);
            assert_eq!(db.get_raw(b"w"), Some(ttl_value("3", Some(7))));
        });
        assert_eq!(reader.expired_keys(100, 10), vec![Bytes::from_static(b"w")]);
        // The old generation goes after the flusher's next fsync.
        storage.persist().await.unwrap();
        assert_eq!(
            storage.keyspace_names("g1.data."),
            vec!["g1.data.1".to_string()]
        );
        drop((sm, reader));
        let (_storage, sm) = open_again(storage, dir.path());
        assert_eq!(sm.reader().get_raw(b"w"), Some(ttl_value("3", Some(7))));
        assert_eq!(sm.reader().key_count(), 1);
    }

    fn open_again(storage: Storage, dir: &Path) -> (Storage, ShardStateMachine) {
        drop(storage);
        open(dir)
    }

    #[tokio::test]
    async fn scan_matches_mem_db() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let mut mem = MemDb::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut ops = Vec::new();
        for _ in 0..400 {
            let key = format!("k{}", rng.next() % 300).into_bytes();
            let expire = (rng.next().is_multiple_of(3)).then(|| rng.next() % 1000);
            ops.push((key, rng.next().is_multiple_of(5), expire));
        }
        let apply_ops = |db: &mut dyn DbWrite, ops: &[(Vec<u8>, bool, Option<u64>)]| {
            for (k, del, exp) in ops {
                if *del {
                    db.delete(k);
                } else {
                    db.put(k, ttl_value("v", *exp));
                }
            }
        };
        apply_ops(&mut mem, &ops[..300]);
        sm.write_with(log_id(1, 1, 1), |db| apply_ops(db, &ops[..300]));
        let reader = sm.reader();
        for count in [1, 2, 3, 7, 50, 1000] {
            assert_eq!(
                full_scan(&reader, count),
                full_scan(&mem, count),
                "count {count}"
            );
        }
        assert_eq!(reader.key_count(), mem.key_count());
        assert_eq!(reader.expires_count(), mem.expires_count());

        // The overlay merges uncommitted writes (including deletes) with the base.
        apply_ops(&mut mem, &ops[300..]);
        sm.write_with(log_id(1, 1, 2), |db| {
            apply_ops(db, &ops[300..]);
            for count in [1, 3, 10, 1000] {
                assert_eq!(
                    full_scan(db, count),
                    full_scan(&mem, count),
                    "overlay count {count}"
                );
            }
            assert_eq!(db.key_count(), mem.key_count());
            assert_eq!(db.expires_count(), mem.expires_count());
        });
        assert_eq!(full_scan(&reader, 4), full_scan(&mem, 4));
        let mut want: Vec<(u64, Bytes)> = full_scan(&mem, 1000)
            .into_iter()
            .flat_map(|(p, _)| p)
            .filter_map(|(k, v)| v.expire_at.filter(|t| *t <= 500).map(|t| (t, k)))
            .collect();
        want.sort_by_key(|a| (a.0, data_key(&a.1)));
        let want: Vec<Bytes> = want.into_iter().map(|(_, k)| k).collect();
        assert_eq!(reader.expired_keys(500, usize::MAX), want);
    }

    #[tokio::test]
    async fn once_answers_repeats_and_idle_entries_are_forgotten() {
        use crate::shard::apply::DEDUP_IDLE_MS;
        let dir = tempfile::tempdir().unwrap();
        let (storage, mut sm) = open(dir.path());
        let once = |seq: u64| {
            let argv = ["ONCE", "7", &seq.to_string(), "APPEND", "k", "x"]
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .to_vec();
            match crate::cmd::parse(argv, 0) {
                crate::cmd::Command::Write(w) => w,
                other => panic!("{other:?}"),
            }
        };
        let t = 1_000;
        let r = sm
            .apply([normal(1, t, vec![once(1), once(1), once(2), once(1)])])
            .await
            .unwrap();
        assert_eq!(
            r[0],
            vec![Reply::Int(1), Reply::Int(1), Reply::Int(2), Reply::Int(1)]
        );
        // Reopened, the entries kept in memory are loaded again from disk.
        drop(sm);
        let (_storage, mut sm) = open_again(storage, dir.path());
        let reader = sm.reader();
        let r = sm.apply([normal(2, t, vec![once(2)])]).await.unwrap();
        assert_eq!(r[0], vec![Reply::Int(2)], "a repeat after a restart");
        let (idle, next) = reader.idle_dedup(t + 1, None, 100, 10);
        assert_eq!((idle.len(), next), (1, None));
        assert!(reader.idle_dedup(t, None, 100, 10).0.is_empty());
        // A step that ends at its scan bound says where to go on.
        let (some, next) = reader.idle_dedup(t + 1, None, 1, 10);
        assert_eq!((some.len(), next.as_deref()), (1, Some(&idle[0][..])));
        let (rest, next) = reader.idle_dedup(t + 1, Some(&idle[0]), 1, 10);
        assert_eq!((rest.len(), next), (0, None));
        // Not idle long enough at the entry's time: kept.
        let forget = WriteCmd::ForgetDedup(idle.clone());
        let r = sm
            .apply([normal(
                3,
                t + DEDUP_IDLE_MS - 1,
                vec![forget.clone(), once(2)],
            )])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(0), Reply::Int(2)]);
        // The repeat above refreshed nothing (a cached reply): idle from `t` on.
        let r = sm
            .apply([normal(4, t + DEDUP_IDLE_MS, vec![forget, once(2)])])
            .await
            .unwrap();
        assert_eq!(
            r[0],
            vec![Reply::Int(1), Reply::Int(3)],
            "forgotten: the same seq applies again"
        );
    }

    #[tokio::test]
    async fn a_write_waits_for_the_one_it_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, mut sm) = open(dir.path());
        let once = |stamp: &str, v: &str| {
            let argv = ["ONCE", "7", stamp, "APPEND", "k", v]
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .to_vec();
            match crate::cmd::parse(argv, 0) {
                crate::cmd::Command::Write(w) => w,
                other => panic!("{other:?}"),
            }
        };
        let reader = sm.reader();
        let get = || reader.view().get_raw(b"k");
        // Write 2 follows write 1, which has not applied here (refused, to be retried).
        let r = sm
            .apply([normal(1, 0, vec![once("2:0:1", "b")])])
            .await
            .unwrap();
        assert_eq!(
            r[0],
            vec![Reply::err(
                "TRYAGAIN write 2 of client 7 waits for its write 1"
            )]
        );
        assert_eq!(get(), None, "refused without running");
        // Its predecessor applied (in the same entry, ahead of it): the retry runs.
        let r = sm
            .apply([normal(2, 0, vec![once("1:0", "a"), once("2:0:1", "b")])])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(1), Reply::Int(2)]);
        // A predecessor acknowledged (below the floor) is as good as applied.
        let r = sm
            .apply([normal(3, 0, vec![once("3:2", "c"), once("5:2:4", "d")])])
            .await
            .unwrap();
        assert_eq!(r[0][0], Reply::Int(3));
        assert!(r[0][1].is_error(), "4 never applied: {:?}", r[0][1]);
        let r = sm
            .apply([normal(4, 0, vec![once("6:4", "e"), once("5:4:4", "d")])])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(4), Reply::Int(5)]);
        assert_eq!(get(), Some(ttl_value("abced", None)));
    }

    #[tokio::test]
    async fn state_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (storage, mut sm) = open(dir.path());
            let mut log = LogStore::<ShardTC>::open(&storage, 1).unwrap();
            use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
            log.blocking_append([membership_ent::<ShardTC>(
                1,
                1,
                1,
                vec![BTreeSet::from([1])],
            )])
            .await
            .unwrap();
            log.save_vote(&openraft::Vote::new(1, 1)).await.unwrap();
            sm.apply([membership_ent::<ShardTC>(
                1,
                1,
                1,
                vec![BTreeSet::from([1])],
            )])
            .await
            .unwrap();
            sm.write_with(log_id(1, 1, 2), |db| db.put(b"k", ttl_value("v", Some(9))));
        }
        let (storage, mut sm) = open(dir.path());
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 2)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1, 1)));
        let r = sm.reader();
        assert_eq!(r.get_raw(b"k"), Some(ttl_value("v", Some(9))));
        assert_eq!((r.key_count(), r.expires_count()), (1, 1));
        assert_eq!(r.expired_keys(9, 10), vec![Bytes::from_static(b"k")]);
        let mut log = LogStore::<ShardTC>::open(&storage, 1).unwrap();
        use openraft::storage::RaftLogStorage;
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(openraft::Vote::new(1, 1))
        );
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 1, 1))
        );
    }

    #[tokio::test]
    async fn snapshot_round_trip_into_a_fresh_store() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let (_sa, mut a) = open(dir_a.path());
        a.apply([membership_ent::<ShardTC>(
            1,
            1,
            1,
            vec![BTreeSet::from([1, 2])],
        )])
        .await
        .unwrap();
        a.write_with(log_id(1, 1, 2), |db| {
            for i in 0..5000u64 {
                db.put(
                    format!("key{i}").as_bytes(),
                    ttl_value("value", (i % 4 == 0).then_some(i)),
                );
            }
        });
        let snap = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 2)));
        // Later applies are not in the snapshot.
        a.write_with(log_id(1, 1, 3), |db| db.put(b"later", ttl_value("x", None)));

        let (sb, mut b) = open(dir_b.path());
        let rb = b.reader();
        b.write_with(log_id(1, 1, 1), |db| {
            db.put(b"stale", ttl_value("x", Some(1)))
        });
        let mut file = b.begin_receiving_snapshot().await.unwrap();
        let mut src = a.get_current_snapshot().await.unwrap().unwrap();
        tokio::io::copy(&mut *src.snapshot, &mut *file)
            .await
            .unwrap();
        b.install_snapshot(&src.meta, file).await.unwrap();
        // Reads and applies after the install see the snapshot, not rows cached before it.
        assert_eq!(rb.view().get_raw(b"stale"), None);
        b.write_with(log_id(1, 1, 2), |db| {
            assert_eq!(db.get_raw(b"stale"), None);
            assert_eq!(db.get_raw(b"key1"), Some(ttl_value("value", None)));
        });

        assert_eq!(rb.get_raw(b"stale"), None);
        assert_eq!(rb.get_raw(b"later"), None);
        assert_eq!((rb.key_count(), rb.expires_count()), (5000, 1250));
        assert_eq!(rb.expired_keys(40, 100).len(), 11);
        assert_eq!(
            b.applied_state().await.unwrap(),
            (snap.meta.last_log_id, snap.meta.last_membership.clone())
        );
        let ra = a.reader();
        a.write_with(log_id(1, 1, 4), |db| {
            db.delete(b"later");
        });
        assert_eq!(full_scan(&rb, 100), full_scan(&ra, 100));
        assert_eq!(
            b.get_current_snapshot().await.unwrap().unwrap().meta,
            snap.meta
        );
        assert_eq!(sb.keyspace_names("g1.data."), vec!["g1.data.1".to_string()]);
        // Only the installed snapshot file is left.
        let files: Vec<_> = std::fs::read_dir(sb.snapshot_dir()).unwrap().collect();
        assert_eq!(files.len(), 1);

        // Applies continue on the new generation, and everything survives a restart.
        b.write_with(log_id(1, 1, 3), |db| db.put(b"after", ttl_value("y", None)));
        drop((b, rb));
        let (_sb, mut b) = open_again(sb, dir_b.path());
        assert_eq!(b.reader().key_count(), 5001);
        assert_eq!(b.reader().get_raw(b"after"), Some(ttl_value("y", None)));
        assert_eq!(
            b.get_current_snapshot().await.unwrap().unwrap().meta,
            snap.meta
        );
    }

    #[tokio::test]
    async fn acknowledged_writes_are_forgotten_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, mut sm) = open(dir.path());
        let once = |stamp: &str, key: &str| {
            let argv = ["ONCE", "7", stamp, "APPEND", key, "x"]
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .to_vec();
            match crate::cmd::parse(argv, 0) {
                crate::cmd::Command::Write(w) => w,
                other => panic!("{other:?}"),
            }
        };
        let too_old = |r: &Reply| matches!(r, Reply::Error(e) if e.contains("too old"));
        let r = sm
            .apply([normal(1, 1_000, vec![once("1", "a"), once("2:0", "b")])])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(1), Reply::Int(1)]);
        let r = sm
            .apply([normal(2, 1_000, vec![once("3:2", "a"), once("1", "a")])])
            .await
            .unwrap();
        assert_eq!(r[0][0], Reply::Int(2));
        assert!(too_old(&r[0][1]), "{:?}: not applied again", r[0][1]);
        // One entry for the client whatever slots it wrote, holding only seq 3.
        let reader = sm.reader();
        let (rows, _) = reader.idle_dedup(u64::MAX, None, 100, 100);
        assert_eq!(rows.len(), 1);
        drop((sm, reader));
        let (_storage, mut sm) = open_again(storage, dir.path());
        let r = sm
            .apply([normal(3, 1_000, vec![once("3:2", "a"), once("2", "b")])])
            .await
            .unwrap();
        assert_eq!(r[0][0], Reply::Int(2), "seq 3 is answered after a restart");
        assert!(too_old(&r[0][1]), "{:?}", r[0][1]);
    }

    #[tokio::test]
    async fn exactly_once_entries_follow_a_snapshot_install() {
        let once = |client: u64, seq: u64, v: &str| {
            let argv = [
                "ONCE",
                &client.to_string(),
                &seq.to_string(),
                "APPEND",
                "k",
                v,
            ]
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .to_vec();
            match crate::cmd::parse(argv, 0) {
                crate::cmd::Command::Write(w) => w,
                other => panic!("{other:?}"),
            }
        };
        let member = || membership_ent::<ShardTC>(1, 1, 1, vec![BTreeSet::from([1, 2])]);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_sa, mut a) = open(dir_a.path());
        a.apply([member(), normal(2, 1_000, vec![once(7, 1, "x")])])
            .await
            .unwrap();
        a.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        // b knows an entry (client 9) that the installed state does not have.
        let (_sb, mut b) = open(dir_b.path());
        let r = b
            .apply([member(), normal(2, 1_000, vec![once(9, 1, "yy")])])
            .await
            .unwrap();
        assert_eq!(r[1], vec![Reply::Int(2)]);
        let mut file = b.begin_receiving_snapshot().await.unwrap();
        let mut src = a.get_current_snapshot().await.unwrap().unwrap();
        tokio::io::copy(&mut *src.snapshot, &mut *file)
            .await
            .unwrap();
        b.install_snapshot(&src.meta, file).await.unwrap();
        let r = b
            .apply([normal(3, 1_000, vec![once(7, 1, "x"), once(9, 1, "yy")])])
            .await
            .unwrap();
        assert_eq!(
            r[0],
            vec![Reply::Int(1), Reply::Int(3)],
            "client 7's entry came with the snapshot; client 9's went with the old state"
        );
    }

    #[tokio::test]
    async fn truncated_snapshot_is_rejected_and_state_kept() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let (_sa, mut a) = open(dir_a.path());
        a.write_with(log_id(1, 1, 2), |db| {
            for i in 0..100u64 {
                db.put(format!("key{i}").as_bytes(), ttl_value("value", None));
            }
        });
        let mut snap = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut *snap.snapshot, &mut bytes)
            .await
            .unwrap();
        bytes.truncate(bytes.len() - 3);

        let (sb, mut b) = open(dir_b.path());
        b.write_with(log_id(1, 1, 1), |db| db.put(b"mine", ttl_value("x", None)));
        let mut file = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut *file, &bytes)
            .await
            .unwrap();
        assert!(b.install_snapshot(&snap.meta, file).await.is_err());
        assert_eq!(b.reader().get_raw(b"mine"), Some(ttl_value("x", None)));
        assert_eq!(b.reader().key_count(), 1);
        assert_eq!(sb.keyspace_names("g1.data."), vec!["g1.data.0".to_string()]);
    }

    #[tokio::test]
    async fn stray_generation_and_files_are_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (storage, mut sm) = open(dir.path());
            sm.write_with(log_id(1, 1, 1), |db| db.put(b"k", ttl_value("v", None)));
            // As if an install crashed after filling generation 1 but before the flip.
            let stray = Generation::open(&storage, 1, 1).unwrap();
            stray
                .data
                .insert(
                    data_key(b"ghost"),
                    crate::codec::to_vec(&ttl_value("g", None)).unwrap(),
                )
                .unwrap();
            stray
                .ttl
                .insert(ttl_key(5, &data_key(b"ghost")), Vec::new())
                .unwrap();
            std::fs::write(storage.snapshot_dir().join("g1-recv-1.tmp"), b"partial").unwrap();
            std::fs::write(storage.snapshot_dir().join("g2-keep.snap"), b"other group").unwrap();
        }
        let (storage, sm) = open(dir.path());
        assert_eq!(
            storage.keyspace_names("g1.data."),
            vec!["g1.data.0".to_string()]
        );
        assert_eq!(
            storage.keyspace_names("g1.ttl."),
            vec!["g1.ttl.0".to_string()]
        );
        assert_eq!(sm.reader().get_raw(b"ghost"), None);
        assert_eq!(sm.reader().get_raw(b"k"), Some(ttl_value("v", None)));
        assert!(!storage.snapshot_dir().join("g1-recv-1.tmp").exists());
        assert!(storage.snapshot_dir().join("g2-keep.snap").exists());
    }
}
