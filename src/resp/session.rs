//! Per-connection state (protocol, flags) over the client registry that CLIENT LIST and
//! INFO read, which the node shares with the proxy (`wire::clients`).

use std::sync::Arc;

use redraft_proxy::wire::kill::KillSwitch;
use redraft_proxy::wire::reply_mode::ReplyMode;
use redraft_proxy::wire::Protocol;

pub use redraft_proxy::wire::clients::{ClientGuard, ClientState, Clients};

/// The connection's own view: protocol and flags that only it reads.
pub struct Session {
    pub client: ClientGuard,
    pub proto: Protocol,
    /// QUIT was received: close once the replies so far are written.
    pub quit: bool,
    /// MONITOR was received: once its `+OK` is written, the connection streams commands.
    pub monitor: bool,
    /// CLIENT REPLY's state.
    pub reply_mode: ReplyMode,
    /// Thrown once the client stops sending: a pending WAIT answers at once.
    pub hangup: Arc<KillSwitch>,
    /// WATCHed keys and the commands queued since MULTI.
    pub tx: crate::cmd::transaction::Tx,
}

impl Session {
    pub fn id(&self) -> u64 {
        self.client.state.id
    }

    /// RESET: the connection as a fresh one (RESP2, no name, replies on, out of MONITOR
    /// mode); its library info stays, as in Redis.
    pub fn reset(&mut self) {
        self.proto = Protocol::Resp2;
        self.reply_mode = ReplyMode::default();
        self.monitor = false;
        self.tx = Default::default();
        self.client.state.update(|i| i.name = bytes::Bytes::new());
    }
}
