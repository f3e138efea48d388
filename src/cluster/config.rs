//! One numbered cluster configuration: which group owns each slot, and each group's nodes.

use std::collections::BTreeMap;

use redraft_proxy::wire::Reply;
use serde::{Deserialize, Serialize};

use crate::raft::{Gid, NodeAddr, NodeId};

/// Number of hash slots (the same as Redis Cluster and `redraft_proxy::wire::SLOTS`).
pub const SLOTS: usize = 16384;
const _: () = assert!(SLOTS == redraft_proxy::wire::SLOTS);

/// A member of a data group and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: NodeAddr,
}

/// A cluster configuration as the controller publishes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// 0 for the implicit empty configuration, then 1, 2, ... in controller log order.
    pub num: u64,
    /// Slot → owning group; always `SLOTS` entries, 0 means unassigned. Stored as runs:
    /// configurations live in a Raft log and state machine, so they must stay small.
    #[serde(with = "slot_runs")]
    pub slots: Vec<Gid>,
    /// The joined data groups and their nodes.
    pub groups: BTreeMap<Gid, Vec<NodeInfo>>,
}

impl Config {
    /// Configuration 0: no groups, every slot unassigned.
    pub fn empty() -> Config {
        Config {
            num: 0,
            slots: vec![0; SLOTS],
            groups: BTreeMap::new(),
        }
    }

    /// The group owning `slot` (0: unassigned, also for slots past the end).
    pub fn owner(&self, slot: u16) -> Gid {
        self.slots.get(slot as usize).copied().unwrap_or(0)
    }

    /// Maximal runs of one owner as inclusive `(start, end, gid)`, unassigned runs included.
    pub fn ranges(&self) -> Vec<(u16, u16, Gid)> {
        runs(&self.slots)
            .into_iter()
            .map(|(start, len, gid)| (start, start + (len - 1), gid))
            .collect()
    }

    /// The slots `gid` owns, ascending.
    pub fn slots_of(&self, gid: Gid) -> Vec<u16> {
        (0..self.slots.len())
            .filter(|&s| self.slots[s] == gid)
            .map(|s| s as u16)
            .collect()
    }

    /// Slot count of every joined group (zero included); unassigned slots are not counted.
    pub fn slot_counts(&self) -> BTreeMap<Gid, usize> {
        let mut counts: BTreeMap<Gid, usize> = self.groups.keys().map(|&g| (g, 0)).collect();
        for g in &self.slots {
            if let Some(c) = counts.get_mut(g) {
                *c += 1;
            }
        }
        counts
    }

    /// The nodes of `gid` (empty if it is not a joined group).
    pub fn nodes(&self, gid: Gid) -> &[NodeInfo] {
        self.groups.get(&gid).map(|n| &n[..]).unwrap_or(&[])
    }

    /// The group node `id` belongs to.
    pub fn group_of_node(&self, id: NodeId) -> Option<Gid> {
        self.groups
            .iter()
            .find(|(_, nodes)| nodes.iter().any(|n| n.id == id))
            .map(|(&g, _)| g)
    }

    /// The CLUSTER QUERY reply: a map meant to be read by people as well as tools.
    pub fn to_reply(&self) -> Reply {
        let key = Reply::bulk_str;
        let slots = self
            .ranges()
            .into_iter()
            .filter(|&(_, _, g)| g != 0)
            .map(|(s, e, g)| Reply::Array(vec![int(s as u64), int(e as u64), int(g)]))
            .collect();
        let unassigned = self.slots.iter().filter(|&&g| g == 0).count();
        let counts = self.slot_counts();
        let groups = self
            .groups
            .iter()
            .map(|(&gid, nodes)| {
                let nodes = nodes
                    .iter()
                    .map(|n| Reply::bulk_str(&format!("id={} {}", n.id, n.addr)))
                    .collect();
                Reply::Map(vec![
                    (key("gid"), int(gid)),
                    (key("slots"), int(counts[&gid] as u64)),
                    (key("nodes"), Reply::Array(nodes)),
                ])
            })
            .collect();
        Reply::Map(vec![
            (key("config"), int(self.num)),
            (key("slots"), Reply::Array(slots)),
            (key("unassigned"), int(unassigned as u64)),
            (key("groups"), Reply::Array(groups)),
        ])
    }
}

fn int(v: u64) -> Reply {
    Reply::Int(v as i64)
}

