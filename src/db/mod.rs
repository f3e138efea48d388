//! The keyspace as commands see it: values with absolute expiry times, and the read/write
//! traits that commands run against ([`keyspace::Keyspace`] implements them).
//!
//! A read runs against [`DbRead`] on the leader after a read barrier; a write's `apply` runs
//! against [`DbWrite`] inside the state machine's apply of its log entry.

pub mod keys;
pub mod keyspace;
mod radix;
pub mod rdb;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// What a key holds. Only strings exist so far; the enum makes WRONGTYPE checks real.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Data {
    Str(Bytes),
}

impl Data {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Data::Str(_) => "string",
        }
    }
}

/// A stored value: its data and its absolute expiry time in unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    pub data: Data,
    pub expire_at: Option<u64>,
}

impl Value {
    pub fn string(b: impl Into<Bytes>) -> Value {
        Value {
            data: Data::Str(b.into()),
            expire_at: None,
        }
    }
    /// Expired values read as absent on every replica.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_at, Some(t) if t <= now_ms)
    }
}

/// Read access to a keyspace. Methods return raw values, expired ones included: callers
/// decide with the `now` they were given (the leader's clock for reads, the entry's stamped
/// time for writes), so the decision is the same on every replica.
pub trait DbRead {
    /// The stored value of `key`, expired or not.
    fn get_raw(&self, key: &[u8]) -> Option<Value>;

    /// Up to about `count` entries in storage order starting at scan position `pos`
    /// (see [`keys::scan_pos`]), and the position to continue from; 0 means the end.
    /// Never splits entries that share a position, so a resumed scan skips nothing.
    fn scan(&self, pos: u64, count: usize) -> (Vec<(Bytes, Value)>, u64);

    /// Number of stored keys (logically expired ones included, as Redis's DBSIZE).
    fn key_count(&self) -> u64;

    /// Number of stored keys that carry an expiry time.
    fn expires_count(&self) -> u64;

    /// The live value of `key` at `now_ms`.
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Value> {
        self.get_raw(key).filter(|v| !v.is_expired(now_ms))
    }
}

/// Write access, used by `apply` inside one atomic state-machine batch. Reads through a
/// `DbWrite` see the batch's own earlier writes.
pub trait DbWrite: DbRead {
    fn put(&mut self, key: &[u8], value: Value);
    /// Removes `key`; whether it was stored (expired or not).
    fn delete(&mut self, key: &[u8]) -> bool;
    /// FLUSHALL / FLUSHDB.
    fn clear(&mut self);
    /// Runs `f` on the stored bytes of `key`'s value, in place, if nothing else holds them
    /// (no snapshot, migration or reply in flight shares the row); false, with `f` not run,
    /// otherwise. Saves a bit or byte write on a long string from copying it whole. The
    /// caller has checked that the key is live and long enough.
    fn modify_in_place(&mut self, key: &[u8], f: &mut dyn FnMut(&mut [u8])) -> bool {
        let _ = (key, f);
        false
    }
}
