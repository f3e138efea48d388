//! The HyperLogLog sketch in Redis's string format (hyperloglog.c), byte for byte, so that
//! values move between redraft and Redis (GET/SET, DUMP/RESTORE) and count alike. Shared by
//! the nodes' PF commands and the proxy, which counts unions of keys in several slots.
//!
//! A 16-byte header: `HYLL`, the encoding (0 dense, 1 sparse), three unused bytes and the
//! cached cardinality (little endian; its top bit set means stale). Then the registers:
//! dense, 16384 six-bit registers packed from the least significant bit (12288 bytes); or
//! sparse, runs of ZERO `00xxxxxx` (1–64 zero registers), XZERO `01xxxxxx yyyyyyyy`
//! (1–16384) and VAL `1vvvvvxx` (value 1–32, repeated 1–4 times). A sparse sketch becomes
//! dense when a register needs more than 32 or it would grow past 3000 bytes.

/// Registers (2^14): the low 14 bits of an element's hash pick one.
pub const REGISTERS: usize = 1 << P;
const P: u32 = 14;
const Q: u32 = 64 - P;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
/// Redis's default `hll-sparse-max-bytes`.
pub const SPARSE_MAX_BYTES: usize = 3000;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
pub const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// A sparse sketch whose runs do not cover exactly the 16384 registers.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's MurmurHash64A (endian-neutral), the hash every element goes through.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 47;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 47;
    h = h.wrapping_mul(M);
    h ^ (h >> 47)
}

/// The register an element updates and the value it offers: the position of the first set
/// bit above the index bits (1..=51).
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = hash as usize & (REGISTERS - 1);
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// An empty sketch as PFADD creates it: sparse, one XZERO run over every register.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_zeros(&mut v, REGISTERS);
    v
}

/// Whether a string is a sketch Redis would accept (isHLLObjectOrReply): the header, a
/// known encoding, and a dense one of the exact size. Sparse runs are checked when read.
pub fn is_hll(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

pub fn is_dense(v: &[u8]) -> bool {
    v[4] == DENSE
}

/// The cached cardinality, if it is current.
pub fn cached(v: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(v[8..HDR].try_into().expect("8 bytes"));
    (card >> 63 == 0).then_some(card)
}

pub fn invalidate(v: &mut [u8]) {
    v[HDR - 1] |= 0x80;
}

/// Register `i` of dense registers. The last one's second byte is past the end: zero, as
/// the string's terminator is for Redis.
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let b0 = u32::from(regs[byte]);
    let b1 = u32::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let v = u32::from(val);
    regs[byte] &= !(63u32 << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b1) = regs.get_mut(byte + 1) {
        *b1 &= !(63u32 >> (8 - fb)) as u8;
        *b1 |= (v >> (8 - fb)) as u8;
    }
}

/// The histogram of a dense sketch's register values. Four histograms, one per register
/// of each three bytes, summed at the end: registers mostly hold a few values, and one
/// histogram would make each increment wait for the one before.
fn dense_histogram(v: &[u8]) -> [u32; 64] {
    let mut lanes = [[0u32; 64]; 4];
    for c in v[HDR..DENSE_SIZE].chunks_exact(3) {
        let w = u32::from(c[0]) | (u32::from(c[1]) << 8) | (u32::from(c[2]) << 16);
        lanes[0][(w & 63) as usize] += 1;
        lanes[1][((w >> 6) & 63) as usize] += 1;
        lanes[2][((w >> 12) & 63) as usize] += 1;
        lanes[3][((w >> 18) & 63) as usize] += 1;
    }
    sum_lanes(&lanes)
}

fn sum_lanes(lanes: &[[u32; 64]; 4]) -> [u32; 64] {
    std::array::from_fn(|i| lanes.iter().map(|l| l[i]).sum())
}

/// Raises dense register `i` to `count`; whether it rose.
pub fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    let rose = count > dense_get(regs, i);
    if rose {
        dense_put(regs, i, count);
    }
    rose
}

/// Adds elements to a dense sketch in place; whether a register rose (the cache is then
/// marked stale).
pub fn dense_add_all<'a>(v: &mut [u8], elements: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut rose = false;
    for e in elements {
        let (i, count) = pattern(e);
        rose |= dense_set(&mut v[HDR..], i, count);
    }
    if rose {
        invalidate(v);
    }
    rose
}

/// One sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    fn bytes(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
}

