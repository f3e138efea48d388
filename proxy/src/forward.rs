//! Sending one request to the node that should answer it, and riding out what a cluster
//! in motion answers: MOVED (follow it now), ASK (ASKING then the command), TRYAGAIN and
//! CLUSTERDOWN (back off and retry), a lost connection or an unknown write outcome (retry
//! when the request is safe to repeat), all within the retry window; after that the client
//! gets the last error.
//!
//! A request is sent when it is started (synchronously, so one client's requests reach a
//! node in the order the client sent them) and finished asynchronously.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::backend::{Backend, BackendError};
use crate::session::Stamp;
use crate::topology::{Topology, View};
use crate::wire::reply::put_header;
use crate::wire::{Protocol, Reply};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// One node's connections for one protocol.
type Lanes = Vec<Backend>;

/// Pipelined connections to the nodes, a few per node and protocol. A client always uses
/// the same lane, so its requests to one node share one connection and keep their order.
pub struct Pool {
    lanes: usize,
    conns: Mutex<HashMap<(Arc<str>, Protocol), Lanes>>,
}

impl Pool {
    pub fn new(lanes: usize) -> Pool {
        Pool {
            lanes: lanes.max(1),
            conns: Mutex::new(HashMap::new()),
        }
    }

    /// Drops every connection (in-flight requests fail as lost).
    pub fn clear(&self) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn get(&self, addr: &Arc<str>, proto: Protocol, lane: u64) -> Backend {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = self.lanes;
        let v = conns.entry((addr.clone(), proto)).or_insert_with(|| {
            (0..lanes)
                .map(|_| Backend::connect(addr.clone(), proto))
                .collect()
        });
        let b = &mut v[(lane % lanes as u64) as usize];
        if !b.is_alive() {
            *b = Backend::connect(addr.clone(), proto);
        }
        b.clone()
    }
}

/// A client's copy of the routes it uses: the topology's view at some version and its
/// connection to each leader, so that routing a request reads one shared counter and
/// locks nothing. (Every client shares one pooled connection per node: the pool's lock,
/// the view's lock and the connection's reference count were each contended on every
/// request.)
#[derive(Default)]
pub struct Routes {
    version: u64,
    view: Option<Arc<View>>,
    /// (the view's leader address, this client's copy of it, protocol, connection).
    conns: Vec<(Arc<str>, Arc<str>, Protocol, Backend)>,
}

impl Routes {
    /// Whether the topology changed since this copy was taken. A copy not yet taken is
    /// not stale: nothing was sent on it.
    pub fn is_stale(&self, b: &Backends) -> bool {
        self.view.is_some() && self.version != b.topo.version()
    }

    /// Takes the topology's current view.
    pub fn refresh(&mut self, b: &Backends) {
        let (version, view) = b.topo.view();
        self.version = version;
        self.view = Some(view);
        self.conns.clear();
    }

    /// Where a command on `slot` goes: the leader's address and this client's connection
    /// to it. None while the slot has no known owner.
    fn route(
        &mut self,
        b: &Backends,
        slot: u16,
        proto: Protocol,
        lane: u64,
    ) -> Option<(Arc<str>, &Backend)> {
        if self.view.is_none() || self.version != b.topo.version() {
            self.refresh(b);
        }
        let leader = self.view.as_ref()?.leader(slot)?;
        let at = self
            .conns
            .iter()
            .position(|c| Arc::ptr_eq(&c.0, leader) && c.2 == proto);
        let i = match at {
            Some(i) if self.conns[i].3.is_alive() => i,
            _ => {
                let conn = (
                    leader.clone(),
                    Arc::from(&**leader),
                    proto,
                    b.pool.get(leader, proto, lane),
                );
                match at {
                    Some(i) => {
                        self.conns[i] = conn;
                        i
                    }
                    None => {
                        self.conns.push(conn);
                        self.conns.len() - 1
                    }
                }
            }
        };
        let c = &self.conns[i];
        Some((c.1.clone(), &c.3))
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The leader of the group owning the slot.
    Slot(u16),
    /// Any node (keyless commands every node answers the same).
    Any,
}

/// What the proxy shares among its clients.
pub struct Backends {
    pub topo: Arc<Topology>,
    pub pool: Pool,
    pub retry_window: Duration,
}

/// Whether a request may be sent again when its outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads: repeating one changes nothing.
    Read,
    /// Writes stamped `ONCE client seq`: a repeat gets the first reply.
    StampedWrite,
    /// Everything else (a client's own ONCE, controller commands): never sent twice
    /// unless the node said it did not run it.
    Unsafe,
}

