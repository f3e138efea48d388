//! Reading replies back into [`Reply`]: what the proxy does with a backend's answers.
//!
//! Not redis-protocol's decoder: its RESP3 maps are hash maps, and a map reply (HELLO,
//! CONFIG GET, CLUSTER QUERY) must reach the client in the order the node sent it. This
//! reads exactly the types [`Reply::encode`] writes, RESP2 and RESP3 alike, so a reply
//! decoded and re-encoded in the same protocol is byte for byte what the node sent.
//! Bulk payloads are zero-copy slices of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

use super::Reply;

/// Nesting deeper than this is refused (a node never sends more than a few levels).
const MAX_DEPTH: usize = 64;
/// Largest bulk accepted from a backend: a 512 MiB value plus room.
const MAX_BULK: usize = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply: {0}")]
pub struct DecodeError(pub &'static str);

/// Takes one whole reply off the front of `buf`, or None (and `buf` untouched) when it is
/// not complete yet.
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<Reply>, DecodeError> {
    let Some(len) = scan(buf, 0, 0)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(len).freeze();
    // scan bounded the depth already.
    Ok(Some(parse(&mut frame)?))
}

/// The line at `at` (without CRLF) and the position after it.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let body = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
    Some((body, at + nl + 1))
}

fn int(b: &[u8]) -> Result<i64, DecodeError> {
    super::request::string2ll(b).ok_or(DecodeError("bad integer"))
}

/// Checks that a whole reply starts at `at`; returns where it ends.
fn scan(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError("nested too deep"));
    }
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(next)),
        b'$' | b'=' | b'!' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some(next));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err(DecodeError("bulk too long"));
            }
            let end = next + n + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' | b'%' | b'~' | b'>' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some(next));
            }
            let items = if tag == b'%' { n * 2 } else { n };
            let mut pos = next;
            for _ in 0..items {
                match scan(buf, pos, depth + 1)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        _ => Err(DecodeError("unknown type byte")),
    }
}

/// Reads one reply already known to be complete (and not too deep).
fn parse(b: &mut Bytes) -> Result<Reply, DecodeError> {
    let tag = b[0];
    let (text, next) = match line(b, 1) {
        Some((t, n)) => (b.slice(1..1 + t.len()), n),
        None => return Err(DecodeError("truncated")),
    };
    b.advance(next);
    let s = || String::from_utf8_lossy(&text).into_owned();
    Ok(match tag {
        // Most replies to writes: no allocation for them.
        b'+' if &text[..] == b"OK" => Reply::ok(),
        b'+' => Reply::Status(s().into()),
        b'-' => Reply::Error(s()),
        b':' => Reply::Int(int(&text)?),
        b'_' => Reply::Null,
        // Types the node never sends, kept as their text.
        b',' | b'(' => Reply::Bulk(text),
        b'#' => Reply::Int(i64::from(&text[..] == b"t")),
        b'$' | b'=' | b'!' => {
            let n = int(&text)?;
            if n < 0 {
                return Ok(Reply::Null);
            }
            let data = b.split_to(n as usize);
            b.advance(2);
            match tag {
                b'=' => Reply::Verbatim(data.slice(4.min(data.len())..)),
                b'!' => Reply::Error(String::from_utf8_lossy(&data).into_owned()),
                _ => Reply::Bulk(data),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = int(&text)?;
            if n < 0 {
                return Ok(Reply::NullArray);
            }
            let items = (0..n).map(|_| parse(b)).collect::<Result<Vec<_>, _>>()?;
            if tag == b'~' {
                Reply::Set(items)
            } else {
                Reply::Array(items)
            }
        }
        b'%' => {
            let n = int(&text)?;
            let mut pairs = Vec::with_capacity(n.clamp(0, 1024) as usize);
            for _ in 0..n {
                let k = parse(b)?;
                let v = parse(b)?;
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        _ => return Err(DecodeError("unknown type byte")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Protocol;

    fn samples() -> Vec<Reply> {
        vec![
            Reply::ok(),
            Reply::err("MOVED 12 127.0.0.1:7001"),
            Reply::Int(-42),
            Reply::bulk(&b"a\r\nb\0"[..]),
            Reply::bulk(&b""[..]),
            Reply::Null,
            Reply::Array(vec![]),
            Reply::Array(vec![Reply::Int(1), Reply::Null, Reply::bulk_str("x")]),
            Reply::Map(vec![
                (Reply::bulk_str("z"), Reply::Int(1)),
                (Reply::bulk_str("a"), Reply::Array(vec![Reply::ok()])),
            ]),
            Reply::Set(vec![Reply::bulk_str("m")]),
            Reply::Verbatim(Bytes::from_static(b"# Server\r\nx:1\r\n")),
        ]
    }

    #[test]
    fn round_trips_byte_for_byte() {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            for r in samples() {
                let bytes = r.to_bytes(proto);
                let mut buf = BytesMut::from(&bytes[..]);
                let back = decode_reply(&mut buf).unwrap().unwrap();
                assert!(buf.is_empty());
                assert_eq!(back.to_bytes(proto), bytes, "{r:?} in {proto:?}");
            }
        }
    }

    #[test]
    fn every_split_point_waits_for_more() {
        let mut all = BytesMut::new();
        for r in samples() {
            r.encode(Protocol::Resp3, &mut all);
        }
        for cut in 0..all.len() {
            let mut buf = BytesMut::from(&all[..cut]);
            let mut n = 0;
            while let Some(_r) = decode_reply(&mut buf).unwrap() {
                n += 1;
            }
            buf.extend_from_slice(&all[cut..]);
            while let Some(_r) = decode_reply(&mut buf).unwrap() {
                n += 1;
            }
            assert_eq!(n, samples().len(), "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"*1\r\n?\r\n",
            b"$2000000000\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(decode_reply(&mut buf).is_err(), "{bad:?}");
        }
        let mut deep = BytesMut::new();
        for _ in 0..100 {
            deep.extend_from_slice(b"*1\r\n");
        }
        deep.extend_from_slice(b":1\r\n");
        assert!(decode_reply(&mut deep).is_err());
    }
}
