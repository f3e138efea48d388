//! One client connection at the proxy: requests are routed as they are parsed (up to a
//! window of them in flight at once), and replies are written back in request order as
//! soon as the oldest ones are ready, one write for all that are.
//!
//! The window also bounds how many of this client's exactly-once writes can be in flight
//! at a node: fewer than the node keeps per client and slot, so any retry can be answered.

use std::sync::Arc;

use bytes::BytesMut;
use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::route::{dispatch, Dispatched};
use crate::session::Session;
use crate::wire::{Limits, Protocol, Reply, RequestParser};
use crate::Shared;

/// Commands of one client in flight at once (the node keeps 64 replies per client and
/// slot for retries).
pub const WINDOW: usize = 48;
/// The query buffer never grows past this (a 512 MiB bulk plus framing fits).
const QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;

type Pending = futures::future::BoxFuture<'static, (Reply, Protocol)>;

pub async fn serve(mut stream: TcpStream, sh: Arc<Shared>, id: u64) {
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(id);
    let mut parser = RequestParser::new(Limits {
        max_multibulk_len: 1024 * 1024,
        ..Limits::default()
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    // Set once nothing more will be read: QUIT, or a malformed request.
    let mut closing = false;
    // Set once the client stopped sending (`printf … | nc`): what it sent is still
    // parsed and answered, then the connection closes.
    let mut eof = false;
    let mut shutdown = sh.shutdown.subscribe();
    loop {
        while !closing && inflight.len() < WINDOW {
            match parser.parse(&mut buf) {
                Ok(Some(argv)) => {
                    let d = dispatch(&sh, &mut session, argv);
                    // Encoded in the protocol in force after the command (HELLO answers in
                    // the protocol it chose).
                    let proto = session.proto;
                    inflight.push_back(match d {
                        Dispatched::Ready(r) => Box::pin(async move { (r, proto) }),
                        Dispatched::Pending(f) => Box::pin(f.map(move |r| (r, proto))),
                    });
                    closing = session.quit;
                }
                Ok(None) => {
                    closing |= eof;
                    break;
                }
                Err(e) => {
                    let r = Reply::err(format!("ERR Protocol error: {e}"));
                    let proto = session.proto;
                    inflight.push_back(Box::pin(async move { (r, proto) }));
                    closing = true;
                }
            }
        }
        while let Some(Some((r, proto))) = inflight.next().now_or_never() {
            r.encode(proto, &mut out);
        }
        if !out.is_empty() && !inflight.is_empty() {
            // Replies from the other backends may be a moment behind: one write for them all.
            crate::requeue::requeue().await;
            while let Some(Some((r, proto))) = inflight.next().now_or_never() {
                r.encode(proto, &mut out);
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if closing && inflight.is_empty() {
            let _ = stream.shutdown().await;
            return;
        }
        let can_read = !closing && !eof && inflight.len() < WINDOW;
        if can_read && buf.len() + parser.pending_bytes() >= QUERY_BUFFER_LIMIT {
            tracing::debug!(client = id, "query buffer limit reached, closing");
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            n = stream.read_buf(&mut buf), if can_read => match n {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(_) => return,
            },
            Some((r, proto)) = inflight.next(), if !inflight.is_empty() => {
                r.encode(proto, &mut out);
            }
        }
    }
}