/// Maximal runs of equal owner as `(start, len, gid)`.
fn runs(slots: &[Gid]) -> Vec<(u16, u16, Gid)> {
    let mut out: Vec<(u16, u16, Gid)> = Vec::new();
    for (s, &g) in slots.iter().enumerate() {
        match out.last_mut() {
            Some((_, len, last)) if *last == g => *len += 1,
            _ => out.push((s as u16, 1, g)),
        }
    }
    out
}

/// `slots` as runs of `(start u16, len u16, gid u64)`: a few runs per group instead of
/// 16384 entries. Runs must be in order, non-empty, contiguous, and cover exactly `SLOTS`.
mod slot_runs {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{runs, Gid, SLOTS};

    pub fn serialize<S: Serializer>(slots: &[Gid], s: S) -> Result<S::Ok, S::Error> {
        if slots.len() != SLOTS {
            return Err(S::Error::custom(format!(
                "a configuration has {} slots, not {SLOTS}",
                slots.len()
            )));
        }
        runs(slots).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Gid>, D::Error> {
        let runs = Vec::<(u16, u16, Gid)>::deserialize(d)?;
        let mut slots = Vec::with_capacity(SLOTS);
        for (start, len, gid) in runs {
            if start as usize != slots.len() || len == 0 || slots.len() + len as usize > SLOTS {
                return Err(D::Error::custom(format!(
                    "bad slot run start={start} len={len} after {} slots",
                    slots.len()
                )));
            }
            slots.resize(slots.len() + len as usize, gid);
        }
        if slots.len() != SLOTS {
            return Err(D::Error::custom(format!(
                "slot runs cover {} slots, not {SLOTS}",
                slots.len()
            )));
        }
        Ok(slots)
    }
}

/// A node on 127.0.0.1 with ports derived from its id, for tests of cluster logic.
#[cfg(test)]
pub(crate) fn test_node(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        addr: NodeAddr {
            host: "127.0.0.1".into(),
            client_port: 7000 + id as u16,
            bus_port: 17000 + id as u16,
        },
    }
}

