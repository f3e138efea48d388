//! Active expiry: the leader finds keys whose time has passed and proposes their deletion
//! through the log, so every replica deletes the same keys at the same log position.
//! (Reads already treat expired keys as absent; this only reclaims space.)

use std::sync::Weak;
use std::time::Duration;

use super::state_machine::ShardReader;
use super::{now_ms, Inner, ShardGroup};
use crate::cmd::WriteCmd;

const INTERVAL: Duration = Duration::from_millis(100);
const BATCH: usize = 256;

pub(super) async fn run(group: Weak<Inner>, reader: ShardReader) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
    }
}
