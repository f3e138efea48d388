//! Commands: one table, one parser entry point, and the three ways a command runs.
//!
//! [`parse`] does what Redis's processCommand does before calling a command: table lookup
//! (case-insensitive, containers resolve their subcommand), the unknown-command and arity
//! errors, then the command's own strict parser. Parsers turn relative expiry times into
//! absolute ones, so a [`WriteCmd`] in the Raft log is a deterministic effect: its `apply`
//! depends only on the keyspace and the `now_ms` stamped into the entry.

pub mod args;
pub mod bitmap;
pub mod hyperloglog;
pub mod keyspace;
pub mod server;
pub mod string;
pub mod transaction;
pub use redraft_proxy::wire::table;

use std::collections::HashMap;
use std::sync::LazyLock;

pub mod session;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::db::{Data, DbRead, DbWrite, Value};
use args::ParseResult;
use redraft_proxy::wire::Reply;
use table::{key_indices, CommandSpec};
pub use table::{lookup, lookup_sub, resolve, unknown_command};

/// A parsed command and how it must run.
#[derive(Debug)]
pub enum Command {
    /// Answered at once, without the keyspace (PING, ECHO, COMMAND, errors, ...).
    Reply(Reply),
    /// Runs against local state on the leader after a linearizable read barrier.
    Read(ReadCmd),
    /// Goes through the Raft log and is applied on every replica.
    Write(WriteCmd),
    /// Needs the connection or the node (HELLO, QUIT, CLIENT, CONFIG, INFO, ROLE, WAIT); the argv
    /// has passed the table's arity check.
    Session(Vec<Bytes>),
}

/// A command parser: gets the whole argv (name included), already arity-checked.
pub type ParseFn = fn(&[Bytes], u64) -> ParseResult<Command>;

