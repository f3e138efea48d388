//! SWAPDB.

use bytes::Bytes;

use crate::cmd::args::{parse_i32, ParseResult};
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `SWAPDB index1 index2`: redraft has only DB 0 (see SELECT), so swapping it with itself
/// is `+OK` and changes nothing, and any other index is out of range, as at a redis-server
/// with one database.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let index = |b: &[u8], which: &str| {
        parse_i32(b).map_err(|_| Reply::err(format!("ERR invalid {which} DB index")))
    };
    let (a, b) = (index(&argv[1], "first")?, index(&argv[2], "second")?);
    if (a, b) != (0, 0) {
        return Err(Reply::err("ERR DB index is out of range"));
    }
    Ok(Command::Reply(Reply::ok()))
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn swapdb() {
        let mut db = db_with(&[("k", "v")]);
        check(
            &mut db,
            &[
                (&["SWAPDB", "0", "0"], ok()),
                (&["SWAPDB", "0", "1"], err("ERR DB index is out of range")),
                (&["SWAPDB", "-1", "0"], err("ERR DB index is out of range")),
                (&["SWAPDB", "x", "0"], err("ERR invalid first DB index")),
                (&["SWAPDB", "0", "x"], err("ERR invalid second DB index")),
                (&["SWAPDB", "1", "x"], err("ERR invalid second DB index")),
                (
                    &["SWAPDB", "0", "99999999999"],
                    err("ERR invalid second DB index"),
                ),
                (
                    &["SWAPDB", "0"],
                    err("ERR wrong number of arguments for 'swapdb' command"),
                ),
                (&["GET", "k"], bulk("v")),
            ],
        );
    }
}
