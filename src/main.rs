//! The `confab` binary: reads its settings, starts the SIP transports, the
//! focus and the media server, and stops cleanly on Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use confab::{Server, ServerConfig};

// glibc's malloc keeps what a flood freed: after 20,000 INVITEs the heap was
// back to 15 MB but RSS stayed near 130 MB, scattered over per-thread arenas
// it never trims. jemalloc gives freed pages back to the OS after a few seconds.
// Around it, the Opus codec's temporary arrays go to a scratch stack, so the
// mixer tick allocates nothing (see opus_codec::ScratchAlloc).
#[global_allocator]
static ALLOC: opus_codec::ScratchAlloc<tikv_jemallocator::Jemalloc> =
    opus_codec::ScratchAlloc::new(tikv_jemallocator::Jemalloc);

/// confab: a centralized SIP conferencing server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address for SIP over UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:5060", env = "CONFAB_SIP_LISTEN")]
    sip_listen: SocketAddr,
    /// Address for SIP over TLS [default: 0.0.0.0:5061 when --sip-tls-cert is given].
    #[arg(long, env = "CONFAB_SIP_TLS_LISTEN")]
    sip_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for SIP over TLS (with --sip-tls-key); read
    /// again on SIGHUP.
    #[arg(long, requires = "sip_tls_key", env = "CONFAB_SIP_TLS_CERT")]
    sip_tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --sip-tls-cert.
    #[arg(long, requires = "sip_tls_cert", env = "CONFAB_SIP_TLS_KEY")]
    sip_tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificates trusted besides the system's roots when confab
    /// calls out over TLS (a private CA).
    #[arg(long, env = "CONFAB_SIP_TLS_CA")]
    sip_tls_ca: Option<std::path::PathBuf>,
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
    /// First and last RTP port (even start), e.g. 20000-29999.
    #[arg(long, default_value = "20000-29999")]
    rtp_ports: String,
    /// IP to put in SDP and Contact when listening on 0.0.0.0.
    #[arg(long)]
    advertise_ip: Option<IpAddr>,
    /// Only rooms named with --room exist (no room is created on first join).
    #[arg(long)]
    no_auto_create: bool,
    /// A room that always exists (repeatable).
    #[arg(long = "room")]
    rooms: Vec<String>,
    /// Most participants per room.
    #[arg(long, default_value_t = 64)]
    max_room_size: usize,
    /// Most simultaneous calls from one IP address (beyond: 503).
    #[arg(long, default_value_t = 200)]
    max_calls_per_source: usize,
    /// Milliseconds to ring (180) before answering.
    #[arg(long, default_value_t = 0)]
    answer_delay_ms: u64,
    /// Smallest session interval accepted (RFC 4028 Min-SE), seconds.
    #[arg(long, default_value_t = 90)]
    min_se: u32,
    /// Seconds without RTP after which a call is ended.
    #[arg(long, default_value_t = 30)]
    rtp_timeout_secs: u64,
    /// An AOR allowed to subscribe to any room's conference state besides its
    /// participants (repeatable; `*` allows anyone).
    #[arg(long = "watcher")]
    watchers: Vec<String>,
    /// Shortest subscription accepted, seconds (423 below).
    #[arg(long, default_value_t = 60)]
    subscription_min: u32,
    /// Changes closer together than this many ms are coalesced into one NOTIFY.
    #[arg(long, default_value_t = 200)]
    notify_min_interval_ms: u64,
    /// Who must authenticate (digest, RFC 7616/8760) against the users of the
    /// API (`confabctl user add`): `off` (From is believed), `rooms` (rooms
    /// marked members-only, and every REGISTER), `required` (every INVITE,
    /// SUBSCRIBE, REFER, MESSAGE and REGISTER from outside).
    #[arg(long, value_enum, default_value = "off", env = "CONFAB_AUTH")]
    auth: AuthArg,
    /// Digest algorithms offered, most preferred first: `md5`, `sha-256`
    /// (RFC 8760). MD5 alone by default, because phones older than RFC 8760
    /// fail on a SHA-256 challenge instead of trying the next (SIPp 3.6,
    /// baresip 1.0); `sha-256,md5` where every phone knows SHA-256
    /// (liblinphone does).
    #[arg(long, value_delimiter = ',', default_value = "md5")]
    auth_algorithms: Vec<String>,
    /// Failed authentications from one address within a minute after which
    /// it is ignored for --auth-lockout-secs.
    #[arg(long, default_value_t = 10)]
    auth_max_failures: u32,
    /// Seconds an address that failed too often is ignored.
    #[arg(long, default_value_t = 600)]
    auth_lockout_secs: u64,
    /// A pattern dial-outs (API and REFER) may go to besides registered
    /// users, `*` matching anything, e.g. `sip:*@10.1.2.*` (repeatable;
    /// none: registered users only).
    #[arg(long = "dial-out-allow")]
    dial_out_allow: Vec<String>,
    /// Dial-outs one room may place per minute.
    #[arg(long, default_value_t = 30)]
    dial_out_per_minute: u32,
    /// Shortest registration accepted, seconds (423 below).
    #[arg(long, default_value_t = 60)]
    register_min_expires: u32,
    /// Longest registration granted, seconds.
    #[arg(long, default_value_t = 7200)]
    register_max_expires: u32,
    /// SRTP with SDES keys (RFC 4568) for calls in: `off` (RTP/SAVP offers
    /// get 488), `optional` (either), `required` (RTP/AVP offers get 488).
    #[arg(long, value_enum, default_value = "optional", env = "CONFAB_SRTP")]
    srtp: SrtpArg,
    /// Take SDES keys over UDP and TCP too, where anyone on the path can
    /// read them (by default only over TLS).
    #[arg(long)]
    srtp_sdes_in_clear: bool,
    /// The Server and User-Agent header confab sends (empty: none).
    #[arg(long)]
    server_header: Option<String>,
    /// Address for the gRPC conference control API.
    #[arg(long, default_value = "127.0.0.1:50051", env = "CONFAB_GRPC_LISTEN")]
    grpc_listen: SocketAddr,
    /// Directory for the policy database and the first admin token.
    #[arg(long, default_value = "confab-data", env = "CONFAB_DATA_DIR")]
    data_dir: std::path::PathBuf,
    /// PEM certificate chain: serve the gRPC API over TLS (with --grpc-tls-key).
    #[arg(long, requires = "grpc_tls_key", env = "CONFAB_GRPC_TLS_CERT")]
    grpc_tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --grpc-tls-cert.
    #[arg(long, requires = "grpc_tls_cert", env = "CONFAB_GRPC_TLS_KEY")]
    grpc_tls_key: Option<std::path::PathBuf>,
    /// gRPC requests per second each API token may make (twice that in a burst).
    #[arg(long, default_value_t = 1000.0)]
    grpc_rate: f64,
    /// Mixer threads; rooms are spread over them [default: one per core].
    #[arg(long)]
    mixer_threads: Option<usize>,
    /// RTP receive threads; participants are spread over them [default: one per core].
    #[arg(long)]
    rtp_rx_threads: Option<usize>,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log: String,
}

