//! Group commit: one thread owns the fsyncs. It takes every pending request, persists the
//! journal once (which covers every batch committed before the requests were sent), then
//! runs all their callbacks. Concurrent appends of all groups thus share fsyncs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use fjall::{Database, PersistMode};

/// Runs once the journal is durable.
pub(crate) type Done = Box<dyn FnOnce() + Send>;

pub(crate) struct Flusher {
    tx: Option<mpsc::Sender<Done>>,
    thread: Option<JoinHandle<()>>,
    persists: Arc<AtomicU64>,
}

impl Flusher {
    pub(crate) fn start(db: Database) -> std::io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<Done>();
        let persists = Arc::new(AtomicU64::new(0));
        let count = persists.clone();
        let thread = std::thread::Builder::new()
            .name("fjall-flusher".into())
            .spawn(move || run(db, rx, count))?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
            persists,
        })
    }

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
        self.persists.load(Ordering::Relaxed)
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

fn run(db: Database, rx: mpsc::Receiver<Done>, persists: Arc<AtomicU64>) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        pending.extend(rx.try_iter());
        sync(&db, &persists);
        for done in pending {
            done();
        }
    }
    // Clean shutdown: make whatever was committed without a flush request durable too.
    sync(&db, &persists);
}

fn sync(db: &Database, persists: &AtomicU64) {
    let mode = if std::env::var("XNOSYNC").is_ok() {
        PersistMode::Buffer
    } else {
        PersistMode::SyncAll
    };
    if let Err(e) = db.persist(mode) {
        // fjall is poisoned after a failed fsync; acknowledged-but-lost writes are the only
        // alternative to stopping here.
        tracing::error!(error = %e, "fsync of the fjall journal failed; aborting");
        std::process::abort();
    }
    persists.fetch_add(1, Ordering::Relaxed);
}
