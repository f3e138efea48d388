//! Sharding: a controller group and data groups that join and leave while clients write.
//! Every scenario ends by checking that each acknowledged write is present exactly once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use redraft::raft::Gid;
use redraft_proxy::wire::key_slot;

use crate::fixture::{wait_until, TestCluster};
use crate::router::Router;

fn seeds(c: &TestCluster) -> Vec<String> {
    c.data_gids()
        .into_iter()
        .flat_map(|g| c.members(g))
        .map(|id| c.peers[&id].client_addr())
        .collect()
}

fn num(v: Value) -> u64 {
    match v {
        Value::Int(n) => n as u64,
        other => panic!("expected a configuration number, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_groups_split_the_slots_and_redirect() {
    let c = TestCluster::sharded(3, 3, |_| {}).await;
    c.join_all().await;
    let r = Router::new(seeds(&c));
    for i in 0..300 {
        let k = format!("key:{i}");
        let _: () = r
            .query(key_slot(k.as_bytes()), redis::cmd("SET").arg(&k).arg(i))
            .await
            .expect("SET");
    }
    for i in 0..300 {
        let k = format!("key:{i}");
        let v: i64 = r
            .query(key_slot(k.as_bytes()), redis::cmd("GET").arg(&k))
            .await
            .expect("GET");
        assert_eq!(v, i);
    }
    // Every group holds about a third, and together exactly the 300 keys.
    let mut total = 0;
    for gid in c.data_gids() {
        let leader = c.leader_of(gid).await;
        let n = c.dump(leader).len();
        assert!(n > 50, "group {gid} holds {n} of 300 keys");
        total += n;
    }
    assert_eq!(total, 300);

    // The wrong group redirects to the owner; keys of two slots are refused.
    let k = "key:0";
    let owner = c
        .node(c.members(0)[0])
        .group()
        .reader()
        .cluster()
        .ctl
        .latest()
        .owner(key_slot(k.as_bytes()));
    let other = *c.data_gids().iter().find(|g| **g != owner).unwrap();
    let mut con = c.client(c.leader_of(other).await).await;
    let err = redis::cmd("GET")
        .arg(k)
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    let (to, slot) = err.redirect_node().expect("redirect");
    assert_eq!(slot, key_slot(k.as_bytes()));
    let to_id = *c
        .peers
        .iter()
        .find(|(_, a)| a.client_addr() == to)
        .unwrap()
        .0;
    assert_eq!(c.gids[&to_id], owner, "MOVED points into the owning group");
    // ...at its leader, once this node has heard who that is.
    let owner_leader = c.peers[&c.leader_of(owner).await].client_addr();
    wait_until(
        Duration::from_secs(10),
        "MOVED to the owner's leader",
        || {
            let mut con = con.clone();
            let owner_leader = owner_leader.clone();
            async move {
                let err = redis::cmd("GET")
                    .arg(k)
                    .query_async::<Value>(&mut con)
                    .await
                    .unwrap_err();
                (err.redirect_node().map(|(a, _)| a.to_string()) == Some(owner_leader))
                    .then_some(())
            }
        },
    )
    .await;
    let err = redis::cmd("MSET")
        .arg("a")
        .arg(1)
        .arg("b")
        .arg(2)
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
    // Hash tags keep keys together.
    let tag = key_slot(b"{user1}");
    let _: () = r
        .query(
            tag,
            redis::cmd("MSET")
                .arg("{user1}:a")
                .arg(1)
                .arg("{user1}:b")
                .arg(2),
        )
        .await
        .expect("MSET in one slot");
    let got: Vec<i64> = r
        .query(tag, redis::cmd("MGET").arg("{user1}:a").arg("{user1}:b"))
        .await
        .expect("MGET");
    assert_eq!(got, vec![1, 2]);
    // A controller node holds no data and redirects too.
    let mut ctl = c.client(c.members(0)[0]).await;
    let err = redis::cmd("GET")
        .arg(k)
        .query_async::<Value>(&mut ctl)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_commands_validate_and_query() {
    let c = TestCluster::sharded(2, 1, |_| {}).await;
    let first = num(c.cluster_cmd(&c.join_args(&[1])).await);
    assert_eq!(first, 1);
    let mut con = c.client(c.members(1)[0]).await;
    // Accepted at a data node too (forwarded to the controller's leader).
    let err = redis::cmd("CLUSTER")
        .arg("JOIN")
        .arg(1)
        .arg("99=127.0.0.1:1")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("group 1 has already joined"),
        "{err}"
    );
    for (args, text) in [
        (vec!["LEAVE", "7"], "unknown group 7"),
        (vec!["MOVE", "16384", "1"], "slot out of range"),
        (vec!["MOVE", "5", "0"], "reserved"),
        (vec!["JOIN", "0", "98=127.0.0.1:1"], "reserved"),
    ] {
        let err = redis::cmd("CLUSTER")
            .arg(&args)
            .query_async::<Value>(&mut con)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(text), "{args:?}: {err}");
    }
    let moved = num(c
        .cluster_cmd(&["MOVE".into(), "0-99".into(), "1".into()])
        .await);
    assert_eq!(moved, 2);
    let q = c.cluster_cmd(&["QUERY".into()]).await;
    let text = format!("{q:?}");
    assert!(text.contains("config"), "{text}");
    let old = c.cluster_cmd(&["QUERY".into(), "0".into()]).await;
    assert!(format!("{old:?}").contains("unassigned"));
    let err = redis::cmd("CLUSTER")
        .arg("QUERY")
        .arg(50)
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no configuration 50"), "{err}");
    c.stop().await;
}

/// Writers append their sequence numbers to their keys with ONCE, retrying every
/// failure with the same (client, seq): each key must end up holding exactly the
/// acknowledged appends, in order, once each.
struct AppendLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<BTreeMap<String, String>>>,
}

