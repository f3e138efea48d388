//! EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT (Redis's expireGenericCommand).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{err_arg, is_kw, parse_i64, ParseResult};
use crate::cmd::{Command, WriteCmd};
use crate::db::{DbWrite, Value};
use redraft_proxy::wire::Reply;

/// The condition option: NX, XX, GT, LT (XX may combine with GT or LT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireCond {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`, `PEXPIRE key milliseconds [NX|XX|GT|LT]`,
/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`, `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
///
/// All four become this absolute form at parse time (Redis replicates them as PEXPIREAT).
/// A target time not after the entry's `now` deletes the key and replies `:1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expire {
    pub key: Bytes,
    /// Absolute unix ms; may be ≤ 0.
    pub at: i64,
    pub cond: ExpireCond,
}

/// Options first (they may repeat), then the time, as parseExtendedExpireArgumentsOrReply.
pub fn parse(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    let name = argv[0].to_ascii_lowercase();
    let name = std::str::from_utf8(&name).unwrap_or("expire");
    let (seconds, relative) = match name {
        "expire" => (true, true),
        "pexpire" => (false, true),
        "expireat" => (true, false),
        _ => (false, false),
    };
    let mut cond = ExpireCond::default();
    for opt in &argv[3..] {
        if is_kw(opt, "nx") {
            cond.nx = true;
        } else if is_kw(opt, "xx") {
            cond.xx = true;
        } else if is_kw(opt, "gt") {
            cond.gt = true;
        } else if is_kw(opt, "lt") {
            cond.lt = true;
        } else {
            return Err(Reply::err(format!(
                "ERR Unsupported option {}",
                err_arg(opt)
            )));
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Err(Reply::err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if cond.gt && cond.lt {
        return Err(Reply::err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let mut at = parse_i64(&argv[2])?;
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&at) {
            return Err(Reply::invalid_expire(name));
        }
        at *= 1000;
    }
    if relative {
        at = at
            .checked_add(now_ms as i64)
            .ok_or_else(|| Reply::invalid_expire(name))?;
    }
    Ok(Command::Write(WriteCmd::Expire(Expire {
        key: argv[1].clone(),
        at,
        cond,
    })))
}

impl Expire {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let Some(v) = db.get(&self.key, now_ms) else {
            return Reply::Int(0);
        };
        // "No TTL" counts as infinity.
        let c = self.cond;
        let current = v.expire_at.map(|t| t as i64);
        let refused = (c.nx && current.is_some())
            || (c.xx && current.is_none())
            || (c.gt && current.is_none_or(|cur| self.at <= cur))
            || (c.lt && current.is_some_and(|cur| self.at >= cur));
        if refused {
            return Reply::Int(0);
        }
        if self.at <= now_ms as i64 {
            db.delete(&self.key);
        } else {
            db.put(
                &self.key,
                Value {
                    expire_at: Some(self.at as u64),
                    ..v
                },
            );
        }
        Reply::Int(1)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn expire_forms() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["EXPIRE", "k", "100"], int(1)),
                (&["TTL", "k"], int(100)),
                (&["PEXPIRE", "k", "1500"], int(1)),
                (&["PTTL", "k"], int(1500)),
                (&["EXPIREAT", "k", "1700000050"], int(1)),
                (&["TTL", "k"], int(50)),
                (&["PEXPIREAT", "k", "1700000000700"], int(1)),
                (&["PTTL", "k"], int(700)),
                (&["PEXPIREAT", "k", "9223372036854770000"], int(1)),
                (&["EXPIRE", "missing", "100"], int(0)),
                (&["EXPIRE", "k", "0"], int(1)),
                (&["EXISTS", "k"], int(0)),
            ],
        );
    }

    #[test]
    fn past_times_delete() {
        for args in [
            &["EXPIRE", "k", "-10"][..],
            &["PEXPIRE", "k", "0"],
            &["EXPIREAT", "k", "1"],
            &["PEXPIREAT", "k", "-5"],
            &["EXPIRE", "k", "-10", "LT"],
            &["PEXPIREAT", "k", "1700000000000"],
        ] {
            let mut db = db_with(&[("k", "v")]);
            assert_eq!(run(&mut db, args), int(1), "{args:?}");
            assert_eq!(run(&mut db, &["EXISTS", "k"]), int(0), "{args:?}");
        }
    }

    #[test]
    fn conditions() {
        let mut db = db_with(&[("p", "v"), ("t", "v")]);
        check(
            &mut db,
            &[
                (&["EXPIRE", "t", "100"], int(1)),
                // NX: only without a TTL.
                (&["EXPIRE", "t", "200", "NX"], int(0)),
                (&["EXPIRE", "p", "200", "nx"], int(1)),
                (&["PERSIST", "p"], int(1)),
                // XX: only with a TTL.
                (&["EXPIRE", "p", "200", "XX"], int(0)),
                (&["EXPIRE", "t", "200", "XX"], int(1)),
                // GT: a persistent key is never greater.
                (&["EXPIRE", "p", "200", "GT"], int(0)),
                (&["EXPIRE", "t", "100", "GT"], int(0)),
                (&["EXPIRE", "t", "200", "GT"], int(0)),
                (&["EXPIRE", "t", "300", "GT"], int(1)),
                // LT: always without a TTL, else only smaller.
                (&["EXPIRE", "t", "400", "LT"], int(0)),
                (&["EXPIRE", "t", "250", "LT"], int(1)),
                (&["TTL", "t"], int(250)),
                (&["EXPIRE", "p", "500", "LT"], int(1)),
                (&["TTL", "p"], int(500)),
                (&["EXPIRE", "t", "260", "XX", "GT"], int(1)),
                (&["EXPIRE", "t", "100", "lt", "LT"], int(1)),
            ],
        );
    }

    #[test]
    fn errors() {
        let mut db = db_with(&[("k", "v")]);
        let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
        check(
            &mut db,
            &[
                (
                    &["EXPIRE", "k", "10", "FOO"],
                    err("ERR Unsupported option FOO"),
                ),
                (
                    &["EXPIRE", "k", "abc", "foo"],
                    err("ERR Unsupported option foo"),
                ),
                // Printed as Redis's %s prints it: up to the first NUL.
                (
                    &["EXPIRE", "k", "10", "fo\0o"],
                    err("ERR Unsupported option fo"),
                ),
                (&["EXPIRE", "k", "10", "NX", "XX"], err(nx)),
                (&["EXPIRE", "k", "10", "GT", "NX"], err(nx)),
                (&["EXPIRE", "k", "10", "NX", "LT"], err(nx)),
                (
                    &["EXPIRE", "k", "abc", "GT", "LT"],
                    err("ERR GT and LT options at the same time are not compatible"),
                ),
                (
                    &["EXPIRE", "k", "abc"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["EXPIRE", "k", ""],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["EXPIRE", "k", "9223372036854776"],
                    err("ERR invalid expire time in 'expire' command"),
                ),
                (
                    &["EXPIREAT", "k", "-9223372036854776"],
                    err("ERR invalid expire time in 'expireat' command"),
                ),
                (
                    &["PEXPIRE", "k", "9223372036854775807"],
                    err("ERR invalid expire time in 'pexpire' command"),
                ),
                (
                    &["EXPIRE", "k", "9223372036854775"],
                    err("ERR invalid expire time in 'expire' command"),
                ),
                (
                    &["EXPIRE", "k"],
                    err("ERR wrong number of arguments for 'expire' command"),
                ),
                (&["TTL", "k"], int(-1)),
            ],
        );
    }
}
