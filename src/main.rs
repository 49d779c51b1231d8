//! The `confab` binary: reads its settings, starts the SIP transports, the
//! focus and the media server, and stops cleanly on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use confab::settings::{AuthArg, Settings, StaticRoom};
use confab::{Server, ServerConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod stop_signal;
use stop_signal::StopSignal;

// glibc's malloc keeps what a flood freed: after 20,000 INVITEs the heap was
// back to 15 MB but RSS stayed near 130 MB, scattered over per-thread arenas
// it never trims. jemalloc gives freed pages back to the OS after a few seconds.
// Around it, the Opus codec's temporary arrays go to a scratch stack, so the
// mixer tick allocates nothing (see opus_codec::ScratchAlloc).
#[global_allocator]
static ALLOC: opus_codec::ScratchAlloc<tikv_jemallocator::Jemalloc> =
    opus_codec::ScratchAlloc::new(tikv_jemallocator::Jemalloc);

/// A setting that has a default: `effective` filled it in.
macro_rules! need {
    ($s:expr, $key:literal, $field:ident) => {
        $s.$field
            .clone()
            .ok_or_else(|| anyhow::anyhow!(concat!($key, " has no value")))?
    };
}

/// The server's configuration from the effective settings.
fn config(s: &Settings) -> anyhow::Result<ServerConfig> {
    let rtp_ports = need!(s, "rtp-ports", rtp_ports);
    let (lo, hi) = rtp_ports
        .split_once('-')
        .ok_or_else(|| anyhow::anyhow!("rtp-ports must look like 20000-29999"))?;
    let sip_listen = need!(s, "sip-listen", sip_listen);
    let mut c = ServerConfig {
        sip_listen,
        tcp: !need!(s, "no-tcp", no_tcp),
        max_message: need!(s, "max-message", max_message),
        tcp_idle: Duration::from_secs(need!(s, "tcp-idle-secs", tcp_idle_secs)),
        max_tcp_per_ip: need!(s, "max-tcp-per-ip", max_tcp_per_ip),
        rate_per_source: need!(s, "rate-per-source", rate_per_source),
        ..ServerConfig::default()
    }
    .media_ip_from_sip();
    if s.sip_tls_cert.is_some() != s.sip_tls_key.is_some() {
        anyhow::bail!("sip-tls-cert and sip-tls-key go together");
    }
    c.sip_tls = confab::SipTls {
        listen: s.sip_tls_listen.or_else(|| {
            s.sip_tls_cert
                .as_ref()
                .map(|_| SocketAddr::new(sip_listen.ip(), 5061))
        }),
        cert: s.sip_tls_cert.clone(),
        key: s.sip_tls_key.clone(),
        ca: s.sip_tls_ca.clone(),
    };
    if c.sip_tls.listen.is_some() && c.sip_tls.cert.is_none() {
        anyhow::bail!("sip-tls-listen needs sip-tls-cert and sip-tls-key");
    }
    c.metrics_listen = s.metrics_listen;
    c.cdr = s.cdr.as_deref().map(confab::cdr::CdrSink::parse);
    c.media.port_min = lo.trim().parse()?;
    c.media.port_max = hi.trim().parse()?;
    // Many rooms use every core; one room is mixed on one mixer thread, but
    // its participants' receiving is spread over every receive thread.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    c.media.mixer_threads = s.mixer_threads.unwrap_or(cores);
    c.media.rx_threads = s.rtp_rx_threads.unwrap_or(cores);
    // A big room's sends go out through every receive thread.
    c.media.offload_sends_from = need!(s, "rtp-send-offload-from", rtp_send_offload_from);
    let rooms = need!(s, "room", rooms);
    let f = &mut c.focus;
    f.timers.t1 = Duration::from_millis(need!(s, "t1-ms", t1_ms));
    f.advertise_ip = s.advertise_ip;
    f.auto_create = !need!(s, "no-auto-create", no_auto_create);
    f.rooms = rooms.into_iter().map(|r| r.name).collect();
    f.max_room_size = need!(s, "max-room-size", max_room_size);
    f.answer_delay = Duration::from_millis(need!(s, "answer-delay-ms", answer_delay_ms));
    f.min_se = need!(s, "min-se", min_se);
    f.rtp_timeout = Duration::from_secs(need!(s, "rtp-timeout-secs", rtp_timeout_secs));
    f.watchers = need!(s, "watcher", watchers);
    f.subscription_min = need!(s, "subscription-min", subscription_min);
    f.notify_min_interval =
        Duration::from_millis(need!(s, "notify-min-interval-ms", notify_min_interval_ms));
    f.auth.mode = match need!(s, "auth", auth) {
        AuthArg::Off => focus::AuthMode::Off,
        AuthArg::Rooms => focus::AuthMode::Rooms,
        AuthArg::Required => focus::AuthMode::Required,
    };
    f.auth.realm = policy_server::service::SIP_REALM.into();
    f.auth.algorithms = need!(s, "auth-algorithms", auth_algorithms)
        .iter()
        .map(|a| {
            focus::Algorithm::from_name(a.trim())
                .ok_or_else(|| anyhow::anyhow!("auth-algorithms: {a:?} is neither sha-256 nor md5"))
        })
        .collect::<anyhow::Result<_>>()?;
    if f.auth.algorithms.is_empty() {
        anyhow::bail!("auth-algorithms: name at least one");
    }
    f.dial_out.allow = need!(s, "dial-out-allow", dial_out_allow);
    let min_expires = need!(s, "register-min-expires", register_min_expires);
    f.registrar.min_expires = min_expires;
    f.registrar.max_expires =
        need!(s, "register-max-expires", register_max_expires).max(min_expires);
    f.srtp = focus::SrtpPolicy {
        mode: need!(s, "srtp", srtp).into(),
        sdes_in_clear: need!(s, "srtp-sdes-in-clear", srtp_sdes_in_clear),
    };
    if let Some(h) = &s.server_header {
        f.server = h.clone();
    }
    let limits = live_limits(s)?;
    f.max_calls_per_source = limits.max_calls_per_source;
    f.dial_out.per_room_per_minute = limits.dial_out_per_minute;
    f.auth.max_failures = limits.auth_max_failures.max(1);
    f.auth.lockout = limits.auth_lockout;
    Ok(c)
}

/// The focus's limits that SIGHUP may change.
fn live_limits(s: &Settings) -> anyhow::Result<focus::LiveLimits> {
    Ok(focus::LiveLimits {
        max_calls_per_source: need!(s, "max-calls-per-source", max_calls_per_source),
        dial_out_per_minute: need!(s, "dial-out-per-minute", dial_out_per_minute),
        auth_max_failures: need!(s, "auth-max-failures", auth_max_failures),
        auth_lockout: Duration::from_secs(need!(s, "auth-lockout-secs", auth_lockout_secs)),
    })
}

/// The keys SIGHUP applies; any other change waits for a restart.
const LIVE_KEYS: &[&str] = &[
    "log",
    "rate-per-source",
    "max-calls-per-source",
    "dial-out-per-minute",
    "auth-max-failures",
    "auth-lockout-secs",
    "grpc-rate",
    "room",
    "sip-tls-cert",
    "sip-tls-key",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Settings::parse();
    let settings = Settings::effective(&flags)?;
    if flags.print_config {
        print!("{}", settings.to_toml_redacted());
        return Ok(());
    }
    let log = Log::init(&need!(settings, "log", log))?;
    if let Some(file) = &flags.config {
        tracing::info!(file = %file.display(), "settings read");
    }
    let mut cfg = config(&settings)?;
    let data_dir = need!(settings, "data-dir", data_dir);
    cfg.policy = Some(policy_server::PolicyConfig {
        listen: need!(settings, "grpc-listen", grpc_listen),
        data_dir: data_dir.clone(),
        database_url: settings.database_url.clone(),
        tls: match (&settings.grpc_tls_cert, &settings.grpc_tls_key) {
            (Some(cert), Some(key)) => Some(policy_server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => anyhow::bail!("grpc-tls-cert and grpc-tls-key go together"),
        },
        rate_per_token: need!(settings, "grpc-rate", grpc_rate),
    });
    let server = Server::start(cfg).await?;
    // Before the server says it listens: from here a signal is kept until
    // read. (Until here Ctrl-C stops a start that hangs, as by default.)
    let mut stop = StopSignal::listen();
    if server
        .policy
        .as_ref()
        .is_some_and(|p| p.admin_token.is_some())
    {
        tracing::warn!(file = %data_dir.join("admin.token").display(), "first start: the admin token for the gRPC API is in this file");
    }
    declare_rooms(&server, settings.rooms.as_deref().unwrap_or_default(), &[]).await;
    tracing::info!(udp = %server.sip_udp, tcp = ?server.sip_tcp, tls = ?server.sip_tls, "confab listening for SIP; call sip:ROOM@host to join ROOM");
    let drain_timeout =
        Duration::from_secs(need!(settings, "drain-timeout-secs", drain_timeout_secs));
    run_until_stopped(&server, &flags, settings, &log, &mut stop).await;
    drain(&server, drain_timeout, &mut stop).await;
    server.shutdown().await;
    tracing::info!("confab stopped");
    Ok(())
}

/// The log filter, replaceable while running.
struct Log {
    handle: tracing_subscriber::reload::Handle<
        tracing_subscriber::EnvFilter,
        tracing_subscriber::Registry,
    >,
}

impl Log {
    fn init(directives: &str) -> anyhow::Result<Self> {
        let (filter, handle) = tracing_subscriber::reload::Layer::new(Self::filter(directives)?);
        tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer())
            .init();
        Ok(Self { handle })
    }

    /// RUST_LOG wins over the setting.
    fn filter(directives: &str) -> anyhow::Result<tracing_subscriber::EnvFilter> {
        let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| directives.to_owned());
        let mut filter = tracing_subscriber::EnvFilter::try_new(&directives)?;
        if !directives.contains("webrtc_sdp") {
            // webrtc-sdp logs every attribute it does not model (a=tool,
            // a=minptime) at WARN; the sdp crate reports them at debug instead.
            filter = filter.add_directive("webrtc_sdp=error".parse()?);
        }
        Ok(filter)
    }

    fn set(&self, directives: &str) -> anyhow::Result<()> {
        self.handle.reload(Self::filter(directives)?)?;
        Ok(())
    }
}

