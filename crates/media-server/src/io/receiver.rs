//! One participant's network side, as a receive thread owns it: decides on
//! each datagram that came off its RTP port (RTCP, malformed, oversized, of a
//! foreign payload type, from a stranger: all before it can take a slot in
//! the mixer's ring), keeps reception statistics, and sends RTCP reports and
//! a BYE at the end. No task and no wake-up of its own: the thread polls it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc_util::Unmarshal;

use super::send_queue::{Queued, Sender};
use crate::jitter::MAX_PAYLOAD;
use crate::latch::{Admit, SourceLatch};
use crate::mixer::{InPacket, PacketOut, ParticipantId, ParticipantStats};
use crate::rtcp::{self, ReceptionStats};

/// Counters of the network side.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Datagrams that were not valid RTP or RTCP.
    pub malformed: AtomicU64,
    /// RTP packets with a payload larger than the mixer takes.
    pub oversized: AtomicU64,
    /// Packets dropped because the mixer's ring was full.
    pub ring_full: AtomicU64,
    /// RTCP packets received.
    pub rtcp_in: AtomicU64,
    /// RTCP packets sent.
    pub rtcp_out: AtomicU64,
    /// RTP packets the receive thread sent for the mixer, which leaves its
    /// sends to the receive threads while it has many participants.
    pub rtp_sent_for_mixer: AtomicU64,
    /// Last fraction lost the peer reported about our stream (out of 256).
    pub peer_fraction_lost: AtomicU64,
    /// Last jitter the peer reported about our stream (RTP units).
    pub peer_jitter: AtomicU64,
}

/// The mixer's side of the socket: non-blocking sends from the mixer
/// thread, or queued for the receive thread while the mixer offloads.
pub(crate) struct UdpOut(pub(crate) Sender);

impl PacketOut for UdpOut {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) -> bool {
        self.0.send(to, packet)
    }
}

/// What a receiver is built from.
pub(crate) struct ReceiverConfig {
    pub(crate) id: ParticipantId,
    /// Its RTP socket (non-blocking), shared with the mixer's [`UdpOut`].
    pub(crate) rtp: UdpSocket,
    /// Its RTCP socket when RTCP is not muxed (non-blocking).
    pub(crate) rtcp: Option<UdpSocket>,
    pub(crate) ring: rtrb::Producer<InPacket>,
    /// What the mixer queued to send on `rtp` while it offloads.
    pub(crate) queued: Queued,
    pub(crate) audio_level_ext: Option<u8>,
    pub(crate) clock_rate: u32,
    /// The codec's and DTMF's payload types: the only ones queued.
    pub(crate) payload_types: (u8, Option<u8>),
    /// Where the SDP says the phone sends from.
    pub(crate) signalled: Option<SocketAddr>,
    pub(crate) stats: Arc<EndpointStats>,
    pub(crate) mixer_stats: Arc<ParticipantStats>,
    pub(crate) report_interval: Duration,
    /// SRTP: what arrives is checked and decrypted first.
    pub(crate) srtp: Option<super::secure::SrtpIn>,
}

/// A participant's receiving end.
pub(crate) struct RtpReceiver {
    pub(crate) id: ParticipantId,
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: Option<UdpSocket>,
    ring: rtrb::Producer<InPacket>,
    queued: Queued,
    audio_level_ext: Option<u8>,
    clock_rate: u32,
    payload_types: (u8, Option<u8>),
    /// The source its RTP is taken from (where RTCP goes without RTCP of its own).
    latch: SourceLatch,
    reception: ReceptionStats,
    /// Where RTCP last came from.
    rtcp_remote: Option<SocketAddr>,
    stats: Arc<EndpointStats>,
    mixer_stats: Arc<ParticipantStats>,
    report_interval: Duration,
    next_report: Instant,
    /// The origin of arrival times in RTP units, for the interarrival jitter.
    base: Instant,
    srtp: Option<Box<super::secure::SrtpIn>>,
}

impl RtpReceiver {
    pub(crate) fn new(c: ReceiverConfig, now: Instant) -> Self {
        Self {
            id: c.id,
            rtp: c.rtp,
            rtcp: c.rtcp,
            ring: c.ring,
            queued: c.queued,
            audio_level_ext: c.audio_level_ext,
            clock_rate: c.clock_rate,
            payload_types: c.payload_types,
            latch: SourceLatch::new(c.signalled),
            reception: ReceptionStats::default(),
            rtcp_remote: None,
            stats: c.stats,
            mixer_stats: c.mixer_stats,
            report_interval: c.report_interval,
            next_report: now + c.report_interval,
            base: now,
            srtp: c.srtp.map(Box::new),
        }
    }

