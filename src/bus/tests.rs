//! In-process buses on loopback, talking to an echo handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::*;

/// Group that makes the handler sleep `body[0]` milliseconds before answering.
const SLOW_GID: u64 = 1;
/// Group the handler does not host.
const UNKNOWN_GID: u64 = 999;
/// Group whose handler panics.
const PANIC_GID: u64 = 666;
const T: Duration = Duration::from_secs(5);

/// Answers `Raft(node ++ from ++ body)`, so a test can check who answered whom with what.
struct Echo {
    node: NodeId,
}

impl BusHandler for Echo {
    fn handle(&self, from: NodeId, req: BusRequest) -> BoxFuture<'static, BusResponse> {
        let node = self.node;
        Box::pin(async move {
            let BusRequest::Raft { gid, body, .. } = req else {
                return BusResponse::Status {
                    initialized: true,
                    last_log_index: None,
                };
            };
            assert_ne!(gid, PANIC_GID, "test handler panics on purpose");
            if gid == UNKNOWN_GID {
                return BusResponse::Error(format!("unknown group {gid}"));
            }
            if gid == SLOW_GID {
                let ms = body.first().copied().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            }
            let mut out = node.to_le_bytes().to_vec();
            out.extend(from.to_le_bytes());
            out.extend(body);
            BusResponse::Raft(out)
        })
    }
}

fn expected(node: NodeId, from: NodeId, body: &[u8]) -> BusResponse {
    let mut out = node.to_le_bytes().to_vec();
    out.extend(from.to_le_bytes());
    out.extend(body);
    BusResponse::Raft(out)
}

fn req(gid: u64, body: &[u8]) -> BusRequest {
    BusRequest::Raft {
        gid,
        rpc: RaftRpcKind::AppendEntries,
        body: body.to_vec(),
    }
}

async fn start_at(id: NodeId, addr: SocketAddr, faults: &Arc<FaultTable>) -> Bus {
    Bus::start(id, addr, Arc::new(Echo { node: id }), faults.clone())
        .await
        .expect("start bus")
}

async fn start(id: NodeId, faults: &Arc<FaultTable>) -> Bus {
    start_at(id, "127.0.0.1:0".parse().expect("addr"), faults).await
}

/// Two nodes (1 and 2) sharing one fault table.
async fn pair() -> (Arc<FaultTable>, Bus, Bus) {
    let faults = Arc::new(FaultTable::new());
    let a = start(1, &faults).await;
    let b = start(2, &faults).await;
    (faults, a, b)
}

fn addr(bus: &Bus) -> String {
    bus.local_addr().to_string()
}

#[tokio::test]
async fn round_trip() {
    let (_f, a, b) = pair().await;
    let resp = a.call(2, &addr(&b), req(7, b"hello"), T).await;
    assert_eq!(resp, Ok(expected(2, 1, b"hello")));
    let resp = b.call(1, &addr(&a), req(7, b"back"), T).await;
    assert_eq!(resp, Ok(expected(1, 2, b"back")));
    let big = vec![0xab; 8 * 1024 * 1024];
    let resp = a.call(2, &addr(&b), req(7, &big), T).await;
    assert_eq!(resp, Ok(expected(2, 1, &big)));
}

#[tokio::test]
async fn oversized_request_is_refused_without_breaking_the_connection() {
    let (_f, a, b) = pair().await;
    assert!(a.call(2, &addr(&b), req(7, b"x"), T).await.is_ok());
    let huge = vec![0; MAX_FRAME_LEN];
    match a.call(2, &addr(&b), req(7, &huge), T).await {
        Err(BusError::TooLarge { size, max }) => assert!(size > max),
        other => panic!("unexpected {other:?}"),
    }
    assert!(a.call(2, &addr(&b), req(7, b"x"), T).await.is_ok());
    assert_eq!(b.accepted_connections(), 1);
}

