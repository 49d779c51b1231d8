//! What the kernel charges per RTP packet on loopback, by the way the
//! packets go in and out: one socket per participant (today's layout: a
//! `sendto` each on the mixer thread, a `recvmmsg` each on a receive
//! thread), a connected socket per participant, or one shared socket per
//! thread with `sendmmsg`/`recvmmsg` batches (the layout issue 12 asks to
//! measure; it would give every participant the same RTP port). One
//! iteration is one tick of `N` participants; criterion's throughput is
//! per packet. On loopback a send also runs the receiving socket's side
//! of the stack, as in capacity.sh.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrIn, SockaddrStorage};

/// Participants per tick.
const N: usize = 100;
/// A G.711 packet of 20 ms: header and 160 bytes.
const PACKET: usize = 172;
/// Datagrams per `recvmmsg` on the shared socket.
const BATCH: usize = 64;
/// Datagrams offered per `recvmmsg` on a participant's socket (the receive thread's batch).
const PER_SOCKET: usize = 8;

fn bound() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

fn sockets(n: usize) -> Vec<UdpSocket> {
    (0..n).map(|_| bound()).collect()
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local address")
}

fn v4(a: SocketAddr) -> SockaddrIn {
    match a {
        SocketAddr::V4(v) => SockaddrIn::from(v),
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    }
}

/// Empties the sockets (not timed), so no buffer fills over the run.
fn drain(socks: &[UdpSocket]) {
    let mut buf = [0u8; 2048];
    for s in socks {
        while s.recv_from(&mut buf).is_ok() {}
    }
}

fn send(c: &mut Criterion) {
    let payload = [0x55u8; PACKET];
    let phones = sockets(N);
    let to: Vec<SocketAddr> = phones.iter().map(addr).collect();
    let mut g = c.benchmark_group("udp_send");
    g.throughput(Throughput::Elements(N as u64));

    let ours = sockets(N);
    g.bench_function("sendto_per_socket", |b| {
        b.iter_batched(
            || drain(&phones),
            |()| {
                for (s, to) in ours.iter().zip(&to) {
                    s.send_to(&payload, to).expect("send");
                }
            },
            BatchSize::PerIteration,
        )
    });

    let connected = sockets(N);
    for (s, to) in connected.iter().zip(&to) {
        s.connect(to).expect("connect");
    }
    g.bench_function("send_connected_per_socket", |b| {
        b.iter_batched(
            || drain(&phones),
            |()| {
                for s in &connected {
                    s.send(&payload).expect("send");
                }
            },
            BatchSize::PerIteration,
        )
    });

    let shared = bound();
    let dests: Vec<Option<SockaddrIn>> = to.iter().map(|a| Some(v4(*a))).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = (0..N).map(|_| [IoSlice::new(&payload)]).collect();
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(N, None);
    g.bench_function("sendmmsg_shared", |b| {
        b.iter_batched(
            || drain(&phones),
            |()| {
                let sent = sendmmsg(
                    shared.as_raw_fd(),
                    &mut headers,
                    &iovs,
                    &dests,
                    [],
                    MsgFlags::empty(),
                )
                .expect("sendmmsg");
                assert_eq!(sent.count(), N);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn receive(c: &mut Criterion) {
    let payload = [0x55u8; PACKET];
    let phones = sockets(N);
    // As the receive thread: buffers made once, slices made per call on the stack.
    let mut few: Box<[[u8; 2048]; PER_SOCKET]> = Box::new([[0; 2048]; PER_SOCKET]);
    let mut many: Box<[[u8; 2048]; BATCH]> = Box::new([[0; 2048]; BATCH]);
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut g = c.benchmark_group("udp_receive");
    g.throughput(Throughput::Elements(N as u64));

    let ours = sockets(N);
    let ours_at: Vec<SocketAddr> = ours.iter().map(addr).collect();
    g.bench_function("recvmmsg_per_socket", |b| {
        b.iter_batched(
            || {
                for (p, to) in phones.iter().zip(&ours_at) {
                    p.send_to(&payload, to).expect("send");
                }
            },
            |()| {
                for s in &ours {
                    // A batch offered, one datagram there.
                    let slices = few.each_mut().map(|b| [IoSliceMut::new(&mut b[..])]);
                    let got = recvmmsg(
                        s.as_raw_fd(),
                        &mut headers,
                        slices.iter(),
                        MsgFlags::MSG_DONTWAIT,
                        None,
                    )
                    .expect("recvmmsg");
                    assert_eq!(got.count(), 1);
                }
            },
            BatchSize::PerIteration,
        )
    });

    let shared = bound();
    let shared_at = addr(&shared);
    g.bench_function("recvmmsg_shared", |b| {
        b.iter_batched(
            || {
                for p in &phones {
                    p.send_to(&payload, shared_at).expect("send");
                }
            },
            |()| {
                let mut got = 0;
                while got < N {
                    let slices = many.each_mut().map(|b| [IoSliceMut::new(&mut b[..])]);
                    got += recvmmsg(
                        shared.as_raw_fd(),
                        &mut headers,
                        slices.iter(),
                        MsgFlags::MSG_DONTWAIT,
                        None,
                    )
                    .expect("recvmmsg")
                    .count();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, send, receive);
criterion_main!(benches);
