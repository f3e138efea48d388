//! One client connection: read whatever requests have arrived, run them as a batch with
//! replies in request order, write all replies with one flush, repeat.
//!
//! Within a batch, writes are queued to the group without waiting (they keep their order in
//! the log), consecutive reads share one read barrier, and a read after a write waits for
//! that write's reply first, so a connection always reads its own writes.
//!
//! Batches are pipelined: while a batch's writes commit, the next requests are read and
//! their writes queued behind them (up to [`MAX_BATCHES`] batches in flight). A read or a
//! session command first waits for every earlier batch, so the rules above hold across
//! batches too. A client that pipelines deeply (the proxy's backend connections) keeps
//! its whole window at the group, which packs it into fewer, larger log entries.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::output_limit::WriteFailure;
use super::route;
use super::session::{ClientGuard, Session};
use crate::cmd::session::Answer;
use crate::cmd::transaction::{self, Step};
use crate::cmd::{self, Command, ReadCmd};
use crate::db::DbRead;
use crate::node::NodeShared;
use crate::shard::state_machine::ReadView;
use crate::shard::{now_ms, ShardError};
use redraft_proxy::wire::clients::full_name;
use redraft_proxy::wire::clients::ClientState;
use redraft_proxy::wire::command_stats::{stat_name, Samples};
use redraft_proxy::wire::monitor;
use redraft_proxy::wire::{key_slot, Limits, Protocol, Reply, RequestParser};

/// Requests run as one batch at most; more wait for the next round.
const MAX_BATCH: usize = 1024;
/// Batches of one connection whose writes are in flight at once.
const MAX_BATCHES: usize = 8;
/// The query buffer never grows past this (a 512 MiB bulk plus framing fits).
const QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;

enum Slot {
    Ready(Reply),
    Pending(oneshot::Receiver<Result<Reply, ShardError>>, u16),
    /// A reply CLIENT REPLY OFF or SKIP drops. A write's outcome is still waited for, so
    /// that what follows on this connection sees it.
    Muted(Option<oneshot::Receiver<Result<Reply, ShardError>>>),
}

impl Slot {
    fn muted(self) -> Slot {
        match self {
            Slot::Pending(rx, _) => Slot::Muted(Some(rx)),
            Slot::Muted(rx) => Slot::Muted(rx),
            Slot::Ready(_) => Slot::Muted(None),
        }
    }
}

/// A batch's replies in request order, with what the command statistics need: each
/// command's name and when the batch was read.
struct Replies {
    slots: Vec<Slot>,
    names: Vec<Option<&'static str>>,
    /// The requests, for the slow log (kept, not copied: their writes hold their bytes
    /// until proposed anyway).
    argvs: Vec<Vec<Bytes>>,
    read_at: Instant,
}

/// Earlier batches not yet answered, oldest first, each with the protocol its replies are
/// encoded in.
type InFlight = VecDeque<(Replies, Protocol)>;

/// Replies encoded and not yet written, and the statistics of their commands, handed to
/// the node's once they are written.
struct Out {
    buf: BytesMut,
    samples: Samples,
    /// Where slow commands are logged, and as whose.
    node: Arc<NodeShared>,
    client: Arc<ClientState>,
}

