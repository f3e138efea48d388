//! Fault injection per directed link (from → to): partitions, dropped and delayed messages.
//!
//! One `Arc<FaultTable>` is shared by every `Bus` of an in-process test cluster, so a test
//! flips links for all nodes at once. The bus consults it on the sending side before a
//! request leaves and on the server before a reply leaves, so a one-way partition breaks
//! request/response the way a real one does. Production passes an empty table: the check
//! is then a single relaxed atomic load.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::raft::NodeId;

/// What happens to one message on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it, after this delay (zero when the link is healthy).
    Pass(Duration),
    /// The link is cut: the sender learns at once (maps to `Unreachable`).
    Blocked,
    /// The message is lost silently: the caller waits out its timeout.
    Drop,
}

#[derive(Clone, Copy, Debug, Default)]
struct LinkFault {
    blocked: bool,
    drop_probability: f64,
    delay: Duration,
}

#[derive(Debug, Default)]
struct Faults {
    links: HashMap<(NodeId, NodeId), LinkFault>,
    isolated: HashSet<NodeId>,
}

/// Shared table of injected network faults. All methods take `&self`.
#[derive(Debug)]
pub struct FaultTable {
    /// False while no fault is set, so the hot path skips the lock.
    active: AtomicBool,
    faults: RwLock<Faults>,
    /// splitmix64 state for drop decisions; no RNG dependency needed for a coin flip.
    rng: AtomicU64,
}

impl Default for FaultTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultTable {
    /// An empty table: every link healthy.
    pub fn new() -> Self {
        Self {
            active: AtomicBool::new(false),
            faults: RwLock::new(Faults::default()),
            rng: AtomicU64::new(RandomState::new().hash_one(0x5eed_u64)),
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn partition(&self, a: NodeId, b: NodeId) {
        self.update(|f| {
            f.links.entry((a, b)).or_default().blocked = true;
            f.links.entry((b, a)).or_default().blocked = true;
        });
    }

    /// Cuts one direction only: messages from `from` to `to` are refused.
    pub fn block(&self, from: NodeId, to: NodeId) {
        self.update(|f| f.links.entry((from, to)).or_default().blocked = true);
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&self, node: NodeId) {
        self.update(|f| {
            f.isolated.insert(node);
        });
    }

    /// Drops each message from `from` to `to` with `probability` (clamped to 0..=1).
    pub fn set_drop(&self, from: NodeId, to: NodeId, probability: f64) {
        let p = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        self.update(|f| f.links.entry((from, to)).or_default().drop_probability = p);
    }

    /// Delays each message from `from` to `to` by `delay`.
    pub fn set_delay(&self, from: NodeId, to: NodeId, delay: Duration) {
        self.update(|f| f.links.entry((from, to)).or_default().delay = delay);
    }

    /// Removes every fault: partitions, isolation, drops and delays.
    pub fn heal(&self) {
        let mut f = self.faults.write().unwrap_or_else(|e| e.into_inner());
        f.links.clear();
        f.isolated.clear();
        self.active.store(false, Ordering::Release);
    }

    /// Decides the fate of one message from `from` to `to`.
    pub fn check(&self, from: NodeId, to: NodeId) -> Verdict {
        if !self.active.load(Ordering::Acquire) {
            return Verdict::Pass(Duration::ZERO);
        }
        let link = {
            let f = self.faults.read().unwrap_or_else(|e| e.into_inner());
            if f.isolated.contains(&from) || f.isolated.contains(&to) {
                return Verdict::Blocked;
            }
            match f.links.get(&(from, to)) {
                Some(l) => *l,
                None => return Verdict::Pass(Duration::ZERO),
            }
        };
        if link.blocked {
            Verdict::Blocked
        } else if link.drop_probability > 0.0 && self.coin() < link.drop_probability {
            Verdict::Drop
        } else {
            Verdict::Pass(link.delay)
        }
    }

    fn update(&self, change: impl FnOnce(&mut Faults)) {
        let mut f = self.faults.write().unwrap_or_else(|e| e.into_inner());
        change(&mut f);
        self.active.store(true, Ordering::Release);
    }

    /// A uniform float in [0, 1).
    fn coin(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: Verdict = Verdict::Pass(Duration::ZERO);

    #[test]
    fn empty_table_passes() {
        let t = FaultTable::new();
        assert_eq!(t.check(1, 2), PASS);
    }

    #[test]
    fn partition_isolate_heal() {
        let t = FaultTable::new();
        t.partition(1, 2);
        assert_eq!(t.check(1, 2), Verdict::Blocked);
        assert_eq!(t.check(2, 1), Verdict::Blocked);
        assert_eq!(t.check(1, 3), PASS);
        t.isolate(3);
        assert_eq!(t.check(1, 3), Verdict::Blocked);
        assert_eq!(t.check(3, 2), Verdict::Blocked);
        t.heal();
        assert_eq!(t.check(1, 2), PASS);
        assert_eq!(t.check(3, 2), PASS);
    }

    #[test]
    fn one_way_block() {
        let t = FaultTable::new();
        t.block(1, 2);
        assert_eq!(t.check(1, 2), Verdict::Blocked);
        assert_eq!(t.check(2, 1), PASS);
    }

    #[test]
    fn drop_probability_is_roughly_honoured() {
        let t = FaultTable::new();
        t.set_drop(1, 2, 0.3);
        let dropped = (0..10_000)
            .filter(|_| t.check(1, 2) == Verdict::Drop)
            .count();
        assert!((2_500..3_500).contains(&dropped), "dropped {dropped}");
        t.set_drop(1, 2, 1.0);
        assert!((0..100).all(|_| t.check(1, 2) == Verdict::Drop));
        assert_eq!(t.check(2, 1), PASS);
    }

    #[test]
    fn delay() {
        let t = FaultTable::new();
        t.set_delay(1, 2, Duration::from_millis(5));
        assert_eq!(t.check(1, 2), Verdict::Pass(Duration::from_millis(5)));
        assert_eq!(t.check(2, 1), PASS);
    }
}
