//! Test helpers: run argv through `parse` and then `execute`/`apply` against a `Keyspace`,
//! round-tripping every write through postcard as the Raft log would.

use bytes::Bytes;

use super::{parse, Command, WriteCmd};
use crate::db::keyspace::Keyspace;
use crate::db::{DbWrite, Value};
use redraft_proxy::wire::Reply;

/// A fixed "now" for tests: 2023-11-14T22:13:20Z.
pub const NOW: u64 = 1_700_000_000_000;

pub fn argv(args: &[&str]) -> Vec<Bytes> {
    args.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

/// Parses at `now` and runs at the same `now`.
pub fn run_at(db: &mut Keyspace, now: u64, args: &[&str]) -> Reply {
    match parse(&argv(args), now) {
        Command::Reply(r) => r,
        Command::Read(c) => c.execute(db, now),
        Command::Write(c) => {
            let bytes = postcard::to_allocvec(&c).expect("serialize");
            let back: WriteCmd = postcard::from_bytes(&bytes).expect("deserialize");
            assert_eq!(back, c);
            back.apply(db, now)
        }
        Command::Session(a) => panic!("session command {a:?}"),
    }
}

pub fn run(db: &mut Keyspace, args: &[&str]) -> Reply {
    run_at(db, NOW, args)
}

/// Runs each `(argv, expected reply)` in order against one db.
pub fn check(db: &mut Keyspace, cases: &[(&[&str], Reply)]) {
    for (args, want) in cases {
        assert_eq!(&run(db, args), want, "{args:?}");
    }
}

pub fn db_with(pairs: &[(&str, &str)]) -> Keyspace {
    let mut db = Keyspace::new();
    for (k, v) in pairs {
        db.put(
            k.as_bytes(),
            Value::string(Bytes::copy_from_slice(v.as_bytes())),
        );
    }
    db
}

pub fn bulk(s: &str) -> Reply {
    Reply::bulk_str(s)
}

pub fn int(i: i64) -> Reply {
    Reply::Int(i)
}

pub fn err(s: &str) -> Reply {
    Reply::err(s)
}

pub fn ok() -> Reply {
    Reply::ok()
}
