//! openraft's `RaftStateMachine` for a group: the state in memory, snapshots in files.
//!
//! The state ([`State`]: the keyspace, the exactly-once entries, the cluster state, the
//! group clock, last applied and membership) lives in memory, as Redis keeps its dataset.
//! It is made durable by the Raft log, fsync'd on a quorum before a write is acknowledged,
//! and by snapshot files: a replica that restarts loads its newest snapshot and openraft
//! replays the committed log after it. (Kept in fjall too, every write went through a
//! second journal, a memtable, flushes and compactions on every replica, which was half
//! the CPU of a write, to make durable what the log already held.)
//!
//! - An apply changes the state under its write lock, one log entry at a time: readers see
//!   whole entries, never half of one.
//! - A read view holds the read lock, so a batch of reads (or one MGET) sees one point of
//!   the log, with the cluster state of that point.
//! - A snapshot takes the rows in O(1) (a persistent map) and writes them out while
//!   applies go on; the file is fsync'd before openraft purges the log behind it.
//! - Snapshot files are `g<gid>-<snapshot id>.snap` (see [`snapshot_file`]); the one with
//!   the highest last log id is current, the others are deleted once it is durable.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    StorageError as RaftStorageError, StoredMembership,
};
use tokio::io::AsyncSeekExt;

use super::apply::{
    apply_prepared_fill, dedup_client, dedup_key, prepare_fill, take_fill_rows, ClusterMeta,
    DedupEntry, FillRows,
};
use super::request::{Batch, ShardResponse};
use super::snapshot_file::{self, Frozen, Image, Membership, Meta};
use crate::cluster::slots::Served;
use crate::db::keyspace::{KeyRef, Keyspace, SlotRows};
use crate::db::{DbRead, Value};
use crate::raft::{Gid, NodeId, ShardTC};
use crate::storage::{raft_err, StorageError};
use redraft_proxy::wire::Reply;

type RaftRes<T> = Result<T, RaftStorageError<NodeId>>;

/// Entries whose payload is larger than this (in all) are applied off the async workers:
/// a migration chunk or a large MSET then delays other groups' tasks by OS time slicing,
/// not by holding a worker that their queued tasks wait behind. Smaller applies take a few
/// microseconds, less than handing the worker over would cost.
const APPLY_INLINE_BYTES: usize = 256 * 1024;

/// A group's replicated state. Applies change it through `apply::apply`.
#[derive(Default)]
pub(super) struct State {
    pub(super) db: Keyspace,
    /// Client → its exactly-once entry. Ordered, so the idle sweep can walk it a bounded
    /// step at a time from a cursor.
    dedup: BTreeMap<u64, DedupEntry>,
    cluster: Arc<ClusterMeta>,
    /// `cluster.served()`, None when stale (see `cluster_mut`).
    served: Option<Arc<Option<Served>>>,
    /// The latest entry time applied: the group's clock never runs backwards past it,
    /// whatever the clock of the leader that stamps the next entry.
    clock: u64,
    applied: Option<LogId<NodeId>>,
    membership: Membership,
}

impl State {
    fn from_image(img: Image) -> State {
        State {
            db: img.db,
            dedup: img.dedup,
            served: None,
            cluster: img.cluster,
            clock: img.clock,
            applied: img.meta.last_log_id,
            membership: img.meta.last_membership,
        }
    }

    /// The cluster state as of this point of the apply.
    pub(super) fn cluster(&self) -> &ClusterMeta {
        &self.cluster
    }

    /// The cluster state, to change.
    pub(super) fn cluster_mut(&mut self) -> &mut ClusterMeta {
        self.served = None;
        Arc::make_mut(&mut self.cluster)
    }

    /// The slots this group serves as of now (see [`Served`]).
    fn served(&mut self) -> &Arc<Option<Served>> {
        let cluster = &self.cluster;
        self.served
            .get_or_insert_with(|| Arc::new(cluster.served()))
    }

    /// The reply a command on `slot` gets instead of running, if this group must not run
    /// it (see [`super::apply::refusal`]).
    pub(super) fn refusal(&mut self, slot: u16) -> Option<Reply> {
        match &**self.served() {
            Some(served) if !served.contains(slot) => super::apply::refusal(&self.cluster, slot),
            _ => None,
        }
    }

    pub(super) fn dedup_get(&self, client: u64) -> Option<&DedupEntry> {
        self.dedup.get(&client)
    }

    /// The client's entry to change (a new one if it has none).
    pub(super) fn dedup_mut(&mut self, client: u64) -> &mut DedupEntry {
        self.dedup.entry(client).or_default()
    }

    pub(super) fn dedup_remove(&mut self, client: u64) {
        self.dedup.remove(&client);
    }
}

/// State shared by the state machine, its readers and its snapshot builders.
struct Shared {
    gid: Gid,
    /// Where snapshot files live.
    dir: PathBuf,
    state: RwLock<State>,
    /// Copies of what the state holds, for readers that need no view (taking the state's
    /// lock again inside a view could deadlock behind a waiting apply). Updated by each
    /// apply before it releases the state.
    cluster: RwLock<(Arc<ClusterMeta>, Arc<Option<Served>>)>,
    clock: AtomicU64,
    /// Last applied index + 1 (0: none).
    applied: AtomicU64,
    /// Serializes snapshot builds and installs, and so the snapshot files.
    snap_lock: tokio::sync::Mutex<()>,
    /// The current snapshot (None before the first).
    current: Mutex<Option<CurrentSnapshot>>,
    /// Size of the current snapshot file (0: none yet), for the snapshot trigger.
    snapshot_bytes: AtomicU64,
}

