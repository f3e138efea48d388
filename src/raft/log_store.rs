//! openraft's `RaftLogStorage` on fjall with group commit.
//!
//! Per group, two keyspaces of the node's one database: `g<gid>.log` (log index as u64 BE →
//! postcard entry) and `g<gid>.raft` (vote, committed, last purged). `append` commits its
//! batch without a sync, so the entries are readable at once (openraft requires it), and
//! hands the completion to the node's flusher: concurrent appends of every group share one
//! fsync. Generic over the type config so the controller group reuses it.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use fjall::Keyspace;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError as RaftStorageError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::raft::Gid;
use crate::storage::{decode_u64, keyspace_name, raft_err, Storage, StorageError};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";
const FORMAT: &[u8] = b"format";

/// Encoding of the stored entries. 2: a shard entry's payload is the leader's encoded
/// batch (`shard::request::ShardRequest`). Logs written before the format was recorded are
/// format 1, which this build cannot read.
const LOG_FORMAT: u32 = 2;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of the latest entries kept in memory per group (see [`Recent`]).
const RECENT_BYTES: usize = 4 * 1024 * 1024;

type Res<T, C> = Result<T, RaftStorageError<<C as RaftTypeConfig>::NodeId>>;

/// One group's Raft log. Cloning is cheap; the clone is the log reader replication uses.
pub struct LogStore<C: RaftTypeConfig> {
    storage: Storage,
    log: Keyspace,
    meta: Keyspace,
    /// The last index openraft reported committed, for INFO.
    committed: Arc<AtomicU64>,
    /// Bytes of entries appended since the store was opened (see `shard::snapshots`).
    appended: Arc<AtomicU64>,
    recent: Arc<Mutex<Recent<C::Entry>>>,
    _c: PhantomData<fn() -> C>,
}

/// The latest entries appended, in memory: replication to each follower and apply read
/// them back right after the append, and a fjall range read (an iterator over every
/// memtable and run, then a decode that copies each payload) was 2% of a write's CPU.
struct Recent<E> {
    /// Index of `entries[0]`.
    first: u64,
    entries: VecDeque<(E, usize)>,
    bytes: usize,
}

impl<E: Clone> Recent<E> {
    fn new() -> Self {
        Recent {
            first: 0,
            entries: VecDeque::new(),
            bytes: 0,
        }
    }

    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Adds entries appended from index `first` on, each with its size; starts over if
    /// they do not follow on from the ones held.
    fn push(&mut self, first: u64, entries: impl IntoIterator<Item = (E, usize)>) {
        if self.entries.is_empty() || first != self.end() {
            self.clear_from(first);
        }
        for (e, size) in entries {
            self.bytes += size;
            self.entries.push_back((e, size));
        }
        while self.bytes > RECENT_BYTES && self.entries.len() > 1 {
            self.pop_front();
        }
    }

