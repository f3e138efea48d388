//! One client connection at the proxy: requests are routed as they are parsed (up to a
//! window of them in flight at once), and replies are written back in request order as
//! soon as the oldest ones are ready, one write for all that are.
//!
//! The window also bounds how many of this client's exactly-once writes can be in flight
//! at a node: fewer than the node keeps per client and slot, so any retry can be answered.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::forward::Call;
use crate::route::{dispatch, orders_all, Dispatched, ReplyFuture};
use crate::session::Session;
use crate::wire::clients::{ClientGuard, ClientState, Clients};
use crate::wire::command_stats::Samples;
use crate::wire::monitor;
use crate::wire::{Limits, Protocol, Reply, RequestParser};
use crate::Shared;

/// Commands of one client in flight at once (the node keeps 64 replies per client and
/// slot for retries).
pub const WINDOW: usize = 48;
/// The query buffer never grows past this (a 512 MiB bulk plus framing fits).
const QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;
/// Longest that replies wait for the rest of their read's (see `serve`).
const HOLD: Duration = Duration::from_millis(5);

/// A request in flight, in the client's order. Most are one call whose first answer is
/// the reply: they need no future (and no allocation) of their own, and only the oldest
/// is polled, as replies go out in order. The others (retries, split and fanned-out
/// commands) have futures, all polled, so that they make progress together.
enum Flight {
    Ready(Reply),
    Sent(Call),
    /// With the slot it is for: a retry's; None for split and fanned-out commands (any).
    Pending(ReplyFuture, Option<u16>),
}

impl Flight {
    /// Moves a sent call whose first answer came and needs more (a redirect, a retry) to
    /// the slow path if `may_retry`; one whose answer settled it to ready. `cx` is
    /// registered if the answer has not come.
    fn advance(&mut self, sh: &Arc<Shared>, cx: &mut Context<'_>, may_retry: bool) {
        let Flight::Sent(call) = self else { return };
        match call.poll_first(cx) {
            Poll::Pending => {}
            Poll::Ready(Some(r)) => *self = Flight::Ready(r),
            Poll::Ready(None) if may_retry => {
                if let Flight::Sent(call) = std::mem::replace(self, Flight::Ready(Reply::Null)) {
                    let sh = sh.clone();
                    let slot = call.slot();
                    *self = Flight::Pending(
                        Box::pin(async move { sh.backends.finish(call).await }),
                        slot,
                    );
                }
            }
            // Held, its answer kept: see `Unresolved`.
            Poll::Ready(None) => {}
        }
    }

    fn slot(&self) -> Option<u16> {
        match self {
            Flight::Ready(_) => None,
            Flight::Sent(call) => call.slot(),
            Flight::Pending(_, slot) => *slot,
        }
    }
}

/// The slots of a client's requests not yet answered, walking its requests in order. A
/// request refused (a slot moving, a write it follows not yet applied) retries only once
/// every earlier request of its client to its slot is answered: retried together, a
/// write could apply before a read sent ahead of it, and the read see it. Requests on
/// their first try need no such care: a client's requests to one node share one
/// connection, and a write names the earlier write it follows (`session::Stamp`).
#[derive(Default)]
struct Unresolved {
    slots: Vec<u16>,
    /// An earlier split or fanned-out command is unanswered: it may touch any slot.
    any: bool,
}

impl Unresolved {
    fn lets_retry(&self, slot: Option<u16>) -> bool {
        !self.any && slot.is_none_or(|s| !self.slots.contains(&s))
    }

    fn add(&mut self, flight: &Flight) {
        match flight {
            Flight::Ready(_) => {}
            f => match f.slot() {
                Some(s) => self.slots.push(s),
                None => self.any = true,
            },
        }
    }
}