/// Full name → parser. Every table entry has one and every one is in the table (tested).
pub const PARSERS: &[(&str, ParseFn)] = &[
    // string
    ("get", string::get::parse),
    ("set", string::set::parse_set),
    ("setnx", string::set::parse_setnx),
    ("setex", string::set::parse_setex),
    ("psetex", string::set::parse_psetex),
    ("getset", string::set::parse_getset),
    ("getdel", string::getdel::parse),
    ("getex", string::getex::parse),
    ("mget", string::mget::parse),
    ("mset", string::mset::parse_mset),
    ("msetnx", string::mset::parse_msetnx),
    ("append", string::append::parse),
    ("strlen", string::strlen::parse),
    ("getrange", string::getrange::parse),
    // Redis's deprecated name for GETRANGE.
    ("substr", string::getrange::parse),
    ("lcs", string::lcs::parse),
    ("setrange", string::setrange::parse),
    ("incr", string::incr::parse_incr),
    ("decr", string::incr::parse_decr),
    ("incrby", string::incr::parse_incrby),
    ("decrby", string::incr::parse_decrby),
    ("incrbyfloat", string::incrbyfloat::parse),
    // bitmap
    ("getbit", bitmap::getbit::parse),
    ("setbit", bitmap::setbit::parse),
    ("bitcount", bitmap::bitcount::parse),
    ("bitpos", bitmap::bitpos::parse),
    ("bitop", bitmap::bitop::parse),
    ("bitfield", bitmap::bitfield::parse),
    ("bitfield_ro", bitmap::bitfield::parse_ro),
    // hyperloglog
    ("pfadd", hyperloglog::pfadd::parse),
    ("pfcount", hyperloglog::pfcount::parse),
    ("pfmerge", hyperloglog::pfmerge::parse),
    ("pfdebug", hyperloglog::pfdebug::parse),
    // keyspace
    ("del", keyspace::del::parse),
    ("unlink", keyspace::del::parse),
    ("exists", keyspace::exists::parse),
    ("touch", keyspace::exists::parse),
    ("type", keyspace::type_::parse),
    ("expire", keyspace::expire::parse),
    ("pexpire", keyspace::expire::parse),
    ("expireat", keyspace::expire::parse),
    ("pexpireat", keyspace::expire::parse),
    ("ttl", keyspace::ttl::parse),
    ("pttl", keyspace::ttl::parse),
    ("expiretime", keyspace::ttl::parse),
    ("pexpiretime", keyspace::ttl::parse),
    ("persist", keyspace::persist::parse),
    ("keys", keyspace::keys::parse),
    ("scan", keyspace::scan::parse),
    ("randomkey", keyspace::randomkey::parse),
    ("rename", keyspace::rename::parse_rename),
    ("renamenx", keyspace::rename::parse_renamenx),
    ("copy", keyspace::copy::parse),
    ("dump", keyspace::dump::parse),
    ("restore", keyspace::restore::parse),
    ("restore-asking", keyspace::restore::parse),
    // Talks to another server: run by the connection (`keyspace::migrate`).
    ("migrate", session),
    ("move", keyspace::move_::parse),
    ("swapdb", keyspace::swapdb::parse),
    ("dbsize", keyspace::dbsize::parse),
    ("memory", keyspace::memory::parse_help),
    ("memory|usage", keyspace::memory::parse_usage),
    ("memory|help", keyspace::memory::parse_help),
    ("memory|doctor", keyspace::memory::parse_doctor),
    ("memory|malloc-stats", keyspace::memory::parse_malloc_stats),
    ("memory|purge", keyspace::memory::parse_purge),
    ("object", keyspace::object::parse_help),
    ("object|encoding", keyspace::object::parse_encoding),
    ("object|refcount", keyspace::object::parse_refcount),
    ("object|idletime", keyspace::object::parse_idletime),
    ("object|freq", keyspace::object::parse_freq),
    ("object|help", keyspace::object::parse_help),
    ("flushdb", keyspace::flush::parse),
    ("flushall", keyspace::flush::parse),
    // server and connection
    ("ping", server::ping::parse),
    ("echo", server::echo::parse),
    ("select", server::select::parse),
    ("auth", server::auth::parse),
    ("time", server::time::parse),
    ("command", server::command::parse),
    ("command|count", server::command::parse),
    ("command|docs", server::command::parse),
    ("command|info", server::command::parse),
    ("command|list", server::command::parse),
    ("command|getkeys", server::command::parse),
    ("command|getkeysandflags", server::command::parse),
    ("command|help", server::command::parse),
    ("asking", server::ping::parse_ok),
    ("readonly", server::ping::parse_ok),
    ("readwrite", server::ping::parse_ok),
    // handled by the connection layer
    ("hello", session),
    ("quit", session),
    ("shutdown", session),
    ("monitor", session),
    ("reset", session),
    ("info", session),
    ("role", session),
    ("save", session),
    ("bgsave", session),
    ("lastsave", session),
    ("wait", session),
    ("client", session),
    ("client|id", session),
    ("client|setname", session),
    ("client|getname", session),
    ("client|setinfo", session),
    ("client|info", session),
    ("client|list", session),
    ("client|kill", session),
    ("client|no-evict", session),
    ("client|reply", session),
    ("client|pause", session),
    ("client|unpause", session),
    ("client|help", session),
    ("config", session),
    ("config|get", session),
    ("config|set", session),
    ("config|resetstat", session),
    ("config|rewrite", session),
    ("replicaof", session),
    ("slaveof", session),
    ("config|help", session),
    ("acl", session),
    ("acl|cat", session),
    ("acl|deluser", session),
    ("acl|dryrun", session),
    ("acl|genpass", session),
    ("acl|getuser", session),
    ("acl|list", session),
    ("acl|load", session),
    ("acl|log", session),
    ("acl|save", session),
    ("acl|setuser", session),
    ("acl|users", session),
    ("acl|whoami", session),
    ("acl|help", session),
    ("slowlog", session),
    ("slowlog|len", session),
    ("slowlog|help", session),
    ("slowlog|get", session),
    ("slowlog|reset", session),
    ("latency", session),
    ("latency|help", session),
    ("latency|doctor", session),
    ("latency|history", session),
    ("latency|histogram", session),
    ("latency|graph", session),
    ("latency|latest", session),
    ("latency|reset", session),
    ("cluster", session),
    ("cluster|join", session),
    ("cluster|leave", session),
    ("cluster|move", session),
    ("cluster|query", session),
    ("cluster|rebalance", session),
    ("cluster|help", session),
    ("cluster|slots", session),
    ("cluster|shards", session),
    ("cluster|nodes", session),
    ("cluster|info", session),
    ("cluster|myid", session),
    ("cluster|myshardid", session),
    ("cluster|replicas", session),
    ("cluster|slaves", session),
    ("cluster|count-failure-reports", session),
    ("cluster|keyslot", session),
    ("cluster|countkeysinslot", session),
    ("cluster|getkeysinslot", session),
    ("cluster|failover", session),
    ("cluster|addslots", session),
    ("cluster|addslotsrange", session),
    ("cluster|delslots", session),
    ("cluster|delslotsrange", session),
    ("cluster|setslot", session),
    ("cluster|meet", session),
    ("cluster|forget", session),
    ("cluster|replicate", session),
    ("cluster|reset", session),
    ("cluster|flushslots", session),
    ("cluster|saveconfig", session),
    ("cluster|bumpepoch", session),
    ("cluster|set-config-epoch", session),
    // MULTI and the rest: the connection's transaction state (`transaction::step`).
    ("multi", session),
    ("exec", session),
    ("discard", session),
    ("watch", session),
    // Outside MULTI the connection answers it; queued, it has nothing left to do.
    ("unwatch", server::ping::parse_ok),
    ("txnwatch", transaction::parse_txnwatch),
    ("once", parse_once),
    ("txn", transaction::parse_txn),
];

