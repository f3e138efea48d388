//! MULTI, EXEC, DISCARD, WATCH: a connection queues commands after MULTI, and EXEC runs
//! them as one logged command ([`Exec`]), applied whole within one log entry, so nothing
//! else runs between them on any replica. As in Redis, there is no rollback: a command
//! that fails at run time answers its error in EXEC's array and the others still run; a
//! command refused when queued (unknown, wrong arity, a slot served elsewhere, a command
//! only the connection can run) discards the whole transaction at EXEC with `EXECABORT`.
//!
//! As in Redis Cluster, every key of a transaction, watched keys included, must hash to
//! one slot (hash tags). Reads in a transaction run inside the entry too, seeing the
//! writes before them.
//!
//! WATCH reads a fingerprint of each key's value and expiry (after a read barrier), and
//! EXEC carries them: at apply, if any watched key no longer has its fingerprint, nothing
//! runs and EXEC answers a null array, as Redis does when a watched key was touched. One
//! difference, on purpose: a key rewritten with the very value and expiry it had is not a
//! change here (Redis aborts on any write), since what the transaction was computed from
//! still holds.
//!
//! The proxy sends a client's transaction as `TXN [WATCH <n> <key> <fingerprint> ...]
//! <argc> <arg> ... [<argc> <arg> ...]` (stamped with `ONCE` like any write), which a node
//! checks and runs as EXEC would, and reads fingerprints with `TXNWATCH <key> ...`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{args, command_slot, parse, Command, WriteCmd};
use crate::db::{DbRead, DbWrite, Value};
use redraft_proxy::wire::pause::holds_under_write;
use redraft_proxy::wire::table::resolve;
use redraft_proxy::wire::Reply;

/// A transaction as logged: its commands, parsed when EXEC ran (writes), or kept as sent
/// (reads, parsed and run at apply), or already answered (commands that need no keyspace,
/// and those that failed to parse: their error is their reply, as in Redis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// The one slot of the transaction's keys (None: keyless).
    pub slot: Option<u16>,
    /// Watched keys and their fingerprints at WATCH time.
    pub watch: Vec<(Bytes, Bytes)>,
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
        if self.watched_changed(db, now_ms) {
            return Reply::NullArray;
        }
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

    /// Whether a watched key's value or expiry changed since WATCH (or it expired).
    pub fn watched_changed(&self, db: &dyn DbRead, now_ms: u64) -> bool {
        self.watch
            .iter()
            .any(|(k, fp)| fingerprint(db.get(k, now_ms).as_ref()) != *fp)
    }
}

/// What WATCH remembers of a key: empty when it is missing (or expired), else a 128-bit
/// hash of its expiry and value, the same on every replica and release (XXH3 is a fixed
/// algorithm).
pub fn fingerprint(v: Option<&Value>) -> Bytes {
    let Some(v) = v else { return Bytes::new() };
    let crate::db::Data::Str(data) = &v.data;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&v.expire_at.map_or(u64::MAX, |t| t).to_le_bytes());
    h.update(data);
    Bytes::copy_from_slice(&h.digest128().to_le_bytes())
}

/// Runs a transaction's read at apply, against the entry's state so far.
pub fn read(argv: &[Bytes], db: &dyn DbRead, now_ms: u64) -> Reply {
    match parse(argv, now_ms) {
        Command::Read(r) => r.execute(db, now_ms),
        Command::Reply(r) => r,
        _ => Reply::err("ERR internal: a transaction's read no longer parses as a read"),
    }
}

/// `TXNWATCH <key> ...`: the keys' fingerprints, for the proxy's WATCH.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnWatch {
    pub keys: Vec<Bytes>,
}

impl TxnWatch {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let fps = self
            .keys
            .iter()
            .map(|k| fingerprint(db.get(k, now_ms).as_ref()));
        Reply::Array(fps.map(Reply::Bulk).collect())
    }
}

pub fn parse_txnwatch(argv: &[Bytes], _now_ms: u64) -> args::ParseResult<Command> {
    Ok(Command::Read(super::ReadCmd::TxnWatch(TxnWatch {
        keys: argv[1..].to_vec(),
    })))
}

