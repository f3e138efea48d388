//! TYPE.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `TYPE key`: the type name as a simple string, `none` for a missing key.
#[derive(Clone, Debug, PartialEq)]
pub struct Type {
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Type(Type {
        key: argv[1].clone(),
    })))
}

impl Type {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        Reply::status(
            db.get(&self.key, now_ms)
                .map_or("none", |v| v.data.type_name()),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn type_names() {
        let mut db = db_with(&[("a", "1")]);
        check(
            &mut db,
            &[
                (&["TYPE", "a"], Reply::status("string")),
                (&["type", "x"], Reply::status("none")),
            ],
        );
    }
}
