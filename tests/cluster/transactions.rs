//! MULTI/EXEC through the proxy and at a node: a transaction runs whole (no other client's
//! command between its commands), errors behave as in Redis (a queued command refused
//! discards all, a failing one does not roll back the rest), its keys need one slot, and a
//! transaction retried across a leader kill is applied exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;

use redraft::raft::NodeId;

use crate::fixture::TestCluster;
use crate::proxy::{client, start};
use crate::raw::Raw;

/// The leader of the group that owns `key`'s slot (a MOVED from any node names it).
pub(crate) async fn owner_of(c: &TestCluster, key: &str) -> Raw {
    let first = c.leader_of(c.data_gids()[0]).await;
    let mut addr = c.peers[&first].client_addr();
    loop {
        let mut raw = Raw::connect(&addr).await;
        let r = raw.call(&format!("GET {key}")).await;
        match r.strip_prefix("-MOVED ") {
            Some(m) => addr = m.split_whitespace().nth(1).unwrap().to_string(),
            None => return raw,
        }
    }
}

/// The node that leads `key`'s group.
pub(crate) async fn owner_id(c: &TestCluster, key: &str) -> NodeId {
    let port = owner_of(c, key).await.stream.peer_addr().unwrap().port();
    *c.peers
        .iter()
        .find(|(_, a)| a.client_port == port)
        .expect("a node at that port")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_whole_through_the_proxy_and_at_the_owning_node() {
    let (c, proxy) = start().await;

    // Writers move two counters together; readers and the writers' own replies must never
    // see them apart.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut con = client(&proxy).await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let (a, b): (i64, i64) = redis::pipe()
                    .atomic()
                    .incr("{t}a", 1)
                    .incr("{t}b", 2)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                assert_eq!(b, 2 * a, "another transaction ran between INCR and INCR");
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut con = client(&proxy).await;
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < 400 {
                let (a, b): (Option<i64>, Option<i64>) = redis::pipe()
                    .atomic()
                    .get("{t}a")
                    .get("{t}b")
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let (a, b) = (a.unwrap_or(0), b.unwrap_or(0));
                assert_eq!(b, 2 * a, "a transaction seen half applied");
                seen = a;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for r in readers {
        r.await.unwrap();
    }
    let mut con = client(&proxy).await;
    let a: i64 = con.get("{t}a").await.unwrap();
    assert_eq!(a, 400, "every transaction applied once");

    // Redis's rules, byte for byte, at the proxy and at the node that owns the slot.
    let mut at_proxy = Raw::connect(&proxy.addr.to_string()).await;
    let mut at_node = owner_of(&c, "{r}").await;
    for (raw, tag) in [(&mut at_proxy, "{r}p"), (&mut at_node, "{r}n")] {
        let calls = [
            ("EXEC".to_string(), "-ERR EXEC without MULTI\r\n"),
            ("DISCARD".into(), "-ERR DISCARD without MULTI\r\n"),
            ("MULTI".into(), "+OK\r\n"),
            ("MULTI".into(), "-ERR MULTI calls can not be nested\r\n"),
            (format!("SET {tag}s foo"), "+QUEUED\r\n"),
            (format!("INCR {tag}s"), "+QUEUED\r\n"),
            (format!("APPEND {tag}s bar"), "+QUEUED\r\n"),
            (format!("SET {tag}s x BADOPTION"), "+QUEUED\r\n"),
            (format!("GET {tag}s"), "+QUEUED\r\n"),
            ("PING".into(), "+QUEUED\r\n"),
            (
                "EXEC".into(),
                "*6\r\n+OK\r\n-ERR value is not an integer or out of range\r\n:6\r\n-ERR syntax error\r\n$6\r\nfoobar\r\n+PONG\r\n",
            ),
            // A command refused when queued discards the transaction.
            ("MULTI".into(), "+OK\r\n"),
            (format!("SET {tag}t 1"), "+QUEUED\r\n"),
            ("NOSUCH".into(), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"),
            ("GET".into(), "-ERR wrong number of arguments for 'get' command\r\n"),
            ("EXEC".into(), "-EXECABORT Transaction discarded because of previous errors.\r\n"),
            (format!("EXISTS {tag}t"), ":0\r\n"),
            // DISCARD drops what was queued.
            ("MULTI".into(), "+OK\r\n"),
            (format!("SET {tag}t 1"), "+QUEUED\r\n"),
            ("DISCARD".into(), "+OK\r\n"),
            (format!("EXISTS {tag}t"), ":0\r\n"),
            ("MULTI".into(), "+OK\r\n"),
            ("EXEC".into(), "*0\r\n"),
            // Keys of two slots: CROSSSLOT at EXEC, as Redis Cluster, and nothing runs.
            ("MULTI".into(), "+OK\r\n"),
            (format!("SET {tag}u 1"), "+QUEUED\r\n"),
        ] ;
        for (line, want) in calls {
            assert_eq!(raw.call(&line).await, want, "{line} ({tag})");
        }
        let other = raw.call("SET {other}u 1").await;
        let want = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
        if other == "+QUEUED\r\n" {
            // The proxy (or a node owning both slots) queues it and refuses at EXEC.
            assert_eq!(raw.call("EXEC").await, want);
        } else {
            // At a node that does not own the other slot: MOVED now, EXECABORT at EXEC.
            assert!(other.starts_with("-MOVED "), "{other}");
            assert!(raw.call("EXEC").await.starts_with("-EXECABORT"));
        }
        assert_eq!(raw.call(&format!("EXISTS {tag}u")).await, ":0\r\n");
    }

    // redis-rs's atomic pipeline over two slots: refused, and nothing applied.
    let r = redis::pipe()
        .atomic()
        .set("{p}x", 1)
        .set("{q}x", 1)
        .query_async::<redis::Value>(&mut con)
        .await;
    assert!(r.is_err(), "{r:?}");
    let n: i64 = con.exists(&["{p}x", "{q}x"]).await.unwrap();
    assert_eq!(n, 0);
    proxy.stop();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_retried_across_a_leader_kill_applies_once() {
    let (mut c, proxy) = start().await;
    // Writers append one token to two keys of their slot per transaction; the leader of
    // one writer's group is killed meanwhile.
    const WRITERS: usize = 6;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut con = client(&proxy).await;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 50 {
                let token = format!("{i},");
                let r: redis::RedisResult<(i64, i64)> = redis::pipe()
                    .atomic()
                    .append(format!("{{w{w}}}:1"), &token)
                    .append(format!("{{w{w}}}:2"), &token)
                    .query_async(&mut con)
                    .await;
                let (l1, l2) = r.unwrap_or_else(|e| panic!("writer {w}: {e}"));
                assert_eq!(l1, l2, "writer {w}: the keys grew apart");
                acked.push(token);
                i += 1;
            }
            acked
        }));
    }
    let mut con = client(&proxy).await;
    let progress = |con: &mut redis::aio::MultiplexedConnection| {
        let mut con = con.clone();
        async move { con.strlen::<_, i64>("{w0}:1").await.unwrap_or(0) }
    };
    crate::fixture::wait_until(Duration::from_secs(10), "writers running", || {
        let p = progress(&mut con);
        async move { (p.await > 40).then_some(()) }
    })
    .await;
    let victim = owner_id(&c, "{w0}:1").await;
    let before = progress(&mut con).await;
    c.kill(victim).await;
    crate::fixture::wait_until(Duration::from_secs(20), "writers past the kill", || {
        let p = progress(&mut con);
        async move { (p.await > before + 40).then_some(()) }
    })
    .await;
    c.restart(victim).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut stored = BTreeMap::new();
    for (w, t) in tasks.into_iter().enumerate() {
        let acked = t.await.unwrap();
        let one: String = con.get(format!("{{w{w}}}:1")).await.unwrap();
        let two: String = con.get(format!("{{w{w}}}:2")).await.unwrap();
        assert_eq!(one, two, "writer {w}: both keys hold the same appends");
        assert_eq!(
            one,
            acked.concat(),
            "writer {w}: each acknowledged append once, in order"
        );
        stored.insert(w, acked.len());
    }
    assert!(stored.values().all(|&n| n >= 50), "{stored:?}");
    proxy.stop();
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_makes_exec_abort_when_a_watched_key_changed() {
    let (c, proxy) = start().await;
    // Optimistic increments, retried until EXEC runs: none may be lost.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut con = client(&proxy).await;
        tasks.push(tokio::spawn(async move {
            let mut aborted = 0;
            for _ in 0..25 {
                loop {
                    let _: () = redis::cmd("WATCH")
                        .arg("{cnt}")
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let v: Option<i64> = con.get("{cnt}").await.unwrap();
                    let r: Option<((),)> = redis::pipe()
                        .atomic()
                        .set("{cnt}", v.unwrap_or(0) + 1)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    if r.is_some() {
                        break;
                    }
                    aborted += 1;
                }
            }
            aborted
        }));
    }
    let mut aborted = 0;
    for t in tasks {
        aborted += t.await.unwrap();
    }
    let mut con = client(&proxy).await;
    let n: i64 = con.get("{cnt}").await.unwrap();
    assert_eq!(
        n, 100,
        "every increment applied once ({aborted} EXECs aborted)"
    );

    // Byte for byte, through the proxy and at the node that owns the slot.
    let at_proxy = Raw::connect(&proxy.addr.to_string()).await;
    let at_node = owner_of(&c, "{wk}").await;
    let mut other = Raw::connect(&proxy.addr.to_string()).await;
    for (mut raw, key) in [(at_proxy, "{wk}p"), (at_node, "{wk}n")] {
        let calls = [
            (format!("WATCH {key} {key}2"), "+OK\r\n"),
            ("MULTI".to_string(), "+OK\r\n"),
            (format!("SET {key} mine"), "+QUEUED\r\n"),
        ];
        for (line, want) in &calls {
            assert_eq!(raw.call(line).await, *want, "{line}");
        }
        // Another client writes a watched key: EXEC runs nothing, answers a null array.
        assert_eq!(other.call(&format!("SET {key}2 theirs")).await, "+OK\r\n");
        assert_eq!(raw.call("EXEC").await, "*-1\r\n");
        assert_eq!(raw.call(&format!("GET {key}")).await, "$-1\r\n");
        // EXEC forgot the watch: the next transaction runs.
        let calls = [
            ("MULTI".to_string(), "+OK\r\n"),
            (format!("SET {key} mine"), "+QUEUED\r\n"),
            ("EXEC".into(), "*1\r\n+OK\r\n"),
            // UNWATCH forgets it too; its own write before MULTI counts as a change.
            (format!("WATCH {key}"), "+OK\r\n"),
            ("UNWATCH".into(), "+OK\r\n"),
            (format!("SET {key} again"), "+OK\r\n"),
            ("MULTI".into(), "+OK\r\n"),
            ("EXEC".into(), "*0\r\n"),
            (format!("WATCH {key}"), "+OK\r\n"),
            (format!("SET {key} changed"), "+OK\r\n"),
            ("MULTI".into(), "+OK\r\n"),
            ("EXEC".into(), "*-1\r\n"),
            // Keys of another slot than the watched ones: CROSSSLOT at EXEC.
            (format!("WATCH {key}"), "+OK\r\n"),
            ("MULTI".into(), "+OK\r\n"),
        ];
        for (line, want) in &calls {
            assert_eq!(raw.call(line).await, *want, "{line}");
        }
        let r = raw.call("SET {other}k 1").await;
        if r == "+QUEUED\r\n" {
            let want = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
            assert_eq!(raw.call("EXEC").await, want);
        } else {
            assert!(r.starts_with("-MOVED "), "{r}");
            assert!(raw.call("EXEC").await.starts_with("-EXECABORT"));
        }
        // RESP3's null.
        raw.call("HELLO 3").await;
        for (line, want) in [
            (format!("WATCH {key}"), "+OK\r\n"),
            (format!("DEL {key}"), ":1\r\n"),
            ("MULTI".into(), "+OK\r\n"),
            ("EXEC".into(), "_\r\n"),
        ] {
            assert_eq!(raw.call(&line).await, want, "{line}");
        }
    }
    proxy.stop();
    c.stop().await;
}