/// The oldest request's reply (in the protocol to encode it in), once it has one.
fn poll_oldest(
    inflight: &mut VecDeque<InFlight>,
    sh: &Arc<Shared>,
    cx: &mut Context<'_>,
) -> Poll<Option<InFlight<Reply>>> {
    let Some((oldest, ..)) = inflight.front_mut() else {
        return Poll::Ready(None);
    };
    oldest.advance(sh, cx, true);
    if matches!(oldest, Flight::Pending(..)) {
        // The oldest has to retry: so may the ones behind it whose answers are in, and
        // they retry together rather than one after the other, unless an earlier request
        // to their slot is still unanswered.
        let mut quiet = Context::from_waker(Waker::noop());
        let mut unresolved = Unresolved::default();
        for (flight, ..) in inflight.iter_mut() {
            let may_retry = unresolved.lets_retry(flight.slot());
            flight.advance(sh, &mut quiet, may_retry);
            unresolved.add(flight);
        }
    }
    for (flight, ..) in inflight.iter_mut() {
        if let Flight::Pending(f, _) = flight {
            if let Poll::Ready(r) = f.as_mut().poll(cx) {
                *flight = Flight::Ready(r);
            }
        }
    }
    match inflight.front() {
        Some((Flight::Ready(_), ..)) => match inflight.pop_front() {
            Some((Flight::Ready(r), proto, read, stat)) => {
                Poll::Ready(Some((r, proto, read, stat)))
            }
            _ => Poll::Pending,
        },
        _ => Poll::Pending,
    }
}

/// A request in flight (or its reply), the protocol to answer it in (None: CLIENT REPLY
/// drops the reply), the number of the read it came in, and its name and dispatch time
/// for the command statistics.
type InFlight<F = Flight> = (F, Option<Protocol>, u64, Stat);

