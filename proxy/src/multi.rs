//! MULTI, EXEC, DISCARD at the proxy: the client's queued commands go to their slot's
//! leader as one `TXN`, stamped for exactly-once like any write, which the group applies
//! whole (see the node's `cmd::transaction`). Every key of a transaction must hash to one
//! slot, as in Redis Cluster; a command the proxy answers itself or fans out to every
//! group (INFO, CLIENT, KEYS, FLUSHALL …) cannot be queued.

use std::sync::Arc;

use bytes::Bytes;

use crate::forward::{encode, Retry, Target};
use crate::route::{forward, slot_of, start_write, Dispatched};
use crate::session::Session;
use crate::wire::table::resolve;
use crate::wire::Reply;
use crate::Shared;

/// The commands a client queued since MULTI.
#[derive(Default)]
pub struct Queue {
    argvs: Vec<Vec<Bytes>>,
    slot: Option<u16>,
    /// Keys of two slots were queued: EXEC answers CROSSSLOT.
    crossslot: bool,
    /// A command was refused when queued: EXEC answers EXECABORT.
    failed: bool,
}

const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";

/// Keyless commands a node answers the same inside a transaction as outside.
const KEYLESS: [&str; 4] = ["ping", "echo", "select", "time"];

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH, and any command while the client is in MULTI; None
/// for the rest.
pub fn intercept(sh: &Arc<Shared>, s: &mut Session, argv: &[Bytes]) -> Option<Dispatched> {
    let name = argv.first()?;
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if s.multi.is_none() {
        if !["multi", "exec", "discard", "watch", "unwatch"]
            .into_iter()
            .any(is)
        {
            return None;
        }
        let spec = match resolve(argv) {
            Ok(spec) => spec,
            Err(e) => return Some(Dispatched::Ready(e)),
        };
        s.last_cmd = Some(spec.name);
        return Some(Dispatched::Ready(match spec.name {
            "multi" => {
                s.multi = Some(Queue::default());
                Reply::ok()
            }
            "exec" => Reply::err("ERR EXEC without MULTI"),
            "discard" => Reply::err("ERR DISCARD without MULTI"),
            "watch" => Reply::err(WATCH_UNSUPPORTED),
            _ => Reply::ok(),
        }));
    }
    if is("quit") || is("reset") {
        // RESET ends the transaction with the rest of the connection's state.
        return None;
    }
    let spec = match resolve(argv) {
        Ok(spec) => spec,
        Err(e) => return Some(fail(s, e)),
    };
    s.last_cmd = Some(spec.name);
    let queue = s.multi.as_mut()?;
    let reply = match spec.name {
        "exec" => return Some(exec(sh, s)),
        "discard" => {
            s.multi = None;
            Reply::ok()
        }
        "multi" => Reply::err("ERR MULTI calls can not be nested"),
        "watch" => Reply::err("ERR WATCH inside MULTI is not allowed"),
        name => match slot_of(Some(spec), argv) {
            Err(e) => return Some(fail(s, e)),
            Ok(None) if !KEYLESS.contains(&name) => return Some(fail(s, Reply::err(NOT_ALLOWED))),
            Ok(_) if name == "once" => return Some(fail(s, Reply::err(NOT_ALLOWED))),
            Ok(slot) => {
                if let Some(slot) = slot {
                    queue.crossslot |= queue.slot.is_some_and(|q| q != slot);
                    queue.slot.get_or_insert(slot);
                }
                queue.argvs.push(argv.to_vec());
                Reply::status("QUEUED")
            }
        },
    };
    Some(Dispatched::Ready(reply))
}

/// WATCH is not implemented: a transaction that needs it must not run as if it had
/// watched (the node's text).
const WATCH_UNSUPPORTED: &str =
    "ERR WATCH is not supported by redraft: a transaction runs whole, but cannot be made conditional on keys";

/// A command refused while queueing: its error now, EXECABORT at EXEC.
fn fail(s: &mut Session, e: Reply) -> Dispatched {
    if let Some(q) = s.multi.as_mut() {
        q.failed = true;
    }
    Dispatched::Ready(e)
}

/// EXEC: the queue as one `TXN` to its slot's leader.
fn exec(sh: &Arc<Shared>, s: &mut Session) -> Dispatched {
    let q = s.multi.take().unwrap_or_default();
    if q.failed {
        return Dispatched::Ready(Reply::err(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if q.crossslot {
        return Dispatched::Ready(Reply::err(
            "CROSSSLOT Keys in request don't hash to the same slot",
        ));
    }
    if q.argvs.is_empty() {
        return Dispatched::Ready(Reply::Array(Vec::new()));
    }
    let mut txn = Vec::with_capacity(1 + q.argvs.iter().map(|a| a.len() + 1).sum::<usize>());
    txn.push(Bytes::from_static(b"TXN"));
    for argv in q.argvs {
        txn.push(Bytes::from(argv.len().to_string()));
        txn.extend(argv);
    }
    match q.slot {
        Some(slot) => Dispatched::Sent(start_write(sh, s, slot, &txn)),
        // PING, ECHO …: any node answers them the same.
        None => forward(sh, s, Target::Any, encode(&txn), Retry::Read),
    }
}