/// `ONCE <client-id> <seq>[:<acked>[:<after>]] <command> [arg ...]`: a data command
/// stamped for exactly-once retries. `acked` (below `seq`) says every write of this client
/// up to it has been answered and will never be sent again, so the group may forget their
/// replies (the proxy always sends it; without it replies are kept up to a window).
/// `after` (below `seq`, 0 for none) is an earlier write of the client to the same slot
/// that must apply first: a write refused and retried must not be overtaken by one sent
/// behind it, nor a read see the state from before it. A read ignores `seq` and `acked`
/// (a repeated read does no harm). A write keeps its place even when it fails to parse or
/// only reads (GETEX without options): it goes through the log all the same, so that the
/// requests that name it as `after` can go on.
fn parse_once(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    let non_negative = |b: &[u8]| {
        u64::try_from(args::parse_i64(b)?)
            .map_err(|_| Reply::err("ERR value is out of range, must be positive"))
    };
    let client = non_negative(&argv[1])?;
    let mut stamp = argv[2].splitn(3, |&b| b == b':');
    let seq = non_negative(stamp.next().unwrap_or_default())?;
    let acked = stamp.next().map_or(Ok(0), non_negative)?;
    let after = stamp.next().map_or(Ok(0), non_negative)?;
    if argv[3].eq_ignore_ascii_case(b"once") {
        return Err(Reply::err("ERR ONCE cannot wrap ONCE"));
    }
    let inner = match parse(&argv[3..], now_ms) {
        // A stamped write refused before it could run still takes its place in the
        // client's order: recorded through the log like any write, so that the writes
        // and reads that name it as `after` go on behind it (unrecorded, they waited for
        // it in vain, and their retries lost their order).
        Command::Reply(r) if r.is_error() && seq > 0 => Command::Write(WriteCmd::Refused {
            slot: command_slot(&argv[3..]).ok().flatten(),
            reply: r,
        }),
        // GETEX without options reads; stamped, it goes through the log for the same
        // reason.
        Command::Read(ReadCmd::Get(g)) if seq > 0 => {
            Command::Write(WriteCmd::GetEx(string::getex::GetEx {
                key: g.key,
                op: string::getex::GetExOp::Keep,
            }))
        }
        other => other,
    };
    match inner {
        Command::Write(_) if acked >= seq && acked > 0 => Err(Reply::err(
            "ERR ONCE acknowledged sequence number must be below the sequence number",
        )),
        Command::Write(_) if after >= seq && after > 0 => Err(Reply::err(
            "ERR ONCE preceding sequence number must be below the sequence number",
        )),
        Command::Write(w) => Ok(Command::Write(WriteCmd::Once {
            client,
            seq,
            acked,
            after,
            cmd: Box::new(w),
        })),
        Command::Read(r) if after > 0 => Ok(Command::Read(ReadCmd::After {
            client,
            after,
            read: Box::new(r),
        })),
        Command::Read(r) => Ok(Command::Read(r)),
        Command::Reply(r) if r.is_error() => Err(r),
        // The proxy stamps every keyed command that does not write this way.
        other if seq == 0 => Ok(other),
        _ => Err(Reply::err("ERR ONCE only wraps data commands")),
    }
}

