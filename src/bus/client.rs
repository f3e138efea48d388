//! Outgoing side of the bus: one multiplexed connection per peer node.
//!
//! Every Raft group (and, later, migration) on this node shares the connection to a peer,
//! so 64 groups cost one socket, not 64. Callers register a request id in the connection's
//! pending map, hand the encoded frame to a writer task and wait on a oneshot; a reader
//! task routes responses back by id, in whatever order the server finishes them. A
//! connection that fails is marked closed, its pending calls fail as `Unreachable`, and the
//! next call dials again: reconnection is lazy, so a dead peer costs nothing between calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::fault::{FaultTable, Verdict};
use super::message::{
    BusRequest, BusResponse, Hello, HelloReply, RequestFrame, ResponseFrame, BUS_VERSION,
    MAX_FRAME_LEN,
};
use super::{codec, BusError};
use crate::raft::NodeId;

/// Frames queued for one connection's writer before callers wait (backpressure).
const WRITE_QUEUE: usize = 1024;

type Reply = Result<BusResponse, BusError>;
type Pending = HashMap<u64, oneshot::Sender<Reply>>;

/// The connection table of one node's bus.
pub(crate) struct Client {
    node_id: NodeId,
    faults: Arc<FaultTable>,
    /// Keyed by address too: several nodes known only by address share `ANY_NODE`.
    peers: Mutex<HashMap<(NodeId, String), Arc<Peer>>>,
    /// Cancelled when the bus shuts down; every connection holds a child token.
    cancel: CancellationToken,
}

/// One peer's slot. The async mutex makes concurrent callers share one dial attempt.
#[derive(Default)]
struct Peer {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl Client {
    pub(crate) fn new(node_id: NodeId, faults: Arc<FaultTable>, cancel: CancellationToken) -> Self {
        Self {
            node_id,
            faults,
            peers: Mutex::new(HashMap::new()),
            cancel,
        }
    }

    /// Sends `req` to `target` at `addr` and waits up to `timeout` for its response.
    pub(crate) async fn call(
        &self,
        target: NodeId,
        addr: &str,
        req: BusRequest,
        timeout: Duration,
    ) -> Result<BusResponse, BusError> {
        let deadline = Instant::now() + timeout;
        match self.faults.check(self.node_id, target) {
            Verdict::Pass(delay) if delay.is_zero() => {}
            Verdict::Pass(delay) => {
                if Instant::now() + delay > deadline {
                    tokio::time::sleep_until(deadline).await;
                    return Err(BusError::Timeout { target, timeout });
                }
                tokio::time::sleep(delay).await;
            }
            Verdict::Blocked => return Err(unreachable(target, "link blocked by fault injection")),
            Verdict::Drop => {
                tokio::time::sleep_until(deadline).await;
                return Err(BusError::Timeout { target, timeout });
            }
        }
        let conn = match tokio::time::timeout_at(deadline, self.connection(target, addr)).await {
            Ok(conn) => conn?,
            // Nothing was sent yet: report the peer as down so openraft backs off.
            Err(_) => return Err(unreachable(target, "connect timed out")),
        };
        conn.request(req, deadline, timeout).await
    }

    /// Closes every connection; calls in flight fail as `Unreachable`.
    pub(crate) fn close_all(&self) {
        let peers: Vec<Arc<Peer>> = lock(&self.peers).drain().map(|(_, p)| p).collect();
        for peer in peers {
            if let Ok(slot) = peer.conn.try_lock() {
                if let Some(conn) = slot.as_ref() {
                    conn.close("bus shut down");
                }
            }
        }
        // A slot still locked belongs to a caller mid-dial; the parent token is cancelled
        // by the bus, so that connection's tasks stop as soon as they start.
    }

    /// The open connection to `target`, dialling it if there is none.
    async fn connection(&self, target: NodeId, addr: &str) -> Result<Arc<Conn>, BusError> {
        if self.cancel.is_cancelled() {
            return Err(BusError::Shutdown);
        }
        let peer = lock(&self.peers)
            .entry((target, addr.to_string()))
            .or_default()
            .clone();
        let mut slot = peer.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.is_open() && conn.addr == addr {
                return Ok(conn.clone());
            }
            // Closed, or the peer moved: the old connection is of no further use.
            conn.close("replaced");
        }
        let conn = Conn::dial(self.node_id, target, addr, self.cancel.child_token()).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

/// One multiplexed connection to a peer.
struct Conn {
    target: NodeId,
    addr: String,
    tx: mpsc::Sender<Bytes>,
    /// `None` once the connection is closed, so late callers fail at once instead of
    /// registering a request nobody will answer.
    pending: Mutex<Option<Pending>>,
    next_id: AtomicU64,
    cancel: CancellationToken,
}

impl Conn {
    /// Connects, performs the handshake and starts the reader and writer tasks.
    async fn dial(
        me: NodeId,
        target: NodeId,
        addr: &str,
        cancel: CancellationToken,
    ) -> Result<Arc<Conn>, BusError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| unreachable(target, format!("connect {addr}: {e}")))?;
        // Raft messages are small and latency-bound; never wait for Nagle.
        stream
            .set_nodelay(true)
            .map_err(|e| unreachable(target, format!("set_nodelay: {e}")))?;
        let (read, write) = stream.into_split();
        let mut read = FramedRead::new(read, codec());
        let mut write = FramedWrite::new(write, codec());

