//! The leader dies (kill -9 equivalent) under concurrent writers: a new leader serves, every
//! acknowledged write is present, and no write is applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::fixture::{wait_until, TestCluster};

/// What one writer saw: tokens acknowledged, and tokens whose outcome is unknown.
#[derive(Default)]
pub struct Outcomes {
    pub acked: BTreeSet<u64>,
    pub unknown: BTreeSet<u64>,
}

/// A writer appending `<w>-<n>,` to its own key, one command at a time, moving to another
/// node on any error. It never retries a token, so a duplicate can only come from the server.
pub async fn appender(
    w: usize,
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    acked_total: Arc<AtomicUsize>,
) -> Outcomes {
    let mut out = Outcomes::default();
    let mut target = 0;
    let mut con: Option<redis::aio::MultiplexedConnection> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if con.is_none() {
            let client = redis::Client::open(urls[target % urls.len()].as_str()).expect("url");
            match tokio::time::timeout(
                Duration::from_secs(2),
                client.get_multiplexed_async_connection(),
            )
            .await
            {
                Ok(Ok(mut c)) => {
                    c.set_response_timeout(Duration::from_secs(5));
                    con = Some(c)
                }
                _ => {
                    target += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(c) = con.as_mut() else { continue };
        n += 1;
        let cmd = redis::cmd("APPEND")
            .arg(format!("log{w}"))
            .arg(format!("{n},"))
            .clone();
        match tokio::time::timeout(Duration::from_secs(10), cmd.query_async::<i64>(c)).await {
            Ok(Ok(_)) => {
                out.acked.insert(n);
                acked_total.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) if e.to_string().contains("MOVED") => {
                // Redirected before proposing: definitely not applied.
                con = None;
                target += 1;
            }
            _ => {
                out.unknown.insert(n);
                con = None;
                target += 1;
            }
        }
    }
    out
}

/// Checks a writer's final value against what it saw.
pub fn check_log(w: usize, value: &str, seen: &Outcomes) {
    let tokens: Vec<u64> = value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("token"))
        .collect();
    let set: BTreeSet<u64> = tokens.iter().copied().collect();
    assert_eq!(
        set.len(),
        tokens.len(),
        "writer {w}: a write was applied twice: {tokens:?}"
    );
    assert!(
        tokens.windows(2).all(|p| p[0] < p[1]),
        "writer {w}: writes applied out of order"
    );
    for a in &seen.acked {
        assert!(
            set.contains(a),
            "writer {w}: acknowledged write {a} is lost"
        );
    }
    for t in &set {
        assert!(
            seen.acked.contains(t) || seen.unknown.contains(t),
            "writer {w}: {t} applied but was refused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_concurrent_writers() {
    let mut c = TestCluster::start(3).await;
    let first_leader = c.leader().await;
    let urls: Vec<String> = c.peers.keys().map(|id| c.url(*id)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(appender(w, urls.clone(), stop.clone(), acked.clone())))
        .collect();

    wait_until(
        Duration::from_secs(30),
        "300 acknowledged writes",
        || async { (acked.load(Ordering::Relaxed) >= 300).then_some(()) },
    )
    .await;
    c.kill(first_leader).await;
    let before = acked.load(Ordering::Relaxed);
    let new_leader = c.leader().await;
    assert_ne!(new_leader, first_leader);
    wait_until(
        Duration::from_secs(30),
        "300 more writes on the new leader",
        || async { (acked.load(Ordering::Relaxed) >= before + 300).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = BTreeMap::new();
    for (w, h) in writers.into_iter().enumerate() {
        seen.insert(w, h.await.expect("writer"));
    }

    // The killed leader comes back and catches up; all three agree.
    c.restart(first_leader).await;
    let data = c.converged().await;
    let values: BTreeMap<String, String> = data
        .into_iter()
        .map(|(k, v)| {
            let redraft::db::Data::Str(s) = v.data;
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&s).into_owned(),
            )
        })
        .collect();
    for (w, outcomes) in &seen {
        check_log(
            *w,
            values
                .get(&format!("log{w}"))
                .map(String::as_str)
                .unwrap_or(""),
            outcomes,
        );
    }
    c.stop().await;
}