fn session(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Session(argv.to_vec()))
}

/// Full name → parser.
static PARSER_BY_NAME: LazyLock<HashMap<&'static str, ParseFn>> =
    LazyLock::new(|| PARSERS.iter().copied().collect());

/// Longest key accepted (Redis allows 512 MB). Set when keys were fjall keys (at most
/// 65,535 bytes); kept so that a key fits the storage-key form that snapshot files and
/// migration chunks carry with room to spare, and because no client needs more.
pub const MAX_KEY_LEN: usize = 65_000;

/// Whether any of the command's key arguments (per the table) is longer than MAX_KEY_LEN.
fn has_long_key(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    key_indices(spec, argv.len()).any(|i| argv[i].len() > MAX_KEY_LEN)
}

/// The one slot every key of the command hashes to: None for keyless commands (and for
/// requests that will fail to parse anyway), `CROSSSLOT` when keys differ, as Redis
/// Cluster requires of a node.
pub fn command_slot(argv: &[Bytes]) -> Result<Option<u16>, Reply> {
    let Ok(spec) = resolve(argv) else {
        return Ok(None);
    };
    if spec.name == "once" {
        return command_slot(&argv[3..]);
    }
    if spec.name == "txn" {
        return transaction::txn_slot(argv);
    }
    let mut slot = None;
    // MIGRATE's keys are where its options say; the rest by the table.
    let migrate = (spec.name == "migrate").then(|| table::migrate_keys(argv).unwrap_or_default());
    let by_table = migrate.is_none().then(|| key_indices(spec, argv.len()));
    for i in migrate
        .into_iter()
        .flatten()
        .chain(by_table.into_iter().flatten())
    {
        let s = redraft_proxy::wire::key_slot(&argv[i]);
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => {
                return Err(Reply::err(
                    "CROSSSLOT Keys in request don't hash to the same slot",
                ))
            }
            _ => {}
        }
    }
    Ok(slot)
}

/// Table lookup, unknown-command and arity errors, then the command's own parser.
/// `now_ms` turns relative expiry times into absolute ones.
pub fn parse(argv: &[Bytes], now_ms: u64) -> Command {
    match resolve(argv) {
        Ok(spec) if has_long_key(spec, argv) => Command::Reply(Reply::err(format!(
            "ERR key is too long (redraft keys are at most {MAX_KEY_LEN} bytes)"
        ))),
        Ok(spec) => match PARSER_BY_NAME.get(spec.name) {
            Some(p) => p(argv, now_ms).unwrap_or_else(Command::Reply),
            None => Command::Reply(unknown_command(argv)),
        },
        Err(e) => Command::Reply(e),
    }
}

