//! The `confab` server, wired: SIP transports, the focus and the media
//! server in one process. `main.rs` reads the command line into a
//! [`ServerConfig`]; tests start a [`Server`] in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use focus::{Focus, FocusConfig};
use media_server::{MediaConfig, MediaServer};
use sip::ParseLimits;
use sip_transport::{SourceLimits, TransportConfig, Transports};
use tokio::sync::oneshot;

pub mod cdr;
mod metrics;
mod policy_bridge;
mod recording;
pub mod settings;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address for SIP over UDP (and TCP unless disabled).
    pub sip_listen: SocketAddr,
    /// Also listen on TCP.
    pub tcp: bool,
    /// Largest SIP message.
    pub max_message: usize,
    /// Idle TCP connections are closed after this.
    pub tcp_idle: Duration,
    /// TCP connections per source IP.
    pub max_tcp_per_ip: usize,
    /// Sustained SIP messages per second per source IP.
    pub rate_per_source: f64,
    /// The focus's settings.
    pub focus: FocusConfig,
    /// The media server's settings.
    pub media: MediaConfig,
    /// The policy server (gRPC API and store); None runs without one.
    pub policy: Option<policy_server::PolicyConfig>,
    /// SIP over TLS: where to listen, the certificate, extra roots.
    pub sip_tls: SipTls,
    /// Where Prometheus scrapes `/metrics` (None: no endpoint).
    pub metrics_listen: Option<SocketAddr>,
    /// Where call detail records go (None: nowhere).
    pub cdr: Option<cdr::CdrSink>,
}

/// SIP over TLS settings (RFC 3261 §26).
#[derive(Debug, Clone, Default)]
pub struct SipTls {
    /// Listen address (None: no TLS listener; calls to `sips:` targets
    /// are still placed over TLS).
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain and key files, read at start and on reload.
    pub cert: Option<std::path::PathBuf>,
    /// See `cert`.
    pub key: Option<std::path::PathBuf>,
    /// PEM CA certificates trusted besides the system's roots, for the
    /// servers we call over TLS (a private CA).
    pub ca: Option<std::path::PathBuf>,
}

impl SipTls {
    /// Reads the certificate and key files.
    fn identity(&self) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Ok(Some((
                std::fs::read(c).with_context(|| format!("TLS certificate {}", c.display()))?,
                std::fs::read(k).with_context(|| format!("TLS key {}", k.display()))?,
            ))),
            (None, None) => Ok(None),
            _ => anyhow::bail!("a TLS certificate needs its key, and a key its certificate"),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            sip_listen: ([0, 0, 0, 0], 5060).into(),
            tcp: true,
            max_message: 65536,
            tcp_idle: Duration::from_secs(300),
            max_tcp_per_ip: 64,
            rate_per_source: 2000.0,
            focus: FocusConfig::default(),
            media: MediaConfig::default(),
            policy: None,
            sip_tls: SipTls::default(),
            metrics_listen: None,
            cdr: None,
        }
    }
}

impl ServerConfig {
    /// Binds media to the SIP address's IP when that is specific.
    pub fn media_ip_from_sip(mut self) -> Self {
        if !self.sip_listen.ip().is_unspecified() {
            self.media.bind_ip = self.sip_listen.ip();
        }
        self
    }
}

/// A running server.
pub struct Server {
    /// Where SIP over UDP listens.
    pub sip_udp: SocketAddr,
    /// Where SIP over TCP listens.
    pub sip_tcp: Option<SocketAddr>,
    /// Where SIP over TLS listens.
    pub sip_tls: Option<SocketAddr>,
    /// The media server (for stats).
    pub media: Arc<MediaServer>,
    /// The policy server, when configured.
    pub policy: Option<policy_server::PolicyServer>,
    /// Where `/metrics` is served.
    pub metrics: Option<SocketAddr>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    transports: Transports,
    tls: std::sync::Mutex<SipTls>,
    commands: Option<tokio::sync::mpsc::UnboundedSender<focus::FocusCommand>>,
}

