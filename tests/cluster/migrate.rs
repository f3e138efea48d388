//! MIGRATE from redraft to another server (here a standalone redraft group): keys, TTLs,
//! COPY, REPLACE, the target's errors, through the proxy and at the owning node; and the
//! write that lands while MIGRATE is on the wire, which must stay here.

use std::time::Duration;

use redis::AsyncCommands;
use redraft_proxy::Proxy;

use crate::fixture::{wait_until, TestCluster};
use crate::proxy::{client, start};
use crate::raw::Raw;
use crate::transactions::owner_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_keys_to_another_server_and_never_loses_a_write() {
    let (c, proxy) = start().await;
    let target = TestCluster::start(1).await;
    let tid = target.leader().await;
    let taddr = target.peers[&tid].client_addr();
    let (host, port) = taddr.rsplit_once(':').unwrap();
    let mut con = client(&proxy).await;
    let mut t = target.client(tid).await;
    let migrate = |extra: &[&str], keys: &[&str]| {
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg(host).arg(port);
        if keys.len() == 1 {
            cmd.arg(keys[0]).arg(0).arg(5000).arg(extra);
        } else {
            cmd.arg("")
                .arg(0)
                .arg(5000)
                .arg(extra)
                .arg("KEYS")
                .arg(keys);
        }
        cmd
    };

    let _: () = con.set("{mg}a", "va").await.unwrap();
    let _: () = con.pset_ex("{mg}b", "vb", 100_000).await.unwrap();
    let r: String = migrate(&[], &["{mg}a", "{mg}b", "{mg}none"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(r, "OK");
    let n: i64 = con.exists(&["{mg}a", "{mg}b"]).await.unwrap();
    assert_eq!(n, 0, "moved keys are gone here");
    let got: Vec<Option<String>> = t.mget(&["{mg}a", "{mg}b"]).await.unwrap();
    assert_eq!(got, [Some("va".into()), Some("vb".into())]);
    let pttl: i64 = t.pttl("{mg}b").await.unwrap();
    assert!(
        pttl > 90_000 && pttl <= 100_000,
        "the TTL went along: {pttl}"
    );

    // COPY keeps the key; without REPLACE the target refuses an existing key.
    let _: () = con.set("{mg}a", "again").await.unwrap();
    let e = migrate(&["COPY"], &["{mg}a"])
        .query_async::<String>(&mut con)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Target instance replied with error: BUSYKEY"),
        "{e}"
    );
    let r: String = migrate(&["COPY", "REPLACE"], &["{mg}a"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(r, "OK");
    let here: String = con.get("{mg}a").await.unwrap();
    let there: String = t.get("{mg}a").await.unwrap();
    assert_eq!((here.as_str(), there.as_str()), ("again", "again"));
    let r: String = migrate(&[], &["{mg}none"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(r, "NOKEY");

    // A target that is not there: Redis's IOERR, and the key stays.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_port = gone.local_addr().unwrap().port();
    drop(gone);
    let e = redis::cmd("MIGRATE")
        .arg(&["127.0.0.1", &gone_port.to_string(), "{mg}a", "0", "1000"])
        .query_async::<String>(&mut con)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("error or timeout writing to target instance"),
        "{e}"
    );
    let here: String = con.get("{mg}a").await.unwrap();
    assert_eq!(here, "again", "nothing moved, nothing deleted");

    // At a node that does not own the slot: MOVED, as every keyed command.
    let mut moved = 0;
    for id in c.data_gids().into_iter().map(|g| c.members(g)[0]) {
        let mut raw = Raw::connect(&c.peers[&id].client_addr()).await;
        let r = raw
            .call(&format!(
                "MIGRATE {host} {port} {{mg}}a 0 5000 COPY REPLACE"
            ))
            .await;
        assert!(r == "+OK\r\n" || r.starts_with("-MOVED "), "{r}");
        moved += usize::from(r.starts_with("-MOVED "));
    }
    assert!(moved >= 1);

    // A write that lands while the keys are on their way stays here: the target holds its
    // writes while paused, so MIGRATE has read the key and waits for RESTORE's reply.
    let pending = held_at_target(&proxy, &mut t, migrate(&["REPLACE"], &["{mg}a"])).await;
    let _: () = con.set("{mg}a", "newer").await.unwrap();
    unpause(&mut t).await;
    let e = pending.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("written here meanwhile"), "{e}");
    let here: String = con.get("{mg}a").await.unwrap();
    assert_eq!(here, "newer", "the write made during MIGRATE is kept");
    let there: String = t.get("{mg}a").await.unwrap();
    assert_eq!(there, "again", "the target got the value MIGRATE read");

    proxy.stop();
    c.stop().await;
    target.stop().await;
}

/// The source's leader dies while MIGRATE waits for the target: the client hears that the
/// outcome is unknown, the proxy does not send MIGRATE again (to the new leader, which would
/// delete the key), and the key is still here, whatever the target did with its copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_whose_source_leader_dies_keeps_the_key() {
    let (mut c, proxy) = start().await;
    let target = TestCluster::start(1).await;
    let tid = target.leader().await;
    let taddr = target.peers[&tid].client_addr();
    let (host, port) = taddr.rsplit_once(':').unwrap();
    let mut con = client(&proxy).await;
    let mut t = target.client(tid).await;
    let _: () = con.set("{mk}a", "va").await.unwrap();

    let cmd = redis::cmd("MIGRATE")
        .arg(&[host, port, "{mk}a", "0", "10000"])
        .clone();
    let pending = held_at_target(&proxy, &mut t, cmd).await;
    let victim = owner_id(&c, "{mk}a").await;
    c.kill(victim).await;
    let e = pending.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("outcome is unknown"), "{e}");
    unpause(&mut t).await;

    let here: String = con.get("{mk}a").await.unwrap();
    assert_eq!(here, "va", "the key is still here, under the new leader");
    let there: Option<String> = t.get("{mk}a").await.unwrap();
    assert!(
        there.is_none() || there.as_deref() == Some("va"),
        "the target has MIGRATE's copy or nothing: {there:?}"
    );
    c.restart(victim).await;
    let here: String = con.get("{mk}a").await.unwrap();
    assert_eq!(here, "va");

    proxy.stop();
    c.stop().await;
    target.stop().await;
}

/// Sends `migrate` through the proxy once the target holds its writes (CLIENT PAUSE
/// WRITE), and returns when MIGRATE has connected there: it has read the keys and waits
/// for its RESTORE's reply until [`unpause`].
async fn held_at_target(
    proxy: &Proxy,
    t: &mut redis::aio::MultiplexedConnection,
    migrate: redis::Cmd,
) -> tokio::task::JoinHandle<redis::RedisResult<String>> {
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "20000", "WRITE"])
        .query_async(t)
        .await
        .unwrap();
    let clients_before = client_count(t).await;
    let mut mcon = client(proxy).await;
    let pending = tokio::spawn(async move { migrate.query_async::<String>(&mut mcon).await });
    wait_until(
        Duration::from_secs(10),
        "MIGRATE connected to the target",
        || {
            let mut t = t.clone();
            async move { (client_count(&mut t).await > clients_before).then_some(()) }
        },
    )
    .await;
    pending
}

async fn unpause(t: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(t)
        .await
        .unwrap();
}

async fn client_count(t: &mut redis::aio::MultiplexedConnection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(t)
        .await
        .unwrap();
    list.lines().count()
}
