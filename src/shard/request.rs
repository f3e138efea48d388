//! What a shard group's log carries.

use serde::{Deserialize, Serialize};

use bytes::Bytes;

use crate::cluster::{Config, CtlOp};
use crate::cmd::WriteCmd;
use redraft_proxy::wire::Reply;

/// What a log entry asks for: a batch of write commands, in order, stamped with the
/// leader's clock when proposed. Apply uses `now_ms`, never its own clock, so every replica
/// expires and stamps TTLs identically.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Batch {
    pub now_ms: u64,
    pub cmds: Vec<WriteCmd>,
}

/// One log entry's payload: a [`Batch`] as the leader encoded it. The leader's log, the
/// AppendEntries to each follower and each follower's log carry these bytes as they are;
/// only apply decodes them. (Carried decoded, every command was encoded and decoded again
/// at each of those hops: 6.5% of the CPU of a pipelined SET load.)
#[derive(Clone, Serialize, Deserialize)]
pub struct ShardRequest(Bytes);

impl ShardRequest {
    pub fn new(now_ms: u64, cmds: Vec<WriteCmd>) -> Self {
        let batch = Batch { now_ms, cmds };
        ShardRequest(Bytes::from(
            crate::codec::to_vec(&batch).expect("a batch of commands always encodes"),
        ))
    }

    /// Size of the encoded batch.
    pub fn encoded_len(&self) -> usize {
        self.0.len()
    }

    /// The batch, its commands' hot fields slices of the entry (see
    /// [`crate::codec::from_shared`]).
    pub fn decode(&self) -> Result<Batch, postcard::Error> {
        crate::codec::from_shared(&self.0)
    }

    /// Whether the batch starts with a slot migration's [`ClusterOp::Fill`], read from
    /// the encoding's head without decoding the (large) rest. postcard writes a batch's
    /// `now_ms`, its length and each enum's variant index as varints, in order.
    pub fn is_slot_fill(&self) -> bool {
        /// Variant indexes of `WriteCmd::Cluster` and `ClusterOp::Fill` (pinned by a test).
        const CLUSTER: u32 = 15;
        const FILL: u32 = 2;
        let Ok(((_now, len, cmd), rest)) = postcard::take_from_bytes::<(u64, u64, u32)>(&self.0)
        else {
            return false;
        };
        len > 0
            && cmd == CLUSTER
            && postcard::take_from_bytes::<u32>(rest).is_ok_and(|(op, _)| op == FILL)
    }
}

/// One reply per command of the entry (empty for blank and membership entries).
pub type ShardResponse = Vec<Reply>;

impl std::fmt::Debug for ShardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decode() {
            Ok(b) => b.fmt(f),
            Err(e) => write!(f, "ShardRequest({} bytes, undecodable: {e})", self.0.len()),
        }
    }
}

impl std::fmt::Display for ShardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardRequest({} bytes)", self.0.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_fill_is_told_from_its_head_alone() {
        let fill = |kvs: usize| {
            WriteCmd::Cluster(ClusterOp::Fill {
                num: 7,
                clear: vec![1],
                kvs: (0..kvs)
                    .map(|i| (Bytes::from(format!("k{i}")), Bytes::from_static(b"v")))
                    .collect(),
                dedup: Vec::new(),
                complete: vec![1],
            })
        };
        assert!(ShardRequest::new(1, vec![fill(0)]).is_slot_fill());
        assert!(ShardRequest::new(u64::MAX, vec![fill(3000), fill(1)]).is_slot_fill());
        let others = [
            WriteCmd::Cluster(ClusterOp::Drop {
                num: 7,
                slots: vec![1],
            }),
            WriteCmd::Cluster(ClusterOp::Purge { limit: 2 }),
            WriteCmd::DeleteExpired(vec![Bytes::from_static(b"k")]),
            WriteCmd::ForgetDedup(Vec::new()),
        ];
        for cmd in others {
            let req = ShardRequest::new(1, vec![cmd.clone(), fill(1)]);
            assert!(!req.is_slot_fill(), "{cmd:?}");
        }
        assert!(!ShardRequest::new(1, Vec::new()).is_slot_fill());
    }
}
