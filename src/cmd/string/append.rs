//! APPEND.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, str_value, Command, WriteCmd, MAX_STRING};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `APPEND key value`: the new length; a missing key is created, a TTL is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Append {
    #[serde(deserialize_with = "crate::codec::shared_bytes")]
    pub key: Bytes,
    #[serde(deserialize_with = "crate::codec::shared_bytes")]
    pub value: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::Append(Append {
        key: argv[1].clone(),
        value: argv[2].clone(),
    })))
}

/// The error APPEND and SETRANGE give past proto-max-bulk-len.
pub fn too_big() -> Reply {
    Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

impl Append {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (old, ttl) = match get_string(db, &self.key, now_ms) {
            Ok(Some(v)) => v,
            Ok(None) => (Bytes::new(), None),
            Err(e) => return e,
        };
        if old.len() + self.value.len() > MAX_STRING {
            return too_big();
        }
        let mut b = BytesMut::with_capacity(old.len() + self.value.len());
        b.extend_from_slice(&old);
        b.extend_from_slice(&self.value);
        let len = b.len() as i64;
        db.put(&self.key, str_value(b.freeze(), ttl));
        Reply::Int(len)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn append() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["APPEND", "k", "Hello"], int(5)),
                (&["APPEND", "k", " World"], int(11)),
                (&["GET", "k"], bulk("Hello World")),
                (&["APPEND", "k", ""], int(11)),
                (&["APPEND", "e", ""], int(0)),
                (&["EXISTS", "e"], int(1)),
                (&["SET", "t", "a", "EX", "100"], ok()),
                (&["APPEND", "t", "b"], int(2)),
                (&["TTL", "t"], int(100)),
            ],
        );
    }
}
