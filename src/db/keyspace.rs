//! A group's keyspace, in memory as Redis keeps it. The Raft log (fsync'd on a quorum) and
//! snapshot files make it durable; a replica that restarts loads its last snapshot and
//! replays the log after it.
//!
//! Rows are held in storage order (slot, FNV hash, key: the order of [`keys::data_key`]), so
//! a slot's rows are one range (migration, purge, GETKEYSINSLOT) and a SCAN cursor is a
//! position in that order. The layout is for cache misses, which is what a lookup costs:
//! - one ordered map per slot, found by index (one map of every row took five levels);
//! - keyed by the key's 64-bit hash alone, in a radix tree on its bits ([`RadixMap`]):
//!   the descent picks a child by a digit of the hash, never comparing key bytes;
//! - a row's key, value and expiry share one allocation with its reference count, behind
//!   an 8-byte pointer in the leaf, so checking the key, cloning the value and copying it
//!   out touch one place, and a value replaced by one of the same length on a row that is
//!   not shared is written in place.
//!
//! The maps are persistent: a snapshot clones them in O(slots) and writes
//! them out while applies go on, which then copy only the tree nodes they change (a giant
//! hash-tag slot is never copied whole).
//!
//! [`keys::data_key`]: super::keys::data_key

use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;
use triomphe::{Arc, ThinArc};

use super::keys::{fnv1a64, PREFIX_LEN};
use super::radix::{self, RadixMap};
use super::{Data, DbRead, DbWrite, Value};
use redraft_proxy::wire::key_slot;

const SLOTS: usize = 16384;

/// A stored key: its slot and hash, then the key itself; ordered as storage keys are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    slot: u16,
    hash: u64,
    key: Bytes,
}

/// A borrowed [`RowKey`], for lookups and cursors without an allocation.
#[derive(Clone, Copy, Debug)]
pub struct KeyRef<'a> {
    slot: u16,
    hash: u64,
    key: &'a [u8],
}

impl<'a> KeyRef<'a> {
    /// The row key of user key `key`.
    pub fn of(key: &'a [u8]) -> Self {
        KeyRef {
            slot: key_slot(key),
            hash: fnv1a64(key),
            key,
        }
    }

    /// The row key inside a storage key (`slot ++ hash ++ key`); None if it is too short.
    pub fn from_storage(sk: &'a [u8]) -> Option<Self> {
        if sk.len() < PREFIX_LEN {
            return None;
        }
        let mut h = [0u8; 8];
        h.copy_from_slice(&sk[2..PREFIX_LEN]);
        Some(KeyRef {
            slot: u16::from_be_bytes([sk[0], sk[1]]),
            hash: u64::from_be_bytes(h),
            key: &sk[PREFIX_LEN..],
        })
    }

    fn slot(&self) -> usize {
        usize::from(self.slot) % SLOTS
    }
}

impl RowKey {
    /// The row key of a storage key, sharing its bytes.
    pub fn from_storage(sk: Bytes) -> Option<Self> {
        let r = KeyRef::from_storage(&sk)?;
        let (slot, hash) = (r.slot, r.hash);
        Some(RowKey {
            slot,
            hash,
            key: sk.slice(PREFIX_LEN..),
        })
    }

    /// The storage key: the form snapshot files and migration chunks carry.
    pub fn storage_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREFIX_LEN + self.key.len());
        self.put_storage_key(&mut out);
        out
    }

    /// Appends the storage key to `out`.
    pub fn put_storage_key(&self, out: &mut impl bytes::BufMut) {
        out.put_slice(&self.slot.to_be_bytes());
        out.put_slice(&self.hash.to_be_bytes());
        out.put_slice(&self.key);
    }

    pub fn user_key(&self) -> &Bytes {
        &self.key
    }

    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The SCAN position of this row (see [`super::keys::scan_pos`]).
    pub fn scan_pos(&self) -> u64 {
        (u64::from(self.slot) << 50) | (self.hash >> 14)
    }

    fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            slot: self.slot,
            hash: self.hash,
            key: &self.key,
        }
    }
}

/// Rows up to this size are joined on the stack before they are stored.
const SMALL_ROW: usize = 256;

/// What a row holds besides its bytes.
#[derive(Clone, Copy)]
struct Head {
    klen: u32,
    expire_at: Option<u64>,
}

