//! `client-output-buffer-limit` for normal clients, as in Redis: a connection whose unsent
//! replies exceed the hard limit, or stay above the soft limit for the soft period, is
//! closed. 0 disables a limit; Redis's default for normal clients is `0 0 0`.
//!
//! A connection here reads its next batch only once the last one's replies are written, so
//! a client that never reads is held back by TCP rather than buffered without bound; the
//! limits bound the one batch of replies it may still hold, and free the connection of a
//! client that stopped reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The other classes, reported as Redis's defaults: redraft has no replica or pub/sub
/// clients of this kind.
const OTHER_CLASSES: &str = "slave 268435456 67108864 60 pubsub 33554432 8388608 60";

#[derive(Default, Debug)]
pub struct OutputLimit {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
}

/// Why a connection's replies could not all be written.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// The client is gone.
    Closed,
    /// It overcame the output buffer limit.
    Limit,
}

impl OutputLimit {
    /// `CONFIG GET client-output-buffer-limit`.
    pub fn describe(&self) -> String {
        format!(
            "normal {} {} {} {OTHER_CLASSES}",
            self.hard.load(Ordering::Relaxed),
            self.soft.load(Ordering::Relaxed),
            self.soft_secs.load(Ordering::Relaxed)
        )
    }

    /// `CONFIG SET client-output-buffer-limit "<class> <hard> <soft> <secs> ..."`: the normal
    /// class applies, the others are accepted (and checked) but have no clients here.
    pub fn set(&self, value: &str) -> Result<(), &'static str> {
        if let Some((hard, soft, secs)) = Self::parse(value)? {
            self.hard.store(hard, Ordering::Relaxed);
            self.soft.store(soft, Ordering::Relaxed);
            self.soft_secs.store(secs, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Checks a value as [`OutputLimit::set`] takes it; returns the normal class's limits.
    pub fn parse(value: &str) -> Result<Option<(u64, u64, u64)>, &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut normal = None;
        for class in words.chunks(4) {
            let limits = (
                parse_memory(class[1]),
                parse_memory(class[2]),
                class[3].parse::<u64>().ok(),
            );
            let (Some(hard), Some(soft), Some(secs)) = limits else {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                );
            };
            match class[0].to_ascii_lowercase().as_str() {
                "normal" => normal = Some((hard, soft, secs)),
                "slave" | "replica" | "pubsub" => {}
                _ => return Err("Invalid client class specified in buffer limit configuration."),
            }
        }
        Ok(normal)
    }

    /// Writes all of `out`, closing the connection's write side to the limits: past the hard
    /// limit at any point, or above the soft one for longer than its period.
    pub async fn write(&self, stream: &mut TcpStream, out: &[u8]) -> Result<(), WriteFailure> {
        let hard = self.hard.load(Ordering::Relaxed);
        let soft = self.soft.load(Ordering::Relaxed);
        if hard == 0 && soft == 0 {
            return stream
                .write_all(out)
                .await
                .map_err(|_| WriteFailure::Closed);
        }
        let soft_period = Duration::from_secs(self.soft_secs.load(Ordering::Relaxed));
        let mut pos = 0;
        let mut over_soft_since = None;
        while pos < out.len() {
            let unsent = (out.len() - pos) as u64;
            if hard > 0 && unsent > hard {
                return Err(WriteFailure::Limit);
            }
            let written = if soft > 0 && unsent > soft {
                let since = *over_soft_since.get_or_insert_with(tokio::time::Instant::now);
                tokio::time::timeout_at(since + soft_period, stream.write(&out[pos..]))
                    .await
                    .map_err(|_| WriteFailure::Limit)?
            } else {
                over_soft_since = None;
                stream.write(&out[pos..]).await
            };
            match written {
                Ok(0) | Err(_) => return Err(WriteFailure::Closed),
                Ok(n) => pos += n,
            }
        }
        Ok(())
    }
}

/// Redis's memory units: `1k` = 1000, `1kb` = 1024, likewise m/mb and g/gb; case-insensitive.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1_000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
    ];
    let (digits, mul) = units
        .iter()
        .find_map(|(u, m)| lower.strip_suffix(u).map(|d| (d, *m)))
        .unwrap_or((lower.as_str(), 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1K"), Some(1000));
        assert_eq!(parse_memory("256mb"), Some(256 << 20));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1tb"), None);
    }

    #[test]
    fn set_and_describe() {
        let l = OutputLimit::default();
        assert_eq!(l.describe(), format!("normal 0 0 0 {OTHER_CLASSES}"));
        l.set("normal 1mb 256kb 10").unwrap();
        assert_eq!(
            l.describe(),
            format!("normal 1048576 262144 10 {OTHER_CLASSES}")
        );
        // Other classes are checked but leave normal alone.
        l.set("pubsub 32mb 8mb 60").unwrap();
        assert!(l.describe().starts_with("normal 1048576 262144 10 "));
        assert!(l.set("normal 1mb 256kb").is_err());
        assert!(l.set("normal x 256kb 10").is_err());
        assert!(l.set("master 1 1 1").is_err());
    }
}
