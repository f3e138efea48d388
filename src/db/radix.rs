//! A persistent map from 64-bit hashes to values, in hash order: a slot's rows.
//!
//! A radix tree on the hash's bits, most significant first, 16 ways per level, with leaves
//! of up to 16 entries. Hashes are uniform, so the tree stays balanced by itself, and a
//! lookup reads one 16-byte child per level and a leaf's hashes: about log16(n / 8) + 3
//! cache lines. imbl's B-tree, which held the rows before, binary-searches every level
//! and reads each node's lengths apart from its keys (12–15 lines for a slot of 33k rows;
//! 29% of a GET's CPU at a node of `redis-benchmark --cluster`, whose keys per node share
//! one hash tag).
//!
//! What the keyspace needs of it, and what a general-purpose crate gave no better:
//! - O(1) clones that share every node (snapshots; a slot copied for a migration's build),
//!   a write copying only the nodes on its path that are shared;
//! - iteration in hash order from any hash (SCAN cursors, migration chunks that resume
//!   after a key).

use std::ops::Bound;

use arrayvec::ArrayVec;
use triomphe::{Arc, ThinArc};

/// Bits of the hash per level.
const BITS: u32 = 4;
const FAN: usize = 1 << BITS;
/// Most entries of a leaf. A full leaf splits into a branch; a branch whose leaves hold
/// at most `LEAF / 2` entries in all becomes one leaf again.
const LEAF: usize = 16;

/// See the module doc.
pub struct RadixMap<V> {
    root: Node<V>,
}

enum Node<V> {
    Empty,
    Leaf(Leaf<V>),
    Branch(Arc<Branch<V>>),
}

/// Entries in hash order, in one allocation of their size behind a thin pointer (a split
/// leaves its kids a few entries each: fixed-size leaves made rows take 17% more memory).
/// Every hash of a leaf at depth d shares its first d digits, so a leaf at the last level
/// holds at most 16 hashes and never has to split.
type Leaf<V> = ThinArc<(), (u64, V)>;

/// A leaf's entries on their way to a new leaf: one more than a leaf holds.
type Entries<V> = ArrayVec<(u64, V), { LEAF + 1 }>;

/// `kids[i]` holds the hashes whose digit at this depth is `i`.
#[derive(Clone)]
struct Branch<V> {
    kids: [Node<V>; FAN],
}

impl<V> Clone for Node<V> {
    fn clone(&self) -> Self {
        match self {
            Node::Empty => Node::Empty,
            Node::Leaf(l) => Node::Leaf(l.clone()),
            Node::Branch(b) => Node::Branch(b.clone()),
        }
    }
}

impl<V> Clone for RadixMap<V> {
    /// O(1): the clone shares every node.
    fn clone(&self) -> Self {
        RadixMap {
            root: self.root.clone(),
        }
    }
}

impl<V> Default for RadixMap<V> {
    fn default() -> Self {
        RadixMap { root: Node::Empty }
    }
}

/// The digit of `hash` that picks a branch's child at `depth` (0: the root).
fn digit(hash: u64, depth: u32) -> usize {
    ((hash >> (64 - BITS * (depth + 1))) & (FAN as u64 - 1)) as usize
}

fn find<V>(leaf: &Leaf<V>, hash: u64) -> Result<usize, usize> {
    leaf.slice.binary_search_by_key(&hash, |e| e.0)
}

/// A leaf's entries, moved out if nothing else holds it (so no value's reference count
/// is touched), cloned otherwise.
fn take_entries<V: Clone + Default>(leaf: &mut Leaf<V>) -> Entries<V> {
    let mut out = Entries::new();
    let moved = leaf.with_arc_mut(|a| match Arc::get_mut(a) {
        Some(a) => {
            for e in a.slice_mut() {
                out.push((e.0, std::mem::take(&mut e.1)));
            }
            true
        }
        None => false,
    });
    if !moved {
        out.extend(leaf.slice.iter().cloned());
    }
    out
}

