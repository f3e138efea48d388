//! A shard group's view of slot ownership while it follows the controller's configurations,
//! as pure, deterministic logic: the state machine applies these transitions from log
//! entries, so every replica agrees on which slots it serves.
//!
//! A group runs at one configuration `N` at a time. Moving to `N+1` (only when every slot
//! is settled) marks slots it loses `offloading` (no longer served, data kept for the new
//! owner to pull) and slots it gains `pulling` (not served until their data is installed).
//! An installed slot serves at once and stays `unacked` until the old owner confirms it has
//! dropped its copy; only then is it settled on both sides. Every step names the
//! configuration number it belongs to, so a retried or late step is a no-op.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::config::{Config, NodeInfo};
use crate::raft::Gid;

/// What a group may do with a command on a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Serve,
    /// Owned by another group (0: by none).
    Moved(Gid),
    /// Arriving here; its data is not installed yet.
    TryAgain,
}

/// Migration figures for INFO and CLUSTER QUERY.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Keys and bytes installed from other groups, all time.
    pub keys_in: u64,
    pub bytes_in: u64,
    /// Keys deleted after their slots left, all time.
    pub keys_dropped: u64,
    /// Slots installed and slots dropped, all time.
    pub slots_in: u64,
    pub slots_out: u64,
}

/// Slot ownership of one shard group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTable {
    pub gid: Gid,
    pub config: Config,
    /// Slot → the group it is being pulled from.
    pub pulling: BTreeMap<u16, Gid>,
    /// Slot → the group that will pull it from here.
    pub offloading: BTreeMap<u16, Gid>,
    /// Installed slot → the group that still holds the old copy and must drop it.
    pub unacked: BTreeMap<u16, Gid>,
    /// The nodes of the groups slots come from, as of the previous configuration (a group
    /// that left is gone from the current one).
    pub sources: BTreeMap<Gid, Vec<NodeInfo>>,
    /// Slots dropped here whose data is still being deleted, a bounded batch per log
    /// entry so that no apply stalls the group (does not hold back the next config).
    #[serde(default)]
    pub purging: BTreeSet<u16>,
    /// The last storage key purged so far in the first purging slot: the next batch
    /// starts after it instead of scanning past the deletions of the earlier ones.
    #[serde(default)]
    pub purge_cursor: Option<Vec<u8>>,
    pub progress: Progress,
}

/// The slots a group serves, as a bitmap: every command's ownership check (on the leader
/// when it is proposed or read, on every replica when it is applied) reads 2 KiB instead
/// of the configuration's 128 KiB slot table, a cache miss per command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served(Box<[u64; 256]>);

impl Served {
    /// Every slot: a standalone group (no slot table).
    pub fn all() -> Served {
        Served(Box::new([u64::MAX; 256]))
    }

    pub fn contains(&self, slot: u16) -> bool {
        let s = usize::from(slot) % 16384;
        self.0[s / 64] & (1 << (s % 64)) != 0
    }
}

impl SlotTable {
    /// The slots this table serves ([`Access::Serve`]).
    pub fn served(&self) -> Served {
        let mut bits = Box::new([0u64; 256]);
        for slot in 0..16384u16 {
            if self.access(slot) == Access::Serve {
                bits[usize::from(slot) / 64] |= 1 << (slot % 64);
            }
        }
        Served(bits)
    }

    /// A group at configuration 0: owns nothing.
    pub fn new(gid: Gid) -> SlotTable {
        SlotTable {
            gid,
            config: Config::empty(),
            pulling: BTreeMap::new(),
            offloading: BTreeMap::new(),
            unacked: BTreeMap::new(),
            sources: BTreeMap::new(),
            purging: BTreeSet::new(),
            purge_cursor: None,
            progress: Progress::default(),
        }
    }

    pub fn access(&self, slot: u16) -> Access {
        let owner = self.config.owner(slot);
        if owner != self.gid {
            Access::Moved(owner)
        } else if self.pulling.contains_key(&slot) {
            Access::TryAgain
        } else {
            Access::Serve
        }
    }

    /// Nothing in flight: the group may move to the next configuration.
    pub fn settled(&self) -> bool {
        self.pulling.is_empty() && self.offloading.is_empty() && self.unacked.is_empty()
    }

    /// Moves to `next` if it is the very next configuration and every slot is settled.
    /// Returns the slots to delete at once (owned here before and by nobody now, or
    /// served here again straight from unassigned while old data awaits its purge), or
    /// None when the step does not apply.
    pub fn advance(&mut self, next: &Config) -> Option<Vec<u16>> {
        if next.num != self.config.num + 1 || !self.settled() {
            return None;
        }
        let mut orphaned = Vec::new();
        for (slot, (&old, &new)) in self.config.slots.iter().zip(&next.slots).enumerate() {
            let slot = slot as u16;
            if old == new {
                continue;
            }
            if old == self.gid {
                if new == 0 {
                    orphaned.push(slot);
                } else {
                    self.offloading.insert(slot, new);
                }
            } else if new == self.gid {
                // Leftovers of an earlier stay must go before the slot serves: a pull
                // clears the slot when it starts; a slot from nobody is cleared now.
                if self.purging.remove(&slot) && old == 0 {
                    orphaned.push(slot);
                }
                if old != 0 {
                    self.pulling.insert(slot, old);
                }
            }
        }
        self.sources = self
            .pulling
            .values()
            .filter_map(|g| Some((*g, self.config.groups.get(g)?.clone())))
            .collect();
        self.config = next.clone();
        Some(orphaned)
    }