/// A stored row: key ++ value in one allocation with its reference count, the key's length
/// and the expiry time, behind a thin pointer. The map's leaves hold 8 bytes per row, so a
/// lookup's binary search stays in a line or two, and a SET that replaces a value of the
/// same length on a row nobody else holds (no snapshot, migration or reply) writes it in
/// place: no allocation, no free, one cache miss.
#[derive(Clone)]
struct Row(ThinArc<Head, u8>);

/// Part of a row, as `Bytes` that keep the row alive.
struct Part {
    row: Row,
    from: usize,
    to: usize,
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.row.0.slice[self.from..self.to]
    }
}

impl Row {
    fn new(key: &[u8], value: &[u8], expire_at: Option<u64>) -> Row {
        let len = key.len() + value.len();
        let head = Head {
            klen: key.len() as u32,
            expire_at,
        };
        // Joined on the stack when small, so that the row is one allocation and one copy.
        let mut small = [0u8; SMALL_ROW];
        let mut large = Vec::new();
        let joined = match len <= SMALL_ROW {
            true => &mut small[..len],
            false => {
                large.resize(len, 0);
                &mut large[..]
            }
        };
        joined[..key.len()].copy_from_slice(key);
        joined[key.len()..].copy_from_slice(value);
        Row(ThinArc::from_header_and_slice(head, joined))
    }

    fn klen(&self) -> usize {
        self.0.header.header.klen as usize
    }

    fn expire_at(&self) -> Option<u64> {
        self.0.header.header.expire_at
    }

    fn key(&self) -> &[u8] {
        &self.0.slice[..self.klen()]
    }

    fn part(&self, from: usize, to: usize) -> Bytes {
        match from == to {
            true => Bytes::new(),
            false => Bytes::from_owner(Part {
                row: self.clone(),
                from,
                to,
            }),
        }
    }

    fn key_bytes(&self) -> Bytes {
        self.part(0, self.klen())
    }

    fn value(&self) -> Value {
        Value {
            data: Data::Str(self.part(self.klen(), self.0.slice.len())),
            expire_at: self.expire_at(),
        }
    }

    /// Runs `f` on the value in place if the row is this map's alone; false otherwise.
    fn modify(&mut self, f: &mut dyn FnMut(&mut [u8])) -> bool {
        let klen = self.klen();
        self.0.with_arc_mut(|row| match Arc::get_mut(row) {
            Some(row) => {
                f(&mut row.slice_mut()[klen..]);
                true
            }
            None => false,
        })
    }

    /// Replaces the value and expiry in place if the row is this map's alone and the new
    /// value has the old one's length; false (nothing changed) otherwise.
    fn overwrite(&mut self, value: &[u8], expire_at: Option<u64>) -> bool {
        let klen = self.klen();
        if self.0.slice.len() != klen + value.len() {
            return false;
        }
        self.0.with_arc_mut(|row| match Arc::get_mut(row) {
            Some(row) => {
                row.header_mut().expire_at = expire_at;
                row.slice_mut()[klen..].copy_from_slice(value);
                true
            }
            None => false,
        })
    }
}

/// Bytes a key of `klen` bytes holding `vlen` bytes takes in the keyspace (MEMORY USAGE):
/// its row (reference count, head, length, key and value, 8-aligned) and its leaf entry
/// (the hash and the rows). Radix branches shared by many keys are left out, as Redis
/// leaves out its hash table's bucket array.
pub fn stored_size(klen: usize, vlen: usize) -> usize {
    use std::mem::size_of;
    let row = size_of::<usize>() + size_of::<Head>() + size_of::<usize>() + klen + vlen;
    row.next_multiple_of(8) + size_of::<u64>() + size_of::<Rows1>()
}

/// The rows under one hash of a slot, ordered by key: one, bar a 64-bit hash collision.
#[derive(Clone)]
enum Rows1 {
    One(Row),
    Many(Vec<Row>),
}

/// What a leaf leaves behind when it moves its values out: no allocation.
impl Default for Rows1 {
    fn default() -> Self {
        Rows1::Many(Vec::new())
    }
}

impl Rows1 {
    fn rows(&self) -> &[Row] {
        match self {
            Rows1::One(row) => std::slice::from_ref(row),
            Rows1::Many(rows) => rows,
        }
    }

