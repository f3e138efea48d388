//! Group commit: one thread owns the fsyncs. It takes every pending request, persists the
//! journal once (which covers every batch committed before the requests were sent), then
//! runs all their callbacks. Concurrent appends of all groups thus share fsyncs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use fjall::{Database, PersistMode};
use tokio::sync::watch;

/// Runs once the journal is durable.
pub(crate) type Done = Box<dyn FnOnce() + Send>;

pub(crate) struct Flusher {
    tx: Option<mpsc::Sender<Done>>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Health>,
}

/// What the flusher knows of the disk. Once an fsync fails, fjall's database is poisoned
/// and nothing committed since the last good fsync may be acknowledged: every pending and
/// later callback is dropped, never run. Raft sees its log write fail and stops the group
/// on this node; the node's owner learns of it through `failed` (a process exits).
pub(crate) struct Health {
    persists: AtomicU64,
    /// Fault injection for tests: every later fsync fails, as on a dying or full disk.
    inject: AtomicBool,
    failed: watch::Sender<Option<String>>,
}

impl Flusher {
    /// `gate` is held for each fsync; see [`crate::storage::Storage::commit`].
    pub(crate) fn start(db: Database, gate: Arc<Mutex<()>>) -> std::io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<Done>();
        let health = Arc::new(Health {
            persists: AtomicU64::new(0),
            inject: AtomicBool::new(false),
            failed: watch::Sender::new(None),
        });
        let h = health.clone();
        let thread = std::thread::Builder::new()
            .name("fjall-flusher".into())
            .spawn(move || run(db, rx, &h, &gate))?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
            health,
        })
    }

    /// Queues `done` for after the next fsync; it is dropped unrun if that fsync fails.
    pub(crate) fn submit(&self, done: Done) {
        let sent = match &self.tx {
            Some(tx) => tx.send(done).map_err(|e| e.0),
            None => Err(done),
        };
        if let Err(done) = sent {
            // Only during shutdown; never complete a flush that did not happen.
            tracing::error!("flusher is gone; dropping a flush request");
            drop(done);
        }
    }

    pub(crate) fn persist_count(&self) -> u64 {
        self.health.persists.load(Ordering::Relaxed)
    }

    pub(crate) fn fail_syncs(&self) {
        self.health.inject.store(true, Ordering::Relaxed);
    }

    /// Why the disk failed, once it has.
    pub(crate) fn failed(&self) -> watch::Receiver<Option<String>> {
        self.health.failed.subscribe()
    }
}

impl Drop for Flusher {
    /// Closes the queue and waits for the last round, so a reopen of the same dir finds the
    /// database lock released and the journal synced.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn run(db: Database, rx: mpsc::Receiver<Done>, health: &Health, gate: &Mutex<()>) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        pending.extend(rx.try_iter());
        let synced = {
            let _gate = gate.lock().unwrap_or_else(|e| e.into_inner());
            sync(&db, health)
        };
        if synced {
            for done in pending {
                done();
            }
        }
    }
    // Clean shutdown: make whatever was committed without a flush request durable too.
    sync(&db, health);
}

/// One fsync of the journal; false if the disk has failed (now or before).
///
/// `fdatasync`, as Redis's appendfsync and PostgreSQL's WAL use on Linux: fjall sizes a
/// journal file when it creates it, so appends change no metadata a read needs, and a
/// full fsync would only add a synchronous write of the inode for its mtime (4.3% of a
/// proxied SET's CPU, measured).
fn sync(db: &Database, health: &Health) -> bool {
    if health.failed.borrow().is_some() {
        return false;
    }
    let result = match health.inject.load(Ordering::Relaxed) {
        true => Err(fjall::Error::Io(std::io::Error::other(
            "injected fsync failure",
        ))),
        false => db.persist(PersistMode::SyncData),
    };
    match result {
        Ok(()) => {
            health.persists.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            // After a failed fsync the page cache may hold writes the disk lost (and a
            // retry could report success over them): never acknowledge anything again.
            tracing::error!(error = %e, "fsync of the fjall journal failed; this node stops acknowledging writes");
            health.failed.send_replace(Some(e.to_string()));
            false
        }
    }
}
