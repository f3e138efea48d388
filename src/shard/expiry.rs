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
/// Exactly-once entries are looked over every this many rounds (about 10 s).
const DEDUP_ROUNDS: u64 = 100;

pub(super) async fn run(group: Weak<Inner>, reader: ShardReader) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0u64;
    loop {
        tick.tick().await;
        round += 1;
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
        if round.is_multiple_of(DEDUP_ROUNDS) {
            // Exactly-once entries idle past their bound: the apply checks the idle time
            // again at the entry's own time, so a client that came back keeps its entry.
            let before = now_ms()
                .max(reader.clock())
                .saturating_sub(super::apply::DEDUP_IDLE_MS);
            let keys = reader.idle_dedup(before, BATCH);
            if !keys.is_empty() {
                let size = keys.len() * 18;
                let _ = group.write(WriteCmd::ForgetDedup(keys), size).await;
            }
        }
    }
}
