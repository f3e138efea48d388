//! SAVE at the proxy: every group's leader snapshots its replica. SAVE itself is never sent
//! to a node: it holds its connection until the snapshot is written, and with it every
//! other client's replies behind it on the pooled connection (as WAIT would; see
//! `wait`). The proxy asks each leader for BGSAVE instead, and polls its INFO raft until
//! the snapshot holds the entries the leader had applied when SAVE began.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::fanout::group_slots;
use crate::forward::{encode, Retry, Target};
use crate::route::Dispatched;
use crate::session::Session;
use crate::wire::Reply;
use crate::Shared;

/// How often a leader's snapshot is looked at while SAVE waits.
const POLL: Duration = Duration::from_millis(20);
/// How often BGSAVE is asked again (a snapshot already being built when it was asked may
/// hold an older point of the log, and a new leader has not been asked).
const ASK_EVERY: Duration = Duration::from_secs(1);
/// As a node's SAVE.
const TIMEOUT: Duration = Duration::from_secs(120);

pub fn save(sh: &Arc<Shared>, s: &Session) -> Dispatched {
    let slots = group_slots(sh);
    if slots.is_empty() {
        return Dispatched::Ready(Reply::err("CLUSTERDOWN Hash slot not served"));
    }
    let (sh, proto, lane) = (sh.clone(), s.proto, s.lane);
    Dispatched::Pending(Box::pin(async move {
        let ask = |slot: u16, argv: &[&'static [u8]]| {
            let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from_static(a)).collect();
            let call =
                sh.backends
                    .start(Target::Slot(slot), encode(&argv), proto, lane, Retry::Read);
            sh.backends.finish(call)
        };
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        for slot in slots {
            let Some((applied, _)) = raft_indexes(&ask(slot, &[b"INFO", b"raft"]).await) else {
                return Reply::err("ERR a group's leader did not say where its log is");
            };
            let mut asked_at = None::<tokio::time::Instant>;
            loop {
                if asked_at.is_none_or(|t| t.elapsed() >= ASK_EVERY) {
                    let r = ask(slot, &[b"BGSAVE"]).await;
                    if r.is_error() {
                        return r;
                    }
                    asked_at = Some(tokio::time::Instant::now());
                }
                match raft_indexes(&ask(slot, &[b"INFO", b"raft"]).await) {
                    Some((_, snapshot)) if snapshot >= applied => break,
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Reply::err(
                            "ERR the snapshot did not finish in time; see the nodes' logs",
                        )
                    }
                    _ => tokio::time::sleep(POLL).await,
                }
            }
        }
        Reply::ok()
    }))
}

/// (applied index, snapshot index) from a node's INFO raft.
fn raft_indexes(info: &Reply) -> Option<(u64, u64)> {
    let text = match info {
        Reply::Bulk(b) | Reply::Verbatim(b) => std::str::from_utf8(b).ok()?,
        _ => return None,
    };
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some((field("raft_applied_index")?, field("raft_snapshot_index")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_from_info_raft() {
        let info = Reply::Verbatim(Bytes::from_static(
            b"# Raft\r\nraft_group:1\r\nraft_applied_index:42\r\nraft_snapshot_index:40\r\nraft_purged_index:3\r\n",
        ));
        assert_eq!(raft_indexes(&info), Some((42, 40)));
        assert_eq!(raft_indexes(&Reply::err("MOVED 1 a:1")), None);
        assert_eq!(
            raft_indexes(&Reply::Bulk(Bytes::from_static(
                b"raft_applied_index:1\r\n"
            ))),
            None
        );
    }
}
