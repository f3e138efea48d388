//! Bitmaps: bit-level commands on string values (Redis's bitops.c). Bits are numbered from
//! the most significant bit of the first byte, so bit 0 is `0x80` of byte 0.

pub mod bitcount;
pub mod bitfield;
pub mod bitop;
pub mod bitpos;
pub mod getbit;
pub mod setbit;

use bytes::{Bytes, BytesMut};

use crate::cmd::{get_string, MAX_STRING};
use crate::db::DbWrite;
use redraft_proxy::wire::request::string2ll;
use redraft_proxy::wire::Reply;

/// A bit offset argument, as Redis's getBitOffsetFromArgument: an integer in
/// 0..proto-max-bulk-len×8, or, for BITFIELD (`bits` given), `#n` for the n-th field of
/// that width.
pub(crate) fn parse_offset(arg: &[u8], bits: Option<u64>) -> Result<u64, Reply> {
    let err = || Reply::err("ERR bit offset is not an integer or out of range");
    let (by_field, digits) = match (bits, arg.first()) {
        (Some(_), Some(b'#')) => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut offset = string2ll(digits).ok_or_else(err)?;
    if by_field {
        offset = offset.wrapping_mul(bits.unwrap_or(1) as i64);
    }
    if offset < 0 || (offset as u64 >> 3) >= MAX_STRING as u64 {
        return Err(err());
    }
    Ok(offset as u64)
}

/// Bit `offset` of `b`, 0 past its end.
pub(crate) fn bit_at(b: &[u8], offset: u64) -> bool {
    b.get((offset >> 3) as usize)
        .is_some_and(|byte| byte & (0x80 >> (offset & 7)) != 0)
}

/// The string at `key` made long enough to hold bit `max_bit`, zero-padded, for a command
/// that writes bits (Redis's lookupStringForBitCommand): a missing key is created. Also
/// its expiry, and whether it was created or grew.
pub(crate) fn string_for_bits(
    db: &mut dyn DbWrite,
    key: &[u8],
    max_bit: u64,
    now_ms: u64,
) -> Result<(BytesMut, Option<u64>, bool), Reply> {
    let len = (max_bit >> 3) as usize + 1;
    let (old, ttl, created) = match get_string(db, key, now_ms)? {
        Some((b, ttl)) => (b, ttl, false),
        None => (Bytes::new(), None, true),
    };
    let mut b = BytesMut::with_capacity(old.len().max(len));
    b.extend_from_slice(&old);
    let grew = b.len() < len;
    if grew {
        b.resize(len, 0);
    }
    Ok((b, ttl, grew || created))
}

/// A range argument pair of BITCOUNT and BITPOS in bytes or (`BIT`) in bits, resolved as
/// Redis does against a string of `len` bytes: the first and last bit, or None when empty.
pub(crate) fn bit_range(len: usize, start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits {
        (len as i64) << 3
    } else {
        len as i64
    };
    let fix = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let start = fix(start);
    let end = fix(end).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start << 3, (end << 3) | 7)
    })
}

/// `BYTE` or `BIT`, case-insensitively: whether the range is in bits.
pub(crate) fn parse_unit(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(Reply::syntax_error())
    }
}
