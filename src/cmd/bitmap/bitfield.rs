//! BITFIELD and BITFIELD_RO.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{bit_at, parse_offset, string_for_bits};
use crate::cmd::args::{parse_i64, ParseResult};
use crate::cmd::{get_string, str_value, Command, ReadCmd, WriteCmd};
use crate::db::{DbRead, DbWrite};
use redraft_proxy::wire::Reply;

/// What a SET or INCRBY does with a value its field cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    Wrap,
    Sat,
    /// Writes nothing and replies null.
    Fail,
}

/// An integer of `bits` bits (1–64 signed, 1–63 unsigned) at bit `offset`, most
/// significant bit first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub signed: bool,
    pub bits: u8,
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldOp {
    Get(Field),
    /// Replies the old value.
    Set(Field, i64, Overflow),
    /// Replies the new value.
    IncrBy(Field, i64, Overflow),
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
/// OVERFLOW WRAP|SAT|FAIL ...]`: its operations in order, one reply each. One that writes
/// first grows the string, zero-padded, to its farthest field (creating a missing key),
/// even if every write then fails. With only GETs it changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitField {
    pub key: Bytes,
    pub ops: Vec<FieldOp>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::BitField(parse_ops(argv)?)))
}

/// BITFIELD_RO: BITFIELD's syntax, and GETs only.
pub fn parse_ro(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let f = parse_ops(argv)?;
    if !f.is_read_only() {
        return Err(Reply::err(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    Ok(Command::Read(ReadCmd::BitFieldRo(f)))
}

fn parse_type(arg: &[u8]) -> Result<(bool, u8), Reply> {
    let err = || {
        Reply::err(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    match redraft_proxy::wire::request::string2ll(&arg[1..]) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u8)),
        _ => Err(err()),
    }
}

/// Redis's bitfieldGeneric argument loop: each operation's errors in argument order.
fn parse_ops(argv: &[Bytes]) -> Result<BitField, Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let sub = &argv[j];
        let is = |n: &str| sub.eq_ignore_ascii_case(n.as_bytes());
        let kind = if is("get") && left >= 2 {
            0
        } else if is("set") && left >= 3 {
            1
        } else if is("incrby") && left >= 3 {
            2
        } else if is("overflow") && left >= 1 {
            let t = &argv[j + 1];
            overflow = if t.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if t.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if t.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(Reply::syntax_error());
        };
        let (signed, bits) = parse_type(&argv[j + 1])?;
        let offset = parse_offset(&argv[j + 2], Some(u64::from(bits)))?;
        let field = Field {
            signed,
            bits,
            offset,
        };
        ops.push(match kind {
            0 => FieldOp::Get(field),
            1 => FieldOp::Set(field, parse_i64(&argv[j + 3])?, overflow),
            _ => FieldOp::IncrBy(field, parse_i64(&argv[j + 3])?, overflow),
        });
        j += if kind == 0 { 3 } else { 4 };
    }
    Ok(BitField {
        key: argv[1].clone(),
        ops,
    })
}

fn get_unsigned(b: &[u8], f: Field) -> u64 {
    (0..u64::from(f.bits)).fold(0, |v, j| v << 1 | u64::from(bit_at(b, f.offset + j)))
}

fn get_signed(b: &[u8], f: Field) -> i64 {
    let u = get_unsigned(b, f);
    if f.bits < 64 && u & (1 << (f.bits - 1)) != 0 {
        (u | (u64::MAX << f.bits)) as i64
    } else {
        u as i64
    }
}

/// Writes the low `f.bits` bits of `v`; `b` holds the field.
fn set_bits(b: &mut [u8], f: Field, v: u64) {
    for j in 0..u64::from(f.bits) {
        let at = f.offset + j;
        let mask = 0x80 >> (at & 7);
        let byte = &mut b[(at >> 3) as usize];
        if v >> (u64::from(f.bits) - 1 - j) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Redis's checkUnsignedBitfieldOverflow: None if `value + incr` fits in `bits` bits,
/// else the value `ow` makes of it (None again for FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u8, ow: Overflow) -> Option<Option<u64>> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let sat = if value > max || (incr > 0 && incr > max_incr) {
        max
    } else if incr < 0 && incr < min_incr {
        0
    } else {
        return None;
    };
    Some(match ow {
        Overflow::Wrap => Some(value.wrapping_add(incr as u64) & !(u64::MAX << bits)),
        Overflow::Sat => Some(sat),
        Overflow::Fail => None,
    })
}

/// Redis's checkSignedBitfieldOverflow, as [`unsigned_overflow`].
fn signed_overflow(value: i64, incr: i64, bits: u8, ow: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let sat = if value > max
        || (bits != 64 && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr)
    {
        max
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        min
    } else {
        return None;
    };
    Some(match ow {
        Overflow::Wrap => {
            let mut c = (value as u64).wrapping_add(incr as u64);
            if bits < 64 {
                let mask = u64::MAX << bits;
                if c & (1 << (bits - 1)) != 0 {
                    c |= mask;
                } else {
                    c &= !mask;
                }
            }
            Some(c as i64)
        }
        Overflow::Sat => Some(sat),
        Overflow::Fail => None,
    })
}

/// A GET's reply.
fn get(b: &[u8], f: Field) -> Reply {
    Reply::Int(if f.signed {
        get_signed(b, f)
    } else {
        get_unsigned(b, f) as i64
    })
}

