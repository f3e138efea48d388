//! The list-append checker. Per key, with `order` the longest acknowledged read:
//!
//! - every acknowledged read is a prefix of `order` (one total order of appends);
//! - no read holds an id twice, an id never appended, the id of a failed append, or an id
//!   whose append began only after the read ended;
//! - real time: an append acknowledged before a read began is in that read; a read that
//!   finished before another began is a prefix of it; an append acknowledged before another
//!   began comes first in `order`;
//! - the final read (after the faults healed) holds every acknowledged append.
//!
//! Appends whose outcome is unknown may appear or not, anywhere real time allows.
//! Everything runs in O(n log n) per key, so long histories check quickly.

use std::collections::{BTreeMap, HashMap};

use super::history::{Kind, Op, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    DuplicateId,
    UnknownId,
    FailedAppendVisible,
    IncompatibleOrder,
    StaleRead,
    FutureRead,
    NonMonotonicReads,
    RealTimeOrder,
    LostWrite,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub key: String,
    pub kind: AnomalyKind,
    pub detail: String,
}

/// Checks a history; `finals` is one read per key taken after the faults healed.
pub fn check(ops: &[Op], finals: &BTreeMap<String, Vec<u64>>) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut out = Vec::new();
    for (key, ops) in by_key {
        check_key(key, &ops, finals.get(key), &mut out);
    }
    for (key, fin) in finals {
        if !ops.iter().any(|o| o.key == *key) && !fin.is_empty() {
            out.push(anomaly(
                key,
                AnomalyKind::UnknownId,
                format!("final read {fin:?} of a key nobody wrote"),
            ));
        }
    }
    out
}

fn anomaly(key: &str, kind: AnomalyKind, detail: String) -> Anomaly {
    Anomaly {
        key: key.to_owned(),
        kind,
        detail,
    }
}

/// A read as the checker uses it: its ids and its real-time window.
struct Read<'a> {
    ids: &'a [u64],
    invoke: u64,
    complete: u64,
}