#[derive(Clone)]
struct CurrentSnapshot {
    meta: Meta,
    file: String,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn cluster(&self) -> Arc<ClusterMeta> {
        self.cluster
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Brings the copies up to date with `st` (see the fields).
    fn publish(&self, st: &mut State) {
        let served = st.served().clone();
        // Checked under the read lock: only applies (one at a time) write the copy, and
        // every routed command reads it.
        let stale = !Arc::ptr_eq(
            &self
                .cluster
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1,
            &served,
        );
        if stale {
            *self.cluster.write().unwrap_or_else(PoisonError::into_inner) =
                (st.cluster.clone(), served);
        }
        self.clock.fetch_max(st.clock, Ordering::Relaxed);
        let applied = st.applied.map_or(0, |l| l.index + 1);
        self.applied.store(applied, Ordering::Relaxed);
    }

    fn current(&self) -> Option<CurrentSnapshot> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `cur` the current snapshot and deletes the group's other files.
    fn set_current(&self, cur: CurrentSnapshot) -> Result<(), StorageError> {
        let size = std::fs::metadata(self.dir.join(&cur.file))?.len();
        self.snapshot_bytes.store(size, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(cur);
        self.clean_snapshot_files()
    }

    /// Removes this group's snapshot files except the current one (older snapshots, and
    /// temp files of builds and receives that a crash or an install left behind).
    fn clean_snapshot_files(&self) -> Result<(), StorageError> {
        let keep = self.current().map(|c| c.file);
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if snapshot_file::belongs_to(self.gid, &name) && Some(&name) != keep.as_ref() {
                std::fs::remove_file(self.dir.join(&name))?;
            }
        }
        Ok(())
    }
}

/// The newest whole snapshot file of group `gid` in `dir`, if any.
fn newest_snapshot(dir: &Path, gid: Gid) -> Result<Option<CurrentSnapshot>, StorageError> {
    let mut best: Option<CurrentSnapshot> = None;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !snapshot_file::belongs_to(gid, &name) || !name.ends_with(".snap") {
            continue;
        }
        let meta = snapshot_file::read_meta(&dir.join(&name))?;
        if best
            .as_ref()
            .is_none_or(|b| b.meta.last_log_id < meta.last_log_id)
        {
            best = Some(CurrentSnapshot { meta, file: name });
        }
    }
    Ok(best)
}

/// A shard group's state machine. Reads go through [`ShardReader`]s.
pub struct ShardStateMachine {
    shared: Arc<Shared>,
}

impl ShardStateMachine {
    /// Opens the state machine of group `gid` from its newest snapshot in `dir` (empty if
    /// there is none), dropping other snapshot files that a crash left behind.
    pub fn open(dir: &Path, gid: Gid) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)?;
        let current = newest_snapshot(dir, gid)?;
        let state = match &current {
            Some(cur) => {
                let img = snapshot_file::load(&dir.join(&cur.file), &cur.meta)?;
                tracing::info!(
                    gid,
                    id = %cur.meta.snapshot_id,
                    keys = img.db.key_count(),
                    "loaded snapshot"
                );
                State::from_image(img)
            }
            None => State::default(),
        };
        let shared = Arc::new(Shared {
            gid,
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
            cluster: RwLock::new((Arc::default(), Arc::new(None))),
            clock: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            snap_lock: tokio::sync::Mutex::new(()),
            current: Mutex::new(None),
            snapshot_bytes: AtomicU64::new(0),
        });
        let mut state = state;
        shared.publish(&mut state);
        *shared.write() = state;
        match current {
            Some(cur) => shared.set_current(cur)?,
            None => shared.clean_snapshot_files()?,
        }
        Ok(ShardStateMachine { shared })
    }

    /// A read handle on the applied state.
    pub fn reader(&self) -> ShardReader {
        ShardReader {
            shared: self.shared.clone(),
        }
    }

    /// Test hook: runs `f` on the state as the apply of `log_id`, for effects no command
    /// has.
    #[cfg(test)]
    fn write_with(&mut self, log_id: LogId<NodeId>, f: impl FnOnce(&mut State)) {
        let mut st = self.shared.write();
        f(&mut st);
        st.applied = Some(log_id);
        self.shared.publish(&mut st);
    }

    /// `apply` proper: each entry under the state's write lock in turn, decoded just
    /// before.
    fn apply_sync(
        &mut self,
        entries: Vec<openraft::Entry<ShardTC>>,
    ) -> Result<Vec<ShardResponse>, Box<RaftStorageError<NodeId>>> {
        let n = entries.len();
        let decoded = entries
            .into_iter()
            .map(|e| decode_entry(&e).map(|batch| (e, batch, None)));
        self.apply_decoded(n, decoded)
    }

    /// `apply` of entries among which are a slot migration's Fills: bulk work that requests
    /// to this and other groups should not wait behind. A Fill's entry is decoded, and its
    /// rows added to copies of their slots, in the idle scheduling class
    /// (`storage::idle`); this thread only takes the copies (O(slots)) and, under the
    /// state's write lock, swaps them in. The idle work takes no lock: a thread of that
    /// class can wait long for a core, and the apply must never wait for it.
    fn apply_fills(
        &mut self,
        entries: Vec<openraft::Entry<ShardTC>>,
    ) -> Result<Vec<ShardResponse>, ApplyError> {
        let mut replies = Vec::with_capacity(entries.len());
        for e in entries {
            if !matches!(&e.payload, EntryPayload::Normal(req) if req.is_slot_fill()) {
                replies.extend(self.apply_sync(vec![e])?);
                continue;
            }
            let entry = Arc::new(e);
            let work = entry.clone();
            let mut batch = crate::storage::idle(move || decode_entry(&work))?;
            // The idle thread may not have dropped its copy yet.
            let e = Arc::try_unwrap(entry).unwrap_or_else(|e| (*e).clone());
            // Built from the state as this apply leaves it: nothing else changes it until
            // the swap, as applies run one at a time.
            let mut rows = None;
            if let Some(c) = batch.as_mut().and_then(|b| b.cmds.first_mut()) {
                let prepared = prepare_fill(&self.shared.read(), c);
                if let Some(prepared) = prepared {
                    let kvs = take_fill_rows(c);
                    rows = Some(crate::storage::idle(move || {
                        let mut rows = prepared.clone();
                        rows.build(&kvs);
                        rows
                    }));
                }
            }
            let decoded = std::iter::once(Ok((e, batch, rows)));
            replies.extend(self.apply_decoded(1, decoded)?);
        }
        Ok(replies)
    }

    /// Applies entries with their decoded batches, each under the state's write lock.
    fn apply_decoded(
        &mut self,
        n: usize,
        decoded: impl Iterator<Item = Result<Decoded, ApplyError>>,
    ) -> Result<Vec<ShardResponse>, ApplyError> {
        let sh = &*self.shared;
        let mut replies = Vec::with_capacity(n);
        for d in decoded {
            let (e, batch, mut fill_rows) = d?;
            if let Some(b) = batch.as_ref().filter(|b| b.cmds.len() > 1) {
                // Under the read lock: readers go on meanwhile.
                sh.read()
                    .db
                    .prefetch(b.cmds.iter().filter_map(crate::cmd::WriteCmd::first_key));
            }
            let mut st = sh.write();
            match (batch, e.payload) {
                (Some(batch), _) => {
                    // A new leader with a slower clock must not un-expire keys.
                    st.clock = st.clock.max(batch.now_ms);
                    let now = st.clock;
                    let st = &mut *st;
                    replies.push(
                        batch
                            .cmds
                            .iter()
                            .map(|c| match fill_rows.take() {
                                Some(rows) => apply_prepared_fill(st, c, rows),
                                None => super::apply::apply(st, sh.gid, c, now),
                            })
                            .collect(),
                    );
                }
                (None, EntryPayload::Membership(m)) => {
                    st.membership = StoredMembership::new(Some(e.log_id), m);
                    replies.push(Vec::new());
                }
                (None, _) => replies.push(Vec::new()),
            }
            st.applied = Some(e.log_id);
            sh.publish(&mut st);
        }
        Ok(replies)
    }
}

