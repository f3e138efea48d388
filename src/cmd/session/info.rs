//! INFO [section [section ...]]
//!
//! Redis's sections and field names where clients read them (ioredis waits on `loading`,
//! redis-cli and test suites read `role`, `used_memory`, ...), plus a `raft` section.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::db::DbRead;
use crate::node::NodeShared;
use redraft_proxy::wire::{info, Reply};

/// Sections in Redis's fixed order; `true` when `INFO` / `INFO default` includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    ("raft", true),
];

pub fn execute(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    let asked: Vec<String> = argv[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let wanted = |name: &str, default: bool| {
        if asked.is_empty() {
            return default;
        }
        asked
            .iter()
            .any(|a| a == name || a == "all" || a == "everything" || (a == "default" && default))
    };
    let mut parts = Vec::new();
    for &(name, default) in SECTIONS {
        if wanted(name, default) {
            parts.push(section(name, node));
        }
    }
    Reply::Verbatim(Bytes::from(parts.join("\r\n")))
}

fn section(name: &str, node: &NodeShared) -> String {
    let mut s = String::new();
    let m = node.group.metrics();
    let leader = m.current_leader == Some(m.id);
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    match name {
        "server" => {
            s.push_str("# Server\r\n");
            let _ = write!(
                s,
                "redis_version:{}\r\nredraft_version:{}\r\nredis_mode:{}\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n",
                crate::node::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                node.config.redis_mode(),
                std::env::consts::OS,
                std::process::id(),
                node.run_id,
                node.addr.client_port,
                node.started.elapsed().as_secs(),
                node.started.elapsed().as_secs() / 86400,
            );
        }
        "clients" => info::clients(
            &mut s,
            &node.clients,
            node.maxclients.load(Ordering::Relaxed),
        ),
        "memory" => info::memory(&mut s),
        "persistence" => {
            // The snapshot is the dump (SAVE, LASTSAVE); its changes are log entries.
            let snapshot = m.snapshot.map_or(0, |l| l.index);
            let _ = write!(
                s,
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_last_write_status:ok\r\n",
                applied.saturating_sub(snapshot),
                node.group.reader().saved_at(),
            );
        }
        "stats" => info::stats(&mut s, &node.clients),
        "replication" => {
            s.push_str("# Replication\r\n");
            let replid = format!("{:040x}", node.config.gid);
            if leader {
                let followers = super::followers(&m);
                let _ = write!(s, "role:master\r\nconnected_slaves:{}\r\n", followers.len());
                for (i, (addr, offset)) in followers.iter().enumerate() {
                    let _ = write!(
                        s,
                        "slave{i}:ip={},port={},state=online,offset={offset},lag=0\r\n",
                        addr.host, addr.client_port
                    );
                }
                // Where the log ends, as ROLE says (WAIT counts replicas up to it).
                let end = m.last_log_index.unwrap_or(0);
                let _ = write!(s, "master_replid:{replid}\r\nmaster_repl_offset:{end}\r\n");
            } else {
                let leader_addr = m.current_leader.and_then(|l| node.group.node_addr(l));
                let (host, port, status) = match &leader_addr {
                    Some(a) => (a.host.clone(), a.client_port, "up"),
                    None => (String::new(), 0, "down"),
                };
                let _ = write!(
                    s,
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{status}\r\nslave_repl_offset:{applied}\r\nslave_read_only:1\r\nconnected_slaves:0\r\nmaster_replid:{replid}\r\nmaster_repl_offset:{applied}\r\n"
                );
            }
        }
        "cpu" => info::cpu(&mut s),
        "commandstats" => node.clients.stats.commandstats(&mut s),
        "errorstats" => node.clients.stats.errorstats(&mut s),
        "latencystats" => node.clients.stats.latencystats(&mut s),
        "cluster" => {
            s.push_str("# Cluster\r\n");
            let _ = write!(
                s,
                "cluster_enabled:{}\r\n",
                u8::from(node.config.cluster_mode())
            );
            let meta = node.group.reader().cluster();
            if node.config.gid == 0 {
                let _ = write!(s, "redraft_config:{}\r\n", meta.ctl.latest_num());
            } else if let Some(t) = meta.slots.as_ref() {
                // Migration progress: slots in flight now, and totals moved so far.
                let p = &t.progress;
                let _ = write!(
                    s,
                    "redraft_config:{}\r\nredraft_slots_owned:{}\r\nredraft_slots_pulling:{}\r\nredraft_slots_offloading:{}\r\nredraft_slots_unacked:{}\r\nredraft_slots_in:{}\r\nredraft_slots_out:{}\r\nredraft_keys_in:{}\r\nredraft_bytes_in:{}\r\nredraft_keys_dropped:{}\r\n",
                    t.config.num,
                    t.config.slots.iter().filter(|g| **g == t.gid).count(),
                    t.pulling.len(),
                    t.offloading.len(),
                    t.unacked.len(),
                    p.slots_in,
                    p.slots_out,
                    p.keys_in,
                    p.bytes_in,
                    p.keys_dropped,
                );
            }
        }
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            let reader = node.group.reader();
            let keys = reader.key_count();
            if keys > 0 {
                let _ = write!(
                    s,
                    "db0:keys={keys},expires={},avg_ttl=0\r\n",
                    reader.expires_count()
                );
            }
        }
        "raft" => {
            s.push_str("# Raft\r\n");
            let _ = write!(
                s,
                "raft_group:{}\r\nraft_node_id:{}\r\nraft_state:{:?}\r\nraft_term:{}\r\nraft_leader:{}\r\nraft_last_log_index:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{applied}\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\nraft_members:{}\r\nraft_entries_proposed:{}\r\nraft_read_barriers:{}\r\nraft_fsyncs:{}\r\n",
                node.config.gid,
                m.id,
                m.state,
                m.current_term,
                m.current_leader.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
                m.last_log_index.unwrap_or(0),
                node.group.committed_index(),
                m.snapshot.map(|l| l.index).unwrap_or(0),
                m.purged.map(|l| l.index).unwrap_or(0),
                m.membership_config.membership().voter_ids().map(|v| v.to_string()).collect::<Vec<_>>().join(","),
                node.group.entries_proposed(),
                node.group.read_rounds(),
                node.storage.persist_count(),
            );
        }
        _ => {}
    }
    s
}
