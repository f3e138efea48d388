//! CLIENT REPLY ON|OFF|SKIP: which of a connection's replies are sent. The command still
//! runs; only its reply is dropped (errors too), as in Redis.

use super::Reply;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplyMode {
    off: bool,
    /// CLIENT REPLY SKIP was the last command: the next reply is dropped.
    skip_next: bool,
    /// The request being run has its reply dropped.
    muted: bool,
}

impl ReplyMode {
    /// Called before each request, in the client's order.
    pub fn begin(&mut self) {
        self.muted = self.off || std::mem::take(&mut self.skip_next);
    }

    /// Whether the reply of the request being run is dropped.
    pub fn muted(&self) -> bool {
        self.muted
    }

    /// Drops the reply of the request being run (SHUTDOWN's: it closes the connection).
    pub fn mute(&mut self) {
        self.muted = true;
    }

    /// Runs `CLIENT REPLY <arg>`: ON answers +OK; OFF and SKIP answer nothing.
    pub fn set(&mut self, arg: &[u8]) -> Reply {
        match arg.to_ascii_lowercase().as_slice() {
            b"on" => {
                self.off = false;
                self.muted = false;
            }
            b"off" => {
                self.off = true;
                self.muted = true;
            }
            b"skip" => {
                self.skip_next = !self.off;
                self.muted = true;
            }
            _ => return Reply::syntax_error(),
        }
        Reply::ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs requests (None: some other command) and tells which replies are sent.
    fn sent(reqs: &[Option<&str>]) -> Vec<bool> {
        let mut m = ReplyMode::default();
        reqs.iter()
            .map(|r| {
                m.begin();
                if let Some(arg) = r {
                    m.set(arg.as_bytes());
                }
                !m.muted()
            })
            .collect()
    }

    #[test]
    fn client_reply_follows_redis() {
        // SKIP drops its own reply and the next one.
        assert_eq!(sent(&[Some("skip"), None, None]), [false, false, true]);
        // OFF drops everything until ON, whose +OK is sent.
        assert_eq!(
            sent(&[Some("OFF"), None, Some("skip"), None, Some("on"), None]),
            [false, false, false, false, true, true]
        );
        // SKIP twice drops three replies; ON right after SKIP is answered.
        assert_eq!(
            sent(&[Some("skip"), Some("skip"), None, None]),
            [false, false, false, true]
        );
        assert_eq!(sent(&[Some("skip"), Some("on"), None]), [false, true, true]);
        // A bad argument changes nothing and is answered, unless replies are off.
        let mut m = ReplyMode::default();
        m.begin();
        assert_eq!(m.set(b"maybe"), Reply::syntax_error());
        assert!(!m.muted());
        assert_eq!(
            sent(&[Some("off"), Some("maybe"), None]),
            [false, false, false]
        );
    }
}
