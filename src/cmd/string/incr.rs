//! INCR, DECR, INCRBY and DECRBY (Redis's incrDecrCommand).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{parse_i64, string2ll, ParseResult};
use crate::cmd::{get_string, str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `INCRBY key increment`, and `INCR key`, `DECR key`, `DECRBY key decrement` as deltas of
/// 1, -1 and -decrement. The new value is stored as decimal text and the TTL is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncrBy {
    #[serde(deserialize_with = "crate::codec::shared_bytes")]
    pub key: Bytes,
    pub delta: i64,
}

fn write(argv: &[Bytes], delta: i64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::IncrBy(IncrBy {
        key: argv[1].clone(),
        delta,
    })))
}

pub fn parse_incr(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    write(argv, 1)
}

pub fn parse_decr(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    write(argv, -1)
}

/// The delta is checked at parse time, so a bad delta wins over WRONGTYPE, as in Redis.
pub fn parse_incrby(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    write(argv, parse_i64(&argv[2])?)
}

pub fn parse_decrby(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let d = parse_i64(&argv[2])?;
    let delta = d
        .checked_neg()
        .ok_or_else(|| Reply::err("ERR decrement would overflow"))?;
    write(argv, delta)
}

impl IncrBy {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (old, ttl) = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, ttl))) => match string2ll(&b) {
                Some(n) => (n, ttl),
                None => return Reply::not_integer(),
            },
            Ok(None) => (0, None),
            Err(e) => return e,
        };
        let Some(new) = old.checked_add(self.delta) else {
            return Reply::err("ERR increment or decrement would overflow");
        };
        db.put(&self.key, str_value(Bytes::from(new.to_string()), ttl));
        Reply::Int(new)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    const NOT_INT: &str = "ERR value is not an integer or out of range";
    const OVERFLOW: &str = "ERR increment or decrement would overflow";

    #[test]
    fn incr_family() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["INCR", "n"], int(1)),
                (&["INCR", "n"], int(2)),
                (&["DECR", "n"], int(1)),
                (&["INCRBY", "n", "10"], int(11)),
                (&["DECRBY", "n", "20"], int(-9)),
                (&["GET", "n"], bulk("-9")),
                (&["DECR", "fresh"], int(-1)),
                (&["INCRBY", "n", "abc"], err(NOT_INT)),
                (&["INCRBY", "n", "+1"], err(NOT_INT)),
                (&["INCRBY", "n", "1.0"], err(NOT_INT)),
            ],
        );
    }

    #[test]
    fn stored_value_is_parsed_strictly() {
        let mut db = db_with(&[
            ("sp", " 11"),
            ("fl", "1.0"),
            ("z", "01"),
            ("big", "9223372036854775808"),
        ]);
        for k in ["sp", "fl", "z", "big"] {
            assert_eq!(run(&mut db, &["INCR", k]), err(NOT_INT), "{k}");
        }
    }

    #[test]
    fn overflow() {
        let mut db = db_with(&[
            ("max", "9223372036854775807"),
            ("min", "-9223372036854775808"),
        ]);
        check(
            &mut db,
            &[
                (&["INCR", "max"], err(OVERFLOW)),
                (&["DECR", "min"], err(OVERFLOW)),
                (&["INCRBY", "max", "1"], err(OVERFLOW)),
                (&["DECRBY", "min", "1"], err(OVERFLOW)),
                (
                    &["DECRBY", "x", "-9223372036854775808"],
                    err("ERR decrement would overflow"),
                ),
                (&["INCRBY", "x", "-9223372036854775808"], int(i64::MIN)),
                (&["GET", "max"], bulk("9223372036854775807")),
            ],
        );
    }

    #[test]
    fn keeps_ttl() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["SET", "n", "5", "EX", "100"], ok()),
                (&["INCR", "n"], int(6)),
                (&["TTL", "n"], int(100)),
            ],
        );
    }
}
