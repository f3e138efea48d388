//! SETBIT.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{bit_at, parse_offset, string_for_bits};
use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::request::string2ll;
use redraft_proxy::wire::Reply;

/// `SETBIT key offset 0|1`: replies the bit's old value. The string grows, zero-padded, to
/// hold the bit; a missing key is created even when the bit written is 0, as in Redis. A
/// bit within the string is written in place (O(1), as in Redis) unless a snapshot or a
/// reply shares the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetBit {
    pub key: Bytes,
    pub offset: u64,
    pub on: bool,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let offset = parse_offset(&argv[2], None)?;
    let on = match string2ll(&argv[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err(Reply::err("ERR bit is not an integer or out of range")),
    };
    Ok(Command::Write(WriteCmd::SetBit(SetBit {
        key: argv[1].clone(),
        offset,
        on,
    })))
}

/// Sets or clears bit `offset` of `b`, which holds it.
fn put_bit(b: &mut [u8], offset: u64, on: bool) {
    let mask = 0x80 >> (offset & 7);
    let byte = &mut b[(offset >> 3) as usize];
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

impl SetBit {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        // Within the string: flip the bit in place when nothing else holds the value.
        if let Ok(Some((b, _))) = get_string(db, &self.key, now_ms) {
            if (self.offset >> 3) < b.len() as u64 {
                let old = bit_at(&b, self.offset);
                drop(b);
                let (offset, on) = (self.offset, self.on);
                if old == on || db.modify_in_place(&self.key, &mut |v| put_bit(v, offset, on)) {
                    return Reply::Int(old.into());
                }
            }
        }
        let (mut b, ttl, changed) = match string_for_bits(db, &self.key, self.offset, now_ms) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let old = bit_at(&b, self.offset);
        if changed || old != self.on {
            put_bit(&mut b, self.offset, self.on);
            db.put(&self.key, str_value(b.freeze(), ttl));
        }
        Reply::Int(old.into())
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn setbit_and_getbit() {
        let mut db = db_with(&[("k", "`")]);
        let offset_err = err("ERR bit offset is not an integer or out of range");
        let bit_err = err("ERR bit is not an integer or out of range");
        check(
            &mut db,
            &[
                (&["GETBIT", "k", "1"], int(1)),
                (&["GETBIT", "k", "2"], int(1)),
                (&["GETBIT", "k", "3"], int(0)),
                (&["GETBIT", "k", "100"], int(0)),
                (&["GETBIT", "none", "0"], int(0)),
                (&["SETBIT", "k", "7", "1"], int(0)),
                (&["GET", "k"], bulk("a")),
                (&["SETBIT", "k", "7", "1"], int(1)),
                (&["SETBIT", "k", "1", "0"], int(1)),
                (&["GET", "k"], bulk("!")),
                (&["SETBIT", "k", "23", "1"], int(0)),
                (&["GET", "k"], bulk("!\0\x01")),
                // A missing key is created, zero-padded, even by a 0.
                (&["SETBIT", "z", "9", "0"], int(0)),
                (&["GET", "z"], bulk("\0\0")),
                (&["SETBIT", "k", "-1", "1"], offset_err.clone()),
                (&["SETBIT", "k", "x", "1"], offset_err.clone()),
                (&["SETBIT", "k", "4294967296", "1"], offset_err.clone()),
                (&["GETBIT", "k", "4294967296"], offset_err.clone()),
                (&["GETBIT", "k", "#1"], offset_err.clone()),
                (&["GETBIT", "k", "4294967295"], int(0)),
                (&["SETBIT", "k", "0", "2"], bit_err.clone()),
                (&["SETBIT", "k", "0", "-1"], bit_err.clone()),
                (&["SETBIT", "k", "0", "x"], bit_err),
                // The offset is checked first.
                (&["SETBIT", "k", "x", "x"], offset_err),
                (&["SET", "t", "a", "EX", "50"], ok()),
                (&["SETBIT", "t", "6", "1"], int(0)),
                (&["GET", "t"], bulk("c")),
                (&["TTL", "t"], int(50)),
            ],
        );
    }
}
