//! Commands: one table, one parser entry point, and the three ways a command runs.

pub mod session;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::db::{DbRead, DbWrite};
use redraft_proxy::wire::Reply;

/// A parsed command and how it must run.
#[derive(Debug)]
pub enum Command {
    /// Answered at once, without the keyspace (PING, ECHO, COMMAND, errors, ...).
    Reply(Reply),
    /// Runs against local state on the leader after a linearizable read barrier.
    Read(ReadCmd),
    /// Goes through the Raft log and is applied on every replica.
    Write(WriteCmd),
    /// Needs the connection or the node (HELLO, QUIT, CLIENT, CONFIG, INFO, ROLE); the argv
    /// has passed the table's arity check.
    Session(Vec<Bytes>),
}

/// Table lookup, unknown-command and arity errors, then the command's own parser.
/// `now_ms` turns relative expiry times into absolute ones.
pub fn parse(argv: Vec<Bytes>, now_ms: u64) -> Command {
    let _ = (argv, now_ms);
    todo!("cmd helper")
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReadCmd {}

impl ReadCmd {
    pub fn execute(&self, db: &dyn DbRead, now_ms: u64) -> Reply {
        let _ = (db, now_ms);
        match *self {}
    }
    /// The first key, for slot routing (None for keyless commands).
    pub fn first_key(&self) -> Option<&[u8]> {
        match *self {}
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteCmd {
    /// Internal, proposed by the leader's expiry task: delete each key that is expired at
    /// the entry's time. Replies with the number deleted.
    DeleteExpired(Vec<Bytes>),
}

impl WriteCmd {
    pub fn apply(&self, db: &mut dyn DbWrite, now_ms: u64) -> Reply {
        match self {
            WriteCmd::DeleteExpired(keys) => {
                let mut n = 0;
                for k in keys {
                    if db.get_raw(k).is_some_and(|v| v.is_expired(now_ms)) && db.delete(k) {
                        n += 1;
                    }
                }
                Reply::Int(n)
            }
        }
    }
    pub fn first_key(&self) -> Option<&[u8]> {
        match self {
            WriteCmd::DeleteExpired(keys) => keys.first().map(|k| &k[..]),
        }
    }
}
