//! CLUSTER JOIN / LEAVE / MOVE / QUERY / REBALANCE: redraft's controller operations,
//! accepted at any node and forwarded over the bus to the controller group's leader.

use std::sync::Arc;

use bytes::Bytes;

use super::{help, unknown_subcommand};
use crate::cluster::{CtlOp, NodeInfo, SLOTS};
use crate::cmd::args::{is_kw, parse_i64};
use crate::node::NodeShared;
use crate::raft::Gid;
use crate::shard::rpc::{call_group, ClusterReply, ClusterRequest};
use redraft_proxy::wire::Reply;

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "JOIN <gid> <id>=<host>:<port>[@<bus-port>] [...] [<gid> ...]",
    "    Add shard groups with their nodes and rebalance the slots.",
    "LEAVE <gid> [<gid> ...]",
    "    Remove shard groups; their slots move to the remaining groups.",
    "MOVE <slot>|<start>-<end> <gid>",
    "    Assign slots to a group (no rebalance).",
    "QUERY [<num>|-1]",
    "    Show a configuration (the latest by default).",
    "REBALANCE",
    "    Even out slot counts across the joined groups.",
    "SLOTS | SHARDS | NODES | INFO | MYID | MYSHARDID",
    "    Redis Cluster's views: each group is a shard, its Raft leader the master.",
    "REPLICAS <node-id> | COUNT-FAILURE-REPORTS <node-id>",
    "    A master's replicas (its group's followers); failure reports, always 0 (elections find failures).",
    "KEYSLOT <key> | COUNTKEYSINSLOT <slot> | GETKEYSINSLOT <slot> <count>",
    "    Slots and the keys this node holds in them.",
    "FAILOVER",
    "    Move the leadership of this node's group to this node.",
    "HELP",
    "    Prints this help.",
];

pub async fn execute(argv: &[Bytes], node: &Arc<NodeShared>) -> Reply {
    let sub = argv[1].to_ascii_lowercase();
    if let Some(reply) = super::cluster_views::execute(&sub, argv, node).await {
        return reply;
    }
    let req = match sub.as_slice() {
        b"help" => return help(HELP),
        b"join" => parse_join(&argv[2..]).map(|op| ClusterRequest::Ctl(CtlOp::Join(op))),
        b"leave" => argv[2..]
            .iter()
            .map(|a| parse_gid(a))
            .collect::<Result<Vec<_>, _>>()
            .map(|g| ClusterRequest::Ctl(CtlOp::Leave(g))),
        b"move" => parse_move(&argv[2], &argv[3]).map(ClusterRequest::Ctl),
        b"rebalance" => Ok(ClusterRequest::Ctl(CtlOp::Rebalance)),
        b"query" => parse_query(&argv[2..]).map(ClusterRequest::Query),
        _ => return unknown_subcommand("CLUSTER", &argv[1]),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => return e,
    };
    let controllers = node.config.controller_nodes();
    if controllers.is_empty() {
        return Reply::err(
            "ERR this node runs without a controller: start shard nodes with --controller",
        );
    }
    let num = match &req {
        ClusterRequest::Query(n) => Some(*n),
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + node.config.leader_wait * 2;
    match call_group(&node.bus, 0, &controllers, req, deadline).await {
        Ok(ClusterReply::Done(r)) => r,
        Ok(ClusterReply::Config(Some(c))) => c.to_reply(),
        Ok(ClusterReply::Config(None)) => Reply::err(format!(
            "ERR no configuration {}",
            num.flatten().unwrap_or_default()
        )),
        Ok(other) => Reply::err(format!("ERR unexpected controller reply: {other:?}")),
        Err(e) => Reply::err(format!("CLUSTERDOWN The controller is unreachable ({e})")),
    }
}

fn parse_gid(a: &[u8]) -> Result<Gid, Reply> {
    let g = parse_i64(a).map_err(|_| Reply::err("ERR invalid group id"))?;
    Gid::try_from(g).map_err(|_| Reply::err("ERR invalid group id"))
}

/// `<gid> <id>=<host>:<port>[@bus] ... [<gid> ...]`: a token with `=` is a node of the
/// group named before it.
fn parse_join(args: &[Bytes]) -> Result<Vec<(Gid, Vec<NodeInfo>)>, Reply> {
    let mut out: Vec<(Gid, Vec<NodeInfo>)> = Vec::new();
    for a in args {
        let text = std::str::from_utf8(a).map_err(|_| Reply::syntax_error())?;
        if text.contains('=') {
            let Some((_, nodes)) = out.last_mut() else {
                return Err(Reply::err(format!(
                    "ERR node '{text}' given before its group id"
                )));
            };
            nodes.push(crate::cli::parse_node(text).map_err(|e| Reply::err(format!("ERR {e}")))?);
        } else {
            out.push((parse_gid(a)?, Vec::new()));
        }
    }
    Ok(out)
}

fn parse_slot(a: &str) -> Result<u16, Reply> {
    a.parse::<u16>()
        .ok()
        .filter(|s| usize::from(*s) < SLOTS)
        .ok_or_else(|| Reply::err("ERR slot out of range"))
}

fn parse_move(range: &[u8], gid: &[u8]) -> Result<CtlOp, Reply> {
    let text = std::str::from_utf8(range).map_err(|_| Reply::err("ERR slot out of range"))?;
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (parse_slot(a)?, parse_slot(b)?),
        None => {
            let s = parse_slot(text)?;
            (s, s)
        }
    };
    Ok(CtlOp::Move {
        start,
        end,
        gid: parse_gid(gid)?,
    })
}

fn parse_query(args: &[Bytes]) -> Result<Option<u64>, Reply> {
    match args {
        [] => Ok(None),
        [n] if is_kw(n, "-1") => Ok(None),
        [n] => {
            let v = parse_i64(n)?;
            u64::try_from(v)
                .map(Some)
                .map_err(|_| Reply::err("ERR invalid configuration number"))
        }
        _ => Err(Reply::syntax_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn join_groups_nodes_after_their_gid() {
        let j = parse_join(&[b("1"), b("1=h:1"), b("2=h:2@9"), b("2"), b("3=h:3")]).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!((j[0].0, j[0].1.len(), j[1].0), (1, 2, 2));
        assert_eq!(j[0].1[1].addr.bus_port, 9);
        assert!(parse_join(&[b("1=h:1")]).is_err());
        assert!(parse_join(&[b("x")]).is_err());
        assert!(parse_join(&[b("1"), b("1=h")]).is_err());
    }

    #[test]
    fn move_takes_a_slot_or_a_range() {
        assert_eq!(
            parse_move(b"5", b"2").unwrap(),
            CtlOp::Move {
                start: 5,
                end: 5,
                gid: 2
            }
        );
        assert_eq!(
            parse_move(b"0-16383", b"1").unwrap(),
            CtlOp::Move {
                start: 0,
                end: 16383,
                gid: 1
            }
        );
        assert!(parse_move(b"16384", b"1").is_err());
        assert!(parse_move(b"-1", b"1").is_err());
        assert!(parse_move(b"1", b"-1").is_err());
    }

    #[test]
    fn query_takes_a_number_or_minus_one() {
        assert_eq!(parse_query(&[]).unwrap(), None);
        assert_eq!(parse_query(&[b("-1")]).unwrap(), None);
        assert_eq!(parse_query(&[b("3")]).unwrap(), Some(3));
        assert!(parse_query(&[b("-2")]).is_err());
        assert!(parse_query(&[b("1"), b("2")]).is_err());
    }
}
