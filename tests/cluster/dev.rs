//! `redraft dev`'s layout (`dev::Threads`): each group on one single-worker runtime, stopped
//! and restarted from another, as the test of that layout's failure path.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use redraft::bus::FaultTable;
use redraft::cli::{Cli, Cmd};
use redraft::dev::{LocalCluster, Threads};
use redraft::node::Node;

use crate::fixture::wait_until;

/// A base port whose client ports and bus ports (+10000) are all free now, below the
/// kernel's ephemeral range so that no outgoing connection takes one meanwhile.
fn free_base(nodes: u16) -> u16 {
    (12000..19000)
        .step_by(97)
        .find(|&b| {
            (b..b + nodes).all(|p| {
                [p, p + 10000]
                    .iter()
                    .all(|&q| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok())
            })
        })
        .expect("free ports")
}

async fn query(addr: &str, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://{addr}"))?;
    let mut con = client.get_multiplexed_async_connection().await?;
    // CLUSTER FAILOVER takes up to seconds to answer (catching up, then an election).
    con.set_response_timeout(Duration::from_secs(15));
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut con).await
}

fn ok(v: &redis::RedisResult<redis::Value>) -> bool {
    matches!(v, Ok(redis::Value::Okay))
        || matches!(v, Ok(redis::Value::SimpleString(s)) if s == "OK")
}

fn bulk(v: redis::RedisResult<redis::Value>) -> Option<Vec<u8>> {
    match v {
        Ok(redis::Value::BulkString(b)) => Some(b),
        _ => None,
    }
}

#[test]
fn a_group_on_its_own_runtime_survives_its_leader_stopping_and_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let Cmd::Dev(args) = Cli::parse_from(["redraft", "dev"]).command else {
        unreachable!("parsed dev")
    };
    let threads = Threads::new(2).unwrap();
    let handles = threads.handles();
    threads.main.block_on(async {
        // One data group (on the second runtime: group 1 mod 2) and the controller (on
        // this one).
        let base = free_base(6);
        let mut cluster =
            LocalCluster::start(dir.path().to_path_buf(), base, 1, 3, &args.tuning, &handles)
                .await
                .expect("dev cluster");
        assert!(
            cluster
                .wait_settled(cluster.config, Duration::from_secs(60))
                .await
        );
        let leader_of_1 = |c: &LocalCluster| {
            c.nodes
                .iter()
                .position(|n| n.group().gid() == 1 && n.group().is_leader())
        };
        let i = wait_until(Duration::from_secs(10), "a leader of group 1", || async {
            leader_of_1(&cluster)
        })
        .await;
        let addr = cluster.nodes[i].addr().client_addr();
        assert!(ok(&query(&addr, &["SET", "dev:before", "1"]).await));

        // The leader stops (the in-process kill) from this runtime; its followers elect
        // another and take writes.
        let victim = cluster.nodes.remove(i);
        let config = victim.shared.config.clone();
        victim.stop().await;
        let addr = wait_until(Duration::from_secs(10), "a new leader", || async {
            let i = leader_of_1(&cluster)?;
            let addr = cluster.nodes[i].addr().client_addr();
            ok(&query(&addr, &["SET", "dev:after", "2"]).await).then_some(addr)
        })
        .await;
        assert_eq!(
            bulk(query(&addr, &["GET", "dev:before"]).await).as_deref(),
            Some(&b"1"[..])
        );

        // Restarted on its group's runtime, it catches up and can lead again.
        let back = handles[1]
            .spawn(Node::start(config, Arc::new(FaultTable::default())))
            .await
            .unwrap()
            .expect("restart");
        let back_addr = back.addr().client_addr();
        cluster.nodes.push(back);
        // It may have won an election on its own (a restarted replica that hears from no
        // leader within its timeout stands); otherwise a planned failover moves the
        // leadership to it. Then it serves every acknowledged write. On a loaded machine
        // the leadership may move on again before the reads (they then get MOVED): the
        // whole check is retried; a read answered without the value fails at once.
        wait_until(
            Duration::from_secs(30),
            "the restarted node leading and serving both writes",
            || async {
                let role = query(&back_addr, &["ROLE"]).await;
                let leads = matches!(&role, Ok(redis::Value::Array(a))
                    if matches!(a.first(), Some(redis::Value::BulkString(r)) if r == b"master"));
                if !leads && !ok(&query(&back_addr, &["CLUSTER", "FAILOVER"]).await) {
                    return None;
                }
                for (key, want) in [("dev:before", "1"), ("dev:after", "2")] {
                    match query(&back_addr, &["GET", key]).await {
                        Ok(v) => assert_eq!(
                            bulk(Ok(v)).as_deref(),
                            Some(want.as_bytes()),
                            "{key} at the restarted leader"
                        ),
                        Err(_) => return None,
                    }
                }
                Some(())
            },
        )
        .await;
        cluster.stop().await;
    });
}