    fn find(&self, key: &[u8]) -> Option<&Row> {
        self.rows().iter().find(|r| r.key() == key)
    }

    fn find_mut(&mut self, key: &[u8]) -> Option<&mut Row> {
        match self {
            Rows1::One(row) => (row.key() == key).then_some(row),
            Rows1::Many(rows) => rows.iter_mut().find(|r| r.key() == key),
        }
    }

    /// Adds a row whose key is not here yet.
    fn add(&mut self, row: Row) {
        let mut rows = match std::mem::replace(self, Rows1::Many(Vec::new())) {
            Rows1::One(r) => vec![r],
            Rows1::Many(rows) => rows,
        };
        let at = rows.partition_point(|r| r.key() < row.key());
        rows.insert(at, row);
        *self = Rows1::Many(rows);
    }

    /// Removes `key`'s row (the caller drops an emptied `Rows1`).
    fn remove(&mut self, key: &[u8]) -> Option<Row> {
        match self {
            Rows1::One(row) if row.key() == key => {
                match std::mem::replace(self, Rows1::Many(Vec::new())) {
                    Rows1::One(row) => Some(row),
                    Rows1::Many(_) => None,
                }
            }
            Rows1::One(_) => None,
            Rows1::Many(rows) => {
                let i = rows.iter().position(|r| r.key() == key)?;
                Some(rows.remove(i))
            }
        }
    }
}

type Slot = RadixMap<Rows1>;

/// The rows of `slot` in order, from hash `from` (with its keys after `after` only).
fn slot_iter<'a>(
    map: &'a Slot,
    slot: u16,
    from: Bound<u64>,
    after: Option<&'a [u8]>,
) -> impl Iterator<Item = (RowKey, Value)> + 'a {
    let first = match from {
        Bound::Included(h) => Some(h),
        _ => None,
    };
    map.range(from).flat_map(move |(hash, rows)| {
        rows.rows().iter().filter_map(move |r| {
            let skip = Some(hash) == first && after.is_some_and(|a| r.key() <= a);
            (!skip).then(|| {
                let key = RowKey {
                    slot,
                    hash,
                    key: r.key_bytes(),
                };
                (key, r.value())
            })
        })
    })
}

/// The rows of `slot` in `map` after storage key `after` (all if None), in order.
fn rows_after<'a>(
    map: &'a Slot,
    slot: u16,
    after: Option<KeyRef<'a>>,
) -> impl Iterator<Item = (RowKey, Value)> + 'a {
    let after = after.filter(|a| a.slot == slot);
    let from = after.map_or(Bound::Unbounded, |a| Bound::Included(a.hash));
    slot_iter(map, slot, from, after.map(|a| a.key))
}

/// One slot's rows at one moment (see [`Keyspace::slot_snapshot`]).
pub struct SlotRows {
    slot: u16,
    map: Slot,
}

impl SlotRows {
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The rows after storage key `after` (all if None), in order.
    pub fn after<'a>(
        &'a self,
        after: Option<KeyRef<'a>>,
    ) -> impl Iterator<Item = (RowKey, Value)> + 'a {
        rows_after(&self.map, self.slot, after)
    }
}

/// The rows of a keyspace, one map per slot, shareable: what a snapshot writes out.
#[derive(Clone)]
pub struct Rows {
    slots: Box<[Slot]>,
    /// Rows per slot (a map counts hashes, not rows).
    lens: Box<[u32]>,
    len: usize,
}

impl Rows {
    fn new() -> Self {
        Rows {
            slots: vec![Slot::new(); SLOTS].into_boxed_slice(),
            lens: vec![0; SLOTS].into_boxed_slice(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every row, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (RowKey, Value)> + '_ {
        (0..SLOTS).flat_map(|s| slot_iter(&self.slots[s], s as u16, Bound::Unbounded, None))
    }

    fn get(&self, k: &KeyRef<'_>) -> Option<Value> {
        let row = self.slots[k.slot()].get(k.hash)?.find(k.key)?;
        Some(row.value())
    }
}

/// See the module doc.
#[derive(Clone)]
pub struct Keyspace {
    rows: Rows,
    /// `(expire_at, key)` of every row with an expiry time, soonest first: the leader's
    /// expiry task deletes from the front. Keys are copies, so that the index never holds
    /// a replaced row's allocation.
    ttl: BTreeSet<(u64, RowKey)>,
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace {
            rows: Rows::new(),
            ttl: BTreeSet::new(),
        }
    }
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyspace({} rows)", self.rows.len())
    }
}

