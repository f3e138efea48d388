//! The proxy against a fake node that refuses a connection's first write once, as a group
//! does while the write's slot moves, and otherwise applies what the proxy's stamps allow
//! (a group's rule: a write, or a read, that names an earlier write runs only once that
//! one has applied). The writes pipelined behind the refused one must not apply first, and
//! a read behind them must see them all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redraft_proxy::wire::{Limits, Protocol, Reply, RequestParser};
use redraft_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake node applied: the sequence numbers in order, and the one key's value.
#[derive(Default)]
struct Applied {
    seqs: Vec<u64>,
    value: Vec<u8>,
    refused_first: bool,
}

/// `seq[:acked[:after]]` → (seq, after).
fn stamp(s: &[u8]) -> (u64, u64) {
    let s = String::from_utf8_lossy(s);
    let n: Vec<u64> = s.split(':').map(|n| n.parse().unwrap()).collect();
    (n[0], n.get(2).copied().unwrap_or(0))
}

fn answer(argv: &[Bytes], port: u16, state: &Mutex<Applied>) -> Reply {
    let name = argv[0].to_ascii_uppercase();
    let sub = argv.get(1).map(|a| a.to_ascii_uppercase());
    let mut st = state.lock().unwrap();
    match (name.as_slice(), sub.as_deref()) {
        (b"CLUSTER", Some(b"SLOTS")) => Reply::Array(vec![Reply::Array(vec![
            Reply::Int(0),
            Reply::Int(16383),
            Reply::Array(vec![
                Reply::bulk_str("127.0.0.1"),
                Reply::Int(port as i64),
                Reply::bulk_str("fake"),
            ]),
        ])]),
        (b"CLUSTER", Some(b"INFO")) => Reply::Bulk(Bytes::from_static(
            b"cluster_state:ok\r\ncluster_current_epoch:1\r\n",
        )),
        (b"ONCE", _) => {
            let (seq, after) = stamp(&argv[2]);
            let waits = after > 0 && !st.seqs.contains(&after);
            match argv[3].to_ascii_uppercase().as_slice() {
                b"APPEND" if seq == 1 && !st.refused_first => {
                    st.refused_first = true;
                    Reply::err("TRYAGAIN Slot 0 is being migrated to this group, try again later")
                }
                b"APPEND" if st.seqs.contains(&seq) => Reply::err("ERR a repeat"),
                b"APPEND" if waits => Reply::err("TRYAGAIN waits for an earlier write"),
                b"APPEND" => {
                    st.seqs.push(seq);
                    st.value.extend_from_slice(&argv[5]);
                    Reply::Int(st.value.len() as i64)
                }
                b"GET" if waits => Reply::err("TRYAGAIN waits for an earlier write"),
                b"GET" => Reply::Bulk(Bytes::copy_from_slice(&st.value)),
                _ => Reply::err("ERR unexpected"),
            }
        }
        (b"GET", _) => Reply::Bulk(Bytes::copy_from_slice(&st.value)),
        _ => Reply::err("ERR unexpected"),
    }
}

async fn serve(mut conn: TcpStream, port: u16, state: Arc<Mutex<Applied>>) {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::new();
    while conn.read_buf(&mut buf).await.is_ok_and(|n| n > 0) {
        while let Ok(Some(argv)) = parser.parse(&mut buf) {
            answer(&argv, port, &state).encode(Protocol::Resp2, &mut out);
        }
        if conn.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_behind_a_refused_one_wait_for_it_and_a_read_sees_them_all() {
    let node = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = node.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(Applied::default()));
    let st = state.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = node.accept().await {
            tokio::spawn(serve(conn, port, st.clone()));
        }
    });
    let config = ProxyConfig {
        seeds: vec![format!("127.0.0.1:{port}")],
        retry_window: Duration::from_secs(10),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
    assert!(proxy.ready(Duration::from_secs(10)).await);

    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let mut req = Vec::new();
    for v in b'a'..=b'j' {
        req.extend_from_slice(b"*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n$1\r\n");
        req.extend_from_slice(&[v, b'\r', b'\n']);
    }
    req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    client.write_all(&req).await.unwrap();
    let want: String = (1..=10)
        .map(|n| format!(":{n}\r\n"))
        .chain(["$10\r\nabcdefghij\r\n".to_string()])
        .collect();
    let mut got = Vec::new();
    let read_all =
        async { while got.len() < want.len() && client.read_buf(&mut got).await.unwrap() > 0 {} };
    let _ = tokio::time::timeout(Duration::from_secs(10), read_all).await;
    assert_eq!(String::from_utf8_lossy(&got), want);
    let st = state.lock().unwrap();
    assert!(st.refused_first, "the first write was refused once");
    assert_eq!(st.seqs, (1..=10).collect::<Vec<u64>>(), "applied in order");
    drop(st);
    proxy.stop();
}
