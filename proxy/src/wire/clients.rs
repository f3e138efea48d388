//! A server's client connections as CLIENT LIST, CLIENT KILL and INFO see them, and the
//! CLIENT subcommands about them. The node and the proxy keep the same registry and answer
//! CLIENT the same way: one implementation, so their texts cannot drift apart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::hello::{check_name, client_list_filter, no_evict};
use super::kill::{client_kill_filter, KillSwitch};
use super::reply_mode::ReplyMode;
use super::table::{lookup, lookup_sub};
use super::{Protocol, Reply};

/// What other connections may read about a client.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    /// The socket's file descriptor, as Redis shows it.
    pub fd: i32,
    pub created: Instant,
    info: Mutex<ClientInfo>,
    /// Thrown by CLIENT KILL from another connection.
    pub kill: KillSwitch,
}

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub name: Bytes,
    pub lib_name: Bytes,
    pub lib_ver: Bytes,
    /// Full name of the last command (`client|list`); None before the first one and after
    /// an unknown one, as Redis shows `cmd=NULL`.
    pub last_cmd: Option<&'static str>,
    pub last_interaction: Instant,
    pub proto: Protocol,
}

impl ClientState {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32) -> ClientState {
        let now = Instant::now();
        ClientState {
            id,
            addr,
            laddr,
            fd,
            created: now,
            info: Mutex::new(ClientInfo {
                name: Bytes::new(),
                lib_name: Bytes::new(),
                lib_ver: Bytes::new(),
                last_cmd: None,
                last_interaction: now,
                proto: Protocol::Resp2,
            }),
            kill: KillSwitch::default(),
        }
    }

    pub fn info(&self) -> ClientInfo {
        self.lock().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut ClientInfo)) {
        f(&mut self.lock())
    }

    /// Records what the connection last ran, in which protocol: once per read from the
    /// client, not per command.
    pub fn touch(&self, last_cmd: Option<&'static str>, proto: Protocol) {
        let now = Instant::now();
        self.update(|i| {
            i.last_cmd = last_cmd;
            i.last_interaction = now;
            i.proto = proto;
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientInfo> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One CLIENT LIST / CLIENT INFO line, in Redis's field order (no trailing newline).
    /// Buffer and memory figures are not tracked and show 0.
    pub fn line(&self) -> String {
        let i = self.info();
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&i.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(i.last_interaction).as_secs(),
            i.last_cmd.unwrap_or("NULL"),
            if i.proto == Protocol::Resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&i.lib_name),
            String::from_utf8_lossy(&i.lib_ver),
        )
    }
}

/// The full name of the command `argv` names (`get`, `client|list`), as CLIENT LIST's
/// `cmd` shows it: looked up without checking the arity, as Redis records it.
pub fn full_name(argv: &[Bytes]) -> Option<&'static str> {
    let spec = lookup(argv.first()?)?;
    if !spec.is_container() {
        return Some(spec.name);
    }
    argv.get(1)
        .and_then(|sub| lookup_sub(spec, sub))
        .map(|s| s.name)
        .or(Some(spec.name))
}

/// Every connected client of a server, and the counters INFO shows about them.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientState>>>,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused by maxclients.
    pub rejected: AtomicU64,
    /// Commands processed since start.
    pub total_commands: AtomicU64,
    /// Per command and per error code (INFO commandstats, errorstats, latencystats).
    pub stats: super::command_stats::CommandStats,
    /// SLOWLOG's (CONFIG RESETSTAT leaves it, as in Redis).
    pub slowlog: super::slowlog::SlowLog,
    /// CLIENT PAUSE's.
    pub pause: super::pause::Pause,
    connected: AtomicUsize,
}

