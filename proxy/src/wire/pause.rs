//! CLIENT PAUSE timeout [WRITE|ALL] and CLIENT UNPAUSE: a server's clients stop being
//! served, all of their commands or only their writes, until the timeout or UNPAUSE. As in
//! Redis 7, a paused command waits (the client is blocked), and under ALL so does UNPAUSE.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::request::string2ll;
use super::table::lookup;
use super::Reply;

/// Until when, and whether every command (else only writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Paused {
    until: Instant,
    all: bool,
}

/// A server's pause.
#[derive(Debug, Default)]
pub struct Pause {
    /// Cheap to check for every command: set while a pause may be in force.
    active: AtomicBool,
    state: Mutex<Option<Paused>>,
    /// Wakes waiters on UNPAUSE.
    lifted: Notify,
}

impl Pause {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Paused>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// CLIENT PAUSE `argv[2]` [`argv[3]`], with Redis's errors. A pause already in force
    /// keeps the later end and the stricter mode, as in Redis.
    pub fn command(&self, argv: &[Bytes]) -> Reply {
        if argv.len() > 4 {
            return Reply::err(
                "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
            );
        }
        let ms = match string2ll(&argv[2]) {
            Some(ms) if ms < 0 => return Reply::err("ERR timeout is negative"),
            Some(ms) => ms as u64,
            None => return Reply::err("ERR timeout is not an integer or out of range"),
        };
        let all = match argv.get(3) {
            None => true,
            Some(m) if m.eq_ignore_ascii_case(b"all") => true,
            Some(m) if m.eq_ignore_ascii_case(b"write") => false,
            Some(_) => return Reply::err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
        };
        self.pause(Duration::from_millis(ms), all);
        Reply::ok()
    }

    fn pause(&self, timeout: Duration, all: bool) {
        let now = Instant::now();
        let mut state = self.lock();
        let mut next = Paused {
            until: now + timeout,
            all,
        };
        if let Some(p) = state.filter(|p| p.until > now) {
            next.until = next.until.max(p.until);
            next.all |= p.all;
        }
        *state = Some(next);
        self.active.store(true, Ordering::Relaxed);
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self) -> Reply {
        *self.lock() = None;
        self.active.store(false, Ordering::Relaxed);
        self.lifted.notify_waiters();
        Reply::ok()
    }

    /// Waits while a pause holds a command that writes (`write`) or any command.
    pub async fn wait(&self, write: bool) {
        loop {
            let lifted = self.lifted.notified();
            tokio::pin!(lifted);
            // Registered before the state is read, so an UNPAUSE in between is not missed.
            lifted.as_mut().enable();
            let until = {
                let mut state = self.lock();
                match *state {
                    Some(p) if p.until <= Instant::now() => {
                        *state = None;
                        self.active.store(false, Ordering::Relaxed);
                        return;
                    }
                    Some(p) if p.all || write => p.until,
                    _ => return,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = lifted => {}
            }
        }
    }
}

/// Whether a WRITE pause holds `argv`: a command that writes (for a proxy's `ONCE` stamp,
/// the command it wraps).
pub fn holds_under_write(argv: &[Bytes]) -> bool {
    let Some(spec) = argv.first().and_then(|n| lookup(n)) else {
        return false;
    };
    if spec.name == "once" {
        return argv.len() > 3 && holds_under_write(&argv[3..]);
    }
    spec.has_flag("write")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;
    use std::sync::Arc;

    #[test]
    fn writes_are_told_by_the_table() {
        assert!(holds_under_write(&argv("SET k v")));
        assert!(holds_under_write(&argv("incr k")));
        assert!(holds_under_write(&argv("ONCE 7 1:0 APPEND k v")));
        assert!(!holds_under_write(&argv("ONCE 7 0:0:1 GET k")));
        assert!(!holds_under_write(&argv("GET k")));
        assert!(!holds_under_write(&argv("CLIENT UNPAUSE")));
        assert!(!holds_under_write(&argv("NOSUCH")));
    }

    #[test]
    fn arguments_are_checked_as_redis_checks_them() {
        let p = Pause::default();
        for (cmd, err) in [
            (
                "CLIENT PAUSE x",
                "ERR timeout is not an integer or out of range",
            ),
            ("CLIENT PAUSE -1", "ERR timeout is negative"),
            (
                "CLIENT PAUSE 10 foo",
                "ERR CLIENT PAUSE mode must be WRITE or ALL",
            ),
            (
                "CLIENT PAUSE 10 write extra",
                "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
            ),
        ] {
            assert_eq!(p.command(&argv(cmd)), Reply::err(err), "{cmd}");
        }
        assert!(!p.is_active(), "nothing paused by a refused command");
    }

    #[tokio::test(start_paused = true)]
    async fn write_pause_holds_writes_until_its_end() {
        let p = Arc::new(Pause::default());
        assert_eq!(p.command(&argv("CLIENT PAUSE 1000 WRITE")), Reply::ok());
        let start = Instant::now();
        p.wait(false).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "a read goes on");
        p.wait(true).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1000),
            "a write waits"
        );
        assert!(!p.is_active(), "over");
    }

    #[tokio::test(start_paused = true)]
    async fn unpause_lifts_it_and_a_later_pause_keeps_the_stricter_mode() {
        let p = Arc::new(Pause::default());
        p.command(&argv("CLIENT PAUSE 5000 ALL"));
        p.command(&argv("CLIENT PAUSE 100 WRITE"));
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.wait(false).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "still ALL, until 5 s");
        assert_eq!(p.unpause(), Reply::ok());
        waiter.await.unwrap();
        assert!(!p.is_active());
        // A pause of 0 ms holds nothing.
        p.command(&argv("CLIENT PAUSE 0"));
        let start = Instant::now();
        p.wait(true).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
