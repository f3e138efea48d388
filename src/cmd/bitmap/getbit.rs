//! GETBIT.

use bytes::Bytes;

use super::{bit_at, parse_offset};
use crate::cmd::args::ParseResult;
use crate::cmd::{get_string, Command, ReadCmd};
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// `GETBIT key offset`: the bit, 0 past the end of the string or for a missing key.
#[derive(Clone, Debug, PartialEq)]
pub struct GetBit {
    pub key: Bytes,
    pub offset: u64,
}

pub fn parse(argv: &[Bytes], _now_ms: u64) -> ParseResult<Command> {
    Ok(Command::Read(ReadCmd::GetBit(GetBit {
        key: argv[1].clone(),
        offset: parse_offset(&argv[2], None)?,
    })))
}

impl GetBit {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        match get_string(db, &self.key, now_ms) {
            Ok(v) => Reply::Int(v.is_some_and(|(b, _)| bit_at(&b, self.offset)).into()),
            Err(e) => e,
        }
    }
}
