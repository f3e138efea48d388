//! How one logged command changes a group's state, where that depends on the cluster:
//! slot ownership (a write proposed under an old configuration must not apply after its
//! slot left), the migration steps, the controller's operations, and exactly-once retries.
//! Plain commands then run their own `WriteCmd::apply`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::request::ClusterOp;
use super::state_machine::State;
use crate::cluster::slots::{Access, Served, SlotTable};
use crate::cluster::ControllerState;
use crate::cmd::transaction::{self, Item};
use crate::cmd::WriteCmd;
use crate::db::keys::PREFIX_LEN;
use crate::db::keyspace::{RowKey, SlotBuild};
use crate::db::Value;
use crate::raft::Gid;
use redraft_proxy::wire::{key_slot, Reply};

/// How long an exactly-once entry outlives its client's last write to the group. A retry
/// arrives within the proxy's retry window (seconds); this bounds the table.
pub const DEDUP_IDLE_MS: u64 = 5 * 60 * 1000;
/// Replies kept per client for a client that does not acknowledge them (the proxy does,
/// and its entries hold only its writes still in flight): enough for every write of a
/// pipelined client that can be in flight at once to be retried.
pub const DEDUP_WINDOW: usize = 256;

/// The replicated cluster state of a group, persisted with its data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// The controller group's configurations (group 0 only).
    pub ctl: ControllerState,
    /// A shard group's slot ownership. None: a standalone group, which owns every slot.
    pub slots: Option<SlotTable>,
}

impl ClusterMeta {
    /// The slots a shard group serves; None for a standalone group (no slot table), which
    /// serves every slot.
    pub fn served(&self) -> Option<Served> {
        self.slots.as_ref().map(SlotTable::served)
    }
}

/// The exactly-once record of one client in one group: one row per client, not per
/// (client, slot), so the table holds as many rows as there are recent clients however
/// many slots they write to. A slot that moves takes its replies (and the floor) along.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// Entry time of the client's last write here (the group clock).
    pub at_ms: u64,
    /// Every sequence number ≤ floor is forgotten: a retry of one cannot be answered.
    pub floor: u64,
    /// The latest applied sequence numbers, their slots and replies, ascending.
    pub recent: Vec<(u64, u16, Reply)>,
}

impl DedupEntry {
    /// The reply `seq` got, if it is remembered.
    pub fn answered(&self, seq: u64) -> Option<&Reply> {
        // A new write comes after every remembered one: one look at the last, not a
        // binary search whose every step misses the cache.
        if self.recent.last().is_none_or(|r| r.0 < seq) {
            return None;
        }
        let i = self.recent.binary_search_by_key(&seq, |r| r.0).ok()?;
        Some(&self.recent[i].2)
    }

    /// Whether `seq` applied here or was acknowledged (so will never be sent again).
    pub fn settled(&self, seq: u64) -> bool {
        seq <= self.floor || self.answered(seq).is_some()
    }

    /// Records `seq`'s reply unless known, then forgets what `floor` and the window drop.
    pub fn record(&mut self, seq: u64, slot: u16, reply: Reply) {
        if self.recent.last().is_none_or(|r| r.0 < seq) {
            self.recent.push((seq, slot, reply));
        } else if let Err(at) = self.recent.binary_search_by_key(&seq, |r| r.0) {
            self.recent.insert(at, (seq, slot, reply));
        }
        self.forget_to(self.floor);
    }

    /// Raises the floor to `floor` and drops the replies at or below it, and the oldest
    /// beyond the window (raising the floor past them too).
    pub fn forget_to(&mut self, floor: u64) {
        self.floor = self.floor.max(floor);
        if self.recent.len() > DEDUP_WINDOW {
            let s = self.recent[self.recent.len() - DEDUP_WINDOW - 1].0;
            self.floor = self.floor.max(s);
        }
        let floor = self.floor;
        if self.recent.first().is_some_and(|r| r.0 <= floor) {
            let gone = self.recent.partition_point(|r| r.0 <= floor);
            self.recent.drain(..gone);
        }
    }

