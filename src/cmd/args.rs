//! Argument parsing with Redis's exact rules: strict string2ll integers, keyword matching,
//! and the error texts every command shares.

use bytes::Bytes;
use redraft_proxy::wire::Reply;

/// Result of a command parser: an error is the reply itself.
pub type ParseResult<T> = Result<T, Reply>;

/// A cursor over the arguments after the command name (and subcommand).
pub struct Args<'a> {
    argv: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    /// Starts at `argv[start]`.
    pub fn new(argv: &'a [Bytes], start: usize) -> Self {
        Args {
            argv,
            pos: start.min(argv.len()),
        }
    }

    /// The next argument; its absence is a syntax error (an option keyword without a value).
    pub fn value(&mut self) -> ParseResult<&'a Bytes> {
        self.next().ok_or_else(Reply::syntax_error)
    }

    /// Arguments not consumed yet.
    pub fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a Bytes;

    fn next(&mut self) -> Option<&'a Bytes> {
        let b = self.argv.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

/// Case-insensitive keyword match (`kw` is given in lower case).
pub fn is_kw(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

pub use redraft_proxy::wire::request::string2ll;

/// An i64 argument, or Redis's "not an integer" error.
pub fn parse_i64(b: &[u8]) -> ParseResult<i64> {
    string2ll(b).ok_or_else(Reply::not_integer)
}

/// A 32-bit argument (SELECT, COPY DB) with getIntFromObjectOrReply's two error texts.
pub fn parse_i32(b: &[u8]) -> ParseResult<i32> {
    let v = parse_i64(b)?;
    i32::try_from(v).map_err(|_| {
        Reply::err("ERR value is out of range, value must between -2147483648 and 2147483647")
    })
}

pub use redraft_proxy::wire::table::{cut, err_arg, err_text};

/// A float argument as strtold read it, kept as an exact decimal `±mant × 10^exp10` so that
/// INCRBYFLOAT can add without binary noise (see `string::incrbyfloat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub neg: bool,
    /// At most 38 significant digits; digits beyond are dropped (far below the 64-bit
    /// mantissa a long double keeps).
    pub mant: u128,
    pub exp10: i32,
}

/// Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses inputs this long or longer.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;
/// Keep accumulating digits while below this, so `mant * 10 + 9` still fits.
const MANT_LIMIT: u128 = 10u128.pow(37);
/// Decimal exponents (of the leading digit) outside these surely overflow or underflow an
/// x87 long double (about 1.19e4932, and 3.6e-4951 subnormal): strtold's ERANGE. Within
/// them, INCRBYFLOAT's conversion to binary finds the exact bounds.
const LD_EXP_RANGE: std::ops::RangeInclusive<i64> = -4952..=4932;

/// Redis's string2ld: strtold over the whole string. Accepts `+1.5`, `1e3`, `.5`, hex
/// (`0x10`, `0x1.8p3`); rejects leading space, trailing bytes, empty input, inf/nan,
/// overflow, underflow and inputs of 5120 bytes or more.
pub fn parse_long_double(b: &[u8]) -> Option<Decimal> {
    if b.is_empty()
        || b.len() >= MAX_LONG_DOUBLE_CHARS
        || b[0].is_ascii_whitespace()
        || b[0] == 0x0b
    {
        return None;
    }
    let (neg, body) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let d =
        if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' && hex_start(&body[2..]) {
            parse_hex(&body[2..])?
        } else {
            parse_dec(body)?
        };
    Some(Decimal { neg, ..d })
}

fn hex_start(b: &[u8]) -> bool {
    match b {
        [c, ..] if c.is_ascii_hexdigit() => true,
        [b'.', c, ..] if c.is_ascii_hexdigit() => true,
        _ => false,
    }
}

