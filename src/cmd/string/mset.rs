//! MSET and MSETNX.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cmd::args::ParseResult;
use crate::cmd::{str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `MSET key value [key value ...]` and `MSETNX key value [key value ...]`.
///
/// Pairs apply in order, so a repeated key keeps its last value; TTLs are dropped. MSETNX
/// sets nothing if any key exists, which is why it must stay one entry in one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MSet {
    pub pairs: Vec<(Bytes, Bytes)>,
    /// MSETNX: all or nothing, replies `:1`/`:0` instead of `+OK`.
    pub nx: bool,
}

fn parse(argv: &[Bytes], nx: bool) -> ParseResult<Command> {
    if argv.len().is_multiple_of(2) {
        return Err(Reply::wrong_arity(if nx { "msetnx" } else { "mset" }));
    }
    let pairs = argv[1..]
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    Ok(Command::Write(WriteCmd::MSet(MSet { pairs, nx })))
}

pub fn parse_mset(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(argv, false)
}

pub fn parse_msetnx(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(argv, true)
}

impl MSet {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        if self.nx && self.pairs.iter().any(|(k, _)| db.get(k, now_ms).is_some()) {
            return Reply::Int(0);
        }
        for (k, v) in &self.pairs {
            db.put(k, str_value(v.clone(), None));
        }
        if self.nx {
            Reply::Int(1)
        } else {
            Reply::ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn mset() {
        let mut db = db_with(&[]);
        check(
            &mut db,
            &[
                (&["MSET", "a", "1", "b", "2", "a", "3"], ok()),
                (
                    &["MGET", "a", "b"],
                    Reply::Array(vec![bulk("3"), bulk("2")]),
                ),
                (
                    &["MSET", "a", "1", "b"],
                    err("ERR wrong number of arguments for 'mset' command"),
                ),
                (
                    &["MSET", "a"],
                    err("ERR wrong number of arguments for 'mset' command"),
                ),
                (&["SET", "t", "v", "EX", "10"], ok()),
                (&["MSET", "t", "w"], ok()),
                (&["TTL", "t"], int(-1)),
            ],
        );
    }

    #[test]
    fn msetnx() {
        let mut db = db_with(&[("a", "1")]);
        check(
            &mut db,
            &[
                (&["MSETNX", "x", "1", "a", "2"], int(0)),
                (&["EXISTS", "x"], int(0)),
                (&["GET", "a"], bulk("1")),
                (&["MSETNX", "x", "1", "y", "2"], int(1)),
                (
                    &["MGET", "x", "y"],
                    Reply::Array(vec![bulk("1"), bulk("2")]),
                ),
                (
                    &["MSETNX", "x"],
                    err("ERR wrong number of arguments for 'msetnx' command"),
                ),
                (
                    &["MSETNX", "p", "1", "q"],
                    err("ERR wrong number of arguments for 'msetnx' command"),
                ),
            ],
        );
    }
}
