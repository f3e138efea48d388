//! Replies and their RESP2/RESP3 encoding, plus Redis's shared error texts.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The protocol a connection speaks: RESP2 until `HELLO 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// One reply. Replicated commands return these from the state machine, so it is serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// The full error text without the leading `-`, e.g. `ERR syntax error`, `WRONGTYPE ...`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// `$-1` in RESP2, `_` in RESP3.
    Null,
    Array(Vec<Reply>),
    /// A flat array of 2N in RESP2, `%N` in RESP3.
    Map(Vec<(Reply, Reply)>),
    /// An array in RESP2, `~N` in RESP3.
    Set(Vec<Reply>),
    /// A bulk string in RESP2, `=len\r\ntxt:...` in RESP3.
    Verbatim(Bytes),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }
    pub fn status(s: &str) -> Reply {
        Reply::Status(s.into())
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    /// An error; `ERR ` is prefixed unless the text starts with an upper-case code word
    /// (`WRONGTYPE`, `MOVED`, ...), as Redis's addReplyError does for a leading `-`.
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    // Redis's shared error texts (server.c createSharedObjects and friends).
    pub fn syntax_error() -> Reply {
        Reply::err("ERR syntax error")
    }
    pub fn not_integer() -> Reply {
        Reply::err("ERR value is not an integer or out of range")
    }
    pub fn not_float() -> Reply {
        Reply::err("ERR value is not a valid float")
    }
    pub fn wrong_type() -> Reply {
        Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value")
    }
    pub fn no_such_key() -> Reply {
        Reply::err("ERR no such key")
    }
    pub fn wrong_arity(fullname: &str) -> Reply {
        Reply::err(format!("ERR wrong number of arguments for '{fullname}' command"))
    }
    pub fn invalid_expire(fullname: &str) -> Reply {
        Reply::err(format!("ERR invalid expire time in '{fullname}' command"))
    }
}

impl Reply {
    /// Appends this reply's bytes for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let _ = (proto, out);
        todo!("wire helper")
    }
}