/// The opcode at `p` (an XZERO cut short reads a zero second byte, as Redis reads the
/// terminator).
fn op_at(v: &[u8], p: usize) -> Op {
    let b = v[p];
    match b & 0xc0 {
        0x00 => Op::Zero(usize::from(b & 0x3f) + 1),
        0x40 => {
            let lo = usize::from(v.get(p + 1).copied().unwrap_or(0));
            Op::XZero(((usize::from(b & 0x3f) << 8) | lo) + 1)
        }
        _ => Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1),
    }
}

fn val_byte(val: u8, len: usize) -> u8 {
    0x80 | ((val - 1) << 2) | (len - 1) as u8
}

/// Appends the shortest run of `n` zero registers (1..=16384).
fn push_zeros(out: &mut Vec<u8>, n: usize) {
    if n > ZERO_MAX_LEN {
        let l = n - 1;
        out.extend_from_slice(&[0x40 | (l >> 8) as u8, l as u8]);
    } else {
        out.push((n - 1) as u8);
    }
}

/// The opcodes of a sparse sketch with their offsets.
fn ops(v: &[u8]) -> impl Iterator<Item = Op> + '_ {
    let mut p = HDR;
    std::iter::from_fn(move || {
        (p < v.len()).then(|| {
            let op = op_at(v, p);
            p += op.bytes();
            op
        })
    })
}

/// Calls `f(first, n, value)` for each VAL run of a sparse sketch, checking, as Redis does
/// before trusting one, that the runs cover exactly the 16384 registers and that no VAL
/// run passes the last.
fn for_each_val(v: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let mut idx = 0;
    for op in ops(v) {
        match op {
            Op::Zero(n) | Op::XZero(n) => idx += n,
            Op::Val(val, n) => {
                if idx + n > REGISTERS {
                    return Err(Corrupt);
                }
                f(idx, n, val);
                idx += n;
            }
        }
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The dense form of a sparse sketch, header (and cache) kept.
pub fn sparse_to_dense(v: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    for_each_val(v, |first, n, val| {
        for i in first..first + n {
            dense_put(&mut d[HDR..], i, val);
        }
    })?;
    Ok(d)
}

/// Raises register `index` of a sketch (either encoding) to `count`; whether it rose. A
/// sparse sketch is rewritten in place as Redis's hllSparseSet does: the run holding the
/// register split, adjacent equal VALs merged, and a promotion to dense when the value or
/// the length outgrows the sparse form.
pub fn set(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if is_dense(v) {
        return Ok(dense_set(&mut v[HDR..], index, count));
    }
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    let end = v.len();
    let (mut p, mut first, mut prev, mut span) = (HDR, 0, None, 0);
    while p < end {
        let op = op_at(v, p);
        span = op.span();
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += op.bytes();
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let op = op_at(v, p);
    let in_place = match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => true,
        _ => false,
    };
    if in_place {
        v[p] = val_byte(count, 1);
    } else {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(cur, _) => {
                if index != first {
                    seq.push(val_byte(cur, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(cur, last - index));
                }
            }
            _ => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
        }
        let new_len = end + seq.len() - op.bytes();
        if seq.len() > op.bytes() && new_len > SPARSE_MAX_BYTES {
            return promote(v, index, count);
        }
        // An XZERO cut short at the end still counts two bytes, as Redis's length does.
        v.splice(p..(p + op.bytes()).min(end), seq);
        v.truncate(new_len);
    }
    merge_adjacent(v, prev.unwrap_or(HDR));
    invalidate(v);
    Ok(true)
}

/// Merges adjacent VALs of one value (up to 4 registers), scanning 5 opcodes from `p`.
fn merge_adjacent(v: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        match op_at(v, p) {
            Op::Val(v1, l1) => {
                if let Some(Op::Val(v2, l2)) = v.get(p + 1).map(|_| op_at(v, p + 1)) {
                    if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                        v[p + 1] = val_byte(v1, l1 + l2);
                        v.remove(p);
                        continue;
                    }
                }
                p += 1;
            }
            op => p += op.bytes(),
        }
    }
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    let mut d = sparse_to_dense(v)?;
    let rose = dense_set(&mut d[HDR..], index, count);
    debug_assert!(rose, "a promotion always raises the register");
    *v = d;
    Ok(true)
}

/// Adds one element; whether a register rose.
pub fn add(v: &mut Vec<u8>, ele: &[u8]) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    set(v, index, count)
}