/// Stores `value` at `k` in a slot's map: whether it added a row, and the expiry time of
/// the row it replaced.
fn put_in(map: &mut Slot, k: KeyRef<'_>, value: Value) -> (bool, Option<u64>) {
    let new_t = value.expire_at;
    let Data::Str(v) = &value.data;
    let put = map.update(k.hash, |rows| match rows.find_mut(k.key) {
        Some(old) => {
            let t = old.expire_at();
            if !old.overwrite(v, new_t) {
                *old = Row::new(k.key, v, new_t);
            }
            (false, t)
        }
        None => {
            rows.add(Row::new(k.key, v, new_t));
            (true, None)
        }
    });
    put.unwrap_or_else(|| {
        map.insert(k.hash, Rows1::One(Row::new(k.key, v, new_t)));
        (true, None)
    })
}

/// One slot's rows being added to apart from the keyspace (see [`Keyspace::slot_build`]).
/// A clone is O(1) and independent of the original.
#[derive(Clone)]
pub struct SlotBuild {
    slot: u16,
    map: Slot,
    len: u32,
    /// Expiry index changes to make on install: (row, old time, new time).
    retimed: Vec<(RowKey, Option<u64>, Option<u64>)>,
}

impl SlotBuild {
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// As [`Keyspace::put_row`]; `k` must be in this build's slot.
    pub fn put_row(&mut self, k: RowKey, value: Value) {
        debug_assert_eq!(k.slot, self.slot);
        let new_t = value.expire_at;
        let (grew, old_t) = put_in(&mut self.map, k.as_ref(), value);
        self.len += u32::from(grew);
        if old_t != new_t {
            self.retimed.push((k, old_t, new_t));
        }
    }
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rows, to clone (cheaply) for a snapshot.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    /// Stores a row given by its row key: a snapshot being loaded, a pulled slot.
    pub fn put_row(&mut self, k: RowKey, value: Value) {
        self.put_at(k.as_ref(), value);
    }

    fn put_at(&mut self, k: KeyRef<'_>, value: Value) {
        let new_t = value.expire_at;
        let (grew, old_t) = put_in(&mut self.rows.slots[k.slot()], k, value);
        if grew {
            self.grew(k.slot());
        }
        self.retime(k, old_t, new_t);
    }

    /// `slot`'s rows (none if `empty`), to add rows to away from this keyspace: a slot
    /// migration builds a chunk's rows outside the lock that readers of the keyspace wait
    /// for, then [`Keyspace::install`]s them in O(1).
    pub fn slot_build(&self, slot: u16, empty: bool) -> SlotBuild {
        let i = usize::from(slot) % SLOTS;
        SlotBuild {
            slot,
            map: if empty {
                Slot::new()
            } else {
                self.rows.slots[i].clone()
            },
            len: if empty { 0 } else { self.rows.lens[i] },
            retimed: Vec::new(),
        }
    }

    /// Puts a built slot in place. The slot must not have changed since its build began
    /// (but for being emptied, if the build began empty).
    pub fn install(&mut self, b: SlotBuild) {
        let i = usize::from(b.slot) % SLOTS;
        self.rows.len = self.rows.len - self.rows.lens[i] as usize + b.len as usize;
        self.rows.lens[i] = b.len;
        self.rows.slots[i] = b.map;
        for (k, old, new) in b.retimed {
            self.retime(k.as_ref(), old, new);
        }
    }

    fn grew(&mut self, slot: usize) {
        self.rows.lens[slot] += 1;
        self.rows.len += 1;
    }