    /// Whether data for `slot` may be installed as part of configuration `num`.
    pub fn may_fill(&self, num: u64, slot: u16) -> bool {
        num == self.config.num && self.pulling.contains_key(&slot)
    }

    /// Marks pulled slots installed (they serve from now on); returns those that were.
    pub fn installed(&mut self, num: u64, slots: &[u16]) -> Vec<u16> {
        if num != self.config.num {
            return Vec::new();
        }
        let mut done = Vec::new();
        for s in slots {
            if let Some(from) = self.pulling.remove(s) {
                self.unacked.insert(*s, from);
                self.progress.slots_in += 1;
                done.push(*s);
            }
        }
        done
    }

    /// The new owner has installed these slots of configuration `num`: returns those whose
    /// data must now be deleted here (the rest were dropped already or never offloaded);
    /// they are `purging` until it is.
    pub fn drop_offloaded(&mut self, num: u64, slots: &[u16]) -> Vec<u16> {
        if num != self.config.num {
            return Vec::new();
        }
        let dropped: Vec<u16> = slots
            .iter()
            .filter(|s| self.offloading.remove(s).is_some())
            .copied()
            .collect();
        self.progress.slots_out += dropped.len() as u64;
        self.purging.extend(dropped.iter().copied());
        dropped
    }

    /// The old owner confirmed it dropped these slots of configuration `num`.
    pub fn acked(&mut self, num: u64, slots: &[u16]) {
        if num != self.config.num {
            return;
        }
        for s in slots {
            self.unacked.remove(s);
        }
        if self.unacked.is_empty() && self.pulling.is_empty() {
            self.sources.clear();
        }
    }

    /// Pulling slots grouped by the group they come from.
    pub fn pulls(&self) -> BTreeMap<Gid, Vec<u16>> {
        group_by_gid(&self.pulling)
    }

    /// Installed slots whose old owner has not confirmed the drop, by that owner.
    pub fn unacked_by_source(&self) -> BTreeMap<Gid, Vec<u16>> {
        group_by_gid(&self.unacked)
    }

    /// Where to reach group `gid`: the current configuration, else the previous one.
    pub fn nodes_of(&self, gid: Gid) -> &[NodeInfo] {
        match self.config.groups.get(&gid) {
            Some(n) => n,
            None => self.sources.get(&gid).map(|n| &n[..]).unwrap_or(&[]),
        }
    }
}

