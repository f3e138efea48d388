//! MONITOR, at the proxy and at the nodes: every command any client sends, as Redis 7.0
//! streams them (`+<unix time> [0 <client addr>] "cmd" "arg" …`), to each client that
//! asked.
//!
//! Lines are formatted only while someone monitors: the cost otherwise is one relaxed load
//! per command. A monitor that falls more than `BACKLOG` lines behind is closed, as Redis
//! closes one over its output buffer limit: silently skipping lines would misreport.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use super::kill::KillSwitch;
use super::table::resolve;
use super::{Protocol, Reply, RequestParser};

/// Lines a monitor may fall behind before it is closed.
const BACKLOG: usize = 16 * 1024;

pub struct Monitors {
    watching: AtomicUsize,
    tx: broadcast::Sender<Bytes>,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            watching: AtomicUsize::new(0),
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

/// A monitor's subscription; it stops counting when dropped.
pub struct Watch<'a> {
    rx: broadcast::Receiver<Bytes>,
    monitors: &'a Monitors,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.monitors.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Monitors {
    /// Whether anyone monitors: the only cost to a command when nobody does.
    pub fn active(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    pub fn watch(&self) -> Watch<'_> {
        self.watching.fetch_add(1, Ordering::Relaxed);
        Watch {
            rx: self.tx.subscribe(),
            monitors: self,
        }
    }

    /// Streams the command `argv` of the client at `addr`, unless Redis would not: unknown
    /// or malformed commands, admin commands (MONITOR and CONFIG among them), and
    /// passwords, which are redacted.
    pub fn feed(&self, addr: &str, argv: &[Bytes]) {
        let Ok(spec) = resolve(argv) else {
            return;
        };
        if spec.has_flag("admin") || spec.has_flag("skip_monitor") {
            return;
        }
        let _ = self.tx.send(line(SystemTime::now(), addr, argv));
    }
}

