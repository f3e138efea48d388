use std::collections::BTreeSet;

use bytes::Bytes;
use openraft::testing::{log_id, membership_ent, StoreBuilder, Suite};
use openraft::{Entry, RaftSnapshotBuilder};
use tempfile::TempDir;

use super::*;
use crate::cmd::WriteCmd;
use crate::db::{DbWrite, Value};
use crate::raft::log_store::LogStore;
use crate::shard::request::ShardRequest;
use crate::storage::Storage;
use redraft_proxy::wire::Reply;

struct Builder;

impl StoreBuilder<ShardTC, LogStore<ShardTC>, ShardStateMachine, TempDir> for Builder {
    async fn build(&self) -> RaftRes<(TempDir, LogStore<ShardTC>, ShardStateMachine)> {
        let dir = tempfile::tempdir().map_err(snap_err)?;
        let storage = Storage::open(dir.path(), 0).map_err(snap_err)?;
        let log = LogStore::open(&storage, 1).map_err(snap_err)?;
        let sm = ShardStateMachine::open(&storage.snapshot_dir(), 1).map_err(snap_err)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn handles_are_shareable() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<ShardReader>();
    shareable::<Storage>();
    shareable::<LogStore<ShardTC>>();
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn open(dir: &Path) -> ShardStateMachine {
    ShardStateMachine::open(dir, 1).unwrap()
}

fn normal(index: u64, now_ms: u64, cmds: Vec<WriteCmd>) -> Entry<ShardTC> {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(ShardRequest::new(now_ms, cmds)),
    }
}

fn ttl_value(s: &str, expire_at: Option<u64>) -> Value {
    Value {
        expire_at,
        ..Value::string(s.to_string())
    }
}

fn write(argv: &[&str]) -> WriteCmd {
    let argv: Vec<Bytes> = argv
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    match crate::cmd::parse(&argv, 0) {
        crate::cmd::Command::Write(w) => w,
        other => panic!("{other:?}"),
    }
}

async fn snapshot(sm: &mut ShardStateMachine) -> Snapshot<ShardTC> {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// Installs `from`'s current snapshot into `to`, as a follower receives it.
async fn transfer(from: &mut ShardStateMachine, to: &mut ShardStateMachine) -> Meta {
    let mut file = to.begin_receiving_snapshot().await.unwrap();
    let mut src = from.get_current_snapshot().await.unwrap().unwrap();
    tokio::io::copy(&mut *src.snapshot, &mut *file)
        .await
        .unwrap();
    to.install_snapshot(&src.meta, file).await.unwrap();
    src.meta
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn apply_answers_every_entry_and_keeps_counters_and_ttl_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    sm.write_with(log_id(1, 1, 1), |st| {
        st.db.put(b"a", ttl_value("1", None));
        st.db.put(b"b", ttl_value("2", Some(100)));
        st.db.put(b"c", ttl_value("3", Some(300)));
    });
    assert_eq!((reader.key_count(), reader.expires_count()), (3, 2));
    assert_eq!(reader.expired_keys(250, 10), vec![Bytes::from_static(b"b")]);
    let replies = sm
        .apply([
            normal(
                2,
                150,
                vec![
                    WriteCmd::DeleteExpired(vec![
                        Bytes::from_static(b"b"),
                        Bytes::from_static(b"a"),
                        Bytes::from_static(b"zz"),
                    ]),
                    WriteCmd::DeleteExpired(vec![Bytes::from_static(b"b")]),
                ],
            ),
            openraft::testing::blank_ent::<ShardTC>(1, 1, 3),
            membership_ent::<ShardTC>(1, 1, 4, vec![BTreeSet::from([1, 2])]),
            normal(
                5,
                400,
                vec![WriteCmd::DeleteExpired(vec![Bytes::from_static(b"c")])],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        replies,
        vec![
            vec![Reply::Int(1), Reply::Int(0)],
            vec![],
            vec![],
            vec![Reply::Int(1)]
        ]
    );
    assert_eq!((reader.key_count(), reader.expires_count()), (1, 0));
    assert_eq!(reader.get_raw(b"a"), Some(ttl_value("1", None)));
    assert_eq!((reader.applied_index(), reader.clock()), (Some(5), 400));
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 5)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1, 4)));
}

