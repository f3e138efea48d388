//! OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key, OBJECT HELP.
//!
//! A value here is bytes, not one of Redis's objects, so ENCODING and REFCOUNT answer what
//! Redis would for the same bytes stored by SET: `int` for an integer in canonical form
//! (of which 0–9999 are Redis's shared integers), `embstr` up to 44 bytes, `raw` beyond.
//! Redis also says `raw` for a short value that APPEND or SETRANGE built; that history is
//! not kept here. No access time or frequency is kept either (reads change no replicated
//! state), so IDLETIME and FREQ of an existing key answer an error, FREQ Redis's own under
//! its default `maxmemory-policy noeviction`.

use bytes::Bytes;

use crate::cmd::args::{string2ll, ParseResult};
use crate::cmd::{Command, ReadCmd};
use crate::db::{Data, DbRead};
use redraft_proxy::wire::Reply;

/// Redis shares the integer objects below this (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;
/// The refcount Redis reports for a shared object (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Longest string Redis embeds in its object header (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
const EMBSTR_MAX: usize = 44;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspect {
    Encoding,
    RefCount,
    IdleTime,
    Freq,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub what: Inspect,
    pub key: Bytes,
}

fn parse(what: Inspect, argv: &[Bytes]) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::Object(Object {
        what,
        key: argv[2].clone(),
    })))
}

pub fn parse_encoding(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(Inspect::Encoding, argv)
}

pub fn parse_refcount(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(Inspect::RefCount, argv)
}

pub fn parse_idletime(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(Inspect::IdleTime, argv)
}

pub fn parse_freq(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    parse(Inspect::Freq, argv)
}

pub fn parse_help(_argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Reply(Reply::Array(
        [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ]
        .iter()
        .map(|&l| Reply::status(l))
        .collect(),
    )))
}

impl Object {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        // Redis looks the key up first: a missing key is null whatever is asked.
        let Some(v) = db.get(&self.key, now_ms) else {
            return Reply::Null;
        };
        let Data::Str(s) = &v.data;
        let int = string2ll(s);
        match self.what {
            Inspect::Encoding => Reply::bulk(match int {
                Some(_) => "int",
                None if s.len() <= EMBSTR_MAX => "embstr",
                None => "raw",
            }),
            Inspect::RefCount => Reply::Int(match int {
                Some(i) if (0..SHARED_INTEGERS).contains(&i) => SHARED_REFCOUNT,
                _ => 1,
            }),
            Inspect::IdleTime => Reply::err(
                "ERR redraft does not track when a key was last accessed, so OBJECT IDLETIME has no answer",
            ),
            Inspect::Freq => Reply::err(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn object_answers_as_redis_does_for_the_same_bytes() {
        let long = "x".repeat(45);
        let mut db = db_with(&[
            ("small", "123"),
            ("big", "12345"),
            ("neg", "-5"),
            ("padded", "0123"),
            ("plus", "+1"),
            ("text", "abc"),
            ("edge", &"y".repeat(44)),
            ("long", &long),
            ("huge", "123456789012345678901"),
        ]);
        check(
            &mut db,
            &[
                (&["OBJECT", "ENCODING", "small"], bulk("int")),
                (&["object", "encoding", "big"], bulk("int")),
                (&["OBJECT", "ENCODING", "neg"], bulk("int")),
                (&["OBJECT", "ENCODING", "padded"], bulk("embstr")),
                (&["OBJECT", "ENCODING", "plus"], bulk("embstr")),
                (&["OBJECT", "ENCODING", "text"], bulk("embstr")),
                (&["OBJECT", "ENCODING", "edge"], bulk("embstr")),
                (&["OBJECT", "ENCODING", "long"], bulk("raw")),
                (&["OBJECT", "ENCODING", "huge"], bulk("embstr")),
                (&["OBJECT", "ENCODING", "nope"], Reply::Null),
                (&["OBJECT", "REFCOUNT", "small"], int(2147483647)),
                (&["OBJECT", "REFCOUNT", "big"], int(1)),
                (&["OBJECT", "REFCOUNT", "neg"], int(1)),
                (&["OBJECT", "REFCOUNT", "text"], int(1)),
                (&["OBJECT", "REFCOUNT", "nope"], Reply::Null),
                (&["OBJECT", "FREQ", "nope"], Reply::Null),
                (&["OBJECT", "IDLETIME", "nope"], Reply::Null),
                (
                    &["OBJECT", "FREQ", "text"],
                    err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
                ),
                (
                    &["OBJECT", "ENCODING"],
                    err("ERR wrong number of arguments for 'object|encoding' command"),
                ),
                (
                    &["OBJECT", "REFCOUNT", "a", "b"],
                    err("ERR wrong number of arguments for 'object|refcount' command"),
                ),
                (
                    &["OBJECT", "HELP", "x"],
                    err("ERR wrong number of arguments for 'object|help' command"),
                ),
                (
                    &["OBJECT"],
                    err("ERR wrong number of arguments for 'object' command"),
                ),
                (
                    &["OBJECT", "foo"],
                    err("ERR unknown subcommand 'foo'. Try OBJECT HELP."),
                ),
            ],
        );
        assert!(run(&mut db, &["OBJECT", "IDLETIME", "text"]).is_error());
        match run(&mut db, &["OBJECT", "HELP"]) {
            Reply::Array(lines) => assert_eq!(lines.len(), 15),
            other => panic!("{other:?}"),
        }
    }
}
