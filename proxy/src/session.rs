//! A client's connection state at the proxy, and the commands about the connection itself
//! (HELLO, CLIENT …), which the proxy answers: its backend connections are shared, so
//! connection state must never be sent to a node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::forward::Routes;
use crate::wire::clients::{self, ClientState, Conn};
use crate::wire::hello;
use crate::wire::reply_mode::ReplyMode;
use crate::wire::{Protocol, Reply};
use crate::Shared;

pub struct Session {
    /// CLIENT ID.
    pub id: u64,
    /// What CLIENT LIST shows of this connection.
    pub me: Arc<ClientState>,
    /// The exactly-once identity of this connection's writes: unique across proxies and
    /// restarts (random), with `seq` counting its writes.
    pub once_client: u64,
    seq: u64,
    /// Its stamped writes not yet answered.
    in_flight: InFlight,
    pub proto: Protocol,
    /// Which pooled connection to each node this client uses.
    pub lane: u64,
    /// Its copy of the routes to the leaders.
    pub routes: Routes,
    pub quit: bool,
    /// MONITOR was received: once its `+OK` is written, the connection streams commands.
    pub monitor: bool,
    /// The full name of the last command dispatched, for CLIENT LIST.
    pub last_cmd: Option<&'static str>,
    /// CLIENT REPLY's state.
    pub reply_mode: ReplyMode,
    /// The commands queued since MULTI.
    pub multi: Option<crate::multi::Queue>,
    /// What WATCH watches.
    pub watched: Arc<Mutex<crate::multi::Watched>>,
}

impl Session {
    pub fn new(me: Arc<ClientState>) -> Session {
        let id = me.id;
        Session {
            id,
            me,
            // 63 bits: the node reads it as a non-negative integer.
            once_client: random_u64() >> 1,
            seq: 0,
            in_flight: InFlight::default(),
            proto: Protocol::Resp2,
            lane: id,
            routes: Routes::default(),
            quit: false,
            monitor: false,
            last_cmd: None,
            reply_mode: ReplyMode::default(),
            multi: None,
            watched: Default::default(),
        }
    }

    /// A session of a connection no registry knows of.
    #[cfg(test)]
    pub fn for_tests(id: u64) -> Session {
        Session::new(Arc::new(ClientState::new(
            id,
            String::new(),
            String::new(),
            0,
        )))
    }

    /// The exactly-once stamp of the next write (to `slot`), held until that write is
    /// answered (or given up on: the proxy never sends it again either way).
    pub fn stamp(&mut self, slot: u16) -> Stamp {
        self.seq += 1;
        let mut set = self.in_flight.lock();
        let acked = set
            .first_key_value()
            .map_or(self.seq - 1, |(oldest, _)| oldest - 1);
        let after = latest_to(&set, self.seq, slot);
        set.insert(self.seq, slot);
        drop(set);
        Stamp {
            seq: self.seq,
            acked,
            after,
            slot,
            in_flight: self.in_flight.clone(),
        }
    }

    /// What a read of `slot` must see: this connection's latest write to it still
    /// unanswered, if any (a stamp with `seq` 0, which holds no place in flight).
    pub fn read_stamp(&self, slot: u16) -> Option<Stamp> {
        let after = latest_to(&self.in_flight.lock(), self.seq + 1, slot);
        (after > 0).then(|| Stamp {
            seq: 0,
            acked: 0,
            after,
            slot,
            in_flight: self.in_flight.clone(),
        })
    }
}

/// A connection's stamped writes not yet answered, and their slots.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<BTreeMap<u64, u16>>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u16>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The latest write before `seq` to `slot` still unanswered (0: none). The window bounds
/// the walk.
fn latest_to(set: &BTreeMap<u64, u16>, seq: u64, slot: u16) -> u64 {
    set.range(..seq)
        .rev()
        .find(|(_, s)| **s == slot)
        .map_or(0, |(seq, _)| *seq)
}

