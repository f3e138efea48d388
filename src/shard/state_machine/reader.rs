//! Reads of a group's applied state: the leader's reads after a read barrier, views that
//! see one point of the log, and the slot data a migration pulls.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLockReadGuard};

use bytes::Bytes;

use super::{Shared, State};
use crate::db::keyspace::{KeyRef, SlotRows};
use crate::db::{DbRead, Value};
use crate::shard::apply::{dedup_client, dedup_key, ClusterMeta, DedupEntry};

/// Reads of a group's applied state, for the leader after a read barrier and for the
/// background tasks. Cheap to clone.
#[derive(Clone)]
pub struct ShardReader {
    pub(super) shared: Arc<Shared>,
}

impl ShardReader {
    /// Size in bytes of the group's current snapshot file (0 before the first).
    pub fn snapshot_bytes(&self) -> u64 {
        self.shared.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// When this replica's current snapshot was written (unix seconds; its start before
    /// the first): LASTSAVE.
    pub fn saved_at(&self) -> u64 {
        self.shared.saved_at.load(Ordering::Relaxed)
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

    /// See [`crate::db::keyspace::Keyspace::prefetch`].
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
