//! FLUSHDB and FLUSHALL.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{is_kw, ParseResult};
use crate::cmd::{Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `FLUSHDB [ASYNC|SYNC]` and `FLUSHALL [ASYNC|SYNC]`: empty the keyspace. There is one DB,
/// so both are the same effect; ASYNC and SYNC are accepted and mean the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flush;

/// Zero or one of ASYNC/SYNC; anything else, or more arguments, is a syntax error.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    match argv {
        [_] => {}
        [_, mode] if is_kw(mode, "async") || is_kw(mode, "sync") => {}
        _ => return Err(Reply::syntax_error()),
    }
    Ok(Command::Write(WriteCmd::Flush(Flush)))
}

impl Flush {
    pub fn apply(&self, db: &mut dyn DbWrite, _now_ms: u64) -> Reply {
        db.clear();
        Reply::ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn flush() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["FLUSHDB", "FOO"], err("ERR syntax error")),
                (&["FLUSHALL", "ASYNC", "SYNC"], err("ERR syntax error")),
                (&["DBSIZE"], int(2)),
                (&["FLUSHDB", "sync"], ok()),
                (&["DBSIZE"], int(0)),
                (&["SET", "a", "1"], ok()),
                (&["FLUSHALL"], ok()),
                (&["FLUSHALL", "async"], ok()),
                (&["DBSIZE"], int(0)),
            ],
        );
    }
}