impl Clients {
    /// Registers a client, or None when `maxclients` are already connected.
    pub fn register(
        self: &Arc<Self>,
        addr: String,
        laddr: String,
        fd: i32,
        maxclients: usize,
    ) -> Option<ClientGuard> {
        if self.connected.fetch_add(1, Ordering::SeqCst) >= maxclients {
            self.connected.fetch_sub(1, Ordering::SeqCst);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let state = Arc::new(ClientState::new(id, addr, laddr, fd));
        self.lock().insert(id, state.clone());
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
        self.stats.reset();
    }

    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientState>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientState>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Unregisters its client when the connection ends, however it ends.
#[derive(Debug)]
pub struct ClientGuard {
    clients: Arc<Clients>,
    pub state: Arc<ClientState>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.state.id);
        self.clients.connected.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's own state that CLIENT reads and changes.
pub struct Conn<'a> {
    pub me: &'a ClientState,
    pub proto: Protocol,
    pub reply_mode: &'a mut ReplyMode,
    /// Set when the connection is to close once this reply is written (CLIENT KILL of
    /// itself).
    pub quit: &'a mut bool,
}

/// CLIENT ID | SETNAME name | GETNAME | SETINFO LIB-NAME|LIB-VER value | INFO |
/// LIST [TYPE normal|master|replica|pubsub] [ID id ...] | KILL addr:port |
/// KILL [ID id] [TYPE type] [USER user] [ADDR addr] [LADDR addr] [SKIPME yes|no] |
/// NO-EVICT ON|OFF | PAUSE timeout [WRITE|ALL] | UNPAUSE | REPLY ON|OFF|SKIP | HELP. The arity is checked already.
pub fn client(argv: &[Bytes], conn: Conn<'_>, clients: &Clients) -> Reply {
    let me = conn.me;
    // Redis records the command before running it: CLIENT LIST shows itself as such.
    me.touch(full_name(argv), conn.proto);
    let sub = argv[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"id" => Reply::Int(me.id as i64),
        b"setname" => match check_name(&argv[2]) {
            Ok(()) => {
                let name = argv[2].clone();
                me.update(|i| i.name = name);
                Reply::ok()
            }
            Err(e) => e,
        },
        b"getname" => {
            let name = me.info().name;
            if name.is_empty() {
                Reply::Null
            } else {
                Reply::Bulk(name)
            }
        }
        b"setinfo" => setinfo(me, &argv[2], &argv[3]),
        b"info" => Reply::Verbatim(Bytes::from(format!("{}\n", me.line()))),
        b"list" => {
            let filter = match client_list_filter(argv) {
                Ok(f) => f,
                Err(e) => return e,
            };
            let all = clients.all();
            let mut text = String::new();
            for c in filter.pick(&all, |c| c.id) {
                text.push_str(&c.line());
                text.push('\n');
            }
            Reply::Verbatim(Bytes::from(text))
        }
        b"kill" => {
            let filter = match client_kill_filter(argv) {
                Ok(f) => f,
                Err(e) => return e,
            };
            let all = clients.all();
            let (reply, myself) = filter.kill(
                me.id,
                all.iter()
                    .map(|c| (c.id, c.addr.as_str(), c.laddr.as_str(), &c.kill)),
            );
            *conn.quit |= myself;
            reply
        }
        b"no-evict" => no_evict(&argv[2]),
        b"pause" => clients.pause.command(argv),
        b"unpause" => clients.pause.unpause(),
        b"reply" => conn.reply_mode.set(&argv[2]),
        b"help" => Reply::Array(HELP.iter().map(|&l| Reply::status(l)).collect()),
        _ => Reply::err(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            super::table::err_text(super::table::cut(&argv[1], 128))
        )),
    }
}

