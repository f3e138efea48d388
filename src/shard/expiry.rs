//! Active expiry: the leader finds keys whose time has passed and proposes their deletion
//! through the log, so every replica deletes the same keys at the same log position.
//! (Reads already treat expired keys as absent; this only reclaims space.) Exactly-once
//! entries idle for long are forgotten the same way.

use std::sync::Weak;
use std::time::Duration;

use super::state_machine::ShardReader;
use super::{now_ms, Inner, ShardGroup};
use crate::cmd::WriteCmd;

const INTERVAL: Duration = Duration::from_millis(100);
const BATCH: usize = 256;
/// Exactly-once entries looked at per round: a million entries take under a minute to go
/// over, against an idle bound of minutes, and no round stalls the worker for long.
const DEDUP_SCAN: usize = 2048;
/// Rest between two passes over the exactly-once entries. Every proxied write rewrites its
/// client's entry, so the memtable holds many versions of each, and a range scan walks
/// them all: a pass every round cost a tenth of the CPU of unpipelined writes through
/// the proxy. Against an idle bound of minutes, a pass every few seconds forgets on time.
const DEDUP_PASS_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run(group: Weak<Inner>, reader: ShardReader) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dedup_cursor: Option<Vec<u8>> = None;
    let mut next_pass = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = group.upgrade() else { return };
        let group = ShardGroup { inner };
        if !group.is_leader() {
            continue;
        }
        // Keep deleting while full batches come back, so a burst of expiries drains fast.
        loop {
            let keys = reader.expired_keys(now_ms().max(reader.clock()), BATCH);
            let full = keys.len() == BATCH;
            let size = keys.iter().map(|k| k.len() + 8).sum();
            if keys.is_empty()
                || group
                    .write(WriteCmd::DeleteExpired(keys), size)
                    .await
                    .is_err()
                || !full
            {
                break;
            }
        }
        // Exactly-once entries idle past their bound: the apply checks the idle time
        // again at the entry's own time, so a client that came back keeps its entry.
        if dedup_cursor.is_none() && tokio::time::Instant::now() < next_pass {
            continue;
        }
        let before = now_ms()
            .max(reader.clock())
            .saturating_sub(super::apply::DEDUP_IDLE_MS);
        let (keys, next) = crate::storage::blocking(|| {
            reader.idle_dedup(before, dedup_cursor.as_deref(), DEDUP_SCAN, BATCH)
        });
        if next.is_none() {
            next_pass = tokio::time::Instant::now() + DEDUP_PASS_EVERY;
        }
        dedup_cursor = next;
        if !keys.is_empty() {
            let size = keys.len() * 18;
            let _ = group.write(WriteCmd::ForgetDedup(keys), size).await;
        }
    }
}
