//! Coalesced read barriers. openraft 0.9 has no lease read: each `ensure_linearizable`
//! costs a heartbeat round to a quorum. Reads that arrive while a round is running wait for
//! the next one (the running round may have started before they arrived, so it cannot
//! vouch for them), and that next round serves all of them at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{barrier_error, ShardError};
use crate::raft::ShardRaft;

type Waiter = oneshot::Sender<Result<(), ShardError>>;

pub struct ReadBarrier {
    raft: ShardRaft,
    timeout: Duration,
    state: Arc<Mutex<State>>,
    rounds: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    running: bool,
    waiters: Vec<Waiter>,
}

impl ReadBarrier {
    pub fn new(raft: ShardRaft, timeout: Duration) -> Self {
        ReadBarrier {
            raft,
            timeout,
            state: Arc::default(),
            rounds: Arc::default(),
        }
    }

    /// Resolves once a barrier round that started after this call has confirmed leadership
    /// and the state machine has applied everything committed before that round.
    pub async fn wait(&self) -> Result<(), ShardError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.waiters.push(tx);
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            tokio::spawn(run(
                self.raft.clone(),
                self.state.clone(),
                self.rounds.clone(),
                self.timeout,
            ));
        }
        rx.await
            .unwrap_or_else(|_| Err(ShardError::Fatal("read barrier stopped".into())))
    }

    /// Barrier rounds run so far (each one `ensure_linearizable`).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }
}

async fn run(raft: ShardRaft, state: Arc<Mutex<State>>, rounds: Arc<AtomicU64>, timeout: Duration) {
    loop {
        let waiters = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if st.waiters.is_empty() {
                st.running = false;
                return;
            }
            std::mem::take(&mut st.waiters)
        };
        rounds.fetch_add(1, Ordering::Relaxed);
        let result = match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(barrier_error(e)),
            Err(_) => Err(ShardError::NotLeader { leader: None }),
        };
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