/// Serves one client until it disconnects, sends QUIT or a malformed request, or CLIENT
/// KILL closes it.
pub async fn serve(mut stream: TcpStream, node: Arc<NodeShared>, client: ClientGuard) {
    let _ = stream.set_nodelay(true);
    let mut session = Session {
        client,
        proto: Protocol::Resp2,
        quit: false,
        monitor: false,
        reply_mode: Default::default(),
        hangup: Default::default(),
        tx: Default::default(),
    };
    let mut parser = RequestParser::new(Limits {
        max_multibulk_len: 1024 * 1024,
        ..Limits::default()
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = Out {
        buf: BytesMut::with_capacity(16 * 1024),
        samples: Samples::default(),
        node: node.clone(),
        client: session.client.state.clone(),
    };
    let mut inflight = InFlight::new();
    let state = session.client.state.clone();
    loop {
        if state.kill.is_killed() {
            return;
        }
        encode_answered(&mut inflight, &mut out);
        if inflight.len() >= MAX_BATCHES {
            if !out.buf.is_empty() && !flush(&mut stream, &mut out, &node, &session).await {
                return;
            }
            settle_oldest(&mut inflight).await;
            continue;
        }
        let mut reqs = Vec::new();
        let mut protocol_error = None;
        while reqs.len() < MAX_BATCH {
            match parser.parse(&mut buf) {
                Ok(Some(argv)) if argv[0].eq_ignore_ascii_case(b"monitor") => {
                    // What follows MONITOR is the monitor mode's to answer.
                    reqs.push(argv);
                    break;
                }
                Ok(Some(argv)) => reqs.push(argv),
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        if reqs.is_empty() && protocol_error.is_none() {
            if !out.buf.is_empty() && !flush(&mut stream, &mut out, &node, &session).await {
                return;
            }
            if buf.len() + parser.pending_bytes() >= QUERY_BUFFER_LIMIT {
                tracing::debug!(client = session.id(), "query buffer limit reached, closing");
                return;
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            tokio::select! {
                n = stream.read_buf(&mut buf) => match n {
                    Ok(0) => {
                        // The client is done sending (it may still read, as after
                        // `printf … | nc`): what it sent before is answered first.
                        session.hangup.kill();
                        settle_all(&mut inflight, &mut out).await;
                        if !out.buf.is_empty() {
                            flush(&mut stream, &mut out, &node, &session).await;
                        }
                        return;
                    }
                    Err(_) => return,
                    Ok(_) => {}
                },
                _ = settle_oldest(&mut inflight), if !inflight.is_empty() => {}
                _ = state.kill.killed() => return,
            }
            continue;
        }
        run_batch(reqs, &mut session, &node, &mut out, &mut inflight).await;
        if session.monitor {
            // MONITOR ran: every command from here on is streamed to this client.
            let watch = node.monitors.watch();
            settle_all(&mut inflight, &mut out).await;
            if !out.buf.is_empty() && !flush(&mut stream, &mut out, &node, &session).await {
                return;
            }
            let stop = std::future::pending::<()>();
            let ended = monitor::serve(
                &mut stream,
                watch,
                &state.kill,
                &mut buf,
                &mut parser,
                stop,
                session.proto,
            )
            .await;
            match ended {
                monitor::Ended::Reset => {
                    session.reset();
                    continue;
                }
                monitor::Ended::Closed => return,
            }
        }
        let closing = session.quit || protocol_error.is_some();
        if closing {
            settle_all(&mut inflight, &mut out).await;
        }
        if let Some(e) = protocol_error.as_ref().filter(|_| !session.quit) {
            let e = Reply::err(format!("ERR Protocol error: {e}"));
            out.samples.add(None, Duration::ZERO, Some(&e));
            e.encode(session.proto, &mut out.buf);
        }
        encode_answered(&mut inflight, &mut out);
        if !out.buf.is_empty() && !flush(&mut stream, &mut out, &node, &session).await {
            return;
        }
        if closing {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Writes `out` to the client and clears it; false if the connection is done for.
async fn flush(
    stream: &mut TcpStream,
    out: &mut Out,
    node: &Arc<NodeShared>,
    session: &Session,
) -> bool {
    node.clients.stats.record(&mut out.samples);
    let out = &mut out.buf;
    // CLIENT KILL closes a client that does not read, too.
    let written = tokio::select! {
        // The write first: done at once, as most are, it leaves no waiter behind.
        biased;
        r = node.output_limit.write(stream, out) => r,
        _ = session.client.state.kill.killed() => Err(WriteFailure::Closed),
    };
    if let Err(e) = written {
        if e == WriteFailure::Limit {
            tracing::warn!(
                client = session.id(),
                bytes = out.len(),
                "client closed for overcoming of output buffer limits"
            );
        }
        return false;
    }
    out.clear();
    true
}

/// Turns the oldest batch's replies that have arrived into ready ones; true once all are.
fn answered(slots: &mut [Slot]) -> bool {
    for s in slots.iter_mut() {
        match s {
            Slot::Pending(rx, slot) => {
                let outcome = match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(oneshot::error::TryRecvError::Empty) => return false,
                    Err(oneshot::error::TryRecvError::Closed) => None,
                };
                *s = Slot::Ready(reply_of(outcome, *slot));
            }
            Slot::Muted(Some(rx)) => match rx.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => return false,
                _ => *s = Slot::Muted(None),
            },
            _ => {}
        }
    }
    true
}

/// Encodes the replies of the oldest batches that are fully answered, in order.
fn encode_answered(inflight: &mut InFlight, out: &mut Out) {
    while let Some((replies, proto)) = inflight.front_mut() {
        if !answered(&mut replies.slots) {
            return;
        }
        let proto = *proto;
        encode_ready(replies, proto, out);
        inflight.pop_front();
    }
}

/// Waits until the oldest batch is answered (cancel-safe: replies already taken stay).
async fn settle_oldest(inflight: &mut InFlight) {
    if let Some((replies, _)) = inflight.front_mut() {
        settle(&mut replies.slots).await;
    }
}

/// Waits for every earlier batch and encodes their replies: what follows must see their
/// writes (a read) or come after them (a session command, whose effects are immediate).
async fn settle_all(inflight: &mut InFlight, out: &mut Out) {
    for (replies, proto) in inflight.iter_mut() {
        settle(&mut replies.slots).await;
        encode_ready(replies, *proto, out);
    }
    inflight.clear();
}

/// Runs a batch of requests. Its replies are appended, in order, to `out` once all are
/// ready and no earlier batch is in flight; otherwise the batch joins `inflight`.
async fn run_batch(
    reqs: Vec<Vec<bytes::Bytes>>,
    session: &mut Session,
    node: &Arc<NodeShared>,
    out: &mut Out,
    inflight: &mut InFlight,
) {
    let group = &node.group;
    let cluster_mode = node.config.cluster_mode();
    let mut replies = Replies {
        slots: Vec::with_capacity(reqs.len()),
        names: Vec::with_capacity(reqs.len()),
        argvs: Vec::with_capacity(reqs.len()),
        read_at: Instant::now(),
    };
    let mut reads: Vec<(usize, ReadCmd, Option<u16>)> = Vec::new();
    let mut pending_writes = false;
    // Once per batch, not per command: the shared counter's cache line, and the name
    // CLIENT LIST shows (the clock is read per command: the batch may wait on writes).
    let mut commands = 0;
    // What CLIENT LIST shows as the last command: looked up once per batch.
    let last_cmd = reqs.last().and_then(|argv| full_name(argv));
    for argv in reqs {
        if session.quit {
            break;
        }
        commands += 1;
        replies.names.push(stat_name(&argv));
        replies.argvs.push(argv);
        let argv = replies.argvs.last().expect("just pushed");
        if node.clients.pause.is_active() {
            // CLIENT PAUSE: the connection waits here, as a paused Redis client does (the
            // replies before this command in its batch wait with it).
            let write = session.tx.held_by_write_pause(argv);
            node.clients.pause.wait(write).await;
        }
        if node.monitors.active() {
            node.monitors.feed(&session.client.state.addr, argv);
        }
        session.reply_mode.begin();
        let muted = session.reply_mode.muted();
        let push = |slots: &mut Vec<Slot>, s: Slot| slots.push(if muted { s.muted() } else { s });
        let size: usize = argv.iter().map(|a| a.len() + 8).sum();
        let step = transaction::step(&mut session.tx, argv, now_ms(), cluster_mode, |s| {
            route::refusal(node, s)
        });
        let (command, key_slot_of) = match step {
            Step::Reply(r) => {
                push(&mut replies.slots, Slot::Ready(r));
                continue;
            }
            Step::Run(command, slot) => (command, slot.filter(|_| cluster_mode)),
            Step::Watch(keys) => {
                // As a session command: after this connection's earlier writes.
                run_reads(&mut reads, &mut replies.slots, node).await;
                settle_all(inflight, out).await;
                settle(&mut replies.slots).await;
                pending_writes = false;
                let r = watch(node, session, keys, cluster_mode).await;
                push(&mut replies.slots, Slot::Ready(r));
                continue;
            }
            // A cluster node serves keys of one slot per command, and only slots it owns.
            Step::Pass => match cluster_mode.then(|| cmd::command_slot(argv)) {
                Some(Err(crossslot)) => {
                    push(&mut replies.slots, Slot::Ready(crossslot));
                    continue;
                }
                Some(Ok(s)) => (cmd::parse(argv, now_ms()), s),
                None => (cmd::parse(argv, now_ms()), None),
            },
        };
        match command {
            Command::Reply(r) => push(&mut replies.slots, Slot::Ready(r)),
            Command::Read(r) => {
                if node.config.gid == 0 {
                    if let Some(refused) = key_slot_of.and_then(|s| route::refusal(node, s)) {
                        push(&mut replies.slots, Slot::Ready(refused));
                        continue;
                    }
                }
                if muted {
                    // A read changes nothing: with no reply to give, nothing to run.
                    replies.slots.push(Slot::Muted(None));
                    continue;
                }
                settle_all(inflight, out).await;
                if pending_writes {
                    settle(&mut replies.slots).await;
                    pending_writes = false;
                }
                reads.push((replies.slots.len(), r, key_slot_of));
                replies.slots.push(Slot::Ready(Reply::Null));
            }
            Command::Write(w) => {
                run_reads(&mut reads, &mut replies.slots, node).await;
                let slot = w.slot().unwrap_or(0);
                if let Some(refused) = key_slot_of.and_then(|s| route::refusal(node, s)) {
                    push(&mut replies.slots, Slot::Ready(refused));
                    continue;
                }
                match group.check_leader().await {
                    Ok(()) => {
                        push(
                            &mut replies.slots,
                            Slot::Pending(group.submit(w, size), slot),
                        );
                        pending_writes = true;
                    }
                    Err(e) => push(&mut replies.slots, Slot::Ready(e.to_reply(slot))),
                }
            }
            Command::Session(argv) => {
                run_reads(&mut reads, &mut replies.slots, node).await;
                settle_all(inflight, out).await;
                settle(&mut replies.slots).await;
                pending_writes = false;
                // Replies so far go out in the protocol they were asked in (HELLO may
                // change it for what follows).
                encode_ready(&mut replies, session.proto, out);
                let slot = match cmd::session::execute(argv, session, node).await {
                    Answer::Now(reply) => Slot::Ready(reply),
                    Answer::Later(rx) => {
                        // WAIT: what follows waits for it, as in Redis.
                        pending_writes = true;
                        Slot::Pending(rx, 0)
                    }
                };
                // CLIENT REPLY decides about its own reply.
                match session.reply_mode.muted() {
                    true => replies.slots.push(slot.muted()),
                    false => replies.slots.push(slot),
                }
            }
        }
    }
    run_reads(&mut reads, &mut replies.slots, node).await;
    node.clients
        .total_commands
        .fetch_add(commands, Ordering::Relaxed);
    if commands > 0 {
        session.client.state.touch(last_cmd, session.proto);
    }
    if pending_writes || !inflight.is_empty() {
        inflight.push_back((replies, session.proto));
    } else {
        encode_ready(&mut replies, session.proto, out);
    }
}

/// Encodes (and removes) the replies collected so far; all must be ready. Their commands'
/// statistics count the time since the batch was read.
fn encode_ready(replies: &mut Replies, proto: Protocol, out: &mut Out) {
    let took = replies.read_at.elapsed();
    let slow = out.node.clients.slowlog.is_slow(took);
    // A session command's own name is in already when the replies before it are encoded.
    let n = replies.slots.len();
    let names = replies.names.drain(..n);
    let argvs = replies.argvs.drain(..n);
    for ((s, name), argv) in replies.slots.drain(..).zip(names).zip(argvs) {
        if slow {
            out.node.clients.slowlog.note(&argv, took, &out.client);
        }
        match s {
            Slot::Ready(r) => {
                out.samples.add(name, took, Some(&r));
                r.encode(proto, &mut out.buf);
            }
            _ => out.samples.add(name, took, None),
        }
    }
}

/// Waits for every pending write's reply.
async fn settle(slots: &mut [Slot]) {
    for s in slots.iter_mut() {
        match s {
            Slot::Pending(rx, slot) => *s = Slot::Ready(reply_of(rx.await.ok(), *slot)),
            Slot::Muted(Some(rx)) => {
                let _ = rx.await;
                *s = Slot::Muted(None);
            }
            _ => {}
        }
    }
}

/// The client's reply for a write's outcome (None: the group dropped it, stopping).
fn reply_of(outcome: Option<Result<Reply, ShardError>>, slot: u16) -> Reply {
    match outcome {
        Some(Ok(r)) => r,
        Some(Err(e)) => e.to_reply(slot),
        None => ShardError::Fatal("group stopped".into()).to_reply(slot),
    }
}

/// WATCH: each key's fingerprint, read behind a read barrier (refused as a read of its
/// slot would be).
async fn watch(
    node: &Arc<NodeShared>,
    session: &mut Session,
    keys: Vec<Bytes>,
    cluster_mode: bool,
) -> Reply {
    let slot = keys.first().map(|k| key_slot(k)).unwrap_or(0);
    match node.group.read().await {
        Ok(reader) => {
            let now = now_ms().max(reader.clock());
            let view = reader.view();
            let meta = view.cluster();
            if let Some(r) = cluster_mode
                .then(|| route::refusal_at(node, &meta, slot))
                .flatten()
            {
                return r;
            }
            for k in keys {
                let fp = transaction::fingerprint(view.get(&k, now).as_ref());
                session.tx.watch(k, fp);
            }
            Reply::ok()
        }
        Err(e) => e.to_reply(slot),
    }
}

/// A read that must see a write of its client not applied here yet (refused while its
/// slot moves, and to be retried): TRYAGAIN, as the write got.
fn waits(view: &ReadView, r: &ReadCmd) -> Option<Reply> {
    match r {
        ReadCmd::After { client, after, .. } if !view.settled(*client, *after) => Some(Reply::err(
            format!("TRYAGAIN read of client {client} waits for its write {after}"),
        )),
        _ => None,
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
            if reads.len() > 1 {
                view.prefetch(reads.iter().filter_map(|(_, r, _)| r.first_key()));
            }
            let meta = view.cluster();
            for (i, r, slot) in reads.drain(..) {
                let refused = slot
                    .and_then(|s| route::refusal_at(node, &meta, s))
                    .or_else(|| waits(&view, &r));
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