#[tokio::test]
async fn remote_error_surfaces_as_remote() {
    let (_f, a, b) = pair().await;
    match a.call(2, &addr(&b), req(UNKNOWN_GID, b""), T).await {
        Err(BusError::Remote { target: 2, message }) => assert!(message.contains("unknown group")),
        other => panic!("unexpected {other:?}"),
    }
    match a.call(2, &addr(&b), req(PANIC_GID, b""), T).await {
        Err(BusError::Remote { message, .. }) => assert!(message.contains("panicked")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(a.call(2, &addr(&b), req(7, b""), T).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_share_one_connection() {
    let (_f, a, b) = pair().await;
    let b_addr = addr(&b);
    let calls = (0..1000u32).map(|i| {
        let a = a.clone();
        let b_addr = b_addr.clone();
        async move {
            // First byte is the handler's sleep (0..=9 ms), so answers come back out of order.
            let body = [&[(i % 10) as u8][..], &i.to_le_bytes()[..]].concat();
            let resp = a.call(2, &b_addr, req(SLOW_GID, &body), T).await;
            assert_eq!(resp, Ok(expected(2, 1, &body)), "call {i}");
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(b.accepted_connections(), 1);
}

#[tokio::test]
async fn handshake_refuses_wrong_node_id() {
    let (_f, a, b) = pair().await;
    // Node 1 believes node 3 lives at node 2's address.
    match a.call(3, &addr(&b), req(7, b""), T).await {
        Err(BusError::Handshake { target: 3, reason }) => {
            assert!(reason.contains("wrong address"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
    // The right id at the same address still works.
    assert!(a.call(2, &addr(&b), req(7, b""), T).await.is_ok());
}

#[tokio::test]
async fn handshake_refuses_other_version() {
    let (_f, _a, b) = pair().await;
    let stream = TcpStream::connect(b.local_addr()).await.expect("connect");
    let mut framed = Framed::new(stream, codec());
    let hello = Hello {
        version: BUS_VERSION + 1,
        from: 1,
        to: 2,
    };
    let bytes = postcard::to_stdvec(&hello).expect("encode");
    framed.send(Bytes::from(bytes)).await.expect("send");
    let frame = framed.next().await.expect("reply").expect("frame");
    match postcard::from_bytes::<HelloReply>(&frame).expect("decode") {
        HelloReply::Refused(reason) => assert!(reason.contains("version"), "{reason}"),
        HelloReply::Accepted => panic!("accepted another version"),
    }
    // Then the server hangs up.
    assert!(framed.next().await.is_none());
}

#[tokio::test]
async fn partition_is_unreachable_fast_and_heals() {
    let (faults, a, b) = pair().await;
    let b_addr = addr(&b);
    assert!(a.call(2, &b_addr, req(7, b"x"), T).await.is_ok());

    faults.partition(1, 2);
    let started = Instant::now();
    let r = a.call(2, &b_addr, req(7, b"x"), T).await;
    assert!(
        matches!(r, Err(BusError::Unreachable { target: 2, .. })),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let r = b.call(1, &addr(&a), req(7, b"x"), T).await;
    assert!(
        matches!(r, Err(BusError::Unreachable { target: 1, .. })),
        "{r:?}"
    );

    faults.heal();
    assert_eq!(
        a.call(2, &b_addr, req(7, b"x"), T).await,
        Ok(expected(2, 1, b"x"))
    );

    faults.isolate(2);
    let r = a.call(2, &b_addr, req(7, b"x"), T).await;
    assert!(matches!(r, Err(BusError::Unreachable { .. })), "{r:?}");
    faults.heal();
    assert!(a.call(2, &b_addr, req(7, b"x"), T).await.is_ok());
}

#[tokio::test]
async fn one_way_partition_blocks_the_reply() {
    let (faults, a, b) = pair().await;
    // Requests 1 → 2 get through, replies 2 → 1 do not.
    faults.block(2, 1);
    let started = Instant::now();
    let r = a.call(2, &addr(&b), req(7, b"x"), T).await;
    assert!(
        matches!(r, Err(BusError::Unreachable { target: 2, .. })),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn dropped_messages_time_out() {
    let (faults, a, b) = pair().await;
    let short = Duration::from_millis(200);
    faults.set_drop(1, 2, 1.0);
    let started = Instant::now();
    let r = a.call(2, &addr(&b), req(7, b"x"), short).await;
    assert_eq!(
        r,
        Err(BusError::Timeout {
            target: 2,
            timeout: short
        })
    );
    assert!(started.elapsed() >= short);
    faults.heal();

    // A dropped reply also times out, and the connection stays usable afterwards.
    faults.set_drop(2, 1, 1.0);
    let r = a.call(2, &addr(&b), req(7, b"x"), short).await;
    assert_eq!(
        r,
        Err(BusError::Timeout {
            target: 2,
            timeout: short
        })
    );
    faults.heal();
    assert!(a.call(2, &addr(&b), req(7, b"x"), T).await.is_ok());
    assert_eq!(b.accepted_connections(), 1);
}

#[tokio::test]
async fn delayed_messages() {
    let (faults, a, b) = pair().await;
    faults.set_delay(1, 2, Duration::from_millis(100));
    faults.set_delay(2, 1, Duration::from_millis(50));
    let started = Instant::now();
    assert!(a.call(2, &addr(&b), req(7, b"x"), T).await.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(150));
    // A delay longer than the timeout is a timeout.
    let short = Duration::from_millis(80);
    let r = a.call(2, &addr(&b), req(7, b"x"), short).await;
    assert_eq!(
        r,
        Err(BusError::Timeout {
            target: 2,
            timeout: short
        })
    );
}

#[tokio::test]
async fn shutdown_peer_is_unreachable() {
    let (_f, a, b) = pair().await;
    let b_addr = addr(&b);
    assert!(a.call(2, &b_addr, req(7, b"x"), T).await.is_ok());

    // A call in flight when the peer dies fails at once, not at its timeout.
    let in_flight = {
        let a = a.clone();
        let b_addr = b_addr.clone();
        tokio::spawn(async move { a.call(2, &b_addr, req(SLOW_GID, &[200]), T).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    b.shutdown().await;
    let r = in_flight.await.expect("join");
    assert!(
        matches!(r, Err(BusError::Unreachable { target: 2, .. })),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let r = a.call(2, &b_addr, req(7, b"x"), T).await;
    assert!(
        matches!(r, Err(BusError::Unreachable { target: 2, .. })),
        "{r:?}"
    );
    // And the stopped node itself refuses to call out.
    assert_eq!(
        b.call(1, &addr(&a), req(7, b"x"), T).await,
        Err(BusError::Shutdown)
    );
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_bus() {
    let (_f, a, b) = pair().await;
    let b_addr = addr(&b);
    assert!(a.call(2, &b_addr, req(7, b"x"), T).await.is_ok());
    drop(b);
    // Drop cannot wait for the listener task; give it a moment.
    let mut last = None;
    for _ in 0..100 {
        let r = a.call(2, &b_addr, req(7, b"x"), T).await;
        if matches!(r, Err(BusError::Unreachable { .. })) {
            return;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still reachable: {last:?}");
}

#[tokio::test]
async fn reconnects_after_peer_restarts_on_same_port() {
    let (faults, a, b) = pair().await;
    let b_sock = b.local_addr();
    let b_addr = b_sock.to_string();
    assert!(a.call(2, &b_addr, req(7, b"x"), T).await.is_ok());
    b.shutdown().await;
    let r = a.call(2, &b_addr, req(7, b"x"), T).await;
    assert!(matches!(r, Err(BusError::Unreachable { .. })), "{r:?}");

    let b2 = start_at(2, b_sock, &faults).await;
    assert_eq!(
        a.call(2, &b_addr, req(7, b"y"), T).await,
        Ok(expected(2, 1, b"y"))
    );
    assert_eq!(b2.accepted_connections(), 1);
}

#[tokio::test]
async fn three_nodes_share_one_table() {
    let faults = Arc::new(FaultTable::new());
    let n: Vec<Bus> = futures::future::join_all((1..=3).map(|id| start(id, &faults))).await;
    faults.partition(1, 3);
    assert!(n[0].call(2, &addr(&n[1]), req(7, b""), T).await.is_ok());
    assert!(n[1].call(3, &addr(&n[2]), req(7, b""), T).await.is_ok());
    let r = n[0].call(3, &addr(&n[2]), req(7, b""), T).await;
    assert!(matches!(r, Err(BusError::Unreachable { .. })), "{r:?}");
}

#[test]
fn garbage_from_a_peer_decodes_without_panicking() {
    // A frame length far past the limit, a truncated frame, frames of junk.
    assert_eq!(super::decode_stream(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]), 0);
    assert_eq!(super::decode_stream(&[0, 0, 0, 9, 1, 2]), 0);
    let mut junk = Vec::new();
    for n in 0u8..64 {
        junk.extend_from_slice(&[0, 0, 0, n]);
        junk.extend((0..n).map(|i| i.wrapping_mul(37) ^ n));
    }
    assert_eq!(super::decode_stream(&junk), 64);
}
