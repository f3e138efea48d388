//! Restarts: a follower catches up from the log, or by snapshot once the log it needs is
//! purged; the whole group restarts with every acknowledged write; a replica whose disk was
//! replaced rejoins without crashing anyone.

use std::time::Duration;

use crate::fixture::{set_many, wait_until, TestCluster};

async fn count_prefix(c: &TestCluster, id: u64, prefix: &str) -> usize {
    let mut con = c.client(id).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut con)
        .await
        .expect("keys");
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_restart_catches_up_from_log() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = *c.peers.keys().find(|id| **id != leader).expect("follower");
    set_many(&c, leader, "a", 50).await;
    let term = c.node(leader).group().metrics().current_term;
    c.kill(follower).await;
    set_many(&c, leader, "b", 100).await;
    c.restart(follower).await;
    let data = c.converged().await;
    assert_eq!(data.len(), 150);
    // Rejoining disrupts nothing: the leader heard from it before it stood for election.
    let m = c.node(leader).group().metrics();
    assert_eq!(
        (m.current_leader, m.current_term),
        (Some(leader), term),
        "the leader and its term after a follower's restart"
    );
    assert!(
        c.node(follower).group().metrics().snapshot.is_none(),
        "caught up from the log alone"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_behind_purged_log_catches_up_by_snapshot() {
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.timings.snapshot_logs = 100;
        cfg.timings.keep_logs = 0;
    })
    .await;
    let leader = c.leader().await;
    let follower = *c.peers.keys().find(|id| **id != leader).expect("follower");
    set_many(&c, leader, "a", 20).await;
    let follower_last = c
        .node(follower)
        .group()
        .metrics()
        .last_log_index
        .unwrap_or(0);
    c.kill(follower).await;
    set_many(&c, leader, "b", 400).await;
    wait_until(
        Duration::from_secs(20),
        "the leader to purge past the follower's log",
        || async {
            let purged = c
                .node(leader)
                .group()
                .metrics()
                .purged
                .map(|l| l.index)
                .unwrap_or(0);
            (purged > follower_last).then_some(())
        },
    )
    .await;
    c.restart(follower).await;
    let data = c.converged().await;
    assert_eq!(data.len(), 420);
    assert!(
        c.node(follower).group().metrics().snapshot.is_some(),
        "installed a snapshot"
    );
    // It serves once it leads: make it the only possible leader by killing the others.
    c.stop().await;
}

/// Few entries but many bytes: the entry count never calls for a snapshot, the log volume
/// does, on every replica, and the log behind it is purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_grown_by_bytes_is_snapshotted_and_purged() {
    const FLOOR: u64 = 256 * 1024;
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.timings.snapshot_logs = 1_000_000;
        cfg.timings.snapshot_log_bytes = FLOOR;
        cfg.timings.keep_logs = 0;
    })
    .await;
    let leader = c.leader().await;
    let mut con = c.client(leader).await;
    let value = vec![b'v'; 16 * 1024];
    for i in 0..32 {
        let _: () = redis::cmd("SET")
            .arg(format!("big{i}"))
            .arg(&value)
            .query_async(&mut con)
            .await
            .expect("set");
    }
    for id in c.peers.keys().copied().collect::<Vec<_>>() {
        wait_until(
            Duration::from_secs(20),
            "every replica to snapshot and purge its log",
            || async {
                let m = c.node(id).group().metrics();
                (m.snapshot.is_some() && m.purged.is_some()).then_some(())
            },
        )
        .await;
    }
    let data = c.converged().await;
    assert_eq!(data.len(), 32);
    // A follower restarted now opens from its snapshot and the purged log.
    let leader = c.leader().await;
    let follower = *c.peers.keys().find(|id| **id != leader).expect("follower");
    c.kill(follower).await;
    c.restart(follower).await;
    let data = c.converged().await;
    assert_eq!(data.len(), 32);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_group_restart_keeps_every_acknowledged_write() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    set_many(&c, leader, "k", 200).await;
    let ids: Vec<u64> = c.peers.keys().copied().collect();
    for id in &ids {
        c.kill(*id).await;
    }
    for id in &ids {
        c.restart(*id).await;
    }
    let leader = c.leader().await;
    assert_eq!(count_prefix(&c, leader, "k").await, 200);
    let mut con = c.client(leader).await;
    let v: i64 = redis::cmd("GET")
        .arg("k199")
        .query_async(&mut con)
        .await
        .expect("get");
    assert_eq!(v, 199);
    c.converged().await;
    c.stop().await;
}

/// The lowest id is the one that initialises a blank group, so its blank disk is the
/// dangerous case: it must rejoin the existing group, not start a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_with_replaced_disk_rejoins() {
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.timings.snapshot_logs = 50;
        cfg.timings.keep_logs = 0;
    })
    .await;
    let leader = c.leader().await;
    set_many(&c, leader, "a", 120).await;
    let replaced = 1;
    c.kill(replaced).await;
    c.wipe(replaced);
    let leader = c.leader().await;
    assert_ne!(leader, replaced);
    let term = c.node(leader).group().metrics().current_term;
    c.restart(replaced).await;
    // The group keeps serving while the blank replica catches up.
    set_many(&c, leader, "b", 30).await;
    let data = c.converged().await;
    assert_eq!(data.len(), 150);
    assert_eq!(c.running().count(), 3, "no node crashed");
    let m = c.node(replaced).group().metrics();
    assert_eq!(
        m.current_leader,
        Some(leader),
        "the blank replica follows the existing leader"
    );
    assert_eq!(
        m.current_term, term,
        "and never started a group or election of its own"
    );
    c.stop().await;
}

/// The case the rejoin quarantine exists for: writes commit on {A, B} while C is cut off;
/// B's disk is replaced; A dies. B must not help C (which lacks those writes) become
/// leader — the group waits instead — and once A is back every write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_replica_does_not_vote_away_committed_writes() {
    let mut c = TestCluster::start(3).await;
    let a = c.leader().await;
    let mut others = c.peers.keys().copied().filter(|id| *id != a);
    let (b, cut) = (others.next().expect("b"), others.next().expect("c"));

    c.faults.isolate(cut);
    set_many(&c, a, "k", 20).await;
    c.kill(b).await;
    c.wipe(b);
    c.restart(b).await;
    c.kill(a).await;
    c.faults.heal();

    // A leader among the survivors must hold every committed write. B may have caught up
    // from A before A died (then it may lead); a blank B must not vote C in. Watch a few
    // election timeouts: whoever leads in that time is checked.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let leader = [b, cut]
            .into_iter()
            .find(|id| c.node(*id).group().is_leader());
        if let Some(l) = leader {
            let n =
                tokio::time::timeout(std::time::Duration::from_secs(5), count_prefix(&c, l, "k"));
            if let Ok(n) = n.await {
                assert_eq!(n, 20, "node {l} leads without writes the group committed");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    c.restart(a).await;
    let leader = c.leader().await;
    assert_eq!(
        count_prefix(&c, leader, "k").await,
        20,
        "every committed write survived"
    );
    c.converged().await;
    c.stop().await;
}
