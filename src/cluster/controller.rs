//! The controller's replicated state machine: the list of configurations and the ops that
//! append to it. Applying an op is pure and deterministic, so every controller replica
//! applying the same log holds the same configurations and returns the same errors.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::{Config, NodeInfo, SLOTS};
use super::rebalance::rebalance;
use crate::raft::{Gid, NodeId};

/// A change to the cluster layout, as proposed to the controller group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtlOp {
    /// Add data groups with their nodes, then rebalance.
    Join(Vec<(Gid, Vec<NodeInfo>)>),
    /// Remove data groups, then rebalance their slots onto the rest.
    Leave(Vec<Gid>),
    /// Give the inclusive slot range to `gid` as is, without rebalancing.
    Move { start: u16, end: u16, gid: Gid },
    /// Even out slot counts across the current groups.
    Rebalance,
}

/// Why an op was refused; the Display text is the full Redis error reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CtlError {
    #[error("ERR group 0 is reserved for the controller")]
    ReservedGroup,
    #[error("ERR group {0} has already joined")]
    AlreadyJoined(Gid),
    #[error("ERR group {0} is listed more than once")]
    DuplicateGroup(Gid),
    #[error("ERR group {0} needs at least one node")]
    NoNodes(Gid),
    #[error("ERR node {node} is already in group {gid}")]
    NodeInUse { node: NodeId, gid: Gid },
    #[error("ERR unknown group {0}")]
    UnknownGroup(Gid),
    #[error("ERR no groups given")]
    NoGroups,
    #[error("ERR slot out of range")]
    SlotOutOfRange,
    #[error("ERR invalid slot range")]
    InvalidSlotRange,
}

/// Every configuration the controller has published. Old ones are kept because a group
/// that fell behind must step through each configuration in turn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerState {
    /// `configs[i].num == i + 1`; configuration 0 (`Config::empty()`) is implicit.
    configs: Vec<Config>,
}

impl ControllerState {
    /// The newest configuration (`Config::empty()` before the first op).
    pub fn latest(&self) -> Config {
        self.configs.last().cloned().unwrap_or_else(Config::empty)
    }

    /// The latest configuration without copying it (None before the first).
    pub fn latest_ref(&self) -> Option<&Config> {
        self.configs.last()
    }

    pub fn latest_num(&self) -> u64 {
        self.configs.len() as u64
    }

    /// Configuration `num` (None: the latest); None if it does not exist yet.
    pub fn query(&self, num: Option<u64>) -> Option<Config> {
        match num {
            None => Some(self.latest()),
            Some(0) => Some(Config::empty()),
            Some(n) => self.configs.get(usize::try_from(n - 1).ok()?).cloned(),
        }
    }

    /// Applies `op`, appending exactly one configuration (even if no slot moved, so each
    /// accepted op has a number to wait for); returns its number. On error nothing changes.
    pub fn apply(&mut self, op: &CtlOp) -> Result<u64, CtlError> {
        let mut next = self.latest();
        match op {
            CtlOp::Join(joins) => {
                join(&mut next, joins)?;
                rebalance_groups(&mut next);
            }
            CtlOp::Leave(gids) => {
                leave(&mut next, gids)?;
                rebalance_groups(&mut next);
            }
            &CtlOp::Move { start, end, gid } => {
                if end as usize >= SLOTS {
                    return Err(CtlError::SlotOutOfRange);
                }
                if start > end {
                    return Err(CtlError::InvalidSlotRange);
                }
                check_joined(&next, gid)?;
                next.slots[start as usize..=end as usize].fill(gid);
            }
            CtlOp::Rebalance => rebalance_groups(&mut next),
        }
        next.num = self.latest_num() + 1;
        self.configs.push(next);
        Ok(self.latest_num())
    }
}

/// Validates every group of the op (the first problem in op order wins), then adds them.
fn join(cfg: &mut Config, joins: &[(Gid, Vec<NodeInfo>)]) -> Result<(), CtlError> {
    if joins.is_empty() {
        return Err(CtlError::NoGroups);
    }
    let mut node_gid: BTreeMap<NodeId, Gid> = cfg
        .groups
        .iter()
        .flat_map(|(&g, nodes)| nodes.iter().map(move |n| (n.id, g)))
        .collect();
    let mut seen = BTreeSet::new();
    for (gid, nodes) in joins {
        let gid = *gid;
        if gid == 0 {
            return Err(CtlError::ReservedGroup);
        }
        if cfg.groups.contains_key(&gid) {
            return Err(CtlError::AlreadyJoined(gid));
        }
        if !seen.insert(gid) {
            return Err(CtlError::DuplicateGroup(gid));
        }
        if nodes.is_empty() {
            return Err(CtlError::NoNodes(gid));
        }
        for n in nodes {
            if let Some(&other) = node_gid.get(&n.id) {
                return Err(CtlError::NodeInUse {
                    node: n.id,
                    gid: other,
                });
            }
            node_gid.insert(n.id, gid);
        }
    }
    cfg.groups
        .extend(joins.iter().map(|(g, nodes)| (*g, nodes.clone())));
    Ok(())
}

