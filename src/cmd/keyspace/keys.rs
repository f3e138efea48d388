//! KEYS.

use bytes::Bytes;

use crate::cmd::args::ParseResult;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::glob::glob_match;
use redraft_proxy::wire::Reply;

/// Keys fetched per storage scan while walking the whole keyspace.
const PAGE: usize = 1024;

/// `KEYS pattern`: every live key matching the glob, in storage order.
#[derive(Clone, Debug, PartialEq)]
pub struct Keys {
    pub pattern: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Keys(Keys {
        pattern: argv[1].clone(),
    })))
}

/// keysCommand's filter: the bare `*` matches every key, the empty key included, which
/// stringmatchlen alone would not.
pub fn key_matches(pattern: &[u8], key: &[u8]) -> bool {
    pattern == b"*" || glob_match(pattern, key, false)
}

impl Keys {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (page, next) = db.scan(pos, PAGE);
            for (k, v) in page {
                if !v.is_expired(now_ms) && key_matches(&self.pattern, &k) {
                    out.push(Reply::Bulk(k));
                }
            }
            if next == 0 {
                return Reply::Array(out);
            }
            pos = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    fn sorted(r: Reply) -> Vec<Reply> {
        let Reply::Array(mut v) = r else {
            panic!("{r:?}")
        };
        v.sort_by_key(|r| format!("{r:?}"));
        v
    }

    #[test]
    fn keys() {
        let mut db = db_with(&[
            ("hello", "1"),
            ("hallo", "2"),
            ("hxllo", "3"),
            ("", "e"),
            ("other", "4"),
        ]);
        run(&mut db, &["SET", "gone", "v", "PXAT", "1"]);
        assert_eq!(
            sorted(run(&mut db, &["KEYS", "h[ae]llo"])),
            vec![bulk("hallo"), bulk("hello")]
        );
        assert_eq!(sorted(run(&mut db, &["KEYS", "*"])).len(), 5);
        assert_eq!(run(&mut db, &["KEYS", ""]), Reply::Array(vec![bulk("")]));
        assert_eq!(sorted(run(&mut db, &["KEYS", "**"])).len(), 4);
        assert_eq!(run(&mut db, &["KEYS", "nomatch*"]), Reply::Array(vec![]));
    }

    #[test]
    fn keys_spans_many_pages() {
        let mut db = db_with(&[]);
        for i in 0..3000 {
            run(&mut db, &["SET", &format!("k{i}"), "v"]);
        }
        assert_eq!(sorted(run(&mut db, &["KEYS", "k*"])).len(), 3000);
    }
}
