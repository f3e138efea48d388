//! MEMORY USAGE key [SAMPLES count] | DOCTOR | MALLOC-STATS | PURGE | HELP.

use bytes::Bytes;

use crate::cmd::args::{is_kw, parse_i64, ParseResult};
use crate::cmd::{Command, ReadCmd};
use crate::db::keyspace::stored_size;
use crate::db::{Data, DbRead};
use redraft_proxy::wire::Reply;

/// `MEMORY USAGE key`: the bytes the key and its value take here, or null. SAMPLES is
/// checked and has nothing to sample: a string is measured whole.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryUsage {
    pub key: Bytes,
}

pub fn parse_usage(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    let mut j = 3;
    while j < argv.len() {
        if !(is_kw(&argv[j], "samples") && j + 1 < argv.len()) {
            return Err(Reply::syntax_error());
        }
        if parse_i64(&argv[j + 1])? < 0 {
            return Err(Reply::syntax_error());
        }
        j += 2;
    }
    Ok(Command::Read(ReadCmd::MemoryUsage(MemoryUsage {
        key: argv[2].clone(),
    })))
}

pub fn parse_help(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::Array(
        [
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ]
        .iter()
        .map(|&l| Reply::status(l))
        .collect(),
    )))
}

/// `MEMORY DOCTOR`: Redis's report when it finds nothing to say. Its detectors look at
/// jemalloc's fragmentation and at replica and client buffers, none of which apply here.
pub fn parse_doctor(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::Verbatim(Bytes::from_static(
        b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n",
    ))))
}

/// `MEMORY MALLOC-STATS`: what Redis answers when built without jemalloc (redraft runs on
/// mimalloc).
pub fn parse_malloc_stats(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::Verbatim(Bytes::from_static(
        b"Stats not supported for the current allocator",
    ))))
}

/// `MEMORY PURGE`: `+OK`, as Redis without jemalloc (mimalloc returns freed memory to the
/// system by itself).
pub fn parse_purge(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::ok()))
}

impl MemoryUsage {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match db.get(&self.key, now_ms) {
            Some(v) => {
                let Data::Str(s) = &v.data;
                Reply::Int(stored_size(self.key.len(), s.len()) as i64)
            }
            None => Reply::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use crate::db::keyspace::stored_size;
    use redraft_proxy::wire::Reply;

    #[test]
    fn memory_usage() {
        let long = "x".repeat(1000);
        let mut db = db_with(&[("k", "hello"), ("big", &long)]);
        let small = stored_size(1, 5) as i64;
        let big = stored_size(3, 1000) as i64;
        assert!(small >= 6 && big - small >= 995, "{small} {big}");
        check(
            &mut db,
            &[
                (&["MEMORY", "USAGE", "k"], int(small)),
                (&["memory", "usage", "big", "SAMPLES", "0"], int(big)),
                (&["MEMORY", "USAGE", "nope"], Reply::Null),
                (
                    &["MEMORY", "USAGE", "k", "SAMPLES", "x"],
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    &["MEMORY", "USAGE", "k", "SAMPLES", "-1"],
                    err("ERR syntax error"),
                ),
                (
                    &["MEMORY", "USAGE", "k", "SAMPLES"],
                    err("ERR syntax error"),
                ),
                (&["MEMORY", "USAGE", "k", "bar"], err("ERR syntax error")),
                (
                    &["MEMORY", "USAGE"],
                    err("ERR wrong number of arguments for 'memory|usage' command"),
                ),
                (
                    &["MEMORY"],
                    err("ERR wrong number of arguments for 'memory' command"),
                ),
                (
                    &["MEMORY", "nosuch"],
                    err("ERR unknown subcommand 'nosuch'. Try MEMORY HELP."),
                ),
            ],
        );
    }
}