/// A migration chunk's rows built apart from the state (`apply`, which Fills take) leave
/// the state exactly as adding them one by one does (`apply_sync`), entry after entry
/// of one apply: clears, overwrites with new expiry times, rows of slots not pulled,
/// a stale configuration, and a second chunk building on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_built_apart_applies_as_row_by_row() {
    use crate::cluster::config::test_node;
    use crate::cluster::Config;
    use crate::db::keys::data_key;
    use crate::shard::request::ClusterOp;
    let (a, b, c) = (&b"{a}"[..], &b"{b}"[..], &b"{c}"[..]);
    let slot = |tag: &[u8]| redraft_proxy::wire::key_slot(tag);
    let config = |num, ours: &[&[u8]]| {
        let mut cfg = Config::empty();
        cfg.num = num;
        for t in [a, b, c] {
            cfg.slots[usize::from(slot(t))] = if ours.contains(&t) { 1 } else { 2 };
        }
        cfg.groups.insert(1, vec![test_node(1)]);
        cfg.groups.insert(2, vec![test_node(2)]);
        cfg
    };
    let row = |key: &str, v: &str, t: Option<u64>| {
        let value = postcard::to_allocvec(&ttl_value(v, t)).unwrap();
        (Bytes::from(data_key(key.as_bytes())), Bytes::from(value))
    };
    let fill = |num, clear: Vec<u16>, kvs, complete| {
        WriteCmd::Cluster(ClusterOp::Fill {
            num,
            clear,
            kvs,
            dedup: Vec::new(),
            complete,
        })
    };
    let advance = |num, ours: &[&[u8]]| WriteCmd::Cluster(ClusterOp::Advance(config(num, ours)));
    let entries = vec![
        normal(1, 10, vec![advance(1, &[])]),
        normal(2, 10, vec![advance(2, &[a, b])]),
        // A pull's first chunk, which a restarted pull clears.
        normal(
            3,
            15,
            vec![fill(
                2,
                Vec::new(),
                vec![row("{a}0", "old", Some(300))],
                vec![],
            )],
        ),
        normal(
            4,
            20,
            vec![fill(
                2,
                vec![slot(a)],
                vec![
                    row("{a}1", "x", None),
                    row("{a}2", "y", Some(500)),
                    row("{b}1", "z", Some(700)),
                    row("{c}1", "not pulled", None),
                ],
                vec![slot(a)],
            )],
        ),
        normal(
            5,
            30,
            vec![
                fill(
                    2,
                    Vec::new(),
                    vec![
                        row("{b}1", "z2", Some(900)),
                        row("{b}2", "w", None),
                        row("{a}3", "after install", None),
                    ],
                    vec![slot(b)],
                ),
                write(&["SET", "{b}3", "v"]),
            ],
        ),
        normal(
            5,
            40,
            vec![fill(
                1,
                Vec::new(),
                vec![row("{b}4", "stale", None)],
                vec![],
            )],
        ),
    ];
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut apart, mut by_row) = (open(d1.path()), open(d2.path()));
    let r1 = apart.apply(entries.clone()).await.unwrap();
    let r2 = by_row.apply_sync(entries).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1[3], vec![Reply::Int(1)]);
    let keys = [
        "{a}0", "{a}1", "{a}2", "{a}3", "{b}1", "{b}2", "{b}3", "{b}4", "{c}1",
    ];
    let state = |sm: &ShardStateMachine| {
        let r = sm.reader();
        let cluster = r.cluster();
        let table = cluster.slots.as_ref().unwrap();
        (
            keys.map(|k| r.get_raw(k.as_bytes())),
            [a, b, c].map(|t| r.slot_len(slot(t))),
            (
                r.key_count(),
                r.expires_count(),
                r.expired_keys(u64::MAX, 10),
            ),
            (
                table.progress.keys_in,
                table.progress.bytes_in,
                table.pulling.len(),
            ),
        )
    };
    let (got, want) = (state(&apart), state(&by_row));
    assert_eq!(got, want);
    assert_eq!(got.0[0], None);
    assert_eq!(got.0[4], Some(ttl_value("z2", Some(900))));
    assert_eq!(got.1, [2, 3, 0]);
    assert_eq!((got.2 .0, got.2 .1), (5, 2));
    assert_eq!(got.3 .2, 0);
}

