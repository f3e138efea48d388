//! LCS.

use bytes::Bytes;

use crate::cmd::args::{parse_i64, ParseResult};
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// The DP table may take at most this many bytes: Redis's default `proto-max-bulk-len`,
/// which bounds it there too.
const MAX_TABLE_BYTES: u64 = 512 * 1024 * 1024;

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: the longest common
/// subsequence of two strings (a missing key is ""), its length, or its matching ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Lcs {
    pub a: Bytes,
    pub b: Bytes,
    pub len: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let mut lcs = Lcs {
        a: argv[1].clone(),
        b: argv[2].clone(),
        len: false,
        idx: false,
        min_match_len: 0,
        with_match_len: false,
    };
    let mut j = 3;
    while j < argv.len() {
        let opt = &argv[j];
        if opt.eq_ignore_ascii_case(b"idx") {
            lcs.idx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            lcs.len = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            lcs.with_match_len = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < argv.len() {
            lcs.min_match_len = parse_i64(&argv[j + 1])?.max(0) as u64;
            j += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        j += 1;
    }
    if lcs.idx && lcs.len {
        return Err(Reply::err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(Command::Read(ReadCmd::Lcs(lcs)))
}

impl Lcs {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let value = |key: &[u8]| get_string(db, key, now_ms).map(|v| v.map(|(v, _)| v));
        let (a, b) = match (value(&self.a), value(&self.b)) {
            (Ok(a), Ok(b)) => (a.unwrap_or_default(), b.unwrap_or_default()),
            _ => return Reply::err("ERR The specified keys must contain string values"),
        };
        let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
        if cells.saturating_mul(4) > MAX_TABLE_BYTES {
            return Reply::err(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            );
        }
        self.reply(&a, &b)
    }

    /// lcsCommand's table and walk back, so ranges come out as Redis gives them.
    fn reply(&self, a: &[u8], b: &[u8]) -> Reply {
        let (alen, blen) = (a.len(), b.len());
        let width = blen + 1;
        let mut table = vec![0u32; (alen + 1) * width];
        let at = |i: usize, j: usize| i * width + j;
        for i in 1..=alen {
            for j in 1..=blen {
                table[at(i, j)] = if a[i - 1] == b[j - 1] {
                    table[at(i - 1, j - 1)] + 1
                } else {
                    table[at(i - 1, j)].max(table[at(i, j - 1)])
                };
            }
        }
        let total = table[at(alen, blen)];
        if self.len {
            return Reply::Int(i64::from(total));
        }
        let mut result = vec![0u8; total as usize];
        let mut k = total as usize;
        let mut matches = Vec::new();
        // `alen` as the start: no range open.
        let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
        let (mut i, mut j) = (alen, blen);
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                result[k - 1] = a[i - 1];
                if a_start == alen {
                    (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
                } else if a_start == i && b_start == j {
                    // Contiguous: the range grows backward.
                    a_start -= 1;
                    b_start -= 1;
                } else {
                    emit = true;
                }
                if a_start == 0 || b_start == 0 {
                    emit = true;
                }
                k -= 1;
                i -= 1;
                j -= 1;
            } else {
                if table[at(i - 1, j)] > table[at(i, j - 1)] {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = a_start != alen;
            }
            if emit {
                let match_len = (a_end - a_start + 1) as u64;
                if self.idx && match_len >= self.min_match_len {
                    let pair = |s: usize, e: usize| {
                        Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)])
                    };
                    let mut range = vec![pair(a_start, a_end), pair(b_start, b_end)];
                    if self.with_match_len {
                        range.push(Reply::Int(match_len as i64));
                    }
                    matches.push(Reply::Array(range));
                }
                a_start = alen;
            }
        }
        if self.idx {
            Reply::Map(vec![
                (Reply::bulk_str("matches"), Reply::Array(matches)),
                (Reply::bulk_str("len"), Reply::Int(i64::from(total))),
            ])
        } else {
            Reply::Bulk(Bytes::from(result))
        }
    }

    pub fn first_key(&self) -> &[u8] {
        &self.a
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    fn range(a: (i64, i64), b: (i64, i64), len: Option<i64>) -> Reply {
        let pair = |(s, e)| Reply::Array(vec![Reply::Int(s), Reply::Int(e)]);
        let mut r = vec![pair(a), pair(b)];
        r.extend(len.map(Reply::Int));
        Reply::Array(r)
    }

    /// The examples of Redis's documentation, with the replies redis-server 7.0.15 gives.
    #[test]
    fn lcs() {
        let mut db = db_with(&[("key1", "ohmytext"), ("key2", "mynewtext")]);
        let idx = |matches: Vec<Reply>, len| {
            Reply::Map(vec![
                (Reply::bulk_str("matches"), Reply::Array(matches)),
                (Reply::bulk_str("len"), Reply::Int(len)),
            ])
        };
        check(
            &mut db,
            &[
                (&["LCS", "key1", "key2"], bulk("mytext")),
                (&["LCS", "key1", "key2", "LEN"], Reply::Int(6)),
                (
                    &["LCS", "key1", "key2", "IDX"],
                    idx(
                        vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)],
                        6,
                    ),
                ),
                (
                    &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
                    idx(vec![range((4, 7), (5, 8), None)], 6),
                ),
                (
                    &[
                        "LCS",
                        "key1",
                        "key2",
                        "IDX",
                        "MINMATCHLEN",
                        "4",
                        "WITHMATCHLEN",
                    ],
                    idx(vec![range((4, 7), (5, 8), Some(4))], 6),
                ),
                (&["LCS", "key1", "nosuch"], bulk("")),
                (&["LCS", "nosuch", "nosuch", "LEN"], Reply::Int(0)),
                (
                    &["LCS", "key1", "key2", "LEN", "IDX"],
                    err("ERR If you want both the length and indexes, please just use IDX."),
                ),
                (&["LCS", "key1", "key2", "FOO"], err("ERR syntax error")),
                (
                    &["LCS", "key1", "key2", "MINMATCHLEN"],
                    err("ERR syntax error"),
                ),
                (
                    &["LCS", "key1", "key2", "MINMATCHLEN", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
            ],
        );
    }
}
