//! One history: operations with their invoke and completion times and outcomes.

use std::sync::Mutex;
use std::time::Instant;

/// How an operation ended, as the client knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: an append took effect; a read returned this list of ids.
    Ok,
    /// A definite error: the operation did not take effect.
    Fail,
    /// Unknown: timeout or lost connection; it may or may not have taken effect.
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `APPEND key "<id>,"`.
    Append(u64),
    /// `GET key`: the ids read, in order (meaningful when the outcome is Ok).
    Read(Vec<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub process: u64,
    pub key: String,
    pub kind: Kind,
    /// Nanoseconds since the history began.
    pub invoke: u64,
    pub complete: u64,
    pub outcome: Outcome,
}

/// A history shared by concurrent clients.
pub struct History {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Default for History {
    fn default() -> Self {
        History {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }
}

impl History {
    /// Nanoseconds since the history began: take one before invoking an operation.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records an operation that was invoked at `invoke` and has just completed.
    pub fn record(&self, process: u64, key: &str, kind: Kind, invoke: u64, outcome: Outcome) {
        let complete = self.now();
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(Op {
            process,
            key: key.to_owned(),
            kind,
            invoke,
            complete,
            outcome,
        });
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The ids in a list-append value (`"3,17,5,"`); None if it is not one.
pub fn parse_list(value: &[u8]) -> Option<Vec<u64>> {
    let text = std::str::from_utf8(value).ok()?;
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list(b""), Some(vec![]));
        assert_eq!(parse_list(b"3,17,5,"), Some(vec![3, 17, 5]));
        assert_eq!(parse_list(b"3,x,"), None);
    }

    #[test]
    fn records_in_time_order() {
        let h = History::default();
        let t = h.now();
        h.record(1, "k", Kind::Append(1), t, Outcome::Ok);
        let ops = h.ops();
        assert_eq!(ops.len(), 1);
        assert!(ops[0].complete >= ops[0].invoke);
    }
}
