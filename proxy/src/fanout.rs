//! Keyless commands over the whole keyspace, answered as one Redis would: DBSIZE sums,
//! KEYS merges, RANDOMKEY picks from whichever groups have keys, FLUSHALL/FLUSHDB/BGSAVE
//! succeed only if every group did (each group's leader saves its replica; SAVE: `save`),
//! LASTSAVE is the oldest leader's, and SCAN walks the groups in slot order.
//!
//! Each group is reached through a slot it owns (the first of a run), so a leader change
//! on the way is followed like any MOVED. Results taken while slots move can count a key
//! twice or miss it (the groups are asked one after another, not at one instant), just as
//! a SCAN of a changing Redis may.

use std::sync::Arc;

use bytes::Bytes;

use crate::forward::{encode, Retry, Target};
use crate::route::Dispatched;
use crate::session::{random_u64, Session};
use crate::wire::hello::REDIS_VERSION;
use crate::wire::{key_slot, Reply, SLOTS};
use crate::Shared;

/// Bits of a SCAN cursor below the slot (the node's cursor is `slot << 50 | hash bits`).
const SLOT_SHIFT: u32 = 50;

/// One slot per group that owns slots: the first slot of each group's first run.
pub(crate) fn group_slots(sh: &Shared) -> Vec<u16> {
    let mut seen: Vec<Arc<str>> = Vec::new();
    let mut out = Vec::new();
    let mut slot = 0usize;
    while slot < SLOTS {
        match sh.backends.topo.run_from(slot as u16) {
            Some((addr, end)) => {
                if !seen.iter().any(|a| **a == *addr) {
                    seen.push(addr);
                    out.push(slot as u16);
                }
                slot = usize::from(end) + 1;
            }
            None => slot += 1,
        }
    }
    out
}

pub fn fan_out(sh: &Arc<Shared>, s: &Session, name: &'static str, argv: Vec<Bytes>) -> Dispatched {
    let slots = group_slots(sh);
    if slots.is_empty() {
        return Dispatched::Ready(Reply::err("CLUSTERDOWN Hash slot not served"));
    }
    let req = encode(&argv);
    let calls: Vec<_> = slots
        .iter()
        .map(|slot| {
            sh.backends.start(
                Target::Slot(*slot),
                req.clone(),
                s.proto,
                s.lane,
                Retry::Read,
            )
        })
        .collect();
    let sh = sh.clone();
    Dispatched::Pending(Box::pin(async move {
        let mut replies = Vec::with_capacity(calls.len());
        for c in calls {
            replies.push(sh.backends.finish(c).await);
        }
        aggregate(name, replies)
    }))
}

fn aggregate(name: &str, replies: Vec<Reply>) -> Reply {
    if let Some(e) = replies.iter().find(|r| r.is_error()) {
        return e.clone();
    }
    match name {
        "dbsize" => Reply::Int(
            replies
                .iter()
                .map(|r| if let Reply::Int(n) = r { *n } else { 0 })
                .sum(),
        ),
        "keys" => Reply::Array(
            replies
                .into_iter()
                .flat_map(|r| match r {
                    Reply::Array(v) | Reply::Set(v) => v,
                    _ => Vec::new(),
                })
                .collect(),
        ),
        "randomkey" => {
            let found: Vec<Reply> = replies.into_iter().filter(|r| *r != Reply::Null).collect();
            if found.is_empty() {
                Reply::Null
            } else {
                let pick = (random_u64() as usize) % found.len();
                found.into_iter().nth(pick).unwrap_or(Reply::Null)
            }
        }
        // The oldest group's snapshot.
        "lastsave" => replies
            .iter()
            .filter_map(|r| {
                if let Reply::Int(n) = r {
                    Some(*n)
                } else {
                    None
                }
            })
            .min()
            .map_or(Reply::Null, Reply::Int),
        "bgsave" => Reply::status("Background saving started"),
        // flushall, flushdb: every group said OK.
        _ => Reply::ok(),
    }
}

