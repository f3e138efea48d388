//! MOVE.

use bytes::Bytes;

use crate::cmd::args::{parse_i32, ParseResult};
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `MOVE key db`: redraft has only DB 0 (see SELECT), so MOVE answers what a redis-server
/// with one database answers: DB 0 is the key's own database, any other is out of range.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Err(match parse_i32(&argv[2])? {
        0 => Reply::err("ERR source and destination objects are the same"),
        _ => Reply::err("ERR DB index is out of range"),
    })
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn move_() {
        let mut db = db_with(&[("k", "v")]);
        let same = "ERR source and destination objects are the same";
        check(
            &mut db,
            &[
                (&["MOVE", "k", "0"], err(same)),
                (&["MOVE", "nokey", "0"], err(same)),
                (&["MOVE", "k", "1"], err("ERR DB index is out of range")),
                (&["MOVE", "k", "-1"], err("ERR DB index is out of range")),
                (
                    &["MOVE", "k", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["MOVE", "k", "99999999999"],
                    err("ERR value is out of range, value must between -2147483648 and 2147483647"),
                ),
                (
                    &["MOVE", "k"],
                    err("ERR wrong number of arguments for 'move' command"),
                ),
                (&["GET", "k"], bulk("v")),
            ],
        );
    }
}
