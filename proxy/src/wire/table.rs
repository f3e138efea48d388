//! The command table: Redis's commands/*.json as Rust data.
//!
//! It drives the arity check, `unknown command` / `unknown subcommand`, COMMAND, COMMAND INFO,
//! DOCS, LIST and COUNT, and (through the key positions) slot routing, at the nodes and at
//! the proxy alike. Parsers live in the node's command files; `redraft::cmd::PARSERS` maps
//! each full name here to one, and a test checks that the two agree both ways.

use rustc_hash::FxHashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use super::Reply;

/// Where a command's keys are, in COMMAND INFO's key-spec shape (begin_search by index,
/// find_keys by range).
#[derive(Debug)]
pub struct KeySpec {
    /// RO/RW/OW/RM plus access/update/insert/delete, as Redis prints them.
    pub flags: &'static [&'static str],
    /// Index of the first key in argv.
    pub index: i32,
    /// Last key relative to the first (-1 = last argument).
    pub lastkey: i32,
    pub keystep: i32,
    pub limit: i32,
    /// Redis's note on the flags, if it has one (COMMAND INFO shows it first).
    pub notes: &'static str,
    /// Begin the search at this keyword, looking from `index` (negative: from the end,
    /// backwards) instead of at `index` itself; empty for an index search.
    pub keyword: &'static str,
}

/// One command (or a container's subcommand) as COMMAND describes it.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower case; a subcommand carries its full name `container|sub`.
    pub name: &'static str,
    /// Redis's arity: N = exactly N arguments including the name, -N = at least N.
    pub arity: i32,
    /// Command flags (write, readonly, fast, ...), any order; COMMAND INFO sorts them.
    pub flags: &'static [&'static str],
    /// ACL categories beyond those the flags imply (keyspace, string, connection, ...).
    pub acl: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub key_specs: &'static [KeySpec],
    /// Lower case request/response policy tips.
    pub tips: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    pub subcommands: &'static [CommandSpec],
}

/// One argument as COMMAND DOCS describes it (the data is in `docs.rs`).
#[derive(Debug)]
pub struct DocArg {
    pub name: &'static str,
    /// Its `type`: string, integer, double, key, pattern, unix-time, pure-token, oneof, block.
    pub kind: &'static str,
    pub key_spec_index: Option<i32>,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    /// optional, multiple, multiple_token.
    pub flags: &'static [&'static str],
    /// A oneof's or a block's parts.
    pub args: &'static [DocArg],
}

/// What COMMAND DOCS adds to a command's table entry (the data is in `docs.rs`).
#[derive(Debug)]
pub struct CommandDoc {
    /// The full name (`client|kill`).
    pub name: &'static str,
    /// (version, change), oldest first.
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [DocArg],
}

/// The fields most arguments leave out.
pub const ARG: DocArg = DocArg {
    name: "",
    kind: "",
    key_spec_index: None,
    token: None,
    summary: None,
    since: None,
    deprecated_since: None,
    flags: &[],
    args: &[],
};

impl CommandSpec {
    /// COMMAND DOCS's history (version, change) and arguments; none for redraft's own
    /// commands. Looked up by name: asked only by COMMAND DOCS.
    pub fn docs(&self) -> (&'static [(&'static str, &'static str)], &'static [DocArg]) {
        super::docs::DOCS
            .iter()
            .find(|d| d.name == self.name)
            .map_or((&[], &[]), |d| (d.history, d.args))
    }

    /// Whether this name is a container (CLIENT, CONFIG, COMMAND).
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// The subcommand part of a full name (`setname` for `client|setname`).
    pub fn sub_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// ACL categories in Redis's order: explicit ones plus those the flags imply.
    pub fn categories(&self) -> Vec<&'static str> {
        CATEGORY_ORDER
            .iter()
            .copied()
            .filter(|c| {
                self.acl.contains(c)
                    || match *c {
                        "write" => self.has_flag("write"),
                        "read" => self.has_flag("readonly"),
                        "admin" => self.has_flag("admin"),
                        "dangerous" => self.has_flag("admin"),
                        "fast" => self.has_flag("fast"),
                        "slow" => !self.has_flag("fast"),
                        _ => false,
                    }
            })
            .collect()
    }

    /// Flags in Redis's emission order.
    pub fn ordered_flags(&self) -> Vec<&'static str> {
        FLAG_ORDER
            .iter()
            .copied()
            .filter(|f| self.has_flag(f))
            .collect()
    }
}

/// The order COMMAND INFO emits flags in.
#[rustfmt::skip]
pub const FLAG_ORDER: &[&str] = &[
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking",
    "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth",
    "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys", "allow_busy",
];

/// The order COMMAND INFO emits ACL categories in.
#[rustfmt::skip]
pub const CATEGORY_ORDER: &[&str] = &[
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
];

const BASE: CommandSpec = CommandSpec {
    name: "",
    arity: 0,
    flags: &[],
    acl: &[],
    first_key: 0,
    last_key: 0,
    step: 0,
    key_specs: &[],
    tips: &[],
    group: "",
    summary: "",
    since: "",
    complexity: "O(1)",
    doc_flags: &[],
    deprecated_since: None,
    replaced_by: None,
    subcommands: &[],
};

