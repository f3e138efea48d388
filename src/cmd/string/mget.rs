//! MGET.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `MGET key [key ...]`: one slot per key, null for missing keys and (unlike GET) for keys
/// of another type.
#[derive(Clone, Debug, PartialEq)]
pub struct MGet {
    pub keys: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::MGet(MGet {
        keys: argv[1..].to_vec(),
    })))
}

impl MGet {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        Reply::Array(
            self.keys
                .iter()
                .map(|k| match get_string(db, k, now_ms) {
                    Ok(Some((v, _))) => Reply::Bulk(v),
                    _ => Reply::Null,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn mget() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (
                    &["MGET", "a", "x", "b", "a"],
                    Reply::Array(vec![bulk("1"), Reply::Null, bulk("2"), bulk("1")]),
                ),
                (
                    &["MGET"],
                    err("ERR wrong number of arguments for 'mget' command"),
                ),
            ],
        );
    }
}
