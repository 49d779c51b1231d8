//! TCP: accept, frame by Content-Length, idle close, connection reuse for
//! sending, and per-IP connection limits.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Shared;
use crate::framing::StreamFramer;
use crate::transaction::{Peer, TransportKind};

/// Writers of the open connections, by remote address.
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
}

impl Registry {
    pub(crate) fn len(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }
    fn per_ip(&self, ip: IpAddr) -> usize {
        self.conns
            .lock()
            .map(|c| c.keys().filter(|a| a.ip() == ip).count())
            .unwrap_or(0)
    }
    fn get(&self, addr: &SocketAddr) -> Option<mpsc::Sender<Vec<u8>>> {
        self.conns.lock().ok()?.get(addr).cloned()
    }
    fn insert(&self, addr: SocketAddr, tx: mpsc::Sender<Vec<u8>>) {
        if let Ok(mut c) = self.conns.lock() {
            c.insert(addr, tx);
        }
    }
    fn remove(&self, addr: &SocketAddr) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(addr);
        }
    }
}

pub(crate) async fn listen(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if shared.tcp.len() >= shared.config.max_tcp_total
                || shared.tcp.per_ip(remote.ip()) >= shared.config.max_tcp_per_ip
            {
                shared.stats.tcp_refused.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%remote, "tcp connection refused: limit reached");
                drop(stream);
                continue;
            }
            spawn_connection(stream, remote, shared.clone());
        }
    });
    Ok(local)
}

fn spawn_connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
) -> mpsc::Sender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    shared.tcp.insert(remote, tx.clone());
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let peer = Peer {
        transport: TransportKind::Tcp,
        addr: remote,
    };
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(shared.config.limits.max_message);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tokio::time::timeout(shared.config.tcp_idle, rd.read(&mut buf)).await {
                Err(_) => {
                    shared.stats.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, "closing idle tcp connection");
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
                        tracing::info!(%remote, error = %e, "closing tcp connection: cannot frame");
                        broken = true;
                        break;
                    }
                }
            }
            if broken {
                break;
            }
        }
        shared.tcp.remove(&remote);
    });
    tx
}

pub(crate) async fn send(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    data: Vec<u8>,
) -> std::io::Result<()> {
    let tx = match shared.tcp.get(&addr) {
        Some(tx) => tx,
        None => {
            let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "tcp connect timed out")
                })??;
            spawn_connection(stream, addr, shared.clone())
        }
    };
    tx.send(data)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "tcp connection closed"))
}
