//! MULTI, EXEC, DISCARD: a connection queues commands after MULTI, and EXEC runs them as
//! one logged command ([`Exec`]), applied whole within one log entry, so nothing else runs
//! between them on any replica. As in Redis, there is no rollback: a command that fails
//! at run time answers its error in EXEC's array and the others still run; a command
//! refused when queued (unknown, wrong arity, a slot served elsewhere, a command only the
//! connection can run) discards the whole transaction at EXEC with `EXECABORT`.
//!
//! As in Redis Cluster, every key of a transaction must hash to one slot (hash tags).
//! Reads in a transaction run inside the entry too, seeing the writes before them.
//!
//! The proxy sends a client's transaction as `TXN <argc> <arg> ... [<argc> <arg> ...]`
//! (stamped with `ONCE` like any write), which a node checks and runs as EXEC would.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{args, command_slot, parse, Command, WriteCmd};
use crate::db::{DbRead, DbWrite};
use redraft_proxy::wire::table::resolve;
use redraft_proxy::wire::Reply;

/// A transaction as logged: its commands, parsed when EXEC ran (writes), or kept as sent
/// (reads, parsed and run at apply), or already answered (commands that need no keyspace,
/// and those that failed to parse: their error is their reply, as in Redis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// The one slot of the transaction's keys (None: keyless).
    pub slot: Option<u16>,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Write(WriteCmd),
    Read(Vec<Bytes>),
    Reply(Reply),
}

impl Exec {
    /// Runs the transaction on a keyspace with no cluster around it (the group's apply
    /// runs each write with its cluster checks instead).
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        Reply::Array(
            self.items
                .iter()
                .map(|item| match item {
                    Item::Write(w) => w.apply(db, now_ms),
                    Item::Read(argv) => read(argv, db, now_ms),
                    Item::Reply(r) => r.clone(),
                })
                .collect(),
        )
    }
}

/// Runs a transaction's read at apply, against the entry's state so far.
pub fn read(argv: &[Bytes], db: &dyn DbRead, now_ms: u64) -> Reply {
    match parse(argv, now_ms) {
        Command::Read(r) => r.execute(db, now_ms),
        Command::Reply(r) => r,
        _ => Reply::err("ERR internal: a transaction's read no longer parses as a read"),
    }
}

/// The commands a connection queued since MULTI.
#[derive(Debug, Default)]
pub struct Queue {
    argvs: Vec<Vec<Bytes>>,
    /// A command was refused when queued: EXEC discards the transaction.
    failed: bool,
}

