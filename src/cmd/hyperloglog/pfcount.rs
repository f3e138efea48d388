//! PFCOUNT.

use bytes::Bytes;

use super::{corrupt, sketch, sketch_at};
use crate::cmd::args::ParseResult;
use crate::cmd::get_string;
use crate::cmd::{Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `PFCOUNT key [key ...]`: the estimated cardinality of one sketch, or of the union of
/// several (missing keys are empty sketches). Unlike Redis, counting one sketch whose
/// cache is stale does not store the count back: PFCOUNT stays a read, served behind the
/// read barrier without a log entry, and only the 8 cache bytes of the value differ.
#[derive(Clone, Debug, PartialEq)]
pub struct PfCount {
    pub keys: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::PfCount(PfCount {
        keys: argv[1..].to_vec(),
    })))
}

impl PfCount {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        if let [key] = &self.keys[..] {
            return match sketch_at(db, key, now_ms) {
                Err(e) => e,
                Ok(None) => Reply::Int(0),
                Ok(Some((v, _))) => {
                    match sketch::cached(&v).map_or_else(|| sketch::count(&v), Ok) {
                        Ok(n) => Reply::Int(n as i64),
                        Err(_) => corrupt(),
                    }
                }
            };
        }
        let mut values = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            match get_string(db, key, now_ms) {
                Ok(v) => values.push(v.map(|(b, _)| b)),
                Err(e) => return e,
            }
        }
        match sketch::union_count(values.iter().map(|v| v.as_deref())) {
            Ok(n) => Reply::Int(n as i64),
            Err(e) => Reply::err(e),
        }
    }
}
