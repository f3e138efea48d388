//! WAIT numreplicas timeout at the proxy: the fewest, over the groups, of the replicas that
//! hold every write acknowledged so far. WAIT runs alone (`route::orders_all`), so the
//! client's earlier writes are answered, hence applied, before it starts.
//!
//! WAIT itself is never sent to a node: it would hold the pooled backend connection, and
//! every other client's replies behind it, for up to its timeout. The proxy asks each
//! group's leader for ROLE instead, which answers at once with where the leader's log ends
//! and how far each replica holds it, and asks again until enough replicas reach the first
//! answer's end or the time is up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::fanout::group_slots;
use crate::forward::{encode, Retry, Target};
use crate::route::Dispatched;
use crate::session::Session;
use crate::wire::wait::{acked, parse};
use crate::wire::Reply;
use crate::Shared;

/// How often the replicas' progress is asked for while WAIT waits.
const POLL: Duration = Duration::from_millis(5);

pub fn wait(sh: &Arc<Shared>, s: &Session, argv: &[Bytes]) -> Dispatched {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => return Dispatched::Ready(e),
    };
    let slots = group_slots(sh);
    if slots.is_empty() {
        return Dispatched::Ready(Reply::err("CLUSTERDOWN Hash slot not served"));
    }
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let (sh, proto, lane) = (sh.clone(), s.proto, s.lane);
    let role = encode(&[Bytes::from_static(b"ROLE")]);
    Dispatched::Pending(Box::pin(async move {
        // Per group, the log end the first ROLE gave: past every write acknowledged before.
        let mut targets: Vec<Option<u64>> = vec![None; slots.len()];
        loop {
            let calls: Vec<_> = slots
                .iter()
                .map(|slot| {
                    sh.backends
                        .start(Target::Slot(*slot), role.clone(), proto, lane, Retry::Read)
                })
                .collect();
            let mut fewest = i64::MAX;
            for (call, target) in calls.into_iter().zip(targets.iter_mut()) {
                let n = match master_offsets(&sh.backends.finish(call).await) {
                    Some((end, replicas)) => acked(replicas, *target.get_or_insert(end)),
                    None => {
                        // Not the leader (any more): the proxy's routes are behind.
                        sh.backends.topo.request_refresh();
                        0
                    }
                };
                fewest = fewest.min(n);
            }
            let late = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            if fewest >= args.replicas || late {
                return Reply::Int(fewest);
            }
            tokio::time::sleep(POLL).await;
        }
    }))
}

/// A master's ROLE reply: where its log ends and each replica's offset.
fn master_offsets(role: &Reply) -> Option<(u64, Vec<u64>)> {
    let Reply::Array(parts) = role else {
        return None;
    };
    let [Reply::Bulk(kind), Reply::Int(end), Reply::Array(replicas)] = parts.as_slice() else {
        return None;
    };
    if &kind[..] != b"master" {
        return None;
    }
    let offsets = replicas
        .iter()
        .map(|r| match r {
            Reply::Array(f) => match f.get(2) {
                Some(Reply::Bulk(o)) => std::str::from_utf8(o).ok()?.parse().ok(),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()?;
    Some((u64::try_from(*end).ok()?, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_masters_role_gives_its_end_and_its_replicas_offsets() {
        let replica = |o: &str| Reply::Array(vec![bulk("127.0.0.1"), bulk("7002"), bulk(o)]);
        let role = Reply::Array(vec![
            bulk("master"),
            Reply::Int(42),
            Reply::Array(vec![replica("42"), replica("41")]),
        ]);
        assert_eq!(master_offsets(&role), Some((42, vec![42, 41])));
        let slave = Reply::Array(vec![
            bulk("slave"),
            bulk("127.0.0.1"),
            Reply::Int(7001),
            bulk("connected"),
            Reply::Int(42),
        ]);
        assert_eq!(master_offsets(&slave), None);
        assert_eq!(
            master_offsets(&Reply::err("CLUSTERDOWN The cluster is down")),
            None
        );
    }
}
