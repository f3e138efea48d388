//! The leader is cut off into the minority: it acknowledges nothing, the majority elects a
//! new leader and goes on, and after the heal every replica converges.

use std::time::Duration;

use crate::fixture::{wait_until, TestCluster};
use crate::raw::Raw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_in_minority_acknowledges_nothing() {
    let c = TestCluster::start_with(3, |cfg| cfg.write_timeout = Duration::from_secs(2)).await;
    let old = c.leader().await;
    let mut con = c.client(old).await;
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query_async(&mut con)
        .await
        .expect("set");

    c.faults.isolate(old);
    // A write at the isolated leader: never OK.
    let mut raw = Raw::connect(&c.peers[&old].client_addr()).await;
    let reply = raw.call("SET lost 1").await;
    assert!(
        reply.starts_with("-ERR write outcome unknown") || reply.starts_with("-MOVED"),
        "isolated leader replied {reply:?}"
    );
    // A read there cannot be confirmed either.
    let reply = raw.call("GET before").await;
    assert!(
        reply.starts_with("-CLUSTERDOWN") || reply.starts_with("-MOVED"),
        "isolated leader served a read: {reply:?}"
    );

    // The majority elects a new leader and serves writes.
    let others: Vec<u64> = c.peers.keys().copied().filter(|id| *id != old).collect();
    let new = wait_until(
        Duration::from_secs(10),
        "a new leader in the majority",
        || async {
            let l = c.node(others[0]).group().current_leader()?;
            (l != old && c.node(others[1]).group().current_leader() == Some(l)).then_some(l)
        },
    )
    .await;
    let mut con = c.client(new).await;
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("2")
        .query_async(&mut con)
        .await
        .expect("set on new leader");

    c.faults.heal();
    let data = c.converged().await;
    let keys: Vec<String> = data
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys.iter()
            .filter(|k| *k == "before" || *k == "after")
            .count(),
        2,
        "{keys:?}"
    );
    assert!(
        !keys.contains(&"lost".to_string()),
        "an unacknowledged minority write must not survive"
    );
    c.stop().await;
}