/// An entry with its batch of commands (None for blank and membership entries) and, if
/// its first command is a slot migration's Fill, that Fill's rows built in advance.
type Decoded = (openraft::Entry<ShardTC>, Option<Batch>, Option<FillRows>);
type ApplyError = Box<RaftStorageError<NodeId>>;

/// An entry's batch of commands (None for blank and membership entries). Decoded before
/// the state's lock is taken: readers wait only for the apply itself.
fn decode_entry(e: &openraft::Entry<ShardTC>) -> Result<Option<Batch>, ApplyError> {
    match &e.payload {
        EntryPayload::Normal(req) => req.decode().map(Some).map_err(|err| {
            Box::new(raft_err(
                ErrorSubject::Apply(e.log_id),
                ErrorVerb::Read,
                err,
            ))
        }),
        _ => Ok(None),
    }
}

/// Reads of a group's applied state, for the leader after a read barrier and for the
/// background tasks. Cheap to clone.
#[derive(Clone)]
pub struct ShardReader {
    shared: Arc<Shared>,
}

impl ShardReader {
    /// Size in bytes of the group's current snapshot file (0 before the first).
    pub fn snapshot_bytes(&self) -> u64 {
        self.shared.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// The group clock (latest entry time applied): reads take the later of it and the
    /// wall clock, so a key that expired under one leader stays expired under the next.
    pub fn clock(&self) -> u64 {
        self.shared.clock.load(Ordering::Relaxed)
    }

    /// Up to `limit` user keys whose expiry time is ≤ `now_ms`, soonest first.
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.shared.read().db.expired(now_ms, limit)
    }

    /// The cluster state as applied (configuration, slot states, controller history).
    pub fn cluster(&self) -> Arc<ClusterMeta> {
        self.shared.cluster()
    }

    /// Whether the applied configuration has this (shard) group serve `slot`: the check
    /// a command passes before it is proposed or read, answered from a bitmap. None when
    /// the group has no slot table (standalone, or no configuration applied yet).
    pub fn serves(&self, slot: u16) -> Option<bool> {
        let c = self
            .shared
            .cluster
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        c.1.as_ref().as_ref().map(|s| s.contains(slot))
    }

    /// Up to `limit` user keys stored in `slot` (expired ones included, as Redis's
    /// CLUSTER GETKEYSINSLOT).
    pub fn slot_keys(&self, slot: u16, limit: usize) -> Vec<Bytes> {
        let st = self.shared.read();
        st.db
            .slot_rows(slot, None)
            .take(limit)
            .map(|(k, _)| k.user_key().clone())
            .collect()
    }

    /// How many keys `slot` holds (expired ones included, as CLUSTER COUNTKEYSINSLOT).
    pub fn slot_len(&self, slot: u16) -> u64 {
        self.shared.read().db.slot_len(slot)
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
        let st = self.shared.read();
        let lower = match after.and_then(dedup_client) {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        for (seen, (client, e)) in st
            .dedup
            .range((lower, std::ops::Bound::Unbounded))
            .enumerate()
        {
            if e.at_ms < before_ms {
                out.push(Bytes::copy_from_slice(&dedup_key(*client)));
            }
            if out.len() >= limit || seen + 1 >= scan {
                return (out, Some(dedup_key(*client).to_vec()));
            }
        }
        (out, None)
    }

    /// The index of the last applied log entry.
    pub fn applied_index(&self) -> Option<u64> {
        self.shared.applied.load(Ordering::Relaxed).checked_sub(1)
    }

    /// A consistent view of the applied state: every read through it sees the same point
    /// of the log, so a batch of reads (or one MGET) never sees half of an entry. Applies
    /// wait while it is held: keep it for a batch of reads, not across an await.
    pub fn view(&self) -> ReadView<'_> {
        ReadView {
            st: self.shared.read(),
        }
    }
}