/// A write's exactly-once stamp: its sequence number; `acked`, below which every write
/// of the connection is answered (the groups forget the replies up to it, so a client's
/// entry holds only its writes in flight); and `after`, the connection's write to the same
/// slot that must apply first. Writes leave in order, but one refused while a slot moves
/// is retried later, and a group applies a write only once the one it follows has.
pub struct Stamp {
    pub seq: u64,
    pub acked: u64,
    pub after: u64,
    slot: u16,
    in_flight: InFlight,
}

impl Stamp {
    /// Whether this stamps a write (a read's follows one, and takes no sequence number).
    pub fn is_write(&self) -> bool {
        self.seq > 0
    }

    /// What `after` is now: the write it named may since have been answered without
    /// applying (an error, or given up on), and then the one before it counts.
    pub fn after_now(&self) -> u64 {
        let before = if self.is_write() {
            self.seq
        } else {
            self.after + 1
        };
        latest_to(&self.in_flight.lock(), before, self.slot)
    }
}

impl Drop for Stamp {
    fn drop(&mut self) {
        if self.is_write() {
            self.in_flight.lock().remove(&self.seq);
        }
    }
}

/// A random u64 from the standard library's randomly keyed hasher, the clock and a counter.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// RESET: the connection as a fresh one (RESP2, no name, replies on, out of MONITOR
/// mode); its library info stays, as in Redis.
pub fn reset(s: &mut Session) -> Reply {
    s.proto = Protocol::Resp2;
    s.reply_mode = ReplyMode::default();
    s.monitor = false;
    s.multi = None;
    crate::multi::unwatch(s);
    s.me.update(|c| c.name = Bytes::new());
    Reply::status("RESET")
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(s: &mut Session, argv: &[Bytes]) -> Reply {
    let (proto, name) = match hello::parse(argv, s.proto) {
        Ok(p) => p,
        Err(e) => return e,
    };
    s.proto = proto;
    if let Some(n) = name {
        s.me.update(|c| c.name = n);
    }
    hello::reply(proto, s.id, "standalone", "master")
}

/// CLIENT, about this connection and the proxy's other client connections (never sent
/// to a node: the backend connections are shared).
pub fn client(s: &mut Session, sh: &Shared, argv: &[Bytes]) -> Reply {
    let conn = Conn {
        me: &s.me,
        proto: s.proto,
        reply_mode: &mut s.reply_mode,
        quit: &mut s.quit,
    };
    clients::client(argv, conn, &sh.clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_stays_below_the_oldest_write_in_flight() {
        let mut s = Session::for_tests(1);
        let one = s.stamp(9);
        assert_eq!((one.seq, one.acked), (1, 0));
        let two = s.stamp(9);
        assert_eq!((two.seq, two.acked), (2, 0));
        drop(two);
        // 1 is still in flight: 2 answered first does not acknowledge 1.
        assert_eq!(s.stamp(9).acked, 0);
        drop(one);
        let four = s.stamp(9);
        assert_eq!((four.seq, four.acked), (4, 3));
    }

    #[test]
    fn a_write_follows_the_latest_unanswered_one_to_its_slot() {
        let mut s = Session::for_tests(1);
        let one = s.stamp(5);
        let two = s.stamp(6);
        let three = s.stamp(5);
        let four = s.stamp(5);
        assert_eq!(
            [one.after, two.after, three.after, four.after],
            [0, 0, 1, 3]
        );
        // 3 answered (say, a syntax error): 4 now follows 1, still in flight.
        drop(three);
        assert_eq!(four.after_now(), 1);
        let read = s.read_stamp(5).expect("4 is in flight");
        assert_eq!((read.seq, read.after), (0, 4));
        drop(one);
        assert_eq!(four.after_now(), 0);
        assert_eq!(s.stamp(6).after, 2);
        drop(four);
        assert_eq!(read.after_now(), 0, "what it followed was answered");
        drop(read);
        assert!(s.read_stamp(5).is_none(), "nothing to follow");
        assert!(
            s.read_stamp(6).is_some(),
            "the stamps above are still in flight"
        );
    }
}
