//! Reading client requests the way Redis's networking.c does: RESP multibulk when the first
//! byte is `*`, otherwise an inline command line, with Redis's limits and error texts.
//!
//! The parser is incremental: bytes of a multibulk request are taken out of the buffer as soon
//! as each part is complete, and the parser remembers where it stopped, so a large request that
//! arrives in many reads is scanned once. Arguments are `Bytes` slices of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

/// Request-size limits (Redis's defaults in [`Limits::default`]).
#[derive(Clone, Debug)]
pub struct Limits {
    /// proto-max-bulk-len: 512 MiB.
    pub max_bulk_len: usize,
    /// Largest multibulk count accepted (Redis 7.0: i32::MAX; 1M before 7.0).
    pub max_multibulk_len: usize,
    /// Longest inline line / count line without a newline: 64 KiB.
    pub max_inline_len: usize,
}

impl Default for Limits {
    /// Redis 7.0.15's values. A huge declared count costs nothing up front: the argument
    /// vector starts at most 1024 long and grows only as arguments actually arrive.
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request. `Display` gives the text after `ERR Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    Msg(String),
}

impl ProtocolError {
    fn new(msg: &str) -> Self {
        ProtocolError::Msg(msg.to_owned())
    }
}

/// Bulks at least this long get their whole payload reserved up front, so the socket reads
/// land in one allocation instead of growing the buffer repeatedly (PROTO_MBULK_BIG_ARG).
const BIG_ARG: usize = 32 * 1024;
/// Most reserved up front for one bulk: a client that declares 512 MiB and sends nothing
/// must not cost 512 MiB (Redis reserves it all; we let the rest grow as bytes arrive).
const MAX_RESERVE: usize = 16 * 1024 * 1024;
/// The argument vector is preallocated up to this many slots, whatever the declared count.
const ARGV_PREALLOC: usize = 1024;
/// Limits while the client still has to authenticate (networking.c).
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

/// A multibulk request whose count line has been consumed but not all of its arguments.
#[derive(Debug)]
struct Multibulk {
    /// Arguments still to read.
    remaining: usize,
    args: Vec<Bytes>,
    /// The current argument's length once its `$<len>` line has been consumed.
    bulk_len: Option<usize>,
    /// Bytes held in `args` (plus a little per argument for the `Bytes` itself).
    held: usize,
}

/// Incremental request parser for one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: Limits,
    /// Applies Redis's tighter unauthenticated limits (see [`RequestParser::set_auth_required`]).
    auth_required: bool,
    pending: Option<Multibulk>,
    /// How many bytes at the front of the buffer were already searched for the end of the
    /// current line, so a line that arrives slowly is not searched from the start every time.
    scanned: usize,
}

impl RequestParser {
    /// Bytes of a partly received request that the parser has taken out of the buffer
    /// already (its complete arguments): the caller counts them against its query-buffer
    /// limit, or a request of many huge arguments could grow without bound.
    pub fn pending_bytes(&self) -> usize {
        self.pending.as_ref().map_or(0, |mb| mb.held)
    }

    /// A parser for a new connection, starting between requests.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            ..RequestParser::default()
        }
    }

    /// While `true`, a multibulk count over 10 or a bulk over 16384 bytes is a protocol error
    /// (`unauthenticated multibulk length` / `unauthenticated bulk length`), so an
    /// unauthenticated client cannot make the server buffer much. Set it while the
    /// connection still needs AUTH.
    pub fn set_auth_required(&mut self, required: bool) {
        self.auth_required = required;
    }

    /// Takes the next complete request out of `buf`: `Ok(None)` when more bytes are needed.
    /// Empty requests (`*0`, blank inline lines) are skipped without a reply.
    ///
    /// Between calls the caller may only append to `buf`: on `Ok(None)` the parser may already
    /// have taken the complete parts of a multibulk request out of it and keeps them itself.
    /// After an error the connection must be closed; the parser's state is then meaningless.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.scanned > buf.len() {
            // The caller broke the append-only contract; searching again is always correct.
            self.scanned = 0;
        }
        loop {
            if self.pending.is_none() {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {
                        if !self.count_line(buf)? {
                            return Ok(None);
                        }
                        if self.pending.is_none() {
                            continue; // `*0` or a negative count: nothing to run.
                        }
                    }
                    Some(_) => match self.inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    },
                }
            }
            return self.bulks(buf);
        }
    }

    /// Consumes a `*<n>\r\n` line, starting a pending request when n > 0. `Ok(false)` means the
    /// line is incomplete.
    fn count_line(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let Some(cr) = find_line_end(buf, &mut self.scanned, b'\r') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::new("too big mbulk count string"));
            }
            return Ok(false);
        };
        // Redis wants the byte after `\r` buffered too, but never looks at it.
        if cr + 2 > buf.len() {
            return Ok(false);
        }
        let n = match string2ll(&buf[1..cr]) {
            Some(n) if n <= 0 || n as u64 <= self.limits.max_multibulk_len as u64 => n,
            _ => return Err(ProtocolError::new("invalid multibulk length")),
        };
        if self.auth_required && n > UNAUTH_MAX_MULTIBULK {
            return Err(ProtocolError::new("unauthenticated multibulk length"));
        }
        buf.advance(cr + 2);
        self.scanned = 0;
        if n > 0 {
            // n fits: it is at most max_multibulk_len, a usize.
            let n = n as usize;
            self.pending = Some(Multibulk {
                remaining: n,
                args: Vec::with_capacity(n.min(ARGV_PREALLOC)),
                bulk_len: None,
                held: 0,
            });
        }
        Ok(true)
    }

    /// Reads as many `$<len>\r\n<payload>\r\n` arguments of the pending request as `buf` holds.
    fn bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(mb) = self.pending.as_mut() else {
            return Ok(None);
        };
        while mb.remaining > 0 {
            let len = match mb.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = find_line_end(buf, &mut self.scanned, b'\r') else {
                        if buf.len() > self.limits.max_inline_len {
                            return Err(ProtocolError::new("too big bulk count string"));
                        }
                        return Ok(None);
                    };
                    if cr + 2 > buf.len() {
                        return Ok(None);
                    }
                    if buf[0] != b'$' {
                        return Err(expected_dollar(buf[0]));
                    }
                    let len = match string2ll(&buf[1..cr]) {
                        Some(len) if len >= 0 && len as u64 <= self.limits.max_bulk_len as u64 => {
                            len
                        }
                        _ => return Err(ProtocolError::new("invalid bulk length")),
                    };
                    if self.auth_required && len > UNAUTH_MAX_BULK {
                        return Err(ProtocolError::new("unauthenticated bulk length"));
                    }
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    // len fits: it is at most max_bulk_len, a usize.
                    let len = len as usize;
                    if len >= BIG_ARG {
                        let missing = (len + 2).min(MAX_RESERVE).saturating_sub(buf.len());
                        if missing > 0 {
                            buf.reserve(missing);
                        }
                    }
                    mb.bulk_len = Some(len);
                    len
                }
            };
            // The 2 bytes after the payload are skipped unchecked, as Redis does.
            if buf.len() < len.saturating_add(2) {
                return Ok(None);
            }
            mb.held += len + 32;
            mb.args.push(buf.split_to(len).freeze());
            buf.advance(2);
            mb.bulk_len = None;
            mb.remaining -= 1;
        }
        Ok(self.pending.take().map(|mb| mb.args))
    }

    /// Takes one inline line out of `buf` and splits it; `Ok(None)` when the line is incomplete.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(nl) = find_line_end(buf, &mut self.scanned, b'\n') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        self.scanned = 0;
        let mut line = buf.split_to(nl + 1).freeze();
        let end = if nl > 0 && line[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        line.truncate(end);
        split_args(&line).map(Some)
    }
}

/// The offset of the first `byte` in `buf`, resuming after the `*scanned` bytes already
/// searched by earlier calls. Like Redis's strchr, the search is not limited to the current
/// line's maximum length: what decides the error is whether a terminator exists at all.
fn find_line_end(buf: &[u8], scanned: &mut usize, byte: u8) -> Option<usize> {
    let from = (*scanned).min(buf.len());
    match memchr::memchr(byte, &buf[from..]) {
        Some(i) => {
            *scanned = from + i;
            Some(from + i)
        }
        None => {
            *scanned = buf.len();
            None
        }
    }
}

/// `expected '$', got '<c>'`, with CR/LF shown as spaces as Redis's addReplyErrorFormat does.
/// A byte ≥ 0x80 is shown as the character U+0080..U+00FF, since the message is text.
fn expected_dollar(c: u8) -> ProtocolError {
    let c = if c == b'\r' || c == b'\n' {
        ' '
    } else {
        char::from(c)
    };
    ProtocolError::Msg(format!("expected '$', got '{c}'"))
}

/// A SCAN cursor: a base-10 u64. Redis's strtoul also takes `""`, `+5` and wraps `-1`;
/// those quirks are not copied: anything but plain digits is an invalid cursor.
pub fn scan_cursor(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Redis's strict integer parser (util.c string2ll): an optional `-`, then `0` or
/// `[1-9][0-9]*`, within i64 and under 21 bytes. Rejects `+1`, `01`, `-0`, spaces, `""`.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MIN.unsigned_abs() {
            return None;
        }
        Some(0i64.wrapping_sub_unsigned(v))
    } else {
        i64::try_from(v).ok()
    }
}

/// isspace() in the C locale: what sdssplitargs skips between tokens.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// What ends an unquoted token in sdssplitargs: note `\v` and `\f` do not, although they
/// are skipped between tokens.
fn ends_bare_token(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn unbalanced() -> ProtocolError {
    ProtocolError::new("unbalanced quotes in request")
}

/// Splits an inline line like sds.c sdssplitargs. Plain tokens are slices of `line`; only
/// tokens with quotes are copied, because their escapes change the bytes.
fn split_args(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let s: &[u8] = line;
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i == s.len() {
            return Ok(args);
        }
        let start = i;
        while i < s.len() && !ends_bare_token(s[i]) && s[i] != b'"' && s[i] != b'\'' {
            i += 1;
        }
        if i == s.len() || ends_bare_token(s[i]) {
            args.push(line.slice(start..i));
            continue;
        }
        let mut token = s[start..i].to_vec();
        i = quoted_token(s, i, &mut token)?;
        args.push(Bytes::from(token));
    }
}

/// Continues a token at `s[i]`, an opening quote, appending its bytes to `token`; returns
/// the index just past the token. A quote opened mid-token still counts (`foo"bar baz"` is
/// `foobar baz`), and the closing quote must end the token.
fn quoted_token(s: &[u8], mut i: usize, token: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    let closing = if s[i] == b'"' { b'"' } else { b'\'' };
    i += 1;
    loop {
        let Some(&c) = s.get(i) else {
            return Err(unbalanced());
        };
        if c == closing {
            return match s.get(i + 1) {
                Some(&next) if !is_space(next) => Err(unbalanced()),
                _ => Ok(i + 1),
            };
        }
        if closing == b'"' && c == b'\\' {
            if let Some(byte) = hex_escape(s, i) {
                token.push(byte);
                i += 4;
                continue;
            }
            if let Some(&e) = s.get(i + 1) {
                token.push(match e {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
                continue;
            }
        } else if closing == b'\'' && c == b'\\' && s.get(i + 1) == Some(&b'\'') {
            token.push(b'\'');
            i += 2;
            continue;
        }
        token.push(c);
        i += 1;
    }
}

/// The byte of a `\xHH` escape starting at `s[i]`, if it is one.
fn hex_escape(s: &[u8], i: usize) -> Option<u8> {
    if s.get(i + 1) != Some(&b'x') {
        return None;
    }
    let hi = hex_digit(*s.get(i + 2)?)?;
    let lo = hex_digit(*s.get(i + 3)?)?;
    Some(hi * 16 + lo)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `parse` yields for `input` fed in one piece: the requests, then the error
    /// (if any), then the bytes left in the buffer.
    fn parse_whole(
        p: &mut RequestParser,
        input: &[u8],
    ) -> (Vec<Vec<Bytes>>, Option<String>, usize) {
        let mut buf = BytesMut::from(input);
        let mut reqs = Vec::new();
        loop {
            match p.parse(&mut buf) {
                Ok(Some(r)) => reqs.push(r),
                Ok(None) => return (reqs, None, buf.len()),
                Err(e) => return (reqs, Some(e.to_string()), buf.len()),
            }
        }
    }

    /// The same, but fed in `chunk`-byte reads, parsing after each read as a connection would.
    fn parse_chunked(
        p: &mut RequestParser,
        input: &[u8],
        chunk: usize,
    ) -> (Vec<Vec<Bytes>>, Option<String>) {
        let mut buf = BytesMut::new();
        let mut reqs = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match p.parse(&mut buf) {
                    Ok(Some(r)) => reqs.push(r),
                    Ok(None) => break,
                    Err(e) => return (reqs, Some(e.to_string())),
                }
            }
        }
        (reqs, None)
    }

    fn owned(reqs: &[Vec<Bytes>]) -> Vec<Vec<Vec<u8>>> {
        reqs.iter()
            .map(|r| r.iter().map(|a| a.to_vec()).collect())
            .collect()
    }

    type Case = (
        &'static [u8],
        &'static [&'static [&'static [u8]]],
        Option<&'static str>,
    );

    const PING: &[&[u8]] = &[b"PING"];

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // Multibulk basics.
        (b"*1\r\n$4\r\nPING\r\n", &[PING], None),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &[&[b"GET", b"k"]], None),
        (b"*1\r\n$0\r\n\r\n", &[&[b""]], None),
        (b"*3\r\n$1\r\n\0\r\n$2\r\n\xff\r\r\n$4\r\n\r\n\r\n\r\n", &[&[b"\0", b"\xff\r", b"\r\n\r\n"]], None),
        // The 2 bytes after a payload, and after `\r` on a line, are not checked.
        (b"*1\r\n$4\r\nPINGxx", &[PING], None),
        (b"*1\rX$4\rYPING\r\n", &[PING], None),
        // Counts <= 0 are skipped silently.
        (b"*0\r\n*1\r\n$4\r\nPING\r\n", &[PING], None),
        (b"*-1\r\n*-9223372036854775808\r\n*1\r\n$4\r\nPING\r\n", &[PING], None),
        // Incomplete input waits.
        (b"*1", &[], None),
        (b"*1\r", &[], None),
        (b"*1\r\n$4\r\nPI", &[], None),
        (b"*1\r\n$4\r\nPING\r", &[], None),
        (b"*2147483647\r\n", &[], None),
        (b"*1\r\n$536870912\r\n", &[], None),
        // Bad counts.
        (b"*abc\r\n", &[], Some("invalid multibulk length")),
        (b"*+1\r\n", &[], Some("invalid multibulk length")),
        (b"*01\r\n", &[], Some("invalid multibulk length")),
        (b"*-0\r\n", &[], Some("invalid multibulk length")),
        (b"*1 \r\n", &[], Some("invalid multibulk length")),
        (b"* 1\r\n", &[], Some("invalid multibulk length")),
        (b"*\r\n", &[], Some("invalid multibulk length")),
        (b"*-\r\n", &[], Some("invalid multibulk length")),
        (b"*1.0\r\n", &[], Some("invalid multibulk length")),
        (b"*2147483648\r\n", &[], Some("invalid multibulk length")),
        (b"*99999999999999999999\r\n", &[], Some("invalid multibulk length")),
        (b"*9223372036854775808\r\n", &[], Some("invalid multibulk length")),
        // The count line runs to the first `\r`, wherever it is (Redis's strchr).
        (b"*1\n$4\r\nPING\r\n", &[], Some("invalid multibulk length")),
        // Argument headers.
        (b"*1\r\nfoo\r\n", &[], Some("expected '$', got 'f'")),
        (b"*1\r\n\r\n", &[], Some("expected '$', got ' '")),
        (b"*2\r\n$1\r\na\r\n:1\r\n", &[], Some("expected '$', got ':'")),
        (b"*1\r\n\xff\r\n", &[], Some("expected '$', got '\u{ff}'")),
        (b"*1\r\nfoo", &[], None),
        (b"*1\r\n$abc\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$04\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$+4\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$4 \r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$-1\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$-9223372036854775808\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$536870913\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$99999999999999999999\r\n", &[], Some("invalid bulk length")),
        (b"*1\r\n$4\nPING\r\n", &[], Some("invalid bulk length")),
        // An error comes after the requests before it, which still run.
        (b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n", &[PING], Some("invalid bulk length")),
        // Inline.
        (b"PING\r\n", &[PING], None),
        (b"PING\n", &[PING], None),
        (b"PING", &[], None),
        (b"PING\r", &[], None),
        (b"\r\n\n   \t\x0b\x0c\r\nPING\r\n", &[PING], None),
        (b"GET k\r\r\n", &[&[b"GET", b"k"]], None),
        (b"  set   a\tb  \n", &[&[b"set", b"a", b"b"]], None),
        (b"a\rb\n", &[&[b"a", b"b"]], None),
        (b"a\x0bb\x0c c\n", &[&[b"a\x0bb\x0c", b"c"]], None),
        (b"SET k \0\xff\n", &[&[b"SET", b"k", b"\0\xff"]], None),
        (b"PING\r\nPING\nPING\r\n", &[PING, PING, PING], None),
        (b"$4\r\n", &[&[b"$4"]], None),
        // sdssplitargs quoting.
        (b"set \"a b\" \"c\\x41\\n\"\r\n", &[&[b"set", b"a b", b"cA\n"]], None),
        (b"foo\"bar baz\"\n", &[&[b"foobar baz"]], None),
        (b"foo'bar baz'\n", &[&[b"foobar baz"]], None),
        (b"\"\" '' x\n", &[&[b"", b"", b"x"]], None),
        (b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n", &[&[b"\n\r\t\x08\x07\\\"q"]], None),
        (b"\"\\x00\\xff\\xFf\\xzz\\x4\"\n", &[&[b"\0\xff\xffxzzx4"]], None),
        (b"'it\\'s' 'a\\nb' 'c\\d'\n", &[&[b"it's", b"a\\nb", b"c\\d"]], None),
        // In single quotes `\'` is always an escaped quote, even after another backslash.
        (b"'a\\\\'\n", &[], Some("unbalanced quotes in request")),
        (b"'\"' \"'\"\n", &[&[b"\"", b"'"]], None),
        (b"\"a\"\tb\n", &[&[b"a", b"b"]], None),
        (b"\"a\"\x0bb\n", &[&[b"a", b"b"]], None),
        (b"\"a\"b\n", &[], Some("unbalanced quotes in request")),
        (b"a\"b\"c\n", &[], Some("unbalanced quotes in request")),
        (b"'a'b\n", &[], Some("unbalanced quotes in request")),
        (b"\"abc\n", &[], Some("unbalanced quotes in request")),
        (b"'abc\r\n", &[], Some("unbalanced quotes in request")),
        (b"\"abc\\\"\n", &[], Some("unbalanced quotes in request")),
        (b"\"abc\\\n", &[], Some("unbalanced quotes in request")),
        (b"PING\n\"x\n", &[PING], Some("unbalanced quotes in request")),
        // Mixed pipelines.
        (b"PING\r\n*1\r\n$4\r\nPING\r\n\r\n*0\r\nECHO \"x y\"\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
         &[PING, PING, &[b"ECHO", b"x y"], &[b"ECHO", b""]], None),
    ];

    #[test]
    fn pending_bytes_count_arguments_taken_from_the_buffer() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*3\r\n$5\r\nhello\r\n$3\r\nabc\r\n$10\r\nxy"[..]);
        assert_eq!(p.parse(&mut buf), Ok(None));
        assert!(p.pending_bytes() >= 8, "{}", p.pending_bytes());
        buf.extend_from_slice(b"zzzzzzzz\r\n");
        assert!(p.parse(&mut buf).expect("ok").is_some());
        assert_eq!(p.pending_bytes(), 0);
    }

    #[test]
    fn table() {
        for &(input, want, err) in CASES {
            let got = parse_whole(&mut RequestParser::default(), input);
            let want: Vec<Vec<Vec<u8>>> = want
                .iter()
                .map(|r| r.iter().map(|a| a.to_vec()).collect())
                .collect();
            assert_eq!(
                owned(&got.0),
                want,
                "requests for {:?}",
                input.escape_ascii().to_string()
            );
            assert_eq!(
                got.1.as_deref(),
                err,
                "error for {:?}",
                input.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn every_split_gives_the_same_result() {
        for &(input, _, _) in CASES {
            let whole = parse_whole(&mut RequestParser::default(), input);
            let whole = (owned(&whole.0), whole.1);
            let bytewise = parse_chunked(&mut RequestParser::default(), input, 1);
            assert_eq!(
                (owned(&bytewise.0), bytewise.1),
                whole,
                "byte by byte: {:?}",
                input.escape_ascii().to_string()
            );
            for at in 0..=input.len() {
                let mut p = RequestParser::default();
                let mut buf = BytesMut::from(&input[..at]);
                let mut reqs = Vec::new();
                let mut err = None;
                for rest in [&[][..], &input[at..]] {
                    buf.extend_from_slice(rest);
                    loop {
                        match p.parse(&mut buf) {
                            Ok(Some(r)) => reqs.push(r),
                            Ok(None) => break,
                            Err(e) => {
                                err = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    if err.is_some() {
                        break;
                    }
                }
                assert_eq!(
                    (owned(&reqs), err),
                    whole,
                    "split at {at}: {:?}",
                    input.escape_ascii().to_string()
                );
            }
        }
    }

    #[test]
    fn line_limits() {
        let max = Limits::default().max_inline_len;
        assert_eq!(max, 65536);
        let long = |prefix: &[u8], n: usize| [prefix, &vec![b'1'; n - prefix.len()]].concat();
        let cases: [(Vec<u8>, Option<&str>); 6] = [
            (long(b"*", max), None),
            (long(b"*", max + 1), Some("too big mbulk count string")),
            (long(b"*1\r\n$", max + 4), None),
            (long(b"*1\r\n$", max + 5), Some("too big bulk count string")),
            (vec![b'a'; max], None),
            (vec![b'a'; max + 1], Some("too big inline request")),
        ];
        for (input, err) in cases {
            let got = parse_whole(&mut RequestParser::default(), &input);
            assert_eq!(got.1.as_deref(), err, "len {}", input.len());
            let got = parse_chunked(&mut RequestParser::default(), &input, 4096);
            assert_eq!(got.1.as_deref(), err, "chunked, len {}", input.len());
        }
        // A long line is fine once its newline is there; a `\r` beyond the limit still makes
        // the count line end there (and be invalid), as with Redis.
        let mut line = vec![b'a'; max * 2];
        line.push(b'\n');
        let got = parse_whole(&mut RequestParser::default(), &line);
        assert_eq!((got.0.len(), got.1), (1, None));
        let mut count = long(b"*", max + 10);
        count.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_whole(&mut RequestParser::default(), &count)
                .1
                .as_deref(),
            Some("invalid multibulk length")
        );
    }

    #[test]
    fn custom_limits() {
        let limits = Limits {
            max_bulk_len: 3,
            max_multibulk_len: 2,
            max_inline_len: 8,
        };
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"*2\r\n$3\r\nabc\r\n$0\r\n\r\n", None),
            (b"*3\r\n", Some("invalid multibulk length")),
            (b"*1\r\n$4\r\n", Some("invalid bulk length")),
            (b"12345678", None),
            (b"123456789", Some("too big inline request")),
        ];
        for &(input, err) in cases {
            assert_eq!(
                parse_whole(&mut RequestParser::new(limits.clone()), input)
                    .1
                    .as_deref(),
                err
            );
        }
    }

    #[test]
    fn unauthenticated_limits() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"*10\r\n", None),
            (b"*11\r\n", Some("unauthenticated multibulk length")),
            (b"*-100\r\n", None),
            (b"*1\r\n$16384\r\n", None),
            (b"*1\r\n$16385\r\n", Some("unauthenticated bulk length")),
            (b"*1\r\n$-1\r\n", Some("invalid bulk length")),
        ];
        for &(input, err) in cases {
            let mut p = RequestParser::default();
            p.set_auth_required(true);
            assert_eq!(
                parse_whole(&mut p, input).1.as_deref(),
                err,
                "{:?}",
                input.escape_ascii().to_string()
            );
        }
        let mut p = RequestParser::default();
        p.set_auth_required(true);
        p.set_auth_required(false);
        assert_eq!(parse_whole(&mut p, b"*11\r\n$16385\r\n").1, None);
    }

    #[test]
    fn partial_multibulk_is_consumed_not_rescanned() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva"[..]);
        assert_eq!(p.parse(&mut buf), Ok(None));
        // Everything up to the last payload is already out of the buffer.
        assert_eq!(&buf[..], b"va");
        buf.extend_from_slice(b"lue\r\n");
        let req = p.parse(&mut buf).expect("valid").expect("complete");
        assert_eq!(
            owned(&[req]),
            vec![vec![b"SET".to_vec(), b"k".to_vec(), b"value".to_vec()]]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn many_arguments_in_many_reads() {
        let n = 100_000;
        let mut input = format!("*{n}\r\n").into_bytes();
        for i in 0..n {
            let arg = i.to_string();
            input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        let (reqs, err) = parse_chunked(&mut RequestParser::default(), &input, 1000);
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].len(), n);
        assert_eq!(&reqs[0][n - 1][..], (n - 1).to_string().as_bytes());
    }

    #[test]
    fn big_bulk_reserves_its_payload() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1\r\n$100000\r\nab"[..]);
        assert_eq!(p.parse(&mut buf), Ok(None));
        assert!(buf.capacity() >= 100_002, "capacity {}", buf.capacity());
        let start = buf.as_ptr();
        buf.extend_from_slice(&vec![b'x'; 100_000 - 2]);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            buf.as_ptr(),
            start,
            "the payload landed in the reserved allocation"
        );
        let req = p.parse(&mut buf).expect("valid").expect("complete");
        assert_eq!(req[0].len(), 100_000);
        assert_eq!(
            req[0].as_ptr(),
            start,
            "the argument is the buffer itself, not a copy"
        );
    }

    #[test]
    fn arguments_are_slices_of_the_buffer() {
        let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nECHO plain\r\n";
        let mut buf = BytesMut::from(&input[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut p = RequestParser::default();
        let mut args = p.parse(&mut buf).expect("valid").expect("complete");
        args.extend(p.parse(&mut buf).expect("valid").expect("complete"));
        assert_eq!(args.len(), 4);
        for a in &args {
            assert!(range.contains(&(a.as_ptr() as usize)), "{a:?} was copied");
        }
    }

    #[test]
    fn matches_a_reference_resp2_decoder() {
        use redis_protocol::resp2::{decode::decode_bytes_mut, types::BytesFrame};
        // A small deterministic generator: binary arguments of assorted lengths.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut input = Vec::new();
        let mut want = Vec::new();
        for _ in 0..200 {
            let argc = 1 + (next() % 6) as usize;
            let req: Vec<Vec<u8>> = (0..argc)
                .map(|_| {
                    let len = [0, 1, 2, 13, 300, 40_000][(next() % 6) as usize];
                    (0..len).map(|_| next() as u8).collect()
                })
                .collect();
            input.extend_from_slice(format!("*{argc}\r\n").as_bytes());
            for a in &req {
                input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend_from_slice(b"\r\n");
            }
            want.push(req);
        }
        let mut reference = Vec::new();
        let mut buf = BytesMut::from(&input[..]);
        while let Some((frame, _, _)) = decode_bytes_mut(&mut buf).expect("valid RESP") {
            let BytesFrame::Array(items) = frame else {
                panic!("not an array: {frame:?}")
            };
            reference.push(
                items
                    .into_iter()
                    .map(|f| match f {
                        BytesFrame::BulkString(b) => b.to_vec(),
                        other => panic!("{other:?}"),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(reference, want);
        let (ours, err) = parse_chunked(&mut RequestParser::default(), &input, 1500);
        assert_eq!(err, None);
        assert_eq!(owned(&ours), want);
    }

    #[test]
    fn string2ll_is_strict() {
        let ok: &[(&[u8], i64)] = &[
            (b"0", 0),
            (b"1", 1),
            (b"-1", -1),
            (b"10", 10),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ];
        for &(s, v) in ok {
            assert_eq!(string2ll(s), Some(v), "{:?}", s.escape_ascii().to_string());
        }
        let bad: &[&[u8]] = &[
            b"",
            b"-",
            b"+1",
            b"01",
            b"-0",
            b"-01",
            b" 1",
            b"1 ",
            b"1.0",
            b"1e3",
            b"0x1",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"000000000000000000001",
            b"1\0",
        ];
        for &s in bad {
            assert_eq!(string2ll(s), None, "{:?}", s.escape_ascii().to_string());
        }
    }
}
