//! What the proxy does with each command, by the command table: answer it here (PING,
//! HELLO, CLIENT …), send it to the leader of its slot (stamped `ONCE client seq` when it
//! writes), split it per slot and merge the replies (MGET, MSET, DEL, UNLINK, EXISTS,
//! TOUCH), fan it out to every group and aggregate as one Redis would (DBSIZE, KEYS, SCAN,
//! RANDOMKEY, FLUSHALL), or pass it to any node (CLUSTER, COMMAND, CONFIG, TIME …).
//!
//! A split command is not atomic across slots: each slot's part commits on its own.
//! Commands that must be atomic (MSETNX, RENAME, COPY …) need one slot, as at a node.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::forward::{encode, Call, Retry, Target};
use crate::session::Session;
use crate::wire::table::{key_indices, migrate_keys, resolve, CommandSpec};
use crate::wire::{key_slot, slowlog, Reply};
use crate::Shared;

pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// A command's reply: known now, or on its way.
pub enum Dispatched {
    Ready(Reply),
    Pending(ReplyFuture),
    /// One request, sent: its first answer is most likely its reply (see
    /// [`Call::poll_first`]), so it gets no future until it needs one.
    Sent(Call),
}

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Routes one request. Runs synchronously up to the point where its requests are sent,
/// so a client's requests leave in the order it sent them.
pub fn dispatch(sh: &Arc<Shared>, s: &mut Session, argv: &[Bytes]) -> Dispatched {
    if let Some(d) = crate::multi::intercept(sh, s, argv) {
        return d;
    }
    let spec = match resolve(argv) {
        Ok(spec) => spec,
        Err(e) => {
            // Redis records a command refused for its arity too.
            s.last_cmd = crate::wire::clients::full_name(argv);
            return Dispatched::Ready(e);
        }
    };
    s.last_cmd = Some(spec.name);
    use Dispatched::Ready;
    match spec.name {
        "ping" => Ready(match &argv[1..] {
            [] => Reply::status("PONG"),
            [m] => Reply::Bulk(m.clone()),
            _ => Reply::wrong_arity("ping"),
        }),
        "echo" => Ready(Reply::Bulk(argv[1].clone())),
        "quit" => {
            s.quit = true;
            Ready(Reply::ok())
        }
        "hello" => Ready(crate::session::hello(s, argv)),
        "monitor" => {
            s.monitor = true;
            Ready(Reply::ok())
        }
        "reset" => Ready(crate::session::reset(s)),
        "shutdown" => Ready(crate::wire::shutdown::command(argv).unwrap_or_else(|| {
            s.quit = true;
            s.reply_mode.mute();
            Reply::ok()
        })),
        "asking" | "readonly" | "readwrite" => Ready(Reply::ok()),
        n if n.starts_with("client|") => Ready(crate::session::client(s, sh, argv)),
        "info" => crate::fanout::info(sh, s, argv),
        n if n.starts_with("slowlog|") => Ready(sh.clients.slowlog.command(argv)),
        n if n.starts_with("acl|") => Ready(crate::wire::acl::command(argv)),
        // Forwarded to a node, and the proxy's slow log set as it was there.
        "config|set" => config_set(sh, s, argv),
        n if n.starts_with("latency|") => {
            Ready(crate::wire::command_stats::latency(argv, &sh.clients.stats))
        }
        // The proxy's own counters, which its INFO shows.
        "config|resetstat" => {
            sh.clients.reset_stats();
            Ready(Reply::ok())
        }
        "save" => crate::save::save(sh, s),
        "dbsize" | "keys" | "randomkey" | "flushall" | "flushdb" | "bgsave" | "lastsave" => {
            crate::fanout::fan_out(sh, s, spec.name, argv.to_vec())
        }
        "scan" => crate::fanout::scan(sh, s, argv.to_vec()),
        "wait" => crate::wait::wait(sh, s, argv),
        "mget" | "mset" | "del" | "unlink" | "exists" | "touch" => {
            split(sh, s, spec, argv.to_vec())
        }
        "pfcount" if argv.len() > 2 => pfcount_union(sh, s, argv),
        // Run by the keys' leader, which talks to the target.
        "migrate" => match slot_of(Some(spec), argv) {
            Ok(Some(slot)) => alone(sh, s, slot, argv),
            // No key (an option error, or KEYS with none): any node answers it.
            Ok(None) => forward(sh, s, Target::Any, encode(argv), Retry::Unsafe),
            Err(e) => Ready(e),
        },
        "once" => match slot_of(spec_of(&argv[3..]), &argv[3..]) {
            Ok(Some(slot)) => forward(sh, s, Target::Slot(slot), encode(argv), Retry::Unsafe),
            Ok(None) => Ready(Reply::err("ERR ONCE only wraps data commands")),
            Err(e) => Ready(e),
        },
        _ => match slot_of(Some(spec), argv) {
            Err(e) => Ready(e),
            Ok(Some(slot)) if spec.has_flag("write") => {
                Dispatched::Sent(start_write(sh, s, slot, argv))
            }
            Ok(Some(slot)) => Dispatched::Sent(start_read(sh, s, slot, argv)),
            Ok(None) => {
                let retry = if spec.has_flag("write") || spec.has_flag("admin") {
                    Retry::Unsafe
                } else {
                    Retry::Read
                };
                forward(sh, s, Target::Any, encode(argv), retry)
            }
        },
    }
}