/// Configuration 7 for tests: groups 1..=3 of three [`test_node`]s each (`g0`, `g1`,
/// `g2`), the slots split in thirds.
#[cfg(test)]
pub(crate) fn test_three_groups() -> Config {
    let mut c = Config::empty();
    c.num = 7;
    for g in 1..=3u64 {
        c.groups
            .insert(g, (0..3).map(|i| test_node(g * 10 + i)).collect());
    }
    for s in 0..SLOTS {
        c.slots[s] = (s * 3 / SLOTS) as Gid + 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_node as node;

    /// Groups 1..=3 with three nodes each; slots split in thirds with a gap at 100..=199.
    fn three_groups() -> Config {
        let mut c = test_three_groups();
        for s in 100..200 {
            c.slots[s] = 0;
        }
        c
    }

    /// Encodes a `(start, len, gid)` run list as the `slots` field would be.
    fn decode_runs(r: &[(u16, u16, Gid)]) -> Result<Config, postcard::Error> {
        #[derive(Serialize)]
        struct Raw<'a> {
            num: u64,
            slots: &'a [(u16, u16, Gid)],
            groups: BTreeMap<Gid, Vec<NodeInfo>>,
        }
        let raw = Raw {
            num: 1,
            slots: r,
            groups: BTreeMap::new(),
        };
        postcard::from_bytes(&crate::codec::to_vec(&raw).unwrap())
    }

    #[test]
    fn empty_config_owns_nothing() {
        let c = Config::empty();
        assert_eq!(c.num, 0);
        assert_eq!(c.slots.len(), SLOTS);
        assert_eq!(c.owner(0), 0);
        assert_eq!(c.owner(16383), 0);
        assert_eq!(c.ranges(), vec![(0, 16383, 0)]);
        assert!(c.slot_counts().is_empty());
        assert!(c.nodes(1).is_empty());
        assert_eq!(c.group_of_node(1), None);
    }

    #[test]
    fn accessors_agree_with_the_slot_table() {
        let c = three_groups();
        assert_eq!(c.owner(0), 1);
        assert_eq!(c.owner(150), 0);
        assert_eq!(c.owner(16383), 3);
        assert_eq!(c.owner(20000), 0, "past the end");
        assert_eq!(
            c.ranges(),
            vec![
                (0, 99, 1),
                (100, 199, 0),
                (200, 5461, 1),
                (5462, 10922, 2),
                (10923, 16383, 3)
            ]
        );
        let ones = c.slots_of(1);
        assert_eq!(ones.len(), 5362);
        assert_eq!((ones[0], ones[99], ones[100]), (0, 99, 200));
        assert_eq!(c.slots_of(0), (100..200).collect::<Vec<u16>>());
        assert_eq!(
            c.slot_counts(),
            BTreeMap::from([(1, 5362), (2, 5461), (3, 5461)])
        );
        assert_eq!(c.nodes(2), &[node(20), node(21), node(22)][..]);
        assert_eq!(c.group_of_node(31), Some(3));
        assert_eq!(c.group_of_node(4), None);
    }

    #[test]
    fn slot_counts_include_groups_without_slots() {
        let mut c = Config::empty();
        c.groups.insert(5, vec![node(1)]);
        assert_eq!(c.slot_counts(), BTreeMap::from([(5, 0)]));
    }

    #[test]
    fn postcard_encoding_is_small_and_round_trips() {
        let c = three_groups();
        let bytes = crate::codec::to_vec(&c).unwrap();
        assert!(bytes.len() < 1024, "{} bytes", bytes.len());
        let back: Config = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, c);
        let empty = crate::codec::to_vec(&Config::empty()).unwrap();
        assert_eq!(
            postcard::from_bytes::<Config>(&empty).unwrap(),
            Config::empty()
        );
    }

    #[test]
    fn runs_must_cover_exactly_all_slots() {
        assert_eq!(
            decode_runs(&[(0, 8192, 1), (8192, 8192, 2)]).unwrap().slots,
            (0..SLOTS)
                .map(|s| if s < 8192 { 1 } else { 2 })
                .collect::<Vec<Gid>>()
        );
        for bad in [
            &[(0, 8192, 1)][..],                  // too few
            &[(0, 8192, 1), (8192, 8193, 2)][..], // too many
            &[(0, 8192, 1), (8000, 8384, 2)][..], // overlap
            &[(0, 8192, 1), (8193, 8191, 2)][..], // gap
            &[(0, 0, 1), (0, 16384, 2)][..],      // empty run
            &[(0, 16384, 1), (16384, 0, 2)][..],  // empty run at the end
            &[][..],                              // nothing
            &[(8192, 8192, 2), (0, 8192, 1)][..], // out of order
            &[(0, 65535, 1)][..],                 // way past the end
        ] {
            assert!(decode_runs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serializing_a_malformed_slot_table_fails() {
        let mut c = Config::empty();
        c.slots.pop();
        assert!(crate::codec::to_vec(&c).is_err());
    }

    #[test]
    fn reply_lists_assigned_ranges_and_groups() {
        let mut c = three_groups();
        c.groups.insert(4, vec![node(40)]);
        let b = Reply::bulk_str;
        let range = |s, e, g| Reply::Array(vec![Reply::Int(s), Reply::Int(e), Reply::Int(g)]);
        let group = |g: i64, n: i64, nodes: Vec<Reply>| {
            Reply::Map(vec![
                (b("gid"), Reply::Int(g)),
                (b("slots"), Reply::Int(n)),
                (b("nodes"), Reply::Array(nodes)),
            ])
        };
        let expected = Reply::Map(vec![
            (b("config"), Reply::Int(7)),
            (
                b("slots"),
                Reply::Array(vec![
                    range(0, 99, 1),
                    range(200, 5461, 1),
                    range(5462, 10922, 2),
                    range(10923, 16383, 3),
                ]),
            ),
            (b("unassigned"), Reply::Int(100)),
            (
                b("groups"),
                Reply::Array(vec![
                    group(
                        1,
                        5362,
                        vec![
                            b("id=10 127.0.0.1:7010@17010"),
                            b("id=11 127.0.0.1:7011@17011"),
                            b("id=12 127.0.0.1:7012@17012"),
                        ],
                    ),
                    group(
                        2,
                        5461,
                        vec![
                            b("id=20 127.0.0.1:7020@17020"),
                            b("id=21 127.0.0.1:7021@17021"),
                            b("id=22 127.0.0.1:7022@17022"),
                        ],
                    ),
                    group(
                        3,
                        5461,
                        vec![
                            b("id=30 127.0.0.1:7030@17030"),
                            b("id=31 127.0.0.1:7031@17031"),
                            b("id=32 127.0.0.1:7032@17032"),
                        ],
                    ),
                    group(4, 0, vec![b("id=40 127.0.0.1:7040@17040")]),
                ]),
            ),
        ]);
        assert_eq!(c.to_reply(), expected);
    }
}
