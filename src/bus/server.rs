//! Incoming side of the bus: the bus-port listener and one task per accepted connection.
//!
//! A connection starts with the [`Hello`] handshake; after it, each request is handled in
//! its own task so a slow snapshot chunk never holds up a vote, and responses go out as
//! they complete, matched to their request by id.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::codec;
use super::fault::{FaultTable, Verdict};
use super::message::{
    BusRequest, BusResponse, Hello, HelloReply, ResponseFrame, BUS_VERSION, MAX_FRAME_LEN,
};
use super::BusHandler;
use crate::raft::NodeId;

/// How long a new connection may take to say hello before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued for one connection's writer.
const WRITE_QUEUE: usize = 1024;

/// What every connection task of one bus needs.
#[derive(Clone)]
pub(crate) struct ServerCtx {
    pub node_id: NodeId,
    pub handler: Arc<dyn BusHandler>,
    pub faults: Arc<FaultTable>,
    /// Connections accepted so far (handshake or not), for tests and metrics.
    pub accepted: Arc<AtomicU64>,
}

/// Accepts connections until `cancel`; then drops the listener and every connection, so
/// peers see this node as down (connection refused / reset), as after a crash.
pub(crate) async fn accept_loop(listener: TcpListener, ctx: ServerCtx, cancel: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    ctx.accepted.fetch_add(1, Ordering::Relaxed);
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        if let Err(reason) = serve_conn(stream, ctx).await {
                            tracing::debug!(%peer, %reason, "bus connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Usually fd exhaustion; back off instead of spinning.
                    tracing::warn!(error = %e, "bus accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_conn(stream: TcpStream, ctx: ServerCtx) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (read, write) = stream.into_split();
    let mut read = FramedRead::new(read, codec());
    let mut write = FramedWrite::new(write, codec());

    let from = match handshake(&mut read, ctx.node_id).await {
        Ok(from) => {
            send(&mut write, &HelloReply::Accepted).await?;
            from
        }
        Err(reason) => {
            tracing::error!(node = ctx.node_id, %reason, "refusing bus connection");
            // Best effort: the caller learns why, then the connection closes.
            let _ = send(&mut write, &HelloReply::Refused(reason.clone())).await;
            return Err(reason);
        }
    };

    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    tokio::select! {
        r = read_loop(read, tx, from, &ctx) => r,
        r = write_loop(write, rx) => r,
    }
}

/// Reads and checks the peer's [`Hello`]; returns the caller's node id.
async fn handshake(
    read: &mut FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    me: NodeId,
) -> Result<NodeId, String> {
    let frame = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) => return Err(format!("reading hello: {e}")),
        Ok(None) => return Err("closed before hello".into()),
        Err(_) => return Err("no hello in time".into()),
    };
    let hello: Hello = postcard::from_bytes(&frame).map_err(|e| format!("bad hello: {e}"))?;
    if hello.version != BUS_VERSION {
        return Err(format!(
            "bus version mismatch: node {} speaks {}, node {me} speaks {BUS_VERSION}",
            hello.from, hello.version
        ));
    }
    if hello.to != me && hello.to != super::message::ANY_NODE {
        return Err(format!(
            "node {} dialled node {} but reached node {me}: wrong address",
            hello.from, hello.to
        ));
    }
    Ok(hello.from)
}

async fn read_loop(
    mut read: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    tx: mpsc::Sender<Bytes>,
    from: NodeId,
    ctx: &ServerCtx,
) -> Result<(), String> {
    while let Some(frame) = read.next().await {
        let frame = frame.map_err(|e| e.to_string())?;
        // The id is decoded on its own first, so a request this build does not know
        // (a newer variant) still gets an error answer instead of killing the connection.
        let (id, rest) =
            postcard::take_from_bytes::<u64>(&frame).map_err(|e| format!("bad frame: {e}"))?;
        let tx = tx.clone();
        let ctx = ctx.clone();
        match postcard::from_bytes::<BusRequest>(rest) {
            Ok(req) => {
                tokio::spawn(async move {
                    // A panicking handler answers with an error instead of leaving the
                    // caller to time out; nothing is shared with it, so unwinding is safe.
                    let handled = AssertUnwindSafe(ctx.handler.handle(from, req)).catch_unwind();
                    let resp = handled.await.unwrap_or_else(|_| {
                        tracing::error!(from, "bus handler panicked");
                        BusResponse::Error("handler panicked".into())
                    });
                    reply(&ctx, from, &tx, id, resp).await;
                });
            }
            Err(e) => {
                let resp = BusResponse::Error(format!("undecodable request: {e}"));
                tokio::spawn(async move { reply(&ctx, from, &tx, id, resp).await });
            }
        }
    }
    Ok(())
}

/// Sends a response back through the fault table's view of the reply link.
async fn reply(ctx: &ServerCtx, to: NodeId, tx: &mpsc::Sender<Bytes>, id: u64, resp: BusResponse) {
    let frame = match ctx.faults.check(ctx.node_id, to) {
        Verdict::Drop => return,
        Verdict::Blocked => ResponseFrame::LinkBlocked { id },
        Verdict::Pass(delay) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            ResponseFrame::Response { id, resp }
        }
    };
    let bytes = match crate::codec::to_vec(&frame) {
        // An oversized frame would fail the write and close the connection for everyone.
        Ok(bytes) if bytes.len() > MAX_FRAME_LEN => {
            let resp = BusResponse::Error(format!(
                "response of {} bytes exceeds the bus frame limit of {MAX_FRAME_LEN}",
                bytes.len()
            ));
            match crate::codec::to_vec(&ResponseFrame::Response { id, resp }) {
                Ok(bytes) => bytes,
                Err(e) => return tracing::error!(error = %e, "cannot encode bus response"),
            }
        }
        Ok(bytes) => bytes,
        Err(e) => return tracing::error!(error = %e, "cannot encode bus response"),
    };
    // A send error means the connection is gone; the caller sees that already.
    let _ = tx.send(Bytes::from(bytes)).await;
}

/// Writes responses, flushing once per burst.
async fn write_loop(
    mut write: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<(), String> {
    // The read loop holds a sender for as long as the connection is open, so `None`
    // cannot happen before the select above has already finished.
    while let Some(frame) = rx.recv().await {
        write.feed(frame).await.map_err(|e| e.to_string())?;
        while let Ok(frame) = rx.try_recv() {
            write.feed(frame).await.map_err(|e| e.to_string())?;
        }
        SinkExt::<Bytes>::flush(&mut write)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn send<T: serde::Serialize>(
    write: &mut FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    msg: &T,
) -> Result<(), String> {
    let bytes = crate::codec::to_vec(msg).map_err(|e| e.to_string())?;
    write
        .send(Bytes::from(bytes))
        .await
        .map_err(|e| e.to_string())
}