/// `--srtp`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SrtpArg {
    Off,
    Optional,
    Required,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AuthArg {
    Off,
    Rooms,
    Required,
}

fn config(args: &Args) -> anyhow::Result<ServerConfig> {
    let (lo, hi) = args
        .rtp_ports
        .split_once('-')
        .ok_or_else(|| anyhow::anyhow!("--rtp-ports must look like 20000-29999"))?;
    let mut c = ServerConfig {
        sip_listen: args.sip_listen,
        tcp: !args.no_tcp,
        max_message: args.max_message,
        tcp_idle: Duration::from_secs(args.tcp_idle_secs),
        max_tcp_per_ip: args.max_tcp_per_ip,
        rate_per_source: args.rate_per_source,
        ..ServerConfig::default()
    }
    .media_ip_from_sip();
    c.sip_tls = confab::SipTls {
        listen: args.sip_tls_listen.or_else(|| {
            args.sip_tls_cert
                .as_ref()
                .map(|_| SocketAddr::new(args.sip_listen.ip(), 5061))
        }),
        cert: args.sip_tls_cert.clone(),
        key: args.sip_tls_key.clone(),
        ca: args.sip_tls_ca.clone(),
    };
    if c.sip_tls.listen.is_some() && c.sip_tls.cert.is_none() {
        anyhow::bail!("--sip-tls-listen needs --sip-tls-cert and --sip-tls-key");
    }
    c.media.port_min = lo.trim().parse()?;
    c.media.port_max = hi.trim().parse()?;
    // Many rooms use every core; one room lives on one mixer thread, but
    // its participants' receiving is spread over every receive thread.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    c.media.mixer_threads = args.mixer_threads.unwrap_or(cores);
    c.media.rx_threads = args.rtp_rx_threads.unwrap_or(cores);
    let f = &mut c.focus;
    f.timers.t1 = Duration::from_millis(args.t1_ms);
    f.advertise_ip = args.advertise_ip;
    f.auto_create = !args.no_auto_create;
    f.rooms = args.rooms.clone();
    f.max_room_size = args.max_room_size;
    f.max_calls_per_source = args.max_calls_per_source;
    f.answer_delay = Duration::from_millis(args.answer_delay_ms);
    f.min_se = args.min_se;
    f.rtp_timeout = Duration::from_secs(args.rtp_timeout_secs);
    f.watchers = args.watchers.clone();
    f.subscription_min = args.subscription_min;
    f.notify_min_interval = Duration::from_millis(args.notify_min_interval_ms);
    f.auth.mode = match args.auth {
        AuthArg::Off => focus::AuthMode::Off,
        AuthArg::Rooms => focus::AuthMode::Rooms,
        AuthArg::Required => focus::AuthMode::Required,
    };
    f.auth.realm = policy_server::service::SIP_REALM.into();
    f.auth.algorithms = args
        .auth_algorithms
        .iter()
        .map(|a| {
            focus::Algorithm::from_name(a.trim()).ok_or_else(|| {
                anyhow::anyhow!("--auth-algorithms: {a:?} is neither sha-256 nor md5")
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if f.auth.algorithms.is_empty() {
        anyhow::bail!("--auth-algorithms: name at least one");
    }
    f.auth.max_failures = args.auth_max_failures.max(1);
    f.auth.lockout = Duration::from_secs(args.auth_lockout_secs);
    f.dial_out.allow = args.dial_out_allow.clone();
    f.dial_out.per_room_per_minute = args.dial_out_per_minute;
    f.registrar.min_expires = args.register_min_expires;
    f.registrar.max_expires = args.register_max_expires.max(args.register_min_expires);
    f.srtp = focus::SrtpPolicy {
        mode: match args.srtp {
            SrtpArg::Off => focus::SrtpMode::Off,
            SrtpArg::Optional => focus::SrtpMode::Optional,
            SrtpArg::Required => focus::SrtpMode::Required,
        },
        sdes_in_clear: args.srtp_sdes_in_clear,
    };
    if let Some(s) = &args.server_header {
        f.server = s.clone();
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| args.log.clone());
    let mut filter = tracing_subscriber::EnvFilter::new(&directives);
    if !directives.contains("webrtc_sdp") {
        // webrtc-sdp logs every attribute it does not model (a=tool,
        // a=minptime) at WARN; the sdp crate reports them at debug instead.
        filter = filter.add_directive("webrtc_sdp=error".parse()?);
    }
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let mut cfg = config(&args)?;
    cfg.policy = Some(policy_server::PolicyConfig {
        listen: args.grpc_listen,
        data_dir: args.data_dir.clone(),
        tls: match (&args.grpc_tls_cert, &args.grpc_tls_key) {
            (Some(cert), Some(key)) => Some(policy_server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        rate_per_token: args.grpc_rate,
    });
    let server = Server::start(cfg).await?;
    if server
        .policy
        .as_ref()
        .is_some_and(|p| p.admin_token.is_some())
    {
        tracing::warn!(file = %args.data_dir.join("admin.token").display(), "first start: the admin token for the gRPC API is in this file");
    }
    tracing::info!(udp = %server.sip_udp, tcp = ?server.sip_tcp, tls = ?server.sip_tls, "confab listening for SIP; call sip:ROOM@host to join ROOM");
    run_until_stopped(&server).await;
    server.shutdown().await;
    tracing::info!("confab stopped");
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM; on SIGHUP reads the TLS certificate again.
async fn run_until_stopped(server: &Server) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let reload = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let reload = std::future::pending::<()>();
        tokio::select! {
            _ = shutdown_signal() => return,
            _ = reload => match server.reload_tls() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate read again"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "SIGHUP: TLS certificate not reloaded"),
            },
        }
    }
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
