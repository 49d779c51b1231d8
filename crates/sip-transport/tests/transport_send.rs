//! Sending never waits on a peer: a connect that hangs and a queue that
//! fills both return at once, and what is dropped is counted.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sip::transaction::{Peer, Transmit, TransportKind};
use sip_transport::{SendError, TransportConfig, Transports};

async fn transports() -> Transports {
    let config = TransportConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        ..TransportConfig::default()
    };
    Transports::start(config).await.unwrap().0
}

/// A listener whose accept queue is full and never drained: the kernel
/// drops further SYNs, so a connect to it hangs.
async fn black_hole() -> (
    SocketAddr,
    Vec<tokio::net::TcpStream>,
    tokio::net::TcpListener,
) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    (addr, fillers, listener)
}

#[tokio::test]
async fn a_hanging_connect_and_a_full_queue_never_hold_up_the_sender() {
    let t = transports().await;
    let (hole, _fillers, _listener) = black_hole().await;
    let peer = Peer {
        transport: TransportKind::Tcp,
        addr: hole,
    };
    let started = Instant::now();
    let mut queued = 0;
    let mut full = 0;
    for i in 0..300 {
        match t.send(Transmit {
            peer,
            data: format!("OPTIONS {i}").into_bytes(),
        }) {
            Ok(()) => queued += 1,
            Err(SendError::QueueFull) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(100), "300 sends took {took:?}");
    assert_eq!((queued, full), (256, 44), "the writer queue holds 256");
    assert_eq!(t.stats().send_dropped.load(Ordering::Relaxed), 44);
    assert_eq!(t.tcp_connections(), 1, "one connect, not one per message");
}

#[tokio::test]
async fn a_refused_connect_is_counted_and_forgotten() {
    let t = transports().await;
    // A port nobody listens on: refused at once on loopback.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let peer = Peer {
        transport: TransportKind::Tcp,
        addr: closed,
    };
    t.send(Transmit {
        peer,
        data: b"OPTIONS".to_vec(),
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.stats().tcp_connect_failed.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the failure is counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(t.tcp_connections(), 0);
    assert_eq!(t.stats().send_dropped.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn udp_without_a_udp_socket_is_a_typed_error() {
    let config = TransportConfig {
        udp: None,
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        ..TransportConfig::default()
    };
    let (t, _rx) = Transports::start(config).await.unwrap();
    let r = t.send(Transmit {
        peer: Peer {
            transport: TransportKind::Udp,
            addr: "127.0.0.1:9".parse().unwrap(),
        },
        data: b"x".to_vec(),
    });
    assert!(matches!(r, Err(SendError::NotEnabled(TransportKind::Udp))));
}
