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

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    StorageError as RaftStorageError, StoredMembership,
};
use tokio::io::AsyncSeekExt;

use super::apply::{
    apply_prepared_fill, prepare_fill, take_fill_rows, ClusterMeta, DedupEntry, FillRows,
};
use super::request::{Batch, ShardResponse};
use super::snapshot_file::{self, Frozen, Image, Membership, Meta};
use crate::cluster::slots::Served;
use crate::db::keyspace::Keyspace;
use crate::db::DbRead;
use crate::raft::{Gid, NodeId, ShardTC};
use crate::storage::{raft_err, StorageError};
use redraft_proxy::wire::Reply;

mod reader;

pub use reader::{ReadView, ShardReader, SlotChunk, SlotSource};

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
    /// When the current snapshot file was written (unix seconds; the start until there is
    /// one, as Redis counts its dataset saved at startup): LASTSAVE.
    saved_at: AtomicU64,
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
        let md = std::fs::metadata(self.dir.join(&cur.file))?;
        self.snapshot_bytes.store(md.len(), Ordering::Relaxed);
        if let Ok(t) = md.modified() {
            self.saved_at.store(unix_secs(t), Ordering::Relaxed);
        }
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

fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
            saved_at: AtomicU64::new(unix_secs(std::time::SystemTime::now())),
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
mod tests;
