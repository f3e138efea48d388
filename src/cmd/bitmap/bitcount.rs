//! BITCOUNT.

use bytes::Bytes;

use super::{bit_range, parse_unit};
use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `BITCOUNT key [start end [BYTE|BIT]]`: the set bits of the string or of a range of it.
/// As in Redis 7.0, a missing key answers 0 before the arguments are looked at, so they
/// are kept raw and checked at execution.
#[derive(Clone, Debug, PartialEq)]
pub struct BitCount {
    pub key: Bytes,
    pub args: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::BitCount(BitCount {
        key: argv[1].clone(),
        args: argv[2..].to_vec(),
    })))
}

/// The set bits from bit `first` to bit `last` of `b`, both included.
pub(crate) fn count_ones(b: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let whole: u64 = b[fb..=lb].iter().map(|x| u64::from(x.count_ones())).sum();
    // Take away the bits of the edge bytes outside the range.
    let head = b[fb] & !(0xffu8 >> (first & 7));
    let tail = b[lb] & (0x7fu8 >> (last & 7));
    whole - u64::from(head.count_ones()) - u64::from(tail.count_ones())
}

impl BitCount {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let b = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, _))) => b,
            Ok(None) => return Reply::Int(0),
            Err(e) => return e,
        };
        let range = match self.args.as_slice() {
            [] => bit_range(b.len(), 0, -1, false),
            [start, end, unit @ ..] if unit.len() <= 1 => {
                let start = match crate::cmd::args::parse_i64(start) {
                    Ok(i) => i,
                    Err(e) => return e,
                };
                let end = match crate::cmd::args::parse_i64(end) {
                    Ok(i) => i,
                    Err(e) => return e,
                };
                // Both from the end and crossed: empty, before they are clamped to 0 (and,
                // in Redis 7.0, before the unit is read).
                if start < 0 && end < 0 && start > end {
                    return Reply::Int(0);
                }
                let in_bits = match unit.first().map(|u| parse_unit(u)).transpose() {
                    Ok(u) => u.unwrap_or(false),
                    Err(e) => return e,
                };
                bit_range(b.len(), start, end, in_bits)
            }
            _ => return Reply::syntax_error(),
        };
        Reply::Int(range.map_or(0, |(f, l)| count_ones(&b, f, l)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn bitcount() {
        let mut db = db_with(&[("k", "foobar")]);
        check(
            &mut db,
            &[
                (&["BITCOUNT", "k"], int(26)),
                (&["BITCOUNT", "k", "0", "0"], int(4)),
                (&["BITCOUNT", "k", "1", "1"], int(6)),
                (&["BITCOUNT", "k", "1", "1", "BYTE"], int(6)),
                (&["BITCOUNT", "k", "5", "30", "BIT"], int(17)),
                (&["BITCOUNT", "k", "-2", "-1"], int(7)),
                (&["BITCOUNT", "k", "-1", "-2"], int(0)),
                (&["BITCOUNT", "k", "-4", "-28"], int(0)),
                (&["BITCOUNT", "k", "-4", "-28", "BITS"], int(0)),
                (&["BITCOUNT", "k", "-28", "-6"], int(4)),
                (&["BITCOUNT", "k", "2", "100"], int(16)),
                (&["BITCOUNT", "k", "-100", "100"], int(26)),
                (&["BITCOUNT", "k", "1", "1", "bit"], int(1)),
                (&["BITCOUNT", "k", "1"], err("ERR syntax error")),
                (
                    &["BITCOUNT", "k", "1", "1", "BITS"],
                    err("ERR syntax error"),
                ),
                (
                    &["BITCOUNT", "k", "1", "1", "BIT", "x"],
                    err("ERR syntax error"),
                ),
                (
                    &["BITCOUNT", "k", "a", "1"],
                    err("ERR value is not an integer or out of range"),
                ),
                // Redis 7.0 answers a missing key before it reads the arguments.
                (&["BITCOUNT", "none", "1"], int(0)),
                (&["BITCOUNT", "none", "a", "b"], int(0)),
            ],
        );
    }
}
