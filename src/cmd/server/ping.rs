//! PING, and the cluster handshake commands that only need `+OK`.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `PING [message]`: `+PONG`, or the message as a bulk string.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(match argv {
        [_] => Reply::status("PONG"),
        [_, msg] => Reply::Bulk(msg.clone()),
        _ => Reply::wrong_arity("ping"),
    }))
}

/// `ASKING`, `READONLY`, `READWRITE`: accepted so cluster clients can connect. Every replica
/// read already goes to the group leader, so they change nothing.
pub fn parse_ok(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::ok()))
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn ping() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["PING"], Reply::status("PONG")),
                (&["ping", "hi"], bulk("hi")),
                (
                    &["PING", "a", "b"],
                    err("ERR wrong number of arguments for 'ping' command"),
                ),
                (&["ASKING"], ok()),
                (&["readonly"], ok()),
                (&["READWRITE"], ok()),
                (
                    &["READONLY", "x"],
                    err("ERR wrong number of arguments for 'readonly' command"),
                ),
            ],
        );
    }
}