/// A connection's transaction state: what it watches, and its queue once in MULTI.
#[derive(Debug, Default)]
pub struct Tx {
    queue: Option<Queue>,
    watched: Vec<(Bytes, Bytes)>,
}

impl Tx {
    /// Records a watched key's fingerprint (WATCH, once its read ran).
    pub fn watch(&mut self, key: Bytes, fingerprint: Bytes) {
        self.watched.push((key, fingerprint));
    }

    /// Whether a CLIENT PAUSE WRITE holds `argv`: a write, or, as in Redis, an EXEC whose
    /// queue holds one.
    pub fn held_by_write_pause(&self, argv: &[Bytes]) -> bool {
        holds_under_write(argv)
            || (argv
                .first()
                .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
                && self
                    .queue
                    .as_ref()
                    .is_some_and(|q| q.argvs.iter().any(|a| holds_under_write(a))))
    }
}

/// The commands a connection queued since MULTI.
#[derive(Debug, Default)]
struct Queue {
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
    /// WATCH: read these keys' fingerprints (after the connection's earlier writes), then
    /// [`Tx::watch`] each and answer OK.
    Watch(Vec<Bytes>),
    /// Not a transaction's business: the request runs as usual.
    Pass,
}

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
const NOT_ALLOWED: &str = "ERR Command not allowed inside a transaction";
const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH, and queueing while in MULTI. `refusal` says whether
/// this node must refuse a slot (MOVED, TRYAGAIN …): a queued command on such a slot fails
/// the transaction, as in Redis Cluster, and WATCH of such a key answers the refusal.
pub fn step(
    tx: &mut Tx,
    argv: &[Bytes],
    now_ms: u64,
    cluster_mode: bool,
    refusal: impl Fn(u16) -> Option<Reply>,
) -> Step {
    // The names this looks at, lower case; anything else is "" (no allocation: this runs
    // for every request).
    const NAMES: [&[u8]; 7] = [
        b"multi", b"exec", b"discard", b"watch", b"unwatch", b"quit", b"reset",
    ];
    let name = argv
        .first()
        .and_then(|a| NAMES.into_iter().find(|n| a.eq_ignore_ascii_case(n)))
        .unwrap_or_default();
    let Some(queue) = tx.queue.as_mut() else {
        return match name {
            b"multi" | b"exec" | b"discard" | b"watch" | b"unwatch" => match resolve(argv) {
                Err(e) => Step::Reply(e),
                Ok(_) => match name {
                    b"multi" => {
                        tx.queue = Some(Queue::default());
                        Step::Reply(Reply::ok())
                    }
                    b"exec" => Step::Reply(Reply::err("ERR EXEC without MULTI")),
                    b"discard" => Step::Reply(Reply::err("ERR DISCARD without MULTI")),
                    b"watch" => watch(tx, argv, cluster_mode, refusal),
                    _ => {
                        tx.watched.clear();
                        Step::Reply(Reply::ok())
                    }
                },
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
            let queue = tx.queue.take().unwrap_or_default();
            let watched = std::mem::take(&mut tx.watched);
            if queue.failed {
                return Step::Reply(Reply::err(EXECABORT));
            }
            match build(queue.argvs, watched, now_ms, cluster_mode) {
                Ok((cmd, slot)) => Step::Run(cmd, slot),
                Err(e) => Step::Reply(e),
            }
        }
        b"discard" => {
            *tx = Tx::default();
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

/// WATCH outside MULTI: in cluster mode its keys, and those watched before, need one slot
/// that this node serves.
fn watch(
    tx: &Tx,
    argv: &[Bytes],
    cluster_mode: bool,
    refusal: impl Fn(u16) -> Option<Reply>,
) -> Step {
    if cluster_mode {
        let mut keys = tx.watched.iter().map(|(k, _)| k).chain(&argv[1..]);
        let first = keys.next().map(|k| redraft_proxy::wire::key_slot(k));
        if let Some(slot) = first {
            if keys.any(|k| redraft_proxy::wire::key_slot(k) != slot) {
                return Step::Reply(Reply::err(CROSSSLOT));
            }
            if let Some(r) = refusal(slot) {
                return Step::Reply(r);
            }
        }
    }
    Step::Watch(argv[1..].to_vec())
}

/// Whether a command may be queued: known, of the right arity, a data command or one that
/// needs no connection, and (in cluster mode) of one slot.
fn queueable(argv: &[Bytes], now_ms: u64, cluster_mode: bool) -> Result<(), Reply> {
    let spec = resolve(argv)?;
    if matches!(
        spec.name,
        "once" | "txn" | "txnwatch" | "multi" | "exec" | "discard" | "watch"
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

/// EXEC: the queued commands as one command. A transaction with keys, watched ones
/// included, or with anything to run against the keyspace, is one logged write; one of
/// replies only is answered now.
pub fn build(
    argvs: Vec<Vec<Bytes>>,
    watch: Vec<(Bytes, Bytes)>,
    now_ms: u64,
    one_slot: bool,
) -> Result<(Command, Option<u16>), Reply> {
    let mut slot = common_slot(&argvs, one_slot)?;
    // Watched keys share one slot (WATCH and TXN's slot check see to it).
    if let Some(w) = watch.first().map(|(k, _)| redraft_proxy::wire::key_slot(k)) {
        if one_slot && slot.is_some_and(|s| s != w) {
            return Err(Reply::err(CROSSSLOT));
        }
        slot = slot.or(Some(w));
    }
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
    let exec = Exec { slot, watch, items };
    if !keyspace {
        // Nothing reads, writes or watches the keyspace: every item is its reply already.
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
                return Err(Reply::err(CROSSSLOT))
            }
            Some(s) => slot = slot.or(Some(s)),
            None => {}
        }
    }
    Ok(slot)
}

/// `TXN [WATCH <n> <key> <fingerprint> ...] <argc> <arg> ... [<argc> <arg> ...]`: a
/// transaction the proxy queued, checked as a node checks each queued command (any
/// refusal refuses the whole, nothing runs).
pub fn parse_txn(argv: &[Bytes], now_ms: u64) -> args::ParseResult<Command> {
    let (watch, argvs) = split_txn(argv)?;
    for a in &argvs {
        queueable(a, now_ms, true)?;
    }
    Ok(build(argvs, watch, now_ms, true)?.0)
}

/// TXN's watched keys with their fingerprints, and its commands.
#[allow(clippy::type_complexity)]
pub fn split_txn(argv: &[Bytes]) -> Result<(Vec<(Bytes, Bytes)>, Vec<Vec<Bytes>>), Reply> {
    let range = || Reply::err("ERR TXN argument count out of range");
    let mut rest = &argv[1..];
    let mut watch = Vec::new();
    if rest
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"watch"))
    {
        let n = rest.get(1).ok_or_else(range)?;
        let n = usize::try_from(args::parse_i64(n)?).map_err(|_| range())?;
        let pairs = rest.get(2..2 + 2 * n).ok_or_else(range)?;
        watch = pairs
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        rest = &rest[2 + 2 * n..];
    }
    let mut out = Vec::new();
    while let Some((n, tail)) = rest.split_first() {
        let n = usize::try_from(args::parse_i64(n)?)
            .ok()
            .filter(|&n| n >= 1 && n <= tail.len())
            .ok_or_else(range)?;
        out.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    Ok((watch, out))
}

/// TXN's slot: the one of all its commands' keys.
pub fn txn_slot(argv: &[Bytes]) -> Result<Option<u16>, Reply> {
    let (watch, argvs) = split_txn(argv)?;
    // A watched key counts as a key of the transaction.
    let mut watched = watch.iter().map(|(k, _)| redraft_proxy::wire::key_slot(k));
    watched.try_fold(common_slot(&argvs, true)?, |slot, w| match slot {
        Some(s) if s != w => Err(Reply::err(CROSSSLOT)),
        _ => Ok(Some(w)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testutil::*;
    use crate::db::keyspace::Keyspace;

    fn steps(tx: &mut Tx, cluster: bool, lines: &[&str]) -> Vec<Reply> {
        lines
            .iter()
            .map(|l| {
                let a = argv(&l.split(' ').collect::<Vec<_>>());
                match step(tx, &a, NOW, cluster, |s| {
                    (s == redraft_proxy::wire::key_slot(b"elsewhere"))
                        .then(|| Reply::err(format!("MOVED {s} 127.0.0.1:1")))
                }) {
                    Step::Reply(r) => r,
                    Step::Run(Command::Reply(r), _) => r,
                    Step::Run(Command::Write(w), _) => w.apply(&mut db_with(&[("n", "41")]), NOW),
                    Step::Run(..) => panic!("{l}: EXEC gave neither a reply nor a write"),
                    Step::Watch(keys) => {
                        for k in keys {
                            tx.watch(k, Bytes::new());
                        }
                        Reply::status("WATCHING")
                    }
                    Step::Pass => Reply::status("PASS"),
                }
            })
            .collect()
    }

    fn queued() -> Reply {
        Reply::status("QUEUED")
    }

    #[test]
    fn a_write_pause_holds_exec_only_when_it_queued_a_write() {
        let held = |lines: &[&str], cmd: &str| {
            let mut tx = Tx::default();
            steps(&mut tx, false, lines);
            tx.held_by_write_pause(&argv(&cmd.split(' ').collect::<Vec<_>>()))
        };
        assert!(held(&[], "SET k v"));
        assert!(!held(&[], "GET k"));
        assert!(!held(&[], "EXEC"));
        assert!(!held(&["MULTI", "GET k", "PING"], "EXEC"));
        assert!(held(&["MULTI", "GET k", "INCR n"], "EXEC"));
        assert!(held(&["MULTI", "GET k", "INCR n"], "exec"));
        assert!(!held(&["MULTI", "INCR n"], "DISCARD"));
        assert!(!held(&["MULTI", "INCR n", "EXEC"], "EXEC"));
    }

    #[test]
    fn the_connection_state_follows_redis() {
        let mut m = Tx::default();
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
        assert!(m.queue.is_none(), "EXEC ends the transaction");
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
            let mut m = Tx::default();
            let got = steps(&mut m, true, &["MULTI", "INCR n", bad, "EXEC"]);
            assert!(got[2].is_error(), "{bad}: {:?}", got[2]);
            assert_eq!(got[3], abort, "{bad}");
        }
        // QUIT and RESET are the connection's: they pass.
        let mut m = Tx::default();
        let got = steps(&mut m, false, &["MULTI", "RESET", "QUIT"]);
        assert_eq!(got[1..], [Reply::status("PASS"), Reply::status("PASS")]);
    }

    #[test]
    fn discard_drops_the_queue_and_an_empty_exec_answers_an_empty_array() {
        let mut m = Tx::default();
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
        assert_eq!(
            build(two.clone(), vec![], NOW, true).err(),
            Some(crossslot.clone())
        );
        let (cmd, slot) = build(two, vec![], NOW, false).expect("a standalone node takes any keys");
        assert!(matches!(cmd, Command::Write(_)));
        assert_eq!(slot, Some(redraft_proxy::wire::key_slot(b"a")));
        let txn = argv(&["TXN", "3", "SET", "{a}1", "x", "2", "GET", "{b}1"]);
        assert_eq!(txn_slot(&txn).err(), Some(crossslot.clone()));
        // A watched key is one of the transaction's.
        let txn = argv(&["TXN", "WATCH", "1", "{b}1", "", "3", "SET", "{a}1", "x"]);
        assert_eq!(txn_slot(&txn).err(), Some(crossslot.clone()));
        let watch = vec![(Bytes::from_static(b"{b}2"), Bytes::new())];
        let one = vec![argv(&["SET", "{a}1", "x"])];
        assert_eq!(build(one, watch.clone(), NOW, true).err(), Some(crossslot));
        // Watching alone makes a transaction of the watched slot, run through the log.
        let (cmd, slot) = build(vec![argv(&["PING"])], watch, NOW, true).unwrap();
        assert!(matches!(cmd, Command::Write(_)));
        assert_eq!(slot, Some(redraft_proxy::wire::key_slot(b"b")));
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
            (&["TXN", "2", "WATCH", "k"], NOT_ALLOWED),
            (
                &["TXN", "WATCH", "3", "k", "", "1", "PING"],
                "ERR TXN argument count out of range",
            ),
            (
                &["TXN", "WATCH", "-1", "1", "PING"],
                "ERR TXN argument count out of range",
            ),
        ] {
            assert_eq!(run(&mut db, args), Reply::err(want), "{args:?}");
        }
        assert_eq!(db.key_count(), 0);
    }

    /// `TXN WATCH 1 <key> <fp> <command>` parsed and applied at `now` (the fingerprint is
    /// binary: the argv is built by hand).
    fn watching(db: &mut Keyspace, key: &str, fp: Bytes, cmd: &[&str], now: u64) -> Reply {
        let mut a = argv(&["TXN", "WATCH", "1", key]);
        a.push(fp);
        a.push(Bytes::from(cmd.len().to_string()));
        a.extend(argv(cmd));
        match parse(&a, now) {
            Command::Write(w) => w.apply(db, now),
            other => panic!("a watching TXN is a write: {other:?}"),
        }
    }

    #[test]
    fn a_watched_key_that_changed_aborts_with_a_null_array() {
        let mut db = db_with(&[("k", "v")]);
        let fp = |db: &Keyspace| fingerprint(db.get(b"k", NOW).as_ref());
        let watched = fp(&db);
        assert_eq!(watched.len(), 16);
        let set_mine = ["SET", "k", "mine"];
        // Unchanged (rewritten with the same value counts as unchanged): it runs.
        run(&mut db, &["SET", "k", "v"]);
        let got = watching(&mut db, "k", watched, &set_mine, NOW);
        assert_eq!(got, Reply::Array(vec![Reply::ok()]));
        // Changed since: nothing runs.
        let watched = fp(&db);
        run(&mut db, &["APPEND", "k", "!"]);
        assert_eq!(
            watching(&mut db, "k", watched, &set_mine, NOW),
            Reply::NullArray
        );
        assert_eq!(run(&mut db, &["GET", "k"]), bulk("mine!"));
        // A new expiry is a change; so is expiring.
        let watched = fp(&db);
        run(&mut db, &["PEXPIRE", "k", "100"]);
        assert_eq!(
            watching(&mut db, "k", watched, &set_mine, NOW),
            Reply::NullArray
        );
        let watched = fp(&db);
        let got = watching(&mut db, "k", watched, &set_mine, NOW);
        assert_eq!(got, Reply::Array(vec![Reply::ok()]));
        run(&mut db, &["PEXPIRE", "k", "100"]);
        let watched = fp(&db);
        let later = NOW + 200;
        assert_eq!(
            watching(&mut db, "k", watched, &["PING"], later),
            Reply::NullArray
        );
        // A missing key watched stays missing: it runs.
        let got = watching(&mut db, "nokey", fingerprint(None), &["PING"], NOW);
        assert_eq!(got, Reply::Array(vec![Reply::status("PONG")]));
    }

    #[test]
    fn watch_needs_one_slot_and_unwatch_exec_and_discard_forget() {
        let mut m = Tx::default();
        let got = steps(
            &mut m,
            true,
            &[
                "WATCH {a}1 {a}2",
                "WATCH {a}3",
                "WATCH {b}1",
                "WATCH elsewhere",
            ],
        );
        assert_eq!(got[0], Reply::status("WATCHING"));
        assert_eq!(got[1], Reply::status("WATCHING"));
        assert_eq!(got[2], Reply::err(CROSSSLOT));
        assert_eq!(m.watched.len(), 3);
        steps(&mut m, true, &["UNWATCH"]);
        assert!(m.watched.is_empty());
        let got = steps(&mut m, true, &["WATCH elsewhere"]);
        assert!(
            matches!(&got[0], Reply::Error(e) if e.starts_with("MOVED")),
            "{got:?}"
        );
        for end in ["EXEC", "DISCARD"] {
            steps(&mut m, true, &["WATCH {a}1", "MULTI", "UNWATCH", end]);
            assert!(m.watched.is_empty(), "{end}");
        }
    }
}