/// Creates or updates the rooms the settings declare, and deletes those
/// `before` declared that are gone.
async fn declare_rooms(server: &Server, rooms: &[StaticRoom], before: &[StaticRoom]) {
    let Some(policy) = &server.policy else { return };
    for r in rooms {
        if before.contains(r) {
            continue;
        }
        let res = policy
            .upsert_room(&r.name, |room| {
                let set = |v: &Option<String>| v.clone().filter(|p| !p.is_empty());
                if let Some(v) = &r.subject {
                    room.subject = v.clone();
                }
                if r.pin.is_some() {
                    room.pin = set(&r.pin);
                }
                if r.moderator_pin.is_some() {
                    room.moderator_pin = set(&r.moderator_pin);
                }
                if let Some(v) = r.locked {
                    room.locked = v;
                }
                if let Some(v) = r.max_participants {
                    room.max_participants = v;
                }
                if let Some(v) = r.mute_on_entry {
                    room.mute_on_entry = v;
                }
                if let Some(v) = &r.watchers {
                    room.watchers = v.clone();
                }
                if let Some(v) = r.talkers_mixed {
                    room.talkers_mixed = v;
                }
                if let Some(v) = r.floor {
                    room.floor_policy = v.into();
                }
                if let Some(v) = r.wait_for_moderator {
                    room.auto_create = !v;
                }
                if let Some(v) = r.members_only {
                    room.members_only = v;
                }
                if let Some(v) = r.srtp {
                    room.srtp = Some(v.into());
                }
                if let Some(v) = r.record {
                    room.record = v;
                }
            })
            .await;
        match res {
            Ok(_) if before.iter().any(|b| b.name == r.name) => {
                tracing::info!(room = %r.name, "static room changed")
            }
            Ok(_) => tracing::info!(room = %r.name, "static room declared"),
            Err(e) => tracing::warn!(room = %r.name, error = %e, "static room not stored"),
        }
    }
    for gone in before
        .iter()
        .filter(|b| !rooms.iter().any(|r| r.name == b.name))
    {
        match policy.delete_room(&gone.name).await {
            Ok(()) => {
                tracing::info!(room = %gone.name, "static room removed from the settings: deleted")
            }
            Err(e) => tracing::warn!(room = %gone.name, error = %e, "static room not deleted"),
        }
    }
}

