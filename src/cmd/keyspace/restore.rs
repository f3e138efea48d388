//! RESTORE and RESTORE-ASKING.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{is_kw, parse_i64, Args, ParseResult};
use crate::cmd::{str_value, Command, WriteCmd};
use crate::db::rdb::{self, PayloadError};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`:
/// creates `key` from a DUMP payload, of redraft or of a redis-server (see [`rdb`]).
///
/// Redis answers BUSYKEY for an existing key before it looks at the TTL and the payload,
/// so without REPLACE their errors are kept in the command and answered in `apply`, after
/// the key is looked up; with REPLACE they are answered at once. IDLETIME and FREQ are
/// checked as Redis checks them and then ignored: no access time or frequency is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    pub key: Bytes,
    pub replace: bool,
    /// The value and its absolute expiry (unix ms), or the error of the TTL or payload.
    pub value: Result<(Bytes, Option<i64>), Reply>,
}

pub fn parse(argv: &[Bytes], now_ms: u64) -> ParseResult<Command> {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (false, false);
    let mut args = Args::new(argv, 4);
    while let Some(opt) = args.next() {
        if is_kw(opt, "replace") {
            replace = true;
        } else if is_kw(opt, "absttl") {
            absttl = true;
        } else if is_kw(opt, "idletime") && args.remaining() > 0 && !freq {
            if parse_i64(args.value()?)? < 0 {
                return Err(Reply::err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = true;
        } else if is_kw(opt, "freq") && args.remaining() > 0 && !idle {
            if !(0..=255).contains(&parse_i64(args.value()?)?) {
                return Err(Reply::err(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = true;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    let value = value(&argv[2], &argv[3], absttl, now_ms);
    if let (true, Err(e)) = (replace, &value) {
        return Err(e.clone());
    }
    Ok(Command::Write(WriteCmd::Restore(Restore {
        key: argv[1].clone(),
        replace,
        value,
    })))
}

/// The TTL and the payload, checked in Redis's order. A relative TTL becomes absolute
/// with Redis's arithmetic: one too large wraps around and reads as already expired.
fn value(
    ttl: &[u8],
    payload: &[u8],
    absttl: bool,
    now_ms: u64,
) -> Result<(Bytes, Option<i64>), Reply> {
    let ttl = parse_i64(ttl)?;
    if ttl < 0 {
        return Err(Reply::err("ERR Invalid TTL value, must be >= 0"));
    }
    let value = rdb::restore(payload).map_err(|e| match e {
        PayloadError::VersionOrChecksum => {
            Reply::err("ERR DUMP payload version or checksum are wrong")
        }
        PayloadError::BadFormat => Reply::err("ERR Bad data format"),
        PayloadError::Unsupported(t) => Reply::err(format!(
            "ERR Bad data format: the payload holds a {t}, and redraft stores strings only"
        )),
    })?;
    let at = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(t.wrapping_add(now_ms as i64)),
    };
    Ok((value, at))
}

impl Restore {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        if !self.replace && db.get(&self.key, now_ms).is_some() {
            return Reply::err("BUSYKEY Target key name already exists.");
        }
        let (v, at) = match &self.value {
            Ok(v) => v,
            Err(e) => return e.clone(),
        };
        match at {
            Some(t) if *t <= now_ms as i64 => {
                if self.replace {
                    db.delete(&self.key);
                }
            }
            _ => db.put(&self.key, str_value(v.clone(), at.map(|t| t as u64))),
        }
        Reply::ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use crate::db::rdb;
    use bytes::Bytes;
    use redraft_proxy::wire::Reply;

    /// Runs RESTORE with a binary payload (the helpers take text arguments).
    fn restore(db: &mut crate::db::keyspace::Keyspace, payload: &[u8], args: &[&str]) -> Reply {
        let mut argv = argv(args);
        argv.insert(3, Bytes::copy_from_slice(payload));
        match crate::cmd::parse(&argv, NOW) {
            crate::cmd::Command::Reply(r) => r,
            crate::cmd::Command::Write(w) => w.apply(db, NOW),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restore_creates_and_replaces() {
        let mut db = db_with(&[("foo", "bar")]);
        let p = rdb::dump(b"hello");
        assert_eq!(restore(&mut db, &p, &["RESTORE", "k", "0"]), ok());
        assert_eq!(run(&mut db, &["GET", "k"]), bulk("hello"));
        assert_eq!(run(&mut db, &["TTL", "k"]), int(-1));
        let busy = err("BUSYKEY Target key name already exists.");
        assert_eq!(restore(&mut db, &p, &["RESTORE", "foo", "0"]), busy);
        // An existing key answers BUSYKEY before a bad TTL or payload, as in Redis.
        assert_eq!(restore(&mut db, &p, &["RESTORE", "foo", "-1"]), busy);
        assert_eq!(restore(&mut db, b"junk", &["RESTORE", "foo", "0"]), busy);
        assert_eq!(
            restore(&mut db, &p, &["RESTORE", "foo", "5000", "replace"]),
            ok()
        );
        assert_eq!(run(&mut db, &["GET", "foo"]), bulk("hello"));
        assert_eq!(run(&mut db, &["PTTL", "foo"]), int(5000));
        let at = (NOW + 7000).to_string();
        assert_eq!(
            restore(&mut db, &p, &["RESTORE-ASKING", "a", &at, "ABSTTL"]),
            ok()
        );
        assert_eq!(run(&mut db, &["PTTL", "a"]), int(7000));
        // Already expired: nothing is created, and REPLACE deletes the old key.
        assert_eq!(
            restore(&mut db, &p, &["RESTORE", "foo", "5", "ABSTTL", "REPLACE"]),
            ok()
        );
        assert_eq!(run(&mut db, &["EXISTS", "foo"]), int(0));
        assert_eq!(
            restore(&mut db, &p, &["RESTORE", "b", "9223372036854775807"]),
            ok()
        );
        assert_eq!(run(&mut db, &["EXISTS", "b"]), int(0));
        assert_eq!(
            restore(
                &mut db,
                &p,
                &["RESTORE", "c", "9223372036854775807", "ABSTTL"]
            ),
            ok()
        );
        assert_eq!(run(&mut db, &["EXISTS", "c"]), int(1));
        assert_eq!(
            restore(
                &mut db,
                &p,
                &["RESTORE", "d", "0", "IDLETIME", "5", "IDLETIME", "6"]
            ),
            ok()
        );
        assert_eq!(
            restore(&mut db, &p, &["RESTORE", "e", "0", "FREQ", "255"]),
            ok()
        );
    }

    #[test]
    fn restore_errors() {
        let mut db = db_with(&[]);
        let p = rdb::dump(b"hello");
        for (args, want) in [
            (
                &["RESTORE", "k", "-1"][..],
                "ERR Invalid TTL value, must be >= 0",
            ),
            (
                &["RESTORE", "k", "x"],
                "ERR value is not an integer or out of range",
            ),
            (&["RESTORE", "k", "0", "BADOPT"], "ERR syntax error"),
            (&["RESTORE", "k", "0", "FREQ"], "ERR syntax error"),
            (
                &["RESTORE", "k", "0", "IDLETIME", "1", "FREQ", "1"],
                "ERR syntax error",
            ),
            (
                &["RESTORE", "k", "0", "FREQ", "1", "IDLETIME", "1"],
                "ERR syntax error",
            ),
            (
                &["RESTORE", "k", "0", "FREQ", "256"],
                "ERR Invalid FREQ value, must be >= 0 and <= 255",
            ),
            (
                &["RESTORE", "k", "0", "IDLETIME", "-1"],
                "ERR Invalid IDLETIME value, must be >= 0",
            ),
            (
                &["RESTORE", "k", "0", "IDLETIME", "x"],
                "ERR value is not an integer or out of range",
            ),
        ] {
            assert_eq!(restore(&mut db, &p, args), err(want), "{args:?}");
        }
        let wrong = "ERR DUMP payload version or checksum are wrong";
        assert_eq!(
            restore(&mut db, b"junk", &["RESTORE", "k", "0"]),
            err(wrong)
        );
        assert_eq!(
            restore(&mut db, b"junk", &["RESTORE", "k", "0", "REPLACE"]),
            err(wrong)
        );
        let hash = b"\x04\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let mut hash = hash.to_vec();
        let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&hash[..4]);
        hash.truncate(4);
        hash.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore(&mut db, &hash, &["RESTORE", "k", "0"]),
            err("ERR Bad data format: the payload holds a hash, and redraft stores strings only")
        );
        assert_eq!(run(&mut db, &["DBSIZE"]), int(0));
        assert_eq!(
            run(&mut db, &["RESTORE", "k", "0"]),
            err("ERR wrong number of arguments for 'restore' command")
        );
    }
}