impl DbRead for ShardReader {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        self.shared.read().db.get_raw(key)
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        self.shared.read().db.scan(pos, count)
    }

    fn key_count(&self) -> u64 {
        self.shared.read().db.key_count()
    }

    fn expires_count(&self) -> u64 {
        self.shared.read().db.expires_count()
    }
}

/// See [`ShardReader::view`].
pub struct ReadView<'a> {
    st: RwLockReadGuard<'a, State>,
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

impl ReadView<'_> {
    /// What a migration pull reads of `slots` (ascending): their rows, taken in O(1) each,
    /// and exactly-once entries. The view is released before a chunk is built from them,
    /// so the group's applies (writes to its other slots) never wait for a pull.
    pub fn slots_source(self, slots: &[u16]) -> SlotSource {
        let rows: Vec<SlotRows> = slots.iter().map(|&s| self.st.db.slot_snapshot(s)).collect();
        // Each client's exactly-once entry as these slots need it: the group taking them
        // over answers retries of their writes from it.
        let dedup: Vec<(u64, DedupEntry)> = self
            .st
            .dedup
            .iter()
            .map(|(client, e)| (*client, e.for_slots(slots)))
            .filter(|(_, part)| part.floor != 0 || !part.recent.is_empty())
            .collect();
        SlotSource { rows, dedup }
    }
}

/// The slots' rows and exactly-once entries at one moment (see [`ReadView::slots_source`]).
pub struct SlotSource {
    rows: Vec<SlotRows>,
    dedup: Vec<(u64, DedupEntry)>,
}

impl SlotSource {
    /// The data starting after storage key `after` (within the first slot) or at the first
    /// slot's beginning, up to about `max_bytes`.
    /// Pure: built twice from one source, a chunk is the same.
    pub fn chunk(&self, after: Option<&[u8]>, max_bytes: usize) -> SlotChunk {
        let SlotSource { rows, dedup } = self;
        let mut out = SlotChunk {
            kvs: Vec::new(),
            dedup: Vec::new(),
            started: Vec::new(),
            complete: Vec::new(),
        };
        slots_data(&mut out, rows, after, max_bytes);
        if !out.complete.is_empty() {
            for (client, e) in dedup {
                let part = e.for_slots(&out.complete);
                if part.floor == 0 && part.recent.is_empty() {
                    continue;
                }
                match crate::codec::to_vec(&part) {
                    Ok(v) => out
                        .dedup
                        .push((Bytes::copy_from_slice(&dedup_key(*client)), Bytes::from(v))),
                    Err(e) => tracing::error!(error = %e, "encoding an exactly-once entry"),
                }
            }
        }
        out
    }
}

impl ReadView<'_> {
    /// Whether `client`'s write `seq` had applied (or been acknowledged) at this view's
    /// moment: a read that must see it waits otherwise.
    pub fn settled(&self, client: u64, seq: u64) -> bool {
        self.st.dedup.get(&client).is_some_and(|e| e.settled(seq))
    }

    /// See [`Keyspace::prefetch`].
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        self.st.db.prefetch(keys);
    }

    /// The cluster state of this view's moment.
    pub fn cluster(&self) -> Arc<ClusterMeta> {
        self.st.cluster.clone()
    }
}

impl DbRead for ReadView<'_> {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        self.st.db.get_raw(key)
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        self.st.db.scan(pos, count)
    }

    fn key_count(&self) -> u64 {
        self.st.db.key_count()
    }

    fn expires_count(&self) -> u64 {
        self.st.db.expires_count()
    }
}

/// Fills `out` from `rows` (ascending slots), starting after storage key `after` in the
/// first slot, up to about `max_bytes`.
fn slots_data(out: &mut SlotChunk, rows: &[SlotRows], after: Option<&[u8]>, max_bytes: usize) {
    use bytes::BufMut;
    // Every key and value goes into one buffer that the chunk's entries are slices of:
    // one allocation, and dropping the chunk (on the worker, once the bus has sent it)
    // releases one buffer instead of freeing two allocations per row.
    let mut buf = bytes::BytesMut::with_capacity(max_bytes + max_bytes / 8);
    let mut spans = Vec::new();
    let mut fill = || {
        for (i, slot) in rows.iter().enumerate() {
            let after = after.filter(|_| i == 0).and_then(KeyRef::from_storage);
            if after.is_none() {
                out.started.push(slot.slot());
            }
            for (k, v) in slot.after(after) {
                if buf.len() >= max_bytes {
                    return;
                }
                let start = buf.len();
                k.put_storage_key(&mut buf);
                let mid = buf.len();
                if let Err(e) = postcard::to_io(&v, (&mut buf).writer()) {
                    tracing::error!(error = %e, "encoding a row");
                    buf.truncate(start);
                    return;
                }
                spans.push((start..mid, mid..buf.len()));
            }
            out.complete.push(slot.slot());
            if buf.len() >= max_bytes {
                return;
            }
        }
    };
    fill();
    let buf = buf.freeze();
    out.kvs = spans
        .into_iter()
        .map(|(k, v)| (buf.slice(k), buf.slice(v)))
        .collect();
}

