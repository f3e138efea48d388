//! TTL, PTTL, EXPIRETIME and PEXPIRETIME.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// Which of the four views of a key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlKind {
    /// Remaining seconds, rounded half up.
    Ttl,
    /// Remaining milliseconds.
    Pttl,
    /// Absolute unix seconds, rounded half up.
    ExpireTime,
    /// Absolute unix milliseconds.
    PExpireTime,
}

/// `TTL key`, `PTTL key`, `EXPIRETIME key`, `PEXPIRETIME key`: `-2` for a missing key, `-1`
/// without a TTL; remaining times are clamped at 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Ttl {
    pub key: Bytes,
    pub kind: TtlKind,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let kind = [
        ("ttl", TtlKind::Ttl),
        ("pttl", TtlKind::Pttl),
        ("expiretime", TtlKind::ExpireTime),
        ("pexpiretime", TtlKind::PExpireTime),
    ]
    .into_iter()
    .find(|(n, _)| argv[0].eq_ignore_ascii_case(n.as_bytes()))
    .map_or(TtlKind::Ttl, |(_, k)| k);
    Ok(Command::Read(ReadCmd::Ttl(Ttl {
        key: argv[1].clone(),
        kind,
    })))
}

impl Ttl {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let Some(v) = db.get(&self.key, now_ms) else {
            return Reply::Int(-2);
        };
        let Some(at) = v.expire_at else {
            return Reply::Int(-1);
        };
        let remaining = at.saturating_sub(now_ms);
        let n = match self.kind {
            TtlKind::Ttl => remaining.saturating_add(500) / 1000,
            TtlKind::Pttl => remaining,
            TtlKind::ExpireTime => at.saturating_add(500) / 1000,
            TtlKind::PExpireTime => at,
        };
        Reply::Int(n.min(i64::MAX as u64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;

    #[test]
    fn ttl_views() {
        let mut db = db_with(&[("p", "v")]);
        check(
            &mut db,
            &[
                (&["TTL", "missing"], int(-2)),
                (&["PTTL", "missing"], int(-2)),
                (&["EXPIRETIME", "missing"], int(-2)),
                (&["PEXPIRETIME", "missing"], int(-2)),
                (&["TTL", "p"], int(-1)),
                (&["PTTL", "p"], int(-1)),
                (&["EXPIRETIME", "p"], int(-1)),
                (&["PEXPIRETIME", "p"], int(-1)),
                (&["PEXPIRE", "p", "1499"], int(1)),
                (&["TTL", "p"], int(1)),
                (&["PEXPIRE", "p", "1500"], int(1)),
                (&["TTL", "p"], int(2)),
                (&["PEXPIRE", "p", "499"], int(1)),
                (&["TTL", "p"], int(0)),
                (&["PTTL", "p"], int(499)),
                (&["PEXPIRETIME", "p"], int(1_700_000_000_499)),
                (&["EXPIRETIME", "p"], int(1_700_000_000)),
                (&["PEXPIREAT", "p", "1700000100500"], int(1)),
                (&["EXPIRETIME", "p"], int(1_700_000_101)),
            ],
        );
    }
}
