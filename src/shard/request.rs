//! What a shard group's log carries.

use serde::{Deserialize, Serialize};

use bytes::Bytes;

use crate::cluster::{Config, CtlOp};
use crate::cmd::WriteCmd;
use redraft_proxy::wire::Reply;

/// One log entry's payload: a batch of write commands, in order, stamped with the leader's
/// clock when proposed. Apply uses `now_ms`, never its own clock, so every replica expires
/// and stamps TTLs identically.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardRequest {
    pub now_ms: u64,
    pub cmds: Vec<WriteCmd>,
}

/// One reply per command of the entry (empty for blank and membership entries).
pub type ShardResponse = Vec<Reply>;

impl std::fmt::Display for ShardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ShardRequest(now={}, {} cmds)",
            self.now_ms,
            self.cmds.len()
        )
    }
}

/// Cluster operations replicated through a group's log. Each names the configuration it
/// belongs to, so a step retried by a new leader, or arriving late, changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterOp {
    /// The controller group: a JOIN/LEAVE/MOVE/REBALANCE; replies the new config number.
    Ctl(CtlOp),
    /// A shard group moves to this configuration (its next one, once every slot settled).
    Advance(Config),
    /// Data pulled from slots' old owner (storage keys, stored values, exactly-once
    /// entries). Slots in `clear` start over (a pull restarted by a new leader discards
    /// what an earlier attempt installed); slots in `complete` are whole and serve from
    /// this entry on.
    Fill {
        num: u64,
        clear: Vec<u16>,
        kvs: Vec<(Bytes, Bytes)>,
        dedup: Vec<(Bytes, Bytes)>,
        complete: Vec<u16>,
    },
    /// The new owner has these slots: delete them here.
    Drop { num: u64, slots: Vec<u16> },
    /// The old owner has dropped these slots: they are settled.
    Acked { num: u64, slots: Vec<u16> },
    /// Delete up to `limit` keys of the slots being purged, in slot order (a slot's
    /// exactly-once entries go with its last keys).
    Purge { limit: u32 },
}
