//! AUTH.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `AUTH [username] password`
///
/// No password is configured (the default user is `nopass`), so the answer depends only on
/// the arguments: `AUTH default <anything>` succeeds, another user fails, and a bare
/// password gets Redis's "no password configured" error.
pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(match argv {
        [_, _] => Reply::err(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        [_, user, _] if &user[..] == b"default" => Reply::ok(),
        [_, _, _] => Reply::err("WRONGPASS invalid username-password pair or user is disabled."),
        _ => Reply::syntax_error(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn auth() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["AUTH", "pw"], err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")),
                (&["AUTH", "default", "anything"], ok()),
                (&["AUTH", "bob", "pw"], err("WRONGPASS invalid username-password pair or user is disabled.")),
                (&["AUTH", "a", "b", "c"], err("ERR syntax error")),
                (&["AUTH"], err("ERR wrong number of arguments for 'auth' command")),
            ],
        );
    }
}
