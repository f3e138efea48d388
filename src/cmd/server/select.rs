//! SELECT.

use bytes::Bytes;

use crate::cmd::args::{parse_i32, ParseResult};
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `SELECT index`
///
/// redraft answers like a standalone server that has a single database: `SELECT 0` is
/// `+OK` and every other index is `ERR DB index is out of range`. Cluster mode's `ERR SELECT
/// is not allowed in cluster mode` would be truer to our sharding, but the standalone text is
/// what plain clients (and redis-cli -n) handle; only DB 0 exists, so there is no state.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    match parse_i32(&argv[1])? {
        0 => Ok(Command::Reply(Reply::ok())),
        _ => Err(Reply::err("ERR DB index is out of range")),
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn select() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["SELECT", "0"], ok()),
                (&["SELECT", "1"], err("ERR DB index is out of range")),
                (&["SELECT", "-1"], err("ERR DB index is out of range")),
                (
                    &["SELECT", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["SELECT", "2147483648"],
                    err("ERR value is out of range, value must between -2147483648 and 2147483647"),
                ),
                (
                    &["SELECT"],
                    err("ERR wrong number of arguments for 'select' command"),
                ),
            ],
        );
    }
}
