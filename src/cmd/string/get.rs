//! GET.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `GET key`: the value as a bulk string, or null when the key is missing.
/// GETEX without options parses to this too, since it changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Get {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Get(Get {
        key: argv[1].clone(),
    })))
}

impl Get {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(Some((v, _))) => Reply::Bulk(v),
            Ok(None) => Reply::Null,
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn get() {
        let mut db = db_with(&[("k", "v"), ("", "empty-key")]);
        check(
            &mut db,
            &[
                (&["GET", "k"], bulk("v")),
                (&["get", "missing"], Reply::Null),
                (&["GET", ""], bulk("empty-key")),
                (
                    &["GET"],
                    err("ERR wrong number of arguments for 'get' command"),
                ),
                (
                    &["GET", "a", "b"],
                    err("ERR wrong number of arguments for 'get' command"),
                ),
            ],
        );
    }

    #[test]
    fn expired_reads_as_missing() {
        let mut db = db_with(&[]);
        run(&mut db, &["SET", "k", "v", "PX", "100"]);
        assert_eq!(run_at(&mut db, NOW + 99, &["GET", "k"]), bulk("v"));
        assert_eq!(run_at(&mut db, NOW + 100, &["GET", "k"]), Reply::Null);
    }
}
