//! A replica that comes back with a blank data dir (a replaced disk) while its group goes
//! on without it.
//!
//! Raft counts on every voter keeping what it acknowledged. A blank replica under its old
//! id could vote a candidate that lacks entries this replica once helped commit, and the
//! group would lose them. So a blank replica whose peers already hold the group (anything
//! beyond the initial membership) is *quarantined*: it neither votes nor campaigns until
//! its log reaches the longest log its peers reported when it started. It still accepts
//! replication, which is how it gets there. The fence is kept in a file, so a restart
//! half-way through stays quarantined.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bus::{Bus, BusRequest, BusResponse};
use crate::config::NodeConfig;
use crate::raft::ShardRaft;

/// Whether the hosted replica must not vote or campaign yet. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct Quarantine(Arc<AtomicBool>);

impl Quarantine {
    pub fn active(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the other initial members said about the group.
#[derive(Debug, Default)]
pub struct PeerStatus {
    pub any_initialized: bool,
    /// The longest log among them (None when no peer answered with a log).
    pub max_last_index: Option<u64>,
}

/// Asks every other initial member (briefly; an unreachable peer counts as knowing
/// nothing: a brand-new group starts with them down).
pub async fn probe_peers(bus: &Bus, config: &NodeConfig) -> PeerStatus {
    let asks = config
        .peers
        .iter()
        .filter(|(id, _)| **id != config.id)
        .map(|(id, addr)| {
            let req = BusRequest::Status { gid: config.gid };
            let addr = addr.bus_addr();
            async move { bus.call(*id, &addr, req, Duration::from_millis(500)).await }
        });
    let mut status = PeerStatus::default();
    for answer in futures::future::join_all(asks).await {
        if let Ok(BusResponse::Status {
            initialized,
            last_log_index,
        }) = answer
        {
            status.any_initialized |= initialized;
            status.max_last_index = status.max_last_index.max(last_log_index);
        }
    }
    status
}

fn fence_path(dir: &Path, gid: u64) -> PathBuf {
    dir.join(format!("g{gid}.rejoin-fence"))
}

/// Records that this blank replica must catch up to `index` before it votes again.
pub fn set_fence(dir: &Path, gid: u64, index: u64) -> std::io::Result<()> {
    let path = fence_path(dir, gid);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, index.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// If a fence is recorded, quarantines the replica and lifts it once the log (or an
/// installed snapshot) reaches the fence.
pub async fn enforce(dir: &Path, gid: u64, raft: &ShardRaft, q: &Quarantine) -> anyhow::Result<()> {
    let path = fence_path(dir, gid);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let fence: u64 = text.trim().parse()?;
    q.0.store(true, Ordering::Relaxed);
    raft.runtime_config().elect(false);
    tracing::info!(
        gid,
        fence,
        "joining a running group with a blank data dir: will vote once caught up to index {fence}"
    );
    let raft = raft.clone();
    let q = q.clone();
    tokio::spawn(async move {
        let caught_up = raft
            .wait(None)
            .metrics(
                |m| {
                    m.last_log_index
                        .max(m.snapshot.map(|s| s.index))
                        .is_some_and(|i| i >= fence)
                },
                "rejoin fence",
            )
            .await;
        if caught_up.is_ok() && std::fs::remove_file(&path).is_ok() {
            raft.runtime_config().elect(true);
            q.0.store(false, Ordering::Relaxed);
            tracing::info!(gid, fence, "caught up after a blank start: voting again");
        }
    });
    Ok(())
}
