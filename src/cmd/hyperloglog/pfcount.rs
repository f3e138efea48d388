//! PFCOUNT.

use bytes::Bytes;

use super::{corrupt, sketch, sketch_at};
use crate::cmd::args::ParseResult;
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
                    match sketch::cached(&v).ok_or(()).or_else(|_| sketch::count(&v)) {
                        Ok(n) => Reply::Int(n as i64),
                        Err(_) => corrupt(),
                    }
                }
            };
        }
        let mut max = vec![0u8; sketch::REGISTERS];
        for key in &self.keys {
            match sketch_at(db, key, now_ms) {
                Err(e) => return e,
                Ok(None) => {}
                Ok(Some((v, _))) => {
                    if sketch::merge_into(&mut max, &v).is_err() {
                        return corrupt();
                    }
                }
            }
        }
        Reply::Int(sketch::count_registers(&max) as i64)
    }
}
