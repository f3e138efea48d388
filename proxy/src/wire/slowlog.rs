//! SLOWLOG GET | LEN | RESET | HELP, and the log it reads: the commands that took at least
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len` of them,
//! with Redis's entries (id, unix time, microseconds, arguments cut to 32 of at most 128
//! bytes, passwords redacted, client address and name).
//!
//! A command's time is its latency, as in [`super::command_stats`]: from its parsing to its
//! reply, a write's commit included. So a write under load can pass Redis's default 10 ms,
//! which in Redis would take a command running that long in the event loop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::clients::ClientState;
use super::monitor::secrets;
use super::Reply;

/// Redis's defaults.
pub const DEFAULT_SLOWER_THAN_US: i64 = 10_000;
pub const DEFAULT_MAX_LEN: i64 = 128;
/// Arguments an entry keeps (the last of them then says how many more there were), and
/// bytes of each.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

struct Entry {
    id: u64,
    unix_secs: i64,
    micros: i64,
    argv: Vec<Bytes>,
    addr: String,
    name: Bytes,
}

/// A server's slow log.
#[derive(Debug)]
pub struct SlowLog {
    /// `slowlog-log-slower-than` in µs; negative: off.
    slower_than_us: AtomicI64,
    /// `slowlog-max-len`.
    max_len: AtomicI64,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            slower_than_us: AtomicI64::new(DEFAULT_SLOWER_THAN_US),
            max_len: AtomicI64::new(DEFAULT_MAX_LEN),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({})", self.id)
    }
}

impl SlowLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn slower_than_us(&self) -> i64 {
        self.slower_than_us.load(Ordering::Relaxed)
    }

    pub fn max_len(&self) -> i64 {
        self.max_len.load(Ordering::Relaxed)
    }

    pub fn set_slower_than_us(&self, us: i64) {
        self.slower_than_us.store(us, Ordering::Relaxed);
    }

    /// Sets `slowlog-max-len`, dropping the oldest entries beyond it.
    pub fn set_max_len(&self, len: i64) {
        self.max_len.store(len, Ordering::Relaxed);
        let mut entries = self.lock();
        entries.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    }

    /// Whether a command that took `took` belongs in the log (one load and a compare: it
    /// is asked of every command).
    pub fn is_slow(&self, took: Duration) -> bool {
        let limit = self.slower_than_us();
        limit >= 0 && took.as_micros() >= limit as u128
    }

    /// Logs `argv`, which took `took`, from the client at `addr` named `name`.
    pub fn log(&self, argv: &[Bytes], took: Duration, addr: &str, name: Bytes) {
        let secret = secrets(argv);
        let kept = argv.len().min(MAX_ARGS);
        let argv = argv[..kept]
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if kept < argv.len() && i == kept - 1 {
                    Bytes::from(format!("... ({} more arguments)", argv.len() - kept + 1))
                } else if secret(i) {
                    Bytes::from_static(b"(redacted)")
                } else if a.len() > MAX_ARG_BYTES {
                    let mut cut = a[..MAX_ARG_BYTES].to_vec();
                    cut.extend_from_slice(
                        format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                    );
                    Bytes::from(cut)
                } else {
                    // A copy: a slice would hold the whole read buffer it came in.
                    Bytes::copy_from_slice(a)
                }
            })
            .collect();
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            micros: i64::try_from(took.as_micros()).unwrap_or(i64::MAX),
            argv,
            addr: addr.to_string(),
            name,
        };
        let max = usize::try_from(self.max_len()).unwrap_or(usize::MAX);
        let mut entries = self.lock();
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// Logs `argv`, which `client` sent, if it took long enough.
    pub fn note(&self, argv: &[Bytes], took: Duration, client: &ClientState) {
        if self.is_slow(took) {
            self.log(argv, took, &client.addr, client.info().name);
        }
    }

    /// SLOWLOG's subcommands (name and arity checked by the table).
    pub fn command(&self, argv: &[Bytes]) -> Reply {
        match argv[1].to_ascii_lowercase().as_slice() {
            b"get" => {
                if argv.len() > 3 {
                    return Reply::err(format!(
                        "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                        String::from_utf8_lossy(&argv[1])
                    ));
                }
                let count = match argv.get(2).map(|c| super::request::string2ll(c)) {
                    None => 10,
                    Some(Some(n)) if n >= -1 => n,
                    Some(_) => {
                        return Reply::err("ERR count should be greater than or equal to -1")
                    }
                };
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                let entries = self.lock();
                Reply::Array(entries.iter().take(count).map(Entry::reply).collect())
            }
            b"len" => Reply::Int(self.lock().len() as i64),
            b"reset" => {
                self.lock().clear();
                Reply::ok()
            }
            _ => Reply::Array(HELP.iter().map(|&l| Reply::status(l)).collect()),
        }
    }
}

impl Entry {
    fn reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::Int(self.id as i64),
            Reply::Int(self.unix_secs),
            Reply::Int(self.micros),
            Reply::Array(self.argv.iter().cloned().map(Reply::Bulk).collect()),
            Reply::bulk_str(&self.addr),
            Reply::Bulk(self.name.clone()),
        ])
    }
}

const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// CONFIG SET's check of a slowlog parameter's value: the value, or the reason Redis gives.
pub fn parse_config(name: &str, value: &[u8]) -> Option<Result<i64, &'static str>> {
    let low = match name {
        "slowlog-log-slower-than" => -1,
        "slowlog-max-len" => 0,
        _ => return None,
    };
    Some(match super::request::string2ll(value) {
        None => Err("argument couldn't be parsed into an integer"),
        Some(n) if n < low && low == 0 => {
            Err("argument must be between 0 and 9223372036854775807 inclusive")
        }
        Some(n) if n < low => Err("argument must be between -1 and 9223372036854775807 inclusive"),
        Some(n) => Ok(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;

    fn args_of(entry: &Reply) -> Vec<String> {
        let Reply::Array(fields) = entry else {
            panic!("an entry is an array")
        };
        let Reply::Array(args) = &fields[3] else {
            panic!("its arguments are an array")
        };
        args.iter()
            .map(|a| match a {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn entries_are_cut_redacted_and_newest_first() {
        let log = SlowLog::default();
        let long = format!("SET k {}", "v".repeat(200));
        log.log(
            &argv(&long),
            Duration::from_micros(9),
            "127.0.0.1:5",
            Bytes::new(),
        );
        let many = format!("MSET{}", " a".repeat(40));
        log.log(
            &argv(&many),
            Duration::from_micros(3),
            "127.0.0.1:5",
            Bytes::new(),
        );
        log.log(
            &argv("HELLO 3 AUTH u p"),
            Duration::from_micros(13),
            "127.0.0.1:5",
            Bytes::from_static(b"me"),
        );
        let Reply::Array(entries) = log.command(&argv("SLOWLOG GET")) else {
            panic!("entries are an array")
        };
        assert_eq!(entries.len(), 3);
        let Reply::Array(hello) = &entries[0] else {
            panic!()
        };
        assert_eq!(hello[0], Reply::Int(2), "ids count up, the newest first");
        assert_eq!(hello[2], Reply::Int(13));
        assert_eq!(hello[4], Reply::bulk_str("127.0.0.1:5"));
        assert_eq!(hello[5], Reply::bulk_str("me"));
        assert_eq!(
            args_of(&entries[0]),
            ["HELLO", "3", "AUTH", "(redacted)", "(redacted)"]
        );
        let mset = args_of(&entries[1]);
        assert_eq!(mset.len(), 32);
        assert_eq!(mset[31], "... (10 more arguments)");
        assert_eq!(mset[30], "a");
        let set = args_of(&entries[2]);
        assert_eq!(set[2], format!("{}... (72 more bytes)", "v".repeat(128)));
        assert_eq!(log.command(&argv("SLOWLOG LEN")), Reply::Int(3));
        let Reply::Array(one) = log.command(&argv("SLOWLOG GET 1")) else {
            panic!()
        };
        assert_eq!(one.len(), 1);
        let Reply::Array(all) = log.command(&argv("SLOWLOG GET -1")) else {
            panic!()
        };
        assert_eq!(all.len(), 3);
        assert_eq!(
            log.command(&argv("SLOWLOG GET 0")),
            Reply::Array(Vec::new())
        );
        for bad in ["SLOWLOG GET -2", "SLOWLOG GET x"] {
            assert_eq!(
                log.command(&argv(bad)),
                Reply::err("ERR count should be greater than or equal to -1")
            );
        }
        assert_eq!(
            log.command(&argv("SLOWLOG GET 1 2")),
            Reply::err(
                "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
            )
        );
        assert_eq!(log.command(&argv("SLOWLOG RESET")), Reply::ok());
        assert_eq!(log.command(&argv("SLOWLOG LEN")), Reply::Int(0));
    }

    #[test]
    fn the_threshold_and_the_length_bound_the_log() {
        let log = SlowLog::default();
        assert!(!log.is_slow(Duration::from_micros(9_999)));
        assert!(log.is_slow(Duration::from_millis(10)));
        log.set_slower_than_us(-1);
        assert!(!log.is_slow(Duration::from_secs(100)), "negative: off");
        log.set_slower_than_us(0);
        assert!(log.is_slow(Duration::ZERO), "0: every command");
        for i in 0..5 {
            log.log(
                &argv(&format!("GET k{i}")),
                Duration::ZERO,
                "a:1",
                Bytes::new(),
            );
        }
        log.set_max_len(2);
        assert_eq!(log.command(&argv("SLOWLOG LEN")), Reply::Int(2));
        let Reply::Array(kept) = log.command(&argv("SLOWLOG GET")) else {
            panic!()
        };
        assert_eq!(args_of(&kept[0]), ["GET", "k4"], "the newest stay");
        log.log(&argv("GET k5"), Duration::ZERO, "a:1", Bytes::new());
        assert_eq!(log.command(&argv("SLOWLOG LEN")), Reply::Int(2));
        log.set_max_len(0);
        assert_eq!(log.command(&argv("SLOWLOG LEN")), Reply::Int(0));
    }

    #[test]
    fn config_values_are_checked_as_redis_checks_them() {
        assert_eq!(parse_config("slowlog-log-slower-than", b"-1"), Some(Ok(-1)));
        assert_eq!(
            parse_config("slowlog-log-slower-than", b"-5"),
            Some(Err(
                "argument must be between -1 and 9223372036854775807 inclusive"
            ))
        );
        assert_eq!(
            parse_config("slowlog-max-len", b"-1"),
            Some(Err(
                "argument must be between 0 and 9223372036854775807 inclusive"
            ))
        );
        assert_eq!(
            parse_config("slowlog-max-len", b"x"),
            Some(Err("argument couldn't be parsed into an integer"))
        );
        assert_eq!(parse_config("maxclients", b"1"), None);
    }
}