/// Raises `max` to this sketch's registers (the union of sets).
pub fn merge_into(max: &mut [u8], v: &[u8]) -> Result<(), Corrupt> {
    if is_dense(v) {
        for (m, c) in max
            .chunks_exact_mut(4)
            .zip(v[HDR..DENSE_SIZE].chunks_exact(3))
        {
            let w = u32::from(c[0]) | (u32::from(c[1]) << 8) | (u32::from(c[2]) << 16);
            for (k, m) in m.iter_mut().enumerate() {
                *m = (*m).max(((w >> (6 * k)) & 63) as u8);
            }
        }
        return Ok(());
    }
    for_each_val(v, |first, n, val| {
        for m in &mut max[first..first + n] {
            *m = (*m).max(val);
        }
    })
}

/// The estimated cardinality of one sketch (not its cache).
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if is_dense(v) {
        histo = dense_histogram(v);
    } else {
        let mut idx = 0;
        for op in ops(v) {
            match op {
                Op::Zero(n) | Op::XZero(n) => histo[0] += n as u32,
                Op::Val(val, n) => histo[usize::from(val)] += n as u32,
            }
            idx += op.span();
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of registers one per byte (a union).
pub fn count_registers(regs: &[u8]) -> u64 {
    let mut lanes = [[0u32; 64]; 4];
    for c in regs.chunks_exact(4) {
        for (lane, r) in lanes.iter_mut().zip(c) {
            lane[usize::from(*r & 63)] += 1;
        }
    }
    estimate(&sum_lanes(&lanes))
}

/// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches"),
/// in Redis's order of floating-point operations so that the count is Redis's to the unit.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// PFDEBUG DECODE's listing of a sparse sketch's runs.
pub fn decode(v: &[u8]) -> String {
    let parts: Vec<String> = ops(v)
        .map(|op| match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(val, n) => format!("v:{val},{n}"),
        })
        .collect();
    parts.join(" ")
}

/// PFCOUNT's reply for the values of its keys in argument order (None: missing), as Redis
/// checks them: the first that is not a sketch or is corrupt answers its error.
pub fn union_count<'a>(
    values: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<u64, &'static str> {
    let mut max = vec![0u8; REGISTERS];
    for v in values.into_iter().flatten() {
        if !is_hll(v) {
            return Err(NOT_HLL);
        }
        merge_into(&mut max, v).map_err(|_| CORRUPT)?;
    }
    Ok(count_registers(&max))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every register of a sketch, either encoding.
    fn registers(v: &[u8]) -> Vec<u8> {
        let mut max = vec![0; REGISTERS];
        merge_into(&mut max, v).expect("valid");
        max
    }

    #[test]
    fn elements_land_where_redis_puts_them() {
        // redis-server 7.0.15: PFADD h <e>, then PFDEBUG DECODE h.
        for (e, index, count) in [
            (&b"a"[..], 12711, 2),
            (b"hello", 9216, 1),
            (b"abcdefgh", 1383, 1),
            (b"abcdefghij", 12228, 1),
            (b"", 5938, 2),
        ] {
            assert_eq!(pattern(e), (index, count), "{e:?}");
        }
    }

    #[test]
    fn empty_sketch_is_redis_bytes() {
        let v = new_sparse();
        assert_eq!(v, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_hll(&v));
        assert_eq!(count(&v), Ok(0));
        assert_eq!(cached(&v), Some(0));
        assert_eq!(decode(&v), "Z:16384");
    }

    #[test]
    fn dense_registers_round_trip_without_touching_neighbours() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        let mut want = vec![0u8; REGISTERS];
        let mut x = 12345u64;
        for _ in 0..4 {
            for (i, w) in want.iter_mut().enumerate() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *w = (x >> 58) as u8;
                dense_put(&mut regs, i, *w);
            }
            for (i, w) in want.iter().enumerate() {
                assert_eq!(dense_get(&regs, i), *w, "register {i}");
            }
            // The whole-sketch passes read the same registers.
            let mut v = b"HYLL\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
            v.extend_from_slice(&regs);
            let mut max = vec![0; REGISTERS];
            merge_into(&mut max, &v).unwrap();
            assert_eq!(max, want);
            let mut histo = [0u32; 64];
            for w in &want {
                histo[usize::from(*w)] += 1;
            }
            assert_eq!(dense_histogram(&v), histo);
        }
    }

    #[test]
    fn sparse_and_dense_agree_and_promote_at_the_limit() {
        let mut dense = new_sparse();
        dense = sparse_to_dense(&dense).unwrap();
        let mut sparse = new_sparse();
        let mut promoted_at = None;
        for j in 0..20_000u32 {
            let e = j.to_le_bytes();
            let a = add(&mut dense, &e).unwrap();
            let b = add(&mut sparse, &e).unwrap();
            assert_eq!(a, b, "element {j}");
            if promoted_at.is_none() && is_dense(&sparse) {
                promoted_at = Some(j);
            }
            if !is_dense(&sparse) {
                assert!(sparse.len() <= SPARSE_MAX_BYTES);
            }
            if j % 997 == 0 {
                assert_eq!(registers(&dense), registers(&sparse), "element {j}");
                assert_eq!(count(&dense), count(&sparse));
            }
        }
        assert!(promoted_at.is_some_and(|j| j > 1000), "{promoted_at:?}");
        assert_eq!(registers(&dense), registers(&sparse));
        let c = count(&dense).unwrap() as f64;
        assert!((c - 20_000.0).abs() < 20_000.0 * 0.05, "{c}");
    }

    #[test]
    fn sparse_split_and_merge_runs() {
        let mut v = new_sparse();
        assert_eq!(set(&mut v, 1000, 2), Ok(true));
        assert_eq!(decode(&v), "Z:1000 v:2,1 Z:15383");
        assert_eq!(set(&mut v, 1000, 2), Ok(false));
        assert_eq!(set(&mut v, 1001, 2), Ok(true));
        assert_eq!(decode(&v), "Z:1000 v:2,2 Z:15382");
        assert_eq!(set(&mut v, 1003, 2), Ok(true));
        assert_eq!(decode(&v), "Z:1000 v:2,2 z:1 v:2,1 Z:15380");
        // The lone zero between two VALs becomes a VAL and the three merge.
        assert_eq!(set(&mut v, 1002, 2), Ok(true));
        assert_eq!(decode(&v), "Z:1000 v:2,4 Z:15380");
        assert_eq!(set(&mut v, 1001, 5), Ok(true));
        assert_eq!(decode(&v), "Z:1000 v:2,1 v:5,1 v:2,2 Z:15380");
        assert_eq!(set(&mut v, 0, 1), Ok(true));
        assert_eq!(decode(&v), "v:1,1 Z:999 v:2,1 v:5,1 v:2,2 Z:15380");
        assert_eq!(set(&mut v, 16383, 3), Ok(true));
        assert_eq!(decode(&v), "v:1,1 Z:999 v:2,1 v:5,1 v:2,2 Z:15379 v:3,1");
        assert!(cached(&v).is_none());
        // A value past 32 cannot be sparse.
        assert_eq!(set(&mut v, 5000, 33), Ok(true));
        assert!(is_dense(&v));
        let regs = registers(&v);
        assert_eq!(
            (regs[0], regs[1001], regs[5000], regs[16383]),
            (1, 5, 33, 3)
        );
    }

    #[test]
    fn a_union_checks_its_values_in_order() {
        let mut a = new_sparse();
        add(&mut a, b"x").unwrap();
        let mut b = new_sparse();
        add(&mut b, b"y").unwrap();
        add(&mut b, b"x").unwrap();
        let mut corrupt = new_sparse();
        corrupt.push(0x80);
        let u = |vs: &[Option<&[u8]>]| union_count(vs.iter().copied());
        assert_eq!(u(&[Some(&a), None, Some(&b)]), Ok(2));
        assert_eq!(u(&[]), Ok(0));
        assert_eq!(u(&[Some(&a), Some(b"plain"), Some(&corrupt)]), Err(NOT_HLL));
        assert_eq!(u(&[Some(&corrupt), Some(b"plain")]), Err(CORRUPT));
    }

    #[test]
    fn corrupt_sparse_is_detected() {
        let mut short = new_sparse();
        short[HDR + 1] = 0x00; // XZERO of 16129 registers
        assert_eq!(count(&short), Err(Corrupt));
        assert_eq!(sparse_to_dense(&short), Err(Corrupt));
        assert_eq!(merge_into(&mut [0; REGISTERS], &short), Err(Corrupt));
        assert_eq!(set(&mut short.clone(), 16383, 1), Err(Corrupt));
        // Within the covered part a register still sets, as in Redis.
        assert_eq!(set(&mut short, 3, 1), Ok(true));
        let mut over = new_sparse();
        over.push(0x80);
        assert_eq!(count(&over), Err(Corrupt));
        // A VAL past the last register is corrupt even where the runs end at 16384.
        assert_eq!(merge_into(&mut [0; REGISTERS], &over), Err(Corrupt));
        assert_eq!(sparse_to_dense(&over), Err(Corrupt));
        assert!(!is_hll(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_hll(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!is_hll(b"HYL"));
    }
}