    fn clear_from(&mut self, first: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.first = first;
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
            self.first += 1;
        }
    }

    /// Forgets the entries from `index` on (a truncated suffix).
    fn truncate(&mut self, index: u64) {
        while self.end() > index.max(self.first) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Forgets the entries up to `index` (a purged prefix).
    fn purge(&mut self, index: u64) {
        while !self.entries.is_empty() && self.first <= index {
            self.pop_front();
        }
    }

    /// Entries `[start, end)` if all of them are held. A range past the last entry held
    /// is read from fjall: openraft appends in order, but the window cannot know that
    /// nothing was written beyond it (e.g. after a restart).
    fn get(&self, start: u64, end: u64) -> Option<Vec<E>> {
        if self.entries.is_empty() || start < self.first || end > self.end() || start > end {
            return None;
        }
        let (from, to) = ((start - self.first) as usize, (end - self.first) as usize);
        Some(
            self.entries
                .range(from..to)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            storage: self.storage.clone(),
            log: self.log.clone(),
            meta: self.meta.clone(),
            committed: self.committed.clone(),
            appended: self.appended.clone(),
            recent: self.recent.clone(),
            _c: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> LogStore<C>
where
    C::Entry: Clone,
{
    /// Opens (or creates) the log of group `gid`.
    pub fn open(storage: &Storage, gid: Gid) -> Result<Self, StorageError> {
        let store = LogStore {
            storage: storage.clone(),
            log: storage.keyspace(&keyspace_name(gid, "log"))?,
            meta: storage.keyspace(&keyspace_name(gid, "raft"))?,
            committed: Arc::default(),
            appended: Arc::default(),
            recent: Arc::new(Mutex::new(Recent::new())),
            _c: PhantomData,
        };
        store.check_format(gid)?;
        Ok(store)
    }

    /// Refuses a log in another format than this build's; records the format in a new one.
    fn check_format(&self, gid: Gid) -> Result<(), StorageError> {
        let found = match self.get_meta::<u32>(FORMAT)? {
            Some(f) => f,
            None if self.log.first_key_value().is_none() && self.meta.get(PURGED)?.is_none() => {
                return self.put_meta(FORMAT, &LOG_FORMAT);
            }
            None => 1,
        };
        if found != LOG_FORMAT {
            return Err(StorageError::Corrupt(format!(
                "the Raft log of group {gid} is in format {found}; this build reads format \
                 {LOG_FORMAT} only (start the node with an empty --dir to rejoin from its peers)"
            )));
        }
        Ok(())
    }

    /// A live count of the bytes appended since the store was opened.
    pub fn appended_bytes(&self) -> Arc<AtomicU64> {
        self.appended.clone()
    }

    /// A live view of the committed index (updated as openraft saves it).
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent<C::Entry>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.meta.get(key)? {
            Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
            None => Ok(None),
        }
    }

    fn read_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<Vec<C::Entry>, StorageError> {
        let start = match start {
            Bound::Included(s) => s,
            Bound::Excluded(s) => match s.checked_add(1) {
                Some(s) => s,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let last = match end {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => e,
            Bound::Unbounded => u64::MAX,
        };
        if let Some(hit) = self.recent().get(start, last) {
            return Ok(hit);
        }
        let end = end.map(u64::to_be_bytes);
        let mut out = Vec::new();
        for kv in self.log.range((Bound::Included(start.to_be_bytes()), end)) {
            let v = kv.value()?;
            out.push(postcard::from_bytes(&v)?);
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>, StorageError> {
        match self.log.last_key_value() {
            Some(kv) => {
                let e: C::Entry = postcard::from_bytes(&kv.value()?)?;
                Ok(Some(e.get_log_id().clone()))
            }
            None => Ok(None),
        }
    }

    /// Tombstones every entry in `range` (fjall 3.1 has no range delete) plus `extra` meta
    /// writes, in one atomic batch.
    fn delete_range(
        &self,
        range: (Bound<[u8; 8]>, Bound<[u8; 8]>),
        extra: Option<(&[u8], Vec<u8>)>,
    ) -> Result<(), StorageError> {
        let mut batch = self.storage.db().batch();
        for kv in self.log.range(range) {
            batch.remove(&self.log, kv.key()?);
        }
        if let Some((k, v)) = extra {
            batch.insert(&self.meta, k, v);
        }
        batch.commit()?;
        Ok(())
    }

    /// Tombstones the entries up to `upto` and records `purged` as last purged, in one
    /// atomic batch. openraft waits for this in its core loop, which then sends nothing,
    /// heartbeats included: reading the entries back to find their keys (a range scan of
    /// every value, some 40 MB after a snapshot under a SET load) took up to 760 ms, and the
    /// followers, hearing nothing, elected a new leader. The log is contiguous, so the keys
    /// are the indexes from the first entry left (the one after the last purge) up to `upto`,
    /// or to the last entry if that comes first (a snapshot installed far ahead of the log).
    fn purge_through(&self, upto: u64, purged: Vec<u8>) -> Result<(), StorageError> {
        let index = |kv: Option<fjall::Guard>| {
            kv.map(|kv| -> Result<u64, StorageError> { decode_u64(&kv.key()?) })
                .transpose()
        };
        let last = index(self.log.last_key_value())?;
        let after_last: Option<LogId<C::NodeId>> = self.get_meta(PURGED)?.flatten();
        let first = match after_last {
            Some(p) => Some(p.index + 1),
            None => index(self.log.first_key_value())?,
        };
        let mut batch = self.storage.db().batch();
        if let (Some(first), Some(last)) = (first, last) {
            for index in first..=upto.min(last) {
                batch.remove(&self.log, index.to_be_bytes());
            }
        }
        batch.insert(&self.meta, PURGED, purged);
        batch.commit()?;
        Ok(())
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], v: &T) -> Result<(), StorageError> {
        let mut batch = self.storage.db().batch();
        batch.insert(&self.meta, key, crate::codec::to_vec(v)?);
        batch.commit()?;
        Ok(())
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for LogStore<C>
where
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Res<Vec<C::Entry>, C> {
        self.read_range(range.start_bound().cloned(), range.end_bound().cloned())
            .map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Read, e))
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for LogStore<C>
where
    C::Entry: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Res<LogState<C>, C> {
        let err = |e| raft_err(ErrorSubject::Logs, ErrorVerb::Read, e);
        let last_purged_log_id: Option<LogId<C::NodeId>> =
            self.get_meta(PURGED).map_err(err)?.flatten();
        let last = self.last_log_id().map_err(err)?;
        Ok(LogState {
            last_log_id: last.or_else(|| last_purged_log_id.clone()),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// Shares the flusher's next fsync with the appends in flight.
    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Res<(), C> {
        self.put_meta(VOTE, vote)
            .map_err(|e| raft_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.storage
            .persist()
            .await
            .map_err(|e| raft_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Res<Option<Vote<C::NodeId>>, C> {
        self.get_meta(VOTE)
            .map_err(|e| raft_err(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    /// Not synced: the next append's fsync covers it, and a lost value only means that
    /// entries are re-applied once the leader commits them again.
    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Res<(), C> {
        self.committed.store(
            committed.as_ref().map(|l| l.index).unwrap_or(0),
            Ordering::Relaxed,
        );
        self.put_meta(COMMITTED, &committed)
            .map_err(|e| raft_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Res<Option<LogId<C::NodeId>>, C> {
        Ok(self
            .get_meta::<Option<LogId<C::NodeId>>>(COMMITTED)
            .map_err(|e| raft_err(ErrorSubject::Store, ErrorVerb::Read, e))?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Res<(), C>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.storage.db().batch();
        let mut bytes = 0;
        let mut recent = Vec::new();
        for e in entries {
            let id = e.get_log_id().clone();
            let v = crate::codec::to_vec(&e)
                .map_err(|err| raft_err(ErrorSubject::Log(id.clone()), ErrorVerb::Write, err))?;
            bytes += v.len() as u64;
            recent.push((e, v.len()));
            batch.insert(&self.log, id.index.to_be_bytes(), v);
        }
        self.appended.fetch_add(bytes, Ordering::Relaxed);
        self.storage
            .commit(&self.log, || batch.commit())
            .map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        if let Some((e, _)) = recent.first() {
            let first = e.get_log_id().index;
            self.recent().push(first, recent);
        }
        self.storage
            .flush_then(move || callback.log_io_completed(Ok(())));
        Ok(())
    }

    /// Deletes `[log_id.index, ∞)`, durably: a conflicting suffix must not come back after a
    /// crash once the replacing entries are acknowledged. Rare, so the fsync is affordable.
    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Res<(), C> {
        self.recent().truncate(log_id.index);
        let this = self.clone();
        let range = (
            Bound::Included(log_id.index.to_be_bytes()),
            Bound::Unbounded,
        );
        tokio::task::spawn_blocking(move || this.delete_range(range, None))
            .await
            .map_err(|e| {
                raft_err(
                    ErrorSubject::Logs,
                    ErrorVerb::Delete,
                    std::io::Error::other(e),
                )
            })?
            .map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.storage
            .persist()
            .await
            .map_err(|e| raft_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        Ok(())
    }

    /// Deletes `(-∞, log_id.index]` and records `log_id` as last purged in the same batch.
    /// Not synced: a lost purge only leaves already-snapshotted entries behind.
    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Res<(), C> {
        self.recent().purge(log_id.index);
        let this = self.clone();
        let err = |e: StorageError| raft_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let purged = crate::codec::to_vec(&Some(log_id.clone())).map_err(|e| err(e.into()))?;
        tokio::task::spawn_blocking(move || this.purge_through(log_id.index, purged))
            .await
            .map_err(|e| err(std::io::Error::other(e).into()))?
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::log_id;

    use super::*;
    use crate::raft::ShardTC;

    fn blank(term: u64, index: u64) -> openraft::Entry<ShardTC> {
        openraft::testing::blank_ent::<ShardTC>(term, 1, index)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1).unwrap();
        let before = storage.persist_count();
        // 640 appends all in flight at once (each task appends, then waits for its flush):
        // the flusher must cover many of them with each fsync.
        let groups = 32u64;
        let per_group = 20u64;
        let barrier = Arc::new(tokio::sync::Barrier::new((groups * per_group) as usize));
        let logs: Vec<_> = (1..=groups)
            .map(|gid| LogStore::<ShardTC>::open(&storage, gid).unwrap())
            .collect();
        let mut tasks = Vec::new();
        for log in &logs {
            for i in 0..per_group {
                let mut log = log.clone();
                let barrier = barrier.clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    log.blocking_append([blank(1, i)]).await.unwrap();
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        for mut log in logs {
            let entries = log.try_get_log_entries(..).await.unwrap();
            assert_eq!(entries.len() as u64, per_group);
        }
        let fsyncs = storage.persist_count() - before;
        let appends = groups * per_group;
        println!("{appends} appends, {fsyncs} fsyncs");
        // fjall holds its journal lock while fsyncing, so appends issued during an fsync
        // wait for it; how many share each fsync depends on timing. At least two per fsync
        // on average shows the sharing (one per append is what must never happen).
        assert!(
            fsyncs * 2 < appends,
            "{fsyncs} fsyncs for {appends} appends"
        );
    }

    #[test]
    fn recent_entries_follow_appends_truncations_and_purges() {
        let mut r = Recent::<u64>::new();
        let push = |r: &mut Recent<u64>, from: u64, to: u64| {
            r.push(from, (from..to).map(|i| (i, 10)));
        };
        // Nothing known yet: a read goes to fjall.
        assert_eq!(r.get(0, 10), None);
        push(&mut r, 5, 10);
        assert_eq!(r.get(5, 10), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(r.get(7, 9), Some(vec![7, 8]));
        assert_eq!(r.get(4, 10), None, "index 4 is only in fjall");
        assert_eq!(r.get(7, 11), None, "what is past 9 is for fjall to say");
        assert_eq!(r.get(7, u64::MAX), None);
        // A conflicting suffix is replaced.
        r.truncate(8);
        assert_eq!(r.get(5, 8), Some(vec![5, 6, 7]));
        assert_eq!(r.get(5, 9), None);
        push(&mut r, 8, 12);
        assert_eq!(r.get(6, 12), Some(vec![6, 7, 8, 9, 10, 11]));
        r.purge(6);
        assert_eq!(r.get(6, 12), None);
        assert_eq!(r.get(7, 9), Some(vec![7, 8]));
        // Entries that do not follow on start the window over.
        push(&mut r, 20, 22);
        assert_eq!(r.get(11, 22), None);
        assert_eq!(r.get(20, 22), Some(vec![20, 21]));
        // Truncating or purging everything leaves nothing known.
        r.truncate(3);
        assert_eq!(r.get(20, 22), None);
        push(&mut r, 3, 5);
        r.purge(10);
        assert_eq!(r.get(3, 5), None);
        assert_eq!(r.get(11, 12), None);
        // The oldest go once the window is full.
        r.push(0, (0..3).map(|i| (i, RECENT_BYTES / 2)));
        assert_eq!(r.get(0, 3), None);
        assert_eq!(r.get(1, 3), Some(vec![1, 2]));
        assert_eq!(r.bytes, RECENT_BYTES);
    }

    #[tokio::test]
    async fn reads_from_memory_match_the_stored_log() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), 1).unwrap();
        let mut log = LogStore::<ShardTC>::open(&storage, 3).unwrap();
        log.blocking_append((1..=10).map(|i| blank(1, i)))
            .await
            .unwrap();
        log.truncate(log_id(1, 1, 7)).await.unwrap();
        log.blocking_append((7..=12).map(|i| blank(2, i)))
            .await
            .unwrap();
        log.purge(log_id(1, 1, 3)).await.unwrap();
        // A fresh store over the same keyspaces reads fjall only.
        let mut stored = LogStore::<ShardTC>::open(&storage, 3).unwrap();
        for (from, to) in [(4, 13), (4, 7), (6, 9), (12, 13), (1, 13), (12, 20)] {
            let ids = |v: Vec<openraft::Entry<ShardTC>>| {
                v.into_iter().map(|e| e.log_id).collect::<Vec<_>>()
            };
            let mem = ids(log.try_get_log_entries(from..to).await.unwrap());
            let disk = ids(stored.try_get_log_entries(from..to).await.unwrap());
            assert_eq!(mem, disk, "{from}..{to}");
        }
        let terms: Vec<u64> = (log.try_get_log_entries(6..9).await.unwrap())
            .iter()
            .map(|e| e.log_id.leader_id.term)
            .collect();
        assert_eq!(terms, [1, 2, 2]);
    }

    #[tokio::test]
    async fn a_log_of_an_older_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), 1).unwrap();
            let mut log = LogStore::<ShardTC>::open(&storage, 3).unwrap();
            log.blocking_append((0..3).map(|i| blank(1, i)))
                .await
                .unwrap();
            // What a build from before the format was recorded left behind.
            log.meta.remove(FORMAT).unwrap();
        }
        let storage = Storage::open(dir.path(), 1).unwrap();
        let err = LogStore::<ShardTC>::open(&storage, 3)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("in format 1"), "{err}");
        // A new log records its format and opens again.
        LogStore::<ShardTC>::open(&storage, 4).unwrap();
        LogStore::<ShardTC>::open(&storage, 4).unwrap();
    }

    /// The indexes of the entries the log holds.
    async fn indexes(log: &mut LogStore<ShardTC>) -> Vec<u64> {
        let entries = log.try_get_log_entries(..).await.unwrap();
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn log_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path(), 1).unwrap();
            let mut log = LogStore::<ShardTC>::open(&storage, 3).unwrap();
            log.blocking_append((0..10).map(|i| blank(1, i)))
                .await
                .unwrap();
            log.save_vote(&Vote::new(4, 2)).await.unwrap();
            log.save_committed(Some(log_id(1, 1, 7))).await.unwrap();
            log.purge(log_id(1, 1, 2)).await.unwrap();
            log.truncate(log_id(1, 1, 8)).await.unwrap();
            // A second purge starts after the first; the keys are not read back.
            log.purge(log_id(1, 1, 4)).await.unwrap();
            // A log that starts past 0 (as after a snapshot was installed) purged once.
            let mut late = LogStore::<ShardTC>::open(&storage, 5).unwrap();
            late.blocking_append((100..110).map(|i| blank(1, i)))
                .await
                .unwrap();
            late.purge(log_id(1, 1, 104)).await.unwrap();
            // A snapshot installed far past the log: only the entries there are deleted.
            let mut behind = LogStore::<ShardTC>::open(&storage, 6).unwrap();
            behind
                .blocking_append((0..5).map(|i| blank(1, i)))
                .await
                .unwrap();
            behind.purge(log_id(1, 1, 1)).await.unwrap();
            behind.purge(log_id(2, 1, u64::MAX - 1)).await.unwrap();
        }
        let storage = Storage::open(dir.path(), 1).unwrap();
        let mut log = LogStore::<ShardTC>::open(&storage, 3).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, 2)));
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 1, 7)));
        let st = log.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 1, 4)));
        assert_eq!(st.last_log_id, Some(log_id(1, 1, 7)));
        assert_eq!(indexes(&mut log).await, vec![5, 6, 7]);
        let mut late = LogStore::<ShardTC>::open(&storage, 5).unwrap();
        let st = late.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 1, 104)));
        assert_eq!(indexes(&mut late).await, (105..110).collect::<Vec<u64>>());
        let mut behind = LogStore::<ShardTC>::open(&storage, 6).unwrap();
        assert!(indexes(&mut behind).await.is_empty());
        let st = behind.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(log_id(2, 1, u64::MAX - 1)));
        // Another group in the same database is untouched.
        let mut other = LogStore::<ShardTC>::open(&storage, 4).unwrap();
        assert!(other.try_get_log_entries(..).await.unwrap().is_empty());
    }
}
