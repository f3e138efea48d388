//! SHUTDOWN: stops the process serving the connection (a `redraft node`, a `redraft
//! proxy`, or all of `redraft dev`), as SIGTERM does. Its main loop waits for the request
//! beside the signals, so the node or proxy stops the way it always does: a node's log is
//! already durable (`NOSAVE` and `SAVE` change nothing), its Raft core and bus stop, its
//! replicas elect a new leader if it led.

use std::sync::LazyLock;

use bytes::Bytes;
use tokio::sync::watch;

use super::Reply;

static REQUESTED: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// Runs `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]` with Redis 7.0's checks. None: the
/// stop is requested, and the connection closes without a reply, as Redis's does (clients
/// take the closed connection as success). A stop here is never pending, so there is no
/// shutdown for ABORT to abort.
pub fn command(argv: &[Bytes]) -> Option<Reply> {
    let (mut nosave, mut save, mut other, mut abort) = (false, false, false, false);
    for arg in &argv[1..] {
        match arg.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" | b"force" => other = true,
            b"abort" => abort = true,
            _ => return Some(Reply::syntax_error()),
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Some(Reply::syntax_error());
    }
    if abort {
        return Some(Reply::err("ERR No shutdown in progress."));
    }
    tracing::warn!("SHUTDOWN received: stopping");
    REQUESTED.send_replace(true);
    None
}

/// Returns once a SHUTDOWN has been received in this process.
pub async fn requested() {
    let mut rx = REQUESTED.subscribe();
    let _ = rx.wait_for(|r| *r).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;

    #[test]
    fn options_are_checked_as_redis_checks_them() {
        let syntax = Some(Reply::syntax_error());
        let none = Some(Reply::err("ERR No shutdown in progress."));
        for (words, want) in [
            ("SHUTDOWN NOSAVE SAVE", &syntax),
            ("SHUTDOWN ABORT NOW", &syntax),
            ("SHUTDOWN SAVE ABORT", &syntax),
            ("SHUTDOWN FOO", &syntax),
            ("SHUTDOWN abort", &none),
            ("SHUTDOWN ABORT ABORT", &none),
        ] {
            assert_eq!(&command(&argv(words)), want, "{words}");
        }
        assert!(!*REQUESTED.borrow(), "no stop was requested");
    }
}