        let hello = Hello {
            version: BUS_VERSION,
            from: me,
            to: target,
        };
        let hello = crate::codec::to_vec(&hello).map_err(|e| BusError::Codec(e.to_string()))?;
        write
            .send(Bytes::from(hello))
            .await
            .map_err(|e| unreachable(target, format!("send hello to {addr}: {e}")))?;
        let reply = match read.next().await {
            Some(Ok(frame)) => {
                postcard::from_bytes::<HelloReply>(&frame).map_err(|e| BusError::Handshake {
                    target,
                    reason: format!("undecodable hello reply from {addr}: {e}"),
                })?
            }
            Some(Err(e)) => return Err(unreachable(target, format!("hello from {addr}: {e}"))),
            None => return Err(unreachable(target, format!("{addr} closed during hello"))),
        };
        if let HelloReply::Refused(reason) = reply {
            // A misconfigured cluster (wrong address or mixed versions) must be loud.
            tracing::error!(me, target, addr, %reason, "bus handshake refused");
            return Err(BusError::Handshake { target, reason });
        }

        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let conn = Arc::new(Conn {
            target,
            addr: addr.to_owned(),
            tx,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(0),
            cancel,
        });
        tokio::spawn(conn.clone().write_loop(write, rx));
        tokio::spawn(conn.clone().read_loop(read));
        tracing::debug!(me, target, addr, "bus connected");
        Ok(conn)
    }

    fn is_open(&self) -> bool {
        !self.cancel.is_cancelled() && lock(&self.pending).is_some()
    }

    /// Marks the connection closed, fails every pending call and stops both tasks.
    fn close(&self, why: &str) {
        self.cancel.cancel();
        let pending = lock(&self.pending).take();
        for (_, tx) in pending.into_iter().flatten() {
            let _ = tx.send(Err(unreachable(self.target, why)));
        }
    }

    async fn request(
        &self,
        req: BusRequest,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<BusResponse, BusError> {
        let target = self.target;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = crate::codec::to_vec(&RequestFrame { id, req })
            .map_err(|e| BusError::Codec(e.to_string()))?;
        // The codec would fail the write and with it every call on the connection.
        if frame.len() > MAX_FRAME_LEN {
            return Err(BusError::TooLarge {
                size: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let (tx, rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err(unreachable(target, "connection closed")),
        };
        // Removes the entry if this call times out or its future is dropped.
        let _guard = PendingGuard { conn: self, id };
        let sent = tokio::time::timeout_at(deadline, self.tx.send(Bytes::from(frame))).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(unreachable(target, "connection closed")),
            Err(_) => return Err(BusError::Timeout { target, timeout }),
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(unreachable(target, "connection closed")),
            Err(_) => Err(BusError::Timeout { target, timeout }),
        }
    }

    fn complete(&self, id: u64, reply: Reply) {
        let tx = lock(&self.pending).as_mut().and_then(|p| p.remove(&id));
        if let Some(tx) = tx {
            let _ = tx.send(reply);
        }
    }

    /// Writes queued frames, flushing once per burst rather than once per frame.
    async fn write_loop(
        self: Arc<Self>,
        mut write: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
        mut rx: mpsc::Receiver<Bytes>,
    ) {
        let why = loop {
            let frame = tokio::select! {
                _ = self.cancel.cancelled() => break "closed",
                frame = rx.recv() => frame,
            };
            let Some(frame) = frame else { break "closed" };
            if write.feed(frame).await.is_err() {
                break "write failed";
            }
            let mut failed = false;
            while let Ok(frame) = rx.try_recv() {
                if write.feed(frame).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || SinkExt::<Bytes>::flush(&mut write).await.is_err() {
                break "write failed";
            }
        };
        self.close(why);
    }

    async fn read_loop(self: Arc<Self>, mut read: FramedRead<OwnedReadHalf, LengthDelimitedCodec>) {
        let target = self.target;
        let why = loop {
            let frame = tokio::select! {
                _ = self.cancel.cancelled() => break "closed",
                frame = read.next() => frame,
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    tracing::debug!(target, error = %e, "bus read failed");
                    break "read failed";
                }
                None => break "peer closed the connection",
            };
            match postcard::from_bytes::<ResponseFrame>(&frame) {
                Ok(ResponseFrame::Response { id, resp }) => self.complete(id, Ok(resp)),
                Ok(ResponseFrame::LinkBlocked { id }) => self.complete(
                    id,
                    Err(unreachable(target, "reply link blocked by fault injection")),
                ),
                Err(e) => {
                    tracing::warn!(target, error = %e, "undecodable bus response; closing");
                    break "protocol error";
                }
            }
        };
        self.close(why);
    }
}

struct PendingGuard<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = lock(&self.conn.pending).as_mut() {
            p.remove(&self.id);
        }
    }
}

fn unreachable(target: NodeId, reason: impl Into<String>) -> BusError {
    BusError::Unreachable {
        target,
        reason: reason.into(),
    }
}

/// A poisoned map only means another caller panicked mid-update; the data is still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
