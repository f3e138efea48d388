//! RENAME and RENAMENX.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `RENAME key newkey` and `RENAMENX key newkey`: the value and its TTL move; RENAME
/// overwrites any `newkey`, RENAMENX refuses (`:0`) when it exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rename {
    pub src: Bytes,
    pub dst: Bytes,
    pub nx: bool,
}

fn parse(argv: &[Bytes], nx: bool) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::Rename(Rename {
        src: argv[1].clone(),
        dst: argv[2].clone(),
        nx,
    })))
}

pub fn parse_rename(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(argv, false)
}

pub fn parse_renamenx(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(argv, true)
}

impl Rename {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let Some(v) = db.get(&self.src, now_ms) else {
            return Reply::no_such_key();
        };
        if self.src == self.dst {
            return if self.nx { Reply::Int(0) } else { Reply::ok() };
        }
        if self.nx && db.get(&self.dst, now_ms).is_some() {
            return Reply::Int(0);
        }
        db.put(&self.dst, v);
        db.delete(&self.src);
        if self.nx {
            Reply::Int(1)
        } else {
            Reply::ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn rename() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["RENAME", "x", "y"], err("ERR no such key")),
                (&["RENAME", "x", "x"], err("ERR no such key")),
                (&["RENAME", "a", "a"], ok()),
                (&["EXPIRE", "a", "100"], int(1)),
                (&["RENAME", "a", "b"], ok()),
                (&["GET", "b"], bulk("1")),
                (&["TTL", "b"], int(100)),
                (&["EXISTS", "a"], int(0)),
                (&["RENAME", "b", "c"], ok()),
                (&["TTL", "c"], int(100)),
                (&["GET", "c"], bulk("1")),
                (&["GET", "b"], Reply::Null),
            ],
        );
    }

    #[test]
    fn renamenx() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["RENAMENX", "x", "y"], err("ERR no such key")),
                (&["RENAMENX", "x", "x"], err("ERR no such key")),
                (&["RENAMENX", "a", "a"], int(0)),
                (&["RENAMENX", "a", "b"], int(0)),
                (&["RENAMENX", "a", "c"], int(1)),
                (&["GET", "c"], bulk("1")),
                (&["EXISTS", "a"], int(0)),
            ],
        );
    }
}