/// Builds snapshot files from the state as applied when the build starts.
pub struct ShardSnapshotBuilder {
    shared: Arc<Shared>,
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn open_snapshot(
    sh: &Shared,
    cur: CurrentSnapshot,
) -> Result<Snapshot<ShardTC>, StorageError> {
    let f = tokio::fs::File::open(sh.dir.join(&cur.file)).await?;
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
    /// Takes the state (rows in O(1)), writes it to a file off the async workers, and
    /// makes it durable before returning: openraft purges the log behind the snapshot.
    async fn build_snapshot(&mut self) -> RaftRes<Snapshot<ShardTC>> {
        let sh = self.shared.clone();
        let _guard = sh.snap_lock.lock().await;
        let frozen = {
            let st = sh.read();
            let snapshot_id = match &st.applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, unique_suffix()),
                None => format!("none-{}", unique_suffix()),
            };
            Frozen {
                meta: Meta {
                    last_log_id: st.applied,
                    last_membership: st.membership.clone(),
                    snapshot_id,
                },
                clock: st.clock,
                cluster: st.cluster.clone(),
                rows: st.db.rows().clone(),
                dedup: st.dedup.clone(),
            }
        };
        let cur = CurrentSnapshot {
            file: snapshot_file::file_name(sh.gid, &frozen.meta.snapshot_id),
            meta: frozen.meta.clone(),
        };
        {
            let (dir, file) = (sh.dir.clone(), cur.file.clone());
            tokio::task::spawn_blocking(move || snapshot_file::write(&dir, &file, &frozen))
                .await
                .map_err(|e| snap_err(join_err(e)))?
                .map_err(snap_err)?;
        }
        sh.set_current(cur.clone()).map_err(snap_err)?;
        tracing::info!(gid = sh.gid, id = %cur.meta.snapshot_id, "built snapshot");
        open_snapshot(&sh, cur).await.map_err(snap_err)
    }
}

