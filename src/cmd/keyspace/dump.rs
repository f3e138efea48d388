//! DUMP.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::{rdb, DbRead};
use redraft_proxy::wire::Reply;

/// `DUMP key`: the value in Redis's serialized form (see [`rdb`]), which RESTORE here or
/// at a redis-server takes back; nil for a missing key.
#[derive(Clone, Debug, PartialEq)]
pub struct Dump {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Dump(Dump {
        key: argv[1].clone(),
    })))
}

impl Dump {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(Some((v, _))) => Reply::Bulk(Bytes::from(rdb::dump(&v))),
            Ok(None) => Reply::Null,
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use bytes::Bytes;
    use redraft_proxy::wire::Reply;

    #[test]
    fn dump() {
        let mut db = db_with(&[("k", "bar")]);
        check(
            &mut db,
            &[
                (
                    &["DUMP", "k"],
                    Reply::Bulk(Bytes::from_static(
                        b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17",
                    )),
                ),
                (&["DUMP", "nokey"], Reply::Null),
                (
                    &["DUMP", "k", "x"],
                    err("ERR wrong number of arguments for 'dump' command"),
                ),
            ],
        );
    }
}
