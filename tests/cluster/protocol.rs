//! The RESP server: inline commands, pipelines, malformed input, limits, binary data,
//! RESP3, redirects from followers.

use redraft_proxy::wire::key_slot;

use crate::fixture::TestCluster;
use crate::raw::{encode, Raw};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_pipelines_and_protocol_errors() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let addr = c.peers[&leader].client_addr();

    // Inline commands, as redis-benchmark's PING_INLINE and telnet send them, pipelined.
    let mut r = Raw::connect(&addr).await;
    r.send(
        b"PING\r\nPING\nECHO \"a b\"\r\n\r\nset \"in line\" \"c\\x41\\n\"\r\nGET \"in line\"\r\n",
    )
    .await;
    assert_eq!(r.reply().await, b"+PONG\r\n");
    assert_eq!(r.reply().await, b"+PONG\r\n");
    assert_eq!(r.reply().await, b"$3\r\na b\r\n");
    assert_eq!(r.reply().await, b"+OK\r\n");
    assert_eq!(r.reply().await, b"$3\r\ncA\n\r\n");

    // A 10k-command pipeline of mixed writes and reads keeps its order, in one write.
    let mut batch = Vec::new();
    for i in 0..5000 {
        batch.extend(encode(&[
            b"SET",
            format!("p{i}").as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
        batch.extend(encode(&[b"GET", format!("p{}", i / 2).as_bytes()]));
    }
    r.send(&batch).await;
    for i in 0..5000 {
        assert_eq!(r.reply().await, b"+OK\r\n");
        let want = format!("v{}", i / 2);
        assert_eq!(
            r.reply().await,
            format!("${}\r\n{want}\r\n", want.len()).into_bytes(),
            "GET #{i}"
        );
    }

    // Replies ready at once (PING, ECHO), far more of them than fit one read: all come.
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(encode(&[b"ECHO", format!("e{i}").as_bytes()]));
        batch.extend(encode(&[b"PING"]));
    }
    r.send(&batch).await;
    for i in 0..2000 {
        let want = format!("e{i}");
        assert_eq!(
            r.reply().await,
            format!("${}\r\n{want}\r\n", want.len()).into_bytes()
        );
        assert_eq!(r.reply().await, b"+PONG\r\n", "PING #{i}");
    }

    // Writes only, so the node keeps several batches in flight behind each other, then a
    // read: replies in order, each write applied once, and the read sees all of them.
    let mut batch = Vec::new();
    for _ in 0..5000 {
        batch.extend(encode(&[b"APPEND", b"pipelined", b"x"]));
    }
    batch.extend(encode(&[b"STRLEN", b"pipelined"]));
    r.send(&batch).await;
    for i in 1..=5000 {
        assert_eq!(r.reply().await, format!(":{i}\r\n").into_bytes());
    }
    assert_eq!(r.reply().await, b":5000\r\n");

    // A client that stops sending (`printf … | nc`) still gets the replies to what it
    // sent, writes in flight included, and then the connection closes.
    let mut h = Raw::connect(&addr).await;
    let mut batch = Vec::new();
    for _ in 0..2000 {
        batch.extend(encode(&[b"APPEND", b"half-closed", b"x"]));
    }
    h.send(&batch).await;
    h.stream.shutdown().await.unwrap();
    for i in 1..=2000 {
        assert_eq!(h.reply().await, format!(":{i}\r\n").into_bytes());
    }
    assert!(h.closed().await);

    // Malformed frames: Redis's error text, then the connection closes and nothing
    // pipelined behind the error runs.
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$600000000\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*99999999999\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            "-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            // Nested (deep) arrays are not requests.
            b"*2\r\n*1\r\n*1\r\n$1\r\na\r\n",
            "-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            b"set \"a\"b c\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (bytes, want) in cases {
        let mut r = Raw::connect(&addr).await;
        let mut req = bytes.to_vec();
        req.extend_from_slice(&encode(&[b"SET", b"after-error", b"1"]));
        r.send(&req).await;
        assert_eq!(
            String::from_utf8_lossy(&r.reply().await),
            *want,
            "for {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            r.closed().await,
            "connection must close after a protocol error"
        );
    }
    // An inline line without a newline is capped at 64 KiB.
    let mut r = Raw::connect(&addr).await;
    r.send(&vec![b'a'; 70 * 1024]).await;
    assert_eq!(
        r.reply().await,
        b"-ERR Protocol error: too big inline request\r\n"
    );
    assert!(r.closed().await);

    let mut r = Raw::connect(&addr).await;
    assert_eq!(
        r.call("GET after-error").await,
        "$-1\r\n",
        "nothing after a protocol error ran"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_large_values_resp3_and_disconnects() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let addr = c.peers[&leader].client_addr();
    let mut r = Raw::connect(&addr).await;

    // Binary-safe keys and values, NUL bytes included.
    let key: &[u8] = b"bin\0key\r\n";
    let value: Vec<u8> = (0..=255u8).collect();
    assert_eq!(r.cmd(&[b"SET", key, &value]).await, b"+OK\r\n");
    let mut want = b"$256\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    assert_eq!(r.cmd(&[b"GET", key]).await, want);

    // 1 MiB values through the redis crate.
    let mut con = c.client(leader).await;
    let big = vec![b'x'; 1 << 20];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query_async(&mut con)
        .await
        .expect("set big");
    let got: Vec<u8> = redis::cmd("GET")
        .arg("big")
        .query_async(&mut con)
        .await
        .expect("get big");
    assert_eq!(got, big);
    let len: i64 = redis::cmd("APPEND")
        .arg("big")
        .arg("yz")
        .query_async(&mut con)
        .await
        .expect("append");
    assert_eq!(len, (1 << 20) + 2);

    // HELLO 3 switches this connection to RESP3 before replying.
    let hello = r.cmd(&[b"HELLO", b"3"]).await;
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{:?}",
        String::from_utf8_lossy(&hello)
    );
    assert_eq!(r.call("GET nosuchkey").await, "_\r\n");
    let hello = r.cmd(&[b"HELLO"]).await;
    assert!(
        hello.starts_with(b"%7\r\n"),
        "bare HELLO keeps the protocol"
    );
    let hello = r.cmd(&[b"HELLO", b"2"]).await;
    assert!(hello.starts_with(b"*14\r\n"));
    assert_eq!(r.call("GET nosuchkey").await, "$-1\r\n");
    assert_eq!(
        r.call("HELLO 4").await,
        "-NOPROTO unsupported protocol version\r\n"
    );

    // A client that disconnects mid-pipeline: the server keeps serving everyone else.
    for round in 0..3 {
        let mut d = Raw::connect(&addr).await;
        let mut batch = Vec::new();
        for i in 0..2000 {
            batch.extend(encode(&[
                b"APPEND",
                format!("dc{round}").as_bytes(),
                format!("{i},").as_bytes(),
            ]));
        }
        d.send(&batch[..batch.len() / 2]).await;
        drop(d);
    }
    assert_eq!(r.call("PING").await, "+PONG\r\n");
    // Whatever of the cut pipeline ran, ran once and in order.
    for round in 0..3 {
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("dc{round}"))
            .query_async(&mut con)
            .await
            .expect("get");
        let v = v.unwrap_or_default();
        let ids: Vec<usize> = v
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("id"))
            .collect();
        assert!(
            ids.iter().enumerate().all(|(i, id)| i == *id),
            "appends applied once, in order: {v:.80}"
        );
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_redirect_and_maxclients() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = *c
        .peers
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let mut f = Raw::connect(&c.peers[&follower].client_addr()).await;
    let moved = format!(
        "-MOVED {} {}\r\n",
        key_slot(b"foo"),
        c.peers[&leader].client_addr()
    );
    assert_eq!(f.call("SET foo bar").await, moved, "write at a follower");
    assert_eq!(f.call("GET foo").await, moved, "plain read at a follower");
    assert_eq!(f.call("PING").await, "+PONG\r\n");
    let role = f.call("ROLE").await;
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n"), "{role}");
    let info = f.call("INFO replication").await;
    assert!(info.contains("role:slave"), "{info}");

    let mut l = Raw::connect(&c.peers[&leader].client_addr()).await;
    let info = l.call("INFO replication").await;
    assert!(
        info.contains("role:master") && info.contains("connected_slaves:2"),
        "{info}"
    );
    let info = l.call("INFO raft").await;
    assert!(info.contains(&format!("raft_leader:{leader}")), "{info}");

    // maxclients: one connection more than allowed gets Redis's error and is closed.
    assert_eq!(l.call("CONFIG SET maxclients 2").await, "+OK\r\n");
    let _second = Raw::connect(&c.peers[&leader].client_addr()).await;
    let mut third = Raw::connect(&c.peers[&leader].client_addr()).await;
    assert_eq!(
        third.reply().await,
        b"-ERR max number of clients reached\r\n"
    );
    assert!(third.closed().await);
    assert_eq!(l.call("CONFIG SET maxclients 10000").await, "+OK\r\n");
    c.stop().await;
}

