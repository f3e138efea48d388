//! Node-to-node RPC (the "cluster bus"): Raft traffic for every hosted group, and later
//! slot migration, between redraft nodes.
//!
//! tokio TCP, length-delimited frames, postcard bodies. A connection opens with a
//! [`Hello`] handshake that checks the protocol version and that the caller reached the
//! node it meant to; then requests carry ids so one connection per peer node is shared by
//! all callers and answered out of order. A [`FaultTable`] sits on both sides of every
//! link so tests can partition, drop and delay messages in-process. It is compiled in
//! always (not behind a feature) so the integration tests in `tests/` can use it; with an
//! empty table its cost is one atomic load per message.
//!
//! Place in the data path: `raft::network` → [`Bus::call`] → peer's `server` →
//! [`BusHandler`] (the node's group registry) → `raft::network::serve` → openraft.

mod client;
pub mod fault;
pub mod message;
mod server;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::codec::LengthDelimitedCodec;
use tokio_util::sync::CancellationToken;

use crate::raft::NodeId;
use client::Client;
use server::ServerCtx;

pub use fault::{FaultTable, Verdict};
pub use message::{
    BusRequest, BusResponse, Hello, HelloReply, RaftRpcKind, ANY_NODE, BUS_VERSION, MAX_BODY_LEN,
    MAX_FRAME_LEN,
};

/// Why a bus call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Could not reach the peer (refused, reset, closed, link cut). Nothing more is known
    /// about whether the request ran; callers should back off before retrying.
    #[error("node {target} unreachable: {reason}")]
    Unreachable { target: NodeId, reason: String },
    /// No response in time; the request may or may not have run.
    #[error("call to node {target} timed out after {timeout:?}")]
    Timeout { target: NodeId, timeout: Duration },
    /// The peer refused the handshake: wrong node at that address, or another bus version.
    #[error("node {target} refused the bus handshake: {reason}")]
    Handshake { target: NodeId, reason: String },
    /// The peer answered with [`BusResponse::Error`] (unknown group, undecodable request).
    #[error("node {target} could not handle the request: {message}")]
    Remote { target: NodeId, message: String },
    /// The encoded request exceeds [`MAX_FRAME_LEN`]; it was not sent and the connection
    /// stays up. Raft splits AppendEntries before this happens (see `raft::network`).
    #[error("request of {size} bytes exceeds the bus frame limit of {max}")]
    TooLarge { size: usize, max: usize },
    /// A message could not be encoded or decoded.
    #[error("bus codec: {0}")]
    Codec(String),
    /// This node's bus has been shut down.
    #[error("bus is shut down")]
    Shutdown,
}

/// What a node does with incoming requests. Returning a boxed `'static` future lets the
/// server run each request in its own task without tying it to the connection.
pub trait BusHandler: Send + Sync + 'static {
    fn handle(&self, from: NodeId, req: BusRequest) -> BoxFuture<'static, BusResponse>;
}

/// This node's end of the bus: the listener plus the outgoing connection table.
/// Cheap to clone; the last clone dropped (or [`Bus::shutdown`]) closes everything.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    local_addr: SocketAddr,
    client: Client,
    faults: Arc<FaultTable>,
    accepted: Arc<AtomicU64>,
    cancel: CancellationToken,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.client.close_all();
    }
}

impl Bus {
    /// Binds `bind` (port 0 picks a free port, see [`Bus::local_addr`]) and starts serving
    /// requests with `handler`. Must run inside a tokio runtime.
    pub async fn start(
        node_id: NodeId,
        bind: SocketAddr,
        handler: Arc<dyn BusHandler>,
        faults: Arc<FaultTable>,
    ) -> io::Result<Bus> {
        let listener = TcpListener::bind(bind).await?;
        Self::start_with(node_id, listener, handler, faults)
    }

    /// Starts on a listener the caller bound (tests bind `:0` first to learn every port).
    pub fn start_with(
        node_id: NodeId,
        listener: TcpListener,
        handler: Arc<dyn BusHandler>,
        faults: Arc<FaultTable>,
    ) -> io::Result<Bus> {
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let accepted = Arc::new(AtomicU64::new(0));
        let ctx = ServerCtx {
            node_id,
            handler,
            faults: faults.clone(),
            accepted: accepted.clone(),
        };
        let accept_task = tokio::spawn(server::accept_loop(listener, ctx, cancel.child_token()));
        tracing::info!(node_id, %local_addr, "bus listening");
        Ok(Bus {
            inner: Arc::new(Inner {
                node_id,
                local_addr,
                client: Client::new(node_id, faults.clone(), cancel.child_token()),
                faults,
                accepted,
                cancel,
                accept_task: Mutex::new(Some(accept_task)),
            }),
        })
    }

    /// This node's id, as sent in every handshake.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The address actually bound (resolves port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The fault table this bus consults.
    pub fn faults(&self) -> &Arc<FaultTable> {
        &self.inner.faults
    }

    /// Incoming connections accepted so far: with multiplexing, one per peer (plus one
    /// per reconnect).
    pub fn accepted_connections(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Sends `req` to node `target` at `addr` (its bus address) and waits up to `timeout`.
    /// A [`BusResponse::Error`] answer comes back as [`BusError::Remote`], so `Ok` is
    /// always a real response.
    pub async fn call(
        &self,
        target: NodeId,
        addr: &str,
        req: BusRequest,
        timeout: Duration,
    ) -> Result<BusResponse, BusError> {
        match self.inner.client.call(target, addr, req, timeout).await? {
            BusResponse::Error(message) => Err(BusError::Remote { target, message }),
            resp => Ok(resp),
        }
    }

    /// Stops accepting, closes every incoming and outgoing connection and releases the
    /// port before returning, so a test can restart the node on the same address. Calls in
    /// flight fail as `Unreachable`; later calls fail with `Shutdown`.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.client.close_all();
        let task = self
            .inner
            .accept_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "bus accept task failed");
            }
        }
    }
}

/// The frame codec both sides use.
fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec()
}

/// Decodes bytes as a peer's stream would be decoded: frames, then the handshake, request
/// and response bodies inside each. Returns how many frames there were. For the fuzz
/// target (`tests/fuzz`) and its regression tests: nothing a peer sends may panic.
pub fn decode_stream(data: &[u8]) -> usize {
    use tokio_util::codec::Decoder;
    let mut codec = codec();
    let mut buf = bytes::BytesMut::from(data);
    let mut frames = 0;
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        frames += 1;
        let _ = postcard::from_bytes::<Hello>(&frame);
        if let Ok((_, rest)) = postcard::take_from_bytes::<u64>(&frame) {
            let _ = postcard::from_bytes::<BusRequest>(rest);
        }
        let _ = postcard::from_bytes::<message::ResponseFrame>(&frame);
    }
    frames
}

#[cfg(test)]
mod tests;
