//! Redis's serialized form of a value: what DUMP produces and RESTORE takes.
//!
//! A payload is the value in RDB encoding (a type byte, then the string), the RDB version
//! as two little-endian bytes, and a CRC-64/Redis of all that, little-endian. DUMP writes
//! what redis-server 7.0 writes, so redis-server can RESTORE it: integers of up to 11
//! characters as RDB integers, strings over 20 bytes LZF-compressed when that saves at
//! least 4 bytes. The LZF encoder is not liblzf's own, so a compressed payload may differ
//! from Redis's bytes while holding the same value.

use bytes::Bytes;
use crc::{Crc, CRC_64_REDIS};

use crate::cmd::args::string2ll;
use crate::cmd::MAX_STRING;

/// The RDB version DUMP writes: Redis 7.0's, so that every Redis from 7.0 on takes it.
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version RESTORE takes. Redis 7.0 refuses payloads above its own 10; a
/// string is serialized the same way up to version 12 (Redis 7.4 and 8), so redraft takes
/// those too, for moving data out of newer Redis servers.
pub const RDB_VERSION_MAX: u16 = 12;

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

const TYPE_STRING: u8 = 0;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;
/// Most bytes one LZF token can expand into per byte of input (a 3-byte back reference
/// copies at most 264): a longer claimed length is corrupt, checked before allocating it.
const LZF_MAX_RATIO: usize = 88;

/// Why a payload cannot be restored, each answered with its Redis error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a newer RDB version, or a wrong checksum.
    VersionOrChecksum,
    /// Not a serialized string as RDB writes one.
    BadFormat,
    /// A well-formed value of a type redraft does not store.
    Unsupported(&'static str),
}

/// The DUMP payload of a string value.
pub fn dump(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 20);
    out.push(TYPE_STRING);
    put_string(&mut out, value);
    with_footer(&out)
}

/// `body` with the footer DUMP writes (the RDB version and the checksum), as a payload
/// whose value RESTORE will then parse: for tests and fuzzing.
pub fn with_footer(body: &[u8]) -> Vec<u8> {
    with_footer_of(body, RDB_VERSION)
}

fn with_footer_of(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = CRC64.checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// The string a DUMP payload holds, checked as Redis 7.0's RESTORE checks it (version and
/// checksum first, then the encoding).
pub fn restore(payload: &[u8]) -> Result<Bytes, PayloadError> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(PayloadError::VersionOrChecksum);
    };
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if version > RDB_VERSION_MAX || CRC64.checksum(&payload[..body_len + 2]) != crc {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut r = Reader(body);
    match r.byte()? {
        TYPE_STRING => r.string(),
        t => Err(type_name(t).map_or(PayloadError::BadFormat, PayloadError::Unsupported)),
    }
}

/// The type of each RDB object type number (through Redis 8's), for the error that names
/// what the payload holds.
fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        1 | 10 | 14 | 18 => "list",
        2 | 11 | 20 => "set",
        3 | 5 | 12 | 17 => "zset",
        4 | 9 | 13 | 16 | 22 | 24 | 25 => "hash",
        6 | 7 => "module",
        15 | 19 | 21 => "stream",
        _ => return None,
    })
}