/// A command's name, when it was dispatched, and its arguments (kept for the slow log:
/// its bytes stay in the read buffer anyway, and most are in flight a moment).
type Stat = (Option<&'static str>, Instant, Vec<Bytes>);

/// Replies encoded and not yet written, and the statistics of their commands, handed to
/// the proxy's once they are written.
struct Out {
    buf: BytesMut,
    samples: Samples,
    /// Where slow commands are logged, and as whose.
    clients: Arc<Clients>,
    me: Arc<ClientState>,
    /// The clock, read once for the replies encoded together (a read per reply was 2% of
    /// a GET's CPU).
    now: Option<Instant>,
}

impl Out {
    fn encode(&mut self, r: Reply, proto: Option<Protocol>, (name, at, argv): Stat) {
        let now = *self.now.get_or_insert_with(Instant::now);
        let took = now.saturating_duration_since(at);
        self.clients.slowlog.note(&argv, took, &self.me);
        self.samples.add(name, took, Some(&r));
        if let Some(p) = proto {
            r.encode(p, &mut self.buf);
        }
    }
}

/// The oldest request's reply if it has one now.
fn oldest_now(inflight: &mut VecDeque<InFlight>, sh: &Arc<Shared>) -> Option<InFlight<Reply>> {
    match poll_oldest(inflight, sh, &mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => None,
    }
}

/// Serves one client until it disconnects, sends QUIT or a malformed request, or CLIENT
/// KILL throws `kill`.
/// Serves one client connection until it closes; `guard` unregisters it then.
pub async fn serve(mut stream: TcpStream, sh: Arc<Shared>, guard: ClientGuard) {
    let _ = stream.set_nodelay(true);
    let id = guard.state.id;
    let kill = &guard.state.kill;
    let mut session = Session::new(guard.state.clone());
    let mut parser = RequestParser::new(Limits {
        max_multibulk_len: 1024 * 1024,
        ..Limits::default()
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = Out {
        buf: BytesMut::with_capacity(16 * 1024),
        samples: Samples::default(),
        clients: sh.clients.clone(),
        me: guard.state.clone(),
        now: None,
    };
    // Grows with what the client pipelines: an idle connection holds no room for a window.
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    // Reads so far, and the read of the newest reply in `out`.
    let mut reads = 0u64;
    let mut out_read = 0u64;
    // Replies held for the rest of their read's until this fires.
    let hold = tokio::time::sleep(HOLD);
    tokio::pin!(hold);
    let mut holding = false;
    // Set once nothing more will be read: QUIT, or a malformed request.
    let mut closing = false;
    // Set once the client stopped sending (`printf … | nc`): what it sent is still
    // parsed and answered, then the connection closes.
    let mut eof = false;
    let mut shutdown = sh.shutdown.subscribe();
    // A command that reads or writes every group (FLUSHALL, DBSIZE, KEYS, SCAN, …) runs
    // alone: it waits here until every earlier request is answered, and the requests
    // behind it until it is. Sent at once, it could overtake an earlier write being
    // retried (a key set before a FLUSHALL would survive it) or be overtaken by a later
    // one; no stamp orders it, as it has no slot.
    let mut held: Option<Vec<Bytes>> = None;
    // MONITOR's subscription, taken as the command runs.
    let mut watch = None;
    let mut barrier = false;
    loop {
        // Set when the window, not the buffer, stopped the parsing: requests wait in
        // `buf` and no read may come for them (the client may have sent its last).
        let mut unparsed = false;
        out.now = None;
        let mut commands = 0;
        // When this round's requests were dispatched (one clock read for them all).
        let mut dispatched_at = None;
        while !closing && !session.monitor {
            if inflight.len() >= WINDOW {
                unparsed = true;
                break;
            }
            if barrier {
                if !inflight.is_empty() {
                    break;
                }
                barrier = false;
            }
            let parsed = match held.take() {
                Some(argv) => Ok(Some(argv)),
                None => parser.parse(&mut buf),
            };
            match parsed {
                Ok(Some(argv)) => {
                    // New routes are taken only once the requests sent on the old ones
                    // are answered. Sent on the new routes at once, a write could reach
                    // its slot's new owner before a read sent ahead of it, refused by
                    // the old owner as the slot moved, is retried there, and the read
                    // would see the write. Rare (a topology change while this client
                    // has requests in flight), and it costs one pipeline's wait.
                    if session.routes.is_stale(&sh.backends) {
                        if inflight.iter().any(|f| !matches!(f.0, Flight::Ready(_))) {
                            held = Some(argv);
                            break;
                        }
                        session.routes.refresh(&sh.backends);
                    }
                    if crate::multi::waits_for_watch(&session, &argv)
                        && inflight.iter().any(|f| !matches!(f.0, Flight::Ready(_)))
                    {
                        // EXEC sends the fingerprints its WATCHes are reading.
                        held = Some(argv);
                        break;
                    }
                    if orders_all(&argv) {
                        if !inflight.is_empty() {
                            held = Some(argv);
                            break;
                        }
                        barrier = true;
                    }
                    commands += 1;
                    if sh.monitors.active() {
                        sh.monitors.feed(&session.me.addr, &argv);
                    }
                    session.reply_mode.begin();
                    if sh.clients.pause.is_active() {
                        // CLIENT PAUSE: this client waits, as a paused Redis client does.
                        let write = crate::multi::held_by_write_pause(&session, &argv);
                        tokio::select! {
                            _ = sh.clients.pause.wait(write) => {}
                            _ = kill.killed() => return,
                        }
                    }
                    let at = *dispatched_at.get_or_insert_with(Instant::now);
                    let d = dispatch(&sh, &mut session, &argv);
                    if session.monitor && watch.is_none() {
                        // From here on every command is streamed to this client.
                        watch = Some(sh.monitors.watch());
                    }
                    // Encoded in the protocol in force after the command (HELLO answers in
                    // the protocol it chose); not at all after CLIENT REPLY OFF or SKIP.
                    let proto = (!session.reply_mode.muted()).then_some(session.proto);
                    let flight = match d {
                        Dispatched::Ready(r) => Flight::Ready(r),
                        Dispatched::Pending(f) => Flight::Pending(f, None),
                        Dispatched::Sent(c) => Flight::Sent(c),
                    };
                    inflight.push_back((flight, proto, reads, (session.last_cmd, at, argv)));
                    closing = session.quit;
                }
                Ok(None) => {
                    closing |= eof;
                    break;
                }
                Err(e) => {
                    let r = Reply::err(format!("ERR Protocol error: {e}"));
                    session.reply_mode.begin();
                    let proto = (!session.reply_mode.muted()).then_some(session.proto);
                    let at = Instant::now();
                    inflight.push_back((Flight::Ready(r), proto, reads, (None, at, Vec::new())));
                    closing = true;
                }
            }
        }
        if commands > 0 {
            // Once per read, for CLIENT LIST.
            session.me.touch(session.last_cmd, session.proto);
            sh.clients
                .total_commands
                .fetch_add(commands, Ordering::Relaxed);
        }
        while let Some((r, proto, read, stat)) = oldest_now(&mut inflight, &sh) {
            out.encode(r, proto, stat);
            out_read = read;
        }
        if !out.buf.is_empty() && !inflight.is_empty() {
            // Replies from the other backends may be a moment behind: one write for them all.
            crate::requeue::requeue().await;
            out.now = None;
            while let Some((r, proto, read, stat)) = oldest_now(&mut inflight, &sh) {
                out.encode(r, proto, stat);
                out_read = read;
            }
        }
        // The replies to one read's requests go out together, as Redis writes them: a
        // client that pipelines waits for all of them anyway, and each partial write cost
        // both ends a syscall and a wake-up (1.7 writes per read of redis-benchmark -P16
        // with three groups). Up to `HOLD`, in case one of them is slow.
        let rest_of_read = inflight.front().is_some_and(|f| f.2 == out_read);
        if !out.buf.is_empty() && rest_of_read && (!holding || !hold.is_elapsed()) {
            if !holding {
                holding = true;
                hold.as_mut().reset(tokio::time::Instant::now() + HOLD);
            }
        } else if !out.buf.is_empty() {
            holding = false;
            if !kill.write_all(&mut stream, &out.buf).await {
                return;
            }
            out.buf.clear();
        }
        if out.buf.is_empty() {
            // Written (or nothing to write: CLIENT REPLY OFF): their statistics count.
            sh.clients.stats.record(&mut out.samples);
        }
        if closing && inflight.is_empty() {
            let _ = stream.shutdown().await;
            return;
        }
        if let Some(w) = watch.take_if(|_| inflight.is_empty() && out.buf.is_empty()) {
            // Every reply before MONITOR's `+OK` is written: stream from here on.
            let stop = async {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            match monitor::serve(
                &mut stream,
                w,
                kill,
                &mut buf,
                &mut parser,
                stop,
                session.proto,
            )
            .await
            {
                monitor::Ended::Reset => {
                    crate::session::reset(&mut session);
                    continue;
                }
                monitor::Ended::Closed => return,
            }
        }
        if inflight.is_empty() && (held.is_some() || barrier) {
            // What held the parsing back is answered: parse on.
            continue;
        }
        if unparsed && inflight.len() < WINDOW {
            // The window has room again (the replies just written freed it): parse on
            // rather than wait for a read that the client may never send.
            continue;
        }
        let can_read = !closing && !eof && inflight.len() < WINDOW;
        if can_read && buf.len() + parser.pending_bytes() >= QUERY_BUFFER_LIMIT {
            tracing::debug!(client = id, "query buffer limit reached, closing");
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        if kill.is_killed() {
            return;
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = kill.killed() => return,
            n = stream.read_buf(&mut buf), if can_read => match n {
                Ok(0) => eof = true,
                Ok(_) => reads += 1,
                Err(_) => return,
            },
            Some((r, proto, read, stat)) = poll_fn(|cx| poll_oldest(&mut inflight, &sh, cx)), if !inflight.is_empty() => {
                // After a wait: the clock read before it is stale.
                out.now = None;
                out.encode(r, proto, stat);
                out_read = read;
            }
            _ = &mut hold, if holding => {}
        }
    }
}