    /// Moves `k` in the ttl index from expiry time `old` to `new`.
    fn retime(&mut self, k: KeyRef<'_>, old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        let owned = || RowKey {
            slot: k.slot,
            hash: k.hash,
            key: Bytes::copy_from_slice(k.key),
        };
        if let Some(t) = old {
            self.ttl.remove(&(t, owned()));
        }
        if let Some(t) = new {
            self.ttl.insert((t, owned()));
        }
    }

    fn remove_row(&mut self, k: KeyRef<'_>) -> Option<Value> {
        let map = &mut self.rows.slots[k.slot()];
        let (old, emptied) = map
            .update(k.hash, |rows| {
                let old = rows.remove(k.key)?;
                Some((old, rows.rows().is_empty()))
            })
            .flatten()?;
        if emptied {
            map.remove(k.hash);
        }
        self.rows.lens[k.slot()] -= 1;
        self.rows.len -= 1;
        self.retime(k, old.expire_at(), None);
        Some(old.value())
    }

    /// Up to `limit` user keys whose expiry time is ≤ `now_ms`, soonest first.
    pub fn expired(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.ttl
            .iter()
            .take_while(|(t, _)| *t <= now_ms)
            .take(limit)
            .map(|(_, k)| k.key.clone())
            .collect()
    }

    /// Brings the rows of `keys` into the cache, their lookups' misses overlapping: what a
    /// batch of reads, or a log entry's writes, touches next. Changes nothing. (One by one,
    /// each lookup waits on the misses of its path in turn: with 33k rows in a slot, 30%
    /// of a GET's CPU.)
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        let lookups: Vec<(&Slot, u64)> = keys
            .map(|key| {
                let k = KeyRef::of(key);
                (&self.rows.slots[k.slot()], k.hash)
            })
            .collect();
        let mut touched = 0usize;
        radix::get_each(&lookups, |_, rows| {
            // The first and last bytes of the row: its head, and its value's end.
            if let Some(row) = rows.rows().first() {
                touched += row.klen() + row.0.slice.last().map_or(0, |&b| usize::from(b));
            }
        });
        std::hint::black_box(touched);
    }

    /// How many rows `slot` holds (expired ones included, as CLUSTER COUNTKEYSINSLOT).
    pub fn slot_len(&self, slot: u16) -> u64 {
        u64::from(self.rows.lens[usize::from(slot) % SLOTS])
    }

    /// The rows of `slot` after storage key `after` (from the slot's first if None), in
    /// order.
    pub fn slot_rows<'a>(
        &'a self,
        slot: u16,
        after: Option<KeyRef<'a>>,
    ) -> impl Iterator<Item = (RowKey, Value)> + 'a {
        rows_after(&self.rows.slots[usize::from(slot) % SLOTS], slot, after)
    }

    /// `slot`'s rows as they are now, taken in O(1): reading them holds nothing up.
    pub fn slot_snapshot(&self, slot: u16) -> SlotRows {
        SlotRows {
            slot,
            map: self.rows.slots[usize::from(slot) % SLOTS].clone(),
        }
    }

    /// Deletes every row of `slot`; returns how many.
    pub fn delete_slot(&mut self, slot: u16) -> u64 {
        self.delete_slot_part(slot, None, usize::MAX).0
    }

    /// Deletes up to `limit` rows of `slot` after storage key `after`, lowest first.
    /// Returns how many, and the storage key of the last one while more remain.
    pub fn delete_slot_part(
        &mut self,
        slot: u16,
        after: Option<&[u8]>,
        limit: usize,
    ) -> (u64, Option<Vec<u8>>) {
        let after = after.and_then(KeyRef::from_storage);
        let mut doomed: Vec<RowKey> = Vec::new();
        let mut more = false;
        for (k, _) in self.slot_rows(slot, after) {
            if doomed.len() >= limit {
                more = true;
                break;
            }
            doomed.push(k);
        }
        let last = more
            .then(|| doomed.last().map(RowKey::storage_key))
            .flatten();
        for k in &doomed {
            self.remove_row(k.as_ref());
        }
        (doomed.len() as u64, last)
    }
}

impl DbRead for Keyspace {
    fn get_raw(&self, key: &[u8]) -> Option<Value> {
        self.rows.get(&KeyRef::of(key))
    }

    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
        let first = usize::from((pos >> 50) as u16) % SLOTS;
        let from = Bound::Included((pos & ((1 << 50) - 1)) << 14);
        let rows =
            slot_iter(&self.rows.slots[first], first as u16, from, None)
                .chain((first + 1..SLOTS).flat_map(|s| {
                    slot_iter(&self.rows.slots[s], s as u16, Bound::Unbounded, None)
                }));
        let mut out = Vec::new();
        let mut last_pos = None;
        for (k, v) in rows {
            let p = k.scan_pos();
            if out.len() >= count.max(1) && Some(p) != last_pos {
                return (out, p);
            }
            last_pos = Some(p);
            out.push((k.key, v));
        }
        (out, 0)
    }

    fn key_count(&self) -> u64 {
        self.rows.len as u64
    }

    fn expires_count(&self) -> u64 {
        self.ttl.len() as u64
    }
}

