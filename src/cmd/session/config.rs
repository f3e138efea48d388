//! CONFIG GET parameter [parameter ...] | CONFIG SET parameter value [parameter value ...] |
//! CONFIG RESETSTAT | CONFIG HELP
//!
//! The parameters redraft has, plus the ones clients read at connect (`save`, `appendonly`:
//! redis-benchmark). Durability is the Raft log, fsync'd on a quorum before any reply, which
//! is what `appendonly yes` + `appendfsync always` promise.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::cmd::args::err_arg;
use crate::node::NodeShared;
use redraft_proxy::wire::glob::glob_match;
use redraft_proxy::wire::slowlog;
use redraft_proxy::wire::Reply;

/// Canonical parameter names, in the order CONFIG GET * lists them.
pub struct ConfigTable;

const PARAMS: &[&str] = &[
    "appendfsync",
    "appendonly",
    "bind",
    "client-output-buffer-limit",
    "cluster-enabled",
    "databases",
    "dir",
    "maxclients",
    "maxmemory",
    "maxmemory-policy",
    "port",
    "proto-max-bulk-len",
    "raft-election-timeout-max",
    "raft-election-timeout-min",
    "raft-heartbeat-interval",
    "save",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "timeout",
];

/// Parameters CONFIG SET may change at run time.
const MUTABLE: &[&str] = &[
    "client-output-buffer-limit",
    "maxclients",
    "slowlog-log-slower-than",
    "slowlog-max-len",
];

impl ConfigTable {
    pub fn get(node: &NodeShared, name: &str) -> Option<String> {
        let c = &node.config;
        Some(match name {
            "appendfsync" => "always".into(),
            "appendonly" => "yes".into(),
            "bind" => c.bind.clone(),
            "client-output-buffer-limit" => node.output_limit.describe(),
            "cluster-enabled" => if c.cluster_mode() { "yes" } else { "no" }.into(),
            "databases" => "1".into(),
            "dir" => c.dir.display().to_string(),
            "maxclients" => node.maxclients.load(Ordering::Relaxed).to_string(),
            "maxmemory" => "0".into(),
            // Nothing is ever evicted (and `maxmemory` is 0: no limit).
            "maxmemory-policy" => "noeviction".into(),
            "port" => node.addr.client_port.to_string(),
            "proto-max-bulk-len" => "536870912".into(),
            "raft-election-timeout-max" => c.timings.election_max.as_millis().to_string(),
            "raft-election-timeout-min" => c.timings.election_min.as_millis().to_string(),
            "raft-heartbeat-interval" => c.timings.heartbeat.as_millis().to_string(),
            "save" => String::new(),
            "slowlog-log-slower-than" => node.clients.slowlog.slower_than_us().to_string(),
            "slowlog-max-len" => node.clients.slowlog.max_len().to_string(),
            "timeout" => "0".into(),
            _ => return None,
        })
    }
}

pub fn execute(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    match argv[1].to_ascii_lowercase().as_slice() {
        b"get" => get(&argv[2..], node),
        b"set" => set(&argv[2..], node),
        b"resetstat" => {
            node.clients.reset_stats();
            Reply::ok()
        }
        b"help" => super::help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ]),
        // Settings come from the command line; CONFIG SET lasts until the process ends.
        b"rewrite" => Reply::err("ERR The server is running without a config file"),
        // cmd::parse answered unknown subcommands already.
        _ => super::unknown_subcommand("CONFIG", &argv[1]),
    }
}

fn get(patterns: &[Bytes], node: &NodeShared) -> Reply {
    let mut out: Vec<(Reply, Reply)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for p in patterns {
        let is_glob = p.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        for name in PARAMS {
            let hit = if is_glob {
                glob_match(p, name.as_bytes(), true)
            } else {
                p.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit && !seen.contains(name) {
                seen.push(name);
                // A plain name echoes the name as sent (CONFIG GET SAVE → "SAVE").
                let key = if is_glob {
                    Reply::bulk_str(name)
                } else {
                    Reply::Bulk(p.clone())
                };
                out.push((
                    key,
                    Reply::bulk(ConfigTable::get(node, name).unwrap_or_default()),
                ));
            }
        }
    }
    Reply::Map(out)
}

fn set(args: &[Bytes], node: &NodeShared) -> Reply {
    if !args.len().is_multiple_of(2) {
        return Reply::syntax_error();
    }
    // An unknown name is reported before any other failure, wherever it is.
    if let Some(unknown) = args.chunks(2).find(|pair| {
        let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
        !PARAMS.contains(&name.as_str())
    }) {
        return Reply::err(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            err_arg(&unknown[0])
        ));
    }
    let mut changes = Vec::new();
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
        let fail = |why: &str| {
            Reply::err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                err_arg(&pair[0])
            ))
        };
        let canonical = PARAMS
            .iter()
            .find(|p| **p == name)
            .expect("unknown names were refused above");
        if !MUTABLE.contains(canonical) {
            return fail("can't set immutable config");
        }
        if changes.iter().any(|(n, _)| n == canonical) {
            return fail("duplicate parameter");
        }
        let Ok(value) = std::str::from_utf8(&pair[1]) else {
            return fail("argument must be a valid UTF-8 string");
        };
        if *canonical == "client-output-buffer-limit" {
            // Checked here, applied below with the rest: all or nothing.
            if let Err(why) = crate::resp::output_limit::OutputLimit::parse(value) {
                return fail(why);
            }
        } else if let Some(checked) = slowlog::parse_config(canonical, &pair[1]) {
            if let Err(why) = checked {
                return fail(why);
            }
        } else if !matches!(value.parse::<usize>(), Ok(v) if v >= 1) {
            return fail("argument couldn't be parsed into an integer");
        }
        changes.push((*canonical, value));
    }
    for (name, value) in changes {
        match name {
            "maxclients" => {
                let v = value.parse().expect("checked above");
                node.maxclients.store(v, Ordering::Relaxed);
            }
            "client-output-buffer-limit" => {
                node.output_limit.set(value).expect("checked above");
            }
            "slowlog-log-slower-than" => {
                let v = value.parse().expect("checked above");
                node.clients.slowlog.set_slower_than_us(v);
            }
            "slowlog-max-len" => {
                let v = value.parse().expect("checked above");
                node.clients.slowlog.set_max_len(v);
            }
            _ => {}
        }
    }
    Reply::ok()
}
