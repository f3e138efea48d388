//! INCRBYFLOAT, with Redis's long double arithmetic and `%.17Lf` formatting reproduced.
//!
//! Redis adds two x87 long doubles (64-bit mantissa, values below 2^16384) and prints
//! `%.17Lf` with trailing zeros trimmed; f64 would print `0.30000000000000004` for 0.1 +
//! 0.2. We do what the x87 does, in integers: each operand (kept as an exact decimal by the
//! parser) is rounded to a 64-bit mantissa, the two are added exactly and rounded again,
//! half to even, and the binary result is printed exactly to 17 fractional digits. Past
//! 2^128 the operands and the digits printed are big integers, so `1e4000` prints the
//! same 4001 digits as Redis; an operand a long double cannot hold is not a float, as
//! strtold's ERANGE makes it for Redis, and a sum past its range is the NaN/Infinity error.

use bytes::Bytes;
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{parse_long_double, ParseResult};
use crate::cmd::{get_string, str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `INCRBYFLOAT key increment`: the new value as a bulk string, which is also what is
/// stored; the TTL is kept.
///
/// The increment stays raw in the entry: Redis checks the type and the stored value before
/// the increment, so its validity is reported at apply time (deterministically).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncrByFloat {
    pub key: Bytes,
    pub incr: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::IncrByFloat(IncrByFloat {
        key: argv[1].clone(),
        incr: argv[2].clone(),
    })))
}

impl IncrByFloat {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (old, ttl) = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, ttl))) => (Some(b), ttl),
            Ok(None) => (None, None),
            Err(e) => return e,
        };
        let value = match old {
            Some(b) => operand(&b),
            None => Some(Operand::Finite((false, 0, 0))),
        };
        let (Some(value), Some(incr)) = (value, operand(&self.incr)) else {
            return Reply::not_float();
        };
        let (Operand::Finite(a), Operand::Finite(b)) = (value, incr) else {
            return Reply::err("ERR increment would produce NaN or Infinity");
        };
        let Some(text) = add_and_format(a, b) else {
            return Reply::err("ERR increment would produce NaN or Infinity");
        };
        let text = Bytes::from(text);
        db.put(&self.key, str_value(text.clone(), ttl));
        Reply::Bulk(text)
    }
}

/// A float as strtold reads it.
enum Operand {
    Finite(Bin),
    /// `inf`, `-Infinity`, …: Redis accepts it, then refuses the sum as NaN/Infinity.
    Infinite,
}

