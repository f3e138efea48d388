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

/// `# CPU`: the process's CPU time, and its children's, in seconds, from /proc (in clock
/// ticks of 1/100 s: Linux's USER_HZ). Redis's `*_main_thread` lines are left out: the
/// work is spread over a runtime's threads.
pub fn cpu(s: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime, stime, cutime and cstime are the 14th to the 17th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|t| t.parse::<f64>().unwrap_or(0.0) / 100.0)
        .collect();
    let t = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
    let _ = write!(
        s,
        "# CPU\r\nused_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:{:.6}\r\nused_cpu_user_children:{:.6}\r\n",
        t(1),
        t(0),
        t(3),
        t(2),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_reads_this_process_in_seconds() {
        // Spin until the kernel has counted a tick of this process (10 ms of CPU).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut s = String::new();
        let mut x = 0u64;
        loop {
            s.clear();
            cpu(&mut s);
            if !s.contains("used_cpu_user:0.000000") || std::time::Instant::now() > deadline {
                break;
            }
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
        }
        let fields: Vec<(&str, f64)> = s
            .lines()
            .skip(1)
            .map(|l| {
                let (name, v) = l.split_once(':').expect("name:value");
                (name, v.parse().expect("seconds"))
            })
            .collect();
        let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [
                "used_cpu_sys",
                "used_cpu_user",
                "used_cpu_sys_children",
                "used_cpu_user_children"
            ]
        );
        assert!(fields[0].1 + fields[1].1 > 0.0, "{s}");
    }
}
