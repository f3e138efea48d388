//! Resource limits: a client that never reads its replies is disconnected at the output
//! buffer limit without holding up anyone else, and ten thousand clients connecting at once
//! are each served or told `max number of clients reached`, never left hanging.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::fixture::{wait_until, TestCluster};
use crate::processes::ProcessCluster;

async fn connected_clients(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(con)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("connected_clients")
}

async fn set_output_limit(con: &mut redis::aio::MultiplexedConnection, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg(value)
        .query_async(con)
        .await
        .expect("CONFIG SET client-output-buffer-limit");
}

/// Opens a connection that pipelines `n` GETs of `key` and never reads a reply.
async fn never_reads(addr: &str, key: &str, n: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).repeat(n);
    s.write_all(req.as_bytes()).await.expect("send");
    s
}

/// Waits until the node has `n` clients.
async fn clients_back_to(con: &redis::aio::MultiplexedConnection, n: u64, what: &str) {
    wait_until(Duration::from_secs(20), what, || async {
        let mut con = con.clone();
        (connected_clients(&mut con).await == n).then_some(())
    })
    .await;
}

/// Reads until the server closes; a reset counts as closed too.
async fn read_until_closed(s: &mut TcpStream) -> usize {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return total,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("the server never closed the connection"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_at_the_output_buffer_limit() {
    let c = TestCluster::start(1).await;
    let id = c.leader().await;
    let addr = c.peers[&id].client_addr();
    let mut con = c.client(id).await;
    let big = vec![b'v'; 200 * 1024];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query_async(&mut con)
        .await
        .unwrap();
    let base = connected_clients(&mut con).await;
    // 100 replies of 200 KiB: 20 MB, far more than the socket buffers take.
    let all_replies = 100 * big.len();

    // Redis's default for normal clients is no limit: a client that stops reading is held
    // back by TCP, and everyone else is still served. (1000 replies: far more than the
    // socket buffers take, so its writer is blocked meanwhile.)
    let mut stuck = never_reads(&addr, "big", 1000).await;
    let v: Vec<u8> = redis::cmd("GET")
        .arg("big")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v.len(), big.len());
    assert_eq!(connected_clients(&mut con).await, base + 1);
    // Served in full once it reads. (Done before any limit is set: the server reads its
    // pipeline in batches that TCP decides, and a batch written after a limit is set
    // must obey it.)
    assert_eq!(read_all_replies(&mut stuck, 1000).await, 1000);
    drop(stuck);
    clients_back_to(&con, base, "the client without a limit to leave").await;

    // The hard limit: closed as soon as its pending replies exceed 1 MiB.
    set_output_limit(&mut con, "normal 1mb 0 0").await;
    let mut hard = never_reads(&addr, "big", 100).await;
    assert!(read_until_closed(&mut hard).await < all_replies);
    clients_back_to(&con, base, "the client over the hard limit to be gone").await;

    // The soft limit: closed once its pending replies stay above 64 KiB for a second.
    set_output_limit(&mut con, "normal 0 64kb 1").await;
    let mut soft = never_reads(&addr, "big", 100).await;
    // It lives a second past its accept; reading before it is closed would save it.
    clients_back_to(&con, base + 1, "the client over the soft limit to connect").await;
    clients_back_to(&con, base, "the client over the soft limit to be gone").await;
    assert!(read_until_closed(&mut soft).await < all_replies);

    let limit: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(limit[1].starts_with("normal 0 65536 1 "), "{limit:?}");
    set_output_limit(&mut con, "normal 0 0 0").await;
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("normal 1mb")
        .query_async(&mut con)
        .await;
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("Wrong number of arguments in buffer limit configuration"));
    c.stop().await;
}

/// Reads `n` bulk replies in full; returns how many arrived.
async fn read_all_replies(s: &mut TcpStream, n: usize) -> usize {
    let mut r = BufReader::new(s);
    let mut got = 0;
    let mut line = String::new();
    while got < n {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            break;
        }
        let len: usize = line.trim_end()[1..].parse().expect("a bulk length");
        let mut body = vec![0u8; len + 2];
        r.read_exact(&mut body).await.expect("a bulk body");
        got += 1;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_clients_connect_at_once() {
    const MAX: usize = 10_000;
    const CLIENTS: usize = 10_200;
    assert!(
        redraft::server::raise_fd_limit(CLIENTS) >= CLIENTS as u64,
        "this test needs {CLIENTS} file descriptors"
    );
    // A process of its own: it and the test each need their ten thousand descriptors.
    let node = ProcessCluster::standalone(&[&format!("--maxclients={MAX}")]);
    let addr = node.procs[&1].addr.clone();
    let mut con = wait_until(Duration::from_secs(30), "the node to serve", || async {
        let mut con = redis::Client::open(node.url(1))
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg("ready")
            .arg("1")
            .query_async(&mut con)
            .await;
        r.ok().map(|_| con)
    })
    .await;
    let base = connected_clients(&mut con).await;
    // Every client holds its connection until all have their answer, so no place frees up.
    let all_answered = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = addr.clone();
            let all_answered = all_answered.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(&addr).await.expect("connect");
                s.write_all(b"PING\r\n").await.expect("send");
                let mut line = String::new();
                let mut r = BufReader::new(&mut s);
                r.read_line(&mut line).await.expect("a reply");
                all_answered.wait().await;
                line
            })
        })
        .collect();
    let (mut pong, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap().as_str() {
            "+PONG\r\n" => pong += 1,
            "-ERR max number of clients reached\r\n" => refused += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(pong, MAX - base as usize);
    assert_eq!(refused, CLIENTS - pong);
    // All gone again, and the node still serves.
    clients_back_to(&con, base, "the ten thousand clients to be gone").await;
    let v: String = redis::cmd("GET")
        .arg("ready")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "1");
    drop(node);
}