impl Server {
    /// Binds everything and starts serving. Must run inside a tokio runtime.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let transport_config = TransportConfig {
            udp: Some(config.sip_listen),
            tcp: config.tcp.then_some(config.sip_listen),
            limits: ParseLimits {
                max_message: config.max_message,
                ..ParseLimits::default()
            },
            tcp_idle: config.tcp_idle,
            max_tcp_per_ip: config.max_tcp_per_ip,
            source_limits: SourceLimits {
                messages_per_sec: config.rate_per_source,
                burst: config.rate_per_source * 2.0,
                ..SourceLimits::default()
            },
            tls: Some(sip_transport::TlsConfig {
                listen: config.sip_tls.listen,
                identity: config.sip_tls.identity()?,
                extra_roots: match &config.sip_tls.ca {
                    Some(p) => {
                        Some(std::fs::read(p).with_context(|| format!("TLS CA {}", p.display()))?)
                    }
                    None => None,
                },
            }),
            ..TransportConfig::default()
        };
        let (transports, inbound) = Transports::start(transport_config)
            .await
            .with_context(|| format!("cannot listen for SIP on {}", config.sip_listen))?;
        let sip_udp = transports.udp_addr().context("UDP socket has no address")?;
        let media = Arc::new(
            MediaServer::start(config.media.clone()).context("cannot start the media server")?,
        );
        let mut focus_config = config.focus.clone();
        if focus_config.advertise_ip.is_none() && !config.sip_listen.ip().is_unspecified() {
            focus_config.advertise_ip = Some(config.sip_listen.ip());
        }
        if focus_config.sip_port.is_none() {
            focus_config.sip_port = Some(sip_udp.port());
        }
        let sip_tls = transports.tls_addr();
        if focus_config.sip_tls_port.is_none() {
            focus_config.sip_tls_port = sip_tls.map(|a| a.port());
        }
        if focus_config.sip_host.is_none() {
            let ip = focus_config.advertise_ip.unwrap_or(sip_udp.ip());
            let ip = if ip.is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                ip
            };
            focus_config.sip_host = Some(std::net::SocketAddr::new(ip, sip_udp.port()).to_string());
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        let focus = Focus::new(focus_config, seed);
        let (stop, stopped) = oneshot::channel::<()>();
        let sip_tcp = transports.tcp_addr();
        let (policy, links, commands) = match config.policy.clone() {
            Some(pc) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let (ftx, frx) = tokio::sync::mpsc::unbounded_channel();
                policy_bridge::forward_policy(rx, ftx.clone());
                let (etx, erx) =
                    tokio::sync::broadcast::channel(policy_server::service::WATCH_BACKLOG);
                let recordings = recording::Recordings::start(
                    pc.data_dir.join("recordings"),
                    ftx.clone(),
                    etx.clone(),
                );
                let live: Arc<dyn policy_server::live::Live> = Arc::new(policy_bridge::FocusLive {
                    focus: ftx.clone(),
                    recordings,
                });
                let server = policy_server::PolicyServer::start(pc, Some(tx), Some(live))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot start the policy server: {e}"))?;
                policy_bridge::forward_events(erx, server.events.clone());
                let restored = policy_bridge::restore_bindings(&server.store, &ftx)
                    .await
                    .context("cannot read registrations from the store")?;
                if restored > 0 {
                    tracing::info!(users = restored, "registrations restored from the store");
                }
                let (btx, brx) = tokio::sync::mpsc::unbounded_channel();
                policy_bridge::store_bindings(brx, server.store.clone());
                let links = focus::io::Links {
                    commands: Some(frx),
                    room_events: Some(etx),
                    bindings: Some(btx),
                    records: None,
                };
                (Some(server), links, Some(ftx))
            }
            None => (None, focus::io::Links::default(), None),
        };
        let mut links = links;
        if let Some(sink) = config.cdr.clone() {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(cdr::write(sink, rx));
            links.records = Some(tx);
        }
        let (metrics, metrics_task) = match config.metrics_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {addr}"))?;
                let bound = listener.local_addr()?;
                let sources = Arc::new(metrics::Sources {
                    media: media.clone(),
                    transports: transports.clone(),
                    commands: commands.clone(),
                    grpc: policy.as_ref().map(|p| p.grpc_metrics.clone()),
                });
                tracing::info!(addr = %bound, "serving Prometheus metrics at /metrics");
                (
                    Some(bound),
                    Some(tokio::spawn(metrics::serve(listener, sources))),
                )
            }
            None => (None, None),
        };
        let task = tokio::spawn(focus::io::run(
            focus,
            transports.clone(),
            inbound,
            media.clone(),
            links,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            sip_udp,
            sip_tcp,
            sip_tls,
            transports,
            tls: std::sync::Mutex::new(config.sip_tls.clone()),
            media,
            policy,
            stop: Some(stop),
            task,
            commands,
            metrics,
            metrics_task,
        })
    }

    /// Reads the TLS certificate and key files again (SIGHUP): new
    /// handshakes use them, connections already open keep theirs.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        let tls = self
            .tls
            .lock()
            .map_err(|_| anyhow::anyhow!("TLS settings poisoned"))?
            .clone();
        let Some((cert, key)) = tls.identity()? else {
            return Ok(());
        };
        self.transports
            .reload_tls(&cert, &key)
            .context("the new TLS certificate is not usable; the old one stays")
    }

    /// Other certificate and key files, read by the next `reload_tls`.
    pub fn set_tls_files(&self, cert: Option<std::path::PathBuf>, key: Option<std::path::PathBuf>) {
        if let Ok(mut t) = self.tls.lock() {
            t.cert = cert;
            t.key = key;
        }
    }

    /// New limits from now on: the per-source SIP rate here, the rest in the focus.
    pub fn set_limits(&self, rate_per_source: f64, focus: focus::LiveLimits) {
        self.transports.set_source_rate(rate_per_source);
        if let Some(tx) = &self.commands {
            let _ = tx.send(focus::FocusCommand::SetLimits(focus));
        }
    }

    /// Stops taking new calls (503 with Retry-After), says NOT_SERVING on
    /// gRPC health; calls in progress go on.
    pub async fn drain(&self) {
        if let Some(tx) = &self.commands {
            let _ = tx.send(focus::FocusCommand::Drain);
        }
        if let Some(p) = &self.policy {
            p.set_not_serving().await;
        }
    }

    /// Ends every call with a BYE and a Reason, and every subscription.
    pub fn end_all(&self) {
        if let Some(tx) = &self.commands {
            let _ = tx.send(focus::FocusCommand::EndAll);
        }
    }

    /// Resolves once no call is open (at once when none is, or when the
    /// focus does not answer).
    pub async fn idle(&self) {
        let Some(tx) = &self.commands else { return };
        let (reply, answer) = oneshot::channel();
        if tx.send(focus::FocusCommand::WhenIdle(reply)).is_ok() {
            let _ = answer.await;
        }
    }

    /// Calls open now (None: the focus does not answer).
    pub async fn calls_active(&self) -> Option<u64> {
        let tx = self.commands.as_ref()?;
        let (reply, answer) = oneshot::channel();
        tx.send(focus::FocusCommand::Metrics(reply)).ok()?;
        answer.await.ok().map(|m| m.calls_active)
    }

    /// Stops serving and waits for the focus to finish.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(t) = self.metrics_task.take() {
            t.abort();
        }
        if let Some(p) = self.policy.take() {
            p.stop();
        }
    }
}
