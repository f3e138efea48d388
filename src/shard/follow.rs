//! The shard group leader's half of resharding: follow the controller's configurations
//! one number at a time, pull the slots the group gains from their old owners, and have
//! the old owners drop them. Every step goes through the group's log (see
//! `shard::apply`) and is idempotent, so a new leader simply picks up from the replicated
//! state: a leader change, a restart or a lost reply repeats a step, never skips one.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::request::ClusterOp;
use super::rpc::{call_group, ClusterReply, ClusterRequest};
use super::{ShardGroup, WeakShardGroup};
use crate::bus::Bus;
use crate::cluster::slots::SlotTable;
use crate::cluster::NodeInfo;
use crate::cmd::WriteCmd;
use crate::raft::Gid;
use redraft_proxy::wire::Reply;

/// How often an idle leader asks the controller for the next configuration.
const POLL: Duration = Duration::from_millis(50);
/// Bytes of slot data per pull request and per log entry. Each chunk is a burst of work on
/// both groups that other requests queue behind: building it and the rows it adds run in
/// the idle scheduling class (`storage::idle`), but encoding, replicating and appending it
/// to each log do not. While a 100k-key slot moved (`benches/migration.py`, before that
/// work left the normal class), an unaffected client's p99 rose 12× with 512 KiB chunks,
/// 2.5-3× with 128 KiB and about 2× with 64 KiB.
const CHUNK_BYTES: u32 = 64 * 1024;
/// Keys deleted per log entry when a slot that left is purged, and the pause between two
/// such entries. Small entries often: the group's other writes apply behind each one, so
/// its size is their added latency (2000 keys raised an unaffected client's p99 about 4×
/// for the 2.5 s a 100k-key slot took to purge); the pause leaves most of the CPU to them.
const PURGE_KEYS: u32 = 400;
const PURGE_PAUSE: Duration = Duration::from_millis(10);
/// Bound on one request to another group, retries included.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs until the group is dropped.
pub async fn run(group: WeakShardGroup, bus: Bus, controllers: Vec<NodeInfo>) {
    let mut migration: Option<(u64, Instant)> = None;
    loop {
        let Some(g) = group.upgrade() else { return };
        let progressed = g.is_leader() && step(&g, &bus, &controllers, &mut migration).await;
        let purging = g.is_leader()
            && g.reader()
                .cluster()
                .slots
                .as_ref()
                .is_some_and(|t| !t.purging.is_empty());
        drop(g);
        if !progressed {
            tokio::time::sleep(if purging { PURGE_PAUSE } else { POLL }).await;
        }
    }
}

/// One round; true if it changed something (then the next round starts at once).
async fn step(
    g: &ShardGroup,
    bus: &Bus,
    controllers: &[NodeInfo],
    migration: &mut Option<(u64, Instant)>,
) -> bool {
    let meta = g.reader().cluster();
    let table = meta
        .slots
        .clone()
        .unwrap_or_else(|| SlotTable::new(g.gid()));
    if !table.purging.is_empty() {
        // One bounded batch per round: deleting a big slot never stalls the group.
        let cmd = WriteCmd::Cluster(ClusterOp::Purge { limit: PURGE_KEYS });
        // Not counted as progress: purges pace themselves (see PURGE_PAUSE).
        let _ = g.write(cmd, 64).await;
    }
    if table.settled() {
        if let Some((num, started)) = migration.take() {
            tracing::info!(
                gid = g.gid(),
                config = num,
                elapsed_ms = started.elapsed().as_millis() as u64,
                keys_in = table.progress.keys_in,
                "migration done"
            );
        }
        return advance(g, bus, controllers, table.config.num + 1).await;
    }
    let num = table.config.num;
    if migration.as_ref().is_none_or(|(n, _)| *n != num) {
        tracing::info!(
            gid = g.gid(),
            config = num,
            pulling = table.pulling.len(),
            offloading = table.offloading.len(),
            "migration started"
        );
        *migration = Some((num, Instant::now()));
    }
    let mut progressed = false;
    for (from, slots) in table.pulls() {
        let nodes = table.nodes_of(from).to_vec();
        match pull_slots(g, bus, num, from, &nodes, slots).await {
            Ok(()) => progressed = true,
            Err(e) => tracing::debug!(gid = g.gid(), from, error = %e, "pull failed, retrying"),
        }
    }
    for (from, slots) in table.unacked_by_source() {
        let nodes = table.nodes_of(from).to_vec();
        let req = ClusterRequest::Drop {
            num,
            slots: slots.clone(),
        };
        match call_group(bus, from, &nodes, req, Instant::now() + STEP_TIMEOUT).await {
            Ok(ClusterReply::Dropped) => {
                let cmd = WriteCmd::Cluster(ClusterOp::Acked { num, slots });
                progressed |= g.write(cmd, 64).await.is_ok();
            }
            other => tracing::debug!(gid = g.gid(), from, ?other, "drop not confirmed yet"),
        }
    }
    progressed
}