impl AppendLoad {
    fn start(c: &TestCluster, writers: u64, keys_per_writer: u64) -> AppendLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let tasks = (1..=writers)
            .map(|w| {
                let r = Router::new(seeds(c));
                let (stop, acked) = (stop.clone(), acked.clone());
                tokio::spawn(async move {
                    let mut expected: BTreeMap<String, String> = BTreeMap::new();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let key = format!("w{w}:{}", seq % keys_per_writer);
                        let item = format!("{seq},");
                        let _: i64 = r
                            .query(
                                key_slot(key.as_bytes()),
                                redis::cmd("ONCE")
                                    .arg(w)
                                    .arg(seq)
                                    .arg("APPEND")
                                    .arg(&key)
                                    .arg(&item),
                            )
                            .await
                            .unwrap_or_else(|e| {
                                panic!("APPEND {key} seq {seq} never succeeded: {e}")
                            });
                        expected.entry(key).or_default().push_str(&item);
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    expected
                })
            })
            .collect();
        AppendLoad { stop, acked, tasks }
    }

    /// Waits until `n` more appends were acknowledged.
    async fn progress(&self, n: u64) {
        let target = self.acked.load(Ordering::Relaxed) + n;
        wait_until(
            Duration::from_secs(60),
            "appends to make progress",
            || async { (self.acked.load(Ordering::Relaxed) >= target).then_some(()) },
        )
        .await;
    }

    /// Stops the writers and checks every key through a fresh router.
    async fn check(self, c: &TestCluster) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let r = Router::new(seeds(c));
        let mut keys = 0;
        for t in self.tasks {
            for (key, want) in t.await.expect("writer") {
                let got: String = r
                    .query(key_slot(key.as_bytes()), redis::cmd("GET").arg(&key))
                    .await
                    .expect("GET");
                assert_eq!(got, want, "key {key}: appends lost or applied twice");
                keys += 1;
            }
        }
        keys
    }
}