/// `rdbSaveRawString`: an integer's short form, LZF, or the bytes with their length.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = string2ll(s).and_then(|v| i32::try_from(v).ok()) {
            if let Ok(v) = i8::try_from(v) {
                out.extend_from_slice(&[0xC0 | ENC_INT8, v as u8]);
            } else if let Ok(v) = i16::try_from(v) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&v.to_le_bytes());
            }
            return;
        }
    }
    if s.len() > 20 {
        // Redis keeps the compressed form only if it fits in four bytes less.
        let mut packed = vec![0u8; s.len() - 4];
        if let Ok(n) = lzf_rust::compress(s, &mut packed) {
            out.push(0xC0 | ENC_LZF);
            put_len(out, n as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&packed[..n]);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `rdbSaveLen`: 6, 14, 32 or 64 bits.
fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(l) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A length or, for a string, its special encoding (`rdbLoadLenByRef`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], PayloadError> {
        let n = usize::try_from(n).map_err(|_| PayloadError::BadFormat)?;
        if n > self.0.len() {
            return Err(PayloadError::BadFormat);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<Len, PayloadError> {
        let b = self.byte()?;
        Ok(match (b >> 6, b) {
            (0, _) => Len::Plain(u64::from(b & 0x3F)),
            (1, _) => Len::Plain(u64::from(b & 0x3F) << 8 | u64::from(self.byte()?)),
            (3, _) => Len::Encoded(b & 0x3F),
            (_, 0x80) => Len::Plain(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))),
            (_, 0x81) => Len::Plain(u64::from_be_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            _ => return Err(PayloadError::BadFormat),
        })
    }

    fn plain_len(&mut self) -> Result<u64, PayloadError> {
        match self.len()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }

    /// `rdbGenericLoadStringObject`.
    fn string(&mut self) -> Result<Bytes, PayloadError> {
        let int = |v: i64| Ok(Bytes::from(v.to_string()));
        match self.len()? {
            Len::Plain(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
            Len::Encoded(ENC_INT8) => int(i64::from(self.byte()? as i8)),
            Len::Encoded(ENC_INT16) => {
                let b = self.take(2)?;
                int(i64::from(i16::from_le_bytes([b[0], b[1]])))
            }
            Len::Encoded(ENC_INT32) => int(i64::from(i32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))),
            Len::Encoded(ENC_LZF) => {
                let packed_len = self.plain_len()?;
                let len = self.plain_len()?;
                let packed = self.take(packed_len)?;
                let len = usize::try_from(len).map_err(|_| PayloadError::BadFormat)?;
                if len > MAX_STRING || len > packed.len().saturating_mul(LZF_MAX_RATIO) {
                    return Err(PayloadError::BadFormat);
                }
                lzf_rust::decompress_into_vec(packed, len)
                    .map(Bytes::from)
                    .map_err(|_| PayloadError::BadFormat)
            }
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads redis-server 7.0.15 gave for DUMP.
    #[test]
    fn redis_payloads() {
        let bar = b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17";
        assert_eq!(dump(b"bar"), bar);
        assert_eq!(restore(bar).unwrap(), "bar");
        let n = b"\x00\xc0\x7b\x0a\x00\x48\xe2\x53\xe1\x00\x7a\x67\xb9";
        assert_eq!(dump(b"123"), n);
        assert_eq!(restore(n).unwrap(), "123");
        // "ab" * 30, compressed by liblzf.
        let lzf =
            b"\x00\xc3\x0a\x3c\x02aba\xe0\x2e\x01\x01ab\x0a\x00\xbb\x16\xd3\xeb\xae\x6f\xc5\x74";
        assert_eq!(restore(lzf).unwrap(), "ab".repeat(30));
    }

    /// A small deterministic generator for test data.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn round_trips() {
        let long = "x".repeat(20_000);
        let mut rnd = xorshift(0x9E37_79B9_7F4A_7C15);
        let random: Vec<u8> = (0..5000).map(|_| rnd() as u8).collect();
        let cases: Vec<&[u8]> = vec![
            b"",
            b"0",
            b"-1",
            b"127",
            b"128",
            b"-128",
            b"-129",
            b"32767",
            b"-32768",
            b"32768",
            b"2147483647",
            b"-2147483648",
            b"2147483648",
            b"-2147483649",
            b"12345678901",
            b"007",
            b"-0",
            b"+1",
            b"1 ",
            b"\x00\xff",
            long.as_bytes(),
            &random,
            b"abcdefghijklmnopqrstuvwxyz",
            b"aaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        for v in cases {
            let p = dump(v);
            assert_eq!(restore(&p).unwrap(), v, "{v:?}");
        }
        // Integers of up to 11 characters in i32 take their short forms.
        assert_eq!(dump(b"-129")[1..4], [0xC1, 0x7F, 0xFF]);
        assert_eq!(dump(b"2147483647")[1], 0xC2);
        assert_eq!(dump(b"2147483648")[1], 10);
        assert_eq!(dump(b"007")[1], 3);
        // Compressed only when over 20 bytes and at least 4 bytes smaller.
        assert_eq!(dump(long.as_bytes())[1], 0xC3);
        assert_eq!(dump(b"aaaaaaaaaaaaaaaaaaaa")[1], 20);
        assert_eq!(dump(&random)[1..3], [0x53, 0x88]); // 5000, 14 bits, as is
    }

    #[test]
    fn lengths() {
        for (len, head) in [
            (63u64, vec![63u8]),
            (64, vec![0x40, 64]),
            (16383, vec![0x7F, 0xFF]),
            (16384, vec![0x80, 0, 0, 0x40, 0]),
            (1 << 32, vec![0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = vec![];
            put_len(&mut out, len);
            assert_eq!(out, head);
            let mut r = Reader(&out);
            assert!(matches!(r.len(), Ok(Len::Plain(l)) if l == len));
        }
    }

    /// Valid payloads with bytes changed, dropped and added, re-checksummed so that the
    /// parser sees them: each is a string or an error, never a panic, and never a string
    /// longer than LZF can expand its input to.
    #[test]
    fn mutated_payloads_never_panic() {
        let mut rnd = xorshift(0x2545_F491_4F6C_DD1D);
        let seeds: Vec<Vec<u8>> = [
            &b"hello"[..],
            b"12345",
            b"-129",
            &b"ab".repeat(200),
            &b"x".repeat(70_000),
        ]
        .iter()
        .map(|v| dump(v))
        .collect();
        for i in 0..20_000 {
            let seed = &seeds[i % seeds.len()];
            let mut body = seed[..seed.len() - 10].to_vec();
            for _ in 0..1 + rnd() % 4 {
                let at = (rnd() as usize) % (body.len() + 1);
                match rnd() % 3 {
                    0 if at < body.len() => body[at] = rnd() as u8,
                    1 if at < body.len() => {
                        body.remove(at);
                    }
                    _ => body.insert(at, rnd() as u8),
                }
            }
            if let Ok(v) = restore(&with_footer(&body)) {
                assert!(v.len() <= body.len() * LZF_MAX_RATIO + 64, "{}", v.len());
            }
        }
    }

    #[test]
    fn bad_payloads() {
        use PayloadError::*;
        let good = dump(b"hello");
        assert_eq!(restore(&good[..9]), Err(VersionOrChecksum));
        let mut flipped = good.clone();
        flipped[2] ^= 1;
        assert_eq!(restore(&flipped), Err(VersionOrChecksum));
        assert_eq!(
            restore(&with_footer_of(b"\x00\x05hello", 13)),
            Err(VersionOrChecksum)
        );
        assert_eq!(
            restore(&with_footer_of(b"\x00\x05hello", 12)).unwrap(),
            "hello"
        );
        for body in [
            &b""[..],
            b"\x00",
            b"\x00\x06hello",
            b"\x00\xc4",
            b"\x00\xc1\x01",
            b"\x00\x82\x00",
            b"\x00\x81\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x08\x05hello",
            b"\xff",
            // LZF: truncated, a length the data does not make, a huge claimed length.
            b"\x00\xc3\x02\x05\x01a",
            b"\x00\xc3\x02\x05\x01ab",
            b"\x00\xc3\x03\x3f\xff\xff\xff\x02ab\xe0\xff\x01",
        ] {
            assert_eq!(
                restore(&with_footer_of(body, 10)),
                Err(BadFormat),
                "{body:?}"
            );
        }
        assert_eq!(
            restore(&with_footer_of(b"\x04\x00", 10)),
            Err(Unsupported("hash"))
        );
        assert_eq!(
            restore(&with_footer_of(b"\x0e\x00", 10)),
            Err(Unsupported("list"))
        );
        // Trailing bytes after the value are ignored, as Redis ignores them.
        assert_eq!(
            restore(&with_footer_of(b"\x00\x02hixyz", 10)).unwrap(),
            "hi"
        );
    }
}