/// Commands answered from the leader's local state after a read barrier.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadCmd {
    Get(string::get::Get),
    MGet(string::mget::MGet),
    Strlen(string::strlen::Strlen),
    GetRange(string::getrange::GetRange),
    Lcs(string::lcs::Lcs),
    Exists(keyspace::exists::Exists),
    Type(keyspace::type_::Type),
    Ttl(keyspace::ttl::Ttl),
    Keys(keyspace::keys::Keys),
    Scan(keyspace::scan::Scan),
    RandomKey(keyspace::randomkey::RandomKey),
    DbSize(keyspace::dbsize::DbSize),
    MemoryUsage(keyspace::memory::MemoryUsage),
    Object(keyspace::object::Object),
    Dump(keyspace::dump::Dump),
    TxnWatch(transaction::TxnWatch),
    GetBit(bitmap::getbit::GetBit),
    BitCount(bitmap::bitcount::BitCount),
    BitPos(bitmap::bitpos::BitPos),
    BitFieldRo(bitmap::bitfield::BitField),
    PfCount(hyperloglog::pfcount::PfCount),
    /// A read that must see the client's write `after` (`ONCE client 0:0:after read`):
    /// the connection checks that before it runs `read`.
    After {
        client: u64,
        after: u64,
        read: Box<ReadCmd>,
    },
}

impl ReadCmd {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match self {
            ReadCmd::After { read, .. } => read.execute(db, now_ms),
            ReadCmd::Get(c) => c.execute(db, now_ms),
            ReadCmd::MGet(c) => c.execute(db, now_ms),
            ReadCmd::Strlen(c) => c.execute(db, now_ms),
            ReadCmd::GetRange(c) => c.execute(db, now_ms),
            ReadCmd::Lcs(c) => c.execute(db, now_ms),
            ReadCmd::Exists(c) => c.execute(db, now_ms),
            ReadCmd::Type(c) => c.execute(db, now_ms),
            ReadCmd::Ttl(c) => c.execute(db, now_ms),
            ReadCmd::Keys(c) => c.execute(db, now_ms),
            ReadCmd::Scan(c) => c.execute(db, now_ms),
            ReadCmd::RandomKey(c) => c.execute(db, now_ms),
            ReadCmd::DbSize(c) => c.execute(db, now_ms),
            ReadCmd::MemoryUsage(c) => c.execute(db, now_ms),
            ReadCmd::Object(c) => c.execute(db, now_ms),
            ReadCmd::Dump(c) => c.execute(db, now_ms),
            ReadCmd::TxnWatch(c) => c.execute(db, now_ms),
            ReadCmd::GetBit(c) => c.execute(db, now_ms),
            ReadCmd::BitCount(c) => c.execute(db, now_ms),
            ReadCmd::BitPos(c) => c.execute(db, now_ms),
            ReadCmd::BitFieldRo(c) => c.execute(db, now_ms),
            ReadCmd::PfCount(c) => c.execute(db, now_ms),
        }
    }

    /// The first key, for slot routing (None for keyless commands).
    pub fn first_key(&self) -> Option<&[u8]> {
        match self {
            ReadCmd::Get(c) => Some(&c.key),
            ReadCmd::MGet(c) => c.keys.first().map(|k| &k[..]),
            ReadCmd::Strlen(c) => Some(&c.key),
            ReadCmd::GetRange(c) => Some(&c.key),
            ReadCmd::Lcs(c) => Some(c.first_key()),
            ReadCmd::Exists(c) => c.keys.first().map(|k| &k[..]),
            ReadCmd::Type(c) => Some(&c.key),
            ReadCmd::Ttl(c) => Some(&c.key),
            ReadCmd::MemoryUsage(c) => Some(&c.key),
            ReadCmd::Object(c) => Some(&c.key),
            ReadCmd::Dump(c) => Some(&c.key),
            ReadCmd::TxnWatch(c) => c.keys.first().map(|k| &k[..]),
            ReadCmd::GetBit(c) => Some(&c.key),
            ReadCmd::BitCount(c) => Some(&c.key),
            ReadCmd::BitPos(c) => Some(&c.key),
            ReadCmd::BitFieldRo(c) => Some(&c.key),
            ReadCmd::PfCount(c) => c.keys.first().map(|k| &k[..]),
            ReadCmd::Keys(_) | ReadCmd::Scan(_) | ReadCmd::RandomKey(_) | ReadCmd::DbSize(_) => {
                None
            }
            ReadCmd::After { read, .. } => read.first_key(),
        }
    }
}

