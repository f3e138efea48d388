//! CLIENT KILL: its filters, with Redis 7.0's grammar and texts, and the switch another
//! connection throws to close one. The node and the proxy each kill their own clients.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::request::string2ll;
use super::Reply;

/// Which connections `CLIENT KILL` closes.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct KillFilter {
    /// `CLIENT KILL addr:port`: answers +OK or `No such client`, and may close itself.
    old_form: bool,
    id: Option<u64>,
    /// `TYPE master|replica|slave|pubsub`: no connection here is one.
    no_type: bool,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    /// Spare the connection that asked (the default of the new form).
    skipme: bool,
}

/// Parses `CLIENT KILL addr:port` or `CLIENT KILL <filter value> ...` (`argv[0..2]` is
/// `CLIENT KILL`; arity checked).
pub fn client_kill_filter(argv: &[Bytes]) -> Result<KillFilter, Reply> {
    if argv.len() == 3 {
        return Ok(KillFilter {
            old_form: true,
            addr: Some(argv[2].clone()),
            ..KillFilter::default()
        });
    }
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    for pair in argv[2..].chunks(2) {
        let [opt, value] = pair else {
            return Err(Reply::syntax_error());
        };
        match opt.to_ascii_lowercase().as_slice() {
            b"id" => match string2ll(value) {
                Some(id) if id > 0 => f.id = Some(id as u64),
                _ => return Err(Reply::err("ERR client-id should be greater than 0")),
            },
            b"type" => match value.to_ascii_lowercase().as_slice() {
                b"normal" => {}
                b"master" | b"replica" | b"slave" | b"pubsub" => f.no_type = true,
                _ => {
                    return Err(Reply::err(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(value)
                    )))
                }
            },
            b"user" if value.eq_ignore_ascii_case(b"default") => {}
            b"user" => {
                return Err(Reply::err(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(value)
                )))
            }
            b"addr" => f.addr = Some(value.clone()),
            b"laddr" => f.laddr = Some(value.clone()),
            b"skipme" => match value.to_ascii_lowercase().as_slice() {
                b"yes" => f.skipme = true,
                b"no" => f.skipme = false,
                _ => return Err(Reply::syntax_error()),
            },
            _ => return Err(Reply::syntax_error()),
        }
    }
    Ok(f)
}

impl KillFilter {
    /// Whether the connection `id` (peer `addr`, local `laddr`) is to be closed;
    /// `is_self` for the one that sent CLIENT KILL.
    pub fn matches(&self, id: u64, addr: &str, laddr: &str, is_self: bool) -> bool {
        !self.no_type
            && self.id.is_none_or(|i| i == id)
            && self.addr.as_ref().is_none_or(|a| a == addr.as_bytes())
            && self.laddr.as_ref().is_none_or(|a| a == laddr.as_bytes())
            && !(is_self && self.skipme)
    }

    /// Closes every matching connection of `clients` (id, peer address, local address,
    /// switch) but the asking one, `me`. Returns the reply and whether `me` matched too:
    /// it closes once that reply is written.
    pub fn kill<'a>(
        &self,
        me: u64,
        clients: impl IntoIterator<Item = (u64, &'a str, &'a str, &'a KillSwitch)>,
    ) -> (Reply, bool) {
        let mut killed = 0;
        let mut myself = false;
        for (id, addr, laddr, switch) in clients {
            if self.matches(id, addr, laddr, id == me) {
                killed += 1;
                match id == me {
                    true => myself = true,
                    false => switch.kill(),
                }
            }
        }
        (self.reply(killed), myself)
    }

    /// The reply once `killed` connections are closed.
    pub fn reply(&self, killed: usize) -> Reply {
        match (self.old_form, killed) {
            (true, 0) => Reply::err("ERR No such client"),
            (true, _) => Reply::ok(),
            (false, n) => Reply::Int(n as i64),
        }
    }
}

/// Closes a connection from another one: the connection waits on it beside its reads.
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: AtomicBool,
    wake: Notify,
}