fn leave(cfg: &mut Config, gids: &[Gid]) -> Result<(), CtlError> {
    if gids.is_empty() {
        return Err(CtlError::NoGroups);
    }
    let mut seen = BTreeSet::new();
    for &gid in gids {
        check_joined(cfg, gid)?;
        if !seen.insert(gid) {
            return Err(CtlError::DuplicateGroup(gid));
        }
    }
    for gid in gids {
        cfg.groups.remove(gid);
    }
    Ok(())
}

fn check_joined(cfg: &Config, gid: Gid) -> Result<(), CtlError> {
    match gid {
        0 => Err(CtlError::ReservedGroup),
        g if !cfg.groups.contains_key(&g) => Err(CtlError::UnknownGroup(g)),
        _ => Ok(()),
    }
}

fn rebalance_groups(cfg: &mut Config) {
    let groups: BTreeSet<Gid> = cfg.groups.keys().copied().collect();
    rebalance(&mut cfg.slots, &groups);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::NodeAddr;

    fn node(id: NodeId) -> NodeInfo {
        NodeInfo {
            id,
            addr: NodeAddr {
                host: "10.0.0.1".into(),
                client_port: 6379,
                bus_port: 16379,
            },
        }
    }

    fn join(gids: &[Gid]) -> CtlOp {
        CtlOp::Join(gids.iter().map(|&g| (g, vec![node(g * 10)])).collect())
    }

    fn balanced(c: &Config) -> bool {
        let counts = c.slot_counts();
        let (min, max) = (counts.values().min(), counts.values().max());
        let assigned = c.slots.iter().all(|g| c.groups.contains_key(g));
        match (min, max) {
            (Some(min), Some(max)) => max - min <= 1 && assigned,
            _ => c.slots.iter().all(|&g| g == 0),
        }
    }

    /// Checks that `op` fails with `text` and leaves the state untouched.
    fn refused(ctl: &mut ControllerState, op: CtlOp, text: &str) {
        let before = ctl.clone();
        let err = ctl.apply(&op).unwrap_err();
        assert_eq!(err.to_string(), text, "{op:?}");
        assert_eq!(*ctl, before, "{op:?} changed the state");
    }

    #[test]
    fn starts_at_the_empty_config() {
        let ctl = ControllerState::default();
        assert_eq!(ctl.latest(), Config::empty());
        assert_eq!(ctl.latest_num(), 0);
        assert_eq!(ctl.query(None), Some(Config::empty()));
        assert_eq!(ctl.query(Some(0)), Some(Config::empty()));
        assert_eq!(ctl.query(Some(1)), None);
        assert_eq!(ctl.query(Some(u64::MAX)), None);
    }

    #[test]
    fn every_op_appends_one_numbered_config() {
        let mut ctl = ControllerState::default();
        assert_eq!(ctl.apply(&join(&[1])), Ok(1));
        assert_eq!(ctl.apply(&join(&[2, 3])), Ok(2));
        assert_eq!(ctl.apply(&CtlOp::Rebalance), Ok(3), "nothing to move");
        assert_eq!(
            ctl.query(Some(3)).unwrap().slots,
            ctl.query(Some(2)).unwrap().slots
        );
        let mv = CtlOp::Move {
            start: 0,
            end: 9,
            gid: 2,
        };
        assert_eq!(ctl.apply(&mv), Ok(4));
        assert_eq!(ctl.apply(&CtlOp::Leave(vec![1])), Ok(5));
        assert_eq!(ctl.latest_num(), 5);
        for n in 0..=5 {
            assert_eq!(ctl.query(Some(n)).unwrap().num, n);
        }
        assert_eq!(ctl.query(None), ctl.query(Some(5)));
        assert_eq!(ctl.query(Some(6)), None);
        let one = ctl.query(Some(1)).unwrap();
        assert!(one.slots.iter().all(|&g| g == 1));
        assert_eq!(one.nodes(1), &[node(10)][..]);
    }

    #[test]
    fn join_rules_and_errors() {
        let mut ctl = ControllerState::default();
        ctl.apply(&join(&[2])).unwrap();
        refused(
            &mut ctl,
            join(&[0]),
            "ERR group 0 is reserved for the controller",
        );
        refused(&mut ctl, join(&[2]), "ERR group 2 has already joined");
        refused(
            &mut ctl,
            join(&[3, 3]),
            "ERR group 3 is listed more than once",
        );
        refused(
            &mut ctl,
            CtlOp::Join(vec![(3, vec![])]),
            "ERR group 3 needs at least one node",
        );
        refused(
            &mut ctl,
            CtlOp::Join(vec![(3, vec![node(4), node(20)])]),
            "ERR node 20 is already in group 2",
        );
        refused(
            &mut ctl,
            CtlOp::Join(vec![(3, vec![node(4)]), (5, vec![node(4)])]),
            "ERR node 4 is already in group 3",
        );
        refused(
            &mut ctl,
            CtlOp::Join(vec![(3, vec![node(4), node(4)])]),
            "ERR node 4 is already in group 3",
        );
        refused(&mut ctl, CtlOp::Join(vec![]), "ERR no groups given");
        // A later bad group refuses the whole op, earlier good ones included.
        refused(
            &mut ctl,
            CtlOp::Join(vec![(3, vec![node(30)]), (2, vec![node(40)])]),
            "ERR group 2 has already joined",
        );
        assert_eq!(ctl.latest_num(), 1);
        ctl.apply(&CtlOp::Join(vec![(3, vec![node(30), node(31)])]))
            .unwrap();
        let c = ctl.latest();
        assert_eq!(c.group_of_node(31), Some(3));
        assert_eq!(c.slot_counts(), BTreeMap::from([(2, 8192), (3, 8192)]));
    }

    #[test]
    fn leave_rules_and_errors() {
        let mut ctl = ControllerState::default();
        ctl.apply(&join(&[1, 2, 3])).unwrap();
        refused(&mut ctl, CtlOp::Leave(vec![7]), "ERR unknown group 7");
        refused(
            &mut ctl,
            CtlOp::Leave(vec![0]),
            "ERR group 0 is reserved for the controller",
        );
        refused(
            &mut ctl,
            CtlOp::Leave(vec![1, 1]),
            "ERR group 1 is listed more than once",
        );
        refused(&mut ctl, CtlOp::Leave(vec![1, 9]), "ERR unknown group 9");
        refused(&mut ctl, CtlOp::Leave(vec![]), "ERR no groups given");
        let before = ctl.latest();
        ctl.apply(&CtlOp::Leave(vec![2])).unwrap();
        let after = ctl.latest();
        assert_eq!(after.groups.keys().copied().collect::<Vec<_>>(), [1, 3]);
        for s in 0..SLOTS {
            if before.slots[s] != 2 {
                assert_eq!(after.slots[s], before.slots[s], "slot {s}");
            }
        }
        assert!(balanced(&after));
        // The node ids of a group that left may join again.
        ctl.apply(&CtlOp::Join(vec![(4, vec![node(20)])])).unwrap();
        ctl.apply(&CtlOp::Leave(vec![1, 3, 4])).unwrap();
        assert_eq!(ctl.latest().slots, Config::empty().slots);
        assert!(ctl.latest().groups.is_empty());
    }

    #[test]
    fn move_rules_and_errors() {
        let mut ctl = ControllerState::default();
        ctl.apply(&join(&[1, 2])).unwrap();
        let mv = |start, end, gid| CtlOp::Move { start, end, gid };
        refused(&mut ctl, mv(0, 16384, 1), "ERR slot out of range");
        refused(&mut ctl, mv(16384, 16384, 1), "ERR slot out of range");
        refused(&mut ctl, mv(10, 9, 1), "ERR invalid slot range");
        refused(&mut ctl, mv(0, 9, 3), "ERR unknown group 3");
        refused(
            &mut ctl,
            mv(0, 9, 0),
            "ERR group 0 is reserved for the controller",
        );
        ctl.apply(&mv(0, 9, 2)).unwrap();
        ctl.apply(&mv(16383, 16383, 1)).unwrap();
        let c = ctl.latest();
        assert_eq!(
            c.ranges(),
            vec![
                (0, 9, 2),
                (10, 8191, 1),
                (8192, 16382, 2),
                (16383, 16383, 1)
            ],
            "moved as asked, not rebalanced"
        );
        ctl.apply(&CtlOp::Rebalance).unwrap();
        assert!(balanced(&ctl.latest()));
    }

    #[test]
    fn joins_and_leaves_keep_every_config_balanced() {
        let mut ctl = ControllerState::default();
        let ops = [
            join(&[1]),
            join(&[2]),
            join(&[3, 4]),
            CtlOp::Leave(vec![1]),
            join(&[5, 6, 7]),
            CtlOp::Leave(vec![3, 6]),
            join(&[8]),
            CtlOp::Leave(vec![2, 4, 5, 7, 8]),
            join(&[9]),
        ];
        for op in &ops {
            ctl.apply(op).unwrap();
        }
        assert_eq!(ctl.latest_num(), ops.len() as u64);
        for n in 0..=ctl.latest_num() {
            let c = ctl.query(Some(n)).unwrap();
            assert!(balanced(&c), "config {n}: {:?}", c.slot_counts());
        }
        assert!(ctl.latest().slots.iter().all(|&g| g == 9));
    }

    #[test]
    fn join_order_within_an_op_does_not_matter() {
        let (mut a, mut b) = (ControllerState::default(), ControllerState::default());
        a.apply(&join(&[1, 2, 3])).unwrap();
        b.apply(&join(&[3, 1, 2])).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn state_round_trips_through_postcard() {
        let mut ctl = ControllerState::default();
        ctl.apply(&join(&[1, 2, 3])).unwrap();
        ctl.apply(&CtlOp::Leave(vec![2])).unwrap();
        let bytes = crate::codec::to_vec(&ctl).unwrap();
        assert_eq!(
            postcard::from_bytes::<ControllerState>(&bytes).unwrap(),
            ctl
        );
        let op = join(&[4]);
        let bytes = crate::codec::to_vec(&op).unwrap();
        assert_eq!(postcard::from_bytes::<CtlOp>(&bytes).unwrap(), op);
    }
}