#[test]
fn a_read_view_is_one_point_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    sm.write_with(log_id(1, 1, 1), |st| st.db.put(b"a", ttl_value("0", None)));
    let view = reader.view();
    let (started_tx, started) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        sm.write_with(log_id(1, 1, 2), |st| {
            st.db.put(b"a", ttl_value("1", None));
            st.db.put(b"b", ttl_value("1", None));
        });
        sm
    });
    started.recv().unwrap();
    // The apply waits for the view: its reads all see the state before it.
    assert_eq!(view.get_raw(b"a"), Some(ttl_value("0", None)));
    assert_eq!(view.get_raw(b"b"), None);
    assert_eq!((view.key_count(), view.scan(0, 10).0.len()), (1, 1));
    drop(view);
    let _sm = writer.join().unwrap();
    let view = reader.view();
    assert_eq!(view.get_raw(b"a"), Some(ttl_value("1", None)));
    assert_eq!(view.key_count(), 2);
}

#[tokio::test]
async fn group_clock_never_runs_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    sm.write_with(log_id(1, 1, 1), |st| {
        st.db.put(b"k", ttl_value("v", Some(1500)))
    });
    sm.apply([normal(2, 2000, vec![])]).await.unwrap();
    assert_eq!(reader.clock(), 2000);
    // The next leader's clock is behind: the key is still expired for it.
    let del = WriteCmd::DeleteExpired(vec![Bytes::from_static(b"k")]);
    let replies = sm.apply([normal(3, 1000, vec![del])]).await.unwrap();
    assert_eq!(replies, vec![vec![Reply::Int(1)]]);
    assert_eq!(reader.clock(), 2000);
}

#[tokio::test]
async fn flushall_empties_the_keyspace_and_keeps_exactly_once_replies() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let append = write(&["ONCE", "7", "1", "APPEND", "k", "x"]);
    let r = sm
        .apply([normal(1, 0, vec![append.clone(), write(&["FLUSHALL"])])])
        .await
        .unwrap();
    assert_eq!(r[0], vec![Reply::Int(1), Reply::ok()]);
    assert_eq!((reader.key_count(), reader.get_raw(b"k")), (0, None));
    // A retry of the append from before the flush is answered, not run again.
    let r = sm.apply([normal(2, 0, vec![append])]).await.unwrap();
    assert_eq!(r[0], vec![Reply::Int(1)]);
    assert_eq!(reader.get_raw(b"k"), None);
}

#[tokio::test]
async fn once_answers_repeats_and_idle_entries_are_forgotten() {
    use crate::shard::apply::DEDUP_IDLE_MS;
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let once = |seq: u64| write(&["ONCE", "7", &seq.to_string(), "APPEND", "k", "x"]);
    let t = 1_000;
    let r = sm
        .apply([normal(1, t, vec![once(1), once(1), once(2), once(1)])])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        vec![Reply::Int(1), Reply::Int(1), Reply::Int(2), Reply::Int(1)]
    );
    // Restarted from a snapshot, the entries came with it.
    snapshot(&mut sm).await;
    drop(sm);
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let r = sm.apply([normal(2, t, vec![once(2)])]).await.unwrap();
    assert_eq!(r[0], vec![Reply::Int(2)], "a repeat after a restart");
    let (idle, next) = reader.idle_dedup(t + 1, None, 100, 10);
    assert_eq!((idle.len(), next), (1, None));
    assert!(reader.idle_dedup(t, None, 100, 10).0.is_empty());
    // A step that ends at its scan bound says where to go on.
    let (some, next) = reader.idle_dedup(t + 1, None, 1, 10);
    assert_eq!((some.len(), next.as_deref()), (1, Some(&idle[0][..])));
    let (rest, next) = reader.idle_dedup(t + 1, Some(&idle[0]), 1, 10);
    assert_eq!((rest.len(), next), (0, None));
    // Not idle long enough at the entry's time: kept.
    let forget = WriteCmd::ForgetDedup(idle.clone());
    let r = sm
        .apply([normal(
            3,
            t + DEDUP_IDLE_MS - 1,
            vec![forget.clone(), once(2)],
        )])
        .await
        .unwrap();
    assert_eq!(r[0], vec![Reply::Int(0), Reply::Int(2)]);
    // The repeat above refreshed nothing (a cached reply): idle from `t` on.
    let r = sm
        .apply([normal(4, t + DEDUP_IDLE_MS, vec![forget, once(2)])])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        vec![Reply::Int(1), Reply::Int(3)],
        "forgotten: the same seq applies again"
    );
}

