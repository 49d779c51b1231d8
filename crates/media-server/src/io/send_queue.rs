//! Where a participant's outgoing RTP leaves the process. A mixer thread
//! with few participants sends each packet itself. One with many would
//! spend most of its tick in `sendto` (about 6 µs a packet on loopback:
//! a room of 5,000 took 30 ms of a 20 ms tick), so past a threshold it
//! only copies each packet into the participant's queue, and the receive
//! threads, which own the same sockets and already visit every
//! participant each tick, send them right after the tick: the sends of
//! one big room are spread over as many threads as there are receive
//! threads, and the mix itself stays one thread's sum.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The largest datagram queued; a bigger one (a high-rate Opus frame) is
/// sent at once instead.
pub(crate) const QUEUED_DATAGRAM: usize = 512;
/// Datagrams a participant's queue holds: a tick's packet and slack for
/// a receive thread that runs late. When it is full the mixer sends itself.
pub(crate) const QUEUE_SLOTS: usize = 4;

/// One packet on its way out.
pub(crate) struct Datagram {
    to: SocketAddr,
    len: u16,
    bytes: [u8; QUEUED_DATAGRAM],
}

/// Whether a mixer thread hands its sends to the receive threads, with
/// hysteresis on its participant count so the mode does not flap.
#[derive(Debug)]
pub(crate) struct Offload {
    on: Arc<AtomicBool>,
    from: usize,
}

impl Offload {
    /// Offloading from `from` participants on (0: always), off again below
    /// three quarters of that.
    pub(crate) fn new(from: usize) -> Self {
        Self {
            on: Arc::new(AtomicBool::new(from == 0)),
            from,
        }
    }

    /// The flag the participants' senders read.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.on.clone()
    }

    /// Whether sends are queued now.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Updates the mode after a tick of `participants`; true while on.
    pub(crate) fn update(&self, participants: usize) -> bool {
        let on = self.on.load(Ordering::Relaxed);
        let now = if on {
            participants >= self.from * 3 / 4
        } else {
            participants >= self.from
        };
        if now != on {
            self.on.store(now, Ordering::Relaxed);
        }
        now
    }
}

/// A receive thread as the mixers see it: told that sends wait, then
/// woken. The flag spares it a pass over its participants' queues on the
/// ticks no mixer queued anything (every tick below the threshold).
#[derive(Clone)]
pub(crate) struct SendWake {
    thread: std::thread::Thread,
    waiting: Arc<AtomicBool>,
}

impl SendWake {
    pub(crate) fn new(thread: std::thread::Thread, waiting: Arc<AtomicBool>) -> Self {
        Self { thread, waiting }
    }