/// One request in flight.
pub struct Call {
    target: Target,
    addr: Option<Arc<str>>,
    req: Bytes,
    proto: Protocol,
    lane: u64,
    retry: Retry,
    first: Option<oneshot::Receiver<Result<Reply, BackendError>>>,
    /// A stamped request: its stamp (a write's is held until it is answered) and what it
    /// was made of.
    once: Option<Once>,
}

struct Once {
    client: u64,
    stamp: Stamp,
    /// The wrapped command's arguments: how many, and where they start in the request
    /// (a new stamp keeps them as they are).
    argc: usize,
    tail: usize,
}

impl Call {
    /// A request just sent to `addr` (or not sent: no owner known), `first` its answer.
    fn sent(
        target: Target,
        addr: Option<Arc<str>>,
        req: Bytes,
        (proto, lane): (Protocol, u64),
        retry: Retry,
        first: Option<oneshot::Receiver<Result<Reply, BackendError>>>,
    ) -> Call {
        Call {
            target,
            addr,
            req,
            proto,
            lane,
            retry,
            first,
            once: None,
        }
    }

    /// Polls the first answer without a future of its own: `Some(reply)` when it settles
    /// the request, `None` when the request needs [`Backends::finish`] (a redirect, a
    /// retry, no owner known), which then reads that same answer.
    pub fn poll_first(&mut self, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        let Some(rx) = self.first.as_mut() else {
            return Poll::Ready(None);
        };
        let outcome = match Pin::new(rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r.unwrap_or_else(|_| Err(BackendError::Lost(Arc::from("dropped")))),
        };
        match outcome {
            Ok(r) if settles(&r, self.retry) => {
                self.first = None;
                Poll::Ready(Some(r))
            }
            other => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(other);
                self.first = Some(rx);
                Poll::Ready(None)
            }
        }
    }

    /// The slot it goes to (None: any node).
    pub fn slot(&self) -> Option<u16> {
        match self.target {
            Target::Slot(s) => Some(s),
            Target::Any => None,
        }
    }

    /// Before a retry: a write it was to follow may have been answered since without
    /// applying (an error, or given up on), and must not hold it back.
    fn restamp(&mut self) {
        if let Some(o) = &mut self.once {
            let after = o.stamp.after_now();
            if after != o.stamp.after {
                o.stamp.after = after;
                let mut out = BytesMut::with_capacity(self.req.len() + 20);
                put_once_header(&mut out, o.client, &o.stamp, o.argc);
                let tail = out.len();
                out.extend_from_slice(&self.req[o.tail..]);
                (self.req, o.tail) = (out.freeze(), tail);
            }
        }
    }
}

impl Backends {
    /// Sends `req` now; `finish` waits for (and retries) its reply.
    pub fn start(
        &self,
        target: Target,
        req: Bytes,
        proto: Protocol,
        lane: u64,
        retry: Retry,
    ) -> Call {
        let addr = match target {
            Target::Slot(s) => self.topo.addr(s),
            Target::Any => self.topo.any(),
        };
        let first = addr
            .as_ref()
            .map(|a| self.pool.get(a, proto, lane).send(req.clone()));
        Call::sent(target, addr, req, (proto, lane), retry, first)
    }

    /// Sends `req` now to the leader of `slot`, as `routes` has it; `finish` waits for (and
    /// retries) its reply.
    pub fn start_slot(
        &self,
        routes: &mut Routes,
        slot: u16,
        req: Bytes,
        (proto, lane): (Protocol, u64),
        retry: Retry,
    ) -> Call {
        let (addr, first) = match routes.route(self, slot, proto, lane) {
            Some((addr, conn)) => (Some(addr), Some(conn.send(req.clone()))),
            None => (None, None),
        };
        Call::sent(Target::Slot(slot), addr, req, (proto, lane), retry, first)
    }