/// Whether the command reads or writes every group (DBSIZE, KEYS, RANDOMKEY, FLUSHALL,
/// FLUSHDB, SCAN, and WAIT, which must follow the writes before it): no slot orders it
/// among the client's other requests, so it must run alone (see `client::serve`). By name
/// only: it is asked of every request.
pub fn orders_all(argv: &[Bytes]) -> bool {
    const NAMES: [&[u8]; 7] = [
        b"dbsize",
        b"keys",
        b"randomkey",
        b"flushall",
        b"flushdb",
        b"scan",
        b"wait",
    ];
    argv.first()
        .is_some_and(|n| NAMES.iter().any(|m| n.eq_ignore_ascii_case(m)))
}

fn spec_of(argv: &[Bytes]) -> Option<&'static CommandSpec> {
    resolve(argv).ok()
}

/// The one slot of a command's keys; CROSSSLOT if they differ.
pub(crate) fn slot_of(
    spec: Option<&'static CommandSpec>,
    argv: &[Bytes],
) -> Result<Option<u16>, Reply> {
    let Some(spec) = spec else { return Ok(None) };
    let mut slot = None;
    // MIGRATE's keys are where its options say; the rest by the table.
    let migrate = (spec.name == "migrate").then(|| migrate_keys(argv).unwrap_or_default());
    let by_table = migrate.is_none().then(|| key_indices(spec, argv.len()));
    for i in migrate
        .into_iter()
        .flatten()
        .chain(by_table.into_iter().flatten())
    {
        let k = key_slot(&argv[i]);
        match slot {
            None => slot = Some(k),
            Some(p) if p != k => return Err(Reply::err(CROSSSLOT)),
            _ => {}
        }
    }
    Ok(slot)
}

/// Sends one request and waits for its reply (with retries) in the background.
pub fn forward(
    sh: &Arc<Shared>,
    s: &Session,
    target: Target,
    req: Bytes,
    retry: Retry,
) -> Dispatched {
    pending(sh, sh.backends.start(target, req, s.proto, s.lane, retry))
}

