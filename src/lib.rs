//! The `confab` server, wired: SIP transports, the focus and the media
//! server in one process. `main.rs` reads the command line into a
//! [`ServerConfig`]; tests start a [`Server`] in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use focus::{Focus, FocusConfig, MediaServerPort};
use media_server::{MediaConfig, MediaServer};
use sip::transport::{SourceLimits, TransportConfig, Transports};
use sip::ParseLimits;
use tokio::sync::oneshot;

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
    /// The media server (for stats).
    pub media: Arc<MediaServer>,
    /// The policy server, when configured.
    pub policy: Option<policy_server::PolicyServer>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
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
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        let focus = Focus::new(
            focus_config,
            seed,
            Box::new(MediaServerPort::new(media.clone())),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let sip_tcp = transports.tcp_addr();
        let events = media.subscribe();
        let (policy, commands) = match config.policy.clone() {
            Some(pc) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let (ftx, frx) = tokio::sync::mpsc::unbounded_channel();
                bridge_policy(rx, ftx.clone());
                let live: Arc<dyn policy_server::live::Live> = Arc::new(FocusLive(ftx));
                let server = policy_server::PolicyServer::start(pc, Some(tx), Some(live))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot start the policy server: {e}"))?;
                (Some(server), Some(frx))
            }
            None => (None, None),
        };
        let task = tokio::spawn(focus::io::run(
            focus,
            transports,
            inbound,
            Some(events),
            commands,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            sip_udp,
            sip_tcp,
            media,
            policy,
            stop: Some(stop),
            task,
        })
    }

    /// Stops serving and waits for the focus to finish.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(p) = self.policy.take() {
            p.stop();
        }
    }
}

/// Turns the policy server's room changes into commands for the focus.
fn bridge_policy(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<policy_server::service::PolicyChange>,
    tx: tokio::sync::mpsc::UnboundedSender<focus::FocusCommand>,
) {
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            let cmd = match change {
                policy_server::service::PolicyChange::Upsert(r) => {
                    focus::FocusCommand::UpsertRoom(focus::RoomPolicy {
                        name: r.name,
                        locked: r.locked,
                        max_participants: (r.max_participants > 0)
                            .then_some(r.max_participants as usize),
                        mute_on_entry: r.mute_on_entry,
                        watchers: r.watchers,
                    })
                }
                policy_server::service::PolicyChange::Delete(name) => {
                    focus::FocusCommand::DeleteRoom(name)
                }
            };
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
}

/// The focus's live calls, as the policy server's gRPC API asks for them.
struct FocusLive(tokio::sync::mpsc::UnboundedSender<focus::FocusCommand>);

fn to_pb(p: focus::ParticipantInfo) -> policy_server::pb::Participant {
    policy_server::pb::Participant {
        id: p.id,
        uri: p.uri,
        display_name: p.display_name,
        status: p.status,
        muted: p.muted,
    }
}

#[tonic::async_trait]
impl policy_server::live::Live for FocusLive {
    async fn participants(&self, room: &str) -> Option<Vec<policy_server::pb::Participant>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send(focus::FocusCommand::Participants(room.to_owned(), tx))
            .ok()?;
        rx.await
            .ok()
            .flatten()
            .map(|v| v.into_iter().map(to_pb).collect())
    }
    async fn set_muted(
        &self,
        room: &str,
        id: &str,
        on: bool,
    ) -> Option<policy_server::pb::Participant> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send(focus::FocusCommand::Mute(
                room.to_owned(),
                id.to_owned(),
                on,
                tx,
            ))
            .ok()?;
        rx.await.ok().flatten().map(to_pb)
    }
    async fn remove(&self, room: &str, id: &str) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .0
            .send(focus::FocusCommand::Remove(
                room.to_owned(),
                id.to_owned(),
                tx,
            ))
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