fn check_key(key: &str, ops: &[&Op], fin: Option<&Vec<u64>>, out: &mut Vec<Anomaly>) {
    // id → (invoke, complete, outcome) of its append; an unknown outcome may have taken
    // effect at any time after its invocation.
    let mut appends: HashMap<u64, (u64, u64, &Outcome)> = HashMap::new();
    let mut reads: Vec<Read> = Vec::new();
    for op in ops {
        match (&op.kind, &op.outcome) {
            (Kind::Append(id), o) => {
                let complete = if *o == Outcome::Ok {
                    op.complete
                } else {
                    u64::MAX
                };
                appends.insert(*id, (op.invoke, complete, o));
            }
            (Kind::Read(ids), Outcome::Ok) => reads.push(Read {
                ids,
                invoke: op.invoke,
                complete: op.complete,
            }),
            (Kind::Read(_), _) => {}
        }
    }
    if let Some(f) = fin {
        reads.push(Read {
            ids: f,
            invoke: u64::MAX - 1,
            complete: u64::MAX - 1,
        });
    }

    // Each read on its own.
    for r in &reads {
        let mut seen = std::collections::HashSet::new();
        for id in r.ids {
            if !seen.insert(*id) {
                out.push(anomaly(
                    key,
                    AnomalyKind::DuplicateId,
                    format!("{id} twice in {:?}", r.ids),
                ));
            }
            match appends.get(id) {
                None => out.push(anomaly(
                    key,
                    AnomalyKind::UnknownId,
                    format!("{id} was never appended"),
                )),
                Some((_, _, Outcome::Fail)) => out.push(anomaly(
                    key,
                    AnomalyKind::FailedAppendVisible,
                    format!("{id} failed but was read"),
                )),
                Some((invoke, _, _)) if *invoke > r.complete => out.push(anomaly(
                    key,
                    AnomalyKind::FutureRead,
                    format!("{id} read before its append began"),
                )),
                _ => {}
            }
        }
    }

    // One total order: every read a prefix of the longest.
    let Some(longest) = reads.iter().map(|r| r.ids).max_by_key(|ids| ids.len()) else {
        return;
    };
    let order: Vec<u64> = longest.to_vec();
    for r in &reads {
        if order[..r.ids.len()] != *r.ids {
            out.push(anomaly(
                key,
                AnomalyKind::IncompatibleOrder,
                format!("{:?} is not a prefix of {:?}", r.ids, order),
            ));
            return; // Every later check assumes one order.
        }
    }
    let pos: HashMap<u64, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();

    // An append acknowledged before a read began is in it: over acknowledged appends by
    // completion, the furthest position (absent = never) among those done before the read.
    let mut acked: Vec<(u64, usize, u64)> = appends
        .iter()
        .filter(|(_, (_, _, o))| **o == Outcome::Ok)
        .map(|(id, (_, c, _))| (*c, pos.get(id).copied().unwrap_or(usize::MAX), *id))
        .collect();
    acked.sort_unstable();
    let mut furthest: Vec<(usize, u64)> = Vec::with_capacity(acked.len());
    for (_, p, id) in &acked {
        let best = match furthest.last() {
            Some(&(bp, bid)) if bp >= *p => (bp, bid),
            _ => (*p, *id),
        };
        furthest.push(best);
    }
    for r in &reads {
        let done = acked.partition_point(|(c, _, _)| *c < r.invoke);
        if done == 0 {
            continue;
        }
        let (p, id) = furthest[done - 1];
        if p == usize::MAX || p >= r.ids.len() {
            let kind = if r.invoke == u64::MAX - 1 {
                AnomalyKind::LostWrite
            } else {
                AnomalyKind::StaleRead
            };
            out.push(anomaly(
                key,
                kind,
                format!(
                    "acknowledged append {id} missing from a read of {} ids",
                    r.ids.len()
                ),
            ));
        }
    }

    // A read that finished before another began is no longer than it.
    let mut by_complete: Vec<(u64, usize)> =
        reads.iter().map(|r| (r.complete, r.ids.len())).collect();
    by_complete.sort_unstable();
    let mut longest_done = Vec::with_capacity(by_complete.len());
    for (_, n) in &by_complete {
        longest_done.push((*n).max(longest_done.last().copied().unwrap_or(0)));
    }
    for r in &reads {
        let done = by_complete.partition_point(|(c, _)| *c < r.invoke);
        if done > 0 && longest_done[done - 1] > r.ids.len() {
            out.push(anomaly(
                key,
                AnomalyKind::NonMonotonicReads,
                format!(
                    "a read of {} ids after one of {}",
                    r.ids.len(),
                    longest_done[done - 1]
                ),
            ));
        }
    }

    // An append acknowledged before another began comes first: walking the order from
    // the end, no later element may have completed before an earlier one was invoked.
    let mut min_complete_after = u64::MAX;
    let mut min_id = 0;
    for id in order.iter().rev() {
        if let Some((invoke, complete, _)) = appends.get(id) {
            if min_complete_after < *invoke {
                out.push(anomaly(
                    key,
                    AnomalyKind::RealTimeOrder,
                    format!("{min_id} was acknowledged before {id} began but comes after it"),
                ));
            }
            if *complete < min_complete_after {
                min_complete_after = *complete;
                min_id = *id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(p: u64, id: u64, invoke: u64, complete: u64, outcome: Outcome) -> Op {
        Op {
            process: p,
            key: "k".into(),
            kind: Kind::Append(id),
            invoke,
            complete,
            outcome,
        }
    }

    fn read(p: u64, ids: &[u64], invoke: u64, complete: u64) -> Op {
        Op {
            process: p,
            key: "k".into(),
            kind: Kind::Read(ids.to_vec()),
            invoke,
            complete,
            outcome: Outcome::Ok,
        }
    }

    fn finals(ids: &[u64]) -> BTreeMap<String, Vec<u64>> {
        [("k".to_string(), ids.to_vec())].into_iter().collect()
    }

    fn kinds(ops: &[Op], fin: &[u64]) -> Vec<AnomalyKind> {
        let mut k: Vec<_> = check(ops, &finals(fin))
            .into_iter()
            .map(|a| a.kind)
            .collect();
        k.sort();
        k.dedup();
        k
    }

    /// Two writers and a reader, with an unknown-outcome append that did land and a
    /// failed one that did not, and concurrent appends in either order.
    fn valid() -> Vec<Op> {
        vec![
            append(1, 1, 0, 10, Outcome::Ok),
            append(2, 2, 5, 30, Outcome::Ok),
            append(1, 3, 12, 40, Outcome::Info),
            append(2, 4, 31, 35, Outcome::Fail),
            read(3, &[1], 11, 20),
            read(3, &[1, 2], 32, 33),
            append(1, 5, 41, 50, Outcome::Ok),
            read(3, &[1, 2, 3, 5], 51, 60),
        ]
    }

    #[test]
    fn a_valid_history_passes() {
        assert_eq!(check(&valid(), &finals(&[1, 2, 3, 5])), vec![]);
        // Concurrent appends may land in either order.
        let mut h = valid();
        h[0] = append(1, 1, 0, 10, Outcome::Ok);
        h[1] = append(2, 2, 5, 30, Outcome::Ok);
        assert_eq!(kinds(&h, &[1, 2, 3, 5]), vec![]);
        // An unknown append may also never land.
        let h: Vec<Op> = valid()
            .into_iter()
            .filter(|o| o.kind != Kind::Read(vec![1, 2, 3, 5]))
            .collect();
        assert_eq!(kinds(&h, &[1, 2, 5]), vec![]);
    }

    #[test]
    fn each_anomaly_is_flagged() {
        let with = |extra: Op| {
            let mut h = valid();
            h.push(extra);
            h
        };
        use AnomalyKind::*;
        assert_eq!(
            kinds(&with(read(4, &[1, 1], 61, 62)), &[1, 2, 3, 5]),
            vec![DuplicateId, IncompatibleOrder]
        );
        assert_eq!(
            kinds(&with(read(4, &[1, 2, 3, 5, 99], 61, 62)), &[1, 2, 3, 5]),
            vec![UnknownId, NonMonotonicReads]
        );
        assert_eq!(kinds(&valid(), &[1, 2, 3, 5, 4]), vec![FailedAppendVisible]);
        assert_eq!(
            kinds(&with(read(4, &[2, 1], 61, 62)), &[1, 2, 3, 5]),
            vec![IncompatibleOrder]
        );
        // Append 2 was acknowledged at 30; a read that began at 31 lacks it.
        assert_eq!(
            kinds(&with(read(4, &[1], 31, 62)), &[1, 2, 3, 5]),
            vec![StaleRead]
        );
        // A read after a longer read (both valid prefixes, and no append it must hold).
        let h = vec![
            append(1, 1, 0, 100, Outcome::Info),
            read(2, &[1], 1, 2),
            read(2, &[], 3, 4),
        ];
        assert_eq!(kinds(&h, &[1]), vec![NonMonotonicReads]);
        // 5 was acknowledged at 50, then 6 began at 51, but 6 comes first.
        let mut h = valid();
        h.pop();
        h.push(append(2, 6, 51, 55, Outcome::Ok));
        assert_eq!(kinds(&h, &[1, 2, 6, 5]), vec![RealTimeOrder]);
        // An acknowledged append missing at the end.
        assert_eq!(
            kinds(&valid(), &[1, 2, 3]),
            vec![NonMonotonicReads, LostWrite]
        );
        // A read that saw an append before it was invoked.
        let h = vec![append(1, 1, 50, 60, Outcome::Ok), read(2, &[1], 10, 20)];
        assert_eq!(kinds(&h, &[1]), vec![FutureRead]);
    }

    /// A linearizable store simulated: each operation takes effect at a random instant
    /// inside its window. Such histories must pass; the same history with one read
    /// corrupted must not.
    #[test]
    fn simulated_linearizable_histories_pass_and_corruptions_fail() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            // (effect time, op index); ops get windows around their effect time.
            let mut ops = Vec::new();
            let mut effects = Vec::new();
            let mut next_id = 1;
            for i in 0..40 {
                let at = rand(10_000) * 10 + 5;
                let invoke = at - rand(5);
                let complete = at + rand(5);
                let kind = if rand(2) == 0 {
                    next_id += 1;
                    Kind::Append(next_id)
                } else {
                    Kind::Read(vec![])
                };
                let outcome = match rand(10) {
                    0 => Outcome::Info,
                    _ => Outcome::Ok,
                };
                ops.push(Op {
                    process: i,
                    key: "k".into(),
                    kind,
                    invoke,
                    complete,
                    outcome,
                });
                effects.push((at, i as usize));
            }
            effects.sort_unstable();
            let mut list = Vec::new();
            for (_, i) in &effects {
                match &mut ops[*i].kind {
                    Kind::Append(id) => list.push(*id),
                    Kind::Read(ids) => *ids = list.clone(),
                }
            }
            let fin = finals(&list);
            assert_eq!(check(&ops, &fin), vec![], "round {round}");
            // Corrupt the longest read: its first and last ids swapped (or one doubled).
            let Some(victim) = ops
                .iter()
                .enumerate()
                .filter(|(_, o)| {
                    matches!(&o.kind, Kind::Read(ids) if !ids.is_empty())
                        && o.outcome == Outcome::Ok
                })
                .max_by_key(|(_, o)| match &o.kind {
                    Kind::Read(ids) => ids.len(),
                    _ => 0,
                })
                .map(|(i, _)| i)
            else {
                continue;
            };
            let mut bad = ops.clone();
            if let Kind::Read(ids) = &mut bad[victim].kind {
                let n = ids.len();
                ids.swap(0, n - 1);
                if n == 1 {
                    ids.push(ids[0]);
                }
            }
            assert_ne!(
                check(&bad, &fin),
                vec![],
                "round {round}: a corrupted read passed"
            );
        }
    }
}