    /// Tells the receive thread that sends wait in its queues, and wakes it.
    pub(crate) fn notify(&self) {
        self.waiting.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// The mixer's side: sends at once, or queues for the receive thread.
pub(crate) struct Sender {
    sock: UdpSocket,
    /// The queue and its mixer's flag; none: always at once.
    queue: Option<(rtrb::Producer<Datagram>, Arc<AtomicBool>)>,
}

/// The receive thread's side: sends what the mixer queued.
pub(crate) struct Queued(rtrb::Consumer<Datagram>);

/// A participant's queue, both ends.
pub(crate) fn queue(sock: UdpSocket, offload: Arc<AtomicBool>) -> (Sender, Queued) {
    let (tx, rx) = rtrb::RingBuffer::new(QUEUE_SLOTS);
    (
        Sender {
            sock,
            queue: Some((tx, offload)),
        },
        Queued(rx),
    )
}

impl Sender {
    /// A sender that always sends at once (no receive thread behind it).
    pub(crate) fn direct(sock: UdpSocket) -> Self {
        Self { sock, queue: None }
    }

    /// Sends `packet` to `to` now, or queues it while the mixer offloads;
    /// false if it could not be sent. No allocation, no blocking.
    pub(crate) fn send(&mut self, to: SocketAddr, packet: &[u8]) -> bool {
        if let Some((queue, offload)) = &mut self.queue {
            if offload.load(Ordering::Relaxed) && packet.len() <= QUEUED_DATAGRAM {
                if let Ok(slot) = queue.write_chunk_uninit(1) {
                    let mut bytes = [0; QUEUED_DATAGRAM];
                    bytes[..packet.len()].copy_from_slice(packet);
                    slot.fill_from_iter(std::iter::once(Datagram {
                        to,
                        len: packet.len() as u16,
                        bytes,
                    }));
                    return true;
                }
            }
        }
        self.sock.send_to(packet, to).is_ok()
    }
}

impl Queued {
    /// Sends what waits on `sock`: how many were sent, how many failed.
    pub(crate) fn flush(&mut self, sock: &UdpSocket) -> (u64, u64) {
        let waiting = self.0.slots();
        let Ok(chunk) = self.0.read_chunk(waiting) else {
            return (0, 0);
        };
        let (a, b) = chunk.as_slices();
        let failed = a
            .iter()
            .chain(b)
            .filter(|d| sock.send_to(&d.bytes[..d.len as usize], d.to).is_err())
            .count();
        chunk.commit_all();
        ((waiting - failed) as u64, failed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let ours = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
        phone
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .expect("timeout");
        (ours, phone)
    }

    #[test]
    fn queued_packets_leave_in_order_on_flush_and_not_before() {
        let (ours, phone) = pair();
        let to = phone.local_addr().expect("addr");
        let offload = Offload::new(0);
        let (mut tx, mut rx) = queue(ours.try_clone().expect("clone"), offload.flag());
        assert!(tx.send(to, b"one"));
        assert!(tx.send(to, b"two"));
        phone.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 64];
        assert!(
            phone.recv_from(&mut buf).is_err(),
            "nothing before the flush"
        );
        assert_eq!(rx.flush(&ours), (2, 0));
        phone.set_nonblocking(false).expect("blocking");
        for want in [&b"one"[..], b"two"] {
            let (n, from) = phone.recv_from(&mut buf).expect("sent by the flush");
            assert_eq!((&buf[..n], from), (want, ours.local_addr().expect("addr")));
        }
    }

    #[test]
    fn a_full_queue_a_big_packet_or_offloading_off_send_at_once() {
        let (ours, phone) = pair();
        let to = phone.local_addr().expect("addr");
        let offload = Offload::new(0);
        let (mut tx, _rx) = queue(ours.try_clone().expect("clone"), offload.flag());
        for _ in 0..QUEUE_SLOTS {
            assert!(tx.send(to, b"queued"));
        }
        let big = [7u8; QUEUED_DATAGRAM + 1];
        assert!(tx.send(to, b"full"));
        assert!(tx.send(to, &big));
        let mut buf = [0u8; 1024];
        let (n, _) = phone.recv_from(&mut buf).expect("the queue was full");
        assert_eq!(&buf[..n], b"full");
        let (n, _) = phone.recv_from(&mut buf).expect("too big to queue");
        assert_eq!(n, big.len());

        let direct = Offload::new(100);
        let (mut tx, _rx) = queue(ours, direct.flag());
        assert!(tx.send(to, b"direct"));
        let (n, _) = phone.recv_from(&mut buf).expect("offloading is off");
        assert_eq!(&buf[..n], b"direct");
    }

    #[test]
    fn offloading_turns_on_at_the_threshold_and_off_a_quarter_below() {
        let o = Offload::new(400);
        let flag = o.flag();
        assert!(!o.update(399));
        assert!(o.update(400));
        assert!(flag.load(Ordering::Relaxed));
        assert!(o.update(300), "hysteresis");
        assert!(!o.update(299));
        assert!(!flag.load(Ordering::Relaxed));
        assert!(Offload::new(0).update(0), "0: always");
    }
}
