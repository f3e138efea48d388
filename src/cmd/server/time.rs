//! TIME.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::Command;
use redraft_proxy::wire::Reply;

/// `TIME`: `[unix seconds, microseconds]` as bulk strings, from this node's clock (it is
/// not replicated, so the system clock is the right source).
pub fn parse(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Command::Reply(Reply::Array(vec![
        Reply::bulk(d.as_secs().to_string()),
        Reply::bulk(d.subsec_micros().to_string()),
    ])))
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn time() {
        let mut db = db_with(&[]);
        let Reply::Array(parts) = run(&mut db, &["TIME"]) else {
            panic!()
        };
        let [Reply::Bulk(s), Reply::Bulk(us)] = &parts[..] else {
            panic!("{parts:?}")
        };
        let s: u64 = std::str::from_utf8(s).expect("utf8").parse().expect("secs");
        let us: u64 = std::str::from_utf8(us)
            .expect("utf8")
            .parse()
            .expect("micros");
        assert!(s > 1_600_000_000 && us < 1_000_000);
        assert_eq!(
            run(&mut db, &["TIME", "x"]),
            err("ERR wrong number of arguments for 'time' command")
        );
    }
}
