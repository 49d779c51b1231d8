//! Receive threads. Each owns the receiving end of some participants and
//! polls their ports once per tick, a little before the mixers tick, with one
//! `recvmmsg` per port: a packet costs a share of one system call and no
//! wake-up, where a task per port cost a wake-up and two calls per packet.
//! A mixer with many participants wakes them after its tick to send what
//! it queued (`send_queue`), so a big room's sends run on these threads.
//! Arrival times are the kernel's (SO_TIMESTAMPNS), so the jitter buffers
//! and RTCP see when a packet arrived, not when it was polled.

use std::io::IoSliceMut;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
};
use nix::sys::time::TimeSpec;

use super::receiver::RtpReceiver;
use crate::mixer::ParticipantId;

/// What the control side asks of a receive thread.
pub(crate) enum RxCommand {
    Add(Box<RtpReceiver>),
    /// The participant left: its last report and a BYE go out, its sockets close.
    Remove(ParticipantId),
    /// A new SDP names where the phone sends from.
    Signalled(ParticipantId, SocketAddr),
}

/// Datagrams taken per `recvmmsg`.
const BATCH: usize = 8;
/// Datagrams taken from one port per pass at most: a flood on one port
/// waits in its socket buffer instead of delaying every other port.
const MAX_PER_PASS: usize = 64;
/// How long before the mixers' tick a pass starts.
const LEAD: Duration = Duration::from_millis(3);
/// A separate RTCP port is polled every this many passes (RTCP comes every
/// few seconds; its timing does not matter).
const RTCP_EVERY: u64 = 50;
/// Largest datagram read; a longer one is cut and then refused as oversized.
const DATAGRAM: usize = 2048;

/// Asks the kernel to stamp each datagram's arrival on this socket. (The
/// stack starts stamping a moment after the first socket asks; datagrams
/// before that are stamped when read, which is what polling gave anyway.)
pub(crate) fn stamp_arrivals(sock: &UdpSocket) -> std::io::Result<()> {
    setsockopt(sock.as_raw_fd(), sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)
}

/// Buffers for one `recvmmsg`, allocated once per thread.
struct Batch {
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
}

impl Batch {
    fn new() -> Self {
        // Room for one SCM_TIMESTAMPNS control message (CMSG_SPACE of a
        // timespec is 32 bytes on 64-bit Linux) with margin.
        let cmsg = Vec::with_capacity(64);
        Self {
            headers: MultiHeaders::preallocate(BATCH, Some(cmsg)),
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
        }
    }

    /// Takes what waits on socket `fd`, up to `max` datagrams, without blocking.
    fn drain(
        &mut self,
        fd: RawFd,
        max: usize,
        mut take: impl FnMut(&[u8], SocketAddr, Option<TimeSpec>),
    ) {
        let mut taken = 0;
        while taken < max {
            let slices: [[IoSliceMut<'_>; 1]; BATCH] =
                self.bufs.each_mut().map(|b| [IoSliceMut::new(&mut b[..])]);
            let Ok(msgs) = recvmmsg(
                fd,
                &mut self.headers,
                slices.iter(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) else {
                // EAGAIN: nothing more. Any other error (an ICMP port
                // unreachable surfacing) is as good as nothing this pass.
                break;
            };
            let mut n = 0;
            for m in msgs {
                n += 1;
                let Some(from) = m.address.as_ref().and_then(socket_addr) else {
                    continue;
                };
                let stamp = m.cmsgs().find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => Some(t),
                    _ => None,
                });
                let data = m.iovs().next().unwrap_or(&[]);
                take(data, from, stamp);
            }
            taken += n;
            if n < BATCH {
                break;
            }
        }
    }
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Ports polled between two readings of the clocks.
const CLOCK_EVERY: usize = 32;

/// The monotonic and the wall clock, read together.
fn clocks() -> (Instant, Duration) {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (Instant::now(), wall)
}

/// When a datagram stamped `stamp` (wall clock) arrived, on the monotonic
/// clock: `now` and `wall` are read together.
fn arrival(stamp: Option<TimeSpec>, now: Instant, wall: Duration) -> Instant {
    let Some(ts) = stamp else { return now };
    let at = Duration::new(
        ts.tv_sec().max(0) as u64,
        ts.tv_nsec().clamp(0, 999_999_999) as u32,
    );
    now.checked_sub(wall.saturating_sub(at)).unwrap_or(now)
}

/// Starts receive thread `index`; its passes run `LEAD` before each tick of
/// the mixers, whose ticks fall on `epoch + k · period`.
pub(crate) fn spawn_rx(
    index: usize,
    commands: mpsc::Receiver<RxCommand>,
    epoch: Instant,
    period: Duration,
    stop: Arc<AtomicBool>,
    sends_waiting: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("confab-rtp-rx-{index}"))
        .spawn(move || {
            let mut receivers: Vec<RtpReceiver> = Vec::new();
            let mut batch = Batch::new();
            let mut deadline = epoch + period.saturating_sub(LEAD);
            let mut pass: u64 = 0;
            let mut rtcp_buf = [0u8; DATAGRAM];
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if deadline > now {
                    // A mixer that offloads its sends wakes us after its tick.
                    std::thread::park_timeout(deadline - now);
                    if sends_waiting.swap(false, Ordering::Acquire) {
                        for r in receivers.iter_mut() {
                            r.send_queued();
                        }
                    }
                    if Instant::now() < deadline {
                        continue;
                    }
                }
                apply_commands(&commands, &mut receivers);
                let (mut now, mut wall) = clocks();
                for (i, r) in receivers.iter_mut().enumerate() {
                    // The clocks are read again every few ports: a pass over
                    // thousands takes milliseconds.
                    if i % CLOCK_EVERY == CLOCK_EVERY - 1 {
                        (now, wall) = clocks();
                    }
                    // By descriptor: `take` borrows the receiver, which owns
                    // the socket and outlives the drain.
                    let fd = r.rtp.as_raw_fd();
                    batch.drain(fd, MAX_PER_PASS, |data, from, stamp| {
                        r.handle_datagram(data, from, arrival(stamp, now, wall));
                    });
                    if pass.is_multiple_of(RTCP_EVERY) {
                        poll_rtcp(r, &mut rtcp_buf);
                    }
                    if let Some((pkt, to)) = r.poll_report(now) {
                        r.send_rtcp(&pkt, to);
                    }
                }
                pass += 1;
                deadline += period;
                // Far behind (the machine stalled): skip ahead instead of bursting.
                if Instant::now() > deadline + period * 5 {
                    deadline = Instant::now() + period;
                }
            }
            apply_commands(&commands, &mut receivers);
            for mut r in receivers {
                if let Some((pkt, to)) = r.farewell() {
                    r.send_rtcp(&pkt, to);
                }
            }
        })
}

