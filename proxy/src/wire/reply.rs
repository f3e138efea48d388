//! Replies and their RESP2/RESP3 encoding, plus Redis's shared error texts.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The protocol a connection speaks: RESP2 until `HELLO 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// One reply. Replicated commands return these from the state machine, so it is serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`. Borrowed for the fixed texts: SET's `+OK` is most of the replies a write
    /// load gets, made on every replica and kept in exactly-once entries.
    Status(Cow<'static, str>),
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
    // New variants go last: replies are kept in logs and snapshots (exactly-once entries).
    /// `*-1` in RESP2 (EXEC of a transaction whose watched keys changed), `_` in RESP3.
    NullArray,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }
    pub fn status(s: impl Into<Cow<'static, str>>) -> Reply {
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
    /// A leading `-` is also accepted and dropped, so Redis-style `-CODE text` works too.
    /// When the text starts with user input, spell out the `ERR ` so input like `FOO`
    /// cannot pass for a code.
    pub fn err(msg: impl Into<String>) -> Reply {
        let msg = msg.into();
        if let Some(rest) = msg.strip_prefix('-') {
            return Reply::Error(rest.to_owned());
        }
        let code = msg.split(' ').next().unwrap_or_default();
        if !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Reply::Error(msg)
        } else {
            Reply::Error(format!("ERR {msg}"))
        }
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
        Reply::err(format!(
            "ERR wrong number of arguments for '{fullname}' command"
        ))
    }
    pub fn invalid_expire(fullname: &str) -> Reply {
        Reply::err(format!("ERR invalid expire time in '{fullname}' command"))
    }
}

