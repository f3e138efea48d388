//! Per-command statistics, as Redis keeps them: calls, time, refused and failed calls and a
//! latency histogram per command, and a count per error code. INFO commandstats,
//! errorstats and latencystats and LATENCY HISTOGRAM show them; CONFIG RESETSTAT clears
//! them. The node and the proxy each keep their own.
//!
//! A command's time runs from its parsing to its reply being ready, so a write's includes
//! its Raft commit and a read's its read barrier: what the client waits for. Redis counts
//! the command's execution only (its event loop does `appendfsync always`'s fsync apart),
//! so the figures are the latency a client sees, not CPU time.
//!
//! Connections collect [`Samples`] without locking and hand them over once per write of
//! replies, so a pipeline of N commands takes the lock once.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;

use super::table::{lookup, lookup_sub, CommandSpec};
use super::Reply;

/// Redis's histogram: 1 ns to 1 s at 2 significant digits, so percentiles and buckets are
/// the figures redis-server prints for the same latencies.
const LOWEST_NS: u64 = 1;
const HIGHEST_NS: u64 = 1_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 2;
/// INFO latencystats's percentiles (Redis's `latency-tracking-info-percentiles` default).
const PERCENTILES: [(&str, f64); 3] = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)];
/// Distinct error codes counted at most; later new codes only count in
/// `total_error_replies` (Redis 7.2's limit, against unbounded codes).
const ERROR_CODES: usize = 128;

/// How a command ended, as Redis tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and answered (possibly muted by CLIENT REPLY).
    Done,
    /// Ran and answered an error (`failed_calls`).
    Failed,
    /// Refused before running: arity, a slot owned elsewhere or moving (`rejected_calls`).
    Rejected,
    /// No such command or subcommand: counted as an error reply only.
    Unknown,
}

impl Outcome {
    /// The outcome an error reply means.
    pub fn of_error(e: &str) -> Outcome {
        if e.starts_with("ERR unknown command") || e.starts_with("ERR unknown subcommand") {
            return Outcome::Unknown;
        }
        let refused = matches!(
            error_code(e),
            "MOVED"
                | "ASK"
                | "TRYAGAIN"
                | "CROSSSLOT"
                | "CLUSTERDOWN"
                | "READONLY"
                | "LOADING"
                | "BUSY"
                | "MASTERDOWN"
                | "NOAUTH"
                | "NOPERM"
                | "OOM"
                | "MISCONF"
        ) || e.starts_with("ERR wrong number of arguments");
        match refused {
            true => Outcome::Rejected,
            false => Outcome::Failed,
        }
    }
}

/// An error reply's code as errorstats counts it: its first word when a space comes
/// within 32 bytes, else `ERR` (Redis's afterErrorReply).
pub fn error_code(e: &str) -> &str {
    let head = &e.as_bytes()[..e.len().min(32)];
    match memchr::memchr(b' ', head) {
        Some(i) => &e[..i],
        None => "ERR",
    }
}

/// One answered command.
struct Sample {
    name: Option<&'static str>,
    nanos: u64,
    outcome: Outcome,
    /// The error code, for an error reply.
    code: Option<Box<str>>,
}

/// What a connection answered since it last handed its samples over.
#[derive(Default)]
pub struct Samples(Vec<Sample>);