impl RaftStateMachine<ShardTC> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(&mut self) -> RaftRes<(Option<LogId<NodeId>>, Membership)> {
        let st = self.shared.read();
        Ok((st.applied, st.membership.clone()))
    }

    /// One response per entry (empty for blank and membership entries).
    async fn apply<I>(&mut self, entries: I) -> RaftRes<Vec<ShardResponse>>
    where
        I: IntoIterator<Item = openraft::Entry<ShardTC>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let bytes: usize = entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(req) => req.encoded_len(),
                _ => 0,
            })
            .sum();
        let fill = entries.iter().any(|e| match &e.payload {
            EntryPayload::Normal(req) => req.is_slot_fill(),
            _ => false,
        });
        if fill {
            self.apply_fills(entries).map_err(|e| *e)
        } else if bytes > APPLY_INLINE_BYTES {
            crate::storage::blocking(|| self.apply_sync(entries)).map_err(|e| *e)
        } else {
            self.apply_sync(entries).map_err(|e| *e)
        }
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
            .open(self.shared.dir.join(&name))
            .await
            .map_err(snap_err)?;
        Ok(Box::new(f))
    }

    /// Copies the received data to the snapshot's own file (the handle may not be the one
    /// `begin_receiving_snapshot` gave out), durably, loads it, and swaps it in whole.
    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> RaftRes<()> {
        let sh = self.shared.clone();
        let _guard = sh.snap_lock.lock().await;
        let cur = CurrentSnapshot {
            meta: meta.clone(),
            file: snapshot_file::file_name(sh.gid, &meta.snapshot_id),
        };
        let path = sh.dir.join(&cur.file);
        let tmp = path.with_extension("snap.tmp");
        let copy = async {
            snapshot.seek(SeekFrom::Start(0)).await?;
            let mut out = tokio::fs::File::create(&tmp).await?;
            tokio::io::copy(&mut *snapshot, &mut out).await?;
            out.sync_all().await?;
            // Loaded from the temp file: a truncated one is refused before it is a `.snap`.
            let (file, meta) = (tmp.clone(), meta.clone());
            let img = tokio::task::spawn_blocking(move || snapshot_file::load(&file, &meta))
                .await
                .map_err(join_err)??;
            tokio::fs::rename(&tmp, &path).await?;
            tokio::fs::File::open(&sh.dir).await?.sync_all().await?;
            Ok::<_, StorageError>(img)
        };
        let img = match copy.await {
            Ok(img) => img,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(snap_err(e));
            }
        };
        let keys = img.db.key_count();
        let old = {
            let mut st = sh.write();
            let old = std::mem::replace(&mut *st, State::from_image(img));
            sh.publish(&mut st);
            old
        };
        // Dropping a large state takes a while: not under the lock, not on a worker.
        tokio::task::spawn_blocking(move || drop(old));
        sh.set_current(cur).map_err(snap_err)?;
        tracing::info!(gid = sh.gid, id = %meta.snapshot_id, keys, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> RaftRes<Option<Snapshot<ShardTC>>> {
        let err = |e| raft_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        // A concurrent build may replace the file between reading the pointer and opening it.
        let mut attempts = 0;
        loop {
            let Some(cur) = self.shared.current() else {
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
    use crate::db::DbWrite;
    use crate::raft::log_store::LogStore;
    use crate::shard::request::ShardRequest;
    use crate::storage::Storage;
    use redraft_proxy::wire::Reply;

    struct Builder;

    impl StoreBuilder<ShardTC, LogStore<ShardTC>, ShardStateMachine, TempDir> for Builder {
        async fn build(&self) -> RaftRes<(TempDir, LogStore<ShardTC>, ShardStateMachine)> {
            let dir = tempfile::tempdir().map_err(snap_err)?;
            let storage = Storage::open(dir.path(), 0).map_err(snap_err)?;
            let log = LogStore::open(&storage, 1).map_err(snap_err)?;
            let sm = ShardStateMachine::open(&storage.snapshot_dir(), 1).map_err(snap_err)?;
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
        Suite::test_all(Builder).unwrap();
    }

    fn open(dir: &Path) -> ShardStateMachine {
        ShardStateMachine::open(dir, 1).unwrap()
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

    fn write(argv: &[&str]) -> WriteCmd {
        let argv = argv
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        match crate::cmd::parse(argv, 0) {
            crate::cmd::Command::Write(w) => w,
            other => panic!("{other:?}"),
        }
    }

    async fn snapshot(sm: &mut ShardStateMachine) -> Snapshot<ShardTC> {
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    }

    /// Installs `from`'s current snapshot into `to`, as a follower receives it.
    async fn transfer(from: &mut ShardStateMachine, to: &mut ShardStateMachine) -> Meta {
        let mut file = to.begin_receiving_snapshot().await.unwrap();
        let mut src = from.get_current_snapshot().await.unwrap().unwrap();
        tokio::io::copy(&mut *src.snapshot, &mut *file)
            .await
            .unwrap();
        to.install_snapshot(&src.meta, file).await.unwrap();
        src.meta
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn apply_answers_every_entry_and_keeps_counters_and_ttl_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |st| {
            st.db.put(b"a", ttl_value("1", None));
            st.db.put(b"b", ttl_value("2", Some(100)));
            st.db.put(b"c", ttl_value("3", Some(300)));
        });
        assert_eq!((reader.key_count(), reader.expires_count()), (3, 2));
        assert_eq!(reader.expired_keys(250, 10), vec![Bytes::from_static(b"b")]);
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
        assert_eq!(reader.get_raw(b"a"), Some(ttl_value("1", None)));
        assert_eq!((reader.applied_index(), reader.clock()), (Some(5), 400));
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 5)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1, 4)));
    }

    /// A migration chunk's rows built apart from the state (`apply`, which Fills take) leave
    /// the state exactly as adding them one by one does (`apply_sync`), entry after entry
    /// of one apply: clears, overwrites with new expiry times, rows of slots not pulled,
    /// a stale configuration, and a second chunk building on the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_built_apart_applies_as_row_by_row() {
        use crate::cluster::config::test_node;
        use crate::cluster::Config;
        use crate::db::keys::data_key;
        use crate::shard::request::ClusterOp;
        let (a, b, c) = (&b"{a}"[..], &b"{b}"[..], &b"{c}"[..]);
        let slot = |tag: &[u8]| redraft_proxy::wire::key_slot(tag);
        let config = |num, ours: &[&[u8]]| {
            let mut cfg = Config::empty();
            cfg.num = num;
            for t in [a, b, c] {
                cfg.slots[usize::from(slot(t))] = if ours.contains(&t) { 1 } else { 2 };
            }
            cfg.groups.insert(1, vec![test_node(1)]);
            cfg.groups.insert(2, vec![test_node(2)]);
            cfg
        };
        let row = |key: &str, v: &str, t: Option<u64>| {
            let value = postcard::to_allocvec(&ttl_value(v, t)).unwrap();
            (Bytes::from(data_key(key.as_bytes())), Bytes::from(value))
        };
        let fill = |num, clear: Vec<u16>, kvs, complete| {
            WriteCmd::Cluster(ClusterOp::Fill {
                num,
                clear,
                kvs,
                dedup: Vec::new(),
                complete,
            })
        };
        let advance =
            |num, ours: &[&[u8]]| WriteCmd::Cluster(ClusterOp::Advance(config(num, ours)));
        let entries = vec![
            normal(1, 10, vec![advance(1, &[])]),
            normal(2, 10, vec![advance(2, &[a, b])]),
            // A pull's first chunk, which a restarted pull clears.
            normal(
                3,
                15,
                vec![fill(
                    2,
                    Vec::new(),
                    vec![row("{a}0", "old", Some(300))],
                    vec![],
                )],
            ),
            normal(
                4,
                20,
                vec![fill(
                    2,
                    vec![slot(a)],
                    vec![
                        row("{a}1", "x", None),
                        row("{a}2", "y", Some(500)),
                        row("{b}1", "z", Some(700)),
                        row("{c}1", "not pulled", None),
                    ],
                    vec![slot(a)],
                )],
            ),
            normal(
                5,
                30,
                vec![
                    fill(
                        2,
                        Vec::new(),
                        vec![
                            row("{b}1", "z2", Some(900)),
                            row("{b}2", "w", None),
                            row("{a}3", "after install", None),
                        ],
                        vec![slot(b)],
                    ),
                    write(&["SET", "{b}3", "v"]),
                ],
            ),
            normal(
                5,
                40,
                vec![fill(
                    1,
                    Vec::new(),
                    vec![row("{b}4", "stale", None)],
                    vec![],
                )],
            ),
        ];
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut apart, mut by_row) = (open(d1.path()), open(d2.path()));
        let r1 = apart.apply(entries.clone()).await.unwrap();
        let r2 = by_row.apply_sync(entries).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1[3], vec![Reply::Int(1)]);
        let keys = [
            "{a}0", "{a}1", "{a}2", "{a}3", "{b}1", "{b}2", "{b}3", "{b}4", "{c}1",
        ];
        let state = |sm: &ShardStateMachine| {
            let r = sm.reader();
            let cluster = r.cluster();
            let table = cluster.slots.as_ref().unwrap();
            (
                keys.map(|k| r.get_raw(k.as_bytes())),
                [a, b, c].map(|t| r.slot_len(slot(t))),
                (
                    r.key_count(),
                    r.expires_count(),
                    r.expired_keys(u64::MAX, 10),
                ),
                (
                    table.progress.keys_in,
                    table.progress.bytes_in,
                    table.pulling.len(),
                ),
            )
        };
        let (got, want) = (state(&apart), state(&by_row));
        assert_eq!(got, want);
        assert_eq!(got.0[0], None);
        assert_eq!(got.0[4], Some(ttl_value("z2", Some(900))));
        assert_eq!(got.1, [2, 3, 0]);
        assert_eq!((got.2 .0, got.2 .1), (5, 2));
        assert_eq!(got.3 .2, 0);
    }

    #[test]
    fn a_read_view_is_one_point_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |st| st.db.put(b"a", ttl_value("0", None)));
        let view = reader.view();
        let (started_tx, started) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            sm.write_with(log_id(1, 1, 2), |st| {
                st.db.put(b"a", ttl_value("1", None));
                st.db.put(b"b", ttl_value("1", None));
            });
            sm
        });
        started.recv().unwrap();
        // The apply waits for the view: its reads all see the state before it.
        assert_eq!(view.get_raw(b"a"), Some(ttl_value("0", None)));
        assert_eq!(view.get_raw(b"b"), None);
        assert_eq!((view.key_count(), view.scan(0, 10).0.len()), (1, 1));
        drop(view);
        let _sm = writer.join().unwrap();
        let view = reader.view();
        assert_eq!(view.get_raw(b"a"), Some(ttl_value("1", None)));
        assert_eq!(view.key_count(), 2);
    }

    #[tokio::test]
    async fn group_clock_never_runs_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let reader = sm.reader();
        sm.write_with(log_id(1, 1, 1), |st| {
            st.db.put(b"k", ttl_value("v", Some(1500)))
        });
        sm.apply([normal(2, 2000, vec![])]).await.unwrap();
        assert_eq!(reader.clock(), 2000);
        // The next leader's clock is behind: the key is still expired for it.
        let del = WriteCmd::DeleteExpired(vec![Bytes::from_static(b"k")]);
        let replies = sm.apply([normal(3, 1000, vec![del])]).await.unwrap();
        assert_eq!(replies, vec![vec![Reply::Int(1)]]);
        assert_eq!(reader.clock(), 2000);
    }

    #[tokio::test]
    async fn flushall_empties_the_keyspace_and_keeps_exactly_once_replies() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let reader = sm.reader();
        let append = write(&["ONCE", "7", "1", "APPEND", "k", "x"]);
        let r = sm
            .apply([normal(1, 0, vec![append.clone(), write(&["FLUSHALL"])])])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(1), Reply::ok()]);
        assert_eq!((reader.key_count(), reader.get_raw(b"k")), (0, None));
        // A retry of the append from before the flush is answered, not run again.
        let r = sm.apply([normal(2, 0, vec![append])]).await.unwrap();
        assert_eq!(r[0], vec![Reply::Int(1)]);
        assert_eq!(reader.get_raw(b"k"), None);
    }

    #[tokio::test]
    async fn once_answers_repeats_and_idle_entries_are_forgotten() {
        use crate::shard::apply::DEDUP_IDLE_MS;
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let once = |seq: u64| write(&["ONCE", "7", &seq.to_string(), "APPEND", "k", "x"]);
        let t = 1_000;
        let r = sm
            .apply([normal(1, t, vec![once(1), once(1), once(2), once(1)])])
            .await
            .unwrap();
        assert_eq!(
            r[0],
            vec![Reply::Int(1), Reply::Int(1), Reply::Int(2), Reply::Int(1)]
        );
        // Restarted from a snapshot, the entries came with it.
        snapshot(&mut sm).await;
        drop(sm);
        let mut sm = open(dir.path());
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
        let mut sm = open(dir.path());
        let once = |stamp: &str, v: &str| write(&["ONCE", "7", stamp, "APPEND", "k", v]);
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
        assert!(!reader.view().settled(7, 1));
        // Its predecessor applied (in the same entry, ahead of it): the retry runs.
        let r = sm
            .apply([normal(2, 0, vec![once("1:0", "a"), once("2:0:1", "b")])])
            .await
            .unwrap();
        assert_eq!(r[0], vec![Reply::Int(1), Reply::Int(2)]);
        assert!(reader.view().settled(7, 1));
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
    async fn a_restart_loads_the_newest_snapshot_and_nothing_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut sm = open(dir.path());
            sm.apply([membership_ent::<ShardTC>(
                1,
                1,
                1,
                vec![BTreeSet::from([1])],
            )])
            .await
            .unwrap();
            sm.write_with(log_id(1, 1, 2), |st| {
                st.db.put(b"k", ttl_value("v", Some(9)))
            });
            let first = snapshot(&mut sm).await;
            let first = (
                snapshot_file::file_name(1, &first.meta.snapshot_id),
                std::fs::read(
                    dir.path()
                        .join(snapshot_file::file_name(1, &first.meta.snapshot_id)),
                )
                .unwrap(),
            );
            sm.write_with(log_id(1, 1, 3), |st| {
                st.db.put(b"later", ttl_value("v", None))
            });
            snapshot(&mut sm).await;
            // Applied after the last snapshot: openraft replays it from the log.
            sm.write_with(log_id(1, 1, 4), |st| {
                st.db.put(b"replayed", ttl_value("v", None))
            });
            // As if a crash came between the newer file's rename and the older's removal.
            std::fs::write(dir.path().join(first.0), first.1).unwrap();
            assert_eq!(files(dir.path()).len(), 2);
        }
        let mut sm = open(dir.path());
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 1, 3)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1, 1)));
        let r = sm.reader();
        assert_eq!(r.get_raw(b"k"), Some(ttl_value("v", Some(9))));
        assert_eq!(r.get_raw(b"replayed"), None);
        assert_eq!((r.key_count(), r.expires_count()), (2, 1));
        assert_eq!(r.expired_keys(9, 10), vec![Bytes::from_static(b"k")]);
        assert_eq!(r.applied_index(), Some(3));
        assert_eq!(files(dir.path()).len(), 1);
        let cur = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(cur.meta.last_log_id, applied);
    }

    #[tokio::test]
    async fn snapshot_round_trip_into_a_fresh_store() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let mut a = open(dir_a.path());
        a.apply([membership_ent::<ShardTC>(
            1,
            1,
            1,
            vec![BTreeSet::from([1, 2])],
        )])
        .await
        .unwrap();
        a.write_with(log_id(1, 1, 2), |st| {
            for i in 0..5000u64 {
                st.db.put(
                    format!("key{i}").as_bytes(),
                    ttl_value("value", (i % 4 == 0).then_some(i)),
                );
            }
        });
        let snap = snapshot(&mut a).await;
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 2)));
        // Later applies are not in the snapshot.
        a.write_with(log_id(1, 1, 3), |st| {
            st.db.put(b"later", ttl_value("x", None))
        });

        let mut b = open(dir_b.path());
        let rb = b.reader();
        b.write_with(log_id(1, 1, 1), |st| {
            st.db.put(b"stale", ttl_value("x", Some(1)))
        });
        transfer(&mut a, &mut b).await;
        assert_eq!(rb.view().get_raw(b"stale"), None);
        assert_eq!(rb.get_raw(b"later"), None);
        assert_eq!((rb.key_count(), rb.expires_count()), (5000, 1250));
        assert_eq!(rb.expired_keys(40, 100).len(), 11);
        assert_eq!(
            b.applied_state().await.unwrap(),
            (snap.meta.last_log_id, snap.meta.last_membership.clone())
        );
        let ra = a.reader();
        a.write_with(log_id(1, 1, 4), |st| {
            st.db.delete(b"later");
        });
        assert_eq!(rb.scan(0, 100_000), ra.scan(0, 100_000));
        assert_eq!(
            b.get_current_snapshot().await.unwrap().unwrap().meta,
            snap.meta
        );
        // Only the installed snapshot file is left.
        assert_eq!(files(dir_b.path()).len(), 1);

        // The install is durable: a restart comes back to it.
        drop((b, rb));
        let mut b = open(dir_b.path());
        assert_eq!(b.reader().key_count(), 5000);
        assert_eq!(
            b.get_current_snapshot().await.unwrap().unwrap().meta,
            snap.meta
        );
    }

    #[tokio::test]
    async fn acknowledged_writes_are_forgotten_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = open(dir.path());
        let once = |stamp: &str, key: &str| write(&["ONCE", "7", stamp, "APPEND", key, "x"]);
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
        snapshot(&mut sm).await;
        drop((sm, reader));
        let mut sm = open(dir.path());
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
            write(&[
                "ONCE",
                &client.to_string(),
                &seq.to_string(),
                "APPEND",
                "k",
                v,
            ])
        };
        let member = || membership_ent::<ShardTC>(1, 1, 1, vec![BTreeSet::from([1, 2])]);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = open(dir_a.path());
        a.apply([member(), normal(2, 1_000, vec![once(7, 1, "x")])])
            .await
            .unwrap();
        snapshot(&mut a).await;
        // b knows an entry (client 9) that the installed state does not have.
        let mut b = open(dir_b.path());
        let r = b
            .apply([member(), normal(2, 1_000, vec![once(9, 1, "yy")])])
            .await
            .unwrap();
        assert_eq!(r[1], vec![Reply::Int(2)]);
        transfer(&mut a, &mut b).await;
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
        let mut a = open(dir_a.path());
        a.write_with(log_id(1, 1, 2), |st| {
            for i in 0..100u64 {
                st.db
                    .put(format!("key{i}").as_bytes(), ttl_value("value", None));
            }
        });
        let mut snap = snapshot(&mut a).await;
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut *snap.snapshot, &mut bytes)
            .await
            .unwrap();
        bytes.truncate(bytes.len() - 3);

        let mut b = open(dir_b.path());
        b.write_with(log_id(1, 1, 1), |st| {
            st.db.put(b"mine", ttl_value("x", None))
        });
        let mut file = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut *file, &bytes)
            .await
            .unwrap();
        assert!(b.install_snapshot(&snap.meta, file).await.is_err());
        assert_eq!(b.reader().get_raw(b"mine"), Some(ttl_value("x", None)));
        assert_eq!(b.reader().key_count(), 1);
        assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(1, 1, 1)));
        assert!(
            files(dir_b.path()).iter().all(|f| !f.ends_with(".snap")),
            "{:?}",
            files(dir_b.path())
        );
    }

    #[tokio::test]
    async fn leftover_files_are_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut sm = open(dir.path());
            sm.write_with(log_id(1, 1, 1), |st| st.db.put(b"k", ttl_value("v", None)));
            snapshot(&mut sm).await;
        }
        std::fs::write(dir.path().join("g1-recv-1.tmp"), b"partial").unwrap();
        std::fs::write(dir.path().join("g1-2-9-9.snap.tmp"), b"partial").unwrap();
        std::fs::write(dir.path().join("g2-keep.snap"), b"other group").unwrap();
        let sm = open(dir.path());
        assert_eq!(sm.reader().get_raw(b"k"), Some(ttl_value("v", None)));
        let left = files(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&"g2-keep.snap".to_string()));
    }
}