/// What the connection does with a request, given its transaction state.
pub enum Step {
    /// Answered here: MULTI, DISCARD, `+QUEUED`, a refusal.
    Reply(Reply),
    /// EXEC: the transaction to run, and its slot.
    Run(Command, Option<u16>),
    /// Not a transaction's business: the request runs as usual.
    Pass,
}

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH, and queueing while in MULTI. `refusal` says whether
/// this node must refuse a slot (MOVED, TRYAGAIN …): a queued command on such a slot fails
/// the transaction, as in Redis Cluster.
pub fn step(
    multi: &mut Option<Queue>,
    argv: &[Bytes],
    now_ms: u64,
    cluster_mode: bool,
    refusal: impl Fn(u16) -> Option<Reply>,
) -> Step {
    let name = argv
        .first()
        .map(|n| n.to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.as_slice();
    let Some(queue) = multi.as_mut() else {
        return match name {
            b"multi" | b"exec" | b"discard" | b"watch" | b"unwatch" => match resolve(argv) {
                Err(e) => Step::Reply(e),
                Ok(_) => Step::Reply(match name {
                    b"multi" => {
                        *multi = Some(Queue::default());
                        Reply::ok()
                    }
                    b"exec" => Reply::err("ERR EXEC without MULTI"),
                    b"discard" => Reply::err("ERR DISCARD without MULTI"),
                    b"watch" => Reply::err(WATCH_UNSUPPORTED),
                    _ => Reply::ok(),
                }),
            },
            _ => Step::Pass,
        };
    };
    if let Err(e) = resolve(argv) {
        queue.failed = true;
        return Step::Reply(e);
    }
    match name {
        b"exec" => {
            let queue = multi.take().unwrap_or_default();
            if queue.failed {
                return Step::Reply(Reply::err(EXECABORT));
            }
            match build(queue.argvs, now_ms, cluster_mode) {
                Ok((cmd, slot)) => Step::Run(cmd, slot),
                Err(e) => Step::Reply(e),
            }
        }
        b"discard" => {
            *multi = None;
            Step::Reply(Reply::ok())
        }
        b"multi" => Step::Reply(Reply::err("ERR MULTI calls can not be nested")),
        b"watch" => Step::Reply(Reply::err("ERR WATCH inside MULTI is not allowed")),
        // RESET ends the transaction with the rest of the connection's state.
        b"quit" | b"reset" => Step::Pass,
        _ => {
            let refused = queueable(argv, now_ms, cluster_mode).err().or_else(|| {
                command_slot(argv)
                    .ok()
                    .flatten()
                    .filter(|_| cluster_mode)
                    .and_then(&refusal)
            });
            match refused {
                Some(e) => {
                    queue.failed = true;
                    Step::Reply(e)
                }
                None => {
                    queue.argvs.push(argv.to_vec());
                    Step::Reply(Reply::status("QUEUED"))
                }
            }
        }
    }
}

/// redraft does not implement WATCH yet: a transaction that needs it must not run as if
/// it had watched.
const WATCH_UNSUPPORTED: &str =
    "ERR WATCH is not supported by redraft: a transaction runs whole, but cannot be made conditional on keys";

/// Whether a command may be queued: known, of the right arity, a data command or one that
/// needs no connection, and (in cluster mode) of one slot.
fn queueable(argv: &[Bytes], now_ms: u64, cluster_mode: bool) -> Result<(), Reply> {
    let spec = resolve(argv)?;
    if matches!(
        spec.name,
        "once" | "txn" | "multi" | "exec" | "discard" | "watch" | "unwatch"
    ) {
        return Err(Reply::err(NOT_ALLOWED));
    }
    if cluster_mode {
        command_slot(argv)?;
    }
    match parse(argv, now_ms) {
        // Needs the connection or the node, which a logged transaction cannot reach.
        Command::Session(_) => Err(Reply::err(NOT_ALLOWED)),
        _ => Ok(()),
    }
}

/// EXEC: the queued commands as one command. A transaction with keys, or with anything to
/// run against the keyspace, is one logged write; one of replies only is answered now.
pub fn build(
    argvs: Vec<Vec<Bytes>>,
    now_ms: u64,
    one_slot: bool,
) -> Result<(Command, Option<u16>), Reply> {
    let slot = common_slot(&argvs, one_slot)?;
    let mut items = Vec::with_capacity(argvs.len());
    let mut keyspace = slot.is_some();
    for argv in argvs {
        items.push(match parse(&argv, now_ms) {
            Command::Write(w) => {
                keyspace = true;
                Item::Write(w)
            }
            Command::Read(_) => {
                keyspace = true;
                Item::Read(argv)
            }
            Command::Reply(r) => Item::Reply(r),
            Command::Session(_) => Item::Reply(Reply::err(NOT_ALLOWED)),
        });
    }
    let exec = Exec { slot, items };
    if !keyspace {
        // Nothing reads or writes the keyspace: every item is its reply already.
        let replies = exec.items.into_iter().filter_map(|i| match i {
            Item::Reply(r) => Some(r),
            _ => None,
        });
        return Ok((Command::Reply(Reply::Array(replies.collect())), None));
    }
    Ok((Command::Write(WriteCmd::Exec(exec)), slot))
}

/// The slot of the commands' keys (the first one's, unless `one_slot`: then CROSSSLOT
/// when they differ).
fn common_slot(argvs: &[Vec<Bytes>], one_slot: bool) -> Result<Option<u16>, Reply> {
    let mut slot = None;
    for argv in argvs {
        match command_slot(argv)? {
            Some(s) if one_slot && slot.is_some_and(|prev| prev != s) => {
                return Err(Reply::err(
                    "CROSSSLOT Keys in request don't hash to the same slot",
                ))
            }
            Some(s) => slot = slot.or(Some(s)),
            None => {}
        }
    }
    Ok(slot)
}

/// `TXN <argc> <arg> ... [<argc> <arg> ...]`: a transaction the proxy queued, checked as a
/// node checks each queued command (any refusal refuses the whole, nothing runs).
pub fn parse_txn(argv: &[Bytes], now_ms: u64) -> args::ParseResult<Command> {
    let argvs = split_txn(argv)?;
    for a in &argvs {
        queueable(a, now_ms, true)?;
    }
    Ok(build(argvs, now_ms, true)?.0)
}

/// TXN's commands.
pub fn split_txn(argv: &[Bytes]) -> Result<Vec<Vec<Bytes>>, Reply> {
    let mut out = Vec::new();
    let mut rest = &argv[1..];
    while let Some((n, tail)) = rest.split_first() {
        let n = usize::try_from(args::parse_i64(n)?)
            .ok()
            .filter(|&n| n >= 1 && n <= tail.len())
            .ok_or_else(|| Reply::err("ERR TXN argument count out of range"))?;
        out.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    Ok(out)
}

/// TXN's slot: the one of all its commands' keys.
pub fn txn_slot(argv: &[Bytes]) -> Result<Option<u16>, Reply> {
    common_slot(&split_txn(argv)?, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testutil::*;
    use crate::db::keyspace::Keyspace;

    fn steps(multi: &mut Option<Queue>, cluster: bool, lines: &[&str]) -> Vec<Reply> {
        lines
            .iter()
            .map(|l| {
                let a = argv(&l.split(' ').collect::<Vec<_>>());
                match step(multi, &a, NOW, cluster, |s| {
                    (s == redraft_proxy::wire::key_slot(b"elsewhere"))
                        .then(|| Reply::err(format!("MOVED {s} 127.0.0.1:1")))
                }) {
                    Step::Reply(r) => r,
                    Step::Run(Command::Reply(r), _) => r,
                    Step::Run(Command::Write(w), _) => w.apply(&mut db_with(&[("n", "41")]), NOW),
                    Step::Run(..) => panic!("{l}: EXEC gave neither a reply nor a write"),
                    Step::Pass => Reply::status("PASS"),
                }
            })
            .collect()
    }

    fn queued() -> Reply {
        Reply::status("QUEUED")
    }

    #[test]
    fn the_connection_state_follows_redis() {
        let mut m = None;
        let got = steps(
            &mut m,
            false,
            &[
                "EXEC",
                "DISCARD",
                "UNWATCH",
                "GET n",
                "MULTI",
                "MULTI",
                "WATCH n",
                "INCR n",
                "SET n x BAD",
                "GET n",
                "PING",
                "EXEC",
            ],
        );
        assert_eq!(
            got,
            vec![
                Reply::err("ERR EXEC without MULTI"),
                Reply::err("ERR DISCARD without MULTI"),
                Reply::ok(),
                Reply::status("PASS"),
                Reply::ok(),
                Reply::err("ERR MULTI calls can not be nested"),
                Reply::err("ERR WATCH inside MULTI is not allowed"),
                queued(),
                // A syntax error is a run-time error: queued, answered in EXEC's array.
                queued(),
                queued(),
                queued(),
                Reply::Array(vec![
                    Reply::Int(42),
                    Reply::err("ERR syntax error"),
                    bulk("42"),
                    Reply::status("PONG"),
                ]),
            ]
        );
        assert!(m.is_none(), "EXEC ends the transaction");
    }

    #[test]
    fn a_command_refused_when_queued_aborts_the_transaction() {
        let abort = Reply::err(EXECABORT);
        for bad in [
            "NOSUCH x",
            "GET",
            "CLIENT SETNAME x",
            "ONCE 1 1 SET n 1",
            "MGET a b",
            "GET elsewhere",
        ] {
            let mut m = None;
            let got = steps(&mut m, true, &["MULTI", "INCR n", bad, "EXEC"]);
            assert!(got[2].is_error(), "{bad}: {:?}", got[2]);
            assert_eq!(got[3], abort, "{bad}");
        }
        // QUIT and RESET are the connection's: they pass.
        let mut m = None;
        let got = steps(&mut m, false, &["MULTI", "RESET", "QUIT"]);
        assert_eq!(got[1..], [Reply::status("PASS"), Reply::status("PASS")]);
    }

    #[test]
    fn discard_drops_the_queue_and_an_empty_exec_answers_an_empty_array() {
        let mut m = None;
        let got = steps(
            &mut m,
            false,
            &[
                "MULTI", "SET n 1", "DISCARD", "MULTI", "EXEC", "MULTI", "PING", "EXEC",
            ],
        );
        assert_eq!(got[2], Reply::ok());
        assert_eq!(got[4], Reply::Array(vec![]));
        assert_eq!(got[7], Reply::Array(vec![Reply::status("PONG")]));
    }

    #[test]
    fn a_transaction_needs_one_slot_in_a_cluster() {
        let two = vec![argv(&["SET", "{a}1", "x"]), argv(&["SET", "{b}1", "y"])];
        let crossslot = Reply::err("CROSSSLOT Keys in request don't hash to the same slot");
        assert_eq!(build(two.clone(), NOW, true).err(), Some(crossslot.clone()));
        let (cmd, slot) = build(two, NOW, false).expect("a standalone node takes any keys");
        assert!(matches!(cmd, Command::Write(_)));
        assert_eq!(slot, Some(redraft_proxy::wire::key_slot(b"a")));
        let txn = argv(&["TXN", "3", "SET", "{a}1", "x", "2", "GET", "{b}1"]);
        assert_eq!(txn_slot(&txn).err(), Some(crossslot));
    }

    #[test]
    fn reads_see_the_writes_before_them_and_nothing_rolls_back() {
        let mut db = Keyspace::new();
        let got = run(
            &mut db,
            &[
                "TXN", "3", "SET", "k", "foo", "2", "INCR", "k", "3", "APPEND", "k", "bar", "2",
                "GET", "k", "2", "STRLEN", "k",
            ],
        );
        assert_eq!(
            got,
            Reply::Array(vec![
                Reply::ok(),
                Reply::err("ERR value is not an integer or out of range"),
                Reply::Int(6),
                bulk("foobar"),
                Reply::Int(6),
            ])
        );
    }

    #[test]
    fn txn_rejects_bad_counts_and_what_cannot_be_queued() {
        let mut db = Keyspace::new();
        for (args, want) in [
            (
                &["TXN", "0", "GET"][..],
                "ERR TXN argument count out of range",
            ),
            (
                &["TXN", "3", "GET", "k"],
                "ERR TXN argument count out of range",
            ),
            (
                &["TXN", "x", "GET"],
                "ERR value is not an integer or out of range",
            ),
            (
                &["TXN", "1", "GET"],
                "ERR wrong number of arguments for 'get' command",
            ),
            (&["TXN", "2", "INFO", "x"], NOT_ALLOWED),
            (&["TXN", "1", "MULTI"], NOT_ALLOWED),
        ] {
            assert_eq!(run(&mut db, args), Reply::err(want), "{args:?}");
        }
        assert_eq!(db.key_count(), 0);
    }
}