impl DbWrite for Keyspace {
    fn put(&mut self, key: &[u8], value: Value) {
        self.put_at(KeyRef::of(key), value);
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        self.remove_row(KeyRef::of(key)).is_some()
    }

    fn clear(&mut self) {
        *self = Keyspace::default();
    }

    fn modify_in_place(&mut self, key: &[u8], f: &mut dyn FnMut(&mut [u8])) -> bool {
        let k = KeyRef::of(key);
        self.rows.slots[k.slot()]
            .update(k.hash, |rows| {
                rows.find_mut(k.key).is_some_and(|row| row.modify(f))
            })
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::keys::{data_key, scan_pos};

    fn v(s: &str, expire_at: Option<u64>) -> Value {
        Value {
            expire_at,
            ..Value::string(s.to_string())
        }
    }

    #[test]
    fn keys_and_values_of_every_size_keep_their_bytes() {
        // Rows joined on the stack and on the heap (a key here is `klen` + 2 bytes), and
        // far past both.
        let sizes = [
            0,
            1,
            23,
            24,
            57,
            120,
            184,
            253,
            254,
            255,
            256,
            4096,
            1 << 20,
        ];
        let bytes = |n: usize, seed: u8| -> Vec<u8> {
            (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
        };
        let mut ks = Keyspace::new();
        let mut model = std::collections::BTreeMap::new();
        for (i, &klen) in sizes.iter().enumerate() {
            for (j, &vlen) in sizes.iter().enumerate() {
                let key = [bytes(klen, 1), vec![i as u8, j as u8]].concat();
                let value = Bytes::from(bytes(vlen, 2));
                ks.put(&key, Value::string(value.clone()));
                model.insert(key, value);
            }
        }
        // Replacing a small value with a big one and back.
        for (n, key) in model
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
        {
            let value = Bytes::from(bytes(sizes[n % sizes.len()], 3));
            ks.put(
                &key,
                Value {
                    expire_at: Some(n as u64 + 1),
                    ..Value::string(value.clone())
                },
            );
            model.insert(key, value);
        }
        for (key, value) in &model {
            let got = ks.get_raw(key).expect("stored");
            let Data::Str(b) = &got.data;
            assert_eq!(b, value);
            assert!(got.expire_at.is_some());
        }
        let listed: std::collections::BTreeMap<_, _> = ks
            .rows()
            .iter()
            .map(|(k, v)| {
                let Data::Str(b) = v.data;
                (k.user_key().to_vec(), b)
            })
            .collect();
        assert_eq!(listed, model);
        for key in model.keys() {
            assert!(ks.delete(key));
        }
        assert_eq!(ks.key_count(), 0);
        assert_eq!(ks.expires_count(), 0);
    }

    #[test]
    fn a_value_modified_in_place_is_never_seen_changing() {
        let mut ks = Keyspace::new();
        let get = |ks: &Keyspace| ks.get_raw(b"k").map(|v| v.data);
        let first = |c: u8| move |v: &mut [u8]| v[0] = c;
        ks.put(b"k", v("abc", Some(5)));
        assert!(ks.modify_in_place(b"k", &mut first(b'x')));
        assert_eq!(get(&ks), Some(Data::Str(Bytes::from("xbc"))));
        assert_eq!(ks.get_raw(b"k").unwrap().expire_at, Some(5));
        let held = get(&ks);
        assert!(
            !ks.modify_in_place(b"k", &mut first(b'y')),
            "a reply in flight"
        );
        assert_eq!(held, Some(Data::Str(Bytes::from("xbc"))));
        drop(held);
        let snapshot = ks.clone();
        assert!(!ks.modify_in_place(b"k", &mut first(b'y')), "a snapshot");
        // What the caller writes instead leaves the snapshot as it was.
        ks.put(b"k", v("ybc", Some(5)));
        assert_eq!(get(&snapshot), Some(Data::Str(Bytes::from("xbc"))));
        drop(snapshot);
        assert!(ks.modify_in_place(b"k", &mut first(b'z')));
        assert_eq!(get(&ks), Some(Data::Str(Bytes::from("zbc"))));
        assert!(!ks.modify_in_place(b"none", &mut first(b'z')));
    }

    #[test]
    fn a_value_rewritten_in_place_is_never_seen_changing() {
        let mut ks = Keyspace::new();
        let get = |ks: &Keyspace| ks.get_raw(b"k").map(|v| v.data);
        ks.put(b"k", v("aaaa", None));
        let held = get(&ks);
        ks.put(b"k", v("bbbb", None));
        assert_eq!(
            held,
            Some(Data::Str(Bytes::from("aaaa"))),
            "a reply in flight"
        );
        assert_eq!(get(&ks), Some(Data::Str(Bytes::from("bbbb"))));
        let snapshot = ks.clone();
        ks.put(b"k", v("cccc", Some(7)));
        assert_eq!(get(&snapshot), Some(Data::Str(Bytes::from("bbbb"))));
        assert_eq!(snapshot.get_raw(b"k").unwrap().expire_at, None);
        assert_eq!(snapshot.expires_count(), 0);
        drop(snapshot);
        // Unshared now: written in place, expiry and ttl index included.
        ks.put(b"k", v("dddd", Some(9)));
        let now = ks.get_raw(b"k").unwrap();
        assert_eq!(
            (now.data, now.expire_at),
            (Data::Str(Bytes::from("dddd")), Some(9))
        );
        assert_eq!(ks.expired(8, 10), Vec::<Bytes>::new());
        assert_eq!(ks.expired(9, 10), vec![Bytes::from("k")]);
        ks.put(b"k", v("eeee", None));
        assert_eq!(ks.expires_count(), 0);
        assert_eq!(ks.key_count(), 1);
    }

    #[test]
    fn rows_are_in_storage_key_order() {
        let mut ks = Keyspace::new();
        let mut want: Vec<Vec<u8>> = Vec::new();
        for i in 0..3000 {
            let key = format!("k{i}");
            ks.put(key.as_bytes(), v("x", None));
            want.push(data_key(key.as_bytes()));
        }
        // Equal heads, different keys: ordered by the key bytes.
        ks.put(b"", v("x", None));
        want.push(data_key(b""));
        want.sort();
        let got: Vec<Vec<u8>> = ks.rows().iter().map(|(k, _)| k.storage_key()).collect();
        assert_eq!(got, want);
        for (k, _) in ks.rows().iter() {
            assert_eq!(k.scan_pos(), scan_pos(&k.storage_key()));
            let back = RowKey::from_storage(Bytes::from(k.storage_key())).unwrap();
            assert_eq!(back, k);
        }
    }

    #[test]
    fn counters_ttl_index_and_slot_counts_follow_every_write() {
        let mut ks = Keyspace::new();
        ks.put(b"a", v("1", None));
        ks.put(b"b", v("2", Some(100)));
        ks.put(b"c", v("3", Some(200)));
        ks.put(b"c", v("3", Some(300)));
        ks.put(b"b", v("2", None));
        assert_eq!((ks.key_count(), ks.expires_count()), (3, 1));
        assert_eq!(ks.expired(299, 10), Vec::<Bytes>::new());
        assert_eq!(ks.expired(300, 10), vec![Bytes::from_static(b"c")]);
        assert!(ks.delete(b"c"));
        assert!(!ks.delete(b"c"));
        assert_eq!((ks.key_count(), ks.expires_count()), (2, 0));
        assert_eq!(ks.slot_len(key_slot(b"a")), 1);
        ks.put(b"{a}x", v("1", Some(5)));
        assert_eq!(ks.slot_len(key_slot(b"a")), 2);
        assert_eq!(ks.delete_slot(key_slot(b"a")), 2);
        assert_eq!(ks.slot_len(key_slot(b"a")), 0);
        assert_eq!((ks.key_count(), ks.expires_count()), (1, 0));
        ks.clear();
        assert_eq!((ks.key_count(), ks.get_raw(b"b")), (0, None));
    }

    #[test]
    fn a_slot_is_deleted_part_by_part_from_a_cursor() {
        let mut ks = Keyspace::new();
        let slot = key_slot(b"t");
        for i in 0..10 {
            ks.put(format!("{{t}}{i}").as_bytes(), v("x", Some(i)));
        }
        ks.put(b"other", v("y", None));
        let (n, cursor) = ks.delete_slot_part(slot, None, 4);
        assert_eq!(n, 4);
        let cursor = cursor.unwrap();
        let (n, cursor) = ks.delete_slot_part(slot, Some(&cursor), 4);
        assert_eq!((n, cursor.is_some()), (4, true));
        let (n, cursor) = ks.delete_slot_part(slot, cursor.as_deref(), 4);
        assert_eq!((n, cursor), (2, None));
        assert_eq!((ks.key_count(), ks.expires_count()), (1, 0));
        assert_eq!(ks.slot_len(slot), 0);
    }

    #[test]
    fn a_clone_keeps_its_rows_while_the_original_changes() {
        let mut ks = Keyspace::new();
        for i in 0..1000 {
            ks.put(format!("k{i}").as_bytes(), v("old", None));
        }
        let frozen = ks.rows().clone();
        for i in 0..1000 {
            ks.put(format!("k{i}").as_bytes(), v("new", None));
        }
        ks.delete(b"k1");
        assert_eq!(frozen.len(), 1000);
        assert!(frozen.iter().all(|(_, x)| x == v("old", None)));
        assert_eq!(ks.get_raw(b"k2"), Some(v("new", None)));
    }

    /// The simplest store with the same contract: storage keys in a BTreeMap.
    #[derive(Default)]
    struct Model(std::collections::BTreeMap<Vec<u8>, Value>);

    impl Model {
        fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64) {
            let start = crate::db::keys::pos_start(pos).to_vec();
            let mut out = Vec::new();
            let mut last_pos = None;
            for (k, v) in self.0.range(start..) {
                let p = scan_pos(k);
                if out.len() >= count.max(1) && Some(p) != last_pos {
                    return (out, p);
                }
                last_pos = Some(p);
                let user = crate::db::keys::user_key(k);
                out.push((Bytes::copy_from_slice(user), v.clone()));
            }
            (out, 0)
        }
    }

    fn full_scan(
        scan: impl Fn(u64, usize) -> (Vec<(Bytes, Value)>, u64),
        count: usize,
    ) -> Vec<(Vec<(Bytes, Value)>, u64)> {
        let mut pages = Vec::new();
        let mut pos = 0;
        loop {
            let (page, next) = scan(pos, count);
            pages.push((page, next));
            if next == 0 {
                return pages;
            }
            pos = next;
        }
    }

    #[test]
    fn scan_counters_and_expiry_match_a_model() {
        // Deterministic pseudo-random operations (xorshift), so failures reproduce.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut ks, mut model) = (Keyspace::new(), Model::default());
        for _ in 0..2000 {
            let key = format!("k{}", next() % 500).into_bytes();
            if next().is_multiple_of(5) {
                assert_eq!(ks.delete(&key), model.0.remove(&data_key(&key)).is_some());
            } else {
                let value = v("v", next().is_multiple_of(3).then(|| next() % 1000));
                ks.put(&key, value.clone());
                model.0.insert(data_key(&key), value);
            }
        }
        for count in [1, 2, 3, 7, 50, 1000] {
            assert_eq!(
                full_scan(|p, c| ks.scan(p, c), count),
                full_scan(|p, c| model.scan(p, c), count),
                "count {count}"
            );
        }
        let with_ttl = model.0.values().filter(|v| v.expire_at.is_some()).count();
        assert_eq!(ks.key_count(), model.0.len() as u64);
        assert_eq!(ks.expires_count(), with_ttl as u64);
        let mut want: Vec<(u64, Vec<u8>)> = model
            .0
            .iter()
            .filter_map(|(k, v)| v.expire_at.filter(|t| *t <= 500).map(|t| (t, k.clone())))
            .collect();
        want.sort();
        let want: Vec<Bytes> = want
            .into_iter()
            .map(|(_, k)| Bytes::copy_from_slice(crate::db::keys::user_key(&k)))
            .collect();
        assert_eq!(ks.expired(500, usize::MAX), want);
        for slot in 0..16384u16 {
            let n = ks.slot_rows(slot, None).count() as u64;
            assert_eq!(ks.slot_len(slot), n, "slot {slot}");
        }
    }
}