impl Samples {
    /// Notes a command (`name` from [`stat_name`]) answered `reply` (None: muted) after
    /// `took`.
    pub fn add(&mut self, name: Option<&'static str>, took: Duration, reply: Option<&Reply>) {
        let (outcome, code) = match reply {
            Some(Reply::Error(e)) => (Outcome::of_error(e), Some(error_code(e).into())),
            _ => (Outcome::Done, None),
        };
        self.0.push(Sample {
            name,
            nanos: u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            outcome,
            code,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The name a command's statistics go under: its full name (`get`, `client|id`), the
/// command a proxy's `ONCE` stamp wraps, None for no such command (or subcommand).
pub fn stat_name(argv: &[Bytes]) -> Option<&'static str> {
    let mut spec = lookup(argv.first()?)?;
    if spec.name == "once" && argv.len() > 3 {
        return stat_name(&argv[3..]);
    }
    if spec.is_container() {
        if let Some(sub) = argv.get(1) {
            spec = lookup_sub(spec, sub)?;
        }
    }
    Some(spec.name)
}

struct PerCommand {
    calls: u64,
    nanos: u64,
    rejected: u64,
    failed: u64,
    latency: Histogram<u64>,
}

impl PerCommand {
    fn new() -> PerCommand {
        PerCommand {
            calls: 0,
            nanos: 0,
            rejected: 0,
            failed: 0,
            latency: Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
                .expect("constant bounds are valid"),
        }
    }

    fn usec(&self) -> u64 {
        self.nanos / 1000
    }
}

#[derive(Default)]
struct Inner {
    /// By name, so INFO lists them in a stable order.
    commands: BTreeMap<&'static str, PerCommand>,
    errors: BTreeMap<Box<str>, u64>,
    error_replies: u64,
}

/// A server's command statistics (see the module's doc).
#[derive(Default)]
pub struct CommandStats {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for CommandStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandStats")
    }
}

impl CommandStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a connection's samples in.
    pub fn record(&self, samples: &mut Samples) {
        if samples.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        for s in samples.0.drain(..) {
            if let Some(code) = s.code {
                inner.error_replies += 1;
                let room = inner.errors.len() < ERROR_CODES;
                match inner.errors.get_mut(&code) {
                    Some(n) => *n += 1,
                    None if room => {
                        inner.errors.insert(code, 1);
                    }
                    None => {}
                }
            }
            let Some(name) = s.name.filter(|_| s.outcome != Outcome::Unknown) else {
                continue;
            };
            let c = inner.commands.entry(name).or_insert_with(PerCommand::new);
            if s.outcome == Outcome::Rejected {
                c.rejected += 1;
                continue;
            }
            c.calls += 1;
            c.failed += u64::from(s.outcome == Outcome::Failed);
            c.nanos = c.nanos.saturating_add(s.nanos);
            c.latency
                .saturating_record(s.nanos.clamp(LOWEST_NS, HIGHEST_NS));
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }

    /// INFO stats's `total_error_replies`.
    pub fn error_replies(&self) -> u64 {
        self.lock().error_replies
    }

    /// `# Commandstats`.
    pub fn commandstats(&self, s: &mut String) {
        s.push_str("# Commandstats\r\n");
        for (name, c) in &self.lock().commands {
            let per_call = match c.calls {
                0 => 0.0,
                n => c.usec() as f64 / n as f64,
            };
            let _ = write!(
                s,
                "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                c.calls,
                c.usec(),
                c.rejected,
                c.failed,
            );
        }
    }

    /// `# Errorstats`.
    pub fn errorstats(&self, s: &mut String) {
        s.push_str("# Errorstats\r\n");
        for (code, n) in &self.lock().errors {
            let _ = write!(s, "errorstat_{code}:count={n}\r\n");
        }
    }

    /// `# Latencystats`.
    pub fn latencystats(&self, s: &mut String) {
        s.push_str("# Latencystats\r\n");
        for (name, c) in self.lock().commands.iter().filter(|(_, c)| c.calls > 0) {
            let _ = write!(s, "latency_percentiles_usec_{name}:");
            for (i, (label, p)) in PERCENTILES.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let usec = value_at_percentile(&c.latency, *p) as f64 / 1000.0;
                let _ = write!(s, "{sep}{label}={usec:.3}");
            }
            s.push_str("\r\n");
        }
    }

    /// LATENCY HISTOGRAM [command ...]: each command's calls and cumulative latency
    /// distribution, for the commands named (a container names its subcommands) or all.
    pub fn histogram(&self, names: &[Bytes]) -> Reply {
        let inner = self.lock();
        let one = |name: &'static str| {
            let c = inner.commands.get(name).filter(|c| c.calls > 0)?;
            Some((Reply::bulk_str(name), cdf(&c.latency)))
        };
        let entries = if names.is_empty() {
            inner.commands.keys().filter_map(|n| one(n)).collect()
        } else {
            names
                .iter()
                .filter_map(|n| spec_named(n))
                .flat_map(|spec| {
                    std::iter::once(spec.name)
                        .chain(spec.subcommands.iter().map(|s| s.name))
                        .filter_map(one)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        Reply::Map(entries)
    }
}

/// A command by its full name (`get`, `client|id`), case-insensitively.
fn spec_named(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name),
        Some(i) => lookup_sub(lookup(&name[..i])?, &name[i + 1..]),
    }
}

/// The value below which `percentile` % of the recorded values fall, as the C library
/// Redis uses computes it (the count rounded half up, not up as the Rust port does).
fn value_at_percentile(h: &Histogram<u64>, percentile: f64) -> u64 {
    let wanted = ((percentile.min(100.0) / 100.0 * h.len() as f64) + 0.5) as u64;
    let wanted = wanted.max(1);
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= wanted {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    0
}

/// `calls` and `histogram_usec`: the count of calls at or below each power-of-two level
/// from 1024 ns (in µs as Redis prints it, the level's highest equivalent value), for the
/// levels where it grows.
fn cdf(h: &Histogram<u64>) -> Reply {
    let mut buckets = Vec::new();
    let mut recorded = h.iter_recorded().peekable();
    let (mut level, mut cumulative) = (1024u64, 0u64);
    while cumulative < h.len() {
        let top = h.highest_equivalent(level);
        let before = cumulative;
        while let Some(v) = recorded.next_if(|v| v.value_iterated_to() <= top) {
            cumulative += v.count_at_value();
        }
        if cumulative > before {
            buckets.push((Reply::Int(top as i64 / 1000), Reply::Int(cumulative as i64)));
        }
        level = level.saturating_mul(2);
    }
    Reply::Map(vec![
        (Reply::bulk_str("calls"), Reply::Int(h.len() as i64)),
        (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
    ])
}

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// LATENCY's subcommands (name and arity checked by the table). The latency monitor's
/// events are never recorded (Redis's default, `latency-monitor-threshold 0`): LATEST,
/// HISTORY and RESET find none; HISTOGRAM answers from `stats`.
pub fn latency(argv: &[Bytes], stats: &CommandStats) -> Reply {
    let sub = argv[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"histogram" => stats.histogram(&argv[2..]),
        b"latest" | b"history" => Reply::Array(Vec::new()),
        b"reset" => Reply::Int(0),
        b"graph" => Reply::err(format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(&argv[2])
        )),
        b"doctor" => Reply::Verbatim(Bytes::from_static(
            b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this redraft \
instance: it records no latency events. Each command's latency, from its parsing to its reply, \
is in LATENCY HISTOGRAM and INFO latencystats.\n",
        )),
        _ => Reply::Array(LATENCY_HELP.iter().map(|&l| Reply::status(l)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;

    fn record(stats: &CommandStats, items: &[(&str, u64, Option<Reply>)]) {
        let mut samples = Samples::default();
        for (cmd, micros, reply) in items {
            let name = stat_name(&argv(cmd));
            samples.add(name, Duration::from_micros(*micros), reply.as_ref());
        }
        stats.record(&mut samples);
        assert!(samples.is_empty(), "handed over");
    }

    #[test]
    fn error_codes_are_the_first_word_within_32_bytes() {
        assert_eq!(error_code("ERR syntax error"), "ERR");
        assert_eq!(error_code("WRONGTYPE Operation against a key"), "WRONGTYPE");
        assert_eq!(error_code("MOVED 12 127.0.0.1:7001"), "MOVED");
        assert_eq!(error_code("NOSPACEINTHISERROR"), "ERR");
        assert_eq!(error_code(&format!("{} x", "A".repeat(40))), "ERR");
        assert_eq!(Outcome::of_error("ERR syntax error"), Outcome::Failed);
        assert_eq!(
            Outcome::of_error("ERR wrong number of arguments for 'get' command"),
            Outcome::Rejected
        );
        assert_eq!(
            Outcome::of_error("TRYAGAIN Slot 5 is being migrated"),
            Outcome::Rejected
        );
        assert_eq!(
            Outcome::of_error("ERR unknown command 'foo', with args beginning with: "),
            Outcome::Unknown
        );
    }

    #[test]
    fn names_are_full_names_and_a_stamp_counts_as_what_it_wraps() {
        assert_eq!(stat_name(&argv("GET k")), Some("get"));
        assert_eq!(stat_name(&argv("client ID")), Some("client|id"));
        assert_eq!(stat_name(&argv("client")), Some("client"));
        assert_eq!(stat_name(&argv("client nosuch")), None);
        assert_eq!(stat_name(&argv("nosuch")), None);
        assert_eq!(stat_name(&argv("ONCE 7 1:0 SET k v")), Some("set"));
        assert_eq!(stat_name(&argv("ONCE 7 1:0")), Some("once"));
    }

    /// The same calls as a session with redis-server 7.0.15 (`set a 1`, `get a`, `incr
    /// nosuch`, `set a x`, `incr a`, `foo`, `get`, `client id`, `object foo`, `lpush a x`,
    /// `set a b c`), with the latencies it measured: its INFO lines, but for LPUSH's, a
    /// command redraft does not have (its WRONGTYPE still counts as an error).
    #[test]
    fn info_sections_read_as_redis_writes_them() {
        let stats = CommandStats::default();
        let err = |e: &str| Some(Reply::err(e));
        record(
            &stats,
            &[
                ("set a 1", 8, Some(Reply::ok())),
                ("get a", 5, Some(Reply::bulk_str("1"))),
                ("incr nosuch", 4, Some(Reply::Int(1))),
                ("set a x", 9, Some(Reply::ok())),
                (
                    "incr a",
                    5,
                    err("ERR value is not an integer or out of range"),
                ),
                (
                    "foo",
                    1,
                    err("ERR unknown command 'foo', with args beginning with: "),
                ),
                (
                    "get",
                    1,
                    err("ERR wrong number of arguments for 'get' command"),
                ),
                ("client id", 276, Some(Reply::Int(3))),
                (
                    "object foo",
                    1,
                    err("ERR unknown subcommand 'foo'. Try OBJECT HELP."),
                ),
                (
                    "lpush a x",
                    7,
                    err("WRONGTYPE Operation against a key holding the wrong kind of value"),
                ),
                ("set a b c", 3, err("ERR syntax error")),
            ],
        );
        let mut s = String::new();
        stats.commandstats(&mut s);
        assert_eq!(
            s,
            "# Commandstats\r\n\
             cmdstat_client|id:calls=1,usec=276,usec_per_call=276.00,rejected_calls=0,failed_calls=0\r\n\
             cmdstat_get:calls=1,usec=5,usec_per_call=5.00,rejected_calls=1,failed_calls=0\r\n\
             cmdstat_incr:calls=2,usec=9,usec_per_call=4.50,rejected_calls=0,failed_calls=1\r\n\
             cmdstat_set:calls=3,usec=20,usec_per_call=6.67,rejected_calls=0,failed_calls=1\r\n"
        );
        let mut s = String::new();
        stats.errorstats(&mut s);
        assert_eq!(
            s,
            "# Errorstats\r\nerrorstat_ERR:count=5\r\nerrorstat_WRONGTYPE:count=1\r\n"
        );
        assert_eq!(stats.error_replies(), 6);
        let mut s = String::new();
        stats.latencystats(&mut s);
        assert_eq!(
            s,
            "# Latencystats\r\n\
             latency_percentiles_usec_client|id:p50=276.479,p99=276.479,p99.9=276.479\r\n\
             latency_percentiles_usec_get:p50=5.023,p99=5.023,p99.9=5.023\r\n\
             latency_percentiles_usec_incr:p50=4.015,p99=5.023,p99.9=5.023\r\n\
             latency_percentiles_usec_set:p50=8.031,p99=9.023,p99.9=9.023\r\n"
        );
        stats.reset();
        let mut s = String::new();
        stats.commandstats(&mut s);
        stats.errorstats(&mut s);
        assert_eq!(s, "# Commandstats\r\n# Errorstats\r\n");
        assert_eq!(stats.error_replies(), 0);
    }

    #[test]
    fn percentiles_round_the_count_half_up() {
        // 70 calls: p99 is the 69th (69.3 rounded), where rounding up would take the 70th.
        let stats = CommandStats::default();
        let items: Vec<_> = (1..=70)
            .map(|i| ("get k", if i == 70 { 900 } else { 10 }, Some(Reply::Null)))
            .collect();
        record(&stats, &items);
        let mut s = String::new();
        stats.latencystats(&mut s);
        assert_eq!(
            s,
            "# Latencystats\r\nlatency_percentiles_usec_get:p50=10.047,p99=10.047,p99.9=901.119\r\n"
        );
    }

    #[test]
    fn a_histogram_counts_calls_at_or_below_each_power_of_two() {
        let stats = CommandStats::default();
        record(
            &stats,
            &[
                ("set a 1", 4, Some(Reply::ok())),
                ("set a 1", 8, Some(Reply::ok())),
                ("set a 1", 9, Some(Reply::ok())),
                ("client id", 528, Some(Reply::Int(1))),
                (
                    "get",
                    1,
                    Some(Reply::err(
                        "ERR wrong number of arguments for 'get' command",
                    )),
                ),
            ],
        );
        let set = Reply::Map(vec![
            (Reply::bulk_str("calls"), Reply::Int(3)),
            (
                Reply::bulk_str("histogram_usec"),
                Reply::Map(vec![
                    (Reply::Int(4), Reply::Int(1)),
                    (Reply::Int(8), Reply::Int(2)),
                    (Reply::Int(16), Reply::Int(3)),
                ]),
            ),
        ]);
        let client_id = Reply::Map(vec![
            (Reply::bulk_str("calls"), Reply::Int(1)),
            (
                Reply::bulk_str("histogram_usec"),
                Reply::Map(vec![(Reply::Int(528), Reply::Int(1))]),
            ),
        ]);
        assert_eq!(
            stats.histogram(&argv("SET nosuch CLIENT get")),
            Reply::Map(vec![
                (Reply::bulk_str("set"), set.clone()),
                (Reply::bulk_str("client|id"), client_id.clone()),
            ]),
            "a container names its subcommands; a command only refused has no histogram"
        );
        assert_eq!(
            stats.histogram(&[]),
            Reply::Map(vec![
                (Reply::bulk_str("client|id"), client_id),
                (Reply::bulk_str("set"), set),
            ])
        );
        assert_eq!(
            latency(&argv("LATENCY histogram nosuch"), &stats),
            Reply::Map(vec![])
        );
    }

    #[test]
    fn the_latency_monitor_has_no_events() {
        let stats = CommandStats::default();
        assert_eq!(
            latency(&argv("LATENCY LATEST"), &stats),
            Reply::Array(vec![])
        );
        assert_eq!(
            latency(&argv("latency history x"), &stats),
            Reply::Array(vec![])
        );
        assert_eq!(latency(&argv("LATENCY RESET a b"), &stats), Reply::Int(0));
        assert_eq!(
            latency(&argv("LATENCY GRAPH command"), &stats),
            Reply::err("ERR No samples available for event 'command'")
        );
        let Reply::Array(help) = latency(&argv("LATENCY HELP"), &stats) else {
            panic!("help is an array");
        };
        assert_eq!(help.len(), 17);
    }

    #[test]
    fn error_codes_stop_growing_at_the_limit() {
        let stats = CommandStats::default();
        let mut samples = Samples::default();
        for i in 0..ERROR_CODES + 10 {
            let e = Reply::err(format!("-CODE{i} boom"));
            samples.add(None, Duration::ZERO, Some(&e));
        }
        stats.record(&mut samples);
        assert_eq!(stats.error_replies(), ERROR_CODES as u64 + 10);
        let mut s = String::new();
        stats.errorstats(&mut s);
        assert_eq!(s.lines().count(), 1 + ERROR_CODES);
    }
}