impl KillSwitch {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        // A permit is kept if the connection is not waiting right now.
        self.wake.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Resolves once the connection is killed.
    pub async fn killed(&self) {
        while !self.is_killed() {
            self.wake.notified().await;
        }
    }

    /// Writes all of `buf` unless the connection is killed first (a client that does not
    /// read its replies can be killed too); false if the write failed or was cut short.
    pub async fn write_all<W: AsyncWrite + Unpin>(&self, w: &mut W, buf: &[u8]) -> bool {
        tokio::select! {
            // The write first: done at once, as most are, it leaves no waiter behind.
            biased;
            r = w.write_all(buf) => r.is_ok(),
            _ = self.killed() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &[&str]) -> Result<KillFilter, Reply> {
        let argv: Vec<Bytes> = ["CLIENT", "KILL"]
            .iter()
            .chain(args)
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        client_kill_filter(&argv)
    }

    #[test]
    fn kill_filters_follow_redis_grammar() {
        let err = |e: &str| Err(Reply::err(e));
        let id_err = "ERR client-id should be greater than 0";
        assert_eq!(filter(&["ID", "x"]), err(id_err));
        assert_eq!(filter(&["ID", "0"]), err(id_err));
        assert_eq!(filter(&["id", "-1"]), err(id_err));
        assert_eq!(filter(&["ID", "99999999999999999999"]), err(id_err));
        assert_eq!(
            filter(&["TYPE", "foo"]),
            err("ERR Unknown client type 'foo'")
        );
        assert_eq!(filter(&["USER", "bob"]), err("ERR No such user 'bob'"));
        let syntax = Err(Reply::syntax_error());
        assert_eq!(filter(&["USER", "default", "SKIPME", "maybe"]), syntax);
        assert_eq!(filter(&["FOO", "bar"]), syntax);
        assert_eq!(filter(&["ID", "1", "ID"]), syntax);
        assert_eq!(filter(&["MAXAGE", "1"]), syntax);
    }

    #[test]
    fn kill_filters_pick_connections() {
        let me = (7, "127.0.0.1:5000", "127.0.0.1:6379");
        let other = (8, "127.0.0.1:5001", "127.0.0.1:6379");
        let picks = |args: &[&str]| {
            let f = filter(args).unwrap();
            [me, other]
                .iter()
                .map(|&(id, a, l)| f.matches(id, a, l, id == 7))
                .collect::<Vec<_>>()
        };
        // The old form is an address, and may kill the connection asking.
        assert_eq!(picks(&["127.0.0.1:5000"]), [true, false]);
        assert_eq!(picks(&["ID"]), [false, false]);
        // The new form spares the asker unless SKIPME no.
        assert_eq!(picks(&["LADDR", "127.0.0.1:6379"]), [false, true]);
        assert_eq!(
            picks(&["LADDR", "127.0.0.1:6379", "SKIPME", "no"]),
            [true, true]
        );
        assert_eq!(picks(&["ID", "8", "ADDR", "127.0.0.1:5001"]), [false, true]);
        assert_eq!(
            picks(&["ID", "8", "ADDR", "127.0.0.1:5000"]),
            [false, false]
        );
        assert_eq!(picks(&["TYPE", "pubsub", "SKIPME", "no"]), [false, false]);
        assert_eq!(picks(&["TYPE", "normal", "USER", "default"]), [false, true]);
        assert_eq!(
            filter(&["x:1"]).unwrap().reply(0),
            Reply::err("ERR No such client")
        );
        assert_eq!(filter(&["x:1"]).unwrap().reply(1), Reply::ok());
        assert_eq!(filter(&["ID", "3"]).unwrap().reply(0), Reply::Int(0));
        // Others' switches are thrown; the asker is only told it matched.
        let (mine, theirs) = (KillSwitch::default(), KillSwitch::default());
        let clients = [(me, &mine), (other, &theirs)];
        let all = || clients.iter().map(|&((id, a, l), k)| (id, a, l, k));
        let f = filter(&["LADDR", "127.0.0.1:6379", "SKIPME", "no"]).unwrap();
        assert_eq!(f.kill(7, all()), (Reply::Int(2), true));
        assert!(!mine.is_killed() && theirs.is_killed());
    }
}
