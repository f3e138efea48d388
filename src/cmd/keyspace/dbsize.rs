//! DBSIZE.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `DBSIZE`: stored keys, including logically expired ones not yet reclaimed (as Redis).
#[derive(Clone, Debug, PartialEq)]
pub struct DbSize;

pub fn parse(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::DbSize(DbSize)))
}

impl DbSize {
    pub fn execute(&self, db: &dyn DbRead, _now_ms: u64) -> Reply {
        Reply::Int(db.key_count() as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn dbsize() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["DBSIZE"], int(2)),
                (
                    &["DBSIZE", "x"],
                    err("ERR wrong number of arguments for 'dbsize' command"),
                ),
            ],
        );
    }
}
