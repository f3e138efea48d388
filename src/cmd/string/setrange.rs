//! SETRANGE.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::append::too_big;
use crate::cmd::args::{parse_i64, ParseResult};
use crate::cmd::{get_string, str_value, Command, WriteCmd, MAX_STRING};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `SETRANGE key offset value`: overwrites from `offset`, zero-padding any gap; replies the
/// new length. An empty value creates nothing and changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetRange {
    pub key: Bytes,
    pub offset: u64,
    pub value: Bytes,
}

/// The offset's integer and sign checks depend only on the argument: parse time.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let offset = parse_i64(&argv[2])?;
    let offset = u64::try_from(offset).map_err(|_| Reply::err("ERR offset is out of range"))?;
    Ok(Command::Write(WriteCmd::SetRange(SetRange {
        key: argv[1].clone(),
        offset,
        value: argv[3].clone(),
    })))
}

impl SetRange {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        if let Some(len) = self.in_place(db, now_ms) {
            return Reply::Int(len);
        }
        let (old, ttl) = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, ttl))) => (Some(b), ttl),
            Ok(None) => (None, None),
            Err(e) => return e,
        };
        if self.value.is_empty() {
            return Reply::Int(old.map_or(0, |b| b.len() as i64));
        }
        let end = self.offset.saturating_add(self.value.len() as u64);
        if end > MAX_STRING as u64 {
            return too_big();
        }
        let (offset, end) = (self.offset as usize, end as usize);
        let old = old.unwrap_or_default();
        let mut b = BytesMut::with_capacity(old.len().max(end));
        b.extend_from_slice(&old);
        if b.len() < end {
            b.resize(end, 0);
        }
        b[offset..end].copy_from_slice(&self.value);
        let len = b.len() as i64;
        db.put(&self.key, str_value(b.freeze(), ttl));
        Reply::Int(len)
    }
}

impl SetRange {
    /// A value within the live string, written in place when nothing else holds the
    /// string (no copy of a long one); its length, or None to build a new value.
    fn in_place(&self, db: &mut dyn DbWrite, now_ms: u64) -> Option<i64> {
        let len = match get_string(db, &self.key, now_ms) {
            Ok(Some((b, _))) => b.len(),
            _ => return None,
        };
        let end = self.offset.checked_add(self.value.len() as u64)?;
        if self.value.is_empty() || end > len as u64 {
            return None;
        }
        let (offset, end, value) = (self.offset as usize, end as usize, &self.value);
        db.modify_in_place(&self.key, &mut |v| v[offset..end].copy_from_slice(value))
            .then_some(len as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn setrange() {
        let mut db = db_with(&[("k", "Hello World")]);
        check(
            &mut db,
            &[
                (&["SETRANGE", "k", "6", "Redis"], int(11)),
                (&["GET", "k"], bulk("Hello Redis")),
                (&["SETRANGE", "n", "3", "ab"], int(5)),
                (&["GET", "n"], bulk("\0\0\0ab")),
                (&["SETRANGE", "e", "5", ""], int(0)),
                (&["EXISTS", "e"], int(0)),
                (&["SETRANGE", "k", "100", ""], int(11)),
                (
                    &["SETRANGE", "k", "-1", "x"],
                    err("ERR offset is out of range"),
                ),
                (
                    &["SETRANGE", "k", "x", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["SETRANGE", "k", "536870912", "x"],
                    err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
                ),
                (
                    &["SETRANGE", "n2", "536870912", "x"],
                    err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
                ),
                (
                    &["SETRANGE", "k", "9223372036854775807", "x"],
                    err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
                ),
                (&["EXISTS", "n2"], int(0)),
                (&["SET", "t", "abc", "EX", "50"], ok()),
                (&["SETRANGE", "t", "1", "X"], int(3)),
                (&["GET", "t"], bulk("aXc")),
                (&["TTL", "t"], int(50)),
            ],
        );
    }
}
