//! WAIT numreplicas timeout at a node: how many of its group's replicas hold every write
//! acknowledged so far, waiting up to `timeout` (0: as long as it takes) for `numreplicas`
//! of them. Every acknowledged write is on a quorum already: with three replicas WAIT 1
//! answers at once.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{followers, Answer};
use crate::node::NodeShared;
use crate::raft::{NodeAddr, NodeId};
use redraft_proxy::wire::kill::KillSwitch;
use redraft_proxy::wire::wait::{acked, parse, AT_A_REPLICA};
use redraft_proxy::wire::Reply;

/// `hangup` is thrown when the client stops sending: a pending WAIT then answers with the
/// count it has, rather than hold the connection (whose replies are still written).
pub fn execute(argv: &[Bytes], node: &Arc<NodeShared>, hangup: &Arc<KillSwitch>) -> Answer {
    let m = node.group.metrics();
    if m.current_leader != Some(m.id) {
        return Answer::Now(Reply::err(AT_A_REPLICA));
    }
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => return Answer::Now(e),
    };
    // The leader's log end: past every write acknowledged so far, this connection's
    // included (they are applied before WAIT runs), even right after an election, when
    // the new leader may not have applied all that its predecessor acknowledged.
    let target = m.last_log_index.unwrap_or(0);
    let count = move |m: &openraft::RaftMetrics<NodeId, NodeAddr>| {
        acked(followers(m).into_iter().map(|(_, offset)| offset), target)
    };
    let now = count(&m);
    if now >= args.replicas {
        return Answer::Now(Reply::Int(now));
    }
    let (mut tx, rx) = oneshot::channel();
    let mut metrics = node.group.raft().metrics();
    let hangup = hangup.clone();
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    tokio::spawn(async move {
        loop {
            let n = count(&metrics.borrow_and_update());
            if n >= args.replicas {
                let _ = tx.send(Ok(Reply::Int(n)));
                return;
            }
            tokio::select! {
                // The connection is gone: nobody to answer.
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => break,
                _ = hangup.killed() => break,
                changed = metrics.changed() => if changed.is_err() { break },
            }
        }
        let n = count(&metrics.borrow());
        let _ = tx.send(Ok(Reply::Int(n)));
    });
    Answer::Later(rx)
}