/// A node of `entries` (in hash order, all sharing their first `depth` digits).
fn build<V: Clone + Default>(entries: Entries<V>, depth: u32) -> Node<V> {
    if entries.is_empty() {
        return Node::Empty;
    }
    if entries.len() <= LEAF {
        return Node::Leaf(ThinArc::from_header_and_iter((), entries.into_iter()));
    }
    let mut groups: [Entries<V>; FAN] = std::array::from_fn(|_| Entries::new());
    for e in entries {
        groups[digit(e.0, depth)].push(e);
    }
    let mut groups = groups.into_iter();
    Node::Branch(Arc::new(Branch {
        kids: std::array::from_fn(|_| build(groups.next().unwrap_or_default(), depth + 1)),
    }))
}

impl<V: Clone + Default> RadixMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, hash: u64) -> Option<&V> {
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return None,
                Node::Leaf(l) => return find(l, hash).ok().map(|i| &l.slice[i].1),
                Node::Branch(b) => {
                    node = &b.kids[digit(hash, depth)];
                    depth += 1;
                }
            }
        }
    }

    /// Runs `f` on the value at `hash`, in place (the nodes on its path that are shared
    /// with a clone are copied first); None if `hash` is not here.
    pub fn update<R>(&mut self, hash: u64, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut node = &mut self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return None,
                Node::Leaf(l) => {
                    let i = find(l, hash).ok()?;
                    return Some(with_value(l, i, f));
                }
                Node::Branch(b) => {
                    node = &mut Arc::make_mut(b).kids[digit(hash, depth)];
                    depth += 1;
                }
            }
        }
    }

    /// Sets `hash`'s value; returns the one it replaced.
    pub fn insert(&mut self, hash: u64, value: V) -> Option<V> {
        insert_in(&mut self.root, hash, value, 0)
    }

    pub fn remove(&mut self, hash: u64) -> Option<V> {
        // Copies no shared node for a hash that is not here.
        self.get(hash)?;
        remove_in(&mut self.root, hash, 0)
    }

    /// The entries from `from` on, in hash order.
    pub fn range(&self, from: Bound<u64>) -> Iter<'_, V> {
        let mut it = Iter {
            stack: ArrayVec::new(),
            leaf: &[],
        };
        let (Bound::Included(hash) | Bound::Excluded(hash)) = from else {
            match &self.root {
                Node::Empty => {}
                Node::Leaf(l) => it.leaf = &l.slice,
                Node::Branch(b) => it.stack.push((b, 0)),
            }
            return it;
        };
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return it,
                Node::Leaf(l) => {
                    let at = l.slice.partition_point(|&(h, _)| match from {
                        Bound::Excluded(_) => h <= hash,
                        _ => h < hash,
                    });
                    it.leaf = &l.slice[at..];
                    return it;
                }
                Node::Branch(b) => {
                    let d = digit(hash, depth);
                    // The kids after `d` hold only larger hashes: they come next.
                    it.stack.push((b, d + 1));
                    node = &b.kids[d];
                    depth += 1;
                }
            }
        }
    }
}

