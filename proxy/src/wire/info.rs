//! INFO sections that the node and the proxy both give about themselves, from the same
//! sources: their client registry and their process.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use super::clients::Clients;

/// The allocator INFO names (`mem_allocator`); the binary sets it at start.
pub static ALLOCATOR: OnceLock<&'static str> = OnceLock::new();

/// `# Clients`.
pub fn clients(s: &mut String, clients: &Clients, maxclients: usize) {
    let _ = write!(
        s,
        "# Clients\r\nconnected_clients:{}\r\nmaxclients:{maxclients}\r\nblocked_clients:0\r\n",
        clients.connected(),
    );
}

/// `# Memory`: the process's resident memory stands for Redis's allocator figure.
pub fn memory(s: &mut String) {
    let rss = resident_bytes();
    let _ = write!(
        s,
        "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{rss}\r\nmaxmemory:0\r\nmem_allocator:{}\r\n",
        rss as f64 / 1048576.0,
        ALLOCATOR.get().copied().unwrap_or("libc"),
    );
}

/// `# Stats`: what CONFIG RESETSTAT sets back to zero.
pub fn stats(s: &mut String, clients: &Clients) {
    let _ = write!(
        s,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\ntotal_error_replies:{}\r\n",
        clients.total_connections.load(Ordering::Relaxed),
        clients.total_commands.load(Ordering::Relaxed),
        clients.rejected.load(Ordering::Relaxed),
        clients.stats.error_replies(),
    );
}

/// Resident set size from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
