//! EXISTS and TOUCH.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `EXISTS key [key ...]` and `TOUCH key [key ...]`: how many arguments name a live key,
/// counting repeats. TOUCH only updates access times in Redis, which redraft does not keep,
/// so it is the same read.
#[derive(Clone, Debug, PartialEq)]
pub struct Exists {
    pub keys: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Exists(Exists {
        keys: argv[1..].to_vec(),
    })))
}

impl Exists {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        Reply::Int(
            self.keys
                .iter()
                .filter(|k| db.get(k, now_ms).is_some())
                .count() as i64,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn exists_counts_repeats() {
        let mut db = db_with(&[("a", "1"), ("b", "2")]);
        check(
            &mut db,
            &[
                (&["EXISTS", "a", "a", "x", "b"], int(3)),
                (&["TOUCH", "a", "a", "x"], int(2)),
                (
                    &["EXISTS"],
                    err("ERR wrong number of arguments for 'exists' command"),
                ),
            ],
        );
    }
}