/// None if not a float to Redis: not one at all, or past a long double's range.
fn operand(b: &[u8]) -> Option<Operand> {
    if let Some(d) = parse_long_double(b) {
        let (m, e) = to_binary(d.mant, d.exp10)?;
        return Some(Operand::Finite((d.neg, m, e)));
    }
    let body = b.strip_prefix(b"-").or(b.strip_prefix(b"+")).unwrap_or(b);
    (body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity"))
        .then_some(Operand::Infinite)
}

/// `a + b` as Redis prints it; None when the sum is past a long double's range.
fn add_and_format(a: Bin, b: Bin) -> Option<String> {
    let (neg, m, e) = add_binary(a, b);
    if m != 0 && 64 - m.leading_zeros() as i32 + e > LD_MAX_EXP2 {
        return None;
    }
    Some(format_ld(neg, m, e))
}

/// Long doubles are below 2^16384.
const LD_MAX_EXP2: i32 = 16384;

const POW10_MAX: u32 = 38;

/// A binary float `±m × 2^e` with a 64-bit mantissa.
type Bin = (bool, u64, i32);

/// `m × 2^e` with the mantissa's top bit set (zero stays zero).
fn normalize(m: u64, e: i32) -> (u64, i32) {
    if m == 0 {
        return (0, 0);
    }
    let lz = m.leading_zeros();
    (m << lz, e - lz as i32)
}

/// The x87 add: exact sum of two 64-bit-mantissa values, rounded half to even to 64 bits.
fn add_binary(a: Bin, b: Bin) -> Bin {
    let (am, ae) = normalize(a.1, a.2);
    let (bm, be) = normalize(b.1, b.2);
    if am == 0 {
        return (b.0, bm, be);
    }
    if bm == 0 {
        return (a.0, am, ae);
    }
    // Let `hi` be the larger magnitude.
    let ((hneg, hm, he), (lneg, lm, le)) = if (ae, am) >= (be, bm) {
        ((a.0, am, ae), (b.0, bm, be))
    } else {
        ((b.0, bm, be), (a.0, am, ae))
    };
    // 63 guard bits below the larger mantissa; what falls off the smaller is `sticky`.
    let h = u128::from(hm) << 63;
    let l = u128::from(lm) << 63;
    let d = (he - le) as u32;
    let (l, sticky) = if d >= 127 {
        (0, true)
    } else {
        (l >> d, l & ((1u128 << d) - 1) != 0)
    };
    let sum = if hneg == lneg {
        h + l
    } else {
        // The true difference is h - l - f with 0 < f < 1 when sticky.
        h - l - u128::from(sticky)
    };
    if sum == 0 {
        return (false, 0, 0);
    }
    let (m, shift) = round_int(sum, sticky);
    (hneg, m, shift + he - 63)
}

/// Rounds `m × 10^e` to a 64-bit binary mantissa, half to even: `(mantissa, exp2)` with
/// value `mantissa × 2^exp2`. None when the integer part would not fit in u128.
fn to_binary(m: u128, e: i32) -> Option<(u64, i32)> {
    if m == 0 {
        return Some((0, 0));
    }
    let digits = m.ilog10() as i32 + 1;
    if e >= 0 {
        // 10^4933 is past the range whatever the mantissa.
        if e > 4933 {
            return None;
        }
        let (q, e2) = match 10u128.checked_pow(e as u32).and_then(|p| m.checked_mul(p)) {
            Some(n) => round_int(n, false),
            None => round_big(BigUint::from(m) * BigUint::from(10u32).pow(e as u32)),
        };
        return (64 - q.leading_zeros() as i32 + e2 <= LD_MAX_EXP2).then_some((q, e2));
    }
    // Below 1e-4951 (under half the least subnormal, ~3.6e-4951), strtold underflows to
    // zero: ERANGE, and not a float to Redis.
    if digits + e <= -4951 {
        return None;
    }
    let (mut m, mut k) = (m, (-e) as u32);
    if k > POW10_MAX {
        // m < 2^128 < 10^39: dividing by 10^39 or more leaves nothing (and 10^39 overflows).
        let Some(div) = 10u128.checked_pow(k - POW10_MAX) else {
            return Some((0, 0));
        };
        m /= div;
        k = POW10_MAX;
        if m == 0 {
            return Some((0, 0));
        }
    }
    let d = 10u128.pow(k);
    let (q, mut r) = (m / d, m % d);
    if 128 - q.leading_zeros() > 64 {
        return Some(round_int(q, r != 0));
    }
    // Long division, one bit at a time: r < d ≤ 10^38 < 2^127, so 2r never overflows.
    let mut next_bit = || {
        r *= 2;
        let bit = r >= d;
        if bit {
            r -= d;
        }
        bit
    };
    let mut acc = q;
    let mut exp2: i32 = 0;
    while acc == 0 {
        acc = u128::from(next_bit());
        exp2 -= 1;
    }
    while 128 - acc.leading_zeros() < 64 {
        acc = acc * 2 + u128::from(next_bit());
        exp2 -= 1;
    }
    let round = next_bit();
    let sticky = r != 0;
    if round && (sticky || acc & 1 == 1) {
        acc += 1;
    }
    if acc >> 64 != 0 {
        acc >>= 1;
        exp2 += 1;
    }
    Some((acc as u64, exp2))
}

/// An integer rounded to 64 significant bits; `sticky` says a nonzero fraction follows.
fn round_int(n: u128, sticky: bool) -> (u64, i32) {
    let len = 128 - n.leading_zeros();
    if len <= 64 {
        // Callers with a fraction and ≤ 64 integer bits use the long-division path.
        return (n as u64, 0);
    }
    let shift = len - 64;
    let mut q = n >> shift;
    let rem = n & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rem > half || (rem == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    let mut exp2 = shift as i32;
    if q >> 64 != 0 {
        q >>= 1;
        exp2 += 1;
    }
    (q as u64, exp2)
}

/// A big integer rounded to 64 significant bits, half to even.
fn round_big(n: BigUint) -> (u64, i32) {
    let bits = n.bits();
    if let Ok(small) = u128::try_from(&n) {
        return round_int(small, false);
    }
    let shift = bits - 64;
    let q = &n >> shift;
    let rem = &n - (&q << shift);
    let half = BigUint::from(1u32) << (shift - 1);
    let mut q = q.iter_u64_digits().next().unwrap_or(0) as u128;
    if rem > half || (rem == half && q & 1 == 1) {
        q += 1;
    }
    let mut exp2 = shift as i32;
    if q >> 64 != 0 {
        q >>= 1;
        exp2 += 1;
    }
    (q as u64, exp2)
}

/// `%.17Lf` of `±m × 2^e2`, then Redis's trimming: trailing zeros, a trailing point, `-0`.
fn format_ld(neg: bool, m: u64, e2: i32) -> String {
    const SCALE: u128 = 100_000_000_000_000_000; // 10^17
    let text = if e2 > 64 {
        (BigUint::from(m) << e2 as u32).to_string()
    } else if e2 >= 0 {
        (u128::from(m) << e2).to_string()
    } else {
        let k = (-e2) as u32;
        let p = m as u128 * SCALE;
        let x = if k >= 128 {
            0
        } else {
            let q = p >> k;
            let rem = p & ((1u128 << k) - 1);
            let half = 1u128 << (k - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        trim(format!("{}.{:017}", x / SCALE, x % SCALE))
    };
    if neg && text != "0" {
        format!("-{text}")
    } else {
        text
    }
}

fn trim(s: String) -> String {
    let t = s.trim_end_matches('0').trim_end_matches('.');
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testutil::*;

    fn add(a: &str, b: &str) -> Option<String> {
        let p = |s: &str| match operand(s.as_bytes()) {
            Some(Operand::Finite(x)) => x,
            _ => panic!("{s} is not a finite float"),
        };
        add_and_format(p(a), p(b))
    }

    #[test]
    fn formatting_matches_redis() {
        let cases: &[(&str, &str, &str)] = &[
            ("10.5", "0.1", "10.6"),
            ("10.6", "-5", "5.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("0.1", "0.2", "0.3"),
            ("3", "1e20", "100000000000000000000"),
            ("0", "1.23456789012345678901", "1.23456789012345679"),
            ("1e-20", "0", "0"),
            ("0.3", "0x10", "16.3"),
            ("-1e-20", "0", "0"),
            // Tiny exponents once overflowed 10^k inside the conversion (a panic in apply).
            ("1", "1e-77", "1"),
            ("0", "1e-4000", "0"),
            ("5", "-1e-300", "5"),
            ("1", "-1", "0"),
            ("0", "-0.5", "-0.5"),
            ("1.5", "1.5", "3"),
            ("0", "0", "0"),
            ("-3", "1", "-2"),
            ("9007199254740993", "0", "9007199254740993"),
            ("18446744073709551617", "0", "18446744073709551616"),
            // Checked against x87 long double + glibc printf: the binary noise Redis shows
            // once the integer part is large must be reproduced too.
            ("1000", "0.1", "1000.09999999999999998"),
            ("100000", "1.1", "100001.10000000000000142"),
            (
                "123456789.123456789",
                "0.000000001",
                "123456789.12345678999554366",
            ),
            ("819408.1", "-819756.7015764", "-348.60157639999999901"),
            ("-36954.364", "-865304.768314", "-902259.13231399999995119"),
            ("837927.10", "-916978.276", "-79051.17599999999998772"),
            ("-0.1", "0.1", "0"),
        ];
        for &(a, b, want) in cases {
            assert_eq!(add(a, b).as_deref(), Some(want), "{a} + {b}");
        }
    }

    #[test]
    fn huge_values_are_long_doubles_too() {
        // Each as redis-server 7.0.15 printed it (x87 long double, glibc's %.17Lf).
        let r308 = "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048";
        assert_eq!(add("1e308", "0").as_deref(), Some(r308));
        assert_eq!(
            add("1e38", "0").as_deref(),
            Some("99999999999999999999312600448599326720")
        );
        assert_eq!(
            add("1e39", "0").as_deref(),
            Some("999999999999999999993126004485993267200")
        );
        let neg = add("-2.5e100", "0").unwrap();
        assert!(neg.starts_with("-24999999999999999999173383830518356548746747549571240198178"));
        assert_eq!(neg.len(), 102);
        let max = add("1.18973149535723176502e4932", "0").unwrap();
        assert!(max.starts_with("118973149535723176502126385303097020516906332229462420044032"));
        assert_eq!(max.len(), 4933);
        assert_eq!(add("1e4000", "-1e4000").as_deref(), Some("0"));
        assert_eq!(add("1e300", "1e300").map(|s| s.len()), Some(301));
        // Past the range: the operand is no float, a sum is NaN/Infinity.
        for s in ["1e5000", "-1e5000", "1e-5000", "1.2e4932", "0x1p16384"] {
            assert!(operand(s.as_bytes()).is_none(), "{s}");
        }
        assert!(matches!(operand(b"1e-4940"), Some(Operand::Finite(_))));
        assert_eq!(add("1.1e4932", "1.1e4932"), None);
    }

    #[test]
    fn incrbyfloat_command() {
        let mut db = db_with(&[("k", "10.50"), ("bad", "abc"), ("sp", " 1")]);
        check(
            &mut db,
            &[
                (&["INCRBYFLOAT", "k", "0.1"], bulk("10.6")),
                (&["INCRBYFLOAT", "k", "-5"], bulk("5.6")),
                (&["GET", "k"], bulk("5.6")),
                (&["SET", "e", "5.0e3", "EX", "100"], ok()),
                (&["INCRBYFLOAT", "e", "2.0e2"], bulk("5200")),
                (&["TTL", "e"], int(100)),
                (&["INCRBYFLOAT", "new", "0.1"], bulk("0.1")),
                (&["INCRBYFLOAT", "new", "0.2"], bulk("0.3")),
                (
                    &["INCRBYFLOAT", "bad", "1"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "sp", "1"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "k", "x"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "k", "inf"],
                    err("ERR increment would produce NaN or Infinity"),
                ),
                (
                    &["INCRBYFLOAT", "k", "-Infinity"],
                    err("ERR increment would produce NaN or Infinity"),
                ),
                (
                    &["INCRBYFLOAT", "k", "infx"],
                    err("ERR value is not a valid float"),
                ),
                (&["SET", "i", "inf"], ok()),
                (
                    &["INCRBYFLOAT", "i", "1"],
                    err("ERR increment would produce NaN or Infinity"),
                ),
                (
                    &["INCRBYFLOAT", "i", "x"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "k", "nan"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "k", ""],
                    err("ERR value is not a valid float"),
                ),
                (&["SET", "h", "1.1e4932"], ok()),
                (
                    &["INCRBYFLOAT", "h", "1.1e4932"],
                    err("ERR increment would produce NaN or Infinity"),
                ),
                (&["GET", "h"], bulk("1.1e4932")),
                (
                    &["INCRBYFLOAT", "h", "1e5000"],
                    err("ERR value is not a valid float"),
                ),
                // The stored value is read first: past the range, it is no float.
                (&["SET", "o", "1e5000"], ok()),
                (
                    &["INCRBYFLOAT", "o", "inf"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "i", "1e5000"],
                    err("ERR value is not a valid float"),
                ),
                (
                    &["INCRBYFLOAT", "k"],
                    err("ERR wrong number of arguments for 'incrbyfloat' command"),
                ),
            ],
        );
    }
}
