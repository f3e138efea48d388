//! BITPOS.

use bytes::Bytes;

use super::{bit_range, parse_unit};
use crate::cmd::args::{parse_i64, ParseResult};
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::request::string2ll;
use redraft_proxy::wire::Reply;

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the first bit set (or clear) in the string or
/// a range of it. A missing key is all zeros: 0 for a clear bit, -1 for a set one. With no
/// end given, the bits past the string count as clear. As in Redis 7.0, the range is read
/// only once the key is found, so it is kept raw.
#[derive(Clone, Debug, PartialEq)]
pub struct BitPos {
    pub key: Bytes,
    pub bit: bool,
    pub args: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let bit = match string2ll(&argv[2]) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Err(Reply::err("ERR The bit argument must be 1 or 0.")),
        None => return Err(Reply::not_integer()),
    };
    Ok(Command::Read(ReadCmd::BitPos(BitPos {
        key: argv[1].clone(),
        bit,
        args: argv[3..].to_vec(),
    })))
}

/// The first bit equal to `bit` from bit `first` to bit `last` of `b` (both within it),
/// skipping whole bytes that cannot hold it (a scan of a long bitmap is a slice search,
/// not a test per bit).
fn first_bit(b: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    // The byte's bits equal to `bit` as ones, those outside the range cleared.
    let wanted = |i: usize| {
        let mut x = if bit { b[i] } else { !b[i] };
        if i == fb {
            x &= 0xff >> (first & 7);
        }
        if i == lb {
            x &= 0xff << (7 - (last & 7));
        }
        x
    };
    let skip = if bit { 0x00 } else { 0xff };
    let hit = if wanted(fb) != 0 {
        Some(fb)
    } else if lb > fb {
        b[fb + 1..lb]
            .iter()
            .position(|&x| x != skip)
            .map(|p| fb + 1 + p)
            .or((wanted(lb) != 0).then_some(lb))
    } else {
        None
    };
    hit.map(|i| (i as u64) << 3 | u64::from(wanted(i).leading_zeros()))
}

impl BitPos {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let b = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, _))) => b,
            Ok(None) => return Reply::Int(if self.bit { -1 } else { 0 }),
            Err(e) => return e,
        };
        if self.args.len() > 3 {
            return Reply::syntax_error();
        }
        let start = match self.args.first().map(|a| parse_i64(a)).transpose() {
            Ok(s) => s.unwrap_or(0),
            Err(e) => return e,
        };
        // Redis reads the unit before the end.
        let in_bits = match self.args.get(2).map(|u| parse_unit(u)).transpose() {
            Ok(u) => u.unwrap_or(false),
            Err(e) => return e,
        };
        let end = match self.args.get(1).map(|a| parse_i64(a)).transpose() {
            Ok(e) => e,
            Err(e) => return e,
        };
        let Some((first, last)) = bit_range(b.len(), start, end.unwrap_or(-1), in_bits) else {
            return Reply::Int(-1);
        };
        match first_bit(&b, first, last, self.bit) {
            Some(i) => Reply::Int(i as i64),
            // No clear bit in the range: with no end given, the string is zero-padded, so
            // the first clear bit is the one after the range's last byte.
            None if !self.bit && end.is_none() => Reply::Int((((last >> 3) + 1) << 3) as i64),
            None => Reply::Int(-1),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn bitpos() {
        // k: 11111111 11110000 00000000, ones: 11111111.
        let mut db = db_with(&[]);
        for i in 0..12 {
            run(&mut db, &["SETBIT", "k", &i.to_string(), "1"]);
        }
        run(&mut db, &["SETBIT", "k", "23", "0"]);
        for i in 0..8 {
            run(&mut db, &["SETBIT", "ones", &i.to_string(), "1"]);
        }
        check(
            &mut db,
            &[
                (&["BITPOS", "k", "0"], int(12)),
                (&["BITPOS", "k", "1"], int(0)),
                (&["BITPOS", "k", "1", "2"], int(-1)),
                (&["BITPOS", "k", "1", "1"], int(8)),
                (&["BITPOS", "k", "0", "1", "1"], int(12)),
                (&["BITPOS", "k", "1", "7", "15", "BIT"], int(7)),
                (&["BITPOS", "k", "0", "7", "11", "BIT"], int(-1)),
                (&["BITPOS", "k", "0", "7", "12", "bit"], int(12)),
                (&["BITPOS", "ones", "0"], int(8)),
                (&["BITPOS", "ones", "0", "0", "-1"], int(-1)),
                (&["BITPOS", "ones", "1", "1"], int(-1)),
                (&["BITPOS", "none", "0"], int(0)),
                (&["BITPOS", "none", "1"], int(-1)),
                (&["BITPOS", "none", "1", "x"], int(-1)),
                (
                    &["BITPOS", "k", "2"],
                    err("ERR The bit argument must be 1 or 0."),
                ),
                (
                    &["BITPOS", "k", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["BITPOS", "k", "1", "0", "1", "BITS"],
                    err("ERR syntax error"),
                ),
                (
                    &["BITPOS", "k", "1", "0", "1", "BIT", "x"],
                    err("ERR syntax error"),
                ),
            ],
        );
    }
}
