//! Even out slot ownership across data groups while moving as few slots as possible:
//! every moved slot means copying its keys to another group, so the controller must never
//! reshuffle slots that could stay where they are.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::raft::Gid;

/// Reassigns `slots` (slot → gid, 0 = unassigned) so that every slot belongs to one of
/// `groups` and the groups' slot counts differ by at most 1. With no groups every slot
/// becomes unassigned. Gid 0 in `groups` is ignored: it means "unassigned".
///
/// Rules, chosen so the result depends only on the inputs (every replica of the
/// controller computes the same configuration) and moves the fewest slots:
/// - Targets: with `n` groups each gets `len / n`, and `len % n` of them one more. The
///   "+1" goes to the groups currently holding the most slots (ties: lower gid first),
///   since a group above the base target then keeps one more of its own slots.
/// - Slots that must move: those owned by a gid not in `groups` (0 included), and the
///   excess of each group above its target, taken from its highest slot numbers so what
///   it keeps stays low and contiguous. Groups at or below target keep all their slots.
/// - Freed slots, lowest first, fill the groups below target in gid order.
pub fn rebalance(slots: &mut [Gid], groups: &BTreeSet<Gid>) {
    let mut counts: BTreeMap<Gid, usize> = groups
        .iter()
        .filter(|&&g| g != 0)
        .map(|&g| (g, 0))
        .collect();
    if counts.is_empty() {
        slots.fill(0);
        return;
    }
    for g in slots.iter() {
        if let Some(c) = counts.get_mut(g) {
            *c += 1;
        }
    }
    let targets = targets(&counts, slots.len());

    let mut excess: BTreeMap<Gid, usize> = counts
        .iter()
        .filter(|&(g, &c)| c > targets[g])
        .map(|(&g, &c)| (g, c - targets[&g]))
        .collect();
    let mut free = Vec::new();
    for s in (0..slots.len()).rev() {
        let g = slots[s];
        match excess.get_mut(&g) {
            Some(e) if *e > 0 => {
                *e -= 1;
                free.push(s);
            }
            Some(_) => {}
            None if !counts.contains_key(&g) => free.push(s),
            None => {}
        }
    }
    free.reverse();

    let mut free = free.into_iter();
    for (g, &t) in &targets {
        for _ in counts[g]..t {
            let s = free.next().expect("freed slots match the shortfall");
            slots[s] = *g;
        }
    }
    debug_assert!(free.next().is_none());
}

