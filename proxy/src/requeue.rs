//! Letting the tasks already woken run before this one goes on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Puts the task at the back of its worker's run queue once: the tasks woken before it
/// run first (their requests, or replies, join this task's next write).
///
/// Not `tokio::task::yield_now`: that hands the waker to the scheduler's deferred list,
/// woken only after the worker next polls its I/O driver. With the two yields this
/// proxy takes per round trip (a client before answering, a backend before writing)
/// both deferred, now and then a connection was never polled again: a 10k-command
/// pipeline stalled in a quarter of runs or more, with the runtime idle. A task woken by
/// its own poll is queued again at once instead (tokio's harness reschedules it when
/// the poll returns), so there is no list to lose it from.
pub fn requeue() -> impl Future<Output = ()> {
    Requeue { done: false }
}

struct Requeue {
    done: bool,
}

impl Future for Requeue {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        self.done = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn it_wakes_its_task_before_returning_pending_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(requeue());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken before Pending");
        assert!(f.as_mut().poll(&mut cx).is_ready());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