#[tokio::test]
async fn a_write_waits_for_the_one_it_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let once = |stamp: &str, v: &str| write(&["ONCE", "7", stamp, "APPEND", "k", v]);
    let reader = sm.reader();
    let get = || reader.view().get_raw(b"k");
    // Write 2 follows write 1, which has not applied here (refused, to be retried).
    let r = sm
        .apply([normal(1, 0, vec![once("2:0:1", "b")])])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        vec![Reply::err(
            "TRYAGAIN write 2 of client 7 waits for its write 1"
        )]
    );
    assert_eq!(get(), None, "refused without running");
    assert!(!reader.view().settled(7, 1));
    // Its predecessor applied (in the same entry, ahead of it): the retry runs.
    let r = sm
        .apply([normal(2, 0, vec![once("1:0", "a"), once("2:0:1", "b")])])
        .await
        .unwrap();
    assert_eq!(r[0], vec![Reply::Int(1), Reply::Int(2)]);
    assert!(reader.view().settled(7, 1));
    // A predecessor acknowledged (below the floor) is as good as applied.
    let r = sm
        .apply([normal(3, 0, vec![once("3:2", "c"), once("5:2:4", "d")])])
        .await
        .unwrap();
    assert_eq!(r[0][0], Reply::Int(3));
    assert!(r[0][1].is_error(), "4 never applied: {:?}", r[0][1]);
    let r = sm
        .apply([normal(4, 0, vec![once("6:4", "e"), once("5:4:4", "d")])])
        .await
        .unwrap();
    assert_eq!(r[0], vec![Reply::Int(4), Reply::Int(5)]);
    assert_eq!(get(), Some(ttl_value("abced", None)));
}

/// A stamped write that fails to parse, and a GETEX without options, are recorded in the
/// client's order like any write: what names them goes on behind them, and a repeat gets
/// the first answer.
#[tokio::test]
async fn a_refused_or_read_only_stamped_write_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let refused = write(&["ONCE", "7", "1:0", "SET", "k", "v", "FOO"]);
    let getex = write(&["ONCE", "7", "2:0:1", "GETEX", "k"]);
    let append = write(&["ONCE", "7", "3:0:2", "APPEND", "k", "a"]);
    let r = sm
        .apply([normal(1, 0, vec![refused.clone(), getex, append])])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        vec![Reply::err("ERR syntax error"), Reply::Null, Reply::Int(1)]
    );
    assert!(reader.view().settled(7, 1) && reader.view().settled(7, 2));
    assert_eq!(reader.view().get_raw(b"k"), Some(ttl_value("a", None)));
    let r = sm.apply([normal(2, 0, vec![refused])]).await.unwrap();
    assert_eq!(
        r[0],
        vec![Reply::err("ERR syntax error")],
        "the first answer"
    );
}

