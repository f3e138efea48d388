//! STRLEN.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `STRLEN key`: the length in bytes, 0 for a missing key. A stored integer is its digits.
#[derive(Clone, Debug, PartialEq)]
pub struct Strlen {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Strlen(Strlen {
        key: argv[1].clone(),
    })))
}

impl Strlen {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(v) => Reply::Int(v.map_or(0, |(b, _)| b.len() as i64)),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn strlen() {
        let mut db = db_with(&[("k", "hello")]);
        check(
            &mut db,
            &[
                (&["STRLEN", "k"], int(5)),
                (&["STRLEN", "nope"], int(0)),
                (&["INCRBY", "n", "-12345"], int(-12345)),
                (&["STRLEN", "n"], int(6)),
            ],
        );
    }
}
