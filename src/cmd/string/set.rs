//! SET and its sugar variants SETNX, SETEX, PSETEX and GETSET (Redis's setGenericCommand).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{is_kw, parse_i64, Args, ParseResult};
use crate::cmd::{get_string, str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// Which existing-key condition gates the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cond {
    Always,
    /// Only if the key does not exist (NX, SETNX).
    Nx,
    /// Only if the key exists (XX).
    Xx,
}

/// What happens to the TTL. Relative times were made absolute at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// Plain SET: any TTL is dropped.
    Clear,
    /// KEEPTTL.
    Keep,
    /// Absolute unix ms; a time not after the entry's `now` leaves no key behind.
    At(u64),
}

/// The reply shape, which differs between the variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetReply {
    /// `+OK`, or null when the condition fails (SET, SETEX, PSETEX).
    Ok,
    /// `:1` / `:0` (SETNX).
    Int,
    /// The old value or null, whether or not the write happened (SET ... GET, GETSET).
    Old,
}

/// `SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]`
///
/// Also `SETNX key value`, `SETEX key seconds value`, `PSETEX key milliseconds value` and
/// `GETSET key value`, which are this command with fixed options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Set {
    #[serde(deserialize_with = "crate::codec::shared_bytes")]
    pub key: Bytes,
    #[serde(deserialize_with = "crate::codec::shared_bytes")]
    pub value: Bytes,
    pub cond: Cond,
    pub expiry: Expiry,
    pub reply: SetReply,
}

/// The expiry keywords shared by SET and GETEX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    pub fn from_kw(b: &[u8]) -> Option<ExpireKind> {
        [
            ("ex", ExpireKind::Ex),
            ("px", ExpireKind::Px),
            ("exat", ExpireKind::ExAt),
            ("pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(kw, _)| is_kw(b, kw))
        .map(|(_, k)| k)
    }
}

/// getExpireMillisecondsOrReply: the absolute expiry in ms for SET/SETEX/PSETEX/GETEX, with
/// the integer error, and the invalid-expire error for a value ≤ 0 or an overflow.
pub fn expire_at_ms(kind: ExpireKind, raw: &[u8], now_ms: u64, cmd: &str) -> ParseResult<u64> {
    let v = parse_i64(raw)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(Reply::invalid_expire(cmd));
    }
    let ms = if seconds { v * 1000 } else { v };
    let at = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms as i64),
        ExpireKind::ExAt | ExpireKind::PxAt => Some(ms),
    };
    at.map(|t| t as u64)
        .ok_or_else(|| Reply::invalid_expire(cmd))
}

fn write(set: Set) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::Set(set)))
}

/// SET's option scan follows parseExtendedStringArgumentsOrReply: conflicts and unknown
/// words are syntax errors, the same expiry keyword may repeat (the last wins), and the
/// expiry value is validated only after every option was read.
pub fn parse_set(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut exp: Option<(ExpireKind, &Bytes)> = None;
    let mut args = Args::new(argv, 3);
    while let Some(opt) = args.next() {
        let has_next = args.remaining() > 0;
        if is_kw(opt, "nx") && !xx {
            nx = true;
        } else if is_kw(opt, "xx") && !nx {
            xx = true;
        } else if is_kw(opt, "get") {
            get = true;
        } else if is_kw(opt, "keepttl") && exp.is_none() {
            keepttl = true;
        } else if let Some(kind) = ExpireKind::from_kw(opt)
            .filter(|k| has_next && !keepttl && exp.is_none_or(|(prev, _)| prev == *k))
        {
            exp = Some((kind, args.value()?));
        } else {
            return Err(Reply::syntax_error());
        }
    }
    let expiry = match exp {
        Some((kind, raw)) => Expiry::At(expire_at_ms(kind, raw, now_ms, "set")?),
        None if keepttl => Expiry::Keep,
        None => Expiry::Clear,
    };
    let cond = if nx {
        Cond::Nx
    } else if xx {
        Cond::Xx
    } else {
        Cond::Always
    };
    let reply = if get { SetReply::Old } else { SetReply::Ok };
    write(Set {
        key: argv[1].clone(),
        value: argv[2].clone(),
        cond,
        expiry,
        reply,
    })
}