#[tokio::test]
async fn a_restart_loads_the_newest_snapshot_and_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sm = open(dir.path());
        sm.apply([membership_ent::<ShardTC>(
            1,
            1,
            1,
            vec![BTreeSet::from([1])],
        )])
        .await
        .unwrap();
        sm.write_with(log_id(1, 1, 2), |st| {
            st.db.put(b"k", ttl_value("v", Some(9)))
        });
        let first = snapshot(&mut sm).await;
        let first = (
            snapshot_file::file_name(1, &first.meta.snapshot_id),
            std::fs::read(
                dir.path()
                    .join(snapshot_file::file_name(1, &first.meta.snapshot_id)),
            )
            .unwrap(),
        );
        sm.write_with(log_id(1, 1, 3), |st| {
            st.db.put(b"later", ttl_value("v", None))
        });
        snapshot(&mut sm).await;
        // Applied after the last snapshot: openraft replays it from the log.
        sm.write_with(log_id(1, 1, 4), |st| {
            st.db.put(b"replayed", ttl_value("v", None))
        });
        // As if a crash came between the newer file's rename and the older's removal.
        std::fs::write(dir.path().join(first.0), first.1).unwrap();
        assert_eq!(files(dir.path()).len(), 2);
    }
    let mut sm = open(dir.path());
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 3)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1, 1)));
    let r = sm.reader();
    assert_eq!(r.get_raw(b"k"), Some(ttl_value("v", Some(9))));
    assert_eq!(r.get_raw(b"replayed"), None);
    assert_eq!((r.key_count(), r.expires_count()), (2, 1));
    assert_eq!(r.expired_keys(9, 10), vec![Bytes::from_static(b"k")]);
    assert_eq!(r.applied_index(), Some(3));
    assert_eq!(files(dir.path()).len(), 1);
    let cur = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(cur.meta.last_log_id, applied);
}

#[tokio::test]
async fn snapshot_round_trip_into_a_fresh_store() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = open(dir_a.path());
    a.apply([membership_ent::<ShardTC>(
        1,
        1,
        1,
        vec![BTreeSet::from([1, 2])],
    )])
    .await
    .unwrap();
    a.write_with(log_id(1, 1, 2), |st| {
        for i in 0..5000u64 {
            st.db.put(
                format!("key{i}").as_bytes(),
                ttl_value("value", (i % 4 == 0).then_some(i)),
            );
        }
    });
    let snap = snapshot(&mut a).await;
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 1, 2)));
    // Later applies are not in the snapshot.
    a.write_with(log_id(1, 1, 3), |st| {
        st.db.put(b"later", ttl_value("x", None))
    });

    let mut b = open(dir_b.path());
    let rb = b.reader();
    b.write_with(log_id(1, 1, 1), |st| {
        st.db.put(b"stale", ttl_value("x", Some(1)))
    });
    transfer(&mut a, &mut b).await;
    assert_eq!(rb.view().get_raw(b"stale"), None);
    assert_eq!(rb.get_raw(b"later"), None);
    assert_eq!((rb.key_count(), rb.expires_count()), (5000, 1250));
    assert_eq!(rb.expired_keys(40, 100).len(), 11);
    assert_eq!(
        b.applied_state().await.unwrap(),
        (snap.meta.last_log_id, snap.meta.last_membership.clone())
    );
    let ra = a.reader();
    a.write_with(log_id(1, 1, 4), |st| {
        st.db.delete(b"later");
    });
    assert_eq!(rb.scan(0, 100_000), ra.scan(0, 100_000));
    assert_eq!(
        b.get_current_snapshot().await.unwrap().unwrap().meta,
        snap.meta
    );
    // Only the installed snapshot file is left.
    assert_eq!(files(dir_b.path()).len(), 1);

    // The install is durable: a restart comes back to it.
    drop((b, rb));
    let mut b = open(dir_b.path());
    assert_eq!(b.reader().key_count(), 5000);
    assert_eq!(
        b.get_current_snapshot().await.unwrap().unwrap().meta,
        snap.meta
    );
}

