//! GETRANGE.

use bytes::Bytes;

use crate::cmd::args::{parse_i64, ParseResult};
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `GETRANGE key start end`: the inclusive substring, negative indexes counting from the
/// end. A missing key and every empty range reply `""`, never null.
#[derive(Clone, Debug, PartialEq)]
pub struct GetRange {
    pub key: Bytes,
    pub start: i64,
    pub end: i64,
}

/// The indexes are parsed before the key is looked up, as in Redis.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let start = parse_i64(&argv[2])?;
    let end = parse_i64(&argv[3])?;
    Ok(Command::Read(ReadCmd::GetRange(GetRange {
        key: argv[1].clone(),
        start,
        end,
    })))
}

/// getrangeCommand's index arithmetic; None is the empty string.
pub fn range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = len as i128;
    let fix = |i: i64| {
        let i = i128::from(i);
        (if i < 0 { len + i } else { i }).max(0)
    };
    let start = fix(start);
    let mut end = fix(end);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

impl GetRange {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(Some((v, _))) => match range(v.len(), self.start, self.end) {
                Some((s, e)) => Reply::Bulk(v.slice(s..=e)),
                None => Reply::Bulk(Bytes::new()),
            },
            Ok(None) => Reply::Bulk(Bytes::new()),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn getrange() {
        let mut db = db_with(&[("k", "Hello World"), ("e", "")]);
        check(
            &mut db,
            &[
                (&["GETRANGE", "k", "-4", "-1"], bulk("orld")),
                (&["GETRANGE", "k", "5", "3"], bulk("")),
                (&["GETRANGE", "k", "-5000", "10000"], bulk("Hello World")),
                (&["GETRANGE", "k", "0", "4"], bulk("Hello")),
                (&["GETRANGE", "k", "0", "-1"], bulk("Hello World")),
                (&["GETRANGE", "k", "-1", "-5"], bulk("")),
                (&["GETRANGE", "k", "10", "100"], bulk("d")),
                (&["GETRANGE", "k", "11", "100"], bulk("")),
                (
                    &[
                        "GETRANGE",
                        "k",
                        "-9223372036854775808",
                        "9223372036854775807",
                    ],
                    bulk("Hello World"),
                ),
                (&["GETRANGE", "e", "0", "-1"], bulk("")),
                (&["GETRANGE", "missing", "0", "-1"], bulk("")),
                (
                    &["GETRANGE", "missing", "x", "-1"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["GETRANGE", "k", "0", "1.5"],
                    err("ERR value is not an integer or out of range"),
                ),
            ],
        );
    }
}
