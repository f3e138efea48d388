//! A replica whose disk fails (an fsync error, as on a dying or full disk) stops
//! acknowledging anything, corrupts nothing, and the group carries on with the others; once
//! its disk is back, it restarts from what is on it and converges with the group.

use std::time::Duration;

use crate::fixture::{set_many, TestCluster};

/// A command on node `id` must not be served there: CLUSTERDOWN, or MOVED to another node
/// (a stopped replica may still know who leads).
async fn refuses(c: &TestCluster, id: u64, cmd: &mut redis::Cmd) {
    let mut con = c.client(id).await;
    let r: redis::RedisResult<redis::Value> = cmd.query_async(&mut con).await;
    let own = c.peers[&id].client_addr();
    match r {
        Err(e) if e.redirect_node().is_some() => {
            let (to, _) = e.redirect_node().expect("a MOVED target");
            assert_ne!(to, own, "node {id} redirects to itself");
        }
        Err(e) => assert!(
            e.to_string().to_lowercase().contains("clusterdown"),
            "node {id}: {e}"
        ),
        Ok(v) => panic!("node {id} answered {v:?} after its disk failed"),
    }
}

async fn failed(c: &TestCluster, id: u64) -> String {
    tokio::time::timeout(Duration::from_secs(10), c.node(id).failed())
        .await
        .unwrap_or_else(|_| panic!("node {id} did not notice its failed fsync"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_stops_the_replica_and_the_group_continues() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = *c.peers.keys().find(|id| **id != leader).expect("follower");
    set_many(&c, leader, "a", 30).await;

    // A follower's disk fails: its next log write fails, it stops, the leader and the other
    // follower still make a quorum.
    c.node(follower).shared.storage.fail_syncs();
    set_many(&c, leader, "b", 30).await;
    let why = failed(&c, follower).await;
    assert!(why.contains("injected"), "{why}");
    refuses(&c, follower, redis::cmd("GET").arg("a1")).await;
    refuses(&c, follower, redis::cmd("SET").arg("x").arg("1")).await;
    set_many(&c, leader, "c", 30).await;
    // Its disk replaced by a working one (same files): it restarts from them and catches up.
    c.kill(follower).await;
    c.restart(follower).await;
    assert_eq!(c.converged().await.len(), 90);

    // Now the leader's disk fails. Writes to it stop being acknowledged; the others elect a
    // new leader and carry on; nothing acknowledged is lost.
    c.node(leader).shared.storage.fail_syncs();
    let mut con = c.client(leader).await;
    let r: redis::RedisResult<()> = redis::cmd("SET")
        .arg("during")
        .arg("1")
        .query_async(&mut con)
        .await;
    let acked_during = r.is_ok();
    failed(&c, leader).await;
    refuses(&c, leader, redis::cmd("SET").arg("d0").arg("0")).await;
    refuses(&c, leader, redis::cmd("GET").arg("a1")).await;
    c.kill(leader).await;
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    set_many(&c, new_leader, "d", 30).await;
    c.restart(leader).await;
    let data = c.converged().await;
    let during = data.iter().any(|(k, _)| &k[..] == b"during");
    // The SET in the middle was acknowledged only if it committed before the failure (the
    // leader's own log write of it failing stops the leader before any reply).
    assert!(!acked_during || during, "acknowledged SET during lost");
    assert_eq!(data.len(), 120 + usize::from(during));
    c.stop().await;
}
