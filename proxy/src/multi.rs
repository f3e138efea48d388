//! MULTI, EXEC, DISCARD, WATCH at the proxy: the client's queued commands go to their
//! slot's leader as one `TXN`, stamped for exactly-once like any write, which the group
//! applies whole (see the node's `cmd::transaction`). Every key of a transaction, watched
//! keys included, must hash to one slot, as in Redis Cluster; a command the proxy answers
//! itself or fans out to every group (INFO, CLIENT, KEYS, FLUSHALL …) cannot be queued.
//!
//! WATCH reads the keys' fingerprints at their leader (`TXNWATCH`, ordered after the
//! client's writes like any read), and EXEC sends them with the transaction, which the
//! group runs only if they still hold. EXEC waits for the client's WATCH replies.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::forward::{encode, Retry, Target};
use crate::route::{forward, slot_of, start_read, start_write, Dispatched};
use crate::session::Session;
use crate::wire::pause::holds_under_write;
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

/// A client's watched keys, with the fingerprints their leader read. Shared with the
/// replies to its WATCHes, which fill it in.
#[derive(Default)]
pub struct Watched {
    slot: Option<u16>,
    keys: Vec<(Bytes, Bytes)>,
    /// WATCHes sent and not yet answered.
    pending: usize,
    /// Bumped by UNWATCH, EXEC, DISCARD and RESET: a WATCH answered after them is void.
    epoch: u64,
}

impl Watched {
    fn lock(w: &Mutex<Watched>) -> std::sync::MutexGuard<'_, Watched> {
        w.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets the watched keys (UNWATCH, EXEC, DISCARD, RESET), returning them.
pub fn unwatch(s: &Session) -> (Option<u16>, Vec<(Bytes, Bytes)>) {
    let mut w = Watched::lock(&s.watched);
    w.epoch += 1;
    w.pending = 0;
    (w.slot.take(), std::mem::take(&mut w.keys))
}

/// Whether `argv` is an EXEC that must wait for this client's WATCH replies.
pub fn waits_for_watch(s: &Session, argv: &[Bytes]) -> bool {
    argv.first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
        && Watched::lock(&s.watched).pending > 0
}

/// Whether a CLIENT PAUSE WRITE holds `argv`: a write, or, as in Redis, an EXEC whose
/// queue holds one.
pub fn held_by_write_pause(s: &Session, argv: &[Bytes]) -> bool {
    holds_under_write(argv)
        || (argv
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
            && s.multi
                .as_ref()
                .is_some_and(|q| q.argvs.iter().any(|a| holds_under_write(a))))
}

const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";
const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Keyless commands a node answers the same inside a transaction as outside.
const KEYLESS: [&str; 5] = ["ping", "echo", "select", "time", "unwatch"];

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
        return Some(match spec.name {
            "multi" => {
                s.multi = Some(Queue::default());
                Dispatched::Ready(Reply::ok())
            }
            "exec" => Dispatched::Ready(Reply::err("ERR EXEC without MULTI")),
            "discard" => Dispatched::Ready(Reply::err("ERR DISCARD without MULTI")),
            "watch" => watch(sh, s, argv),
            _ => {
                unwatch(s);
                Dispatched::Ready(Reply::ok())
            }
        });
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
            unwatch(s);
            Reply::ok()
        }
        "multi" => Reply::err("ERR MULTI calls can not be nested"),
        "watch" => Reply::err("ERR WATCH inside MULTI is not allowed"),
        name => match slot_of(Some(spec), argv) {
            Err(e) => return Some(fail(s, e)),
            Ok(None) if !KEYLESS.contains(&name) => return Some(fail(s, Reply::err(NOT_ALLOWED))),
            // Not a data command a node can run inside a log entry.
            Ok(_) if matches!(name, "once" | "migrate" | "txnwatch") => {
                return Some(fail(s, Reply::err(NOT_ALLOWED)))
            }
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

/// WATCH outside MULTI: the keys' fingerprints read at their leader, kept once answered.
fn watch(sh: &Arc<Shared>, s: &mut Session, argv: &[Bytes]) -> Dispatched {
    let slot = match slot_of(resolve(argv).ok(), argv) {
        Ok(Some(slot)) => slot,
        Ok(None) => return Dispatched::Ready(Reply::wrong_arity("watch")),
        Err(e) => return Dispatched::Ready(e),
    };
    let epoch = {
        let mut w = Watched::lock(&s.watched);
        if w.slot.is_some_and(|prev| prev != slot) {
            return Dispatched::Ready(Reply::err(CROSSSLOT));
        }
        w.slot = Some(slot);
        w.pending += 1;
        w.epoch
    };
    let mut req = Vec::with_capacity(argv.len());
    req.push(Bytes::from_static(b"TXNWATCH"));
    req.extend_from_slice(&argv[1..]);
    let call = start_read(sh, s, slot, &req);
    let (sh, watched) = (sh.clone(), s.watched.clone());
    let keys = argv[1..].to_vec();
    Dispatched::Pending(Box::pin(async move {
        let reply = sh.backends.finish(call).await;
        let mut w = Watched::lock(&watched);
        if w.epoch != epoch {
            // UNWATCH or EXEC came first: this WATCH is over.
            return Reply::ok();
        }
        w.pending -= 1;
        match reply {
            Reply::Array(fps) if fps.len() == keys.len() => {
                for (k, fp) in keys.into_iter().zip(fps) {
                    if let Reply::Bulk(fp) = fp {
                        w.keys.push((k, fp));
                    }
                }
                Reply::ok()
            }
            e if e.is_error() => e,
            _ => Reply::err("ERR unexpected reply from a node to TXNWATCH"),
        }
    }))
}

/// A command refused while queueing: its error now, EXECABORT at EXEC.
fn fail(s: &mut Session, e: Reply) -> Dispatched {
    if let Some(q) = s.multi.as_mut() {
        q.failed = true;
    }
    Dispatched::Ready(e)
}

/// EXEC: the queue (and what is watched) as one `TXN` to its slot's leader.
fn exec(sh: &Arc<Shared>, s: &mut Session) -> Dispatched {
    let q = s.multi.take().unwrap_or_default();
    let (watch_slot, watched) = unwatch(s);
    if q.failed {
        return Dispatched::Ready(Reply::err(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let slot = match (q.slot, watch_slot) {
        (Some(a), Some(b)) if a != b => return Dispatched::Ready(Reply::err(CROSSSLOT)),
        _ if q.crossslot => return Dispatched::Ready(Reply::err(CROSSSLOT)),
        (a, b) => a.or(b),
    };
    if q.argvs.is_empty() && watched.is_empty() {
        return Dispatched::Ready(Reply::Array(Vec::new()));
    }
    let mut txn = Vec::with_capacity(
        3 + 2 * watched.len() + q.argvs.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    txn.push(Bytes::from_static(b"TXN"));
    if !watched.is_empty() {
        txn.push(Bytes::from_static(b"WATCH"));
        txn.push(Bytes::from(watched.len().to_string()));
        for (k, fp) in watched {
            txn.push(k);
            txn.push(fp);
        }
    }
    for argv in q.argvs {
        txn.push(Bytes::from(argv.len().to_string()));
        txn.extend(argv);
    }
    match slot {
        Some(slot) => Dispatched::Sent(start_write(sh, s, slot, &txn)),
        // PING, ECHO …: any node answers them the same.
        None => forward(sh, s, Target::Any, encode(&txn), Retry::Read),
    }
}