/// `SETNX key value`
pub fn parse_setnx(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    write(Set {
        key: argv[1].clone(),
        value: argv[2].clone(),
        cond: Cond::Nx,
        expiry: Expiry::Clear,
        reply: SetReply::Int,
    })
}

/// `SETEX key seconds value`
pub fn parse_setex(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    set_with_expiry(argv, now_ms, ExpireKind::Ex, "setex")
}

/// `PSETEX key milliseconds value`
pub fn parse_psetex(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    set_with_expiry(argv, now_ms, ExpireKind::Px, "psetex")
}

fn set_with_expiry(
    argv: &[Bytes],
    now_ms: u64,
    kind: ExpireKind,
    name: &str,
) -> ParseResult<Command> {
    let at = expire_at_ms(kind, &argv[2], now_ms, name)?;
    write(Set {
        key: argv[1].clone(),
        value: argv[3].clone(),
        cond: Cond::Always,
        expiry: Expiry::At(at),
        reply: SetReply::Ok,
    })
}

/// `GETSET key value` (deprecated): SET with GET.
pub fn parse_getset(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    write(Set {
        key: argv[1].clone(),
        value: argv[2].clone(),
        cond: Cond::Always,
        expiry: Expiry::Clear,
        reply: SetReply::Old,
    })
}