/// Waits for Ctrl-C or SIGTERM; on SIGHUP reads the settings again.
async fn run_until_stopped(
    server: &Server,
    flags: &Settings,
    mut current: Settings,
    log: &Log,
    stop: &mut StopSignal,
) {
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
        let api_drain = async {
            match &server.policy {
                Some(p) => p.drain_requested().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.recv() => return,
            _ = api_drain => return,
            _ = reload => current = reload_settings(server, flags, current, log).await,
        }
    }
}

/// SIGHUP: reads the settings again, applies what can change while
/// running, says in the log what changed, and reads the TLS certificate
/// again. What cannot change live keeps its value until a restart.
async fn reload_settings(
    server: &Server,
    flags: &Settings,
    current: Settings,
    log: &Log,
) -> Settings {
    let new = match Settings::effective(flags).and_then(|new| {
        // Keys that need a restart keep their running value.
        let mut kept = current.clone();
        for key in current.changed_keys(&new) {
            if LIVE_KEYS.contains(&key.as_str()) {
                kept = kept.overlaid(&new.only(&key)?)?;
            } else {
                tracing::warn!(
                    key,
                    "SIGHUP: changed in the settings; takes effect at the next start"
                );
            }
        }
        Ok(kept)
    }) {
        Ok(new) => new,
        Err(e) => {
            // One log line: toml's message spans several to show the key.
            let error = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            tracing::warn!(%error, "SIGHUP: settings not read again; nothing changed");
            return current;
        }
    };
    let changed = current.changed_keys(&new);
    for key in &changed {
        if key != "room" {
            tracing::info!(key, old = %current.value(key), new = %new.value(key), "SIGHUP: setting changed");
        }
    }
    let has = |k: &str| changed.iter().any(|c| c == k);
    if has("log") {
        if let Err(e) = new.log.as_deref().map(|l| log.set(l)).transpose() {
            tracing::warn!(error = %e, "SIGHUP: log filter not changed");
        }
    }
    if [
        "rate-per-source",
        "max-calls-per-source",
        "dial-out-per-minute",
        "auth-max-failures",
        "auth-lockout-secs",
    ]
    .iter()
    .any(|k| has(k))
    {
        match (new.rate_per_source, live_limits(&new)) {
            (Some(rate), Ok(limits)) => server.set_limits(rate, limits),
            _ => tracing::warn!("SIGHUP: limits not changed"),
        }
    }
    if has("grpc-rate") {
        if let (Some(p), Some(rate)) = (&server.policy, new.grpc_rate) {
            p.set_rate_per_token(rate);
        }
    }
    if has("sip-tls-cert") || has("sip-tls-key") {
        server.set_tls_files(new.sip_tls_cert.clone(), new.sip_tls_key.clone());
    }
    match server.reload_tls() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate read again"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "SIGHUP: TLS certificate not reloaded"),
    }
    if has("room") {
        declare_rooms(
            server,
            new.rooms.as_deref().unwrap_or_default(),
            current.rooms.as_deref().unwrap_or_default(),
        )
        .await;
    }
    tracing::info!(changed = changed.len(), "SIGHUP: settings applied");
    new
}

/// Graceful drain: no new calls; those in progress go on until they end,
/// `timeout` passes, or a second signal comes; then the rest get a BYE.
async fn drain(server: &Server, timeout: Duration, stop: &mut StopSignal) {
    let started = std::time::Instant::now();
    server.drain().await;
    let kept = server.calls_active().await.unwrap_or(0);
    tracing::info!(
        calls = kept,
        timeout_s = timeout.as_secs(),
        "draining: waiting for calls to end (a second SIGTERM or Ctrl-C ends them now)"
    );
    let mut last_seen = std::time::Instant::now();
    tokio::select! {
        _ = server.idle() => {
            last_seen = std::time::Instant::now();
            tracing::info!(
                calls = kept,
                drained_s = started.elapsed().as_secs_f64(),
                "drained: the last call ended"
            )
        }
        _ = tokio::time::sleep(timeout) => tracing::warn!("drain timeout: ending the calls left"),
        _ = stop.recv() => tracing::warn!("second signal: ending the calls left now"),
    }
    if server.calls_active().await.unwrap_or(0) > 0 {
        server.end_all();
        // Let the BYEs leave before the transports close.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tracing::info!(
        after_last_call_us = last_seen.elapsed().as_micros() as u64,
        "exiting"
    );
}
