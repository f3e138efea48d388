//! GETDEL.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `GETDEL key`: the value (or null), and the key is deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetDel {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::GetDel(GetDel {
        key: argv[1].clone(),
    })))
}

impl GetDel {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(Some((v, _))) => {
                db.delete(&self.key);
                Reply::Bulk(v)
            }
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
    fn getdel() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["GETDEL", "k"], bulk("v")),
                (&["GETDEL", "k"], Reply::Null),
                (&["EXISTS", "k"], int(0)),
            ],
        );
    }
}