/// MIGRATE goes to its slot's leader on a connection of its own: the node runs it as
/// Redis does, holding its connection until the target has answered, and on a pooled
/// connection every other client's replies would wait behind it. Not stamped (it is not
/// one logged write), and never sent again once it may have run; a MOVED, TRYAGAIN or
/// CLUSTERDOWN, answered before it ran, sends it again within the retry window.
fn alone(sh: &Arc<Shared>, s: &Session, slot: u16, argv: &[Bytes]) -> Dispatched {
    let (sh, proto, req) = (sh.clone(), s.proto, encode(argv));
    Dispatched::Pending(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + sh.backends.retry_window;
        let mut backoff = std::time::Duration::from_millis(5);
        loop {
            let reply = match sh.backends.topo.addr(slot) {
                Some(addr) => {
                    let conn = crate::backend::Backend::connect(addr, proto);
                    match conn.send(req.clone()).await {
                        Ok(Ok(r)) => r,
                        _ => {
                            return Reply::err(
                                "ERR connection to the slot's leader lost during MIGRATE: its outcome is unknown",
                            )
                        }
                    }
                }
                None => Reply::err("CLUSTERDOWN Hash slot not served"),
            };
            let refused = match &reply {
                Reply::Error(e) if e.starts_with("MOVED ") => {
                    if let Some(to) = e.split(' ').nth(2) {
                        sh.backends.topo.moved(slot, to);
                    }
                    true
                }
                Reply::Error(e) => e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN"),
                _ => false,
            };
            if !refused || tokio::time::Instant::now() >= deadline {
                return reply;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_millis(200));
        }
    }))
}

/// CONFIG SET: the node it goes to answers, and the slow log parameters set there are set
/// at the proxy too, whose own slow log SLOWLOG reads.
fn config_set(sh: &Arc<Shared>, s: &Session, argv: &[Bytes]) -> Dispatched {
    let sent = forward(sh, s, Target::Any, encode(argv), Retry::Unsafe);
    let changes: Vec<(String, i64)> = argv[2..]
        .chunks(2)
        .filter_map(|pair| {
            let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
            let value = slowlog::parse_config(&name, pair.get(1)?)?.ok()?;
            Some((name, value))
        })
        .collect();
    let Dispatched::Pending(reply) = sent else {
        return sent;
    };
    if changes.is_empty() {
        return Dispatched::Pending(reply);
    }
    let sh = sh.clone();
    Dispatched::Pending(Box::pin(async move {
        let reply = reply.await;
        if reply == Reply::ok() {
            let log = &sh.clients.slowlog;
            for (name, value) in changes {
                match name.as_str() {
                    "slowlog-max-len" => log.set_max_len(value),
                    _ => log.set_slower_than_us(value),
                }
            }
        }
        reply
    }))
}

/// Sends a write stamped for exactly-once retries to the owner of `slot`.
pub(crate) fn start_write(sh: &Shared, s: &mut Session, slot: u16, argv: &[Bytes]) -> Call {
    let stamp = s.stamp(slot);
    let conn = (s.proto, s.lane);
    sh.backends
        .start_once(&mut s.routes, slot, (s.once_client, stamp), argv, conn)
}

/// Sends a read to the owner of `slot`; one behind a write of this client to the slot
/// still unanswered is stamped to see it.
pub(crate) fn start_read(sh: &Shared, s: &mut Session, slot: u16, argv: &[Bytes]) -> Call {
    let conn = (s.proto, s.lane);
    match s.read_stamp(slot) {
        Some(stamp) => {
            sh.backends
                .start_once(&mut s.routes, slot, (s.once_client, stamp), argv, conn)
        }
        None => sh
            .backends
            .start_slot(&mut s.routes, slot, encode(argv), conn, Retry::Read),
    }
}

/// Waits for `call`'s reply (with retries) in the background.
fn pending(sh: &Arc<Shared>, call: Call) -> Dispatched {
    let sh = sh.clone();
    Dispatched::Pending(Box::pin(async move { sh.backends.finish(call).await }))
}

/// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH: one request per slot, replies merged in order.
fn split(
    sh: &Arc<Shared>,
    s: &mut Session,
    spec: &'static CommandSpec,
    argv: Vec<Bytes>,
) -> Dispatched {
    let step = if spec.name == "mset" { 2 } else { 1 };
    if spec.name == "mset" && argv.len().is_multiple_of(2) {
        return Dispatched::Ready(Reply::wrong_arity("mset"));
    }
    // (slot, argv indices of its keys) in order of first appearance.
    let mut parts: Vec<(u16, Vec<usize>)> = Vec::new();
    let mut at: HashMap<u16, usize> = HashMap::new();
    for i in (1..argv.len()).step_by(step) {
        let slot = key_slot(&argv[i]);
        let n = *at.entry(slot).or_insert_with(|| {
            parts.push((slot, Vec::new()));
            parts.len() - 1
        });
        parts[n].1.push(i);
    }
    let write = spec.has_flag("write");
    let send = |s: &mut Session, slot: u16, sub: Vec<Bytes>| {
        if write {
            return start_write(sh, s, slot, &sub);
        }
        start_read(sh, s, slot, &sub)
    };
    if parts.len() == 1 {
        let slot = parts[0].0;
        return pending(sh, send(s, slot, argv));
    }
    let calls: Vec<_> = parts
        .iter()
        .map(|(slot, idx)| {
            let mut sub = Vec::with_capacity(idx.len() * step + 1);
            sub.push(argv[0].clone());
            for &i in idx {
                sub.extend_from_slice(&argv[i..i + step]);
            }
            send(s, *slot, sub)
        })
        .collect();
    let sh = sh.clone();
    let name = spec.name;
    let keys = (argv.len() - 1) / step;
    Dispatched::Pending(Box::pin(async move {
        let mut replies = Vec::with_capacity(calls.len());
        for c in calls {
            replies.push(sh.backends.finish(c).await);
        }
        merge(name, keys, &parts, replies)
    }))
}

/// PFCOUNT of keys in several slots counts a union that no one node holds: the sketches
/// are read per slot with MGET (each a linearizable read, together not atomic, as a split
/// MGET) and their union counted here. Keys of one slot go to their node as they are.
fn pfcount_union(sh: &Arc<Shared>, s: &mut Session, argv: &[Bytes]) -> Dispatched {
    let slot = key_slot(&argv[1]);
    if argv[2..].iter().all(|k| key_slot(k) == slot) {
        return Dispatched::Sent(start_read(sh, s, slot, argv));
    }
    let mut mget = argv.to_vec();
    mget[0] = Bytes::from_static(b"MGET");
    let Some(spec) = crate::wire::table::lookup(b"mget") else {
        return Dispatched::Ready(Reply::err("ERR unknown command 'mget'"));
    };
    let count = |r: Reply| match r {
        Reply::Array(values) => {
            let values = values.iter().map(|v| match v {
                Reply::Bulk(b) => Some(&b[..]),
                _ => None,
            });
            match crate::hll::union_count(values) {
                Ok(n) => Reply::Int(n as i64),
                Err(e) => Reply::err(e),
            }
        }
        other => other,
    };
    match split(sh, s, spec, mget) {
        Dispatched::Pending(f) => Dispatched::Pending(Box::pin(async move { count(f.await) })),
        Dispatched::Ready(r) => Dispatched::Ready(count(r)),
        sent => sent,
    }
}

/// One reply from the parts' replies, as the unsplit command would have answered.
fn merge(name: &str, keys: usize, parts: &[(u16, Vec<usize>)], replies: Vec<Reply>) -> Reply {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    match name {
        "mget" => {
            let mut out = vec![Reply::Null; keys];
            for ((_, idx), r) in parts.iter().zip(replies) {
                let Reply::Array(vals) = r else {
                    return Reply::err("ERR unexpected reply from a node to MGET");
                };
                for (&i, v) in idx.iter().zip(vals) {
                    out[i - 1] = v;
                }
            }
            Reply::Array(out)
        }
        "mset" => Reply::ok(),
        _ => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_puts_values_back_in_key_order() {
        let parts = vec![(1, vec![1, 3]), (2, vec![2])];
        let r = merge(
            "mget",
            3,
            &parts,
            vec![
                Reply::Array(vec![Reply::bulk_str("a"), Reply::Null]),
                Reply::Array(vec![Reply::bulk_str("b")]),
            ],
        );
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::bulk_str("a"),
                Reply::bulk_str("b"),
                Reply::Null
            ])
        );
        assert_eq!(
            merge("del", 3, &parts, vec![Reply::Int(2), Reply::Int(1)]),
            Reply::Int(3)
        );
        let e = Reply::err("ERR key is too long");
        assert_eq!(merge("mset", 3, &parts, vec![Reply::ok(), e.clone()]), e);
    }
}
