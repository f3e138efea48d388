//! One client connection: read whatever requests have arrived, run them as a batch with
//! replies in request order, write all replies with one flush, repeat.
//!
//! Within a batch, writes are queued to the group without waiting (they keep their order in
//! the log), consecutive reads share one read barrier, and a read after a write waits for
//! that write's reply first, so a connection always reads its own writes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::output_limit::WriteFailure;
use super::route;
use super::session::{ClientGuard, Session};
use crate::cmd::{self, Command, ReadCmd};
use crate::node::NodeShared;
use crate::shard::{now_ms, ShardError};
use redraft_proxy::wire::{key_slot, Limits, Protocol, Reply, RequestParser};

/// Requests run as one batch at most; more wait for the next round.
const MAX_BATCH: usize = 1024;
/// The query buffer never grows past this (a 512 MiB bulk plus framing fits).
const QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;

enum Slot {
    Ready(Reply),
    Pending(oneshot::Receiver<Result<Reply, ShardError>>, u16),
}

/// Serves one client until it disconnects, sends QUIT or a malformed request.
pub async fn serve(mut stream: TcpStream, node: Arc<NodeShared>, client: ClientGuard) {
    let _ = stream.set_nodelay(true);
    let mut session = Session {
        client,
        proto: Protocol::Resp2,
        quit: false,
    };
    let mut parser = RequestParser::new(Limits {
        max_multibulk_len: 1024 * 1024,
        ..Limits::default()
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        let mut reqs = Vec::new();
        let mut protocol_error = None;
        while reqs.len() < MAX_BATCH {
            match parser.parse(&mut buf) {
                Ok(Some(argv)) => reqs.push(argv),
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        if reqs.is_empty() && protocol_error.is_none() {
            if buf.len() + parser.pending_bytes() >= QUERY_BUFFER_LIMIT {
                tracing::debug!(client = session.id(), "query buffer limit reached, closing");
                return;
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
        run_batch(reqs, &mut session, &node, &mut out).await;
        if let Some(e) = protocol_error.as_ref().filter(|_| !session.quit) {
            Reply::err(format!("ERR Protocol error: {e}")).encode(session.proto, &mut out);
        }
        if let Err(e) = node.output_limit.write(&mut stream, &out).await {
            if e == WriteFailure::Limit {
                tracing::warn!(
                    client = session.id(),
                    bytes = out.len(),
                    "client closed for overcoming of output buffer limits"
                );
            }
            return;
        }
        out.clear();
        if session.quit || protocol_error.is_some() {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Runs a batch of requests and appends their replies, in order, to `out`.
async fn run_batch(
    reqs: Vec<Vec<bytes::Bytes>>,
    session: &mut Session,
    node: &Arc<NodeShared>,
    out: &mut BytesMut,
) {
    let group = &node.group;
    let cluster_mode = node.config.cluster_mode();
    let mut slots: Vec<Slot> = Vec::with_capacity(reqs.len());
    let mut reads: Vec<(usize, ReadCmd, Option<u16>)> = Vec::new();
    let mut pending_writes = false;
    let mut last_cmd = String::new();
    for argv in reqs {
        if session.quit {
            break;
        }
        node.clients.total_commands.fetch_add(1, Ordering::Relaxed);
        last_cmd.clear();
        last_cmd.push_str(&String::from_utf8_lossy(&argv[0]).to_lowercase());
        let size: usize = argv.iter().map(|a| a.len() + 8).sum();
        // A cluster node serves keys of one slot per command, and only slots it owns.
        let key_slot_of = match cluster_mode.then(|| cmd::command_slot(&argv)) {
            Some(Err(crossslot)) => {
                slots.push(Slot::Ready(crossslot));
                continue;
            }
            Some(Ok(s)) => s,
            None => None,
        };
        match cmd::parse(argv, now_ms()) {
            Command::Reply(r) => slots.push(Slot::Ready(r)),
            Command::Read(r) => {
                if node.config.gid == 0 {
                    if let Some(refused) = key_slot_of.and_then(|s| route::refusal(node, s)) {
                        slots.push(Slot::Ready(refused));
                        continue;
                    }
                }
                if pending_writes {
                    settle(&mut slots).await;
                    pending_writes = false;
                }
                reads.push((slots.len(), r, key_slot_of));
                slots.push(Slot::Ready(Reply::Null));
            }
            Command::Write(w) => {
                run_reads(&mut reads, &mut slots, node).await;
                let slot = w.first_key().map(key_slot).unwrap_or(0);
                if let Some(refused) = key_slot_of.and_then(|s| route::refusal(node, s)) {
                    slots.push(Slot::Ready(refused));
                    continue;
                }
                match group.check_leader().await {
                    Ok(()) => {
                        slots.push(Slot::Pending(group.submit(w, size), slot));
                        pending_writes = true;
                    }
                    Err(e) => slots.push(Slot::Ready(e.to_reply(slot))),
                }
            }
            Command::Session(argv) => {
                run_reads(&mut reads, &mut slots, node).await;
                settle(&mut slots).await;
                pending_writes = false;
                // Replies so far go out in the protocol they were asked in (HELLO may
                // change it for what follows).
                encode_ready(&mut slots, session.proto, out);
                let reply = cmd::session::execute(argv, session, node).await;
                slots.push(Slot::Ready(reply));
            }
        }
    }
    run_reads(&mut reads, &mut slots, node).await;
    settle(&mut slots).await;
    session.client.state.update(|i| {
        i.last_cmd = last_cmd;
        i.last_interaction = std::time::Instant::now();
        i.proto = session.proto;
    });
    encode_ready(&mut slots, session.proto, out);
}

/// Encodes (and removes) the replies collected so far; all must be ready.
fn encode_ready(slots: &mut Vec<Slot>, proto: Protocol, out: &mut BytesMut) {
    for s in slots.drain(..) {
        if let Slot::Ready(r) = s {
            r.encode(proto, out);
        }
    }
}

/// Waits for every pending write's reply.
async fn settle(slots: &mut [Slot]) {
    for s in slots.iter_mut() {
        if let Slot::Pending(rx, slot) = s {
            let reply = match rx.await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => e.to_reply(*slot),
                Err(_) => ShardError::Fatal("group stopped".into()).to_reply(*slot),
            };
            *s = Slot::Ready(reply);
        }
    }
}

/// Runs the queued reads behind one read barrier.
async fn run_reads(
    reads: &mut Vec<(usize, ReadCmd, Option<u16>)>,
    slots: &mut [Slot],
    node: &Arc<NodeShared>,
) {
    if reads.is_empty() {
        return;
    }
    match node.group.read().await {
        Ok(reader) => {
            let now = now_ms().max(reader.clock());
            // One consistent view for the whole batch: a multi-key read never sees half of
            // a write applied meanwhile, and ownership is checked at the same point.
            let view = reader.view();
            let meta = view.cluster();
            for (i, r, slot) in reads.drain(..) {
                let refused = slot.and_then(|s| route::refusal_at(node, &meta, s));
                slots[i] = Slot::Ready(refused.unwrap_or_else(|| r.execute(&view, now)));
            }
        }
        Err(e) => {
            for (i, r, _) in reads.drain(..) {
                slots[i] = Slot::Ready(e.to_reply(r.first_key().map(key_slot).unwrap_or(0)));
            }
        }
    }
}