#[tokio::test]
async fn acknowledged_writes_are_forgotten_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let once = |stamp: &str, key: &str| write(&["ONCE", "7", stamp, "APPEND", key, "x"]);
    let too_old = |r: &Reply| matches!(r, Reply::Error(e) if e.contains("too old"));
    let r = sm
        .apply([normal(1, 1_000, vec![once("1", "a"), once("2:0", "b")])])
        .await
        .unwrap();
    assert_eq!(r[0], vec![Reply::Int(1), Reply::Int(1)]);
    let r = sm
        .apply([normal(2, 1_000, vec![once("3:2", "a"), once("1", "a")])])
        .await
        .unwrap();
    assert_eq!(r[0][0], Reply::Int(2));
    assert!(too_old(&r[0][1]), "{:?}: not applied again", r[0][1]);
    // One entry for the client whatever slots it wrote, holding only seq 3.
    let reader = sm.reader();
    let (rows, _) = reader.idle_dedup(u64::MAX, None, 100, 100);
    assert_eq!(rows.len(), 1);
    snapshot(&mut sm).await;
    drop((sm, reader));
    let mut sm = open(dir.path());
    let r = sm
        .apply([normal(3, 1_000, vec![once("3:2", "a"), once("2", "b")])])
        .await
        .unwrap();
    assert_eq!(r[0][0], Reply::Int(2), "seq 3 is answered after a restart");
    assert!(too_old(&r[0][1]), "{:?}", r[0][1]);
}

#[tokio::test]
async fn exactly_once_entries_follow_a_snapshot_install() {
    let once = |client: u64, seq: u64, v: &str| {
        write(&[
            "ONCE",
            &client.to_string(),
            &seq.to_string(),
            "APPEND",
            "k",
            v,
        ])
    };
    let member = || membership_ent::<ShardTC>(1, 1, 1, vec![BTreeSet::from([1, 2])]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = open(dir_a.path());
    a.apply([member(), normal(2, 1_000, vec![once(7, 1, "x")])])
        .await
        .unwrap();
    snapshot(&mut a).await;
    // b knows an entry (client 9) that the installed state does not have.
    let mut b = open(dir_b.path());
    let r = b
        .apply([member(), normal(2, 1_000, vec![once(9, 1, "yy")])])
        .await
        .unwrap();
    assert_eq!(r[1], vec![Reply::Int(2)]);
    transfer(&mut a, &mut b).await;
    let r = b
        .apply([normal(3, 1_000, vec![once(7, 1, "x"), once(9, 1, "yy")])])
        .await
        .unwrap();
    assert_eq!(
        r[0],
        vec![Reply::Int(1), Reply::Int(3)],
        "client 7's entry came with the snapshot; client 9's went with the old state"
    );
}

#[tokio::test]
async fn truncated_snapshot_is_rejected_and_state_kept() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = open(dir_a.path());
    a.write_with(log_id(1, 1, 2), |st| {
        for i in 0..100u64 {
            st.db
                .put(format!("key{i}").as_bytes(), ttl_value("value", None));
        }
    });
    let mut snap = snapshot(&mut a).await;
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut *snap.snapshot, &mut bytes)
        .await
        .unwrap();
    bytes.truncate(bytes.len() - 3);

    let mut b = open(dir_b.path());
    b.write_with(log_id(1, 1, 1), |st| {
        st.db.put(b"mine", ttl_value("x", None))
    });
    let mut file = b.begin_receiving_snapshot().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut *file, &bytes)
        .await
        .unwrap();
    assert!(b.install_snapshot(&snap.meta, file).await.is_err());
    assert_eq!(b.reader().get_raw(b"mine"), Some(ttl_value("x", None)));
    assert_eq!(b.reader().key_count(), 1);
    assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(1, 1, 1)));
    assert!(
        files(dir_b.path()).iter().all(|f| !f.ends_with(".snap")),
        "{:?}",
        files(dir_b.path())
    );
}

#[tokio::test]
async fn leftover_files_are_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sm = open(dir.path());
        sm.write_with(log_id(1, 1, 1), |st| st.db.put(b"k", ttl_value("v", None)));
        snapshot(&mut sm).await;
    }
    std::fs::write(dir.path().join("g1-recv-1.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("g1-2-9-9.snap.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("g2-keep.snap"), b"other group").unwrap();
    let sm = open(dir.path());
    assert_eq!(sm.reader().get_raw(b"k"), Some(ttl_value("v", None)));
    let left = files(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"g2-keep.snap".to_string()));
}
