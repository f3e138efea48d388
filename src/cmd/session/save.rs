//! SAVE, BGSAVE, LASTSAVE. A replica's Raft snapshot is its dump file: the whole state,
//! written to one file, after which the log behind it is dropped. Every acknowledged write
//! is durable in the log already, so these are about compacting the log (and telling
//! when it was last done), not about keeping data.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::node::NodeShared;
use redraft_proxy::wire::Reply;

/// Longest SAVE waits for the snapshot it asked for (a large state takes seconds).
const SAVE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often SAVE asks again: a snapshot already being built when it asked may hold an
/// older point of the log.
const ASK_EVERY: Duration = Duration::from_secs(1);

/// `SAVE`: takes this replica's snapshot now and answers once it holds every entry
/// applied when SAVE arrived.
pub async fn save(node: &Arc<NodeShared>) -> Reply {
    let raft = node.group.raft();
    let mut metrics = raft.metrics();
    let target = metrics.borrow().last_applied.map(|l| l.index);
    let done = async {
        loop {
            if raft.trigger().snapshot().await.is_err() {
                return false;
            }
            let built = tokio::time::timeout(
                ASK_EVERY,
                metrics.wait_for(|m| m.snapshot.map(|l| l.index) >= target),
            )
            .await;
            match built {
                Ok(Ok(_)) => return true,
                Ok(Err(_)) => return false,
                Err(_) => continue,
            }
        }
    };
    match tokio::time::timeout(SAVE_TIMEOUT, done).await {
        Ok(true) => Reply::ok(),
        Ok(false) => Reply::err("ERR the node is shutting down"),
        Err(_) => Reply::err("ERR the snapshot did not finish in time; see the node's log"),
    }
}

/// `BGSAVE [SCHEDULE]`: asks for this replica's snapshot and answers at once.
pub async fn bgsave(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    match &argv[1..] {
        [] => {}
        [s] if s.eq_ignore_ascii_case(b"schedule") => {}
        _ => return Reply::syntax_error(),
    }
    match node.group.raft().trigger().snapshot().await {
        Ok(()) => Reply::status("Background saving started"),
        Err(_) => Reply::err("ERR the node is shutting down"),
    }
}

/// `LASTSAVE`: when this replica's current snapshot was written (unix seconds).
pub fn lastsave(node: &Arc<NodeShared>) -> Reply {
    Reply::Int(node.group.reader().saved_at() as i64)
}