    /// A new SDP names where the phone sends from.
    pub(crate) fn set_signalled(&mut self, addr: SocketAddr) {
        self.latch.set_signalled(addr);
    }

    /// Takes one datagram that arrived on the RTP port at `arrival`.
    pub(crate) fn handle_datagram(&mut self, data: &[u8], from: SocketAddr, arrival: Instant) {
        let rtcp = rtcp::is_rtcp(data);
        self.with_plain(data, rtcp, |r, plain| {
            r.handle_plain(plain, rtcp, from, arrival)
        });
    }

    /// Hands `take` the plain packet: `data` itself, or with SRTP, the
    /// packet checked and decrypted before anything else reads it (the
    /// session is out of `self` meanwhile); one that fails is counted and
    /// dropped.
    fn with_plain(&mut self, data: &[u8], rtcp: bool, take: impl FnOnce(&mut Self, &[u8])) {
        let Some(mut s) = self.srtp.take() else {
            take(self, data);
            return;
        };
        match s.unprotect(data, rtcp) {
            Some(n) => take(self, &s.buf[..n]),
            None => {
                self.mixer_stats
                    .srtp_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.srtp = Some(s);
    }

    fn handle_plain(&mut self, data: &[u8], rtcp: bool, from: SocketAddr, arrival: Instant) {
        if rtcp {
            self.read_rtcp(data, from);
            return;
        }
        if let Some((ssrc, seq, ts)) = self.take_rtp(data, from, arrival) {
            let units =
                arrival.saturating_duration_since(self.base).as_secs_f64() * self.clock_rate as f64;
            self.reception.update(ssrc, seq, ts, units);
        }
    }

    /// Takes one datagram that arrived on the separate RTCP port.
    pub(crate) fn handle_rtcp(&mut self, data: &[u8], from: SocketAddr) {
        self.with_plain(data, true, |r, plain| r.read_rtcp(plain, from));
    }

    fn read_rtcp(&mut self, data: &[u8], from: SocketAddr) {
        self.rtcp_remote = Some(from);
        match rtcp::parse(data) {
            Some(info) => {
                self.stats.rtcp_in.fetch_add(1, Ordering::Relaxed);
                let ours = self.our_ssrc();
                if let Some(b) = info.blocks.iter().find(|b| b.ssrc == ours) {
                    self.stats
                        .peer_fraction_lost
                        .store(b.fraction_lost as u64, Ordering::Relaxed);
                    self.stats
                        .peer_jitter
                        .store(b.jitter as u64, Ordering::Relaxed);
                }
            }
            None => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The report due at `now`, and where it goes.
    pub(crate) fn poll_report(&mut self, now: Instant) -> Option<(Vec<u8>, SocketAddr)> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.report_interval;
        let to = self.report_target()?;
        Some((self.report(), to))
    }

    /// The last report with a BYE, sent when the participant leaves.
    pub(crate) fn farewell(&mut self) -> Option<(Vec<u8>, SocketAddr)> {
        let to = self.report_target()?;
        let mut pkt = self.report();
        pkt.extend(rtcp::bye(self.our_ssrc()));
        Some((pkt, to))
    }

    /// Sends the RTP the mixer queued for this participant.
    pub(crate) fn send_queued(&mut self) {
        let (sent, failed) = self.queued.flush(&self.rtp);
        if sent > 0 {
            self.stats
                .rtp_sent_for_mixer
                .fetch_add(sent, Ordering::Relaxed);
        }
        if failed > 0 {
            self.mixer_stats
                .send_errors
                .fetch_add(failed, Ordering::Relaxed);
        }
    }

    /// Sends an RTCP packet without waiting (as SRTCP when the call has
    /// keys): a full socket drops the report.
    pub(crate) fn send_rtcp(&mut self, pkt: &[u8], to: SocketAddr) {
        let sock = self.rtcp.as_ref().unwrap_or(&self.rtp);
        let sent = match self.srtp.as_deref_mut() {
            Some(s) => match s.protect_rtcp(pkt) {
                Some(n) => sock.send_to(&s.buf[..n], to).is_ok(),
                None => false,
            },
            None => sock.send_to(pkt, to).is_ok(),
        };
        if sent {
            self.stats.rtcp_out.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn our_ssrc(&self) -> u32 {
        self.mixer_stats.last_ssrc.load(Ordering::Relaxed) as u32
    }

    /// Where RTCP goes: where RTCP came from, else the RTP source (port + 1 when not muxed).
    fn report_target(&self) -> Option<SocketAddr> {
        let separate = self.rtcp.is_some();
        self.rtcp_remote.or_else(|| {
            self.latch.current().map(|mut a| {
                if separate {
                    a.set_port(a.port().wrapping_add(1));
                }
                a
            })
        })
    }

    fn report(&mut self) -> Vec<u8> {
        let block = self.reception.report();
        let packets = self.mixer_stats.packets_out.load(Ordering::Relaxed);
        let last = self.mixer_stats.last_ssrc.load(Ordering::Relaxed);
        let ssrc = last as u32;
        if packets > 0 {
            let octets = self.mixer_stats.bytes_out.load(Ordering::Relaxed);
            rtcp::sender_report(
                ssrc,
                rtcp::ntp_now(),
                (last >> 32) as u32,
                packets as u32,
                octets as u32,
                block.as_ref(),
            )
        } else {
            rtcp::receiver_report(ssrc, block.as_ref())
        }
    }

    /// Parses one RTP packet and, when it is of this participant's stream,
    /// pushes it to the mixer; returns (ssrc, seq, ts) of a packet taken.
    fn take_rtp(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        arrival: Instant,
    ) -> Option<(u32, u16, u32)> {
        let mut rest = data;
        let header = match rtp::header::Header::unmarshal(&mut rest) {
            Ok(h) if h.version == 2 => h,
            _ => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        // Padding (RFC 3550 §5.1): the last octet counts the octets to drop.
        let pad = if header.padding {
            rest.last().map_or(0, |&n| n as usize)
        } else {
            0
        };
        let Some(payload) = rest.len().checked_sub(pad).map(|n| &rest[..n]) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if payload.len() > MAX_PAYLOAD {
            self.stats.oversized.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let pt = header.payload_type;
        if pt != self.payload_types.0 && Some(pt) != self.payload_types.1 {
            self.mixer_stats
                .foreign_payload
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match self.latch.handle(from, header.ssrc, arrival) {
            Admit::Current => {}
            Admit::Moved => {
                self.mixer_stats.latches.fetch_add(1, Ordering::Relaxed);
            }
            Admit::Stray => {
                self.mixer_stats
                    .stray_packets
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let audio_level = self
            .audio_level_ext
            .and_then(|id| header.get_extension(id))
            .and_then(|b| b.first().copied())
            .map(|b| b & 0x7F);
        if let Ok(chunk) = self.ring.write_chunk_uninit(1) {
            chunk.fill_from_iter(std::iter::once(InPacket {
                seq: header.sequence_number,
                timestamp: header.timestamp,
                payload_type: pt,
                ssrc: header.ssrc,
                audio_level,
                source: from,
                arrival,
                len: payload.len() as u16,
                payload: copy_payload(payload),
            }));
        } else {
            self.stats.ring_full.fetch_add(1, Ordering::Relaxed);
        }
        Some((header.ssrc, header.sequence_number, header.timestamp))
    }
}

fn copy_payload(payload: &[u8]) -> [u8; MAX_PAYLOAD] {
    let mut out = [0; MAX_PAYLOAD];
    out[..payload.len()].copy_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(signalled: Option<SocketAddr>) -> (RtpReceiver, rtrb::Consumer<InPacket>) {
        receiver_with(signalled, None)
    }

    fn receiver_with(
        signalled: Option<SocketAddr>,
        srtp: Option<super::super::secure::SrtpIn>,
    ) -> (RtpReceiver, rtrb::Consumer<InPacket>) {
        let (tx, rx) = rtrb::RingBuffer::new(4);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (_, queued) = super::super::send_queue::queue(
            sock.try_clone().expect("clone"),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        let r = RtpReceiver::new(
            ReceiverConfig {
                id: ParticipantId(1),
                rtp: sock,
                rtcp: None,
                ring: tx,
                queued,
                audio_level_ext: Some(1),
                clock_rate: 8000,
                payload_types: (0, Some(101)),
                signalled,
                stats: Arc::default(),
                mixer_stats: Arc::default(),
                report_interval: Duration::from_secs(5),
                srtp,
            },
            Instant::now(),
        );
        (r, rx)
    }

    #[test]
    fn with_srtp_only_packets_that_authenticate_reach_the_ring_once() {
        use super::super::secure::{SrtpIn, SrtpKeys};
        let suite = srtp::Suite::AesCm128HmacSha1_80;
        let (theirs, ours) = ([7u8; 30], [9u8; 30]);
        let keys = SrtpKeys::new(suite, &theirs, &ours).expect("keys");
        let (mut r, mut rx) = receiver_with(None, Some(SrtpIn::new(&keys).expect("srtp")));
        let mut phone = srtp::Session::new(suite, &theirs[..16], &theirs[16..]).unwrap();
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let now = Instant::now();
        let protect = |phone: &mut srtp::Session, seq: u16| {
            let mut p = rtp(0, seq, 42, &[0x55; 160], 0);
            let n = p.len();
            p.resize(n + 10, 0);
            let len = phone.protect_rtp(&mut p, n).unwrap();
            p.truncate(len);
            p
        };
        let first = protect(&mut phone, 1);
        r.handle_datagram(&first, from, now);
        r.handle_datagram(&first, from, now); // replayed
        let mut forged = protect(&mut phone, 2);
        forged[20] ^= 1;
        r.handle_datagram(&forged, from, now);
        r.handle_datagram(&rtp(0, 3, 42, &[0x55; 160], 0), from, now); // plain RTP
        r.handle_datagram(&protect(&mut phone, 4), from, now);
        let mut seqs = Vec::new();
        while let Ok(p) = rx.pop() {
            seqs.push(p.seq);
        }
        assert_eq!(seqs, [1, 4]);
        assert_eq!(r.mixer_stats.srtp_dropped.load(Ordering::Relaxed), 3);
    }

    fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8], padding: u8) -> Vec<u8> {
        let mut p = vec![if padding > 0 { 0xA0 } else { 0x80 }, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        if padding > 0 {
            p.extend(std::iter::repeat_n(0, padding as usize - 1));
            p.push(padding);
        }
        p
    }

    #[test]
    fn queues_its_stream_and_strips_padding() {
        let (mut r, mut rx) = receiver(None);
        let from: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        r.handle_datagram(&rtp(0, 7, 42, &[1, 2, 3], 4), from, Instant::now());
        let p = rx.pop().expect("queued");
        assert_eq!((p.seq, p.ssrc, p.len), (7, 42, 3));
        assert_eq!(&p.payload[..3], &[1, 2, 3]);
        assert_eq!(p.source, from);
    }

    #[test]
    fn drops_malformed_foreign_and_stray_before_the_ring() {
        let (mut r, mut rx) = receiver(None);
        let phone: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let stranger: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let now = Instant::now();
        r.handle_datagram(&rtp(0, 1, 42, &[0; 160], 0), phone, now);
        for seq in 0..10 {
            r.handle_datagram(&rtp(0, seq, 7, &[0; 160], 0), stranger, now);
        }
        r.handle_datagram(&rtp(8, 2, 42, &[0; 160], 0), phone, now);
        r.handle_datagram(&[0x80, 0], phone, now);
        let mut bad_padding = rtp(0, 3, 42, &[0; 10], 0);
        bad_padding[0] |= 0x20;
        *bad_padding.last_mut().expect("payload") = 200;
        r.handle_datagram(&bad_padding, phone, now);
        r.handle_datagram(&rtp(0, 4, 42, &[0; 160], 0), phone, now);
        let seqs: Vec<u16> = std::iter::from_fn(|| rx.pop().ok())
            .map(|p| p.seq)
            .collect();
        assert_eq!(seqs, [1, 4]);
        assert_eq!(r.mixer_stats.stray_packets.load(Ordering::Relaxed), 10);
        assert_eq!(r.mixer_stats.foreign_payload.load(Ordering::Relaxed), 1);
        assert_eq!(r.stats.malformed.load(Ordering::Relaxed), 2);
        assert_eq!(r.stats.ring_full.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn reports_go_where_rtcp_came_from_and_end_with_a_bye() {
        let (mut r, _rx) = receiver(None);
        let t0 = Instant::now();
        assert!(
            r.poll_report(t0 + Duration::from_secs(6)).is_none(),
            "nobody to report to"
        );
        let phone: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        r.handle_datagram(&rtp(0, 1, 42, &[0; 160], 0), phone, t0);
        assert!(
            r.poll_report(t0 + Duration::from_secs(7)).is_none(),
            "not due yet"
        );
        let (pkt, to) = r.poll_report(t0 + Duration::from_secs(12)).expect("due");
        assert_eq!(to, phone);
        assert_eq!(pkt[1], 201, "a receiver report: nothing sent yet");
        let (pkt, _) = r.farewell().expect("bye");
        assert!(pkt.windows(2).any(|w| w == [0x81, 203]), "ends with a BYE");
    }
}