impl Reply {
    /// Appends this reply's bytes for `proto` to `out`.
    ///
    /// Writes straight into `out` (no intermediate frames): this runs once per reply on the
    /// hot path.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Reply::Status(s) => put_line(out, b'+', s.as_bytes()),
            Reply::Error(s) => put_line(out, b'-', s.as_bytes()),
            Reply::Int(n) => put_header(out, b':', *n),
            Reply::Bulk(b) => put_bulk(out, b),
            Reply::Null => out.extend_from_slice(match proto {
                Protocol::Resp2 => b"$-1\r\n",
                Protocol::Resp3 => b"_\r\n",
            }),
            Reply::NullArray => out.extend_from_slice(match proto {
                Protocol::Resp2 => b"*-1\r\n",
                Protocol::Resp3 => b"_\r\n",
            }),
            Reply::Array(items) => {
                put_header(out, b'*', items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp2 => put_header(out, b'*', pairs.len() * 2),
                    Protocol::Resp3 => put_header(out, b'%', pairs.len()),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                let tag = match proto {
                    Protocol::Resp2 => b'*',
                    Protocol::Resp3 => b'~',
                };
                put_header(out, tag, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Verbatim(b) => match proto {
                Protocol::Resp2 => put_bulk(out, b),
                Protocol::Resp3 => {
                    // The length counts the `txt:` format prefix.
                    put_header(out, b'=', b.len() + 4);
                    out.reserve(b.len() + 6);
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                }
            },
        }
    }

    /// The encoding as one buffer; handy in tests and for one-off replies.
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

/// `<tag><n>\r\n`, formatted on the stack: a length, a count or an integer reply.
pub(crate) fn put_header(out: &mut BytesMut, tag: u8, n: impl itoa::Integer) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(tag);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_header(out, b'$', b.len());
    out.reserve(b.len() + 2);
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// A simple string or error line. CR and LF become spaces, as in Redis's
/// addReplyErrorFormat, because either would end the line early and desync the client.
fn put_line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use Protocol::{Resp2, Resp3};

    fn enc(r: &Reply, proto: Protocol) -> Vec<u8> {
        r.to_bytes(proto).to_vec()
    }

    /// (reply, RESP2 bytes, RESP3 bytes)
    fn cases() -> Vec<(Reply, &'static [u8], &'static [u8])> {
        let b = Reply::bulk_str;
        vec![
            (Reply::ok(), b"+OK\r\n", b"+OK\r\n"),
            (Reply::status(""), b"+\r\n", b"+\r\n"),
            (Reply::status("a\r\nb"), b"+a  b\r\n", b"+a  b\r\n"),
            (
                Reply::syntax_error(),
                b"-ERR syntax error\r\n",
                b"-ERR syntax error\r\n",
            ),
            (
                Reply::Error("ERR bad\r\nthing\n".into()),
                b"-ERR bad  thing \r\n",
                b"-ERR bad  thing \r\n",
            ),
            (
                Reply::wrong_type(),
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            ),
            (Reply::Int(0), b":0\r\n", b":0\r\n"),
            (Reply::Int(-1), b":-1\r\n", b":-1\r\n"),
            (
                Reply::Int(i64::MAX),
                b":9223372036854775807\r\n",
                b":9223372036854775807\r\n",
            ),
            (
                Reply::Int(i64::MIN),
                b":-9223372036854775808\r\n",
                b":-9223372036854775808\r\n",
            ),
            (b("foo"), b"$3\r\nfoo\r\n", b"$3\r\nfoo\r\n"),
            (b(""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
            (
                Reply::bulk(&b"a\r\n\0\xff"[..]),
                b"$5\r\na\r\n\0\xff\r\n",
                b"$5\r\na\r\n\0\xff\r\n",
            ),
            (Reply::Null, b"$-1\r\n", b"_\r\n"),
            (Reply::Array(vec![]), b"*0\r\n", b"*0\r\n"),
            (
                Reply::Array(vec![b("a"), Reply::Null, Reply::Int(1)]),
                b"*3\r\n$1\r\na\r\n$-1\r\n:1\r\n",
                b"*3\r\n$1\r\na\r\n_\r\n:1\r\n",
            ),
            (Reply::Map(vec![]), b"*0\r\n", b"%0\r\n"),
            (
                Reply::Map(vec![
                    (b("proto"), Reply::Int(3)),
                    (b("modules"), Reply::Array(vec![])),
                ]),
                b"*4\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
                b"%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
            ),
            (Reply::Set(vec![]), b"*0\r\n", b"~0\r\n"),
            (
                Reply::Set(vec![Reply::status("readonly"), Reply::status("fast")]),
                b"*2\r\n+readonly\r\n+fast\r\n",
                b"~2\r\n+readonly\r\n+fast\r\n",
            ),
            (
                Reply::Verbatim(Bytes::from_static(b"# Server\r\nx:1\r\n")),
                b"$15\r\n# Server\r\nx:1\r\n\r\n",
                b"=19\r\ntxt:# Server\r\nx:1\r\n\r\n",
            ),
            (
                Reply::Verbatim(Bytes::new()),
                b"$0\r\n\r\n",
                b"=4\r\ntxt:\r\n",
            ),
            (
                // Nesting keeps each level's own encoding.
                Reply::Map(vec![(
                    b("flags"),
                    Reply::Set(vec![Reply::Map(vec![(b("k"), Reply::Null)])]),
                )]),
                b"*2\r\n$5\r\nflags\r\n*1\r\n*2\r\n$1\r\nk\r\n$-1\r\n",
                b"%1\r\n$5\r\nflags\r\n~1\r\n%1\r\n$1\r\nk\r\n_\r\n",
            ),
        ]
    }

    #[test]
    fn encodes_byte_for_byte() {
        for (reply, resp2, resp3) in cases() {
            assert_eq!(enc(&reply, Resp2), resp2, "RESP2 {reply:?}");
            assert_eq!(enc(&reply, Resp3), resp3, "RESP3 {reply:?}");
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = BytesMut::from(&b"+PONG\r\n"[..]);
        Reply::Int(7).encode(Resp2, &mut out);
        Reply::Null.encode(Resp3, &mut out);
        assert_eq!(&out[..], b"+PONG\r\n:7\r\n_\r\n");
    }

    #[test]
    fn resp2_output_is_what_a_resp2_decoder_reads() {
        use redis_protocol::resp2::{decode::decode_bytes_mut, types::BytesFrame as F};
        let reply = Reply::Map(vec![(
            Reply::bulk_str("k"),
            Reply::Set(vec![Reply::Int(1), Reply::Null]),
        )]);
        let mut buf = BytesMut::from(&reply.to_bytes(Resp2)[..]);
        let (frame, _, _) = decode_bytes_mut(&mut buf)
            .expect("valid")
            .expect("complete");
        let want = F::Array(vec![
            F::BulkString(Bytes::from_static(b"k")),
            F::Array(vec![F::Integer(1), F::Null]),
        ]);
        assert_eq!(frame, want);
        assert!(buf.is_empty());
    }

    #[test]
    fn resp3_output_is_what_a_resp3_decoder_reads() {
        use redis_protocol::resp3::decode::complete::decode_bytes_mut;
        let reply = Reply::Map(vec![
            (
                Reply::bulk_str("info"),
                Reply::Verbatim(Bytes::from_static(b"a:1\r\n")),
            ),
            (Reply::bulk_str("s"), Reply::Set(vec![Reply::status("x")])),
            (Reply::bulk_str("n"), Reply::Null),
        ]);
        let mut buf = BytesMut::from(&reply.to_bytes(Resp3)[..]);
        let decoded = decode_bytes_mut(&mut buf)
            .expect("valid")
            .expect("complete");
        assert!(buf.is_empty(), "{decoded:?}");
    }

    #[test]
    fn err_adds_the_code_only_when_missing() {
        let text = |r: Reply| match r {
            Reply::Error(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(Reply::err("ERR syntax error")), "ERR syntax error");
        assert_eq!(text(Reply::err("syntax error")), "ERR syntax error");
        assert_eq!(
            text(Reply::err("Protocol error: x")),
            "ERR Protocol error: x"
        );
        assert_eq!(text(Reply::err("MOVED 1 a:1")), "MOVED 1 a:1");
        assert_eq!(
            text(Reply::err("-NOAUTH Authentication required.")),
            "NOAUTH Authentication required."
        );
        assert_eq!(text(Reply::err("LIB-NAME cannot")), "ERR LIB-NAME cannot");
        assert_eq!(text(Reply::err("")), "ERR ");
    }
}