/// Commands replicated through the Raft log. Serde: this is the log payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteCmd {
    Set(string::set::Set),
    GetDel(string::getdel::GetDel),
    GetEx(string::getex::GetEx),
    MSet(string::mset::MSet),
    Append(string::append::Append),
    SetRange(string::setrange::SetRange),
    IncrBy(string::incr::IncrBy),
    IncrByFloat(string::incrbyfloat::IncrByFloat),
    Del(keyspace::del::Del),
    Expire(keyspace::expire::Expire),
    Persist(keyspace::persist::Persist),
    Rename(keyspace::rename::Rename),
    Copy(keyspace::copy::Copy),
    Flush(keyspace::flush::Flush),
    /// Internal, proposed by the leader's expiry task: delete each key that is expired at
    /// the entry's time. Replies with the number deleted.
    DeleteExpired(Vec<Bytes>),
    /// Internal: cluster operations (controller, slot migration); see `shard::apply`.
    Cluster(crate::shard::request::ClusterOp),
    /// A write stamped for exactly-once retries (`ONCE client seq[:acked[:after]] command...`): a
    /// repeat of (client, seq) gets the reply of the first without running again.
    Once {
        client: u64,
        seq: u64,
        /// Every seq of the client up to this one is answered and never sent again.
        acked: u64,
        /// The client's write that must apply first (0: none).
        after: u64,
        cmd: Box<WriteCmd>,
    },
    /// Internal: forget exactly-once entries idle for long (their storage keys).
    ForgetDedup(Vec<Bytes>),
    /// A stamped write that failed to parse (`ONCE … SET k v BADOPTION`): it changes
    /// nothing and answers its error, but is recorded in the client's order (see
    /// `parse_once`). `slot`: its keys' slot, if it names any.
    Refused {
        slot: Option<u16>,
        reply: Reply,
    },
    // New variants go last: the variant's index is its tag in logs already written.
    Restore(keyspace::restore::Restore),
    /// MULTI … EXEC (or the proxy's TXN): its commands applied together.
    Exec(transaction::Exec),
    SetBit(bitmap::setbit::SetBit),
    BitOp(bitmap::bitop::BitOp),
    BitField(bitmap::bitfield::BitField),
    PfAdd(hyperloglog::pfadd::PfAdd),
    PfMerge(hyperloglog::pfmerge::PfMerge),
    PfDebug(hyperloglog::pfdebug::PfDebug),
}