/// Asks the controller for configuration `next` and moves the group to it.
async fn advance(g: &ShardGroup, bus: &Bus, controllers: &[NodeInfo], next: u64) -> bool {
    let req = ClusterRequest::Query(Some(next));
    match call_group(bus, 0, controllers, req, Instant::now() + STEP_TIMEOUT).await {
        Ok(ClusterReply::Config(Some(cfg))) => {
            let size = 1024 + cfg.groups.values().map(Vec::len).sum::<usize>() * 64;
            let cmd = WriteCmd::Cluster(ClusterOp::Advance(cfg));
            matches!(g.write(cmd, size).await, Ok(Reply::Int(1)))
        }
        Ok(_) => false,
        Err(e) => {
            tracing::debug!(gid = g.gid(), error = %e, "controller unreachable");
            false
        }
    }
}

/// Copies `slots` from group `from` into this group's log, chunk by chunk; each slot
/// serves from the entry that completes it.
async fn pull_slots(
    g: &ShardGroup,
    bus: &Bus,
    num: u64,
    from: Gid,
    nodes: &[NodeInfo],
    mut slots: Vec<u16>,
) -> Result<(), String> {
    let started = Instant::now();
    let (total, mut keys) = (slots.len(), 0usize);
    // The next chunk is fetched while the previous one commits.
    let fetch = |slots: Vec<u16>, after: Option<Bytes>| {
        let (bus, nodes) = (bus.clone(), nodes.to_vec());
        tokio::spawn(async move {
            let req = ClusterRequest::Pull {
                num,
                slots,
                after,
                max_bytes: CHUNK_BYTES,
            };
            let t0 = Instant::now();
            let reply = call_group(&bus, from, &nodes, req, Instant::now() + STEP_TIMEOUT).await;
            (reply, t0.elapsed())
        })
    };
    let mut next = Some(fetch(slots.clone(), None));
    while let Some(pending) = next.take() {
        let (reply, pull_time) = pending.await.map_err(|e| e.to_string())?;
        let (kvs, dedup, clear, complete) = match reply? {
            ClusterReply::Chunk {
                kvs,
                dedup,
                started,
                complete,
            } => (kvs, dedup, started, complete),
            ClusterReply::NotYet => return Err(format!("group {from} is not at config {num} yet")),
            other => return Err(format!("group {from} answered {other:?}")),
        };
        if kvs.is_empty() && complete.is_empty() {
            return Err(format!("group {from} sent an empty chunk"));
        }
        slots.retain(|s| !complete.contains(s));
        if !slots.is_empty() {
            // Resume inside the first unfinished slot if this chunk ended in it.
            let after = kvs
                .last()
                .filter(|(k, _)| slots.first() == Some(&u16::from_be_bytes([k[0], k[1]])))
                .map(|(k, _)| k.clone());
            next = Some(fetch(slots.clone(), after));
        }
        keys += kvs.len();
        let size = kvs
            .iter()
            .chain(dedup.iter())
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
            + 4 * (clear.len() + complete.len())
            + 64;
        let fill = ClusterOp::Fill {
            num,
            clear,
            kvs,
            dedup,
            complete,
        };
        let t1 = Instant::now();
        g.write(WriteCmd::Cluster(fill), size)
            .await
            .map_err(|e| e.to_string())?;
        // Half as long again as the chunk took to commit: a migration takes at most about
        // two thirds of the groups' time, and backs off further when their own load slows
        // commits. (A quarter as long moved 100k keys in ~0.6 s instead of ~0.68 s, but
        // raised the unaffected p90 during the move by about 0.1 ms.)
        tokio::time::sleep(t1.elapsed() / 2).await;
        tracing::debug!(
            gid = g.gid(),
            from,
            bytes = size,
            pull_ms = pull_time.as_millis() as u64,
            fill_ms = t1.elapsed().as_millis() as u64,
            "pulled a chunk"
        );
    }
    tracing::info!(
        gid = g.gid(),
        from,
        slots = total,
        keys,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "slots installed"
    );
    Ok(())
}