/// One key at argv[1], the common case.
#[rustfmt::skip]
const KEY1_RO: &[KeySpec] = &[KeySpec { flags: &["RO", "access"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_RO_NOACCESS: &[KeySpec] = &[KeySpec { flags: &["RO"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_RW_UPDATE: &[KeySpec] = &[KeySpec { flags: &["RW", "access", "update"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_RW_INSERT: &[KeySpec] = &[KeySpec { flags: &["RW", "insert"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_OW_UPDATE: &[KeySpec] = &[KeySpec { flags: &["OW", "update"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_OW_INSERT: &[KeySpec] = &[KeySpec { flags: &["OW", "insert"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_RW_UPDATE_NOACCESS: &[KeySpec] = &[KeySpec { flags: &["RW", "update"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEY1_RW_ACCESS_DELETE: &[KeySpec] = &[KeySpec { flags: &["RW", "access", "delete"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_RO: &[KeySpec] = &[KeySpec { flags: &["RO", "access"], index: 1, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_RO_NOACCESS: &[KeySpec] = &[KeySpec { flags: &["RO"], index: 1, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_RM: &[KeySpec] = &[KeySpec { flags: &["RM", "delete"], index: 1, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_OW_PAIRS: &[KeySpec] = &[KeySpec { flags: &["OW", "update"], index: 1, lastkey: -1, keystep: 2, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_OW_PAIRS_INSERT: &[KeySpec] = &[KeySpec { flags: &["OW", "insert"], index: 1, lastkey: -1, keystep: 2, limit: 0, notes: "", keyword: "" }];
#[rustfmt::skip]
const KEYS_MIGRATE: &[KeySpec] = &[
    KeySpec { flags: &["RW", "access", "delete"], index: 3, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
    KeySpec { flags: &["RW", "access", "delete", "incomplete"], index: -2, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "KEYS" },
];
#[rustfmt::skip]
const KEYS_MOVE: &[KeySpec] = &[
    KeySpec { flags: &["RW", "access", "delete"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
    KeySpec { flags: &["OW", "update"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
];
#[rustfmt::skip]
const KEYS_MOVE_NX: &[KeySpec] = &[
    KeySpec { flags: &["RW", "access", "delete"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
    KeySpec { flags: &["OW", "insert"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
];
#[rustfmt::skip]
const KEYS_COPY: &[KeySpec] = &[
    KeySpec { flags: &["RO", "access"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
    KeySpec { flags: &["OW", "update"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
];

/// A read-only string command on one key.
#[rustfmt::skip]
const STR_RO: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    acl: &["string"],
    first_key: 1,
    last_key: 1,
    step: 1,
    key_specs: KEY1_RO,
    group: "string",
    ..BASE
};

/// A string command that writes one key.
#[rustfmt::skip]
const STR_RW: CommandSpec = CommandSpec {
    flags: &["write", "denyoom", "fast"],
    acl: &["string"],
    first_key: 1,
    last_key: 1,
    step: 1,
    key_specs: KEY1_RW_UPDATE,
    group: "string",
    ..BASE
};

/// A read-only bitmap command on one key.
#[rustfmt::skip]
const BITMAP_RO: CommandSpec = CommandSpec {
    acl: &["bitmap"],
    group: "bitmap",
    ..STR_RO
};

/// A HyperLogLog command.
#[rustfmt::skip]
const HLL: CommandSpec = CommandSpec {
    acl: &["hyperloglog"],
    first_key: 1,
    last_key: 1,
    step: 1,
    group: "hyperloglog",
    ..BASE
};

/// A keyspace command on one key.
#[rustfmt::skip]
const KS1: CommandSpec = CommandSpec {
    acl: &["keyspace"],
    first_key: 1,
    last_key: 1,
    step: 1,
    group: "generic",
    ..BASE
};

/// A connection command without keys.
#[rustfmt::skip]
const CONN: CommandSpec = CommandSpec { acl: &["connection"], group: "connection", ..BASE };
#[rustfmt::skip]
const TXN: CommandSpec = CommandSpec { acl: &["transaction"], group: "transactions", ..BASE };

#[rustfmt::skip]
const EXPIRE_RW: CommandSpec = CommandSpec { flags: &["write", "fast"], key_specs: KEY1_RW_UPDATE_NOACCESS, ..KS1 };
#[rustfmt::skip]
const TTL_RO: CommandSpec = CommandSpec {
    flags: &["readonly", "fast"],
    key_specs: KEY1_RO,
    tips: &["nondeterministic_output"],
    ..KS1
};

#[rustfmt::skip]
const CLIENT_SUB: CommandSpec = CommandSpec {
    flags: &["noscript", "loading", "stale"],
    acl: &["connection"],
    group: "connection",
    ..BASE
};
#[rustfmt::skip]
const CONFIG_SUB: CommandSpec = CommandSpec { flags: &["admin", "noscript", "loading", "stale"], group: "server", ..BASE };
#[rustfmt::skip]
const LATENCY_SUB: CommandSpec = CommandSpec { tips: &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], since: "2.8.13", complexity: "O(1)", ..CONFIG_SUB };
/// In an order redis-server gave (its own varies per process: a randomly seeded dict).
#[rustfmt::skip]
const LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "latency|help", arity: 2, flags: &["loading", "stale"], tips: &[], summary: "Show helpful text about the different subcommands.", ..LATENCY_SUB },
    CommandSpec { name: "latency|doctor", arity: 2, summary: "Return a human readable latency analysis report.", ..LATENCY_SUB },
    CommandSpec { name: "latency|history", arity: 3, summary: "Return timestamp-latency samples for the event.", ..LATENCY_SUB },
    CommandSpec { name: "latency|histogram", arity: -2, summary: "Return the cumulative distribution of latencies of a subset of commands or all.", since: "7.0.0", complexity: "O(N) where N is the number of commands with latency information being retrieved.", ..LATENCY_SUB },
    CommandSpec { name: "latency|graph", arity: 3, summary: "Return a latency graph for the event.", ..LATENCY_SUB },
    CommandSpec { name: "latency|latest", arity: 2, summary: "Return the latest latency samples for all events.", ..LATENCY_SUB },
    CommandSpec { name: "latency|reset", arity: -2, tips: &["request_policy:all_nodes", "response_policy:all_succeeded"], summary: "Reset latency data for one or more events.", ..LATENCY_SUB },
];
#[rustfmt::skip]
const SLOWLOG_SUB: CommandSpec = CommandSpec { flags: &["admin", "loading", "stale"], group: "server", since: "2.2.12", ..BASE };
/// In an order redis-server gave (its own varies per process: a randomly seeded dict).
#[rustfmt::skip]
const SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "slowlog|len", arity: 2, tips: &["request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"], summary: "Get the slow log's length", ..SLOWLOG_SUB },
    CommandSpec { name: "slowlog|help", arity: 2, flags: &["loading", "stale"], summary: "Show helpful text about the different subcommands", since: "6.2.0", ..SLOWLOG_SUB },
    CommandSpec { name: "slowlog|get", arity: -2, tips: &["request_policy:all_nodes", "nondeterministic_output"], summary: "Get the slow log's entries", complexity: "O(N) where N is the number of entries returned", ..SLOWLOG_SUB },
    CommandSpec { name: "slowlog|reset", arity: 2, tips: &["request_policy:all_nodes", "response_policy:all_succeeded"], summary: "Clear all entries from the slow log", complexity: "O(N) where N is the number of entries in the slowlog", ..SLOWLOG_SUB },
];
#[rustfmt::skip]
const ACL_SUB: CommandSpec = CommandSpec { flags: &["admin", "noscript", "loading", "stale"], group: "server", since: "6.0.0", ..BASE };
#[rustfmt::skip]
const ACL_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "acl|deluser", arity: -3, summary: "Remove the specified ACL users and the associated rules", complexity: "O(1) amortized time considering the typical user.", ..ACL_SUB },
    CommandSpec { name: "acl|genpass", arity: -2, flags: &["noscript", "loading", "stale"], summary: "Generate a pseudorandom secure password to use for ACL users", ..ACL_SUB },
    CommandSpec { name: "acl|list", arity: 2, summary: "List the current ACL rules in ACL config file format", complexity: "O(N). Where N is the number of configured users.", ..ACL_SUB },
    CommandSpec { name: "acl|log", arity: -2, summary: "List latest events denied because of ACLs in place", complexity: "O(N) with N being the number of entries shown.", ..ACL_SUB },
    CommandSpec { name: "acl|setuser", arity: -3, summary: "Modify or create the rules for a specific ACL user", complexity: "O(N). Where N is the number of rules provided.", ..ACL_SUB },
    CommandSpec { name: "acl|save", arity: 2, summary: "Save the current ACL rules in the configured ACL file", complexity: "O(N). Where N is the number of configured users.", ..ACL_SUB },
    CommandSpec { name: "acl|dryrun", arity: -4, summary: "Returns whether the user can execute the given command without executing the command.", since: "7.0.0", complexity: "O(1).", ..ACL_SUB },
    CommandSpec { name: "acl|whoami", arity: 2, flags: &["noscript", "loading", "stale"], summary: "Return the name of the user associated to the current connection", ..ACL_SUB },
    CommandSpec { name: "acl|help", arity: 2, flags: &["loading", "stale"], summary: "Show helpful text about the different subcommands", ..ACL_SUB },
    CommandSpec { name: "acl|load", arity: 2, summary: "Reload the ACLs from the configured ACL file", complexity: "O(N). Where N is the number of configured users.", ..ACL_SUB },
    CommandSpec { name: "acl|users", arity: 2, summary: "List the username of all the configured ACL rules", complexity: "O(N). Where N is the number of configured users.", ..ACL_SUB },
    CommandSpec { name: "acl|getuser", arity: 3, summary: "Get the rules for a specific ACL user", complexity: "O(N). Where N is the number of password, command and pattern rules that the user has.", ..ACL_SUB },
    CommandSpec { name: "acl|cat", arity: -2, flags: &["noscript", "loading", "stale"], summary: "List the ACL categories or the commands inside a category", complexity: "O(1) since the categories and commands are a fixed set.", ..ACL_SUB },
];
#[rustfmt::skip]
const COMMAND_SUB: CommandSpec = CommandSpec { flags: &["loading", "stale"], acl: &["connection"], group: "server", ..BASE };

/// Every top-level command redraft knows, with containers' subcommands nested.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // ---- string ----
    CommandSpec { name: "get", arity: 2, summary: "Get the value of a key", since: "1.0.0", ..STR_RO },
    CommandSpec { name: "set", arity: -3, flags: &["write", "denyoom"], key_specs: &[KeySpec { flags: &["RW", "access", "update", "variable_flags"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "RW and ACCESS due to the optional `GET` argument", keyword: "" }], summary: "Set the string value of a key", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "setnx", arity: 3, key_specs: KEY1_OW_INSERT, summary: "Set the value of a key, only if the key does not exist", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "setex", arity: 4, flags: &["write", "denyoom"], key_specs: KEY1_OW_UPDATE, summary: "Set the value and expiration of a key", since: "2.0.0", ..STR_RW },
    CommandSpec { name: "psetex", arity: 4, flags: &["write", "denyoom"], key_specs: KEY1_OW_UPDATE, summary: "Set the value and expiration in milliseconds of a key", since: "2.6.0", ..STR_RW },
    CommandSpec { name: "getset", arity: 3, summary: "Set the string value of a key and return its old value", since: "1.0.0", doc_flags: &["deprecated"], deprecated_since: Some("6.2.0"), replaced_by: Some("`SET` with the `!GET` argument"), ..STR_RW },
    CommandSpec { name: "getdel", arity: 2, flags: &["write", "fast"], key_specs: KEY1_RW_ACCESS_DELETE, summary: "Get the value of a key and delete the key", since: "6.2.0", ..STR_RW },
    CommandSpec { name: "getex", arity: -2, flags: &["write", "fast"], key_specs: &[KeySpec { flags: &["RW", "access", "update"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "RW and UPDATE because it changes the TTL", keyword: "" }], summary: "Get the value of a key and optionally set its expiration", since: "6.2.0", ..STR_RW },
    CommandSpec { name: "mget", arity: -2, last_key: -1, key_specs: KEYS_RO, tips: &["request_policy:multi_shard"], summary: "Get the values of all the given keys", since: "1.0.0", complexity: "O(N) where N is the number of keys to retrieve.", ..STR_RO },
    CommandSpec { name: "mset", arity: -3, flags: &["write", "denyoom"], last_key: -1, step: 2, key_specs: KEYS_OW_PAIRS, tips: &["request_policy:multi_shard", "response_policy:all_succeeded"], summary: "Set multiple keys to multiple values", since: "1.0.1", complexity: "O(N) where N is the number of keys to set.", ..STR_RW },
    CommandSpec { name: "msetnx", arity: -3, flags: &["write", "denyoom"], last_key: -1, step: 2, key_specs: KEYS_OW_PAIRS_INSERT, tips: &["request_policy:multi_shard", "response_policy:agg_min"], summary: "Set multiple keys to multiple values, only if none of the keys exist", since: "1.0.1", complexity: "O(N) where N is the number of keys to set.", ..STR_RW },
    CommandSpec { name: "append", arity: 3, key_specs: KEY1_RW_INSERT, summary: "Append a value to a key", since: "2.0.0", complexity: "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", ..STR_RW },
    CommandSpec { name: "strlen", arity: 2, key_specs: KEY1_RO_NOACCESS, summary: "Get the length of the value stored in a key", since: "2.2.0", ..STR_RO },
    CommandSpec { name: "lcs", arity: -3, flags: &["readonly"], last_key: 2, key_specs: &[KeySpec { flags: &["RO", "access"], index: 1, lastkey: 1, keystep: 1, limit: 0, notes: "", keyword: "" }], summary: "Find longest common substring", since: "7.0.0", complexity: "O(N*M) where N and M are the lengths of s1 and s2, respectively", ..STR_RO },
    CommandSpec { name: "substr", arity: 4, flags: &["readonly"], summary: "Get a substring of the string stored at a key", since: "1.0.0", complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", doc_flags: &["deprecated"], deprecated_since: Some("2.0.0"), replaced_by: Some("`GETRANGE`"), ..STR_RO },
    CommandSpec { name: "getrange", arity: 4, flags: &["readonly"], summary: "Get a substring of the string stored at a key", since: "2.4.0", complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", ..STR_RO },
    CommandSpec { name: "setrange", arity: 4, flags: &["write", "denyoom"], key_specs: KEY1_RW_UPDATE_NOACCESS, summary: "Overwrite part of a string at key starting at the specified offset", since: "2.2.0", complexity: "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.", ..STR_RW },
    CommandSpec { name: "incr", arity: 2, summary: "Increment the integer value of a key by one", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "decr", arity: 2, summary: "Decrement the integer value of a key by one", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "incrby", arity: 3, summary: "Increment the integer value of a key by the given amount", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "decrby", arity: 3, summary: "Decrement the integer value of a key by the given number", since: "1.0.0", ..STR_RW },
    CommandSpec { name: "incrbyfloat", arity: 3, summary: "Increment the float value of a key by the given amount", since: "2.6.0", ..STR_RW },
    // ---- bitmap ----
    CommandSpec { name: "getbit", arity: 3, summary: "Returns the bit value at offset in the string value stored at key", since: "2.2.0", ..BITMAP_RO },
    CommandSpec { name: "setbit", arity: 4, flags: &["write", "denyoom"], key_specs: KEY1_RW_UPDATE, summary: "Sets or clears the bit at offset in the string value stored at key", since: "2.2.0", ..BITMAP_RO },
    CommandSpec { name: "bitcount", arity: -2, flags: &["readonly"], summary: "Count set bits in a string", since: "2.6.0", complexity: "O(N)", ..BITMAP_RO },
    CommandSpec { name: "bitpos", arity: -3, flags: &["readonly"], summary: "Find first bit set or clear in a string", since: "2.8.7", complexity: "O(N)", ..BITMAP_RO },
    CommandSpec { name: "bitop", arity: -4, flags: &["write", "denyoom"], first_key: 2, last_key: -1, key_specs: &[
        KeySpec { flags: &["OW", "update"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
        KeySpec { flags: &["RO", "access"], index: 3, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "" },
    ], summary: "Perform bitwise operations between strings", since: "2.6.0", complexity: "O(N)", ..BITMAP_RO },
    CommandSpec { name: "bitfield", arity: -2, flags: &["write", "denyoom"], key_specs: &[
        KeySpec { flags: &["RW", "access", "update", "variable_flags"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "This command allows both access and modification of the key", keyword: "" },
    ], summary: "Perform arbitrary bitfield integer operations on strings", since: "3.2.0", complexity: "O(1) for each subcommand specified", ..BITMAP_RO },
    CommandSpec { name: "bitfield_ro", arity: -2, summary: "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", since: "6.0.0", complexity: "O(1) for each subcommand specified", ..BITMAP_RO },
    // ---- hyperloglog ----
    CommandSpec { name: "pfadd", arity: -2, flags: &["write", "denyoom", "fast"], key_specs: KEY1_RW_INSERT, summary: "Adds the specified elements to the specified HyperLogLog.", since: "2.8.9", complexity: "O(1) to add every element.", ..HLL },
    CommandSpec { name: "pfcount", arity: -2, flags: &["readonly"], last_key: -1, key_specs: &[
        KeySpec { flags: &["RW", "access"], index: 1, lastkey: -1, keystep: 1, limit: 0, notes: "RW because it may change the internal representation of the key, and propagate to replicas", keyword: "" },
    ], summary: "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", since: "2.8.9", complexity: "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", ..HLL },
    CommandSpec { name: "pfmerge", arity: -2, flags: &["write", "denyoom"], last_key: -1, key_specs: &[
        KeySpec { flags: &["RW", "access", "insert"], index: 1, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
        KeySpec { flags: &["RO", "access"], index: 2, lastkey: -1, keystep: 1, limit: 0, notes: "", keyword: "" },
    ], summary: "Merge N different HyperLogLogs into a single one.", since: "2.8.9", complexity: "O(N) to merge N HyperLogLogs, but with high constant times.", ..HLL },
    CommandSpec { name: "pfdebug", arity: 3, flags: &["write", "denyoom", "admin"], first_key: 2, last_key: 2, key_specs: &[
        KeySpec { flags: &["RW", "access"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" },
    ], summary: "Internal commands for debugging HyperLogLog values", since: "2.8.9", complexity: "N/A", doc_flags: &["syscmd"], ..HLL },
    // ---- generic (keyspace) ----
    CommandSpec { name: "del", arity: -2, flags: &["write"], last_key: -1, key_specs: KEYS_RM, tips: &["request_policy:multi_shard", "response_policy:agg_sum"], summary: "Delete a key", since: "1.0.0", complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).", ..KS1 },
    CommandSpec { name: "unlink", arity: -2, flags: &["write", "fast"], last_key: -1, key_specs: KEYS_RM, tips: &["request_policy:multi_shard", "response_policy:agg_sum"], summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", since: "4.0.0", complexity: "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.", ..KS1 },
    CommandSpec { name: "exists", arity: -2, flags: &["readonly", "fast"], last_key: -1, key_specs: KEYS_RO_NOACCESS, tips: &["request_policy:multi_shard", "response_policy:agg_sum"], summary: "Determine if a key exists", since: "1.0.0", complexity: "O(N) where N is the number of keys to check.", ..KS1 },
    CommandSpec { name: "touch", arity: -2, flags: &["readonly", "fast"], last_key: -1, key_specs: KEYS_RO_NOACCESS, tips: &["request_policy:multi_shard", "response_policy:agg_sum"], summary: "Alters the last access time of a key(s). Returns the number of existing keys specified.", since: "3.2.1", complexity: "O(N) where N is the number of keys that will be touched.", ..KS1 },
    CommandSpec { name: "type", arity: 2, flags: &["readonly", "fast"], key_specs: KEY1_RO_NOACCESS, summary: "Determine the type stored at key", since: "1.0.0", ..KS1 },
    CommandSpec { name: "expire", arity: -3, summary: "Set a key's time to live in seconds", since: "1.0.0", ..EXPIRE_RW },
    CommandSpec { name: "pexpire", arity: -3, summary: "Set a key's time to live in milliseconds", since: "2.6.0", ..EXPIRE_RW },
    CommandSpec { name: "expireat", arity: -3, summary: "Set the expiration for a key as a UNIX timestamp", since: "1.2.0", ..EXPIRE_RW },
    CommandSpec { name: "pexpireat", arity: -3, summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds", since: "2.6.0", ..EXPIRE_RW },
    CommandSpec { name: "ttl", arity: 2, summary: "Get the time to live for a key in seconds", since: "1.0.0", ..TTL_RO },
    CommandSpec { name: "pttl", arity: 2, summary: "Get the time to live for a key in milliseconds", since: "2.6.0", ..TTL_RO },
    CommandSpec { name: "expiretime", arity: 2, tips: &[], summary: "Get the expiration Unix timestamp for a key", since: "7.0.0", ..TTL_RO },
    CommandSpec { name: "pexpiretime", arity: 2, tips: &[], summary: "Get the expiration Unix timestamp for a key in milliseconds", since: "7.0.0", ..TTL_RO },
    CommandSpec { name: "persist", arity: 2, summary: "Remove the expiration from a key", since: "2.2.0", ..EXPIRE_RW },
    CommandSpec { name: "keys", arity: 2, flags: &["readonly"], acl: &["keyspace", "dangerous"], first_key: 0, last_key: 0, step: 0, tips: &["request_policy:all_shards", "nondeterministic_output_order"], summary: "Find all keys matching the given pattern", since: "1.0.0", complexity: "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.", ..KS1 },
    CommandSpec { name: "scan", arity: -2, flags: &["readonly"], first_key: 0, last_key: 0, step: 0, tips: &["nondeterministic_output", "request_policy:special"], summary: "Incrementally iterate the keys space", since: "2.8.0", complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", ..KS1 },
    CommandSpec { name: "randomkey", arity: 1, flags: &["readonly"], first_key: 0, last_key: 0, step: 0, tips: &["request_policy:all_shards", "nondeterministic_output"], summary: "Return a random key from the keyspace", since: "1.0.0", ..KS1 },
    CommandSpec { name: "rename", arity: 3, flags: &["write"], last_key: 2, key_specs: KEYS_MOVE, summary: "Rename a key", since: "1.0.0", ..KS1 },
    CommandSpec { name: "renamenx", arity: 3, flags: &["write", "fast"], last_key: 2, key_specs: KEYS_MOVE_NX, summary: "Rename a key, only if the new key does not exist", since: "1.0.0", ..KS1 },
    CommandSpec { name: "copy", arity: -3, flags: &["write", "denyoom"], last_key: 2, key_specs: KEYS_COPY, summary: "Copy a key", since: "6.2.0", complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", ..KS1 },
    CommandSpec { name: "migrate", arity: -6, flags: &["write", "movablekeys"], acl: &["keyspace", "dangerous"], first_key: 3, last_key: 3, step: 1, key_specs: KEYS_MIGRATE, tips: &["nondeterministic_output"], summary: "Atomically transfer a key from a Redis instance to another one.", since: "2.6.0", complexity: "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.", ..KS1 },
    CommandSpec { name: "dump", arity: 2, flags: &["readonly"], key_specs: KEY1_RO, tips: &["nondeterministic_output"], summary: "Return a serialized version of the value stored at the specified key.", since: "2.6.0", complexity: "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", ..KS1 },
    CommandSpec { name: "restore", arity: -4, flags: &["write", "denyoom"], acl: &["keyspace", "dangerous"], key_specs: KEY1_OW_UPDATE, summary: "Create a key using the provided serialized value, previously obtained using DUMP.", since: "2.6.0", complexity: "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", ..KS1 },
    CommandSpec { name: "restore-asking", arity: -4, flags: &["write", "denyoom", "asking"], acl: &["keyspace", "dangerous"], key_specs: KEY1_OW_UPDATE, group: "server", summary: "An internal command for migrating keys in a cluster", since: "3.0.0", complexity: "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", doc_flags: &["syscmd"], ..KS1 },
    CommandSpec { name: "move", arity: 3, flags: &["write", "fast"], key_specs: KEY1_RW_UPDATE, summary: "Move a key to another database", since: "1.0.0", ..KS1 },
    CommandSpec { name: "swapdb", arity: 3, flags: &["write", "fast"], acl: &["keyspace", "dangerous"], first_key: 0, last_key: 0, step: 0, group: "server", summary: "Swaps two Redis databases", since: "4.0.0", complexity: "O(N) where N is the count of clients watching or blocking on keys from both databases.", ..KS1 },
    CommandSpec {
        name: "object",
        arity: -2,
        group: "generic",
        summary: "A container for object introspection commands",
        since: "2.2.3",
        complexity: "Depends on subcommand.",
        subcommands: OBJECT_SUBCOMMANDS,
        ..BASE
    },
    // ---- server ----
    CommandSpec { name: "dbsize", arity: 1, flags: &["readonly", "fast"], acl: &["keyspace"], tips: &["request_policy:all_shards", "response_policy:agg_sum"], group: "server", summary: "Return the number of keys in the selected database", since: "1.0.0", ..BASE },
    CommandSpec { name: "flushdb", arity: -1, flags: &["write"], acl: &["keyspace", "dangerous"], tips: &["request_policy:all_shards", "response_policy:all_succeeded"], group: "server", summary: "Remove all keys from the current database", since: "1.0.0", complexity: "O(N) where N is the number of keys in the selected database", ..BASE },
    CommandSpec { name: "flushall", arity: -1, flags: &["write"], acl: &["keyspace", "dangerous"], tips: &["request_policy:all_shards", "response_policy:all_succeeded"], group: "server", summary: "Remove all keys from all databases", since: "1.0.0", complexity: "O(N) where N is the total number of keys in all databases", ..BASE },
    CommandSpec {
        name: "memory",
        arity: -2,
        group: "server",
        summary: "A container for memory diagnostics commands",
        since: "4.0.0",
        complexity: "Depends on subcommand.",
        subcommands: MEMORY_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec { name: "replicaof", arity: 3, flags: &["admin", "noscript", "stale", "no_async_loading"], group: "server", summary: "Make the server a replica of another instance, or promote it as master.", since: "5.0.0", ..BASE },
    CommandSpec { name: "slaveof", arity: 3, flags: &["admin", "noscript", "stale", "no_async_loading"], group: "server", summary: "Make the server a replica of another instance, or promote it as master.", since: "1.0.0", doc_flags: &["deprecated"], deprecated_since: Some("5.0.0"), replaced_by: Some("`REPLICAOF`"), ..BASE },
    CommandSpec { name: "save", arity: 1, flags: &["admin", "noscript", "no_async_loading", "no_multi"], group: "server", summary: "Synchronously save the dataset to disk", since: "1.0.0", complexity: "O(N) where N is the total number of keys in all databases", ..BASE },
    CommandSpec { name: "bgsave", arity: -1, flags: &["admin", "noscript", "no_async_loading"], group: "server", summary: "Asynchronously save the dataset to disk", since: "1.0.0", ..BASE },
    CommandSpec { name: "lastsave", arity: 1, flags: &["loading", "stale", "fast"], acl: &["admin", "dangerous"], tips: &["nondeterministic_output"], group: "server", summary: "Get the UNIX time stamp of the last successful save to disk", since: "1.0.0", ..BASE },
    CommandSpec { name: "shutdown", arity: -1, flags: &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], group: "server", summary: "Synchronously save the dataset to disk and then shut down the server", since: "1.0.0", complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", ..BASE },
    CommandSpec { name: "monitor", arity: 1, flags: &["admin", "noscript", "loading", "stale"], group: "server", summary: "Listen for all requests received by the server in real time", since: "1.0.0", complexity: "", ..BASE },
    CommandSpec { name: "time", arity: 1, flags: &["loading", "stale", "fast"], tips: &["nondeterministic_output"], group: "server", summary: "Return the current server time", since: "2.6.0", ..BASE },
    CommandSpec { name: "info", arity: -1, flags: &["loading", "stale"], acl: &["dangerous"], tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], group: "server", summary: "Get information and statistics about the server", since: "1.0.0", complexity: "O(1)", ..BASE },
    CommandSpec { name: "role", arity: 1, flags: &["noscript", "loading", "stale", "fast"], acl: &["admin", "dangerous"], group: "server", summary: "Return the role of the instance in the context of replication", since: "2.8.12", ..BASE },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        acl: &["connection"],
        tips: &["nondeterministic_output_order"],
        group: "server",
        summary: "Get array of Redis command details",
        since: "2.8.13",
        complexity: "O(N) where N is the total number of Redis commands",
        subcommands: &[
            CommandSpec { name: "command|count", arity: 2, summary: "Get total number of Redis commands", since: "2.8.13", ..COMMAND_SUB },
            CommandSpec { name: "command|docs", arity: -2, tips: &["nondeterministic_output_order"], summary: "Get array of specific Redis command documentation", since: "7.0.0", complexity: "O(N) where N is the number of commands to look up", ..COMMAND_SUB },
            CommandSpec { name: "command|info", arity: -2, tips: &["nondeterministic_output_order"], summary: "Get array of specific Redis command details, or all when no argument is given.", since: "2.8.13", complexity: "O(N) where N is the number of commands to look up", ..COMMAND_SUB },
            CommandSpec { name: "command|list", arity: -2, tips: &["nondeterministic_output_order"], summary: "Get an array of Redis command names", since: "7.0.0", complexity: "O(N) where N is the total number of Redis commands", ..COMMAND_SUB },
            CommandSpec { name: "command|getkeys", arity: -4, summary: "Extract keys given a full Redis command", since: "2.8.13", complexity: "O(N) where N is the number of arguments to the command", ..COMMAND_SUB },
            CommandSpec { name: "command|getkeysandflags", arity: -4, summary: "Extract keys and access flags given a full Redis command", since: "7.0.0", complexity: "O(N) where N is the number of arguments to the command", ..COMMAND_SUB },
            CommandSpec { name: "command|help", arity: 2, summary: "Show helpful text about the different subcommands", since: "5.0.0", ..COMMAND_SUB },
        ],
        ..BASE
    },
    CommandSpec {
        name: "config",
        arity: -2,
        group: "server",
        summary: "A container for server configuration commands",
        since: "2.0.0",
        complexity: "Depends on subcommand.",
        subcommands: &[
            CommandSpec { name: "config|get", arity: -3, summary: "Get the values of configuration parameters", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", ..CONFIG_SUB },
            CommandSpec { name: "config|set", arity: -4, tips: &["request_policy:all_nodes", "response_policy:all_succeeded"], summary: "Set configuration parameters to the given values", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", ..CONFIG_SUB },
            CommandSpec { name: "config|resetstat", arity: 2, summary: "Reset the stats returned by INFO", since: "2.0.0", ..CONFIG_SUB },
            CommandSpec { name: "config|rewrite", arity: 2, summary: "Rewrite the configuration file with the in memory configuration", since: "2.8.0", ..CONFIG_SUB },
            CommandSpec { name: "config|help", arity: 2, flags: &["loading", "stale"], summary: "Show helpful text about the different subcommands", since: "5.0.0", ..CONFIG_SUB },
        ],
        ..BASE
    },
    CommandSpec {
        name: "acl",
        arity: -2,
        group: "server",
        summary: "A container for Access List Control commands ",
        since: "6.0.0",
        complexity: "Depends on subcommand.",
        subcommands: ACL_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "slowlog",
        arity: -2,
        group: "server",
        summary: "A container for slow log commands",
        since: "2.2.12",
        complexity: "Depends on subcommand.",
        subcommands: SLOWLOG_SUBCOMMANDS,
        ..BASE
    },
    CommandSpec {
        name: "latency",
        arity: -2,
        group: "server",
        summary: "A container for latency diagnostics commands",
        since: "2.8.13",
        complexity: "Depends on subcommand.",
        subcommands: LATENCY_SUBCOMMANDS,
        ..BASE
    },
    // ---- connection ----
    CommandSpec { name: "ping", arity: -1, flags: &["fast"], tips: &["request_policy:all_shards", "response_policy:all_succeeded"], summary: "Ping the server", since: "1.0.0", ..CONN },
    CommandSpec { name: "echo", arity: 2, flags: &["loading", "stale", "fast"], summary: "Echo the given string", since: "1.0.0", ..CONN },
    CommandSpec { name: "select", arity: 2, flags: &["loading", "stale", "fast"], summary: "Change the selected database for the current connection", since: "1.0.0", ..CONN },
    CommandSpec { name: "auth", arity: -2, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], summary: "Authenticate to the server", since: "1.0.0", complexity: "O(N) where N is the number of passwords defined for the user", ..CONN },
    CommandSpec { name: "hello", arity: -1, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], summary: "Handshake with Redis", since: "6.0.0", ..CONN },
    CommandSpec { name: "quit", arity: -1, flags: &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"], summary: "Close the connection", since: "1.0.0", ..CONN },
    CommandSpec {
        name: "client",
        arity: -2,
        summary: "A container for client connection commands",
        since: "2.4.0",
        complexity: "Depends on subcommand.",
        subcommands: CLIENT_SUBCOMMANDS,
        // Its subcommands are in @connection, the container is not.
        acl: &[],
        ..CONN
    },
    // ---- transactions ----
    CommandSpec { name: "multi", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], summary: "Mark the start of a transaction block", since: "1.2.0", ..TXN },
    CommandSpec { name: "exec", arity: 1, flags: &["noscript", "loading", "stale", "skip_slowlog"], summary: "Execute all commands issued after MULTI", since: "1.2.0", complexity: "Depends on commands in the transaction", ..TXN },
    CommandSpec { name: "discard", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], summary: "Discard all commands issued after MULTI", since: "2.0.0", complexity: "O(N), when N is the number of queued commands", ..TXN },
    CommandSpec { name: "watch", arity: -2, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], first_key: 1, last_key: -1, step: 1, key_specs: KEYS_RO_NOACCESS, summary: "Watch the given keys to determine execution of the MULTI/EXEC block", since: "2.2.0", complexity: "O(1) for every key.", ..TXN },
    CommandSpec { name: "unwatch", arity: 1, flags: &["noscript", "loading", "stale", "fast", "allow_busy"], summary: "Forget about all watched keys", since: "2.2.0", ..TXN },
    CommandSpec { name: "reset", arity: 1, flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], summary: "Reset the connection", since: "6.2.0", ..CONN },
    CommandSpec { name: "wait", arity: 3, flags: &["noscript"], tips: &["request_policy:all_shards", "response_policy:agg_min"], group: "generic", summary: "Wait for the synchronous replication of all the write commands sent in the context of the current connection", since: "3.0.0", ..CONN },
    CommandSpec { name: "asking", arity: 1, flags: &["fast"], group: "cluster", summary: "Sent by cluster clients after an -ASK redirect", since: "3.0.0", ..CONN },
    CommandSpec { name: "readonly", arity: 1, flags: &["loading", "stale", "fast"], group: "cluster", summary: "Enables read queries for a connection to a cluster replica node", since: "3.0.0", ..CONN },
    CommandSpec { name: "readwrite", arity: 1, flags: &["loading", "stale", "fast"], group: "cluster", summary: "Disables read queries for a connection to a cluster replica node", since: "3.0.0", ..CONN },
    CommandSpec {
        name: "cluster",
        arity: -2,
        group: "cluster",
        summary: "A container for cluster commands",
        since: "3.0.0",
        complexity: "Depends on subcommand.",
        subcommands: CLUSTER_SUBCOMMANDS,
        ..BASE
    },
    // redraft's own: `ONCE <client-id> <seq> <command> [arg ...]` runs a write exactly once.
    // redraft's own: the proxy sends a client's MULTI … EXEC as one TXN.
    CommandSpec { name: "txn", arity: -3, flags: &["write", "movablekeys"], group: "transactions", summary: "Run commands as one transaction: TXN <argc> <arg> ... [<argc> <arg> ...]", since: "redraft 0.1", ..BASE },
    CommandSpec { name: "txnwatch", arity: -2, flags: &["readonly", "fast"], first_key: 1, last_key: -1, step: 1, key_specs: KEYS_RO_NOACCESS, group: "transactions", summary: "Fingerprints of keys' values, which TXN WATCH compares at apply (the proxy's WATCH)", since: "redraft 0.1", ..BASE },
    CommandSpec { name: "once", arity: -4, flags: &["write", "movablekeys"], group: "generic", summary: "Run a write command at most once per (client id, sequence number), replying to a retry with the first reply", since: "redraft 0.1", ..BASE },
];

#[rustfmt::skip]
const CLUSTER_SUB: CommandSpec = CommandSpec { flags: &["admin", "stale"], group: "cluster", since: "redraft 0.1", ..BASE };

/// CLUSTER's subcommands: redraft's controller operations (names that never clash with
/// Redis Cluster's own).
#[rustfmt::skip]
const CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "cluster|join", arity: -4, summary: "Add shard groups (<gid> <id>=<host>:<port>[@<bus>] ... [<gid> ...]) and rebalance slots", ..CLUSTER_SUB },
    CommandSpec { name: "cluster|leave", arity: -3, summary: "Remove shard groups and rebalance their slots onto the rest", ..CLUSTER_SUB },
    CommandSpec { name: "cluster|move", arity: 4, summary: "Assign a slot or a slot range (<start>-<end>) to a group", ..CLUSTER_SUB },
    CommandSpec { name: "cluster|query", arity: -2, flags: &["stale"], summary: "Show a configuration (the latest when no number or -1 is given)", ..CLUSTER_SUB },
    CommandSpec { name: "cluster|rebalance", arity: 2, summary: "Even out slots across the joined groups", ..CLUSTER_SUB },
    CommandSpec { name: "cluster|help", arity: 2, flags: &["loading", "stale"], summary: "Show helpful text about the different subcommands", since: "5.0.0", ..CLUSTER_SUB },
    // Redis Cluster's read-only views, built from the configuration and current leaders.
    CommandSpec { name: "cluster|slots", arity: 2, flags: &["stale"], tips: &["nondeterministic_output"], summary: "Get array of Cluster slot to node mappings", since: "3.0.0", complexity: "O(N) where N is the total number of Cluster nodes", doc_flags: &["deprecated"], deprecated_since: Some("7.0.0"), replaced_by: Some("`CLUSTER SHARDS`"), ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|shards", arity: 2, flags: &["stale"], tips: &["nondeterministic_output"], summary: "Get array of cluster slots to node mappings", since: "7.0.0", complexity: "O(N) where N is the total number of cluster nodes", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|nodes", arity: 2, flags: &["stale"], tips: &["nondeterministic_output"], summary: "Get Cluster config for the node", since: "3.0.0", complexity: "O(N) where N is the total number of Cluster nodes", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|info", arity: 2, flags: &["stale"], tips: &["nondeterministic_output"], summary: "Provides info about Redis Cluster node state", since: "3.0.0", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|myid", arity: 2, flags: &["stale"], summary: "Return the node id", since: "3.0.0", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|myshardid", arity: 2, flags: &["loading", "stale"], tips: &["nondeterministic_output"], summary: "Return the node shard id", since: "7.2.0", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|keyslot", arity: 3, flags: &["stale"], summary: "Returns the hash slot of the specified key", since: "3.0.0", complexity: "O(N) where N is the number of bytes in the key", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|countkeysinslot", arity: 3, flags: &["stale"], summary: "Return the number of local keys in the specified hash slot", since: "3.0.0", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|getkeysinslot", arity: 4, flags: &["stale"], tips: &["nondeterministic_output"], summary: "Return local key names in the specified hash slot", since: "3.0.0", complexity: "O(log(N)) where N is the number of requested keys", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|replicas", arity: 3, flags: &["admin", "stale"], tips: &["nondeterministic_output"], summary: "List replica nodes of the specified master node", since: "5.0.0", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|slaves", arity: 3, flags: &["admin", "stale"], tips: &["nondeterministic_output"], summary: "List replica nodes of the specified master node", since: "3.0.0", doc_flags: &["deprecated"], deprecated_since: Some("5.0.0"), replaced_by: Some("`CLUSTER REPLICAS`"), ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|count-failure-reports", arity: 3, flags: &["admin", "stale"], tips: &["nondeterministic_output"], summary: "Return the number of failure reports active for a given node", since: "3.0.0", complexity: "O(N) where N is the number of failure reports", ..CLUSTER_VIEW },
    CommandSpec { name: "cluster|failover", arity: -2, flags: &["admin", "stale", "no_async_loading"], summary: "Forces a replica to perform a manual failover of its master (redraft: moves the group's Raft leadership here)", since: "3.0.0", ..CLUSTER_VIEW },
    // Redis Cluster's own ways of changing the layout: answered with the redraft command to use.
    CommandSpec { name: "cluster|addslots", arity: -3, summary: "Assign new hash slots to receiving node", since: "3.0.0", complexity: "O(N) where N is the total number of hash slot arguments", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|addslotsrange", arity: -4, summary: "Assign new hash slots to receiving node", since: "7.0.0", complexity: "O(N) where N is the total number of the slots between the start slot and end slot arguments.", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|delslots", arity: -3, summary: "Set hash slots as unbound in receiving node", since: "3.0.0", complexity: "O(N) where N is the total number of hash slot arguments", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|delslotsrange", arity: -4, summary: "Set hash slots as unbound in receiving node", since: "7.0.0", complexity: "O(N) where N is the total number of the slots between the start slot and end slot arguments.", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|setslot", arity: -4, summary: "Bind a hash slot to a specific node", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|meet", arity: -4, summary: "Force a node cluster to handshake with another node", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|forget", arity: 3, summary: "Remove a node from the nodes table", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|replicate", arity: 3, summary: "Reconfigure a node as a replica of the specified master node", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|reset", arity: -2, flags: &["admin", "stale", "noscript"], summary: "Reset a Redis Cluster node", since: "3.0.0", complexity: "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|flushslots", arity: 2, summary: "Delete a node's own slots information", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|saveconfig", arity: 2, summary: "Forces the node to save cluster state on disk", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|bumpepoch", arity: 2, tips: &["nondeterministic_output"], summary: "Advance the cluster config epoch", since: "3.0.0", ..CLUSTER_ADMIN },
    CommandSpec { name: "cluster|set-config-epoch", arity: 3, summary: "Set the configuration epoch in a new node", since: "3.0.0", ..CLUSTER_ADMIN },
];

#[rustfmt::skip]
const CLUSTER_VIEW: CommandSpec = CommandSpec { group: "cluster", ..BASE };
#[rustfmt::skip]
const CLUSTER_ADMIN: CommandSpec = CommandSpec { flags: &["admin", "stale", "no_async_loading"], group: "cluster", ..BASE };

/// The key is MEMORY USAGE's second argument.
#[rustfmt::skip]
const KEY2_RO: &[KeySpec] = &[KeySpec { flags: &["RO"], index: 2, lastkey: 0, keystep: 1, limit: 0, notes: "", keyword: "" }];

/// OBJECT's subcommands that take a key, its second argument.
#[rustfmt::skip]
const OBJECT_KEY: CommandSpec = CommandSpec { arity: 3, flags: &["readonly"], acl: &["keyspace"], first_key: 2, last_key: 2, step: 1, key_specs: KEY2_RO, tips: &["nondeterministic_output"], group: "generic", ..BASE };

#[rustfmt::skip]
const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    // In an order redis-server gave (its own varies per process: a randomly seeded dict).
    CommandSpec { name: "object|idletime", summary: "Get the time since a Redis object was last accessed", since: "2.2.3", ..OBJECT_KEY },
    CommandSpec { name: "object|refcount", summary: "Get the number of references to the value of the key", since: "2.2.3", ..OBJECT_KEY },
    CommandSpec { name: "object|freq", summary: "Get the logarithmic access frequency counter of a Redis object", since: "4.0.0", ..OBJECT_KEY },
    CommandSpec { name: "object|encoding", summary: "Inspect the internal encoding of a Redis object", since: "2.2.3", ..OBJECT_KEY },
    CommandSpec { name: "object|help", arity: 2, flags: &["loading", "stale"], acl: &["keyspace"], group: "generic", summary: "Show helpful text about the different subcommands", since: "6.2.0", ..BASE },
];

#[rustfmt::skip]
const MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "memory|usage", arity: -3, flags: &["readonly"], first_key: 2, last_key: 2, step: 1, key_specs: KEY2_RO, group: "server", summary: "Estimate the memory usage of a key", since: "4.0.0", complexity: "O(N) where N is the number of samples.", ..BASE },
    CommandSpec { name: "memory|doctor", arity: 2, tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], group: "server", summary: "Outputs memory problems report", since: "4.0.0", ..BASE },
    CommandSpec { name: "memory|purge", arity: 2, tips: &["request_policy:all_shards", "response_policy:all_succeeded"], group: "server", summary: "Ask the allocator to release memory", since: "4.0.0", complexity: "Depends on how much memory is allocated, could be slow", ..BASE },
    CommandSpec { name: "memory|malloc-stats", arity: 2, tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], group: "server", summary: "Show allocator internal stats", since: "4.0.0", complexity: "Depends on how much memory is allocated, could be slow", ..BASE },
    CommandSpec { name: "memory|help", arity: 2, flags: &["loading", "stale"], group: "server", summary: "Show helpful text about the different subcommands", since: "4.0.0", ..BASE },
];

/// CLIENT's subcommands (kept apart so the `client` entry above stays short).
#[rustfmt::skip]
const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "client|id", arity: 2, summary: "Returns the client ID for the current connection", since: "5.0.0", ..CLIENT_SUB },
    CommandSpec { name: "client|setname", arity: 3, summary: "Set the current connection name", since: "2.6.9", ..CLIENT_SUB },
    CommandSpec { name: "client|getname", arity: 2, summary: "Get the current connection name", since: "2.6.9", ..CLIENT_SUB },
    CommandSpec { name: "client|setinfo", arity: 4, summary: "Set client or connection specific info", since: "7.2.0", ..CLIENT_SUB },
    CommandSpec { name: "client|info", arity: 2, tips: &["nondeterministic_output"], summary: "Returns information about the current client connection.", since: "6.2.0", ..CLIENT_SUB },
    CommandSpec { name: "client|list", arity: -2, flags: &["admin", "noscript", "loading", "stale"], tips: &["nondeterministic_output"], summary: "Get the list of client connections", since: "2.4.0", complexity: "O(N) where N is the number of client connections", ..CLIENT_SUB },
    CommandSpec { name: "client|kill", arity: -3, flags: &["admin", "noscript", "loading", "stale"], summary: "Kill the connection of a client", since: "2.4.0", complexity: "O(N) where N is the number of client connections", ..CLIENT_SUB },
    CommandSpec { name: "client|no-evict", arity: 3, flags: &["admin", "noscript", "loading", "stale"], summary: "Set client eviction mode for the current connection", since: "7.0.0", ..CLIENT_SUB },
    CommandSpec { name: "client|reply", arity: 3, summary: "Instruct the server whether to reply to commands", since: "3.2.0", ..CLIENT_SUB },
    CommandSpec { name: "client|pause", arity: -3, flags: &["admin", "noscript", "loading", "stale"], summary: "Stop processing commands from clients for some time", since: "2.9.50", ..CLIENT_SUB },
    CommandSpec { name: "client|unpause", arity: 2, flags: &["admin", "noscript", "loading", "stale"], summary: "Resume processing of clients that were paused", since: "6.2.0", complexity: "O(N) Where N is the number of paused clients", ..CLIENT_SUB },
    CommandSpec { name: "client|help", arity: 2, flags: &["loading", "stale"], summary: "Show helpful text about the different subcommands", since: "5.0.0", ..CLIENT_SUB },
];

/// Lower-case name → top-level spec.
/// FxHash: looked up for every command at the proxy and at the node (SipHash, std's
/// default, cost 0.9% of a GET's CPU at a node).
static BY_NAME: LazyLock<FxHashMap<&'static str, &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

/// Looks a name up case-insensitively without allocating for ordinary names.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let b = buf.get_mut(..name.len())?;
    for (d, s) in b.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(b).ok()
}

/// The top-level spec for `name`, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    BY_NAME.get(lower(name, &mut buf)?).copied()
}

/// A container's subcommand spec, case-insensitively.
pub fn lookup_sub(container: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    container
        .subcommands
        .iter()
        .find(|s| s.sub_name().as_bytes().eq_ignore_ascii_case(sub))
}

/// The argv indices of a command's keys, per the table.
pub fn key_indices(spec: &CommandSpec, argc: usize) -> impl Iterator<Item = usize> {
    let argc = argc as i32;
    let last = if spec.last_key < 0 {
        argc + spec.last_key
    } else {
        spec.last_key
    };
    let (first, step) = if spec.first_key <= 0 || spec.step <= 0 {
        (1, 1)
    } else {
        (spec.first_key, spec.step)
    };
    let end = if spec.first_key <= 0 || spec.step <= 0 {
        0
    } else {
        last.min(argc - 1)
    };
    (first..=end).step_by(step as usize).map(|i| i as usize)
}

/// MIGRATE's keys: argv[3], or the arguments after its KEYS option (Redis's
/// migrateGetKeys: AUTH and AUTH2 take their arguments along). None for KEYS after a
/// key that is not empty, which MIGRATE refuses.
pub fn migrate_keys(argv: &[Bytes]) -> Option<std::ops::Range<usize>> {
    let mut i = 6;
    while i < argv.len() {
        let a = &argv[i];
        if a.eq_ignore_ascii_case(b"keys") {
            return argv[3].is_empty().then_some(i + 1..argv.len());
        }
        i += match () {
            _ if a.eq_ignore_ascii_case(b"auth") => 2,
            _ if a.eq_ignore_ascii_case(b"auth2") => 3,
            _ => 1,
        };
    }
    (argv.len() > 3).then_some(3..4)
}

/// processCommand's lookup and arity check: the spec that will run, or the error.
pub fn resolve(argv: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    let Some(name) = argv.first() else {
        return Err(unknown_command(argv));
    };
    let mut spec = lookup(name).ok_or_else(|| unknown_command(argv))?;
    if spec.is_container() && argv.len() >= 2 {
        spec = lookup_sub(spec, &argv[1]).ok_or_else(|| {
            Reply::err(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                err_text(cut(&argv[1], 128)),
                err_text(name).to_ascii_uppercase()
            ))
        })?;
    }
    let argc = argv.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(Reply::wrong_arity(spec.name));
    }
    Ok(spec)
}

/// `ERR unknown command '<argv0>', with args beginning with: 'a' 'b' `, with Redis's
/// 128-byte cuts.
pub fn unknown_command(argv: &[Bytes]) -> Reply {
    let name = argv.first().map(|b| &b[..]).unwrap_or(b"");
    let mut args: Vec<u8> = Vec::new();
    for a in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(cut(a, room));
        args.extend_from_slice(b"' ");
    }
    Reply::err(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        err_text(cut(name, 128)),
        err_text(&args)
    ))
}

/// An argument in an error text: CR and LF would end the reply line early.
pub fn err_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

/// An argument in an error text as Redis's `%s` prints it: up to its first NUL.
pub fn err_arg(b: &[u8]) -> String {
    err_text(cut(b, usize::MAX))
}

/// `b` as `%.Ns` prints it: at most `n` bytes, and nothing from the first NUL on.
pub fn cut(b: &[u8], n: usize) -> &[u8] {
    let b = &b[..b.len().min(n)];
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}
