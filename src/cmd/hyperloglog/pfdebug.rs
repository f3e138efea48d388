//! PFDEBUG.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{corrupt, sketch, sketch_at};
use crate::cmd::args::ParseResult;
use crate::cmd::{str_value, Command, WriteCmd};
use crate::db::DbWrite;
use redraft_proxy::wire::table::err_arg;
use redraft_proxy::wire::Reply;

/// `PFDEBUG GETREG|DECODE|ENCODING|TODENSE key`, Redis's look inside a sketch. A write, as
/// in Redis: GETREG and TODENSE turn a sparse sketch dense.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PfDebug {
    /// The subcommand as given (an unknown one is refused only after the key is checked).
    pub sub: Bytes,
    pub key: Bytes,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Write(WriteCmd::PfDebug(PfDebug {
        sub: argv[1].clone(),
        key: argv[2].clone(),
    })))
}

impl PfDebug {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        let (v, ttl) = match sketch_at(db, &self.key, now_ms) {
            Err(e) => return e,
            Ok(None) => return Reply::err("ERR The specified key does not exist"),
            Ok(Some(found)) => found,
        };
        let sub = &self.sub[..];
        let mut to_dense = || -> Result<Bytes, Reply> {
            if sketch::is_dense(&v) {
                return Ok(v.clone());
            }
            let d = Bytes::from(sketch::sparse_to_dense(&v).map_err(|_| corrupt())?);
            db.put(&self.key, str_value(d.clone(), ttl));
            Ok(d)
        };
        if sub.eq_ignore_ascii_case(b"getreg") {
            match to_dense() {
                Ok(d) => Reply::Array(
                    (0..sketch::REGISTERS)
                        .map(|i| Reply::Int(sketch::dense_get(&d[sketch::HDR..], i).into()))
                        .collect(),
                ),
                Err(e) => e,
            }
        } else if sub.eq_ignore_ascii_case(b"todense") {
            let was_sparse = !sketch::is_dense(&v);
            match to_dense() {
                Ok(_) => Reply::Int(was_sparse.into()),
                Err(e) => e,
            }
        } else if sub.eq_ignore_ascii_case(b"decode") {
            if sketch::is_dense(&v) {
                return Reply::err("ERR HLL encoding is not sparse");
            }
            Reply::bulk(sketch::decode(&v))
        } else if sub.eq_ignore_ascii_case(b"encoding") {
            Reply::status(if sketch::is_dense(&v) {
                "dense"
            } else {
                "sparse"
            })
        } else {
            Reply::err(format!("ERR Unknown PFDEBUG subcommand '{}'", err_arg(sub)))
        }
    }
}
