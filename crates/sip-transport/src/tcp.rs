//! Stream transports, TCP and TLS alike: accept (TLS's handshake is
//! `tls.rs`'s), frame by Content-Length, idle close, connection reuse for
//! sending, and per-IP connection limits. Each connection has a bounded
//! writer queue; sending only ever tries that queue, and a new outgoing
//! connection is made in the background while its queue fills.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{SendError, Shared};
use sip::transaction::{Peer, TransportKind};
use sip::StreamFramer;

/// Messages a connection holds for a peer slower than its sender; beyond
/// them, messages to that peer are dropped.
const WRITER_QUEUE: usize = 256;
/// How long an outgoing connection may take to be made.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Writer = mpsc::Sender<Vec<u8>>;

/// Writers of the open (or opening) connections, by remote address.
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<SocketAddr, Writer>>,
}

impl Registry {
    pub(crate) fn len(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }
    pub(crate) fn per_ip(&self, ip: IpAddr) -> usize {
        self.conns
            .lock()
            .map(|c| c.keys().filter(|a| a.ip() == ip).count())
            .unwrap_or(0)
    }
    /// The peer's writer; when there is none, `open` makes one (under the
    /// lock, so two sends never open two connections).
    fn get_or_open(&self, addr: SocketAddr, open: impl FnOnce() -> Writer) -> Option<Writer> {
        let mut c = self.conns.lock().ok()?;
        Some(c.entry(addr).or_insert_with(open).clone())
    }
    pub(crate) fn insert(&self, addr: SocketAddr, tx: Writer) {
        if let Ok(mut c) = self.conns.lock() {
            c.insert(addr, tx);
        }
    }
    /// Forgets the peer's writer if it is still `tx` (a newer connection
    /// to the same address may have taken its place).
    fn remove(&self, addr: &SocketAddr, tx: &Writer) {
        if let Ok(mut c) = self.conns.lock() {
            if c.get(addr).is_some_and(|cur| cur.same_channel(tx)) {
                c.remove(addr);
            }
        }
    }
}

pub(crate) async fn listen(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    accept_loop(
        addr,
        shared,
        TransportKind::Tcp,
        |stream, remote, shared| spawn_connection(stream, remote, TransportKind::Tcp, shared),
    )
    .await
}

/// Binds `addr` and accepts connections of `kind` until whoever reads the
/// messages is gone (then the port is free for the next server). Each
/// connection within the limits goes to `serve`, which must not wait.
pub(crate) async fn accept_loop(
    addr: SocketAddr,
    shared: Arc<Shared>,
    kind: TransportKind,
    serve: impl Fn(TcpStream, SocketAddr, Arc<Shared>) + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shared.inbound.closed() => return,
            };
            let (stream, remote) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, transport = ?kind, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if !admit(&shared, kind, remote) {
                continue;
            }
            let _ = stream.set_nodelay(true);
            serve(stream, remote, shared.clone());
        }
    });
    Ok(local)
}

/// Whether a new connection from `remote` is within the limits (counted
/// and logged when not).
fn admit(shared: &Shared, kind: TransportKind, remote: SocketAddr) -> bool {
    let reg = shared.registry(kind);
    if reg.len() >= shared.config.max_tcp_total
        || reg.per_ip(remote.ip()) >= shared.config.max_tcp_per_ip
    {
        shared.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%remote, transport = ?kind, "connection refused: limit reached");
        return false;
    }
    true
}

/// An accepted connection: registered for sending, then served.
pub(crate) fn spawn_connection<S>(
    stream: S,
    remote: SocketAddr,
    kind: TransportKind,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (tx, rx) = mpsc::channel(WRITER_QUEUE);
    shared.registry(kind).insert(remote, tx.clone());
    serve(stream, remote, kind, shared, tx, rx);
}

/// Runs a connection: a writer task draining its queue and a reader task
/// framing and delivering what arrives. When the reader ends (close, idle,
/// framing error) the writer is stopped too, even if it is stuck writing
/// to a peer that does not read, and the socket is closed.
fn serve<S>(
    stream: S,
    remote: SocketAddr,
    kind: TransportKind,
    shared: Arc<Shared>,
    tx: Writer,
    mut rx: mpsc::Receiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let peer = Peer {
        transport: kind,
        addr: remote,
    };
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(shared.config.limits.max_message);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tokio::time::timeout(shared.config.tcp_idle, rd.read(&mut buf)).await {
                Err(_) => {
                    shared.stats.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, transport = ?kind, "closing idle connection");
                    break;
                }
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
            };
            framer.push(&buf[..n]);
            let mut broken = false;
            while let Some(frame) = framer.next_frame() {
                match frame {
                    Ok(bytes) => shared.deliver(peer, bytes),
                    Err(e) => {
                        shared
                            .stats
                            .tcp_frame_errors
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%remote, transport = ?kind, error = %e, "closing connection: cannot frame");
                        broken = true;
                        break;
                    }
                }
            }
            if broken {
                break;
            }
        }
        shared.registry(kind).remove(&remote, &tx);
        writer.abort();
    });
}

/// An outgoing connection: its writer is registered at once, so what is
/// sent meanwhile waits in its queue; the connect (and TLS handshake) runs
/// in the background.
fn open(remote: SocketAddr, kind: TransportKind, shared: Arc<Shared>) -> Writer {
    let (tx, rx) = mpsc::channel(WRITER_QUEUE);
    let writer = tx.clone();
    tokio::spawn(async move {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let stream = TcpStream::connect(remote).await?;
            let _ = stream.set_nodelay(true);
            Ok::<_, std::io::Error>(stream)
        })
        .await;
        let failed = match (connected, kind) {
            (Ok(Ok(stream)), TransportKind::Tls) => {
                match crate::tls::connect(&shared, stream, remote).await {
                    Ok(tls) => {
                        serve(tls, remote, kind, shared, tx, rx);
                        return;
                    }
                    Err(e) => e.to_string(),
                }
            }
            (Ok(Ok(stream)), _) => {
                serve(stream, remote, kind, shared, tx, rx);
                return;
            }
            (Ok(Err(e)), _) => e.to_string(),
            (Err(_), _) => "timed out".to_string(),
        };
        shared
            .stats
            .tcp_connect_failed
            .fetch_add(1, Ordering::Relaxed);
        let queued = rx.len();
        shared
            .stats
            .send_dropped
            .fetch_add(queued as u64, Ordering::Relaxed);
        tracing::info!(%remote, transport = ?kind, error = %failed, queued, "connect failed; its queued messages are dropped");
        shared.registry(kind).remove(&remote, &tx);
    });
    writer
}

/// Queues a message for the peer without waiting.
pub(crate) fn send(
    shared: &Arc<Shared>,
    kind: TransportKind,
    addr: SocketAddr,
    data: Vec<u8>,
) -> Result<(), SendError> {
    let tx = shared
        .registry(kind)
        .get_or_open(addr, || open(addr, kind, shared.clone()))
        .ok_or(SendError::Closed)?;
    tx.try_send(data).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => SendError::Closed,
    })
}
