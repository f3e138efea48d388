//! MIGRATE: moves keys to another server that speaks Redis (a redis-server, a Redis
//! Cluster node, a redraft node) as Redis does: each key's DUMP goes to the target as
//! `RESTORE` (`RESTORE-ASKING` from a cluster node) with its remaining TTL, after `AUTH`
//! and `SELECT`, and then, unless COPY, the keys are deleted here.
//!
//! Redis blocks while it migrates, so nothing changes a key between its DUMP and its
//! DEL. Here writes go on, so the delete is conditional: one transaction per key that
//! watches the fingerprint read with the DUMP (see `cmd::transaction`). A key written
//! meanwhile is kept here, and MIGRATE says so in its error: the write is never lost.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::del::Del;
use crate::cmd::args::parse_i64;
use crate::cmd::transaction::{fingerprint, Exec, Item};
use crate::cmd::WriteCmd;
use crate::db::{rdb, Data, DbRead};
use crate::node::NodeShared;
use crate::resp::route;
use crate::shard::now_ms;
use redraft_proxy::wire::decode::decode_reply;
use redraft_proxy::wire::table::migrate_keys;
use redraft_proxy::wire::{key_slot, Reply};

/// A parsed MIGRATE.
#[derive(Debug, PartialEq)]
struct Migrate {
    addr: String,
    keys: Vec<Bytes>,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// AUTH's password, or AUTH2's user and password.
    auth: Vec<Bytes>,
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key [key ...]]`, checked in Redis's order.
fn parse(argv: &[Bytes]) -> Result<Migrate, Reply> {
    let (mut copy, mut replace, mut auth) = (false, false, Vec::new());
    let mut j = 6;
    while j < argv.len() {
        let a = &argv[j];
        let more = argv.len() - 1 - j;
        if a.eq_ignore_ascii_case(b"copy") {
            copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") && more >= 1 {
            auth = vec![argv[j + 1].clone()];
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") && more >= 2 {
            auth = argv[j + 1..j + 3].to_vec();
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !argv[3].is_empty() {
                return Err(Reply::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            break;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    let timeout = parse_i64(&argv[5])?;
    let db = parse_i64(&argv[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout as u64 };
    let keys = migrate_keys(argv).unwrap_or_default();
    Ok(Migrate {
        addr: format!(
            "{}:{}",
            String::from_utf8_lossy(&argv[1]),
            String::from_utf8_lossy(&argv[2])
        ),
        keys: argv[keys].to_vec(),
        db,
        timeout: Duration::from_millis(timeout),
        copy,
        replace,
        auth,
    })
}

/// A key to move: its name, DUMP payload, TTL in ms (0: none) and fingerprint.
struct Found {
    key: Bytes,
    payload: Bytes,
    ttl: u64,
    fingerprint: Bytes,
}

pub async fn execute(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    let m = match parse(argv) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let cluster_mode = node.config.cluster_mode();
    let slot = match crate::cmd::command_slot(argv) {
        Err(crossslot) if cluster_mode => return crossslot,
        Ok(Some(slot)) => slot,
        _ => m.keys.first().map(|k| key_slot(k)).unwrap_or(0),
    };
    if let Some(r) = cluster_mode.then(|| route::refusal(node, slot)).flatten() {
        return r;
    }
    let found = match read(node, &m.keys, slot, cluster_mode).await {
        Ok(f) => f,
        Err(e) => return e,
    };
    if found.is_empty() {
        return Reply::status("NOKEY");
    }
    let outcomes = match send(&m, &found, cluster_mode).await {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut moved = Vec::new();
    let mut first_error = None;
    for (f, outcome) in found.iter().zip(outcomes) {
        match outcome {
            Ok(()) => moved.push(f),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let kept = if m.copy {
        0
    } else {
        delete_unchanged(node, &moved, slot).await
    };
    match (first_error, kept) {
        (Some(e), _) => Reply::err(format!("ERR Target instance replied with error: {e}")),
        (None, 0) => Reply::ok(),
        (None, n) => Reply::err(format!(
            "ERR MIGRATE copied {n} key(s) that were written here meanwhile: they are kept here too, with the newer value"
        )),
    }
}

/// The keys' payloads, TTLs and fingerprints, read behind a read barrier (expired keys
/// are missing, as in Redis).
async fn read(
    node: &Arc<NodeShared>,
    keys: &[Bytes],
    slot: u16,
    cluster_mode: bool,
) -> Result<Vec<Found>, Reply> {
    let reader = node.group.read().await.map_err(|e| e.to_reply(slot))?;
    let now = now_ms().max(reader.clock());
    let view = reader.view();
    if let Some(r) = cluster_mode
        .then(|| route::refusal_at(node, &view.cluster(), slot))
        .flatten()
    {
        return Err(r);
    }
    let mut found = Vec::new();
    for k in keys {
        let Some(v) = view.get(k, now) else { continue };
        let Data::Str(data) = &v.data;
        found.push(Found {
            key: k.clone(),
            payload: Bytes::from(rdb::dump(data)),
            ttl: v.expire_at.map_or(0, |t| t.saturating_sub(now).max(1)),
            fingerprint: fingerprint(Some(&v)),
        });
    }
    Ok(found)
}

/// Sends AUTH, SELECT and a RESTORE per key in one write, then reads the replies: an
/// AUTH or SELECT error, or a lost or slow target, fails the whole; each RESTORE's own
/// outcome otherwise.
async fn send(
    m: &Migrate,
    found: &[Found],
    cluster_mode: bool,
) -> Result<Vec<Result<(), String>>, Reply> {
    let writing = || Reply::err("IOERR error or timeout writing to target instance");
    let mut req = BytesMut::new();
    let mut put = |argv: &[Bytes]| req.extend_from_slice(&redraft_proxy::forward::encode(argv));
    if !m.auth.is_empty() {
        let mut a = vec![Bytes::from_static(b"AUTH")];
        a.extend(m.auth.iter().cloned());
        put(&a);
    }
    put(&[Bytes::from_static(b"SELECT"), Bytes::from(m.db.to_string())]);
    let restore: &'static [u8] = if cluster_mode {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    for f in found {
        let mut a = vec![
            Bytes::from_static(restore),
            f.key.clone(),
            Bytes::from(f.ttl.to_string()),
            f.payload.clone(),
        ];
        if m.replace {
            a.push(Bytes::from_static(b"REPLACE"));
        }
        put(&a);
    }
    let mut stream = match tokio::time::timeout(m.timeout, TcpStream::connect(&m.addr)).await {
        Ok(Ok(s)) => s,
        _ => return Err(writing()),
    };
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(m.timeout, stream.write_all(&req)).await {
        Ok(Ok(())) => {}
        _ => return Err(writing()),
    }
    let mut buf = BytesMut::new();
    let target_error =
        |e: String| Reply::err(format!("ERR Target instance replied with error: {e}"));
    for _ in 0..1 + usize::from(!m.auth.is_empty()) {
        if let Reply::Error(e) = next_reply(&mut stream, &mut buf, m.timeout).await? {
            return Err(target_error(e));
        }
    }
    let mut outcomes = Vec::with_capacity(found.len());
    for _ in found {
        outcomes.push(match next_reply(&mut stream, &mut buf, m.timeout).await? {
            Reply::Error(e) => Err(e),
            _ => Ok(()),
        });
    }
    Ok(outcomes)
}

/// The target's next reply; an IOERR if it closes, sends garbage or is slower than
/// `timeout`.
async fn next_reply(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Reply, Reply> {
    let reading = || Reply::err("IOERR error or timeout reading from target instance");
    loop {
        match decode_reply(buf) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(_) => return Err(reading()),
        }
        match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Err(reading()),
        }
    }
}

/// Deletes each moved key that still holds what was sent (a transaction per key watching
/// its fingerprint); the number kept because they were written meanwhile.
async fn delete_unchanged(node: &Arc<NodeShared>, moved: &[&Found], slot: u16) -> usize {
    let pending: Vec<_> = moved
        .iter()
        .map(|f| {
            let exec = Exec {
                slot: Some(slot),
                watch: vec![(f.key.clone(), f.fingerprint.clone())],
                items: vec![Item::Write(WriteCmd::Del(Del {
                    keys: vec![f.key.clone()],
                }))],
            };
            node.group.submit(WriteCmd::Exec(exec), f.key.len() + 64)
        })
        .collect();
    let mut kept = 0;
    for rx in pending {
        if !matches!(rx.await, Ok(Ok(Reply::Array(_)))) {
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testutil::argv;

    #[test]
    fn options_are_checked_in_redis_order() {
        let p = |a: &[&str]| parse(&argv(a));
        let base = ["MIGRATE", "h", "6379", "k", "0", "100"];
        let with = |extra: &[&str]| {
            let mut a = base.to_vec();
            a.extend_from_slice(extra);
            p(&a)
        };
        let m = with(&["COPY", "REPLACE", "AUTH2", "u", "pw"]).unwrap();
        assert!(m.copy && m.replace);
        assert_eq!(
            (m.addr.as_str(), m.auth.len(), m.keys.len()),
            ("h:6379", 2, 1)
        );
        assert_eq!(with(&["BOGUS"]).unwrap_err(), Reply::syntax_error());
        assert_eq!(with(&["AUTH"]).unwrap_err(), Reply::syntax_error());
        assert_eq!(with(&["AUTH2", "u"]).unwrap_err(), Reply::syntax_error());
        assert!(matches!(with(&["KEYS", "a"]), Err(Reply::Error(e)) if e.contains("empty string")));
        // An option error comes before the integer checks.
        let bad = p(&["MIGRATE", "h", "1", "k", "x", "y", "BOGUS"]).unwrap_err();
        assert_eq!(bad, Reply::syntax_error());
        let bad = p(&["MIGRATE", "h", "1", "k", "x", "100"]).unwrap_err();
        assert_eq!(bad, Reply::not_integer());
        let m = p(&[
            "MIGRATE", "h", "1", "", "0", "-5", "AUTH", "keys", "KEYS", "a", "b",
        ]);
        let m = m.unwrap();
        assert_eq!(m.keys, argv(&["a", "b"]));
        assert_eq!(
            m.timeout,
            Duration::from_millis(1000),
            "a timeout ≤ 0 is 1 s"
        );
        assert_eq!(m.auth, argv(&["keys"]));
    }
}
