//! Throughput is designed in: concurrent writes share log entries and fsyncs (group
//! commit), concurrent reads share read-barrier rounds. Asserted on counters, not on time.

use crate::fixture::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_fsyncs_reads_share_barriers() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let node = c.node(leader);
    let (entries0, fsyncs0) = (
        node.group().entries_proposed(),
        node.shared.storage.persist_count(),
    );

    // 20 clients, each pipelining 50 writes: 1000 writes in flight together.
    let mut tasks = Vec::new();
    for t in 0..20 {
        let mut con = c.client(leader).await;
        tasks.push(tokio::spawn(async move {
            let mut pipe = redis::pipe();
            for i in 0..50 {
                pipe.cmd("INCR")
                    .arg(format!("ctr{}", (t * 50 + i) % 37))
                    .ignore();
            }
            let _: () = pipe.query_async(&mut con).await.expect("pipeline");
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let entries = node.group().entries_proposed() - entries0;
    let fsyncs = node.shared.storage.persist_count() - fsyncs0;
    assert!(
        entries < 500,
        "1000 concurrent writes took {entries} log entries"
    );
    assert!(
        fsyncs < 500,
        "1000 concurrent writes took {fsyncs} fsyncs on the leader"
    );
    let mut con = c.client(leader).await;
    let keys: Vec<String> = (0..37).map(|i| format!("ctr{i}")).collect();
    let vals: Vec<i64> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .expect("mget");
    let total: i64 = vals.iter().sum();
    assert_eq!(total, 1000, "every increment applied exactly once");

    // 50 clients each doing 20 sequential GETs: reads that overlap share barrier rounds.
    // Links from the leader are slowed to 30 ms so that every round surely overlaps the
    // other clients' next reads however loaded the machine is (without it, a busy machine
    // can serialise the clients and the count would depend on timing).
    let mut cons = Vec::new();
    for _ in 0..50 {
        cons.push(c.client(leader).await);
    }
    for f in c.peers.keys().filter(|id| **id != leader) {
        c.faults
            .set_delay(leader, *f, std::time::Duration::from_millis(30));
    }
    let rounds0 = node.group().read_rounds();
    let mut tasks = Vec::new();
    for mut con in cons {
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let v: i64 = redis::cmd("GET")
                    .arg(format!("ctr{i}"))
                    .query_async(&mut con)
                    .await
                    .expect("get");
                assert!(v > 0);
            }
        }));
    }
    for t in tasks {
        t.await.expect("reader");
    }
    let rounds = node.group().read_rounds() - rounds0;
    c.faults.heal();
    eprintln!("1000 writes: {entries} entries, {fsyncs} leader fsyncs; 1000 reads: {rounds} barrier rounds");
    assert!(
        rounds < 500,
        "1000 concurrent reads took {rounds} read-barrier rounds"
    );
    c.stop().await;
}
