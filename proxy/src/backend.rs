//! One pipelined connection to a node: many requests in flight, replies matched to their
//! requests by order (RESP has no request ids; a node answers a connection in order).
//!
//! A writer task sends whatever requests are queued with one write; a reader task decodes
//! replies and completes the oldest waiter. When the connection fails every waiter gets
//! [`BackendError::Lost`]: the outcome of its request is unknown, which the caller may
//! retry only when that is safe (reads, and writes stamped for exactly-once).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::wire::decode::decode_reply;
use crate::wire::{Protocol, Reply};

/// Time allowed to open a connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests written with one syscall at most.
const MAX_WRITE_BATCH: usize = 256;
/// A connection whose oldest request has gone this long with no reply at all is dropped
/// (its waiters get [`BackendError::Lost`]): a node answers a stuck write after its 5 s
/// commit timeout, and replies come in order, so nothing behind it could be answered
/// either. One check per connection, not a timer per request (which cost 4% of a
/// proxied GET's CPU).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(6);
const STALL_CHECK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The connection failed (or never opened) with the request possibly sent.
    #[error("connection to {0} lost")]
    Lost(Arc<str>),
}

type Waiter = oneshot::Sender<Result<Reply, BackendError>>;

struct Job {
    req: Bytes,
    reply: Waiter,
}

/// Requests sent and not yet answered, oldest first, and how many replies came so far.
#[derive(Default)]
struct Queue {
    waiters: VecDeque<Waiter>,
    replies: u64,
}

type Inflight = Mutex<Queue>;

/// A handle to one backend connection; cheap to clone.
#[derive(Clone)]
pub struct Backend {
    addr: Arc<str>,
    tx: mpsc::UnboundedSender<Job>,
    alive: Arc<AtomicBool>,
}

impl Backend {
    /// Starts connecting to `addr`; requests queue until the connection is up.
    pub fn connect(addr: Arc<str>, proto: Protocol) -> Backend {
        let (tx, rx) = mpsc::unbounded_channel();
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(addr.clone(), proto, rx, alive.clone()));
        Backend { addr, tx, alive }
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queues an encoded request; the receiver gets its reply. Requests queued by one
    /// caller reach the node in the order they were queued.
    pub fn send(&self, req: Bytes) -> oneshot::Receiver<Result<Reply, BackendError>> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.tx.send(Job { req, reply }) {
            let _ = job.reply.send(Err(BackendError::Lost(self.addr.clone())));
        }
        rx
    }
}

async fn run(
    addr: Arc<str>,
    proto: Protocol,
    mut rx: mpsc::UnboundedReceiver<Job>,
    alive: Arc<AtomicBool>,
) {
    let inflight: Inflight = Mutex::default();
    match open(&addr, proto).await {
        Ok((stream, leftover)) => {
            let (read, write) = stream.into_split();
            // Whichever side fails first ends all three.
            tokio::select! {
                _ = write_requests(write, &mut rx, &inflight) => {}
                _ = read_replies(read, leftover, &inflight) => {}
                _ = stalled(&inflight) => {
                    tracing::debug!(%addr, "backend stopped answering, dropping the connection");
                }
            }
        }
        Err(e) => tracing::debug!(%addr, error = %e, "backend connect failed"),
    }
    alive.store(false, Ordering::Release);
    rx.close();
    let lost = || Err(BackendError::Lost(addr.clone()));
    let waiters = std::mem::take(&mut inflight.lock().unwrap_or_else(|e| e.into_inner()).waiters);
    for w in waiters {
        let _ = w.send(lost());
    }
    while let Ok(job) = rx.try_recv() {
        let _ = job.reply.send(lost());
    }
}

/// Connects, and for RESP3 switches the connection with HELLO 3 first.
async fn open(addr: &str, proto: Protocol) -> std::io::Result<(TcpStream, BytesMut)> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    if proto == Protocol::Resp3 {
        stream
            .write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            .await?;
        loop {
            match decode_reply(&mut buf) {
                Ok(Some(Reply::Error(e))) => return Err(std::io::Error::other(e)),
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    Ok((stream, buf))
}

async fn write_requests(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    inflight: &Inflight,
) {
    let mut jobs = Vec::with_capacity(MAX_WRITE_BATCH);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        if rx.recv_many(&mut jobs, MAX_WRITE_BATCH).await == 0 {
            return;
        }
        if jobs.len() < MAX_WRITE_BATCH {
            // Let the clients already woken queue theirs too: one write for all of them.
            crate::requeue::requeue().await;
            while jobs.len() < MAX_WRITE_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        {
            // Waiters are queued before their bytes leave, so a reply always finds one.
            let mut q = inflight.lock().unwrap_or_else(|e| e.into_inner());
            for job in jobs.drain(..) {
                out.extend_from_slice(&job.req);
                q.waiters.push_back(job.reply);
            }
        }
        if write.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

/// Resolves once requests have waited [`STALL_TIMEOUT`] with no reply coming.
async fn stalled(inflight: &Inflight) {
    let mut tick = tokio::time::interval(STALL_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = 0;
    let mut quiet = Duration::ZERO;
    loop {
        tick.tick().await;
        let (waiting, replies) = {
            let q = inflight.lock().unwrap_or_else(|e| e.into_inner());
            (!q.waiters.is_empty(), q.replies)
        };
        if !waiting || replies != seen {
            seen = replies;
            quiet = Duration::ZERO;
            continue;
        }
        quiet += STALL_CHECK;
        if quiet >= STALL_TIMEOUT {
            return;
        }
    }
}

async fn read_replies(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    inflight: &Inflight,
) {
    loop {
        loop {
            match decode_reply(&mut buf) {
                Ok(Some(reply)) => {
                    let waiter = {
                        let mut q = inflight.lock().unwrap_or_else(|e| e.into_inner());
                        q.replies += 1;
                        q.waiters.pop_front()
                    };
                    match waiter {
                        Some(w) => {
                            let _ = w.send(Ok(reply));
                        }
                        None => {
                            tracing::warn!("backend sent a reply nobody asked for");
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "backend sent a malformed reply");
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(q: &Inflight) -> oneshot::Receiver<Result<Reply, BackendError>> {
        let (tx, rx) = oneshot::channel();
        q.lock().unwrap().waiters.push_back(tx);
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_stalled_only_after_a_quiet_timeout_with_requests_waiting() {
        let q = Inflight::default();
        // Nothing waiting: never stalled, however long it stays quiet.
        assert!(tokio::time::timeout(STALL_TIMEOUT * 3, stalled(&q))
            .await
            .is_err());
        let _rx = waiting(&q);
        let started = tokio::time::Instant::now();
        // Replies keep coming: not stalled.
        let progress = async {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                q.lock().unwrap().replies += 1;
            }
        };
        tokio::select! {
            _ = stalled(&q) => panic!("stalled while replies were coming"),
            _ = progress => {}
        }
        // Then none: stalled after the timeout, not before.
        let quiet_from = tokio::time::Instant::now();
        stalled(&q).await;
        let quiet = quiet_from.elapsed();
        assert!(quiet >= STALL_TIMEOUT, "{quiet:?}");
        assert!(quiet <= STALL_TIMEOUT + 2 * STALL_CHECK, "{quiet:?}");
        assert!(started.elapsed() >= Duration::from_secs(30));
    }
}