/// SCAN through the proxy. The cursor is the node's own (`slot << 50 | hash bits`), so it
/// names a slot: the proxy asks the group that leads that slot's run, keeps the keys of
/// that run, and when the node's cursor leaves the run continues at the next run's first
/// slot. A full iteration visits every slot once, in order; 0 ends it, as in Redis.
pub fn scan(sh: &Arc<Shared>, s: &Session, argv: Vec<Bytes>) -> Dispatched {
    let Some(cursor) = crate::wire::request::scan_cursor(&argv[1]) else {
        return Dispatched::Ready(Reply::err("ERR invalid cursor"));
    };
    let mut slot = (cursor >> SLOT_SHIFT) as usize;
    let mut cursor = cursor;
    // Skip unassigned slots.
    let (first, end) = loop {
        if slot >= SLOTS {
            return Dispatched::Ready(Reply::Array(vec![
                Reply::bulk_str("0"),
                Reply::Array(vec![]),
            ]));
        }
        match sh.backends.topo.run_from(slot as u16) {
            Some((_, end)) => break (slot as u16, end),
            None => {
                slot += 1;
                cursor = (slot as u64) << SLOT_SHIFT;
            }
        }
    };
    let mut sub = argv.clone();
    sub[1] = Bytes::from(cursor.to_string());
    let call = sh.backends.start(
        Target::Slot(first),
        encode(&sub),
        s.proto,
        s.lane,
        Retry::Read,
    );
    let sh = sh.clone();
    Dispatched::Pending(Box::pin(async move {
        let reply = sh.backends.finish(call).await;
        let Reply::Array(mut parts) = reply else {
            return reply;
        };
        if parts.len() != 2 {
            return Reply::err("ERR unexpected reply from a node to SCAN");
        }
        let keys = match parts.pop() {
            Some(Reply::Array(k)) => k,
            _ => return Reply::err("ERR unexpected reply from a node to SCAN"),
        };
        let next = match parts.pop() {
            Some(Reply::Bulk(b)) => crate::wire::request::scan_cursor(&b).unwrap_or(0),
            _ => 0,
        };
        let keys: Vec<Reply> = keys
            .into_iter()
            .filter(|k| match k {
                Reply::Bulk(b) => key_slot(b) <= end,
                _ => false,
            })
            .collect();
        let next = if next != 0 && (next >> SLOT_SHIFT) <= u64::from(end) {
            next
        } else if usize::from(end) + 1 >= SLOTS {
            0
        } else {
            u64::from(end + 1) << SLOT_SHIFT
        };
        Reply::Array(vec![
            Reply::Bulk(Bytes::from(next.to_string())),
            Reply::Array(keys),
        ])
    }))
}

/// INFO at the proxy: the proxy's own server, clients, memory and stats (what
/// `redis-cli --stat` reads), the keyspace summed over the groups.
pub fn info(sh: &Arc<Shared>, s: &Session, argv: &[Bytes]) -> Dispatched {
    let want = |section: &str| {
        argv.len() == 1
            || argv[1..].iter().any(|a| {
                a.eq_ignore_ascii_case(section.as_bytes())
                    || a.eq_ignore_ascii_case(b"all")
                    || a.eq_ignore_ascii_case(b"everything")
                    || a.eq_ignore_ascii_case(b"default")
            })
    };
    let mut text = String::new();
    if want("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nredraft_role:proxy\r\nredraft_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            sh.port,
            sh.started.elapsed().as_secs(),
        ));
    }
    if want("clients") {
        crate::wire::info::clients(&mut text, &sh.clients, sh.maxclients);
        text.push_str("\r\n");
    }
    if want("memory") {
        crate::wire::info::memory(&mut text);
        text.push_str("\r\n");
    }
    if want("stats") {
        crate::wire::info::stats(&mut text, &sh.clients);
        text.push_str("\r\n");
    }
    if want("cpu") {
        crate::wire::info::cpu(&mut text);
        text.push_str("\r\n");
    }
    // Not in INFO's default: only asked for by name, `all` or `everything`.
    let asked = |section: &str| {
        argv[1..].iter().any(|a| {
            a.eq_ignore_ascii_case(section.as_bytes())
                || a.eq_ignore_ascii_case(b"all")
                || a.eq_ignore_ascii_case(b"everything")
        })
    };
    let stats = &sh.clients.stats;
    if asked("commandstats") {
        stats.commandstats(&mut text);
        text.push_str("\r\n");
    }
    if want("errorstats") {
        stats.errorstats(&mut text);
        text.push_str("\r\n");
    }
    if asked("latencystats") {
        stats.latencystats(&mut text);
        text.push_str("\r\n");
    }
    if want("cluster") {
        text.push_str(&format!(
            "# Cluster\r\ncluster_enabled:0\r\nredraft_config:{}\r\nredraft_groups:{}\r\n\r\n",
            sh.backends.topo.epoch(),
            group_slots(sh).len()
        ));
    }
    if !want("keyspace") {
        return Dispatched::Ready(Reply::Verbatim(Bytes::from(
            text.trim_end().to_owned() + "\r\n",
        )));
    }
    let dbsize = fan_out(sh, s, "dbsize", vec![Bytes::from_static(b"DBSIZE")]);
    let sh = sh.clone();
    Dispatched::Pending(Box::pin(async move {
        let n = match dbsize {
            Dispatched::Ready(r) => r,
            Dispatched::Pending(f) => f.await,
            Dispatched::Sent(c) => sh.backends.finish(c).await,
        };
        let n = if let Reply::Int(n) = n { n } else { 0 };
        text.push_str("# Keyspace\r\n");
        if n > 0 {
            text.push_str(&format!("db0:keys={n},expires=0,avg_ttl=0\r\n"));
        }
        Reply::Verbatim(Bytes::from(text))
    }))
}
