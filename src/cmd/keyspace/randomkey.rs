//! RANDOMKEY.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// Keys fetched per storage scan while looking for a live key.
const PAGE: usize = 16;

/// `RANDOMKEY`: a live key from a pseudo-random scan position (the first live key at or
/// after it, wrapping once), or null when there is none. It is a read, never replicated,
/// so a process-local generator is fine; the distribution is biased by key spacing.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomKey;

pub fn parse(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::RandomKey(RandomKey)))
}

static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// xorshift64* seeded from the clock and a per-call counter.
fn random_pos(now_ms: u64) -> u64 {
    let mut x = now_ms ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x |= 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

impl RandomKey {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let start = random_pos(now_ms);
        let mut pos = start;
        let mut wrapped = false;
        loop {
            let (page, next) = db.scan(pos, PAGE);
            if let Some((k, _)) = page.into_iter().find(|(_, v)| !v.is_expired(now_ms)) {
                return Reply::Bulk(k);
            }
            if next == 0 || (wrapped && next >= start) {
                if wrapped || start == 0 {
                    return Reply::Null;
                }
                wrapped = true;
                pos = 0;
            } else {
                pos = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn randomkey() {
        let mut db = db_with(&[]);
        assert_eq!(run(&mut db, &["RANDOMKEY"]), Reply::Null);
        run(&mut db, &["SET", "gone", "v", "PXAT", "1"]);
        assert_eq!(run(&mut db, &["RANDOMKEY"]), Reply::Null);
        for i in 0..20 {
            run(&mut db, &["SET", &format!("k{i}"), "v"]);
        }
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let r = run(&mut db, &["RANDOMKEY"]);
            assert_ne!(r, bulk("gone"));
            assert!(matches!(r, Reply::Bulk(_)), "{r:?}");
            seen.insert(format!("{r:?}"));
        }
        assert!(seen.len() > 5, "{}", seen.len());
    }
}
