//! SCAN.

use bytes::Bytes;

use super::keys::key_matches;
use crate::cmd::args::{is_kw, parse_i64, Args, ParseResult};
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The cursor is the storage scan position of `DbRead::scan` (see `db::keys`): positions
/// order like the stored keys, so a resumed scan neither skips nor repeats keys that stayed
/// put. COUNT is passed as the page size hint; MATCH, TYPE and expiry filter the page
/// afterwards, so a page may be empty while the cursor is not 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let cursor = redraft_proxy::wire::request::scan_cursor(&argv[1])
        .ok_or_else(|| Reply::err("ERR invalid cursor"))?;
    let mut scan = Scan {
        cursor,
        pattern: None,
        count: 10,
        type_name: None,
    };
    let mut args = Args::new(argv, 2);
    while let Some(opt) = args.next() {
        if is_kw(opt, "match") {
            scan.pattern = Some(args.value()?.clone());
        } else if is_kw(opt, "count") {
            let n = parse_i64(args.value()?)?;
            if n < 1 {
                return Err(Reply::syntax_error());
            }
            scan.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is_kw(opt, "type") {
            scan.type_name = Some(args.value()?.clone());
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(Command::Read(ReadCmd::Scan(scan)))
}

impl Scan {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let (page, next) = db.scan(self.cursor, self.count);
        let keys = page
            .into_iter()
            .filter(|(k, v)| {
                !v.is_expired(now_ms)
                    && self.pattern.as_ref().is_none_or(|p| key_matches(p, k))
                    && self
                        .type_name
                        .as_ref()
                        .is_none_or(|t| t.eq_ignore_ascii_case(v.data.type_name().as_bytes()))
            })
            .map(|(k, _)| Reply::Bulk(k))
            .collect();
        Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    /// Runs a full scan from 0 back to 0 and returns every key seen and the page count.
    fn full_scan(db: &mut crate::db::keyspace::Keyspace, extra: &[&str]) -> (Vec<String>, usize) {
        let (mut cursor, mut seen, mut pages) = ("0".to_string(), Vec::new(), 0);
        loop {
            let mut args = vec!["SCAN", cursor.as_str()];
            args.extend_from_slice(extra);
            let Reply::Array(parts) = run(db, &args) else {
                panic!()
            };
            let [Reply::Bulk(next), Reply::Array(keys)] = &parts[..] else {
                panic!("{parts:?}")
            };
            for k in keys {
                let Reply::Bulk(k) = k else { panic!() };
                seen.push(String::from_utf8(k.to_vec()).expect("utf8"));
            }
            pages += 1;
            cursor = String::from_utf8(next.to_vec()).expect("utf8");
            if cursor == "0" {
                return (seen, pages);
            }
        }
    }

    #[test]
    fn full_iteration_returns_every_key() {
        let mut db = db_with(&[]);
        for i in 0..500 {
            run(&mut db, &["SET", &format!("key:{i}"), "v"]);
        }
        let (seen, pages) = full_scan(&mut db, &["COUNT", "3"]);
        assert!(pages > 100, "{pages}");
        let set: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(set.len(), 500);
        assert_eq!(seen.len(), 500, "no duplicates while nothing changes");
    }

    #[test]
    fn filters() {
        let mut db = db_with(&[("a1", "1"), ("a2", "2"), ("b1", "3"), ("", "e")]);
        run(&mut db, &["SET", "a3", "v", "PXAT", "1"]);
        let (mut seen, _) = full_scan(&mut db, &["MATCH", "a*"]);
        seen.sort();
        assert_eq!(seen, vec!["a1", "a2"]);
        assert_eq!(full_scan(&mut db, &["MATCH", "*"]).0.len(), 4);
        assert_eq!(full_scan(&mut db, &["TYPE", "STRING"]).0.len(), 4);
        assert_eq!(full_scan(&mut db, &["TYPE", "list"]).0.len(), 0);
        assert_eq!(
            full_scan(&mut db, &["type", "nosuch", "count", "1", "match", "*"])
                .0
                .len(),
            0
        );
    }

    #[test]
    fn errors() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["SCAN", "abc"], err("ERR invalid cursor")),
                (&["SCAN", " 1"], err("ERR invalid cursor")),
                (&["SCAN", "1x"], err("ERR invalid cursor")),
                (&["SCAN", "18446744073709551616"], err("ERR invalid cursor")),
                (&["SCAN", "0", "COUNT"], err("ERR syntax error")),
                (&["SCAN", "0", "MATCH"], err("ERR syntax error")),
                (&["SCAN", "0", "FOO", "bar"], err("ERR syntax error")),
                (&["SCAN", "0", "COUNT", "0"], err("ERR syntax error")),
                (
                    &["SCAN", "0", "COUNT", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["SCAN"],
                    err("ERR wrong number of arguments for 'scan' command"),
                ),
                (
                    &["SCAN", "0"],
                    Reply::Array(vec![bulk("0"), Reply::Array(vec![])]),
                ),
                (
                    &["SCAN", "18446744073709551615"],
                    Reply::Array(vec![bulk("0"), Reply::Array(vec![])]),
                ),
            ],
        );
    }
}
