//! PFMERGE.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{corrupt, sketch, sketch_at};
use crate::cmd::args::ParseResult;
use crate::cmd::{str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `PFMERGE destkey [sourcekey ...]`: stores at `destkey` the union of it and the sources
/// (missing keys are empty), keeping its expiry. Dense when any input is, as in Redis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PfMerge {
    pub dest: Bytes,
    pub srcs: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::PfMerge(PfMerge {
        dest: argv[1].clone(),
        srcs: argv[2..].to_vec(),
    })))
}

impl PfMerge {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let mut max = vec![0u8; sketch::REGISTERS];
        let mut dense = false;
        let mut dest = None;
        for (i, key) in std::iter::once(&self.dest).chain(&self.srcs).enumerate() {
            match sketch_at(db, key, now_ms) {
                Err(e) => return e,
                Ok(None) => {}
                Ok(Some((v, ttl))) => {
                    dense |= sketch::is_dense(&v);
                    if sketch::merge_into(&mut max, &v).is_err() {
                        return corrupt();
                    }
                    if i == 0 {
                        dest = Some((v, ttl));
                    }
                }
            }
        }
        let (mut v, ttl) = match dest {
            Some((v, ttl)) => (v.to_vec(), ttl),
            None => (sketch::new_sparse(), None),
        };
        if dense && !sketch::is_dense(&v) {
            match sketch::sparse_to_dense(&v) {
                Ok(d) => v = d,
                Err(_) => return corrupt(),
            }
        }
        for (i, m) in max.iter().enumerate() {
            if *m != 0 {
                // The destination was checked whole above, so no set can fail.
                let _ = sketch::set(&mut v, i, *m);
            }
        }
        sketch::invalidate(&mut v);
        db.put(&self.dest, str_value(v.into(), ttl));
        Reply::ok()
    }
}
