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
use triomphe::Arc;

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
    Leaf(Arc<Leaf<V>>),
    Branch(Arc<Branch<V>>),
}

/// Entries in hash order, hashes apart from values: a search reads two cache lines.
/// Every hash of a leaf at depth d shares its first d digits; at depth 16 a leaf holds
/// one hash, so a leaf that has to split is never that deep.
#[derive(Clone)]
struct Leaf<V> {
    hashes: ArrayVec<u64, LEAF>,
    values: ArrayVec<V, LEAF>,
}

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

impl<V: Clone> RadixMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, hash: u64) -> Option<&V> {
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return None,
                Node::Leaf(l) => {
                    let i = l.hashes.binary_search(&hash).ok()?;
                    return Some(&l.values[i]);
                }
                Node::Branch(b) => {
                    node = &b.kids[digit(hash, depth)];
                    depth += 1;
                }
            }
        }
    }

    /// The value at `hash`, to change in place (the nodes on its path that are shared
    /// with a clone are copied first).
    pub fn get_mut(&mut self, hash: u64) -> Option<&mut V> {
        get_mut_in(&mut self.root, hash, 0)
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
            leaf: None,
        };
        let (Bound::Included(hash) | Bound::Excluded(hash)) = from else {
            match &self.root {
                Node::Empty => {}
                Node::Leaf(l) => it.leaf = Some((l, 0)),
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
                    let at = l.hashes.partition_point(|&h| match from {
                        Bound::Excluded(_) => h <= hash,
                        _ => h < hash,
                    });
                    it.leaf = Some((l, at));
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
                    if let Ok(j) = l.hashes.binary_search(&hash) {
                        found(*i, &l.values[j]);
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

fn get_mut_in<V: Clone>(node: &mut Node<V>, hash: u64, depth: u32) -> Option<&mut V> {
    match node {
        Node::Empty => None,
        Node::Leaf(l) => {
            let i = l.hashes.binary_search(&hash).ok()?;
            Some(&mut Arc::make_mut(l).values[i])
        }
        Node::Branch(b) => get_mut_in(
            &mut Arc::make_mut(b).kids[digit(hash, depth)],
            hash,
            depth + 1,
        ),
    }
}

fn insert_in<V: Clone>(node: &mut Node<V>, hash: u64, value: V, depth: u32) -> Option<V> {
    match node {
        Node::Empty => {
            let mut leaf = Leaf {
                hashes: ArrayVec::new(),
                values: ArrayVec::new(),
            };
            leaf.hashes.push(hash);
            leaf.values.push(value);
            *node = Node::Leaf(Arc::new(leaf));
            None
        }
        Node::Leaf(l) => match l.hashes.binary_search(&hash) {
            Ok(i) => Some(std::mem::replace(&mut Arc::make_mut(l).values[i], value)),
            Err(i) if l.hashes.len() < LEAF => {
                let l = Arc::make_mut(l);
                l.hashes.insert(i, hash);
                l.values.insert(i, value);
                None
            }
            Err(_) => {
                // Full: becomes a branch at this depth, which takes the entries one by
                // one (a kid that gets them all splits again, one level down).
                let Node::Leaf(full) =
                    std::mem::replace(node, Node::Branch(Arc::new(Branch::new())))
                else {
                    unreachable!("matched a leaf")
                };
                let full = Arc::try_unwrap(full).unwrap_or_else(|shared| (*shared).clone());
                for (h, v) in full.hashes.into_iter().zip(full.values) {
                    insert_in(node, h, v, depth);
                }
                insert_in(node, hash, value, depth)
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

fn remove_in<V: Clone>(node: &mut Node<V>, hash: u64, depth: u32) -> Option<V> {
    match node {
        Node::Empty => None,
        Node::Leaf(l) => {
            let i = l.hashes.binary_search(&hash).ok()?;
            let l = Arc::make_mut(l);
            l.hashes.remove(i);
            let value = l.values.remove(i);
            if l.hashes.is_empty() {
                *node = Node::Empty;
            }
            Some(value)
        }
        Node::Branch(b) => {
            let b = Arc::make_mut(b);
            let value = remove_in(&mut b.kids[digit(hash, depth)], hash, depth + 1)?;
            if let Some(merged) = b.merged() {
                *node = merged;
            }
            Some(value)
        }
    }
}

impl<V: Clone> Branch<V> {
    fn new() -> Self {
        Branch {
            kids: std::array::from_fn(|_| Node::Empty),
        }
    }

    /// This branch as one leaf (or nothing), if its kids are leaves with at most
    /// `LEAF / 2` entries in all: a slot that shrank does not keep its levels.
    fn merged(&self) -> Option<Node<V>> {
        let mut n = 0;
        for kid in &self.kids {
            match kid {
                Node::Empty => {}
                Node::Leaf(l) => n += l.hashes.len(),
                Node::Branch(_) => return None,
            }
            if n > LEAF / 2 {
                return None;
            }
        }
        let mut leaf = Leaf {
            hashes: ArrayVec::new(),
            values: ArrayVec::new(),
        };
        for kid in &self.kids {
            if let Node::Leaf(l) = kid {
                leaf.hashes.extend(l.hashes.iter().copied());
                leaf.values.extend(l.values.iter().cloned());
            }
        }
        Some(match n {
            0 => Node::Empty,
            _ => Node::Leaf(Arc::new(leaf)),
        })
    }
}

/// Entries in hash order (see [`RadixMap::range`]).
pub struct Iter<'a, V> {
    /// Branches being walked, each with the next kid to visit (the root's first).
    stack: ArrayVec<(&'a Branch<V>, usize), 16>,
    leaf: Option<(&'a Leaf<V>, usize)>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (u64, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((l, i)) = &mut self.leaf {
                if let (Some(&h), Some(v)) = (l.hashes.get(*i), l.values.get(*i)) {
                    *i += 1;
                    return Some((h, v));
                }
                self.leaf = None;
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
                Node::Leaf(l) => self.leaf = Some((l, 0)),
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
                        if let Some(v) = map.get_mut(h) {
                            *v += 1;
                        }
                        if let Some(v) = model.get_mut(&h) {
                            *v += 1;
                        }
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