impl WriteCmd {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        match self {
            WriteCmd::Set(c) => c.apply(db, now_ms),
            WriteCmd::GetDel(c) => c.apply(db, now_ms),
            WriteCmd::GetEx(c) => c.apply(db, now_ms),
            WriteCmd::MSet(c) => c.apply(db, now_ms),
            WriteCmd::Append(c) => c.apply(db, now_ms),
            WriteCmd::SetRange(c) => c.apply(db, now_ms),
            WriteCmd::IncrBy(c) => c.apply(db, now_ms),
            WriteCmd::IncrByFloat(c) => c.apply(db, now_ms),
            WriteCmd::Del(c) => c.apply(db, now_ms),
            WriteCmd::Expire(c) => c.apply(db, now_ms),
            WriteCmd::Persist(c) => c.apply(db, now_ms),
            WriteCmd::Rename(c) => c.apply(db, now_ms),
            WriteCmd::Copy(c) => c.apply(db, now_ms),
            WriteCmd::Restore(c) => c.apply(db, now_ms),
            WriteCmd::Exec(c) => c.apply(db, now_ms),
            WriteCmd::SetBit(c) => c.apply(db, now_ms),
            WriteCmd::BitOp(c) => c.apply(db, now_ms),
            WriteCmd::BitField(c) => c.apply(db, now_ms),
            WriteCmd::PfAdd(c) => c.apply(db, now_ms),
            WriteCmd::PfMerge(c) => c.apply(db, now_ms),
            WriteCmd::PfDebug(c) => c.apply(db, now_ms),
            WriteCmd::Flush(c) => c.apply(db, now_ms),
            WriteCmd::DeleteExpired(keys) => {
                let mut n = 0;
                for k in keys {
                    if db.get_raw(k).is_some_and(|v| v.is_expired(now_ms)) && db.delete(k) {
                        n += 1;
                    }
                }
                Reply::Int(n)
            }
            // Need the group's cluster state: applied by `shard::apply`, never here.
            WriteCmd::Cluster(_) | WriteCmd::ForgetDedup(_) => {
                Reply::err("ERR cluster operation outside a shard group")
            }
            WriteCmd::Once { cmd, .. } => cmd.apply(db, now_ms),
            WriteCmd::Refused { reply, .. } => reply.clone(),
        }
    }

    /// The slot the command writes to, for its routing and its exactly-once record (None
    /// for keyless commands).
    pub fn slot(&self) -> Option<u16> {
        match self {
            WriteCmd::Once { cmd, .. } => cmd.slot(),
            WriteCmd::Refused { slot, .. } => *slot,
            WriteCmd::Exec(c) => c.slot,
            _ => self.first_key().map(redraft_proxy::wire::key_slot),
        }
    }

    /// The first key, for slot routing (None for keyless commands).
    pub fn first_key(&self) -> Option<&[u8]> {
        match self {
            WriteCmd::Set(c) => Some(&c.key),
            WriteCmd::GetDel(c) => Some(&c.key),
            WriteCmd::GetEx(c) => Some(&c.key),
            WriteCmd::MSet(c) => c.pairs.first().map(|(k, _)| &k[..]),
            WriteCmd::Append(c) => Some(&c.key),
            WriteCmd::SetRange(c) => Some(&c.key),
            WriteCmd::IncrBy(c) => Some(&c.key),
            WriteCmd::IncrByFloat(c) => Some(&c.key),
            WriteCmd::Del(c) => c.keys.first().map(|k| &k[..]),
            WriteCmd::Expire(c) => Some(&c.key),
            WriteCmd::Persist(c) => Some(&c.key),
            WriteCmd::Rename(c) => Some(&c.src),
            WriteCmd::Copy(c) => Some(&c.src),
            WriteCmd::Restore(c) => Some(&c.key),
            WriteCmd::SetBit(c) => Some(&c.key),
            WriteCmd::BitOp(c) => Some(&c.dest),
            WriteCmd::BitField(c) => Some(&c.key),
            WriteCmd::PfAdd(c) => Some(&c.key),
            WriteCmd::PfMerge(c) => Some(&c.dest),
            WriteCmd::PfDebug(c) => Some(&c.key),
            WriteCmd::Flush(_) => None,
            WriteCmd::DeleteExpired(keys) => keys.first().map(|k| &k[..]),
            WriteCmd::Once { cmd, .. } => cmd.first_key(),
            WriteCmd::Cluster(_)
            | WriteCmd::ForgetDedup(_)
            | WriteCmd::Refused { .. }
            | WriteCmd::Exec(_) => None,
        }
    }
}

/// proto-max-bulk-len: the largest string APPEND and SETRANGE may build.
pub const MAX_STRING: usize = 512 * 1024 * 1024;

/// The live string at `key`: None when missing or expired, WRONGTYPE for other types.
pub(crate) fn get_string(
    db: &dyn DbRead,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<(Bytes, Option<u64>)>, Reply> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(Value { data, expire_at }) => match data {
            Data::Str(b) => Ok(Some((b, expire_at))),
            #[allow(unreachable_patterns)]
            _ => Err(Reply::wrong_type()),
        },
    }
}

/// A string value with an optional absolute expiry.
pub(crate) fn str_value(b: Bytes, expire_at: Option<u64>) -> Value {
    Value {
        data: Data::Str(b),
        expire_at,
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