    /// What a group taking over `slots` needs: their replies, and the floor (a retry of a
    /// forgotten write must not run again there either).
    pub fn for_slots(&self, slots: &[u16]) -> DedupEntry {
        DedupEntry {
            at_ms: self.at_ms,
            floor: self.floor,
            recent: self
                .recent
                .iter()
                .filter(|r| slots.contains(&r.1))
                .cloned()
                .collect(),
        }
    }

    /// Takes in what another group knew of this client (see [`DedupEntry::for_slots`]).
    pub fn merge(&mut self, other: DedupEntry) {
        self.at_ms = self.at_ms.max(other.at_ms);
        for (seq, slot, reply) in other.recent {
            if let Err(at) = self.recent.binary_search_by_key(&seq, |r| r.0) {
                self.recent.insert(at, (seq, slot, reply));
            }
        }
        self.forget_to(other.floor);
    }
}

/// The storage key of a client's exactly-once entry.
pub fn dedup_key(client: u64) -> [u8; 8] {
    client.to_be_bytes()
}

/// The client of an exactly-once entry's storage key.
pub fn dedup_client(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// The reply a command on `slot` gets instead of running, if this group must not run it.
pub fn refusal(meta: &ClusterMeta, slot: u16) -> Option<Reply> {
    let table = meta.slots.as_ref()?;
    match table.access(slot) {
        Access::Serve => None,
        Access::TryAgain => Some(Reply::err(format!(
            "TRYAGAIN Slot {slot} is being migrated to this group, try again later"
        ))),
        Access::Moved(gid) => Some(moved(table, slot, gid)),
    }
}

fn moved(table: &SlotTable, slot: u16, gid: Gid) -> Reply {
    match table.config.nodes(gid).first() {
        Some(n) if gid != 0 => Reply::err(format!("MOVED {slot} {}", n.addr.client_addr())),
        _ => Reply::err("CLUSTERDOWN Hash slot not served"),
    }
}

/// Applies one logged command at entry time `now`.
pub(super) fn apply(ov: &mut State, gid: Gid, cmd: &WriteCmd, now: u64) -> Reply {
    apply_checked(ov, gid, cmd, now, false)
}

/// [`apply`], told whether the caller has already refused the command's slot if this
/// group must not run it (a stamped write's, which names the same slot).
fn apply_checked(ov: &mut State, gid: Gid, cmd: &WriteCmd, now: u64, slot_checked: bool) -> Reply {
    match cmd {
        WriteCmd::Cluster(op) => apply_cluster(ov, gid, op),
        WriteCmd::Once {
            client,
            seq,
            acked,
            after,
            cmd,
        } => apply_once(ov, gid, *client, [*seq, *acked, *after], cmd, now),
        WriteCmd::ForgetDedup(keys) => {
            let mut n = 0;
            for client in keys.iter().filter_map(|k| dedup_client(k)) {
                let idle = ov
                    .dedup_get(client)
                    .is_some_and(|e| e.at_ms.saturating_add(DEDUP_IDLE_MS) <= now);
                if idle {
                    ov.dedup_remove(client);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        WriteCmd::DeleteExpired(keys) if ov.cluster().slots.is_some() => {
            // Never touch a slot that is not served here: an offloading slot's data is
            // frozen for the group pulling it.
            let mut served = Vec::with_capacity(keys.len());
            for k in keys {
                if ov.refusal(key_slot(k)).is_none() {
                    served.push(k.clone());
                }
            }
            WriteCmd::DeleteExpired(served).apply(&mut ov.db, now)
        }
        WriteCmd::Exec(x) => {
            if let Some(r) = x.slot.filter(|_| !slot_checked).and_then(|s| ov.refusal(s)) {
                return r;
            }
            if x.watched_changed(&ov.db, now) {
                return Reply::NullArray;
            }
            // Each write as on its own (a keyless FLUSHALL's checks too), its slot checked.
            let replies = x.items.iter().map(|item| match item {
                Item::Write(w) => apply_checked(ov, gid, w, now, true),
                Item::Read(argv) => transaction::read(argv, &ov.db, now),
                Item::Reply(r) => r.clone(),
            });
            Reply::Array(replies.collect())
        }
        WriteCmd::Flush(_) if ov.cluster().slots.as_ref().is_some_and(|t| !t.settled()) => {
            Reply::err("TRYAGAIN Slots are being migrated, try FLUSHALL again later")
        }
        _ => {
            if let Some(key) = cmd.first_key().filter(|_| !slot_checked) {
                if let Some(r) = ov.refusal(key_slot(key)) {
                    return r;
                }
            }
            cmd.apply(&mut ov.db, now)
        }
    }
}

fn apply_once(
    ov: &mut State,
    gid: Gid,
    client: u64,
    [seq, acked, after]: [u64; 3],
    cmd: &WriteCmd,
    now: u64,
) -> Reply {
    let slot = cmd.slot().unwrap_or(0);
    if let Some(r) = ov.refusal(slot) {
        return r;
    }
    let entry = ov.dedup_get(client);
    if let Some(e) = entry {
        if let Some(r) = e.answered(seq) {
            return r.clone();
        }
        if seq <= e.floor {
            return too_old(client, seq);
        }
    }
    // Its predecessor was refused (a slot in motion) and will be retried: this one waits
    // for it, or the client's writes would apply out of order. Not recorded, so the
    // retry runs.
    if after > 0 && !entry.is_some_and(|e| e.settled(after)) {
        return Reply::err(format!(
            "TRYAGAIN write {seq} of client {client} waits for its write {after}"
        ));
    }
    let reply = apply_checked(ov, gid, cmd, now, true);
    let entry = ov.dedup_mut(client);
    entry.at_ms = now;
    entry.forget_to(acked);
    entry.record(seq, slot, reply.clone());
    reply
}

fn too_old(client: u64, seq: u64) -> Reply {
    Reply::err(format!(
        "ERR write {seq} of client {client} is too old to tell whether it was applied"
    ))
}

fn apply_cluster(ov: &mut State, gid: Gid, op: &ClusterOp) -> Reply {
    match op {
        ClusterOp::Ctl(op) => {
            if gid != 0 {
                return Reply::err("ERR not a controller group");
            }
            let mut ctl = ov.cluster().ctl.clone();
            match ctl.apply(op) {
                Ok(num) => {
                    ov.cluster_mut().ctl = ctl;
                    Reply::Int(num as i64)
                }
                Err(e) => Reply::err(e.to_string()),
            }
        }
        ClusterOp::Advance(next) => {
            let mut table = ov
                .cluster()
                .slots
                .clone()
                .unwrap_or_else(|| SlotTable::new(gid));
            let Some(orphaned) = table.advance(next) else {
                return Reply::Int(0);
            };
            tracing::debug!(
                gid,
                config = next.num,
                pulling = table.pulling.len(),
                offloading = table.offloading.len(),
                "moved to a new configuration"
            );
            ov.cluster_mut().slots = Some(table);
            for s in orphaned {
                ov.db.delete_slot(s);
            }
            Reply::Int(1)
        }
        ClusterOp::Fill { .. } => fill(ov, op, None),
        ClusterOp::Drop { num, slots } => {
            let Some(mut table) = ov.cluster().slots.clone() else {
                return Reply::Int(0);
            };
            let dropped = table.drop_offloaded(*num, slots);
            if dropped.is_empty() {
                return Reply::Int(0);
            }
            tracing::debug!(
                gid,
                config = num,
                slots = dropped.len(),
                "slots left, purging"
            );
            ov.cluster_mut().slots = Some(table);
            Reply::Int(dropped.len() as i64)
        }
        ClusterOp::Purge { limit } => {
            let Some(mut table) = ov.cluster().slots.clone() else {
                return Reply::Int(0);
            };
            if table.purging.is_empty() {
                return Reply::Int(0);
            }
            let mut left = *limit as usize;
            let mut keys = 0;
            while let Some(&slot) = table.purging.iter().next() {
                let cursor = table
                    .purge_cursor
                    .take()
                    .filter(|c| c.len() >= 2 && slot_of(c) == slot);
                let (n, last) = ov.db.delete_slot_part(slot, cursor.as_deref(), left);
                keys += n;
                left = left.saturating_sub(n as usize);
                match last {
                    Some(k) => {
                        table.purge_cursor = Some(k);
                        break;
                    }
                    None => {
                        table.purging.remove(&slot);
                    }
                }
                if left == 0 {
                    break;
                }
            }
            table.progress.keys_dropped += keys;
            ov.cluster_mut().slots = Some(table);
            Reply::Int(keys as i64)
        }
        ClusterOp::Acked { num, slots } => {
            let Some(mut table) = ov.cluster().slots.clone() else {
                return Reply::ok();
            };
            let before = table.unacked.len();
            table.acked(*num, slots);
            if table.unacked.len() != before {
                ov.cluster_mut().slots = Some(table);
            }
            Reply::ok()
        }
    }
}

/// What a [`ClusterOp::Fill`] adds to its slots' rows, built from the state before it
/// ([`prepare_fill`]) away from the lock that readers of the state wait for.
#[derive(Clone)]
pub(super) struct FillRows {
    builds: Vec<SlotBuild>,
    keys: u64,
    bytes: u64,
}

/// If `cmd` is a [`ClusterOp::Fill`] applied to `st` now, the slots it adds rows to, as
/// they are (empty if it clears them), for [`FillRows::build`] to add to. O(slots): the
/// caller holds `st` only for this.
pub(super) fn prepare_fill(st: &State, cmd: &WriteCmd) -> Option<FillRows> {
    match cmd {
        WriteCmd::Cluster(op) => prepare(st, op),
        _ => None,
    }
}

fn prepare(st: &State, op: &ClusterOp) -> Option<FillRows> {
    let ClusterOp::Fill {
        num, clear, kvs, ..
    } = op
    else {
        return None;
    };
    let table = st.cluster().slots.as_ref()?;
    let mut builds: Vec<SlotBuild> = Vec::new();
    for (k, _) in kvs {
        if k.len() < PREFIX_LEN {
            continue;
        }
        let slot = slot_of(k);
        if table.may_fill(*num, slot) && !builds.iter().any(|b| b.slot() == slot) {
            // A slot the Fill clears starts over empty, as `fill` clears it first.
            builds.push(st.db.slot_build(slot, clear.contains(&slot)));
        }
    }
    Some(FillRows {
        builds,
        keys: 0,
        bytes: 0,
    })
}

impl FillRows {
    /// Adds the rows of the Fill these were prepared for (see [`take_fill_rows`]), holding
    /// nothing.
    pub(super) fn build(&mut self, kvs: &[(Bytes, Bytes)]) {
        for (k, v) in kvs {
            if k.len() < PREFIX_LEN {
                continue;
            }
            let slot = slot_of(k);
            let Some(build) = self.builds.iter_mut().find(|b| b.slot() == slot) else {
                continue; // not to be filled
            };
            let (Some(row), Some(value)) = (RowKey::from_storage(k.clone()), decode_row(v)) else {
                continue;
            };
            build.put_row(row, value);
            self.keys += 1;
            self.bytes += (k.len() + v.len()) as u64;
        }
    }
}

/// Takes the rows out of `cmd` if it is a [`ClusterOp::Fill`], for [`FillRows::build`]:
/// applied with prepared rows, a Fill needs the rest of it only.
pub(super) fn take_fill_rows(cmd: &mut WriteCmd) -> Vec<(Bytes, Bytes)> {
    match cmd {
        WriteCmd::Cluster(ClusterOp::Fill { kvs, .. }) => std::mem::take(kvs),
        _ => Vec::new(),
    }
}

/// Applies `cmd`, a [`ClusterOp::Fill`], with the rows [`prepare_fill`] and
/// [`FillRows::build`] made for it from the state as it is now.
pub(super) fn apply_prepared_fill(ov: &mut State, cmd: &WriteCmd, rows: FillRows) -> Reply {
    match cmd {
        WriteCmd::Cluster(op @ ClusterOp::Fill { .. }) => fill(ov, op, Some(rows)),
        _ => unreachable!("rows are prepared for a Fill only"),
    }
}

/// A stored value pulled from another group.
fn decode_row(v: &[u8]) -> Option<Value> {
    postcard::from_bytes::<Value>(v)
        .inspect_err(|e| tracing::error!(error = %e, "undecodable value in a slot transfer"))
        .ok()
}

/// Applies a [`ClusterOp::Fill`] with its rows as `rows` built them (built here if None).
fn fill(ov: &mut State, op: &ClusterOp, rows: Option<FillRows>) -> Reply {
    let ClusterOp::Fill {
        num,
        clear,
        kvs,
        dedup,
        complete,
    } = op
    else {
        unreachable!("fill applies a Fill");
    };
    let Some(mut table) = ov.cluster().slots.clone() else {
        return Reply::Int(0);
    };
    let rows = match rows {
        Some(rows) => rows,
        None => {
            let Some(mut rows) = prepare(ov, op) else {
                return Reply::Int(0);
            };
            rows.build(kvs);
            rows
        }
    };
    for s in clear {
        if table.may_fill(*num, *s) {
            ov.db.delete_slot(*s);
        }
    }
    // Pulled slots start empty (dropped when they last left, cleared when a pull restarts)
    // and a pull sends each key once, in order.
    for b in rows.builds {
        ov.db.install(b);
    }
    let (keys, bytes) = (rows.keys, rows.bytes);
    // Replies are facts wherever they were recorded, and a floor only rises: merging a
    // repeated or stale chunk's entries is harmless.
    for (k, v) in dedup {
        match (dedup_client(k), postcard::from_bytes::<DedupEntry>(v)) {
            (Some(client), Ok(e)) => ov.dedup_mut(client).merge(e),
            _ => tracing::error!("undecodable exactly-once entry in a slot transfer"),
        }
    }
    let installed = table.installed(*num, complete);
    table.progress.keys_in += keys;
    table.progress.bytes_in += bytes;
    if keys > 0 || !installed.is_empty() {
        ov.cluster_mut().slots = Some(table);
    }
    Reply::Int(installed.len() as i64)
}

/// The slot prefix of a data storage key.
fn slot_of(k: &[u8]) -> u16 {
    u16::from_be_bytes([k[0], k[1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Reply {
        Reply::Int(n)
    }

    #[test]
    fn an_entry_keeps_what_is_in_flight_and_a_window() {
        let mut e = DedupEntry::default();
        e.record(1, 5, int(1));
        e.record(3, 6, int(3));
        e.record(2, 5, int(2));
        assert_eq!(e.answered(2), Some(&int(2)));
        assert_eq!(e.answered(4), None);
        // Acknowledged: forgotten, and the floor says so.
        e.forget_to(2);
        assert_eq!(
            (e.floor, e.answered(1), e.answered(3)),
            (2, None, Some(&int(3)))
        );
        e.forget_to(1);
        assert_eq!(e.floor, 2, "a floor never falls");
        // A client that never acknowledges keeps the last DEDUP_WINDOW replies.
        for seq in 4..(4 + DEDUP_WINDOW as u64 + 10) {
            e.record(seq, 7, int(seq as i64));
        }
        assert_eq!(e.recent.len(), DEDUP_WINDOW);
        assert_eq!(e.floor, e.recent[0].0 - 1);
        assert!(e.recent.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_moving_slot_takes_its_replies_and_the_floor() {
        let mut src = DedupEntry::default();
        src.record(10, 1, int(10));
        src.record(11, 2, int(11));
        src.forget_to(9);
        src.at_ms = 500;
        let part = src.for_slots(&[2]);
        assert_eq!((part.floor, part.recent.len()), (9, 1));
        let mut dst = DedupEntry::default();
        dst.record(12, 3, int(12));
        dst.at_ms = 400;
        dst.merge(part.clone());
        assert_eq!(dst.answered(11), Some(&int(11)));
        assert_eq!(dst.answered(12), Some(&int(12)));
        assert_eq!((dst.floor, dst.at_ms), (9, 500));
        // Merging again (a repeated chunk) changes nothing.
        let once = dst.clone();
        dst.merge(part);
        assert_eq!(dst, once);
    }
}