fn apply_commands(commands: &mpsc::Receiver<RxCommand>, receivers: &mut Vec<RtpReceiver>) {
    while let Ok(cmd) = commands.try_recv() {
        match cmd {
            RxCommand::Add(r) => receivers.push(*r),
            RxCommand::Remove(id) => {
                if let Some(i) = receivers.iter().position(|r| r.id == id) {
                    let mut r = receivers.swap_remove(i);
                    if let Some((pkt, to)) = r.farewell() {
                        r.send_rtcp(&pkt, to);
                    }
                }
            }
            RxCommand::Signalled(id, addr) => {
                if let Some(r) = receivers.iter_mut().find(|r| r.id == id) {
                    r.set_signalled(addr);
                }
            }
        }
    }
}

/// Reads what waits on a separate RTCP port.
fn poll_rtcp(r: &mut RtpReceiver, buf: &mut [u8]) {
    // Taken out for the loop: handling borrows the receiver.
    let Some(sock) = r.rtcp.take() else { return };
    for _ in 0..MAX_PER_PASS {
        let Ok((n, from)) = sock.recv_from(buf) else {
            break;
        };
        r.handle_rtcp(&buf[..n], from);
    }
    r.rtcp = Some(sock);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams sent 30 ms apart and drained in one pass keep their own
    /// arrival times: the kernel's stamps, not the poll's.
    #[test]
    fn one_pass_takes_each_datagram_with_its_kernel_arrival_time() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        stamp_arrivals(&rx).expect("SO_TIMESTAMPNS");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("addr");
        // The kernel turns stamping on for the whole stack a moment after
        // the first socket asks (a deferred static key); until then a
        // datagram is stamped when read. Wait that out, as a server long up
        // has.
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..3u8 {
            tx.send_to(&[i; 100], to).expect("send");
            std::thread::sleep(Duration::from_millis(30));
        }
        let mut batch = Batch::new();
        let mut got = Vec::new();
        let (now, wall) = clocks();
        batch.drain(rx.as_raw_fd(), MAX_PER_PASS, |data, from, stamp| {
            got.push((data.to_vec(), from, arrival(stamp, now, wall)));
        });
        assert_eq!(got.len(), 3);
        for (i, (data, from, _)) in got.iter().enumerate() {
            assert_eq!(data, &vec![i as u8; 100]);
            assert_eq!(*from, tx.local_addr().expect("addr"));
        }
        let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].2 - w[0].2).collect();
        for g in &gaps {
            assert!(
                (Duration::from_millis(25)..Duration::from_millis(60)).contains(g),
                "arrivals {gaps:?} apart, sent 30 ms apart"
            );
        }
        assert!(got[2].2 <= now, "stamped before the poll");
    }

    #[test]
    fn no_stamp_means_the_poll_time_and_a_future_stamp_is_clamped() {
        let (now, wall) = clocks();
        assert_eq!(arrival(None, now, wall), now);
        let ahead = TimeSpec::new(wall.as_secs() as i64 + 5, 0);
        assert_eq!(arrival(Some(ahead), now, wall), now);
        let before = wall - Duration::from_millis(7);
        let ts = TimeSpec::new(before.as_secs() as i64, before.subsec_nanos() as i64);
        assert_eq!(now - arrival(Some(ts), now, wall), Duration::from_millis(7));
    }
}
