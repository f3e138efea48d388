//! The Redis Cluster read-only views (CLUSTER SLOTS, NODES, SHARDS, INFO) rendered from a
//! configuration, as pure, deterministic functions.
//!
//! Unmodified cluster clients only understand Redis's topology: masters owning slot
//! ranges, replicas following a master, and 40-hex node ids. Each data group is shown as
//! one Redis shard whose master is the group's Raft leader (writes must reach it), and the
//! controller group as a shard without slots, so tools that list every node see it too.
//! Every view is built from the same `Topology`, so ids, masters and ranges agree across
//! views (redis-benchmark checks that SLOTS ids match NODES).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use redraft_proxy::wire::Reply;

use super::config::{Config, NodeInfo};
use crate::raft::{Gid, NodeId};

/// Tags that keep node ids and shard ids apart (see `hex160`).
const NODE_DOMAIN: u64 = 0x6e6f_6465_5f69_6473; // "node_ids"
const SHARD_DOMAIN: u64 = 0x7368_6172_645f_6964; // "shard_id"

/// The 40-hex Redis node id of a Raft node: stable across restarts and nodes (clients
/// compare ids between views and between nodes), distinct for distinct ids.
pub fn node_hex_id(id: NodeId) -> String {
    hex160(id, NODE_DOMAIN)
}

/// The 40-hex id of a shard (group); never equal to any node's id.
pub fn shard_hex_id(gid: Gid) -> String {
    hex160(gid, SHARD_DOMAIN)
}

/// splitmix64's finalizer: a bijection on u64 that scatters bits, so ids look random
/// (as Redis's do) while staying reproducible.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 160 bits for `id`: the first 64 are a bijection of `id` alone, so distinct ids never
/// collide whatever the domain; the next 64 mix in the domain through another bijection,
/// so the same number as a node and as a shard differs there.
fn hex160(id: u64, domain: u64) -> String {
    let head = mix(id.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let mid = mix(head ^ domain);
    let tail = mix(mid ^ domain.rotate_left(32)) >> 32;
    format!("{head:016x}{mid:016x}{tail:08x}")
}

/// What the views are rendered from: the configuration plus what only the answering node
/// knows (leaders, the controller's members, itself).
pub struct Topology<'a> {
    pub config: &'a Config,
    /// Current leader of each group, where known (data groups; the controller group is 0).
    pub leaders: &'a BTreeMap<Gid, NodeId>,
    /// The controller group's nodes; listed in NODES/SHARDS as a shard without slots.
    pub controller: &'a [NodeInfo],
    /// The node answering.
    pub myself: NodeId,
}

/// One Redis shard: a group's master, its other nodes, and the slot runs it owns.
struct Shard<'a> {
    master: &'a NodeInfo,
    /// The group's other nodes in id order.
    replicas: Vec<&'a NodeInfo>,
    /// Inclusive slot runs, ascending (empty for the controller and slotless groups).
    ranges: Vec<(u16, u16)>,
}