/// Each group's target count for `total` slots; `counts` holds the current counts.
fn targets(counts: &BTreeMap<Gid, usize>, total: usize) -> BTreeMap<Gid, usize> {
    let (base, extra) = (total / counts.len(), total % counts.len());
    let mut by_size: Vec<(Gid, usize)> = counts.iter().map(|(&g, &c)| (g, c)).collect();
    by_size.sort_by_key(|&(g, c)| (Reverse(c), g));
    by_size
        .into_iter()
        .enumerate()
        .map(|(i, (g, _))| (g, base + usize::from(i < extra)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SLOTS;

    fn set(gids: &[Gid]) -> BTreeSet<Gid> {
        gids.iter().copied().collect()
    }

    fn counts(slots: &[Gid], groups: &BTreeSet<Gid>) -> BTreeMap<Gid, usize> {
        let mut c: BTreeMap<Gid, usize> = groups.iter().map(|&g| (g, 0)).collect();
        for g in slots {
            if let Some(n) = c.get_mut(g) {
                *n += 1;
            }
        }
        c
    }

    fn moved(a: &[Gid], b: &[Gid]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    }

    /// The fewest moves any balanced result needs, computed independently of `targets`:
    /// every orphan moves, every group gives up what it has above the base target, except
    /// that up to `len % n` groups above the base may keep one more.
    fn min_moves(before: &[Gid], groups: &BTreeSet<Gid>) -> usize {
        if groups.is_empty() {
            return before.iter().filter(|&&g| g != 0).count();
        }
        let c = counts(before, groups);
        let orphans = before.iter().filter(|g| !groups.contains(g)).count();
        let (base, extra) = (before.len() / groups.len(), before.len() % groups.len());
        let above: usize = c.values().map(|&n| n.saturating_sub(base)).sum();
        let can_keep = c.values().filter(|&&n| n > base).count().min(extra);
        orphans + above - can_keep
    }

    /// Runs `rebalance` and checks every invariant; returns the result.
    fn check(before: &[Gid], groups: &BTreeSet<Gid>) -> Vec<Gid> {
        let mut after = before.to_vec();
        rebalance(&mut after, groups);
        if groups.is_empty() {
            assert!(after.iter().all(|&g| g == 0));
            return after;
        }
        assert!(after.iter().all(|g| groups.contains(g)), "orphan left");
        let (cb, ca) = (counts(before, groups), counts(&after, groups));
        let (min, max) = (ca.values().min().unwrap(), ca.values().max().unwrap());
        assert!(max - min <= 1, "unbalanced: {ca:?}");
        assert_eq!(moved(before, &after), min_moves(before, groups));
        for (g, &n) in &cb {
            let kept: Vec<usize> = (0..before.len())
                .filter(|&s| before[s] == *g && after[s] == *g)
                .collect();
            let had: Vec<usize> = (0..before.len()).filter(|&s| before[s] == *g).collect();
            if ca[g] >= n {
                assert_eq!(kept, had, "group {g} at or below target lost slots");
            } else {
                assert_eq!(kept, had[..ca[g]], "group {g} must give away its highest");
            }
        }
        let mut again = after.clone();
        rebalance(&mut again, groups);
        assert_eq!(again, after, "not idempotent");
        after
    }

    /// Tiny deterministic generator (no dependency), constants from Knuth's MMIX.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
    }

    #[test]
    fn no_groups_unassigns_everything() {
        let mut slots: Vec<Gid> = (0..SLOTS as u64).map(|s| s % 4).collect();
        rebalance(&mut slots, &BTreeSet::new());
        assert!(slots.iter().all(|&g| g == 0));
        let mut slots = vec![0; SLOTS];
        rebalance(&mut slots, &set(&[0]));
        assert!(slots.iter().all(|&g| g == 0), "gid 0 is not a group");
    }

    #[test]
    fn one_group_gets_every_slot() {
        let after = check(&vec![0; SLOTS], &set(&[7]));
        assert!(after.iter().all(|&g| g == 7));
    }

    #[test]
    fn joins_move_only_what_the_new_group_needs() {
        let mut slots = vec![0; SLOTS];
        let mut groups = BTreeSet::new();
        for g in 1..=10u64 {
            groups.insert(g);
            let after = check(&slots, &groups);
            let got = counts(&after, &groups)[&g];
            assert_eq!(moved(&slots, &after), got, "only the joiner's slots move");
            assert_eq!(got, SLOTS / g as usize, "join #{g}");
            slots = after;
        }
        // The second group takes the upper half, the third the top of each.
        let mut two = vec![0; SLOTS];
        rebalance(&mut two, &set(&[1]));
        rebalance(&mut two, &set(&[1, 2]));
        assert!(two[..8192].iter().all(|&g| g == 1) && two[8192..].iter().all(|&g| g == 2));
        let three = check(&two, &set(&[1, 2, 3]));
        assert_eq!(counts(&three, &set(&[1, 2, 3]))[&3], 5461);
        assert_eq!(three[8192 - 2730..8192], [3; 2730]);
        assert_eq!(three[SLOTS - 2731..], [3; 2731]);
    }

    #[test]
    fn leave_moves_only_the_leavers_slots() {
        let mut slots = vec![0; SLOTS];
        rebalance(&mut slots, &set(&[1, 2, 3, 4, 5]));
        for leave in [3u64, 1, 5] {
            let before = slots.clone();
            let mut groups: BTreeSet<Gid> = before.iter().copied().collect();
            groups.remove(&leave);
            slots = check(&before, &groups);
            for s in 0..SLOTS {
                if before[s] != leave {
                    assert_eq!(slots[s], before[s], "slot {s} moved but was not {leave}'s");
                }
            }
        }
    }

    #[test]
    fn unassigned_and_orphaned_slots_are_filled_in_gid_order() {
        let mut before = vec![9; SLOTS];
        before[..100].fill(0);
        let after = check(&before, &set(&[2, 1]));
        assert!(after[..8192].iter().all(|&g| g == 1));
        assert!(after[8192..].iter().all(|&g| g == 2));
    }

    #[test]
    fn the_extra_slot_goes_to_the_fullest_group() {
        // 3 groups: 16384 = 3 * 5461 + 1. Group 3 holds the most, so it keeps 5462.
        let mut before = vec![0; SLOTS];
        before[..5461].fill(1);
        before[5461..10922].fill(2);
        before[10922..].fill(3);
        let after = check(&before, &set(&[1, 2, 3]));
        assert_eq!(after, before, "already balanced: nothing moves");
        // A tie goes to the lower gid.
        let after = check(&vec![0; SLOTS], &set(&[1, 2, 3]));
        assert_eq!(counts(&after, &set(&[1, 2, 3]))[&1], 5462);
    }

    #[test]
    fn insertion_order_of_groups_does_not_matter() {
        let mut base: Vec<Gid> = (0..SLOTS as u64).map(|s| s % 5).collect();
        base[..3000].fill(2);
        let orders: [&[Gid]; 3] = [&[1, 2, 3, 6], &[6, 3, 2, 1], &[3, 1, 6, 2]];
        let results: Vec<Vec<Gid>> = orders
            .iter()
            .map(|o| {
                let mut groups = BTreeSet::new();
                for g in o.iter() {
                    groups.insert(*g);
                }
                check(&base, &groups)
            })
            .collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn random_scenarios_keep_the_invariants() {
        let mut rng = Lcg(0x5eed);
        for round in 0..200 {
            let universe = 1 + rng.next(12);
            let groups: BTreeSet<Gid> = (1..=universe).filter(|_| rng.next(3) > 0).collect();
            let mut before = vec![0; SLOTS];
            match round % 4 {
                // Scattered owners, some unknown, some unassigned.
                0 => before.iter_mut().for_each(|g| *g = rng.next(universe + 2)),
                // Runs of one owner, as real configurations look.
                1 => {
                    let mut g = rng.next(universe + 2);
                    for slot in before.iter_mut() {
                        if rng.next(700) == 0 {
                            g = rng.next(universe + 2);
                        }
                        *slot = g;
                    }
                }
                // Balanced over another set of groups, then the set changes.
                2 => {
                    let prev: BTreeSet<Gid> = (1..=universe).filter(|_| rng.next(2) == 0).collect();
                    rebalance(&mut before, &prev);
                }
                // Lopsided: one group holds almost everything.
                _ => {
                    before.fill(1 + rng.next(universe));
                    let n = rng.next(SLOTS as u64) as usize;
                    before[..n].fill(0);
                }
            }
            check(&before, &groups);
        }
    }
}
