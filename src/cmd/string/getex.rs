//! GETEX.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::get::Get;
use super::set::{expire_at_ms, ExpireKind};
use crate::cmd::args::{is_kw, Args, ParseResult};
use crate::cmd::{get_string, str_value, Command, ReadCmd, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// What GETEX does to the TTL once the value was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExOp {
    /// Absolute unix ms; not after the entry's `now` deletes the key (EXAT/PXAT in the past).
    At(u64),
    Persist,
    /// The expiry argument was invalid. Redis reports it only after finding a string at the
    /// key (a missing key replies null), so the error travels in the entry.
    Invalid(Reply),
    /// No option, but stamped as a write (`ONCE`): read through the log, so that it keeps
    /// its place in the client's order (see `cmd::parse_once`).
    Keep,
}

/// `GETEX key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]`
///
/// Without options it is a plain read ([`Get`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetEx {
    pub key: Bytes,
    pub op: GetExOp,
}

pub fn parse(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    let mut persist = false;
    let mut exp: Option<(ExpireKind, &Bytes)> = None;
    let mut args = Args::new(argv, 2);
    while let Some(opt) = args.next() {
        let has_next = args.remaining() > 0;
        if is_kw(opt, "persist") && exp.is_none() {
            persist = true;
        } else if let Some(kind) = ExpireKind::from_kw(opt)
            .filter(|k| has_next && !persist && exp.is_none_or(|(prev, _)| prev == *k))
        {
            exp = Some((kind, args.value()?));
        } else {
            return Err(Reply::syntax_error());
        }
    }
    let key = argv[1].clone();
    let op = match exp {
        Some((kind, raw)) => match expire_at_ms(kind, raw, now_ms, "getex") {
            Ok(t) => GetExOp::At(t),
            Err(e) => GetExOp::Invalid(e),
        },
        None if persist => GetExOp::Persist,
        None => return Ok(Command::Read(ReadCmd::Get(Get { key }))),
    };
    Ok(Command::Write(WriteCmd::GetEx(GetEx { key, op })))
}

impl GetEx {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (value, ttl) = match get_string(db, &self.key, now_ms) {
            Ok(Some(v)) => v,
            Ok(None) => return Reply::Null,
            Err(e) => return e,
        };
        match &self.op {
            GetExOp::Invalid(e) => return e.clone(),
            GetExOp::At(t) if *t <= now_ms => {
                db.delete(&self.key);
            }
            GetExOp::At(t) => db.put(&self.key, str_value(value.clone(), Some(*t))),
            GetExOp::Keep => {}
            GetExOp::Persist => {
                if ttl.is_some() {
                    db.put(&self.key, str_value(value.clone(), None));
                }
            }
        }
        Reply::Bulk(value)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn getex() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["GETEX", "k"], bulk("v")),
                (&["GETEX", "k", "EX", "100"], bulk("v")),
                (&["TTL", "k"], int(100)),
                (&["GETEX", "k", "PX", "5000"], bulk("v")),
                (&["PTTL", "k"], int(5000)),
                (&["GETEX", "k", "PERSIST"], bulk("v")),
                (&["TTL", "k"], int(-1)),
                (&["GETEX", "k", "EXAT", "1700000200"], bulk("v")),
                (&["TTL", "k"], int(200)),
                (&["GETEX", "k", "PXAT", "1"], bulk("v")),
                (&["EXISTS", "k"], int(0)),
                (&["GETEX", "missing", "EX", "10"], Reply::Null),
            ],
        );
    }

    #[test]
    fn getex_errors() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["GETEX", "k", "NX"], err("ERR syntax error")),
                (&["GETEX", "k", "XX"], err("ERR syntax error")),
                (&["GETEX", "k", "GET"], err("ERR syntax error")),
                (&["GETEX", "k", "KEEPTTL"], err("ERR syntax error")),
                (&["GETEX", "k", "EX"], err("ERR syntax error")),
                (
                    &["GETEX", "k", "EX", "1", "PX", "1"],
                    err("ERR syntax error"),
                ),
                (
                    &["GETEX", "k", "EX", "1", "PERSIST"],
                    err("ERR syntax error"),
                ),
                (
                    &["GETEX", "k", "PERSIST", "EX", "1"],
                    err("ERR syntax error"),
                ),
                // Invalid expiry: reported only when the key holds a string.
                (&["GETEX", "missing", "EX", "0"], Reply::Null),
                (&["GETEX", "missing", "EX", "abc"], Reply::Null),
                (
                    &["GETEX", "k", "EX", "0"],
                    err("ERR invalid expire time in 'getex' command"),
                ),
                (
                    &["GETEX", "k", "EX", "abc"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["GETEX", "k", "EX", "9223372036854776"],
                    err("ERR invalid expire time in 'getex' command"),
                ),
                (&["GET", "k"], bulk("v")),
                (&["TTL", "k"], int(-1)),
            ],
        );
    }
}
