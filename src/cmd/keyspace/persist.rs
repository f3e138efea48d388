//! PERSIST.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, WriteCmd};
use crate::db::{DbWrite, Value};
use redraft_proxy::wire::Reply;

/// `PERSIST key`: `:1` if a TTL was removed, `:0` if the key is missing or has none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Persist {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::Persist(Persist {
        key: argv[1].clone(),
    })))
}

impl Persist {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        match db.get(&self.key, now_ms) {
            Some(v) if v.expire_at.is_some() => {
                db.put(
                    &self.key,
                    Value {
                        expire_at: None,
                        ..v
                    },
                );
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn persist() {
        let mut db = db_with(&[("a", "1")]);
        check(
            &mut db,
            &[
                (&["PERSIST", "a"], int(0)),
                (&["PERSIST", "x"], int(0)),
                (&["EXPIRE", "a", "100"], int(1)),
                (&["PERSIST", "a"], int(1)),
                (&["TTL", "a"], int(-1)),
            ],
        );
    }
}