    /// Sends a request stamped `ONCE client seq:acked:after` (a write, or a read that
    /// follows one) to the owner of `slot`.
    pub fn start_once(
        &self,
        routes: &mut Routes,
        slot: u16,
        (client, stamp): (u64, Stamp),
        argv: &[Bytes],
        (proto, lane): (Protocol, u64),
    ) -> Call {
        let (req, tail) = encode_once_at(client, &stamp, argv);
        let retry = if stamp.is_write() {
            Retry::StampedWrite
        } else {
            Retry::Read
        };
        let mut call = self.start_slot(routes, slot, req, (proto, lane), retry);
        call.once = Some(Once {
            client,
            stamp,
            argc: argv.len(),
            tail,
        });
        call
    }

    pub async fn finish(&self, mut call: Call) -> Reply {
        let deadline = Instant::now() + self.retry_window;
        let mut backoff = FIRST_BACKOFF;
        let mut redirects = 0u32;
        let mut asking = false;
        loop {
            let outcome = match call.first.take() {
                Some(rx) => Some(wait(rx).await),
                None => {
                    call.restamp();
                    match call.addr.clone() {
                        Some(addr) if asking => Some(self.ask(&addr, &call).await),
                        Some(addr) => {
                            let rx = self
                                .pool
                                .get(&addr, call.proto, call.lane)
                                .send(call.req.clone());
                            Some(wait(rx).await)
                        }
                        None => None,
                    }
                }
            };
            asking = false;
            let last = match outcome {
                Some(Ok(Reply::Error(e))) => match redirect(&e) {
                    Some((kind, slot, addr)) => {
                        let addr: Arc<str> = Arc::from(addr);
                        if kind == "MOVED" {
                            self.topo.moved(slot, &addr);
                        } else {
                            asking = true;
                        }
                        call.addr = Some(addr);
                        redirects += 1;
                        // Leaders changing hands can bounce a request a few times; only
                        // then back off.
                        if redirects < 4 {
                            continue;
                        }
                        Reply::Error(e)
                    }
                    None if retryable(&e, call.retry != Retry::Unsafe) => {
                        if e.starts_with("CLUSTERDOWN") {
                            self.topo.request_refresh();
                        }
                        Reply::Error(e)
                    }
                    None => return Reply::Error(e),
                },
                Some(Ok(r)) => return r,
                Some(Err(BackendError::Lost(_))) => {
                    self.topo.request_refresh();
                    match call.retry {
                        Retry::Unsafe => {
                            return Reply::err(
                                "ERR write outcome unknown: the connection to the node was lost",
                            )
                        }
                        Retry::StampedWrite => Reply::err(
                            "ERR write outcome unknown: no node answered within the retry window",
                        ),
                        Retry::Read => Reply::err("CLUSTERDOWN The cluster is down"),
                    }
                }
                None => {
                    self.topo.refresh_and_wait(MAX_BACKOFF).await;
                    Reply::err("CLUSTERDOWN Hash slot not served")
                }
            };
            if Instant::now() + backoff > deadline {
                return last;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            call.addr = match call.target {
                Target::Slot(s) => self.topo.addr(s),
                Target::Any => self.topo.any(),
            };
        }
    }

    /// ASKING and the request on a connection of their own: ASKING holds only for the
    /// next command of its connection, and a pooled connection is shared.
    async fn ask(&self, addr: &Arc<str>, call: &Call) -> Result<Reply, BackendError> {
        let b = Backend::connect(addr.clone(), call.proto);
        let asking = b.send(encode(&[Bytes::from_static(b"ASKING")]));
        let rx = b.send(call.req.clone());
        let _ = wait(asking).await;
        wait(rx).await
    }
}

/// The reply; a connection that stalls is dropped by its backend (see
/// [`crate::backend::STALL_TIMEOUT`]), which ends the wait as lost.
async fn wait(rx: oneshot::Receiver<Result<Reply, BackendError>>) -> Result<Reply, BackendError> {
    rx.await
        .unwrap_or_else(|_| Err(BackendError::Lost(Arc::from("dropped"))))
}

/// `MOVED <slot> <addr>` / `ASK <slot> <addr>`.
fn redirect(e: &str) -> Option<(&str, u16, &str)> {
    let mut it = e.split(' ');
    let kind = it.next()?;
    if kind != "MOVED" && kind != "ASK" {
        return None;
    }
    let slot = it.next()?.parse().ok()?;
    let addr = it.next()?;
    Some((kind, slot, addr))
}

/// Whether a first answer is final, as [`Backends::finish`] would take it.
fn settles(r: &Reply, retry: Retry) -> bool {
    match r {
        Reply::Error(e) => redirect(e).is_none() && !retryable(e, retry != Retry::Unsafe),
        _ => true,
    }
}

/// Errors that say "not now" rather than "no".
fn retryable(e: &str, repeatable: bool) -> bool {
    e.starts_with("TRYAGAIN")
        || e.starts_with("CLUSTERDOWN")
        || (repeatable && e.starts_with("ERR write outcome unknown"))
}

/// A request as a RESP array of bulk strings.
pub fn encode(argv: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(argv.iter().map(|a| a.len() + 16).sum::<usize>() + 16);
    put_header(&mut out, b'*', argv.len());
    for a in argv {
        put_header(&mut out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out.freeze()
}

/// `ONCE <client> <seq>:<acked>[:<after>]` in front of a request (see
/// [`crate::session::Stamp`]).
pub fn encode_once(client: u64, stamp: &Stamp, argv: &[Bytes]) -> Bytes {
    encode_once_at(client, stamp, argv).0
}

/// [`encode_once`], and where the wrapped command starts in it.
fn encode_once_at(client: u64, stamp: &Stamp, argv: &[Bytes]) -> (Bytes, usize) {
    let mut out = BytesMut::with_capacity(argv.iter().map(|a| a.len() + 16).sum::<usize>() + 80);
    put_once_header(&mut out, client, stamp, argv.len());
    let tail = out.len();
    for a in argv {
        put_header(&mut out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    (out.freeze(), tail)
}

/// The array header of a stamped command of `argc` arguments, and the stamp.
fn put_once_header(out: &mut BytesMut, client: u64, stamp: &Stamp, argc: usize) {
    let mut c = itoa::Buffer::new();
    let mut n = itoa::Buffer::new();
    let c = c.format(client).as_bytes();
    let mut seq = Vec::with_capacity(60);
    seq.extend_from_slice(n.format(stamp.seq).as_bytes());
    seq.push(b':');
    seq.extend_from_slice(n.format(stamp.acked).as_bytes());
    if stamp.after > 0 {
        seq.push(b':');
        seq.extend_from_slice(n.format(stamp.after).as_bytes());
    }
    put_header(out, b'*', argc + 3);
    for a in [&b"ONCE"[..], c, &seq] {
        put_header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_parse() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:6381"),
            Some(("MOVED", 3999, "127.0.0.1:6381"))
        );
        assert_eq!(redirect("ASK 1 h:2"), Some(("ASK", 1, "h:2")));
        assert_eq!(redirect("MOVED x h:1"), None);
        assert_eq!(redirect("ERR MOVED 1 h:1"), None);
    }

    #[test]
    fn once_wraps_the_request() {
        let mut session = crate::session::Session::for_tests(1);
        let incr = [Bytes::from_static(b"INCR"), Bytes::from_static(b"k")];
        let first = session.stamp(1);
        let second = session.stamp(2);
        assert_eq!(
            &encode_once(7, &second, &incr)[..],
            b"*5\r\n$4\r\nONCE\r\n$1\r\n7\r\n$3\r\n2:0\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
        );
        // Behind a write to the same slot still in flight: it names it.
        let third = session.stamp(1);
        assert_eq!(
            &encode_once(7, &third, &incr)[..],
            b"*5\r\n$4\r\nONCE\r\n$1\r\n7\r\n$5\r\n3:0:1\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
        );
        drop(first);
        assert_eq!(
            &encode(&[Bytes::from_static(b"GET"), Bytes::new()])[..],
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n"
        );
    }

    /// A retry's new stamp is spliced in front of the command's arguments as they were.
    #[test]
    fn a_new_stamp_keeps_the_command() {
        let mut session = crate::session::Session::for_tests(1);
        let set = [
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"v"),
        ];
        let first = session.stamp(1);
        let second = session.stamp(1);
        let (req, tail) = encode_once_at(7, &second, &set);
        assert_eq!(
            &req[..],
            b"*6\r\n$4\r\nONCE\r\n$1\r\n7\r\n$5\r\n2:0:1\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        let mut call = Call::sent(
            Target::Slot(1),
            None,
            req,
            (Protocol::Resp2, 0),
            Retry::StampedWrite,
            None,
        );
        call.once = Some(Once {
            client: 7,
            stamp: second,
            argc: set.len(),
            tail,
        });
        call.restamp();
        assert!(call
            .req
            .ends_with(b"2:0:1\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"));
        // The write it followed is answered: the retry follows none.
        drop(first);
        call.restamp();
        assert_eq!(
            &call.req[..],
            b"*6\r\n$4\r\nONCE\r\n$1\r\n7\r\n$3\r\n2:0\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        call.restamp();
        assert!(call.req.ends_with(b"$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"));
    }

    #[test]
    fn only_not_now_errors_are_retried() {
        assert!(retryable("TRYAGAIN Slot 5 is being migrated", false));
        assert!(retryable("CLUSTERDOWN The cluster is down", false));
        assert!(!retryable("ERR write outcome unknown", false));
        assert!(retryable("ERR write outcome unknown", true));
        assert!(!retryable(
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            true
        ));
    }

    fn sent(retry: Retry, answer: Result<Reply, BackendError>) -> Call {
        let (tx, rx) = oneshot::channel();
        tx.send(answer).unwrap();
        Call::sent(
            Target::Slot(1),
            Some(Arc::from("127.0.0.1:1")),
            encode(&[Bytes::from_static(b"GET"), Bytes::from_static(b"k")]),
            (Protocol::Resp2, 0),
            retry,
            Some(rx),
        )
    }

    /// A first answer that `finish` would not return as it is goes to `finish`, intact.
    #[test]
    fn a_first_answer_settles_only_what_finish_would_not_retry() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let settled = |retry, answer| -> Option<Reply> {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match sent(retry, answer).poll_first(&mut cx) {
                Poll::Ready(r) => r,
                Poll::Pending => panic!("the answer is there"),
            }
        };
        let wrongtype =
            Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert_eq!(settled(Retry::Read, Ok(Reply::Int(3))), Some(Reply::Int(3)));
        assert_eq!(settled(Retry::Read, Ok(wrongtype.clone())), Some(wrongtype));
        let unknown = Reply::err("ERR write outcome unknown: commit timed out");
        assert_eq!(
            settled(Retry::Unsafe, Ok(unknown.clone())),
            Some(unknown.clone())
        );
        for (retry, answer) in [
            (Retry::Read, Ok(Reply::err("MOVED 1 127.0.0.1:2"))),
            (Retry::Read, Ok(Reply::err("ASK 1 127.0.0.1:2"))),
            (
                Retry::StampedWrite,
                Ok(Reply::err("TRYAGAIN Slot 1 is being migrated")),
            ),
            (
                Retry::Read,
                Ok(Reply::err("CLUSTERDOWN The cluster is down")),
            ),
            (Retry::StampedWrite, Ok(unknown)),
            (
                Retry::Read,
                Err(BackendError::Lost(Arc::from("127.0.0.1:1"))),
            ),
        ] {
            let mut call = sent(retry, answer.clone());
            assert!(
                matches!(call.poll_first(&mut cx), Poll::Ready(None)),
                "{answer:?}"
            );
            let again = call.first.take().expect("handed on").try_recv();
            assert_eq!(format!("{:?}", again.unwrap()), format!("{answer:?}"));
        }
    }
}