/// Looks up every `(map, hash)` and calls `found(i, value)` for each present one, a level at
/// a time across all of them: the lookups' cache misses are independent loads then, which
/// the processor overlaps, instead of one lookup's chain of misses after another's.
pub fn get_each<'a, V>(lookups: &[(&'a RadixMap<V>, u64)], mut found: impl FnMut(usize, &'a V)) {
    let mut live: Vec<(usize, &'a Node<V>, u32)> = lookups
        .iter()
        .enumerate()
        .map(|(i, (map, _))| (i, &map.root, 0))
        .collect();
    while !live.is_empty() {
        live.retain_mut(|(i, node, depth)| {
            let hash = lookups[*i].1;
            match node {
                Node::Empty => false,
                Node::Leaf(l) => {
                    if let Ok(j) = find(l, hash) {
                        found(*i, &l.slice[j].1);
                    }
                    false
                }
                Node::Branch(b) => {
                    *node = &b.kids[digit(hash, *depth)];
                    *depth += 1;
                    true
                }
            }
        });
    }
}

/// Runs `f` on the value of entry `i` of `leaf`, copying the leaf first if a clone holds it.
fn with_value<V: Clone, R>(leaf: &mut Leaf<V>, i: usize, f: impl FnOnce(&mut V) -> R) -> R {
    if ThinArc::strong_count(leaf) > 1 {
        *leaf = ThinArc::from_header_and_iter((), leaf.slice.iter().cloned());
    }
    leaf.with_arc_mut(|a| {
        let a = Arc::get_mut(a).expect("a leaf that no clone holds");
        f(&mut a.slice_mut()[i].1)
    })
}

fn insert_in<V: Clone + Default>(node: &mut Node<V>, hash: u64, value: V, depth: u32) -> Option<V> {
    match node {
        Node::Empty => {
            *node = build([(hash, value)].into_iter().collect(), depth);
            None
        }
        Node::Leaf(l) => match find(l, hash) {
            Ok(i) => Some(with_value(l, i, |v| std::mem::replace(v, value))),
            Err(at) => {
                let mut entries = take_entries(l);
                entries.insert(at, (hash, value));
                // A full leaf becomes a branch at this depth.
                *node = build(entries, depth);
                None
            }
        },
        Node::Branch(b) => insert_in(
            &mut Arc::make_mut(b).kids[digit(hash, depth)],
            hash,
            value,
            depth + 1,
        ),
    }
}

fn remove_in<V: Clone + Default>(node: &mut Node<V>, hash: u64, depth: u32) -> Option<V> {
    match node {
        Node::Empty => None,
        Node::Leaf(l) => {
            let i = find(l, hash).ok()?;
            let mut entries = take_entries(l);
            let (_, value) = entries.remove(i);
            *node = build(entries, depth);
            Some(value)
        }
        Node::Branch(b) => {
            let b = Arc::make_mut(b);
            let value = remove_in(&mut b.kids[digit(hash, depth)], hash, depth + 1)?;
            if let Some(merged) = b.merged(depth) {
                *node = merged;
            }
            Some(value)
        }
    }
}

impl<V: Clone + Default> Branch<V> {
    /// This branch as one leaf (or nothing), if its kids are leaves with at most
    /// `LEAF / 2` entries in all: a slot that shrank does not keep its levels.
    fn merged(&self, depth: u32) -> Option<Node<V>> {
        let mut n = 0;
        for kid in &self.kids {
            match kid {
                Node::Empty => {}
                Node::Leaf(l) => n += l.slice.len(),
                Node::Branch(_) => return None,
            }
            if n > LEAF / 2 {
                return None;
            }
        }
        let mut entries = Entries::new();
        for kid in &self.kids {
            if let Node::Leaf(l) = kid {
                entries.extend(l.slice.iter().cloned());
            }
        }
        Some(build(entries, depth))
    }
}

/// Entries in hash order (see [`RadixMap::range`]).
pub struct Iter<'a, V> {
    /// Branches being walked, each with the next kid to visit (the root's first).
    stack: ArrayVec<(&'a Branch<V>, usize), 16>,
    /// What is left of the current leaf.
    leaf: &'a [(u64, V)],
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (u64, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(((h, v), rest)) = self.leaf.split_first() {
                self.leaf = rest;
                return Some((*h, v));
            }
            let (b, i) = self.stack.last_mut()?;
            if *i == FAN {
                self.stack.pop();
                continue;
            }
            let b: &'a Branch<V> = b;
            let kid = &b.kids[*i];
            *i += 1;
            match kid {
                Node::Empty => {}
                Node::Leaf(l) => self.leaf = &l.slice,
                Node::Branch(c) => self.stack.push((c, 0)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// xorshift64*, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn depth(node: &Node<u64>) -> usize {
        match node {
            Node::Empty | Node::Leaf(_) => 0,
            Node::Branch(b) => 1 + b.kids.iter().map(depth).max().unwrap_or(0),
        }
    }

    fn check(map: &RadixMap<u64>, model: &BTreeMap<u64, u64>, rng: &mut Rng) {
        assert!(map
            .range(Bound::Unbounded)
            .map(|(h, v)| (h, *v))
            .eq(model.iter().map(|(h, v)| (*h, *v))));
        for _ in 0..20 {
            // Bounds at entries, next to them, and anywhere.
            let at = match model.keys().nth(rng.next() as usize % (model.len() + 1)) {
                Some(&h) => h.wrapping_add(rng.next() % 3).wrapping_sub(1),
                None => rng.next(),
            };
            for from in [Bound::Included(at), Bound::Excluded(at), Bound::Unbounded] {
                let want = model.range((from, Bound::Unbounded)).map(|(h, v)| (*h, *v));
                assert!(map.range(from).map(|(h, v)| (h, *v)).eq(want), "{from:?}");
            }
        }
    }

    #[test]
    fn agrees_with_an_ordered_map_and_clones_stay_as_they_were() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Spread hashes, and hashes that share long prefixes (which split leaves level
        // after level, down to leaves of one hash at the last digit).
        let spaces: [fn(u64) -> u64; 3] = [|r| r, |r| (r % 40) << 2 | 0xabcd << 48, |r| r % 24];
        for (n, space) in spaces.into_iter().enumerate() {
            let mut map = RadixMap::new();
            let mut model = BTreeMap::new();
            let mut frozen: Vec<(RadixMap<u64>, BTreeMap<u64, u64>)> = Vec::new();
            for step in 0..6000u64 {
                let h = space(rng.next());
                match rng.next() % 10 {
                    0..=5 => assert_eq!(map.insert(h, step), model.insert(h, step)),
                    6 | 7 => assert_eq!(map.remove(h), model.remove(&h)),
                    8 => {
                        let done = map.update(h, |v| {
                            *v += 1;
                            *v
                        });
                        let want = model.get_mut(&h).map(|v| {
                            *v += 1;
                            *v
                        });
                        assert_eq!(done, want);
                    }
                    _ => assert_eq!(map.get(h), model.get(&h)),
                }
                if step % 500 == 0 {
                    check(&map, &model, &mut rng);
                    frozen.push((map.clone(), model.clone()));
                }
            }
            // Empty it: every level merges away again.
            for h in model.keys().copied().collect::<Vec<_>>() {
                assert!(map.remove(h).is_some());
            }
            assert!(matches!(map.root, Node::Empty), "space {n}");
            for (map, model) in &frozen {
                check(map, model, &mut rng);
            }
        }
    }

    #[test]
    fn lookups_level_by_level_find_what_one_by_one_finds() {
        let mut rng = Rng(11);
        let maps: Vec<RadixMap<u64>> = [0, 5, 300, 20_000]
            .iter()
            .map(|&n| {
                let mut m = RadixMap::new();
                for i in 0..n {
                    m.insert(rng.next(), i);
                }
                m
            })
            .collect();
        let mut lookups = Vec::new();
        for i in 0..400 {
            let map = &maps[i % maps.len()];
            let present: Vec<u64> = map.range(Bound::Unbounded).map(|(h, _)| h).collect();
            let hash = match present.get(rng.next() as usize % (present.len() + 1)) {
                Some(&h) if i % 3 > 0 => h,
                _ => rng.next(),
            };
            lookups.push((map, hash));
        }
        let mut got = vec![None; lookups.len()];
        get_each(&lookups, |i, v| {
            assert!(got[i].replace(*v).is_none(), "found twice");
        });
        let want: Vec<Option<u64>> = lookups.iter().map(|(m, h)| m.get(*h).copied()).collect();
        assert_eq!(got, want);
        assert!(want.iter().filter(|v| v.is_some()).count() > 150);
    }

    #[test]
    fn large_maps_stay_shallow() {
        let mut rng = Rng(7);
        let mut map = RadixMap::new();
        for i in 0..33_000 {
            map.insert(rng.next(), i);
        }
        assert!(depth(&map.root) <= 5, "depth {}", depth(&map.root));
        // Shrunk to a few entries, it is one leaf again.
        let keep: Vec<u64> = map
            .range(Bound::Unbounded)
            .map(|(h, _)| h)
            .step_by(5000)
            .collect();
        let all: Vec<u64> = map.range(Bound::Unbounded).map(|(h, _)| h).collect();
        for h in all.iter().filter(|h| !keep.contains(h)) {
            map.remove(*h);
        }
        assert!(matches!(map.root, Node::Leaf(_)));
        assert!(map
            .range(Bound::Unbounded)
            .map(|(h, _)| h)
            .eq(keep.iter().copied()));
    }
}
