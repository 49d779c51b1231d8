//! The `confab` binary: reads its settings, starts the SIP transports and
//! the focus, and stops cleanly on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use focus::{Focus, FocusConfig};
use sip::transport::{SourceLimits, TransportConfig, Transports};
use sip::ParseLimits;

/// confab: a centralized SIP conferencing server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address for SIP over UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:5060", env = "CONFAB_SIP_LISTEN")]
    sip_listen: SocketAddr,
    /// Disable SIP over TCP.
    #[arg(long)]
    no_tcp: bool,
    /// Largest SIP message accepted, in bytes (larger ones get 513 or are dropped).
    #[arg(long, default_value_t = 65536)]
    max_message: usize,
    /// Seconds after which an idle TCP connection is closed.
    #[arg(long, default_value_t = 300)]
    tcp_idle_secs: u64,
    /// Most TCP connections from one IP address.
    #[arg(long, default_value_t = 64)]
    max_tcp_per_ip: usize,
    /// Sustained SIP messages per second accepted from one IP address.
    #[arg(long, default_value_t = 2000.0)]
    rate_per_source: f64,
    /// Transaction timer T1 in milliseconds.
    #[arg(long, default_value_t = 500)]
    t1_ms: u64,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let transport_config = TransportConfig {
        udp: Some(args.sip_listen),
        tcp: (!args.no_tcp).then_some(args.sip_listen),
        limits: ParseLimits {
            max_message: args.max_message,
            ..ParseLimits::default()
        },
        tcp_idle: Duration::from_secs(args.tcp_idle_secs),
        max_tcp_per_ip: args.max_tcp_per_ip,
        source_limits: SourceLimits {
            messages_per_sec: args.rate_per_source,
            burst: args.rate_per_source * 2.0,
            ..SourceLimits::default()
        },
        ..TransportConfig::default()
    };
    let (transports, inbound) = Transports::start(transport_config)
        .await
        .with_context(|| format!("cannot listen for SIP on {}", args.sip_listen))?;
    tracing::info!(udp = ?transports.udp_addr(), tcp = ?transports.tcp_addr(), "confab listening for SIP");

    let mut focus_config = FocusConfig::default();
    focus_config.timers.t1 = Duration::from_millis(args.t1_ms);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let focus = Focus::new(focus_config, seed);
    focus::io::run(focus, transports, inbound, shutdown_signal()).await;
    tracing::info!("confab stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot wait for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
