//! Redis Cluster compatibility at the nodes: redis-rs's ClusterClient, unmodified, against
//! a controller and three groups; it learns the layout from CLUSTER SLOTS, follows MOVED,
//! and rides through a leader kill and a planned CLUSTER FAILOVER.

use std::time::Duration;

use redis::AsyncCommands;

use crate::fixture::{wait_until, TestCluster};

async fn set_retrying(con: &mut redis::cluster_async::ClusterConnection, k: &str, v: i64) {
    // SET is idempotent: retrying one whose outcome is unknown is safe.
    wait_until(Duration::from_secs(30), &format!("SET {k}"), || {
        let mut con = con.clone();
        async move { con.set::<_, _, ()>(k, v).await.ok() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_client_routes_and_survives_leader_changes() {
    let mut c = TestCluster::sharded(3, 3, |_| {}).await;
    c.join_all().await;
    let urls: Vec<String> = c
        .data_gids()
        .into_iter()
        .flat_map(|g| c.members(g))
        .map(|id| c.url(id))
        .collect();
    let client = redis::cluster::ClusterClient::builder(urls)
        .retries(8)
        .response_timeout(Duration::from_secs(10))
        .build()
        .expect("cluster client");
    let mut con = client.get_async_connection().await.expect("connect");
    for i in 0..500 {
        set_retrying(&mut con, &format!("key:{i}"), i).await;
    }
    // Hash tags keep a multi-key command on one slot.
    let _: () = con
        .mset(&[("{user:1}:a", 1), ("{user:1}:b", 2)])
        .await
        .expect("MSET");
    let got: Vec<i64> = con.mget(&["{user:1}:a", "{user:1}:b"]).await.expect("MGET");
    assert_eq!(got, vec![1, 2]);

    // The leader of group 2 dies mid-way; the client finds the new one.
    let victim = c.leader_of(2).await;
    c.kill(victim).await;
    for i in 500..750 {
        set_retrying(&mut con, &format!("key:{i}"), i).await;
    }
    c.restart(victim).await;

    // A planned failover moves group 1's leadership to a chosen follower.
    let old = c.leader_of(1).await;
    let target = *c.members(1).iter().find(|id| **id != old).unwrap();
    let mut t = c.client(target).await;
    let ok: String = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query_async(&mut t)
        .await
        .expect("CLUSTER FAILOVER");
    assert_eq!(ok, "OK");
    assert_eq!(c.leader_of(1).await, target);
    for i in 750..1000 {
        set_retrying(&mut con, &format!("key:{i}"), i).await;
    }
    // The views follow: every node names the new leader as the master of its slots, and
    // REPLICAS names its followers as NODES does.
    let target_addr = c.peers[&target].client_addr();
    let id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut c.client(target).await)
        .await
        .expect("CLUSTER MYID");
    wait_until(
        Duration::from_secs(10),
        "views show the new master and its replicas",
        || async {
            let mut any = c.client(c.members(3)[0]).await;
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut any)
                .await
                .ok()?;
            let replicas: Vec<String> = redis::cmd("CLUSTER")
                .arg("REPLICAS")
                .arg(&id)
                .query_async(&mut any)
                .await
                .ok()?;
            let master = nodes
                .lines()
                .any(|l| l.contains(&target_addr) && l.contains("master"));
            let slaves: Vec<&str> = nodes
                .lines()
                .filter(|l| l.contains(&format!(" slave {id} ")))
                .collect();
            (master && slaves.len() == 2 && replicas == slaves).then_some(())
        },
    )
    .await;

    // No acknowledged write lost.
    for i in 0..1000 {
        let k = format!("key:{i}");
        let v: Option<i64> = wait_until(Duration::from_secs(30), &format!("GET {k}"), || {
            let mut con = con.clone();
            let k = k.clone();
            async move { con.get::<_, Option<i64>>(&k).await.ok() }
        })
        .await;
        assert_eq!(v, Some(i), "{k}");
    }
    c.stop().await;
}
