//! TTLs are decided by the leader's stamped time: keys expire identically on every replica,
//! are reclaimed through the log, and keep their deadline across a failover.

use std::time::Duration;

use crate::fixture::{wait_until, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_identically_everywhere_and_after_failover() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut con = c.client(leader).await;
    for i in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(format!("short{i}"))
            .arg(i)
            .arg("PX")
            .arg(300)
            .query_async(&mut con)
            .await
            .expect("set");
    }
    let _: () = redis::cmd("SET")
        .arg("long")
        .arg("v")
        .arg("EX")
        .arg(3600)
        .query_async(&mut con)
        .await
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg("soon")
        .arg("v")
        .arg("PX")
        .arg(1500)
        .query_async(&mut con)
        .await
        .expect("set");
    let _: () = redis::cmd("SET")
        .arg("forever")
        .arg("v")
        .query_async(&mut con)
        .await
        .expect("set");

    // Every replica stores the same absolute deadline.
    let data = c.converged().await;
    let deadline = data
        .iter()
        .find(|(k, _)| &k[..] == b"long")
        .and_then(|(_, v)| v.expire_at)
        .expect("deadline");

    // Expired keys read as absent, then the leader deletes them through the log everywhere.
    wait_until(
        Duration::from_secs(10),
        "short keys to expire and be reclaimed",
        || async {
            let data = c.converged().await;
            (!data.iter().any(|(k, _)| k.starts_with(b"short"))).then_some(())
        },
    )
    .await;

    // Failover: the new leader keeps the deadline and expires "soon" on time.
    c.kill(leader).await;
    let new = c.leader().await;
    let mut con = c.client(new).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg("long")
        .query_async(&mut con)
        .await
        .expect("pttl");
    assert!(pttl > 3_500_000 && pttl <= 3_600_000, "pttl {pttl}");
    let at: i64 = redis::cmd("PEXPIRETIME")
        .arg("long")
        .query_async(&mut con)
        .await
        .expect("pexpiretime");
    assert_eq!(at as u64, deadline);
    wait_until(
        Duration::from_secs(10),
        "soon to expire on the new leader",
        || async {
            let mut con = c.client(new).await;
            let v: Option<String> = redis::cmd("GET")
                .arg("soon")
                .query_async(&mut con)
                .await
                .ok()?;
            v.is_none().then_some(())
        },
    )
    .await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("forever")
        .query_async(&mut con)
        .await
        .expect("ttl");
    assert_eq!(ttl, -1);
    c.stop().await;
}
