//! # sip-transport: the tokio edge of the SIP stack
//!
//! UDP, TCP and TLS sockets. It moves bytes, frames streams, parses,
//! stamps `received`/`rport`, and enforces per-source limits; every
//! protocol decision is the core's. TLS connections are streams like TCP's
//! once their handshake is done, in a registry of their own, and feed the
//! same [`Inbound`] channel.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod tcp;
mod tls;

pub use tls::{TlsConfig, TlsError};

pub use sip::limits::{DropReport, OncePerSecond, RateLimiter, SourceLimits};
pub use sip::routing::{response_target, stamp_received};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use sip::transaction::{Peer, Transmit, TransportKind};
use sip::{parse_bytes, Message, ParseFailure, ParseLimits};

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP listen address (`None`: no UDP).
    pub udp: Option<SocketAddr>,
    /// TCP listen address (`None`: no TCP).
    pub tcp: Option<SocketAddr>,
    /// Parser limits (message size).
    pub limits: ParseLimits,
    /// TCP connections idle this long are closed.
    pub tcp_idle: Duration,
    /// Most TCP connections from one IP.
    pub max_tcp_per_ip: usize,
    /// Most TCP connections in all.
    pub max_tcp_total: usize,
    /// Per-source message rate.
    pub source_limits: SourceLimits,
    /// Depth of the queue towards the core; beyond it messages are dropped.
    pub inbound_queue: usize,
    /// TLS: a listener, and connections to `sips:` and `transport=tls`
    /// targets (None: no TLS at all).
    pub tls: Option<TlsConfig>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            udp: Some(([0, 0, 0, 0], 5060).into()),
            tcp: Some(([0, 0, 0, 0], 5060).into()),
            limits: ParseLimits::default(),
            tcp_idle: Duration::from_secs(300),
            max_tcp_per_ip: 64,
            max_tcp_total: 10_000,
            source_limits: SourceLimits::default(),
            inbound_queue: 16_384,
            tls: None,
        }
    }
}

/// A message (or a failure to parse one) delivered to the core.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it, over what.
    pub peer: Peer,
    /// The parsed message; requests already carry `received`/`rport`.
    pub message: Result<Message, ParseFailure>,
}

/// Counters kept by the transports.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Datagrams and frames received.
    pub received: AtomicU64,
    /// Messages that failed to parse.
    pub malformed: AtomicU64,
    /// Messages refused by the per-source rate limit.
    pub rate_limited: AtomicU64,
    /// Messages dropped because the core's queue was full.
    pub queue_full: AtomicU64,
    /// TCP connections refused by the connection limits.
    pub tcp_refused: AtomicU64,
    /// TCP connections closed because they were idle.
    pub tcp_idle_closed: AtomicU64,
    /// TCP connections closed for a framing error (oversized, bad Content-Length).
    pub tcp_frame_errors: AtomicU64,
    /// Outgoing messages dropped: a peer's writer queue full, a UDP socket
    /// buffer full, a connection closed or never made.
    pub send_dropped: AtomicU64,
    /// Outgoing TCP or TLS connections that could not be made (refused,
    /// timed out, a certificate that does not verify).
    pub tcp_connect_failed: AtomicU64,
    /// TLS handshakes of accepted connections that failed or stalled.
    pub tls_handshake_failed: AtomicU64,
}

/// Why [`Transports::send`] did not hand a message to the network. The
/// message is dropped: a SIP transaction retransmits or times out.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No transport of that kind is running.
    #[error("{0:?} is not enabled")]
    NotEnabled(TransportKind),
    /// The peer does not take messages as fast as they come: its writer
    /// queue (TCP) or the socket's buffer (UDP) is full.
    #[error("the peer's queue is full")]
    QueueFull,
    /// The connection to the peer closed, or could not be made.
    #[error("the connection is closed")]
    Closed,
    /// The socket refused the datagram.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why the transports could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error("cannot bind: {0}")]
    Io(#[source] std::io::Error),
    /// The TLS settings are unusable.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Logs dropped outgoing messages at most once a second, with a count.
#[derive(Default)]
struct DropLog(Mutex<OncePerSecond>);

impl DropLog {
    fn note(&self, peer: Peer, error: &SendError) {
        let Ok(mut report) = self.0.lock() else {
            return;
        };
        report.note();
        if let Some(dropped) = report.poll(Instant::now()) {
            tracing::warn!(
                dropped,
                peer = %peer.addr,
                transport = ?peer.transport,
                %error,
                "outgoing SIP messages dropped (reported at most once a second)"
            );
        }
    }
}

pub(crate) struct Shared {
    pub(crate) config: TransportConfig,
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) limiter: Mutex<RateLimiter>,
    pub(crate) stats: TransportStats,
    pub(crate) tcp: tcp::Registry,
    pub(crate) tls_conns: tcp::Registry,
    pub(crate) tls: Option<tls::TlsState>,
    send_drops: DropLog,
}

impl Shared {
    /// The open connections of a stream transport.
    pub(crate) fn registry(&self, kind: TransportKind) -> &tcp::Registry {
        match kind {
            TransportKind::Tls => &self.tls_conns,
            _ => &self.tcp,
        }
    }