/// Digits with an optional point, then an optional exponent (`e` for decimal, `p` for hex).
/// Returns (mantissa, digits dropped or after the point as an exponent, rest of the input);
/// None without any digit.
fn digits(b: &[u8], radix: u32) -> Option<(u128, i64, &[u8])> {
    let (mut mant, mut exp, mut any, mut point) = (0u128, 0i64, false, false);
    let limit = if radix == 10 {
        MANT_LIMIT
    } else {
        1u128 << 120
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !point {
            point = true;
        } else if let Some(v) = (c as char).to_digit(radix) {
            any = true;
            if mant < limit {
                mant = mant * u128::from(radix) + u128::from(v);
                if point {
                    exp -= 1;
                }
            } else if !point {
                exp += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    any.then_some((mant, exp, &b[i..]))
}

/// An optional exponent marker and signed decimal exponent, saturating; None if bytes
/// remain after it. A marker without digits is left unread (so it is trailing garbage).
fn exponent(b: &[u8], marker: u8) -> Option<i64> {
    if b.is_empty() {
        return Some(0);
    }
    if b[0] | 0x20 != marker {
        return None;
    }
    let (neg, digits) = match b.get(1) {
        Some(b'-') => (true, &b[2..]),
        Some(b'+') => (false, &b[2..]),
        _ => (false, &b[1..]),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut e: i64 = 0;
    for &d in digits {
        e = (e * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    Some(if neg { -e } else { e })
}

fn parse_dec(b: &[u8]) -> Option<Decimal> {
    let (mant, exp, rest) = digits(b, 10)?;
    let e = exp.checked_add(exponent(rest, b'e')?)?;
    if mant == 0 {
        return Some(Decimal {
            neg: false,
            mant: 0,
            exp10: 0,
        });
    }
    let lead = e + mant.ilog10() as i64;
    if !LD_EXP_RANGE.contains(&lead) {
        return None;
    }
    Some(Decimal {
        neg: false,
        mant,
        exp10: e as i32,
    })
}

/// Hex floats are exact in binary; they become decimals exactly when small enough, and go
/// through f64 otherwise (a deviation only for hex input beyond 38 digits).
fn parse_hex(b: &[u8]) -> Option<Decimal> {
    let (mant, exp, rest) = digits(b, 16)?;
    let e2 = exp.checked_mul(4)?.checked_add(exponent(rest, b'p')?)?;
    if mant == 0 {
        return Some(Decimal {
            neg: false,
            mant: 0,
            exp10: 0,
        });
    }
    if e2 >= 0 {
        let shifted = u32::try_from(e2)
            .ok()
            .and_then(|s| mant.checked_mul(1u128.checked_shl(s)?));
        if let Some(v) = shifted.filter(|v| *v < 1u128 << 127) {
            return Some(Decimal {
                neg: false,
                mant: v,
                exp10: 0,
            });
        }
    } else if e2 >= -50 {
        // m / 2^k = m * 5^k / 10^k.
        if let Some(v) = mant.checked_mul(5u128.pow((-e2) as u32)) {
            return Some(Decimal {
                neg: false,
                mant: v,
                exp10: e2 as i32,
            });
        }
    }
    let f = (mant as f64) * 2f64.powi(e2.clamp(-20000, 20000) as i32);
    decimal_from_f64(f)
}

/// The exact-enough decimal of a finite, nonzero f64 (its shortest round-trip form).
pub fn decimal_from_f64(f: f64) -> Option<Decimal> {
    if !f.is_finite() || f == 0.0 {
        return None;
    }
    let s = format!("{:e}", f.abs());
    let d = parse_dec(s.as_bytes())?;
    Some(Decimal { neg: f < 0.0, ..d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_is_strict() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1", Some(1)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("+1", None),
            ("01", None),
            ("-0", None),
            ("1.0", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("00000000000000000000001", None),
            ("abc", None),
        ];
        for &(s, want) in cases {
            assert_eq!(string2ll(s.as_bytes()), want, "{s:?}");
        }
    }

    #[test]
    fn long_double_grammar() {
        let d = |neg, mant, exp10| Some(Decimal { neg, mant, exp10 });
        let cases: &[(&str, Option<Decimal>)] = &[
            ("1", d(false, 1, 0)),
            ("+1.5", d(false, 15, -1)),
            ("-1.5", d(true, 15, -1)),
            ("1e3", d(false, 1, 3)),
            ("5.0e3", d(false, 50, 2)),
            ("1E-2", d(false, 1, -2)),
            (".5", d(false, 5, -1)),
            ("5.", d(false, 5, 0)),
            ("0x10", d(false, 16, 0)),
            ("0x1.8p1", d(false, 3000, -3)),
            ("0", d(false, 0, 0)),
            ("0e999999", d(false, 0, 0)),
            ("1e4000", d(false, 1, 4000)),
            ("1e5000", None),
            ("1e-5000", None),
            ("1e99999999999999999999", None),
            ("inf", None),
            ("-infinity", None),
            ("nan", None),
            ("", None),
            (" 1", None),
            ("1 ", None),
            ("1e", None),
            ("1e+", None),
            ("0x", None),
            ("abc", None),
            ("1.2.3", None),
            (".", None),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_long_double(s.as_bytes()), want, "{s:?}");
        }
        assert_eq!(parse_long_double("1".repeat(5120).as_bytes()), None);
        assert!(parse_long_double(format!("1.{}", "0".repeat(5117)).as_bytes()).is_some());
        assert!(parse_long_double(format!("1.{}", "0".repeat(5118)).as_bytes()).is_none());
        assert!(parse_long_double(format!("0.{}", "1".repeat(100)).as_bytes()).is_some());
    }

    #[test]
    fn i32_errors() {
        assert_eq!(parse_i32(b"2147483647"), Ok(i32::MAX));
        assert_eq!(
            parse_i32(b"2147483648"),
            Err(Reply::err(
                "ERR value is out of range, value must between -2147483648 and 2147483647"
            ))
        );
        assert_eq!(parse_i32(b"x"), Err(Reply::not_integer()));
    }
}
