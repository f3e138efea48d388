//! ECHO.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `ECHO message`: the message as a bulk string.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::Bulk(argv[1].clone())))
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn echo() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["ECHO", "hello world"], bulk("hello world")),
                (&["ECHO", ""], bulk("")),
                (
                    &["ECHO"],
                    err("ERR wrong number of arguments for 'echo' command"),
                ),
                (
                    &["ECHO", "a", "b"],
                    err("ERR wrong number of arguments for 'echo' command"),
                ),
            ],
        );
    }
}
