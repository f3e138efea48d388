//! BITOP.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: stores the bitwise operation of the
/// sources, the shorter ones zero-padded to the longest (a missing key is empty), at
/// `dest` without a TTL, or deletes `dest` when every source is empty. Replies the
/// length stored. Every key must hash to one slot in cluster mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitOp {
    pub op: Op,
    pub dest: Bytes,
    pub srcs: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let name = &argv[1];
    let op = if name.eq_ignore_ascii_case(b"and") {
        Op::And
    } else if name.eq_ignore_ascii_case(b"or") {
        Op::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        Op::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        Op::Not
    } else {
        return Err(Reply::syntax_error());
    };
    if op == Op::Not && argv.len() != 4 {
        return Err(Reply::err(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    Ok(Command::Write(WriteCmd::BitOp(BitOp {
        op,
        dest: argv[2].clone(),
        srcs: argv[3..].to_vec(),
    })))
}

impl BitOp {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let mut srcs = Vec::with_capacity(self.srcs.len());
        for k in &self.srcs {
            match get_string(db, k, now_ms) {
                Ok(v) => srcs.push(v.map(|(b, _)| b).unwrap_or_default()),
                Err(e) => return e,
            }
        }
        let len = srcs.iter().map(Bytes::len).max().unwrap_or(0);
        if len == 0 {
            db.delete(&self.dest);
            return Reply::Int(0);
        }
        let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
        let mut out = BytesMut::with_capacity(len);
        for i in 0..len {
            let first = byte(&srcs[0], i);
            let rest = srcs[1..].iter().map(|s| byte(s, i));
            out.extend_from_slice(&[match self.op {
                Op::Not => !first,
                Op::And => rest.fold(first, |a, b| a & b),
                Op::Or => rest.fold(first, |a, b| a | b),
                Op::Xor => rest.fold(first, |a, b| a ^ b),
            }]);
        }
        db.put(&self.dest, str_value(out.freeze(), None));
        Reply::Int(len as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use bytes::Bytes;
    use redraft_proxy::wire::Reply;

    #[test]
    fn bitop() {
        let mut db = db_with(&[("a", "foobar"), ("b", "abcdef"), ("s", "ab")]);
        check(
            &mut db,
            &[
                (&["BITOP", "AND", "d", "a", "b"], int(6)),
                (&["GET", "d"], bulk("`bc`ab")),
                (&["BITOP", "or", "d", "a", "b"], int(6)),
                (&["GET", "d"], bulk("goofev")),
                (&["BITOP", "XOR", "d", "a", "a"], int(6)),
                (&["GET", "d"], bulk("\0\0\0\0\0\0")),
                // Shorter and missing sources are zero-padded.
                (&["BITOP", "AND", "d", "a", "s"], int(6)),
                (&["GET", "d"], bulk("`b\0\0\0\0")),
                (&["BITOP", "OR", "d", "s", "none"], int(2)),
                (&["GET", "d"], bulk("ab")),
                (&["SET", "t", "x", "EX", "50"], ok()),
                (&["BITOP", "NOT", "t", "s"], int(2)),
                (&["GET", "t"], Reply::Bulk(Bytes::from_static(b"\x9e\x9d"))),
                (&["TTL", "t"], int(-1)),
                // Only empty sources: dest is deleted.
                (&["BITOP", "OR", "d", "none", "none2"], int(0)),
                (&["EXISTS", "d"], int(0)),
                (
                    &["BITOP", "NOT", "d", "a", "b"],
                    err("ERR BITOP NOT must be called with a single source key."),
                ),
                (&["BITOP", "NAND", "d", "a"], err("ERR syntax error")),
            ],
        );
    }
}
