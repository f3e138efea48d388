//! DEL and UNLINK.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `DEL key [key ...]` and `UNLINK key [key ...]` (the same here: freeing is not our cost).
/// Replies the number of live keys removed; a repeated key counts once, an expired one 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Del {
    pub keys: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::Del(Del {
        keys: argv[1..].to_vec(),
    })))
}

impl Del {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let mut n = 0;
        for k in &self.keys {
            let live = db.get(k, now_ms).is_some();
            // An expired key is reclaimed too, but does not count.
            if db.delete(k) && live {
                n += 1;
            }
        }
        Reply::Int(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn del() {
        let mut db = db_with(&[("a", "1"), ("b", "2"), ("c", "3")]);
        check(
            &mut db,
            &[
                (&["DEL", "a", "a", "x"], int(1)),
                (&["UNLINK", "b", "c"], int(2)),
                (&["DEL", "a"], int(0)),
                (
                    &["DEL"],
                    err("ERR wrong number of arguments for 'del' command"),
                ),
                (
                    &["UNLINK"],
                    err("ERR wrong number of arguments for 'unlink' command"),
                ),
                (&["SET", "t", "v", "PXAT", "1700000000001"], ok()),
            ],
        );
        assert_eq!(run_at(&mut db, NOW + 1, &["DEL", "t"]), int(0));
        assert_eq!(run(&mut db, &["DBSIZE"]), int(0));
    }
}