/// 24 pipelined 1 MiB writes: more than one log entry may carry (8 MiB), so the proposer
/// splits them over several entries, each small enough to replicate in one bus frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pipelined_values_replicate() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut con = c.client(leader).await;
    let entries0 = c.node(leader).group().entries_proposed();
    let value = vec![b'v'; 1 << 20];
    let mut pipe = redis::pipe();
    for i in 0..24 {
        pipe.cmd("SET").arg(format!("big{i}")).arg(&value).ignore();
    }
    let _: () = pipe
        .query_async(&mut con)
        .await
        .expect("pipeline of large values");
    let entries = c.node(leader).group().entries_proposed() - entries0;
    assert!(entries >= 3, "24 MiB of writes went into {entries} entries");
    let n: i64 = redis::cmd("DBSIZE")
        .query_async(&mut con)
        .await
        .expect("dbsize");
    assert_eq!(n, 24);
    let data = c.converged().await;
    assert_eq!(data.len(), 24);
    c.stop().await;
}

/// Each reply goes out in the protocol in force when its command ran: HELLO in the middle
/// of a pipeline changes only what follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_mid_pipeline_switches_protocol_for_what_follows() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut r = Raw::connect(&c.peers[&leader].client_addr()).await;
    let mut batch = encode(&[b"GET", b"missing"]);
    batch.extend(encode(&[b"HELLO", b"3"]));
    batch.extend(encode(&[b"GET", b"missing"]));
    batch.extend(encode(&[b"HELLO", b"+2"]));
    r.send(&batch).await;
    assert_eq!(r.reply().await, b"$-1\r\n");
    assert!(r.reply().await.starts_with(b"%7\r\n"));
    assert_eq!(r.reply().await, b"_\r\n");
    assert_eq!(
        r.reply().await,
        b"-ERR Protocol version is not an integer or out of range\r\n"
    );
    c.stop().await;
}