impl Set {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        // A plain SET needs no current value: the write's own accounting looks the key up
        // once, and a second lookup (an LSM point read, or a row-cache probe that misses
        // the CPU caches) was a tenth of a pipelined SET's CPU on every replica.
        let current = if self.cond != Cond::Always || self.expiry == Expiry::Keep {
            db.get(&self.key, now_ms)
        } else {
            None
        };
        let old = if self.reply == SetReply::Old {
            // GET reads first: a wrong type fails before anything is written.
            match get_string(db, &self.key, now_ms) {
                Ok(v) => v.map(|(b, _)| b),
                Err(e) => return e,
            }
        } else {
            None
        };
        let old_reply = || old.clone().map_or(Reply::Null, Reply::Bulk);
        let found = current.is_some();
        if (self.cond == Cond::Nx && found) || (self.cond == Cond::Xx && !found) {
            return match self.reply {
                SetReply::Ok => Reply::Null,
                SetReply::Int => Reply::Int(0),
                SetReply::Old => old_reply(),
            };
        }
        let expire_at = match self.expiry {
            Expiry::Clear => None,
            Expiry::Keep => current.and_then(|v| v.expire_at),
            Expiry::At(t) => Some(t),
        };
        if expire_at.is_some_and(|t| t <= now_ms) {
            db.delete(&self.key);
        } else {
            db.put(&self.key, str_value(self.value.clone(), expire_at));
        }
        match self.reply {
            SetReply::Ok => Reply::ok(),
            SetReply::Int => Reply::Int(1),
            SetReply::Old => old_reply(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    const SYNTAX: &str = "ERR syntax error";
    const NOT_INT: &str = "ERR value is not an integer or out of range";
    const BAD_SET: &str = "ERR invalid expire time in 'set' command";

    #[test]
    fn set_options() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["SET", "k", "v"], ok()),
                (&["set", "k", "v2", "nx"], Reply::Null),
                (&["SET", "k", "v3", "XX"], ok()),
                (&["GET", "k"], bulk("v3")),
                (&["SET", "n", "v", "XX"], Reply::Null),
                (&["SET", "n", "v", "NX"], ok()),
                (&["SET", "k", "v4", "GET"], bulk("v3")),
                (&["SET", "new", "v", "GET"], Reply::Null),
                (&["SET", "k", "other", "NX", "GET"], bulk("v4")),
                (&["GET", "k"], bulk("v4")),
                (&["SET", "missing", "x", "XX", "GET"], Reply::Null),
                (&["EXISTS", "missing"], int(0)),
                (&["SET", "k", "v", "EX", "10", "EX", "20"], ok()),
                (&["TTL", "k"], int(20)),
                (&["SET", "k", "v", "KEEPTTL"], ok()),
                (&["TTL", "k"], int(20)),
                (&["SET", "k", "v"], ok()),
                (&["TTL", "k"], int(-1)),
                (&["SET", "k", "v", "PX", "1500"], ok()),
                (&["PTTL", "k"], int(1500)),
                (&["SET", "k", "v", "EXAT", "1700000100"], ok()),
                (&["TTL", "k"], int(100)),
                (&["SET", "k", "v", "PXAT", "1700000000500"], ok()),
                (&["PTTL", "k"], int(500)),
            ],
        );
    }

    #[test]
    fn set_errors() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["SET", "k", "v", "NX", "XX"], err(SYNTAX)),
                (&["SET", "k", "v", "XX", "NX"], err(SYNTAX)),
                (&["SET", "k", "v", "EX", "10", "PX", "100"], err(SYNTAX)),
                (&["SET", "k", "v", "EX", "10", "KEEPTTL"], err(SYNTAX)),
                (&["SET", "k", "v", "KEEPTTL", "EX", "10"], err(SYNTAX)),
                (&["SET", "k", "v", "EX"], err(SYNTAX)),
                (&["SET", "k", "v", "FOO"], err(SYNTAX)),
                (&["SET", "k", "v", "PERSIST"], err(SYNTAX)),
                (&["SET", "k", "v", "EX", "abc"], err(NOT_INT)),
                (&["SET", "k", "v", "EX", "0"], err(BAD_SET)),
                (&["SET", "k", "v", "PX", "-5"], err(BAD_SET)),
                (&["SET", "k", "v", "EX", "9223372036854776"], err(BAD_SET)),
                (&["SET", "k", "v", "EXAT", "9223372036854776"], err(BAD_SET)),
                (
                    &["SET", "k", "v", "PX", "9223372036854775807"],
                    err(BAD_SET),
                ),
                (&["SET", "k", "v", "EX", "0", "GET"], err(BAD_SET)),
                (
                    &["SET", "k"],
                    err("ERR wrong number of arguments for 'set' command"),
                ),
                (&["GET", "k"], bulk("v")),
            ],
        );
    }

    #[test]
    fn set_in_the_past_leaves_no_key() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["SET", "k", "v2", "EXAT", "1"], ok()),
                (&["EXISTS", "k"], int(0)),
                (&["SET", "k", "v2", "PXAT", "1700000000000"], ok()),
                (&["EXISTS", "k"], int(0)),
                (&["DBSIZE"], int(0)),
            ],
        );
    }

    #[test]
    fn sugar_variants() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["SETNX", "k", "1"], int(1)),
                (&["SETNX", "k", "2"], int(0)),
                (&["GET", "k"], bulk("1")),
                (&["SETEX", "k", "10", "v"], ok()),
                (&["TTL", "k"], int(10)),
                (&["PSETEX", "k", "2500", "v"], ok()),
                (&["PTTL", "k"], int(2500)),
                (
                    &["SETEX", "k", "0", "v"],
                    err("ERR invalid expire time in 'setex' command"),
                ),
                (
                    &["PSETEX", "k", "-1", "v"],
                    err("ERR invalid expire time in 'psetex' command"),
                ),
                (&["SETEX", "k", "x", "v"], err(NOT_INT)),
                (
                    &["SETEX", "k", "10"],
                    err("ERR wrong number of arguments for 'setex' command"),
                ),
                (&["GETSET", "k", "new"], bulk("v")),
                (&["TTL", "k"], int(-1)),
                (&["GETSET", "nokey", "x"], Reply::Null),
                (&["GET", "nokey"], bulk("x")),
            ],
        );
    }
}
