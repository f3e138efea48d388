//! Snapshots by log volume. openraft 0.9 counts entries only, and an entry can hold one
//! command or thousands (batched writes, migration chunks of half a MiB): 20,000 entries
//! may be a few MiB of log or several GiB. So each replica also snapshots once the log has
//! grown by as many bytes as the last snapshot holds, and by at least a floor, like
//! Redis's AOF rewrite (auto-aof-rewrite-percentage 100, auto-aof-rewrite-min-size 64mb):
//! the log stays within about twice the state, and rewriting the state costs at most one
//! byte per byte logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::WeakShardGroup;

const INTERVAL: Duration = Duration::from_millis(500);

/// Whether `grown` bytes logged since the last snapshot call for the next one.
pub fn due(grown: u64, snapshot_bytes: u64, floor: u64) -> bool {
    grown >= floor.max(snapshot_bytes)
}

/// Watches the bytes `appended` to the group's log and triggers snapshots (see [`due`]).
/// Ends when the group is gone.
pub async fn run(group: WeakShardGroup, appended: Arc<AtomicU64>, floor: u64) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The log volume when the current snapshot was taken (by this task or by openraft's
    // entry count), as far as this task saw it.
    let mut mark = appended.load(Ordering::Relaxed);
    let mut seen = None;
    loop {
        tick.tick().await;
        let Some(group) = group.upgrade() else { return };
        let snapshot = group.raft().metrics().borrow().snapshot;
        if snapshot != seen {
            seen = snapshot;
            mark = appended.load(Ordering::Relaxed);
        }
        let now = appended.load(Ordering::Relaxed);
        let size = group.reader().snapshot_bytes();
        if !due(now - mark, size, floor) {
            continue;
        }
        tracing::debug!(
            gid = group.gid(),
            grown = now - mark,
            snapshot_bytes = size,
            "log grew past the last snapshot: taking a new one"
        );
        if group.raft().trigger().snapshot().await.is_err() {
            return; // Raft is shutting down.
        }
        // Counted from here even before the snapshot shows in the metrics, so a build that
        // takes a while is not asked for again at every tick.
        mark = now;
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn due_at_the_floor_or_at_the_snapshot_size_whichever_is_larger() {
        let mib = 1 << 20;
        assert!(!due(63 * mib, 0, 64 * mib));
        assert!(due(64 * mib, 0, 64 * mib));
        assert!(!due(100 * mib, 200 * mib, 64 * mib));
        assert!(due(200 * mib, 200 * mib, 64 * mib));
    }
}