fn group_by_gid(m: &BTreeMap<u16, Gid>) -> BTreeMap<Gid, Vec<u16>> {
    let mut out: BTreeMap<Gid, Vec<u16>> = BTreeMap::new();
    for (s, g) in m {
        out.entry(*g).or_default().push(*s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ControllerState, CtlOp};

    use crate::cluster::config::test_node as node;

    fn join(ctl: &mut ControllerState, gid: Gid) -> Config {
        ctl.apply(&CtlOp::Join(vec![(gid, vec![node(gid * 10)])]))
            .unwrap();
        ctl.latest()
    }

    #[test]
    fn first_config_serves_unassigned_slots_at_once() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let mut t = SlotTable::new(1);
        assert_eq!(t.access(5), Access::Moved(0));
        assert_eq!(t.advance(&c1), Some(vec![]));
        assert!(t.settled());
        assert_eq!(t.access(5), Access::Serve);
        assert_eq!(t.access(16383), Access::Serve);
    }

    #[test]
    fn only_the_next_config_applies_and_only_when_settled() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        let mut t = SlotTable::new(2);
        assert_eq!(t.advance(&c2), None, "skipping config 1");
        t.advance(&c1).unwrap();
        t.advance(&c2).unwrap();
        assert!(!t.settled());
        let c3 = join(&mut ctl, 3);
        assert_eq!(t.advance(&c3), None, "unsettled");
        assert_eq!(t.config.num, 2);
    }

    #[test]
    fn a_moved_slot_goes_through_pull_install_drop_ack() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        let (mut a, mut b) = (SlotTable::new(1), SlotTable::new(2));
        for t in [&mut a, &mut b] {
            t.advance(&c1).unwrap();
            t.advance(&c2).unwrap();
        }
        let moved = c2.slots_of(2);
        assert_eq!(moved.len(), 8192);
        let s = moved[0];
        assert_eq!(a.access(s), Access::Moved(2));
        assert_eq!(b.access(s), Access::TryAgain);
        assert_eq!(b.pulls(), BTreeMap::from([(1, moved.clone())]));
        assert_eq!(b.nodes_of(1), &[node(10)][..]);
        assert!(b.may_fill(2, s));
        assert!(!b.may_fill(1, s), "a step of another config");
        assert_eq!(b.installed(2, &[s]), vec![s]);
        assert_eq!(b.installed(2, &[s]), Vec::<u16>::new(), "idempotent");
        assert_eq!(b.access(s), Access::Serve);
        assert!(!b.may_fill(2, s), "installed slots take no more data");
        assert_eq!(a.drop_offloaded(2, &[s]), vec![s]);
        assert_eq!(a.drop_offloaded(2, &[s]), Vec::<u16>::new(), "idempotent");
        b.acked(2, &[s]);
        assert!(!b.unacked.contains_key(&s));
        // The rest.
        let rest = &moved[1..];
        b.installed(2, rest);
        a.drop_offloaded(2, rest);
        b.acked(2, rest);
        assert!(a.settled() && b.settled());
        assert_eq!(b.progress.slots_in, 8192);
        assert_eq!(a.progress.slots_out, 8192);
    }

    #[test]
    fn the_served_bitmap_agrees_with_access_through_a_move() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        let (mut a, mut b) = (SlotTable::new(1), SlotTable::new(2));
        let agree = |t: &SlotTable| {
            let served = t.served();
            (0..16384u16).all(|s| served.contains(s) == (t.access(s) == Access::Serve))
        };
        assert!(agree(&a) && !(0..16384u16).any(|s| a.served().contains(s)));
        for t in [&mut a, &mut b] {
            t.advance(&c1).unwrap();
            assert!(agree(t));
            t.advance(&c2).unwrap();
            assert!(agree(t));
        }
        // b is pulling its half (TRYAGAIN: not served), a no longer serves it (MOVED).
        let moved = c2.slots_of(2);
        assert!(!b.served().contains(moved[0]) && !a.served().contains(moved[0]));
        b.installed(2, &moved[..1]);
        assert!(agree(&b) && b.served().contains(moved[0]));
        assert!(Served::all().contains(0) && Served::all().contains(16383));
    }

    #[test]
    fn slots_left_to_nobody_are_deleted_at_once() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        ctl.apply(&CtlOp::Leave(vec![1])).unwrap();
        let c2 = ctl.latest();
        let mut t = SlotTable::new(1);
        t.advance(&c1).unwrap();
        let orphaned = t.advance(&c2).unwrap();
        assert_eq!(orphaned.len(), 16384);
        assert!(t.settled());
    }

    #[test]
    fn a_group_that_left_is_still_reachable_for_pulls() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        ctl.apply(&CtlOp::Leave(vec![1])).unwrap();
        let c3 = ctl.latest();
        let mut b = SlotTable::new(2);
        b.advance(&c1).unwrap();
        b.advance(&c2).unwrap();
        let all: Vec<u16> = b.pulling.keys().copied().collect();
        b.installed(2, &all);
        b.acked(2, &all);
        b.advance(&c3).unwrap();
        assert_eq!(b.pulling.len(), 8192);
        assert_eq!(b.nodes_of(1), &[node(10)][..]);
        assert!(!b.config.groups.contains_key(&1));
    }

    #[test]
    fn dropped_slots_purge_and_leftovers_never_serve() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        let mut a = SlotTable::new(1);
        a.advance(&c1).unwrap();
        a.advance(&c2).unwrap();
        let gone: Vec<u16> = a.offloading.keys().copied().collect();
        a.drop_offloaded(2, &gone);
        assert!(a.settled(), "purging does not hold back the next config");
        assert_eq!(a.purging.len(), gone.len());
        // Group 2 leaves: its slots come back by pull, so the pull's clear removes the
        // leftovers, and the purge must not delete what the pull installs.
        ctl.apply(&CtlOp::Leave(vec![2])).unwrap();
        let c3 = ctl.latest();
        assert_eq!(a.advance(&c3), Some(vec![]));
        assert!(a.purging.is_empty());
        assert_eq!(a.pulling.len(), gone.len());
        // A slot that comes back from nobody is cleared at once instead.
        let mut b = SlotTable::new(1);
        b.config = c2.clone();
        b.purging.insert(gone[0]);
        let mut c4 = c2.clone();
        c4.num = 3;
        c4.slots[gone[0] as usize] = 0;
        b.advance(&c4).unwrap();
        let mut c5 = c4.clone();
        c5.num = 4;
        c5.slots[gone[0] as usize] = 1;
        assert_eq!(b.advance(&c5), Some(vec![gone[0]]));
        assert!(b.purging.is_empty());
        assert_eq!(b.access(gone[0]), Access::Serve);
    }

    #[test]
    fn steps_of_an_old_config_change_nothing() {
        let mut ctl = ControllerState::default();
        let c1 = join(&mut ctl, 1);
        let c2 = join(&mut ctl, 2);
        let mut a = SlotTable::new(1);
        a.advance(&c1).unwrap();
        a.advance(&c2).unwrap();
        let before = a.clone();
        let s = *a.offloading.keys().next().unwrap();
        assert!(a.drop_offloaded(1, &[s]).is_empty());
        a.acked(1, &[s]);
        assert!(a.installed(1, &[s]).is_empty());
        assert_eq!(a, before);
    }
}