    /// Parses and hands a message to the core, within the source's budget.
    pub(crate) fn deliver(&self, peer: Peer, bytes: bytes::Bytes) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let (admitted, report) = self
            .limiter
            .lock()
            .map(|mut l| {
                let admitted = l.admit(peer.addr.ip(), now);
                (admitted, l.poll_report(now))
            })
            .unwrap_or((true, None));
        if let Some(r) = report {
            tracing::warn!(
                dropped = r.dropped,
                last_source = %r.last_source,
                "SIP messages over the per-source rate limit dropped (reported at most once a second)"
            );
        }
        if !admitted {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut message = parse_bytes(bytes, &self.config.limits);
        match &mut message {
            Ok(Message::Request(r)) => stamp_received(r, peer.addr),
            Ok(Message::Response(_)) => {}
            Err(_) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.inbound.try_send(Inbound { peer, message }).is_err() {
            self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A cloneable handle to the running transports.
#[derive(Clone)]
pub struct Transports {
    udp: Option<Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    tls_local: Option<SocketAddr>,
    shared: Arc<Shared>,
}

impl Transports {
    /// Binds the configured sockets and starts receiving. Messages arrive on
    /// the returned channel.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(Self, mpsc::Receiver<Inbound>), StartError> {
        let (tx, rx) = mpsc::channel(config.inbound_queue.max(1));
        let tls = match &config.tls {
            Some(t) => {
                if t.listen.is_some() && t.identity.is_none() {
                    return Err(TlsError::NoIdentity.into());
                }
                Some(tls::TlsState::new(t)?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            limiter: Mutex::new(RateLimiter::new(config.source_limits)),
            inbound: tx,
            stats: TransportStats::default(),
            tcp: tcp::Registry::default(),
            tls_conns: tcp::Registry::default(),
            tls,
            send_drops: DropLog::default(),
            config: config.clone(),
        });
        let udp = match config.udp {
            Some(addr) => {
                let sock = Arc::new(UdpSocket::bind(addr).await?);
                tokio::spawn(udp_loop(sock.clone(), shared.clone()));
                Some(sock)
            }
            None => None,
        };
        let tcp_local = match config.tcp {
            Some(addr) => Some(tcp::listen(addr, shared.clone()).await?),
            None => None,
        };
        let tls_local = match config.tls.as_ref().and_then(|t| t.listen) {
            Some(addr) => Some(tls::listen(addr, shared.clone()).await?),
            None => None,
        };
        Ok((
            Self {
                udp,
                tcp_local,
                tls_local,
                shared,
            },
            rx,
        ))
    }

    /// The bound TLS address.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_local
    }

    /// A new sustained rate per source IP (burst twice that), from now on.
    pub fn set_source_rate(&self, messages_per_sec: f64) {
        if let Ok(mut l) = self.shared.limiter.lock() {
            l.set_rate(messages_per_sec, messages_per_sec * 2.0);
        }
    }

    /// Replaces the TLS certificate and key; handshakes from now on use
    /// them, connections already open keep theirs.
    pub fn reload_tls(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        match &self.shared.tls {
            Some(t) => t.reload(cert_pem, key_pem),
            None => Err(TlsError::NoIdentity),
        }
    }

    /// The host name a TLS connection to `addr` must present a certificate
    /// for (the name the address was resolved from).
    pub fn set_tls_name(&self, addr: SocketAddr, name: &str) {
        if let Some(t) = &self.shared.tls {
            t.set_name(addr, name.to_owned());
        }
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_local
    }

    /// Counters.
    pub fn stats(&self) -> &TransportStats {
        &self.shared.stats
    }

    /// Open TCP connections.
    pub fn tcp_connections(&self) -> usize {
        self.shared.tcp.len()
    }

    /// Open TLS connections.
    pub fn tls_connections(&self) -> usize {
        self.shared.tls_conns.len()
    }

    /// Hands a message to the network without waiting: over UDP a
    /// non-blocking send, over TCP the peer's writer queue (an existing
    /// connection's, else a new one's, connected in the background while
    /// the queue fills). A peer that cannot take it gets it dropped, counted
    /// and logged: no peer ever holds up the caller.
    pub fn send(&self, t: Transmit) -> Result<(), SendError> {
        let peer = t.peer;
        let result = match peer.transport {
            TransportKind::Udp => match &self.udp {
                Some(sock) => match sock.try_send_to(&t.data, peer.addr) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        Err(SendError::QueueFull)
                    }
                    Err(e) => Err(SendError::Io(e)),
                },
                None => Err(SendError::NotEnabled(TransportKind::Udp)),
            },
            TransportKind::Tcp => tcp::send(&self.shared, TransportKind::Tcp, peer.addr, t.data),
            TransportKind::Tls if self.shared.tls.is_some() => {
                tcp::send(&self.shared, TransportKind::Tls, peer.addr, t.data)
            }
            TransportKind::Tls => Err(SendError::NotEnabled(TransportKind::Tls)),
        };
        if let Err(e) = &result {
            self.shared
                .stats
                .send_dropped
                .fetch_add(1, Ordering::Relaxed);
            self.shared.send_drops.note(peer, e);
        }
        result
    }
}

async fn udp_loop(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    // Room for the largest datagram, so an oversized one is read whole and
    // can still be answered with 513.
    let mut buf = vec![0u8; 65_536.max(shared.config.limits.max_message + 1)];
    loop {
        // Whoever reads the messages is gone: stop receiving, so that the
        // socket closes once the sender side drops too.
        let received = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            _ = shared.inbound.closed() => return,
        };
        match received {
            Ok((n, from)) => {
                let data = &buf[..n];
                if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    continue; // keep-alive
                }
                let peer = Peer {
                    transport: TransportKind::Udp,
                    addr: from,
                };
                shared.deliver(peer, bytes::Bytes::copy_from_slice(data));
            }
            Err(e) => {
                // ICMP port unreachable surfaces here on Linux: not fatal.
                tracing::debug!(error = %e, "udp receive error");
            }
        }
    }
}
