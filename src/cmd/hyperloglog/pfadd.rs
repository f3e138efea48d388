//! PFADD.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{corrupt, sketch, sketch_at};
use crate::cmd::args::ParseResult;
use crate::cmd::{str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::Reply;

/// `PFADD key [element ...]`: 1 when the sketch was created or a register rose, else 0.
/// A dense sketch is updated in place when nothing else holds the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PfAdd {
    pub key: Bytes,
    pub elements: Vec<Bytes>,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::PfAdd(PfAdd {
        key: argv[1].clone(),
        elements: argv[2..].to_vec(),
    })))
}

impl PfAdd {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (mut v, ttl, mut updated) = match sketch_at(db, &self.key, now_ms) {
            Err(e) => return e,
            Ok(None) => (sketch::new_sparse(), None, true),
            Ok(Some((b, ttl))) => {
                if sketch::is_dense(&b) {
                    drop(b);
                    let mut rose = false;
                    let elements = &self.elements;
                    let mut add = |v: &mut [u8]| {
                        rose = sketch::dense_add_all(v, elements.iter().map(|e| &e[..]))
                    };
                    if db.modify_in_place(&self.key, &mut add) {
                        return Reply::Int(rose.into());
                    }
                    // Shared (a snapshot, a reply in flight): update a copy.
                    match sketch_at(db, &self.key, now_ms) {
                        Ok(Some((b, ttl))) => (b.to_vec(), ttl, false),
                        _ => (sketch::new_sparse(), None, true),
                    }
                } else {
                    (b.to_vec(), ttl, false)
                }
            }
        };
        for e in &self.elements {
            match sketch::add(&mut v, e) {
                Ok(rose) => updated |= rose,
                Err(_) => {
                    // Registers set before the corrupt run stay set, as in Redis.
                    if updated {
                        db.put(&self.key, str_value(v.into(), ttl));
                    }
                    return corrupt();
                }
            }
        }
        if updated {
            sketch::invalidate(&mut v);
            db.put(&self.key, str_value(v.into(), ttl));
        }
        Reply::Int(updated.into())
    }
}