/// Every key lives in exactly one group's state (once slots that left are purged).
async fn check_each_key_once(c: &TestCluster) {
    c.purged().await;
    let mut seen: BTreeMap<Vec<u8>, Gid> = BTreeMap::new();
    for gid in c.data_gids() {
        let leader = c.leader_of(gid).await;
        for (k, _) in c.dump(leader) {
            if let Some(prev) = seen.insert(k.to_vec(), gid) {
                panic!("key {k:?} held by groups {prev} and {gid}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_under_load_apply_every_append_once() {
    let mut c = TestCluster::sharded(3, 3, |_| {}).await;
    let n = num(c.cluster_cmd(&c.join_args(&[1])).await);
    c.settled(n).await;
    let load = AppendLoad::start(&c, 4, 8);
    load.progress(50).await;
    for (step, op) in [
        c.join_args(&[2]),
        c.join_args(&[3]),
        vec!["LEAVE".into(), "1".into()],
        c.join_args(&[1]),
        vec!["LEAVE".into(), "2".into()],
        vec!["LEAVE".into(), "3".into()],
        c.join_args(&[2, 3]),
    ]
    .into_iter()
    .enumerate()
    {
        if step == 3 {
            // The controller's leader dies mid-way; the rest of the story must not notice.
            let l = c.leader_of(0).await;
            c.kill(l).await;
        }
        let n = num(c.cluster_cmd(&op).await);
        c.settled(n).await;
        if step == 2 {
            // Group 1 left: its copy of every slot is gone, on every replica.
            for id in c.members(1) {
                wait_until(Duration::from_secs(20), "group 1 emptied", || async {
                    (c.dump(id).is_empty()).then_some(())
                })
                .await;
            }
            let keys = c.node(c.members(1)[0]).group().reader().cluster();
            let t = keys.slots.as_ref().unwrap();
            assert!(t.config.slots_of(1).is_empty());
            assert!(t.progress.keys_dropped > 0, "{:?}", t.progress);
        }
        load.progress(20).await;
    }
    let keys = load.check(&c).await;
    assert_eq!(keys, 32);
    check_each_key_once(&c).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_retry_after_a_migration_is_not_applied_again() {
    let c = TestCluster::sharded(2, 3, |_| {}).await;
    let n = num(c.cluster_cmd(&c.join_args(&[1])).await);
    c.settled(n).await;
    let r = Router::new(seeds(&c));
    let k = "counter";
    let slot = key_slot(k.as_bytes());
    let once = || {
        let mut cmd = redis::cmd("ONCE");
        cmd.arg(77).arg(1).arg("APPEND").arg(k).arg("x");
        cmd
    };
    let first: i64 = r.query(slot, &once()).await.unwrap();
    assert_eq!(first, 1);
    // Client 78 acknowledges its first write with its second: the group forgets the
    // first's reply, and the floor that says so moves with the slot.
    let once78 = |stamp: &str, v: &str| {
        let mut cmd = redis::cmd("ONCE");
        cmd.arg(78).arg(stamp).arg("APPEND").arg(k).arg(v);
        cmd
    };
    assert_eq!(r.query::<i64>(slot, &once78("1", "a")).await.unwrap(), 2);
    assert_eq!(r.query::<i64>(slot, &once78("2:1", "b")).await.unwrap(), 3);
    // Client 79's first write applies here; its second, which must follow it, goes to
    // the new owner after the move.
    let once79 = |stamp: &str, v: &str| {
        let mut cmd = redis::cmd("ONCE");
        cmd.arg(79).arg(stamp).arg("APPEND").arg(k).arg(v);
        cmd
    };
    assert_eq!(r.query::<i64>(slot, &once79("1", "p")).await.unwrap(), 4);
    num(c.cluster_cmd(&c.join_args(&[2])).await);
    let n = num(c
        .cluster_cmd(&["MOVE".into(), slot.to_string(), "2".into()])
        .await);
    c.settled(n).await;
    let owner = c
        .node(c.members(0)[0])
        .group()
        .reader()
        .cluster()
        .ctl
        .latest()
        .owner(slot);
    assert_eq!(owner, 2);
    // The same (client, seq) at the new owner: the first reply, not a second append.
    let again: i64 = r.query(slot, &once()).await.unwrap();
    assert_eq!(again, 1);
    assert_eq!(r.query::<i64>(slot, &once78("2:1", "b")).await.unwrap(), 3);
    let e = r.query::<i64>(slot, &once78("1", "a")).await.unwrap_err();
    assert!(e.to_string().contains("too old"), "{e}");
    // What a write follows moved with the slot: it applies.
    assert_eq!(
        r.query::<i64>(slot, &once79("2:0:1", "q")).await.unwrap(),
        5
    );
    // One that follows a write not applied yet (refused, say, and to be retried) waits
    // for it: refused until it has applied, then it runs.
    let leader = c.peers[&c.leader_of(2).await].client_addr();
    let mut direct = redis::Client::open(format!("redis://{leader}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let e = once79("4:2:3", "s")
        .query_async::<i64>(&mut direct)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    // So does a read that must see it.
    let read_after = |seq: u64| {
        let mut cmd = redis::cmd("ONCE");
        cmd.arg(79).arg(format!("0:0:{seq}")).arg("GET").arg(k);
        cmd
    };
    let e = read_after(3)
        .query_async::<String>(&mut direct)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    assert_eq!(r.query::<i64>(slot, &once79("3:2", "r")).await.unwrap(), 6);
    let v: String = r.query(slot, &read_after(3)).await.unwrap();
    assert_eq!(v, "xabpqr");
    assert_eq!(
        r.query::<i64>(slot, &once79("4:2:3", "s")).await.unwrap(),
        7
    );
    let v: String = r.query(slot, redis::cmd("GET").arg(k)).await.unwrap();
    assert_eq!(v, "xabpqrs");
    // A new seq applies.
    let next: i64 = r
        .query(
            slot,
            redis::cmd("ONCE")
                .arg(77)
                .arg(2)
                .arg("APPEND")
                .arg(k)
                .arg("y"),
        )
        .await
        .unwrap();
    assert_eq!(next, 8);
    c.stop().await;
}

/// SETs `n` keys `prefix:i` = i through the router.
async fn fill(r: &Router, prefix: &str, n: usize) {
    for i in 0..n {
        let k = format!("{prefix}:{i}");
        let _: () = r
            .query(key_slot(k.as_bytes()), redis::cmd("SET").arg(&k).arg(i))
            .await
            .expect("SET");
    }
}

async fn check_fill(r: &Router, prefix: &str, n: usize) {
    for i in 0..n {
        let k = format!("{prefix}:{i}");
        let v: Option<usize> = r
            .query(key_slot(k.as_bytes()), redis::cmd("GET").arg(&k))
            .await
            .expect("GET");
        assert_eq!(v, Some(i), "key {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_was_down_catches_up_config_by_config() {
    let mut c = TestCluster::sharded(3, 3, |_| {}).await;
    c.join_all().await;
    let r = Router::new(seeds(&c));
    fill(&r, "k", 300).await;
    // Group 3 goes down entirely; meanwhile it is asked to leave and more configurations
    // pass. Slots it holds can't move until it is back; the others keep serving.
    for id in c.members(3) {
        c.kill(id).await;
    }
    // Static shards: with group 3 down, the keys of the other groups are still served.
    let cfg = c
        .node(c.members(0)[0])
        .group()
        .reader()
        .cluster()
        .ctl
        .latest();
    let mut served = 0;
    for i in 0..300 {
        let k = format!("k:{i}");
        if cfg.owner(key_slot(k.as_bytes())) != 3 {
            let v: Option<usize> = r
                .query(key_slot(k.as_bytes()), redis::cmd("GET").arg(&k))
                .await
                .unwrap_or_else(|e| panic!("{k} of a live group not served: {e}"));
            assert_eq!(v, Some(i));
            served += 1;
        }
    }
    assert!(served > 150, "{served}");
    num(c.cluster_cmd(&["LEAVE".into(), "3".into()]).await);
    num(c
        .cluster_cmd(&["MOVE".into(), "0-99".into(), "2".into()])
        .await);
    let last = num(c
        .cluster_cmd(&["MOVE".into(), "0-49".into(), "1".into()])
        .await);
    let g1 = c.leader_of(1).await;
    let t = c.node(g1).group().reader().cluster();
    assert!(
        t.slots.as_ref().unwrap().config.num < last,
        "group 1 can't pass the LEAVE while group 3 is down"
    );
    for id in c.members(3) {
        c.restart(id).await;
    }
    c.settled(last).await;
    check_fill(&r, "k", 300).await;
    check_each_key_once(&c).await;
    let g3 = c.leader_of(3).await;
    assert!(
        c.dump(g3).is_empty(),
        "group 3 dropped everything it offloaded"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_from_snapshots_mid_migration_keep_every_write() {
    let mut c = TestCluster::sharded(2, 3, |cfg| {
        cfg.timings.snapshot_logs = 20;
        cfg.timings.keep_logs = 5;
    })
    .await;
    let n = num(c.cluster_cmd(&c.join_args(&[1])).await);
    c.settled(n).await;
    let r = Router::new(seeds(&c));
    fill(&r, "s", 500).await;
    let load = AppendLoad::start(&c, 3, 4);
    load.progress(30).await;
    let n = num(c.cluster_cmd(&c.join_args(&[2])).await);
    // Restart the leaders of both sides while the slots move.
    for gid in [2, 1] {
        let l = c.leader_of(gid).await;
        c.kill(l).await;
        load.progress(10).await;
        c.restart(l).await;
    }
    c.settled(n).await;
    load.progress(20).await;
    // And every replica of group 2, one at a time, recovering from its snapshot.
    for id in c.members(2) {
        c.kill(id).await;
        c.restart(id).await;
        load.progress(10).await;
    }
    assert_eq!(load.check(&c).await, 12);
    check_fill(&r, "s", 500).await;
    check_each_key_once(&c).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreliable_bus_loses_and_duplicates_nothing() {
    let c = TestCluster::sharded(3, 3, |_| {}).await;
    let n = num(c.cluster_cmd(&c.join_args(&[1, 2])).await);
    c.settled(n).await;
    let load = AppendLoad::start(&c, 4, 4);
    load.progress(30).await;
    // Every link between groups drops 10% of messages and delays the rest a little.
    let ids: Vec<_> = c.peers.keys().copied().collect();
    for a in &ids {
        for b in &ids {
            if c.gids[a] != c.gids[b] {
                c.faults.set_drop(*a, *b, 0.1);
                c.faults.set_delay(*a, *b, Duration::from_millis(5));
            }
        }
    }
    for op in [
        c.join_args(&[3]),
        vec!["LEAVE".into(), "1".into()],
        c.join_args(&[1]),
    ] {
        let n = num(c.cluster_cmd(&op).await);
        c.settled(n).await;
        load.progress(10).await;
    }
    c.faults.heal();
    assert_eq!(load.check(&c).await, 16);
    check_each_key_once(&c).await;
    c.stop().await;
}

/// A key with a hash tag whose slot satisfies `pred`.
fn tagged(pred: impl Fn(u16) -> bool) -> String {
    (0..)
        .map(|i| format!("{{t{i}}}"))
        .find(|t| pred(key_slot(t.as_bytes())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_slots_serve_throughout_and_arrived_slots_serve_at_once() {
    let c = TestCluster::sharded(2, 3, |_| {}).await;
    let n = num(c.cluster_cmd(&c.join_args(&[1])).await);
    c.settled(n).await;
    num(c.cluster_cmd(&c.join_args(&[2])).await);
    // Put everything back on group 1, then move one range [small, big] to group 2.
    let n = num(c
        .cluster_cmd(&["MOVE".into(), "0-16383".into(), "1".into()])
        .await);
    c.settled(n).await;
    let big = tagged(|s| s > 9000 && s < 9100);
    let small = tagged(|s| s > 8000 && s < 8100);
    let still = tagged(|s| s < 1000);
    let (bs, ss) = (key_slot(big.as_bytes()), key_slot(small.as_bytes()));
    let g1 = c.leader_of(1).await;
    let mut con = c.client(g1).await;
    let mut pipe = redis::pipe();
    for i in 0..4000 {
        pipe.cmd("SET")
            .arg(format!("{big}:{i}"))
            .arg(vec![b'v'; 1024])
            .ignore();
    }
    pipe.query_async::<()>(&mut con).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{small}:x"))
        .arg("here")
        .query_async(&mut con)
        .await
        .unwrap();
    // Slow the pulls down (group 2 → group 1 links only) so the move takes a while.
    for a in c.members(2) {
        for b in c.members(1) {
            c.faults.set_delay(a, b, Duration::from_millis(150));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (stop, mut con) = (stop.clone(), c.client(g1).await);
        let key = format!("{still}:counter");
        tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match redis::cmd("INCR")
                    .arg(&key)
                    .query_async::<i64>(&mut con)
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (ok, errors)
        })
    };
    let n = num(c
        .cluster_cmd(&["MOVE".into(), format!("{ss}-{bs}"), "2".into()])
        .await);
    // The small slot completes in the first chunk; the big one takes several.
    let g2 = c.leader_of(2).await;
    wait_until(
        Duration::from_secs(30),
        "small slot installed, big one still pulling",
        || async {
            let m = c.node(g2).group().reader().cluster();
            let t = m.slots.as_ref()?;
            (t.config.num == n && !t.pulling.contains_key(&ss) && t.pulling.contains_key(&bs))
                .then_some(())
        },
    )
    .await;
    let mut con2 = c.client(g2).await;
    let v: String = redis::cmd("GET")
        .arg(format!("{small}:x"))
        .query_async(&mut con2)
        .await
        .unwrap();
    assert_eq!(v, "here", "an installed slot serves before the rest arrive");
    let err = redis::cmd("GET")
        .arg(format!("{big}:0"))
        .query_async::<Value>(&mut con2)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    c.settled(n).await;
    c.faults.heal();
    stop.store(true, Ordering::Relaxed);
    let (ok, errors) = hammer.await.unwrap();
    assert!(
        errors.is_empty(),
        "a non-moving slot saw errors: {errors:?}"
    );
    assert!(ok > 10, "the non-moving slot was served ({ok} INCRs)");
    let n2 = c.dump(g2).len();
    assert_eq!(n2, 4001, "group 2 holds the moved slots' keys");
    let v: Vec<u8> = redis::cmd("GET")
        .arg(format!("{big}:3999"))
        .query_async(&mut con2)
        .await
        .unwrap();
    assert_eq!(v.len(), 1024);
    c.stop().await;
}
