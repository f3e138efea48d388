//! How one logged command changes a group's state, where that depends on the cluster:
//! slot ownership (a write proposed under an old configuration must not apply after its
//! slot left), the migration steps, the controller's operations, and exactly-once retries.
//! Plain commands then run their own `WriteCmd::apply`.

use serde::{Deserialize, Serialize};

use super::request::ClusterOp;
use super::state_machine::Overlay;
use crate::cluster::slots::{Access, SlotTable};
use crate::cluster::ControllerState;
use crate::cmd::WriteCmd;
use crate::db::keys::{user_key, PREFIX_LEN};
use crate::db::Value;
use crate::raft::Gid;
use redraft_proxy::wire::{key_slot, Reply};

/// How long an exactly-once entry outlives the last write of its client to its slot. A
/// retry arrives within the proxy's retry window (seconds); this bounds the table.
pub const DEDUP_IDLE_MS: u64 = 5 * 60 * 1000;
/// Replies kept per client and slot: enough for every write of a pipelined client that
/// can be in flight at once to be retried.
pub const DEDUP_WINDOW: usize = 64;

/// The replicated cluster state of a group, persisted with its data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// The controller group's configurations (group 0 only).
    pub ctl: ControllerState,
    /// A shard group's slot ownership. None: a standalone group, which owns every slot.
    pub slots: Option<SlotTable>,
}

/// The exactly-once record of one client at one slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// Entry time of the client's last write here (the group clock).
    pub at_ms: u64,
    /// Every sequence number ≤ floor is forgotten: a retry of one cannot be answered.
    pub floor: u64,
    /// The latest applied sequence numbers and their replies, ascending.
    pub recent: Vec<(u64, Reply)>,
}

/// The storage key of a client's exactly-once entry at `slot`.
pub fn dedup_key(slot: u16, client: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&slot.to_be_bytes());
    k.extend_from_slice(&client.to_be_bytes());
    k
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
pub(super) fn apply(ov: &mut Overlay<'_>, gid: Gid, cmd: &WriteCmd, now: u64) -> Reply {
    match cmd {
        WriteCmd::Cluster(op) => apply_cluster(ov, gid, op),
        WriteCmd::Once { client, seq, cmd } => apply_once(ov, gid, *client, *seq, cmd, now),
        WriteCmd::ForgetDedup(keys) => {
            let mut n = 0;
            for k in keys {
                if k.len() < 2 {
                    continue;
                }
                let slot = slot_of(k);
                let idle = ov
                    .dedup_get(k)
                    .and_then(|v| postcard::from_bytes::<DedupEntry>(&v).ok())
                    .is_some_and(|e| e.at_ms.saturating_add(DEDUP_IDLE_MS) <= now);
                if idle && refusal(ov.cluster(), slot).is_none() {
                    ov.dedup_put(k.to_vec(), None);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        WriteCmd::DeleteExpired(keys) if ov.cluster().slots.is_some() => {
            // Never touch a slot that is not served here: an offloading slot's data is
            // frozen for the group pulling it.
            let served: Vec<_> = keys
                .iter()
                .filter(|k| refusal(ov.cluster(), key_slot(k)).is_none())
                .cloned()
                .collect();
            WriteCmd::DeleteExpired(served).apply(ov, now)
        }
        WriteCmd::Flush(_) if ov.cluster().slots.as_ref().is_some_and(|t| !t.settled()) => {
            Reply::err("TRYAGAIN Slots are being migrated, try FLUSHALL again later")
        }
        _ => {
            if let Some(key) = cmd.first_key() {
                if let Some(r) = refusal(ov.cluster(), key_slot(key)) {
                    return r;
                }
            }
            cmd.apply(ov, now)
        }
    }
}

fn apply_once(
    ov: &mut Overlay<'_>,
    gid: Gid,
    client: u64,
    seq: u64,
    cmd: &WriteCmd,
    now: u64,
) -> Reply {
    let slot = cmd.first_key().map(key_slot).unwrap_or(0);
    if let Some(r) = refusal(ov.cluster(), slot) {
        return r;
    }
    let k = dedup_key(slot, client);
    let mut entry = ov
        .dedup_get(&k)
        .and_then(|v| postcard::from_bytes::<DedupEntry>(&v).ok())
        .unwrap_or(DedupEntry {
            at_ms: now,
            floor: 0,
            recent: Vec::new(),
        });
    if let Ok(i) = entry.recent.binary_search_by_key(&seq, |(s, _)| *s) {
        return entry.recent[i].1.clone();
    }
    if seq <= entry.floor {
        return Reply::err(format!(
            "ERR write {seq} of client {client} is too old to tell whether it was applied"
        ));
    }
    let reply = apply(ov, gid, cmd, now);
    let at = entry.recent.partition_point(|(s, _)| *s < seq);
    entry.recent.insert(at, (seq, reply.clone()));
    if entry.recent.len() > DEDUP_WINDOW {
        let (s, _) = entry.recent.remove(0);
        entry.floor = entry.floor.max(s);
    }
    entry.at_ms = now;
    match postcard::to_stdvec(&entry) {
        Ok(v) => ov.dedup_put(k, Some(v)),
        Err(e) => tracing::error!(error = %e, "encoding an exactly-once entry"),
    }
    reply
}

fn apply_cluster(ov: &mut Overlay<'_>, gid: Gid, op: &ClusterOp) -> Reply {
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
                ov.delete_slot(s);
            }
            Reply::Int(1)
        }
        ClusterOp::Fill {
            num,
            clear,
            kvs,
            dedup,
            complete,
        } => {
            let Some(mut table) = ov.cluster().slots.clone() else {
                return Reply::Int(0);
            };
            for s in clear {
                if table.may_fill(*num, *s) {
                    ov.delete_slot(*s);
                }
            }
            let (mut keys, mut bytes) = (0u64, 0u64);
            for (k, v) in kvs {
                if k.len() < PREFIX_LEN || !table.may_fill(*num, slot_of(k)) {
                    continue;
                }
                match postcard::from_bytes::<Value>(v) {
                    Ok(value) => {
                        // Pulled slots start empty (dropped when they last left, cleared
                        // when a pull restarts) and a pull sends each key once, in order.
                        ov.put_absent(user_key(k), value);
                        keys += 1;
                        bytes += (k.len() + v.len()) as u64;
                    }
                    Err(e) => tracing::error!(error = %e, "undecodable value in a slot transfer"),
                }
            }
            for (k, v) in dedup {
                if k.len() == 10 && table.may_fill(*num, slot_of(k)) {
                    ov.dedup_put(k.to_vec(), Some(v.to_vec()));
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
                let (n, last) = ov.delete_slot_part(slot, cursor, left);
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

/// The slot prefix of a storage key (data or exactly-once entry).
fn slot_of(k: &[u8]) -> u16 {
    u16::from_be_bytes([k[0], k[1]])
}