/// One monitor line, a RESP simple string.
fn line(at: SystemTime, addr: &str, argv: &[Bytes]) -> Bytes {
    let t = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = format!("+{}.{:06} [0 {addr}]", t.as_secs(), t.subsec_micros()).into_bytes();
    let secret = secrets(argv);
    for (i, a) in argv.iter().enumerate() {
        out.push(b' ');
        match secret(i) {
            true => repr(b"(redacted)", &mut out),
            false => repr(a, &mut out),
        }
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Which arguments Redis redacts: AUTH's, HELLO's after its AUTH, ACL SETUSER's (the user
/// name and every rule, passwords among them), and MIGRATE's AUTH or AUTH2 credentials.
pub(crate) fn secrets(argv: &[Bytes]) -> impl Fn(usize) -> bool {
    let is = |i: usize, word: &[u8]| argv.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    // (first redacted argument, how many from it)
    let redacted = if is(0, b"auth") {
        Some((1, usize::MAX))
    } else if is(0, b"acl") && is(1, b"setuser") {
        Some((2, usize::MAX))
    } else if is(0, b"hello") {
        argv.iter()
            .position(|a| a.eq_ignore_ascii_case(b"auth"))
            .map(|i| (i + 1, 2))
    } else if is(0, b"migrate") {
        // Its options as MIGRATE reads them, up to KEYS.
        let mut j = 6;
        let mut found = None;
        while j < argv.len() && !is(j, b"keys") {
            if is(j, b"auth") || is(j, b"auth2") {
                let n = if is(j, b"auth") { 1 } else { 2 };
                found = Some((j + 1, n));
                j += n;
            }
            j += 1;
        }
        found
    } else {
        None
    };
    move |i| redacted.is_some_and(|(from, n)| i >= from && i - from < n)
}

/// Redis's sdscatrepr: quoted, with C escapes and `\xHH` for what is not printable.
fn repr(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// How MONITOR mode ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The connection is done for (QUIT, closed, killed, too far behind, stopping).
    Closed,
    /// RESET: `+RESET` is written and the connection goes on as a fresh one.
    Reset,
}

/// Serves a connection in MONITOR mode: the lines as they come, and for what the client
/// sends, `+OK` and the end to QUIT, `+RESET` and normal mode again to RESET, an error to
/// anything else.
pub async fn serve(
    stream: &mut TcpStream,
    mut watch: Watch<'_>,
    kill: &KillSwitch,
    buf: &mut BytesMut,
    parser: &mut RequestParser,
    stop: impl std::future::Future<Output = ()>,
    proto: Protocol,
) -> Ended {
    tokio::pin!(stop);
    let mut out = BytesMut::new();
    loop {
        loop {
            match parser.parse(buf) {
                Ok(Some(argv)) if argv[0].eq_ignore_ascii_case(b"quit") => {
                    out.extend_from_slice(b"+OK\r\n");
                    let _ = stream.write_all(&out).await;
                    return Ended::Closed;
                }
                Ok(Some(argv)) if argv.len() == 1 && argv[0].eq_ignore_ascii_case(b"reset") => {
                    out.extend_from_slice(b"+RESET\r\n");
                    return match kill.write_all(stream, &out).await {
                        true => Ended::Reset,
                        false => Ended::Closed,
                    };
                }
                Ok(Some(_)) => Reply::err(
                    "ERR the connection is in MONITOR mode: only QUIT and RESET are accepted",
                )
                .encode(proto, &mut out),
                Ok(None) => break,
                Err(e) => {
                    Reply::err(format!("ERR Protocol error: {e}")).encode(proto, &mut out);
                    let _ = stream.write_all(&out).await;
                    return Ended::Closed;
                }
            }
        }
        // Every line waiting, in one write.
        loop {
            match watch.rx.try_recv() {
                Ok(line) => out.extend_from_slice(&line),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(_) => {
                    tracing::debug!("monitor fell behind or the proxy stopped, closing");
                    return Ended::Closed;
                }
            }
        }
        if !out.is_empty() {
            if !kill.write_all(stream, &out).await {
                return Ended::Closed;
            }
            out.clear();
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        tokio::select! {
            line = watch.rx.recv() => match line {
                Ok(line) => out.extend_from_slice(&line),
                Err(_) => return Ended::Closed,
            },
            n = stream.read_buf(buf) => match n {
                Ok(0) | Err(_) => return Ended::Closed,
                Ok(_) => {}
            },
            _ = kill.killed() => return Ended::Closed,
            _ = &mut stop => return Ended::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn argv(args: &[&[u8]]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn lines_as_redis_writes_them() {
        let at = UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412);
        assert_eq!(
            line(at, "127.0.0.1:60866", &argv(&[b"keys", b"*"])),
            Bytes::from_static(b"+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n")
        );
        assert_eq!(
            line(at, "a:1", &argv(&[b"SET", b"k\"\\", b"\x00\n\xff\t"])),
            Bytes::from_static(
                b"+1339518083.107412 [0 a:1] \"SET\" \"k\\\"\\\\\" \"\\x00\\n\\xff\\t\"\r\n"
            )
        );
        let at = UNIX_EPOCH + Duration::from_secs(5);
        assert_eq!(
            line(at, "a:1", &argv(&[b"AUTH", b"user", b"pw"])),
            Bytes::from_static(b"+5.000000 [0 a:1] \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert_eq!(
            line(at, "a:1", &argv(&[b"hello", b"3", b"auth", b"u", b"p", b"setname", b"n"])),
            Bytes::from_static(
                b"+5.000000 [0 a:1] \"hello\" \"3\" \"auth\" \"(redacted)\" \"(redacted)\" \"setname\" \"n\"\r\n"
            )
        );
    }

    #[test]
    fn passwords_are_redacted_as_redis_redacts_them() {
        let redacted = |words: &str| -> Vec<usize> {
            let argv = crate::wire::argv(words);
            let secret = secrets(&argv);
            (0..argv.len()).filter(|&i| secret(i)).collect()
        };
        assert_eq!(redacted("AUTH u p"), [1, 2]);
        assert_eq!(redacted("hello 3 auth u p setname n"), [3, 4]);
        assert_eq!(redacted("ACL SETUSER bob on >pw ~*"), [2, 3, 4, 5]);
        assert_eq!(redacted("ACL GETUSER bob"), [] as [usize; 0]);
        assert_eq!(redacted("SET auth x"), [] as [usize; 0]);
        assert_eq!(redacted("MIGRATE h 1 k 0 5 COPY AUTH pw"), [8]);
        assert_eq!(redacted("MIGRATE h 1 k 0 5 AUTH2 u pw REPLACE"), [7, 8]);
        assert_eq!(redacted("MIGRATE h 1 x 0 5 KEYS auth x"), [] as [usize; 0]);
    }

    #[test]
    fn only_what_redis_shows_is_fed() {
        let m = Monitors::default();
        assert!(!m.active());
        let mut w = m.watch();
        assert!(m.active());
        m.feed("a:1", &argv(&[b"GET", b"k"]));
        m.feed("a:1", &argv(&[b"CONFIG", b"SET", b"maxclients", b"5"]));
        m.feed("a:1", &argv(&[b"NOSUCH"]));
        m.feed("a:1", &argv(&[b"GET"]));
        m.feed("a:1", &argv(&[b"ping"]));
        let got: Vec<Bytes> = std::iter::from_fn(|| w.rx.try_recv().ok()).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with(b"\"GET\" \"k\"\r\n") && got[1].ends_with(b"\"ping\"\r\n"));
        drop(w);
        assert!(!m.active());
    }
}
