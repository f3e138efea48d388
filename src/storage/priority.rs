//! Slot migration's bulk work, run where it delays requests the least: on a thread of the
//! idle scheduling class, which the kernel runs only on a core that no request wants.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use super::blocking;

/// How long [`idle`] work may wait for a spare core before its caller does it instead.
/// Past this the machine is saturated: the work then runs at the caller's priority, as
/// the requests do, rather than starve what waits for it (the next chunk of a migration,
/// or the applies of the group behind it).
const IDLE_WAIT: Duration = Duration::from_millis(20);

type Job = Box<dyn FnOnce() + Send>;

/// Runs pure bulk work (it holds no lock and may run twice: building a migration chunk,
/// or the rows a chunk adds) on the process's idle-class thread, which the kernel runs
/// only on a core no other thread wants and preempts the moment a request's thread wakes.
/// A nice value does not yield that fast: a woken thread that has used more than its
/// share waits for the running one's slice. The thread lives as long as the process:
/// a thread started per call cost a stack's page faults and, at its exit, an unmap that
/// interrupts every core running the process.
///
/// An idle thread can starve on a busy machine, and it cannot raise its own priority
/// again without CAP_SYS_NICE: after [`IDLE_WAIT`] the caller does the work itself.
pub fn idle<T: Send + 'static>(f: impl Fn() -> T + Send + Sync + 'static) -> T {
    let f = Arc::new(f);
    let (tx, rx) = mpsc::sync_channel(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let (work, skip) = (f.clone(), dropped.clone());
    let job: Job = Box::new(move || {
        if !skip.load(Ordering::Acquire) {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| work())));
        }
    });
    blocking(|| {
        if idle_thread().is_some_and(|t| t.send(job).is_ok()) {
            match rx.recv_timeout(IDLE_WAIT) {
                Ok(Ok(out)) => return out,
                Ok(Err(panic)) => resume_unwind(panic),
                Err(_) => {
                    dropped.store(true, Ordering::Release);
                    tracing::debug!("idle work starved; its caller does it");
                }
            }
        }
        f()
    })
}

/// The idle-class thread's queue, started on first use (None if it could not start).
fn idle_thread() -> Option<&'static mpsc::Sender<Job>> {
    static THREAD: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("redraft-idle".into())
                .spawn(move || {
                    to_idle_class();
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Moves the calling thread to the idle scheduling class (Linux's SCHED_IDLE); elsewhere,
/// or if refused, it keeps its priority.
fn to_idle_class() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;
    use thread_priority::ThreadSchedulePolicy::Normal;
    use thread_priority::{thread_schedule_policy, NormalThreadSchedulePolicy as P};

    /// The tests share the one idle thread, which the second stalls on purpose.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn idle_work_runs_in_the_idle_class_and_panics_reach_the_caller() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let before = thread_schedule_policy().unwrap();
        let (thread, policy) = idle(|| (std::thread::current().id(), thread_schedule_policy()));
        assert_ne!(thread, std::thread::current().id());
        assert_eq!(policy.unwrap(), Normal(P::Idle));
        assert_eq!(thread_schedule_policy().unwrap(), before);
        let panicked = std::panic::catch_unwind(|| idle(|| -> u8 { panic!("in idle") }));
        assert!(panicked.is_err());
        // The thread survives a panic and serves the next caller.
        assert_eq!(idle(|| std::thread::current().id()), thread);
    }

    #[test]
    fn starved_idle_work_is_done_by_its_caller() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // The first run (the idle thread's) stalls until the caller has done the work
        // itself: the caller must stop waiting for it.
        let (release, stalled) = mpsc::channel::<()>();
        let stalled = Mutex::new(stalled);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let caller = std::thread::current().id();
        let ran_on = idle(move || {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = stalled.lock().unwrap().recv();
            }
            std::thread::current().id()
        });
        assert_eq!(ran_on, caller);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop(release);
    }
}
