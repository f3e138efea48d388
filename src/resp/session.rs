//! Per-connection state (protocol, name, library info) and the node-wide client registry
//! that CLIENT LIST and INFO read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use redraft_proxy::wire::kill::KillSwitch;
use redraft_proxy::wire::reply_mode::ReplyMode;
use redraft_proxy::wire::Protocol;

/// What other connections may read about a client (CLIENT LIST).
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub info: Mutex<ClientInfo>,
    /// Thrown by CLIENT KILL from another connection.
    pub kill: KillSwitch,
}

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub name: Bytes,
    pub lib_name: Bytes,
    pub lib_ver: Bytes,
    pub last_cmd: String,
    pub last_interaction: Instant,
    pub proto: Protocol,
}

impl ClientState {
    pub fn info(&self) -> ClientInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut ClientInfo)) {
        f(&mut self.info.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One CLIENT LIST / CLIENT INFO line, in Redis's field order (no trailing newline).
    pub fn line(&self) -> String {
        let i = self.info();
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&i.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(i.last_interaction).as_secs(),
            if i.last_cmd.is_empty() { "NULL" } else { &i.last_cmd },
            if i.proto == Protocol::Resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&i.lib_name),
            String::from_utf8_lossy(&i.lib_ver),
        )
    }
}

/// Every connected client of this node.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientState>>>,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused by maxclients.
    pub rejected: AtomicU64,
    /// Commands processed since start.
    pub total_commands: AtomicU64,
    connected: AtomicUsize,
}

impl Clients {
    /// Registers a client, or None when `maxclients` are already connected.
    pub fn register(
        self: &Arc<Self>,
        addr: String,
        laddr: String,
        maxclients: usize,
    ) -> Option<ClientGuard> {
        if self.connected.fetch_add(1, Ordering::SeqCst) >= maxclients {
            self.connected.fetch_sub(1, Ordering::SeqCst);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let state = Arc::new(ClientState {
            id,
            addr,
            laddr,
            created: now,
            info: Mutex::new(ClientInfo {
                name: Bytes::new(),
                lib_name: Bytes::new(),
                lib_ver: Bytes::new(),
                last_cmd: String::new(),
                last_interaction: now,
                proto: Protocol::Resp2,
            }),
            kill: KillSwitch::default(),
        });
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, state.clone());
        Some(ClientGuard {
            clients: self.clone(),
            state,
        })
    }

    /// CONFIG RESETSTAT: the counters INFO stats shows start again from zero.
    pub fn reset_stats(&self) {
        self.total_connections.store(0, Ordering::Relaxed);
        self.total_commands.store(0, Ordering::Relaxed);
        self.rejected.store(0, Ordering::Relaxed);
    }

    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn all(&self) -> Vec<Arc<ClientState>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Unregisters its client when the connection ends, however it ends.
pub struct ClientGuard {
    clients: Arc<Clients>,
    pub state: Arc<ClientState>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.state.id);
        self.clients.connected.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection's own view: protocol and flags that only it reads.
pub struct Session {
    pub client: ClientGuard,
    pub proto: Protocol,
    /// QUIT was received: close once the replies so far are written.
    pub quit: bool,
    /// CLIENT REPLY's state.
    pub reply_mode: ReplyMode,
}

impl Session {
    pub fn id(&self) -> u64 {
        self.client.state.id
    }
}
