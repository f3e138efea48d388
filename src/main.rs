//! The `redraft` binary: parse the command line, set up logging, run the chosen role until
//! SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use redraft::bus::FaultTable;
use redraft::cli::{Cli, Cmd};
use redraft::dev::{LocalCluster, Threads};
use redraft::node::Node;
use tracing_subscriber::EnvFilter;

/// glibc's malloc was a quarter of a write's CPU (per-command buffers, fjall's memtable
/// nodes freed in bulk); mimalloc's thread-local free lists make both cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks the kernel for transparent huge pages and returns freed memory after a
/// few milliseconds, so a burst of large allocations (a slot migration's chunks) faulted in
/// and zeroed whole 2 MiB pages over and over: a third of the CPU of a migration, which
/// took 1.5 s instead of 0.9 s.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    let _ = redraft_proxy::wire::info::ALLOCATOR.set("mimalloc");
    let cli = Cli::parse();
    // `dev` without --dir runs in a temporary directory, removed only after the runtime
    // (and every task still holding the databases) is gone.
    let tmp = match &cli.command {
        Cmd::Dev(args) if args.dir.is_none() => Some(tempdir()?),
        _ => None,
    };
    let tmp_dir = tmp.as_ref().map(|t| t.0.clone());
    let result = match &cli.command {
        Cmd::Dev(args) => {
            let n = match args.threads {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            let threads = Threads::new(n)?;
            let handles = threads.handles();
            let result = threads.main.block_on(run(cli, tmp_dir, handles));
            drop(threads);
            result
        }
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(run(cli, tmp_dir, Vec::new()));
            drop(runtime);
            result
        }
    };
    drop(tmp);
    result
}

/// `threads`: for `dev`, the runtimes to spread the nodes over (see [`Threads`]).
async fn run(
    cli: Cli,
    tmp: Option<std::path::PathBuf>,
    threads: Vec<tokio::runtime::Handle>,
) -> anyhow::Result<()> {
    // Quiet by default: warnings, plus redraft's own start-up and leadership lines.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,redraft=info,openraft=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    let maxclients = match &cli.command {
        Cmd::Node(args) => args.tuning.maxclients,
        Cmd::Proxy(args) => args.maxclients,
        Cmd::Dev(args) => args.tuning.maxclients,
    };
    redraft::server::raise_fd_limit(maxclients);
    match cli.command {
        Cmd::Node(args) => {
            let config = args.to_config()?;
            let node = Node::start(config, Arc::new(FaultTable::default())).await?;
            println!(
                "redraft node {} serving RESP on {}",
                node.shared.config.id,
                node.addr().client_addr()
            );
            tokio::select! {
                _ = shutdown_signal() => {}
                why = node.failed() => {
                    // As Redis with appendfsync always: a node whose disk fails exits, and
                    // comes back (restarted by its supervisor) from what is on disk.
                    tracing::error!(error = %why, "the disk failed; exiting");
                    node.stop().await;
                    std::process::exit(1);
                }
            }
            tracing::info!("shutting down");
            node.stop().await;
        }
        Cmd::Proxy(args) => {
            let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port)).await?;
            let proxy = redraft_proxy::Proxy::start(
                listener,
                args.proxy.config(args.controller.clone(), args.maxclients),
            )?;
            println!("redraft proxy serving RESP on {}", proxy.addr);
            shutdown_signal().await;
            proxy.stop();
        }
        Cmd::Dev(args) => {
            let dir = match (&args.dir, tmp) {
                (Some(d), _) => d.clone(),
                (None, Some(t)) => t,
                (None, None) => anyhow::bail!("no data directory"),
            };
            let cluster = LocalCluster::start(
                dir.clone(),
                args.base_port,
                args.groups,
                args.replicas,
                &args.tuning,
                &threads,
            )
            .await?;
            println!(
                "redraft dev: {} data group(s) of {} replicas and a controller of 3, data in {}",
                args.groups,
                args.replicas,
                dir.display()
            );
            if !cluster
                .wait_settled(cluster.config, Duration::from_secs(60))
                .await
            {
                println!("warning: the groups have not settled on their slots yet");
            }
            let leaders = cluster.leaders(Duration::from_secs(10)).await;
            for n in &cluster.nodes {
                let g = n.group();
                let role = if g.gid() == 0 { "controller" } else { "group" };
                let lead = if leaders.get(&g.gid()) == Some(n.addr()) {
                    " (leader)"
                } else {
                    ""
                };
                println!(
                    "  {role} {} node {} on {}{lead}",
                    g.gid(),
                    n.shared.config.id,
                    n.addr().client_addr()
                );
            }
            let proxy = if args.port != 0 {
                let seeds = cluster.controller_addrs();
                let config = args.proxy.config(seeds, args.tuning.maxclients);
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
                let proxy = redraft_proxy::Proxy::start(listener, config)?;
                if !proxy.ready(Duration::from_secs(30)).await {
                    println!("warning: the proxy does not know every slot's owner yet");
                }
                println!(
                    "  proxy on {}: try redis-cli -p {} set hello world",
                    proxy.addr, args.port
                );
                Some(proxy)
            } else {
                None
            };
            if let Some(l) = leaders.get(&1) {
                println!(
                    "cluster clients: redis-cli -c -p {} (-c follows MOVED to the owning group)",
                    l.client_port
                );
            }
            shutdown_signal().await;
            if let Some(p) = proxy {
                p.stop();
            }
            cluster.stop().await;
        }
    }
    Ok(())
}

/// A temporary directory removed when the guard drops.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> std::io::Result<TempDir> {
    let p = std::env::temp_dir().join(format!("redraft-dev-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(TempDir(p))
}

/// SIGINT, SIGTERM, or a client's SHUTDOWN.
async fn shutdown_signal() {
    tokio::select! {
        _ = signal() => {}
        _ = redraft_proxy::wire::shutdown::requested() => {}
    }
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
