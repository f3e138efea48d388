//! Faster, better-spread elections after a leader dies.
//!
//! openraft 0.9 checks election timeouts on a tick of 1.5 × heartbeat, adds the leader
//! lease (election_timeout_max) on top, and draws the random timeout once per process. Two
//! followers started together thus often time out on the same tick, split the vote, and
//! failover takes 1–2 s. The watchdog watches when this node last heard AppendEntries and,
//! after a silence drawn afresh each time from (lease + 50 ms, lease + 250 ms] — the lease
//! has then passed on the other followers too, so they can grant the vote — triggers the
//! election itself, checked every 10 ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::ServerState;

use super::{now_ms, Inner};

/// When this node last received AppendEntries for the group (unix ms; 0 = never since start).
#[derive(Clone, Default, Debug)]
pub struct LeaderContact(Arc<AtomicU64>);

impl LeaderContact {
    pub fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }
    fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const CHECK: Duration = Duration::from_millis(10);

pub(super) async fn run(
    group: Weak<Inner>,
    contact: LeaderContact,
    quarantine: super::rejoin::Quarantine,
    lease: Duration,
) {
    let lease = lease.as_millis() as u64;
    // Replicas of `redraft dev` share a process and a start millisecond: the node id keeps
    // their timeouts apart.
    let seed = crate::db::keys::fnv1a64(
        format!(
            "{}/{}/{}/{}",
            now_ms(),
            std::process::id(),
            inner_id(&group),
            gid_of(&group)
        )
        .as_bytes(),
    );
    let mut rng = Rng::new(seed);
    let mut threshold = lease + 50 + rng.below(200);
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = group.upgrade() else { return };
        let last = contact.last();
        if last == 0 || quarantine.active() || now_ms().saturating_sub(last) < threshold {
            continue;
        }
        let voter_follower = {
            let m = inner.raft.metrics();
            let m = m.borrow();
            m.state == ServerState::Follower
                && m.membership_config
                    .membership()
                    .get_joint_config()
                    .iter()
                    .any(|c| c.contains(&m.id))
        };
        if voter_follower {
            tracing::info!(
                gid = inner.gid,
                silent_ms = now_ms() - last,
                "no word from the leader; starting an election"
            );
            let _ = inner.raft.trigger().elect().await;
        }
        // Give this attempt time to finish before another, with a fresh random wait.
        contact.touch();
        threshold = lease + 50 + rng.below(200);
    }
}

fn inner_id(group: &Weak<Inner>) -> u64 {
    group.upgrade().map(|g| g.id).unwrap_or(0)
}

fn gid_of(group: &Weak<Inner>) -> u64 {
    group.upgrade().map(|g| g.gid).unwrap_or(0)
}

/// xorshift64*: enough to spread election timeouts, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
