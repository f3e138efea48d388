//! WAIT numreplicas timeout: its arguments, with Redis's errors, and how many replicas hold
//! a log position. A node answers WAIT for its group; the proxy for every group.
//!
//! Every write redraft acknowledges is already on a quorum, fsynced; WAIT tells how many
//! replicas (followers, learners) beyond the leader hold it, and waits for more if asked.

use std::time::Duration;

use bytes::Bytes;

use super::request::string2ll;
use super::Reply;

/// Redis's answer to WAIT at a replica; a follower gives it too.
pub const AT_A_REPLICA: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitArgs {
    pub replicas: i64,
    /// None: wait as long as it takes (a timeout of 0).
    pub timeout: Option<Duration>,
}

/// `argv` is `WAIT numreplicas timeout`, arity checked.
pub fn parse(argv: &[Bytes]) -> Result<WaitArgs, Reply> {
    let replicas = string2ll(&argv[1])
        .ok_or_else(|| Reply::err("ERR value is not an integer or out of range"))?;
    let timeout = string2ll(&argv[2])
        .ok_or_else(|| Reply::err("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Reply::err("ERR timeout is negative"));
    }
    Ok(WaitArgs {
        replicas,
        timeout: (timeout > 0).then(|| Duration::from_millis(timeout as u64)),
    })
}

/// How many replicas have everything up to `target`, given each one's replicated index.
pub fn acked(offsets: impl IntoIterator<Item = u64>, target: u64) -> i64 {
    offsets.into_iter().filter(|&o| o >= target).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &str, b: &str) -> Result<WaitArgs, Reply> {
        parse(&[
            Bytes::from_static(b"WAIT"),
            Bytes::copy_from_slice(a.as_bytes()),
            Bytes::copy_from_slice(b.as_bytes()),
        ])
    }

    #[test]
    fn arguments_and_errors_as_redis_7_0() {
        assert_eq!(
            args("2", "0"),
            Ok(WaitArgs {
                replicas: 2,
                timeout: None
            })
        );
        assert_eq!(
            args("-1", "15"),
            Ok(WaitArgs {
                replicas: -1,
                timeout: Some(Duration::from_millis(15))
            })
        );
        assert_eq!(
            args("x", "-1"),
            Err(Reply::err("ERR value is not an integer or out of range")),
            "numreplicas is read first"
        );
        assert_eq!(
            args("99999999999999999999", "0"),
            Err(Reply::err("ERR value is not an integer or out of range"))
        );
        assert_eq!(
            args("1", "1.5"),
            Err(Reply::err("ERR timeout is not an integer or out of range"))
        );
        assert_eq!(args("1", "-1"), Err(Reply::err("ERR timeout is negative")));
    }

    #[test]
    fn replicas_count_once_they_reach_the_target() {
        assert_eq!(acked([5, 7, 9], 7), 2);
        assert_eq!(acked([], 0), 0);
        assert_eq!(acked([0, 0], 0), 2);
    }
}
