//! A client's connection state at the proxy, and the commands about the connection itself
//! (HELLO, CLIENT …), which the proxy answers: its backend connections are shared, so
//! connection state must never be sent to a node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::forward::Routes;
use crate::wire::hello::{self, check_name, client_list_filter, no_evict};
use crate::wire::kill::{client_kill_filter, KillSwitch};
use crate::wire::reply_mode::ReplyMode;
use crate::wire::{Protocol, Reply};
use crate::Shared;

pub struct Session {
    /// CLIENT ID.
    pub id: u64,
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
    /// CLIENT REPLY's state.
    pub reply_mode: ReplyMode,
}

impl Session {
    pub fn new(id: u64) -> Session {
        Session {
            id,
            // 63 bits: the node reads it as a non-negative integer.
            once_client: random_u64() >> 1,
            seq: 0,
            in_flight: InFlight::default(),
            proto: Protocol::Resp2,
            lane: id,
            routes: Routes::default(),
            quit: false,
            reply_mode: ReplyMode::default(),
        }
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

/// What CLIENT LIST shows of each connection.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub addr: String,
    pub laddr: String,
    /// Thrown by CLIENT KILL from another connection.
    pub kill: Arc<KillSwitch>,
    pub name: Bytes,
    pub lib_name: Bytes,
    pub lib_ver: Bytes,
}

/// The proxy's open client connections.
#[derive(Default)]
pub struct Clients(Mutex<BTreeMap<u64, ClientInfo>>);

impl Clients {
    /// Registers a connection; it closes when the switch returned is thrown.
    pub fn add(&self, id: u64, addr: String, laddr: String) -> Arc<KillSwitch> {
        let kill = Arc::new(KillSwitch::default());
        self.lock().insert(
            id,
            ClientInfo {
                addr,
                laddr,
                kill: kill.clone(),
                ..ClientInfo::default()
            },
        );
        kill
    }
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }
    pub fn count(&self) -> usize {
        self.lock().len()
    }
    fn update(&self, id: u64, f: impl FnOnce(&mut ClientInfo)) {
        if let Some(c) = self.lock().get_mut(&id) {
            f(c)
        }
    }
    fn get(&self, id: u64) -> ClientInfo {
        self.lock().get(&id).cloned().unwrap_or_default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ClientInfo>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(s: &mut Session, sh: &Shared, argv: &[Bytes]) -> Reply {
    let (proto, name) = match hello::parse(argv, s.proto) {
        Ok(p) => p,
        Err(e) => return e,
    };
    s.proto = proto;
    if let Some(n) = name {
        sh.clients.update(s.id, |c| c.name = n);
    }
    hello::reply(proto, s.id, "standalone", "master")
}

/// CLIENT ID | SETNAME | GETNAME | SETINFO | INFO | LIST (arity already checked).
pub fn client(s: &mut Session, sh: &Shared, argv: &[Bytes]) -> Reply {
    let sub = argv[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"id" => Reply::Int(s.id as i64),
        b"setname" => match check_name(&argv[2]) {
            Ok(()) => {
                sh.clients.update(s.id, |c| c.name = argv[2].clone());
                Reply::ok()
            }
            Err(e) => e,
        },
        b"getname" => {
            let name = sh.clients.get(s.id).name;
            if name.is_empty() {
                Reply::Null
            } else {
                Reply::Bulk(name)
            }
        }
        b"setinfo" => {
            let attr = argv[2].to_ascii_lowercase();
            if attr != b"lib-name" && attr != b"lib-ver" {
                return Reply::err(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&argv[2])
                ));
            }
            if let Err(_e) = check_name(&argv[3]) {
                return Reply::err(
                    "ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.",
                );
            }
            let v = argv[3].clone();
            sh.clients.update(s.id, |c| {
                if attr == b"lib-name" {
                    c.lib_name = v
                } else {
                    c.lib_ver = v
                }
            });
            Reply::ok()
        }
        b"info" => Reply::Verbatim(Bytes::from(line(s.id, &sh.clients.get(s.id), s))),
        b"list" => {
            let filter = match client_list_filter(argv) {
                Ok(f) => f,
                Err(e) => return e,
            };
            let all: Vec<(u64, ClientInfo)> = sh
                .clients
                .lock()
                .iter()
                .map(|(id, c)| (*id, c.clone()))
                .collect();
            let text: String = filter
                .pick(&all, |(id, _)| *id)
                .into_iter()
                .map(|(id, c)| line(*id, c, s))
                .collect();
            Reply::Verbatim(Bytes::from(text))
        }
        b"kill" => {
            let filter = match client_kill_filter(argv) {
                Ok(f) => f,
                Err(e) => return e,
            };
            let clients = sh.clients.lock();
            let all = clients.iter();
            let (reply, myself) = filter.kill(
                s.id,
                all.map(|(id, c)| (*id, c.addr.as_str(), c.laddr.as_str(), &*c.kill)),
            );
            s.quit |= myself;
            reply
        }
        b"no-evict" => no_evict(&argv[2]),
        b"reply" => s.reply_mode.set(&argv[2]),
        _ => Reply::err(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

fn line(id: u64, c: &ClientInfo, s: &Session) -> String {
    let resp = if s.proto == Protocol::Resp3 && id == s.id {
        3
    } else {
        2
    };
    format!(
        "id={id} addr={} laddr={} fd=0 name={} age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|list user=default redir=-1 resp={resp} lib-name={} lib-ver={}\n",
        c.addr,
        c.laddr,
        String::from_utf8_lossy(&c.name),
        String::from_utf8_lossy(&c.lib_name),
        String::from_utf8_lossy(&c.lib_ver),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_stays_below_the_oldest_write_in_flight() {
        let mut s = Session::new(1);
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
        let mut s = Session::new(1);
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