/// A SET's or INCRBY's reply, writing the field unless it overflows under FAIL.
fn write(b: &mut [u8], op: &FieldOp) -> Reply {
    let (f, arg, ow, incr) = match *op {
        FieldOp::Get(f) => return get(b, f),
        FieldOp::Set(f, v, ow) => (f, v, ow, false),
        FieldOp::IncrBy(f, v, ow) => (f, v, ow, true),
    };
    let (new, reply) = if f.signed {
        let old = get_signed(b, f);
        let (value, by) = if incr { (old, arg) } else { (arg, 0) };
        let new = match signed_overflow(value, by, f.bits, ow) {
            None => value.wrapping_add(by),
            Some(Some(v)) => v,
            Some(None) => return Reply::Null,
        };
        (new as u64, if incr { new } else { old })
    } else {
        let old = get_unsigned(b, f);
        let (value, by) = if incr { (old, arg) } else { (arg as u64, 0) };
        let new = match unsigned_overflow(value, by, f.bits, ow) {
            None => value.wrapping_add(by as u64),
            Some(Some(v)) => v,
            Some(None) => return Reply::Null,
        };
        (new, if incr { new as i64 } else { old as i64 })
    };
    set_bits(b, f, new);
    Reply::Int(reply)
}

impl BitField {
    fn is_read_only(&self) -> bool {
        self.ops.iter().all(|op| matches!(op, FieldOp::Get(_)))
    }

    /// BITFIELD_RO, and a BITFIELD of GETs: a missing key reads as zeros.
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let b = match get_string(db, &self.key, now_ms) {
            Ok(v) => v.map(|(b, _)| b).unwrap_or_default(),
            Err(e) => return e,
        };
        Reply::Array(
            self.ops
                .iter()
                .map(|op| match *op {
                    FieldOp::Get(f) => get(&b, f),
                    _ => unreachable!("a read-only BITFIELD has only GETs"),
                })
                .collect(),
        )
    }

    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        if self.is_read_only() {
            return self.execute(db, now_ms);
        }
        let farthest = self
            .ops
            .iter()
            .filter_map(|op| match op {
                FieldOp::Get(_) => None,
                FieldOp::Set(f, ..) | FieldOp::IncrBy(f, ..) => {
                    Some(f.offset + u64::from(f.bits) - 1)
                }
            })
            .max()
            .unwrap_or(0);
        // Every field within the string: written in place when nothing else holds it.
        if let Ok(Some((b, _))) = get_string(db, &self.key, now_ms) {
            if (farthest >> 3) < b.len() as u64 {
                drop(b);
                let mut replies = Vec::new();
                let ops = &self.ops;
                let mut run = |v: &mut [u8]| replies = ops.iter().map(|op| write(v, op)).collect();
                if db.modify_in_place(&self.key, &mut run) {
                    return Reply::Array(replies);
                }
            }
        }
        let (mut b, ttl, _) = match string_for_bits(db, &self.key, farthest, now_ms) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let replies = self.ops.iter().map(|op| write(&mut b, op)).collect();
        db.put(&self.key, str_value(b.freeze(), ttl));
        Reply::Array(replies)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&i| int(i)).collect())
    }

    #[test]
    fn bitfield() {
        let mut db = db_with(&[]);
        let incr = [
            "BITFIELD", "c", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT",
        ];
        let incr = [&incr[..], &["INCRBY", "u2", "102", "1"]].concat();
        check(
            &mut db,
            &[
                (&["BITFIELD", "m", "INCRBY", "i5", "100", "1", "GET", "u4", "0"], ints(&[1, 0])),
                (&incr, ints(&[1, 1])),
                (&incr, ints(&[2, 2])),
                (&incr, ints(&[3, 3])),
                (&incr, ints(&[0, 3])),
                (
                    &["BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "102", "1"],
                    Reply::Array(vec![Reply::Null]),
                ),
                (
                    &["BITFIELD", "s", "SET", "i8", "#1", "-100", "GET", "i8", "8", "GET", "u8", "8"],
                    ints(&[0, -100, 156]),
                ),
                (
                    &["BITFIELD", "s", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "SET", "i4", "0", "100", "GET", "u8", "0"],
                    ints(&[0, -1, 127]),
                ),
                (
                    &["BITFIELD", "w", "SET", "i8", "0", "127", "INCRBY", "i8", "0", "1", "INCRBY", "u3", "0", "9"],
                    ints(&[0, -128, 5]),
                ),
                // GETs alone create nothing; a failed write still creates the key.
                (&["BITFIELD", "none", "GET", "u8", "0"], ints(&[0])),
                (&["EXISTS", "none"], int(0)),
                (
                    &["BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "u2", "10", "9"],
                    Reply::Array(vec![Reply::Null]),
                ),
                (&["GET", "f"], bulk("\0\0")),
                (&["BITFIELD_RO", "s", "GET", "i8", "8"], ints(&[-100])),
                (
                    &["BITFIELD_RO", "s", "GET", "i8", "8", "SET", "u8", "0", "1"],
                    err("ERR BITFIELD_RO only supports the GET subcommand"),
                ),
                (
                    &["BITFIELD", "s", "GET", "u64", "0"],
                    err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."),
                ),
                (
                    &["BITFIELD", "s", "GET", "i8", "x"],
                    err("ERR bit offset is not an integer or out of range"),
                ),
                (&["BITFIELD", "s", "OVERFLOW", "nope"], err("ERR Invalid OVERFLOW type specified")),
                (&["BITFIELD", "s", "GET", "i8"], err("ERR syntax error")),
                (
                    &["BITFIELD", "s", "SET", "i8", "0", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
            ],
        );
    }
}
