//! What a shard group's log carries.

use serde::{Deserialize, Serialize};

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