/// CLIENT SETINFO (Redis 7.2's): the value is checked before the attribute, whose error
/// names it as typed.
fn setinfo(me: &ClientState, attr: &Bytes, value: &Bytes) -> Reply {
    if !value.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Reply::err(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        ));
    }
    let value = value.clone();
    match attr.to_ascii_lowercase().as_slice() {
        b"lib-name" => me.update(|i| i.lib_name = value),
        b"lib-ver" => me.update(|i| i.lib_ver = value),
        _ => {
            return Reply::err(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(attr)
            ))
        }
    }
    Reply::ok()
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ID",
    "    Return the ID of the current connection.",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [TYPE <type>] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::argv;

    fn run(args: &str, me: &ClientState, clients: &Clients, proto: Protocol) -> Reply {
        let mut mode = ReplyMode::default();
        let mut quit = false;
        let conn = Conn {
            me,
            proto,
            reply_mode: &mut mode,
            quit: &mut quit,
        };
        client(&argv(args), conn, clients)
    }

    fn text(r: Reply) -> String {
        match r {
            Reply::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a verbatim string: {other:?}"),
        }
    }

    #[test]
    fn full_names_as_client_list_shows_them() {
        assert_eq!(full_name(&argv("GET k")), Some("get"));
        assert_eq!(full_name(&argv("client LIST")), Some("client|list"));
        // An unknown subcommand still names its container; the arity is not checked.
        assert_eq!(full_name(&argv("client nosuch")), Some("client"));
        assert_eq!(full_name(&argv("config")), Some("config"));
        assert_eq!(full_name(&argv("nosuch a")), None);
        assert_eq!(full_name(&[]), None);
    }

    #[test]
    fn lines_show_each_clients_own_protocol_command_and_name() {
        let clients = Arc::new(Clients::default());
        let a = clients
            .register("1.2.3.4:5".into(), "127.0.0.1:6379".into(), 7, 10)
            .unwrap();
        let b = clients
            .register("1.2.3.4:6".into(), "127.0.0.1:6379".into(), 8, 10)
            .unwrap();
        assert_eq!(
            run("CLIENT SETNAME bee", &b.state, &clients, Protocol::Resp3),
            Reply::ok()
        );
        b.state.touch(full_name(&argv("GET k")), Protocol::Resp3);
        let list = text(run("CLIENT LIST", &a.state, &clients, Protocol::Resp2));
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 2, "{list}");
        assert!(lines[0]
            .starts_with("id=1 addr=1.2.3.4:5 laddr=127.0.0.1:6379 fd=7 name= age=0 idle=0 "));
        assert!(lines[0].contains(" cmd=client|list ") && lines[0].contains(" resp=2 "));
        assert!(lines[1].starts_with("id=2 addr=1.2.3.4:6 laddr=127.0.0.1:6379 fd=8 name=bee "));
        assert!(lines[1].contains(" cmd=get ") && lines[1].contains(" resp=3 "));
        assert!(list.ends_with('\n') && !list.contains('\r'));
        // A fresh connection has run nothing.
        let c = clients.register("x:1".into(), "y:2".into(), 9, 10).unwrap();
        assert!(c.state.line().contains(" cmd=NULL "));
        drop(b);
        assert_eq!(clients.all().len(), 2);
        assert_eq!(clients.connected(), 2);
    }

    #[test]
    fn setinfo_and_errors_as_redis_words_them() {
        let clients = Arc::new(Clients::default());
        let a = clients.register("a:1".into(), "b:2".into(), 7, 10).unwrap();
        let me = &a.state;
        assert_eq!(
            run(
                "CLIENT SETINFO LIB-NAME redis-py",
                me,
                &clients,
                Protocol::Resp2
            ),
            Reply::ok()
        );
        assert_eq!(
            run("CLIENT SETINFO Lib-Ver a\tb", me, &clients, Protocol::Resp2),
            Reply::err("ERR Lib-Ver cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(
            run("CLIENT SETINFO color red", me, &clients, Protocol::Resp2),
            Reply::err("ERR Unrecognized option 'color'")
        );
        assert!(me.line().ends_with(" lib-name=redis-py lib-ver="));
        assert_eq!(
            run("CLIENT GETNAME", me, &clients, Protocol::Resp2),
            Reply::Null
        );
        assert_eq!(
            run("CLIENT ID", me, &clients, Protocol::Resp2),
            Reply::Int(1)
        );
        assert_eq!(
            run("CLIENT NOSUCH", me, &clients, Protocol::Resp2),
            Reply::err("ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")
        );
    }

    #[test]
    fn maxclients_refuses_and_counts() {
        let clients = Arc::new(Clients::default());
        let a = clients.register("a:1".into(), "b:2".into(), 7, 1).unwrap();
        assert!(clients.register("a:2".into(), "b:2".into(), 8, 1).is_none());
        assert_eq!(clients.rejected.load(Ordering::Relaxed), 1);
        drop(a);
        assert!(clients.register("a:3".into(), "b:2".into(), 9, 1).is_some());
        assert_eq!(clients.total_connections.load(Ordering::Relaxed), 2);
    }
}