impl<'a> Topology<'a> {
    /// The members of `gid`; 0 is the controller unless the configuration lists a group 0.
    fn members(&self, gid: Gid) -> &'a [NodeInfo] {
        match self.config.groups.get(&gid) {
            Some(nodes) => nodes,
            None if gid == 0 => self.controller,
            None => &[],
        }
    }

    /// The master of group `gid`: its known leader if it is a member, else its first node.
    ///
    /// Falling back to a member (rather than hiding the group) keeps every slot routable:
    /// a client sent to a follower gets MOVED or retries once the leader is known.
    pub fn master(&self, gid: Gid) -> Option<&'a NodeInfo> {
        let nodes = self.members(gid);
        self.leaders
            .get(&gid)
            .and_then(|l| nodes.iter().find(|n| n.id == *l))
            .or_else(|| nodes.first())
    }

    /// Data groups in gid order, then the controller; groups without nodes are left out
    /// (nothing could serve them).
    fn shards(&self) -> Vec<Shard<'a>> {
        let mut ranges: BTreeMap<Gid, Vec<(u16, u16)>> = BTreeMap::new();
        for (start, end, gid) in self.config.ranges() {
            if gid != 0 {
                ranges.entry(gid).or_default().push((start, end));
            }
        }
        let mut gids: Vec<Option<Gid>> = self.config.groups.keys().map(|&g| Some(g)).collect();
        if !self.config.groups.contains_key(&0) {
            gids.push(None);
        }
        gids.into_iter()
            .filter_map(|g| {
                let gid = g.unwrap_or(0);
                let master = self.master(gid)?;
                let mut replicas: Vec<&NodeInfo> = self
                    .members(gid)
                    .iter()
                    .filter(|n| n.id != master.id)
                    .collect();
                replicas.sort_by_key(|n| n.id);
                Some(Shard {
                    master,
                    replicas,
                    ranges: g.and_then(|g| ranges.remove(&g)).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// CLUSTER SLOTS: one entry per maximal assigned run, master first, then the group's
    /// other nodes in id order. Unassigned runs are left out: clients treat missing slots
    /// as unassigned.
    pub fn slots_reply(&self) -> Reply {
        let mut entries: Vec<(u16, Reply)> = Vec::new();
        for shard in self.shards() {
            for &(start, end) in &shard.ranges {
                let mut entry = vec![Reply::Int(start.into()), Reply::Int(end.into())];
                entry.push(slot_node(shard.master));
                entry.extend(shard.replicas.iter().map(|n| slot_node(n)));
                entries.push((start, Reply::Array(entry)));
            }
        }
        entries.sort_by_key(|&(start, _)| start);
        Reply::Array(entries.into_iter().map(|(_, e)| e).collect())
    }

    /// CLUSTER NODES: one line per node, data groups then the controller. Ping/pong times
    /// are 0 and every link is `connected`: Raft, not gossip, tracks liveness.
    /// One node's CLUSTER NODES line, without its slots and newline.
    fn node_line(&self, out: &mut String, n: &NodeInfo, role: &str, master: &str) {
        let me = if n.id == self.myself { "myself," } else { "" };
        let _ = write!(
            out,
            "{} {}:{}@{} {me}{role} {master} 0 0 {} connected",
            node_hex_id(n.id),
            n.addr.host,
            n.addr.client_port,
            n.addr.bus_port,
            self.config.num,
        );
    }

    pub fn nodes_text(&self) -> String {
        let mut out = String::new();
        for shard in self.shards() {
            let master_id = node_hex_id(shard.master.id);
            let line = |out: &mut String, n: &NodeInfo, role: &str, master: &str| {
                self.node_line(out, n, role, master)
            };
            line(&mut out, shard.master, "master", "-");
            for &(start, end) in &shard.ranges {
                let _ = match start == end {
                    true => write!(out, " {start}"),
                    false => write!(out, " {start}-{end}"),
                };
            }
            out.push('\n');
            for n in &shard.replicas {
                line(&mut out, n, "slave", &master_id);
                out.push('\n');
            }
        }
        out
    }

    /// CLUSTER REPLICAS (and SLAVES) `<node-id>`: the master's replicas, each as its CLUSTER
    /// NODES line. `count_only` answers COUNT-FAILURE-REPORTS instead: redraft has none (a
    /// group's election finds a failed leader), so 0 for any node it knows.
    pub fn replicas_reply(&self, id: &[u8], count_only: bool) -> Reply {
        let shards = self.shards();
        let hex = |n: &NodeInfo| node_hex_id(n.id).into_bytes() == id;
        let master = shards.iter().find(|s| hex(s.master));
        let known = master.is_some() || shards.iter().any(|s| s.replicas.iter().any(|n| hex(n)));
        match (known, master) {
            (false, _) => Reply::err(format!("ERR Unknown node {}", String::from_utf8_lossy(id))),
            (true, _) if count_only => Reply::Int(0),
            (true, None) => Reply::err("ERR The specified node is not a master"),
            (true, Some(shard)) => {
                let master_id = node_hex_id(shard.master.id);
                Reply::Array(
                    shard
                        .replicas
                        .iter()
                        .map(|n| {
                            let mut line = String::new();
                            self.node_line(&mut line, n, "slave", &master_id);
                            Reply::bulk(line)
                        })
                        .collect(),
                )
            }
        }
    }

    /// CLUSTER SHARDS in Redis 7's format; the controller comes last with no slots.
    pub fn shards_reply(&self) -> Reply {
        let key = Reply::bulk_str;
        let shards = self
            .shards()
            .into_iter()
            .map(|shard| {
                let slots = shard
                    .ranges
                    .iter()
                    .flat_map(|&(s, e)| [Reply::Int(s.into()), Reply::Int(e.into())])
                    .collect();
                let nodes = std::iter::once((shard.master, "master"))
                    .chain(shard.replicas.iter().map(|&n| (n, "replica")))
                    .map(|(n, role)| {
                        Reply::Map(vec![
                            (key("id"), key(&node_hex_id(n.id))),
                            (key("port"), Reply::Int(n.addr.client_port.into())),
                            (key("ip"), key(&n.addr.host)),
                            (key("endpoint"), key(&n.addr.host)),
                            (key("hostname"), key("")),
                            (key("role"), key(role)),
                            (key("replication-offset"), Reply::Int(0)),
                            (key("health"), key("online")),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    (key("slots"), Reply::Array(slots)),
                    (key("nodes"), Reply::Array(nodes)),
                ])
            })
            .collect();
        Reply::Array(shards)
    }

    /// CLUSTER INFO. A slot is ok when its group has a node to send clients to; the state
    /// is ok only when all are (ioredis waits for `cluster_state:ok`).
    pub fn info_text(&self) -> String {
        let shards = self.shards();
        let assigned = self.config.slots.iter().filter(|&&g| g != 0).count();
        let ok = self
            .config
            .slots
            .iter()
            .filter(|&&g| g != 0 && self.master(g).is_some())
            .count();
        let state = if ok == self.config.slots.len() {
            "ok"
        } else {
            "fail"
        };
        let known: usize = shards.iter().map(|s| 1 + s.replicas.len()).sum();
        let size = shards.iter().filter(|s| !s.ranges.is_empty()).count();
        let epoch = self.config.num;
        [
            format!("cluster_state:{state}"),
            format!("cluster_slots_assigned:{assigned}"),
            format!("cluster_slots_ok:{ok}"),
            "cluster_slots_pfail:0".to_owned(),
            format!("cluster_slots_fail:{}", assigned - ok),
            format!("cluster_known_nodes:{known}"),
            format!("cluster_size:{size}"),
            format!("cluster_current_epoch:{epoch}"),
            format!("cluster_my_epoch:{epoch}"),
            "cluster_stats_messages_sent:0".to_owned(),
            "cluster_stats_messages_received:0".to_owned(),
            "total_cluster_links_buffer_limit_exceeded:0".to_owned(),
        ]
        .iter()
        .map(|l| format!("{l}\r\n"))
        .collect()
    }
}

/// A node in a CLUSTER SLOTS entry: host (never empty: ioredis drops such entries), port,
/// id, and Redis 7's metadata map, empty because nodes have no separate hostname.
fn slot_node(n: &NodeInfo) -> Reply {
    Reply::Array(vec![
        Reply::bulk_str(&n.addr.host),
        Reply::Int(n.addr.client_port.into()),
        Reply::bulk_str(&node_hex_id(n.id)),
        Reply::Map(vec![]),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::cluster::SLOTS;

    use crate::cluster::config::{test_node as node, test_three_groups as three_groups};

    fn controller() -> Vec<NodeInfo> {
        (100..103).map(node).collect()
    }

    /// Leaders: group 1 → 11, group 2 unknown, group 3 → 99 (not a member), controller → 102.
    fn leaders() -> BTreeMap<Gid, NodeId> {
        BTreeMap::from([(1, 11), (3, 99), (0, 102)])
    }

    fn topo<'a>(
        config: &'a Config,
        leaders: &'a BTreeMap<Gid, NodeId>,
        controller: &'a [NodeInfo],
        myself: NodeId,
    ) -> Topology<'a> {
        Topology {
            config,
            leaders,
            controller,
            myself,
        }
    }

    fn bulk(r: &Reply) -> String {
        match r {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk: {other:?}"),
        }
    }

    fn int(r: &Reply) -> i64 {
        match r {
            Reply::Int(n) => *n,
            other => panic!("not an int: {other:?}"),
        }
    }

    fn array(r: &Reply) -> &[Reply] {
        match r {
            Reply::Array(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn map_get<'r>(r: &'r Reply, k: &str) -> &'r Reply {
        match r {
            Reply::Map(pairs) => pairs
                .iter()
                .find(|(key, _)| bulk(key) == k)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no {k} in {r:?}")),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn hex_ids_are_stable_distinct_and_apart_from_shard_ids() {
        let is_hex = |s: &str| {
            s.len() == 40
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let nodes: Vec<String> = (1..=1000).map(node_hex_id).collect();
        let shards: Vec<String> = (0..=1000).map(shard_hex_id).collect();
        assert!(nodes.iter().chain(&shards).all(|s| is_hex(s)));
        let mut seen = HashSet::new();
        assert!(nodes.iter().chain(&shards).all(|s| seen.insert(s.clone())));
        assert_eq!(node_hex_id(42), node_hex_id(42));
        assert_ne!(node_hex_id(0), shard_hex_id(0));
        assert!(is_hex(&node_hex_id(u64::MAX)));
    }

    #[test]
    fn master_is_the_known_leader_else_the_first_node() {
        let (c, l, ctl) = (three_groups(), leaders(), controller());
        let t = topo(&c, &l, &ctl, 1);
        assert_eq!(t.master(1).unwrap().id, 11);
        assert_eq!(t.master(2).unwrap().id, 20, "no leader known");
        assert_eq!(t.master(3).unwrap().id, 30, "leader is not a member");
        assert_eq!(t.master(0).unwrap().id, 102, "the controller");
        assert!(t.master(9).is_none());
    }

    #[test]
    fn nodes_lines_for_masters_and_slaves() {
        let (c, l, ctl) = (three_groups(), leaders(), controller());
        let text = topo(&c, &l, &ctl, 11).nodes_text();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 12);
        let m1 = node_hex_id(11);
        assert_eq!(
            lines[0],
            format!("{m1} 127.0.0.1:7011@17011 myself,master - 0 0 7 connected 0-5461")
        );
        assert_eq!(
            lines[1],
            format!(
                "{} 127.0.0.1:7010@17010 slave {m1} 0 0 7 connected",
                node_hex_id(10)
            )
        );
        assert!(lines[2].starts_with(&format!("{} ", node_hex_id(12))));
        // As seen from a slave: only its own line carries `myself`.
        let text = topo(&c, &l, &ctl, 21).nodes_text();
        let mine: Vec<&str> = text.lines().filter(|l| l.contains("myself")).collect();
        assert_eq!(
            mine,
            vec![format!(
                "{} 127.0.0.1:7021@17021 myself,slave {} 0 0 7 connected",
                node_hex_id(21),
                node_hex_id(20)
            )]
        );
        // The controller comes last, a master without slots, whoever answers.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[9],
            format!(
                "{} 127.0.0.1:7102@17102 master - 0 0 7 connected",
                node_hex_id(102)
            )
        );
        assert!(lines[10].contains(&format!(" slave {} ", node_hex_id(102))));
        // Every line has redis-benchmark's ≥ 8 fields.
        assert!(text.lines().all(|l| l.split(' ').count() >= 8));
    }

    /// REPLICAS gives a master's slave lines of CLUSTER NODES, as Redis does.
    #[test]
    fn replicas_are_the_slave_lines_of_their_master() {
        let (c, l, ctl) = (three_groups(), leaders(), controller());
        let t = topo(&c, &l, &ctl, 21);
        let nodes = t.nodes_text();
        let master = node_hex_id(11);
        let want: Vec<Reply> = nodes
            .lines()
            .filter(|line| line.contains(&format!(" slave {master} ")))
            .map(Reply::bulk_str)
            .collect();
        assert_eq!(want.len(), 2);
        assert_eq!(
            t.replicas_reply(master.as_bytes(), false),
            Reply::Array(want)
        );
        let slave = node_hex_id(10);
        assert_eq!(
            t.replicas_reply(slave.as_bytes(), false),
            Reply::err("ERR The specified node is not a master")
        );
        assert_eq!(t.replicas_reply(slave.as_bytes(), true), Reply::Int(0));
        assert_eq!(
            t.replicas_reply(b"nosuch", true),
            Reply::err("ERR Unknown node nosuch")
        );
    }

    #[test]
    fn single_slots_and_split_ranges_render_in_nodes() {
        let mut c = three_groups();
        c.slots[5] = 2;
        c.slots[100..200].fill(0);
        let (l, ctl) = (leaders(), controller());
        let text = topo(&c, &l, &ctl, 11).nodes_text();
        let first = text.lines().next().unwrap();
        assert!(first.ends_with(" connected 0-4 6-99 200-5461"), "{first}");
        let g2 = text.lines().find(|l| l.contains("@17020")).unwrap();
        assert!(g2.ends_with(" connected 5 5462-10922"), "{g2}");
    }

    #[test]
    fn slots_cover_each_assigned_slot_once_leader_first() {
        let mut c = three_groups();
        c.slots[5] = 2;
        c.slots[100..200].fill(0);
        let (l, ctl) = (leaders(), controller());
        let t = topo(&c, &l, &ctl, 11);
        let nodes = t.nodes_text();
        let mut covered = vec![0u32; SLOTS];
        for entry in array(&t.slots_reply()) {
            let e = array(entry);
            let (start, end) = (int(&e[0]) as usize, int(&e[1]) as usize);
            let gid = c.owner(start as u16);
            assert!((start..=end).all(|s| c.slots[s] == gid && gid != 0));
            covered[start..=end].iter_mut().for_each(|n| *n += 1);
            let ids: Vec<String> = e[2..].iter().map(|n| bulk(&array(n)[2])).collect();
            assert_eq!(ids.len(), 3);
            assert_eq!(
                ids[0],
                node_hex_id(t.master(gid).unwrap().id),
                "master first"
            );
            for (i, n) in e[2..].iter().enumerate() {
                let n = array(n);
                assert_eq!(n.len(), 4);
                assert_eq!(bulk(&n[0]), "127.0.0.1");
                assert_eq!(n[3], Reply::Map(vec![]));
                let line = nodes.lines().find(|l| l.starts_with(&ids[i])).unwrap();
                assert!(line.contains(&format!(":{}@", int(&n[1]))));
                let role = if i == 0 { "master" } else { "slave" };
                assert!(line.contains(role), "{line}");
            }
        }
        for (s, &n) in covered.iter().enumerate() {
            assert_eq!(n, u32::from(c.slots[s] != 0), "slot {s}");
        }
        // Group 1's leader is 11, so 10 and 12 follow as replicas in id order.
        let first = array(&t.slots_reply())[0].clone();
        let ids: Vec<String> = array(&first)[2..]
            .iter()
            .map(|n| bulk(&array(n)[2]))
            .collect();
        assert_eq!(ids, vec![node_hex_id(11), node_hex_id(10), node_hex_id(12)]);
    }

    #[test]
    fn info_state_follows_slot_coverage() {
        let (mut c, l, ctl) = (three_groups(), leaders(), controller());
        let info = topo(&c, &l, &ctl, 11).info_text();
        assert!(info.ends_with("\r\n"));
        let want = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
                    cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:12\r\n\
                    cluster_size:3\r\ncluster_current_epoch:7\r\ncluster_my_epoch:7\r\n\
                    cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
                    total_cluster_links_buffer_limit_exceeded:0\r\n";
        assert_eq!(info, want);

        c.slots[100] = 0;
        let info = topo(&c, &l, &ctl, 11).info_text();
        assert!(info.starts_with("cluster_state:fail\r\n"));
        assert!(info.contains("cluster_slots_assigned:16383\r\n"));
        assert!(info.contains("cluster_slots_ok:16383\r\n"));

        // A slot owned by a group the configuration does not list has nobody to serve it.
        c.slots[100] = 9;
        let info = topo(&c, &l, &ctl, 11).info_text();
        assert!(info.starts_with("cluster_state:fail\r\n"));
        assert!(info.contains("cluster_slots_assigned:16384\r\n"));
        assert!(info.contains("cluster_slots_fail:1\r\n"));
    }

    #[test]
    fn shards_list_data_groups_then_the_controller() {
        let (c, l, ctl) = (three_groups(), leaders(), controller());
        let r = topo(&c, &l, &ctl, 11).shards_reply();
        let shards = array(&r);
        assert_eq!(shards.len(), 4);
        let slots: Vec<i64> = array(map_get(&shards[1], "slots"))
            .iter()
            .map(int)
            .collect();
        assert_eq!(slots, vec![5462, 10922]);
        assert!(array(map_get(&shards[3], "slots")).is_empty());
        let nodes = array(map_get(&shards[0], "nodes"));
        assert_eq!(nodes.len(), 3);
        let roles: Vec<String> = nodes.iter().map(|n| bulk(map_get(n, "role"))).collect();
        assert_eq!(roles, ["master", "replica", "replica"]);
        let m = &nodes[0];
        assert_eq!(bulk(map_get(m, "id")), node_hex_id(11));
        assert_eq!(int(map_get(m, "port")), 7011);
        assert_eq!(bulk(map_get(m, "ip")), "127.0.0.1");
        assert_eq!(bulk(map_get(m, "endpoint")), "127.0.0.1");
        assert_eq!(bulk(map_get(m, "hostname")), "");
        assert_eq!(int(map_get(m, "replication-offset")), 0);
        assert_eq!(bulk(map_get(m, "health")), "online");
        let ctl_master = &array(map_get(&shards[3], "nodes"))[0];
        assert_eq!(bulk(map_get(ctl_master, "id")), node_hex_id(102));
    }

    #[test]
    fn strangers_and_slotless_groups_render() {
        let (mut c, l, ctl) = (three_groups(), leaders(), controller());
        c.groups.insert(4, vec![node(40), node(41)]);
        c.slots[..100].fill(0);
        let t = topo(&c, &l, &[], 555);
        let text = t.nodes_text();
        assert!(!text.contains("myself"));
        assert_eq!(text.lines().count(), 11, "no controller nodes given");
        let g4 = text.lines().find(|l| l.contains("@17040")).unwrap();
        assert!(g4.ends_with(" master - 0 0 7 connected"), "{g4}");
        assert!(t.info_text().contains("cluster_size:3\r\n"));
        assert_eq!(array(&t.shards_reply()).len(), 4);

        let empty = Config::empty();
        let t = topo(&empty, &l, &ctl, 100);
        assert_eq!(t.slots_reply(), Reply::Array(vec![]));
        assert_eq!(t.nodes_text().lines().count(), 3);
        assert!(t.info_text().starts_with("cluster_state:fail\r\n"));
    }
}
