//! COPY.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::{is_kw, parse_i32, Args, ParseResult};
use crate::cmd::{Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `COPY source destination [DB destination-db] [REPLACE]`: copies the value and TTL;
/// `:0` if the source is missing or the destination exists without REPLACE.
///
/// redraft has only DB 0 (see SELECT): `DB 0` is accepted, any other index is
/// `ERR DB index is out of range`, as a standalone Redis says for a DB it does not have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Copy {
    pub src: Bytes,
    pub dst: Bytes,
    pub replace: bool,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let mut replace = false;
    let mut db = 0;
    let mut args = Args::new(argv, 3);
    while let Some(opt) = args.next() {
        if is_kw(opt, "replace") {
            replace = true;
        } else if is_kw(opt, "db") && args.remaining() > 0 {
            db = parse_i32(args.value()?)?;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    if db != 0 {
        return Err(Reply::err("ERR DB index is out of range"));
    }
    if argv[1] == argv[2] {
        return Err(Reply::err(
            "ERR source and destination objects are the same",
        ));
    }
    Ok(Command::Write(WriteCmd::Copy(Copy {
        src: argv[1].clone(),
        dst: argv[2].clone(),
        replace,
    })))
}

impl Copy {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let Some(v) = db.get(&self.src, now_ms) else {
            return Reply::Int(0);
        };
        if !self.replace && db.get(&self.dst, now_ms).is_some() {
            return Reply::Int(0);
        }
        db.put(&self.dst, v);
        Reply::Int(1)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn copy() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["COPY", "x", "y"], int(0)),
                (&["COPY", "a", "b"], int(0)),
                (&["COPY", "a", "b", "REPLACE"], int(1)),
                (&["GET", "b"], bulk("1")),
                (&["EXPIRE", "a", "100"], int(1)),
                (&["COPY", "a", "c", "db", "0"], int(1)),
                (&["TTL", "c"], int(100)),
                (&["GET", "a"], bulk("1")),
            ],
        );
    }

    #[test]
    fn copy_errors() {
        let mut db = db_with(&[("a", "1")]);
        check(
            &mut db,
            &[
                (
                    &["COPY", "a", "a"],
                    err("ERR source and destination objects are the same"),
                ),
                (
                    &["COPY", "x", "x"],
                    err("ERR source and destination objects are the same"),
                ),
                (&["COPY", "a", "b", "DB"], err("ERR syntax error")),
                (&["COPY", "a", "b", "FOO"], err("ERR syntax error")),
                (
                    &["COPY", "a", "b", "DB", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["COPY", "a", "b", "DB", "4294967296"],
                    err("ERR value is out of range, value must between -2147483648 and 2147483647"),
                ),
                (
                    &["COPY", "a", "b", "DB", "1"],
                    err("ERR DB index is out of range"),
                ),
                (
                    &["COPY", "a", "b", "DB", "-1"],
                    err("ERR DB index is out of range"),
                ),
                (
                    &["COPY", "a"],
                    err("ERR wrong number of arguments for 'copy' command"),
                ),
            ],
        );
    }
}
