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

/// Every key lives in exactly one group's state.
async fn check_each_key_once(c: &TestCluster) {
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
    let v: String = r.query(slot, redis::cmd("GET").arg(k)).await.unwrap();
    assert_eq!(v, "x");
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
    assert_eq!(next, 2);
    c.stop().await;
}
