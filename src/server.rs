//! The client-port accept loop: enforces `maxclients` and owns every connection task, so
//! stopping the loop drops (and so closes) every client connection.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::node::NodeShared;
use crate::resp::connection;

pub async fn run(listener: TcpListener, node: Arc<NodeShared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
                let max = node.maxclients.load(Ordering::Relaxed);
                let fd = stream.as_raw_fd();
                match node.clients.register(peer.to_string(), laddr, fd, max) {
                    Some(guard) => {
                        conns.spawn(connection::serve(stream, node.clone(), guard));
                    }
                    None => {
                        conns.spawn(async move {
                            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                        });
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// File descriptors a process needs besides its clients: Raft and bus connections, fjall's
/// tables and journals.
const RESERVED_FDS: u64 = 1024;

/// Raises the soft limit on open files so `maxclients` clients fit (as Redis does at start):
/// up to the hard limit, which only an administrator can raise. Returns the limit now in
/// force; warns if it is too low.
pub fn raise_fd_limit(maxclients: usize) -> u64 {
    let want = maxclients as u64 + RESERVED_FDS;
    let now = rlimit::increase_nofile_limit(want).unwrap_or(0);
    if now < want {
        tracing::warn!(
            limit = now,
            maxclients,
            "the open-files limit is below maxclients + {RESERVED_FDS}: raise it (ulimit -n) or clients beyond it are refused"
        );
    }
    now
}
