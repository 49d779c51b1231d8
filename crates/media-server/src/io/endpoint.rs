//! One participant's RTP/RTCP socket task: parses what arrives, drops what
//! is malformed, of a foreign payload type or from a stranger (before it can
//! take a slot in the ring), hands good packets to the mixer's ring, and
//! sends RTCP reports and a BYE at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use webrtc_util::Unmarshal;

use crate::jitter::MAX_PAYLOAD;
use crate::latch::{Admit, SourceLatch};
use crate::mixer::{InPacket, PacketOut, ParticipantStats};
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
    /// Last fraction lost the peer reported about our stream (out of 256).
    pub peer_fraction_lost: AtomicU64,
    /// Last jitter the peer reported about our stream (RTP units).
    pub peer_jitter: AtomicU64,
}

/// The mixer's side of the socket: non-blocking sends from the mixer thread.
pub(crate) struct UdpOut(pub(crate) std::net::UdpSocket);

impl PacketOut for UdpOut {
    fn send(&mut self, to: SocketAddr, packet: &[u8]) -> bool {
        self.0.send_to(packet, to).is_ok()
    }
}

pub(crate) struct EndpointTask {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: Option<UdpSocket>,
    pub(crate) audio_level_ext: Option<u8>,
    pub(crate) clock_rate: u32,
    pub(crate) stats: Arc<EndpointStats>,
    pub(crate) mixer_stats: Arc<ParticipantStats>,
    pub(crate) report_interval: Duration,
    /// The codec's and DTMF's payload types: the only ones queued.
    pub(crate) payload_types: (u8, Option<u8>),
    /// Where the latest SDP says the phone sends from.
    pub(crate) signalled: watch::Receiver<Option<SocketAddr>>,
}

impl EndpointTask {
    /// Runs until `stop`. The ring is a local of the task (an rtrb producer
    /// is Send but not Sync, and `self` is borrowed across awaits).
    pub(crate) async fn run(
        mut self,
        mut ring: rtrb::Producer<InPacket>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 1500];
        let mut reception = ReceptionStats::default();
        let base = Instant::now();
        let mut remote: Option<SocketAddr> = None;
        let mut rtcp_remote: Option<SocketAddr> = None;
        let mut latch = SourceLatch::new(*self.signalled.borrow_and_update());
        let mut timer = tokio::time::interval(self.report_interval);
        timer.tick().await;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = self.rtp.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let data = &buf[..n];
                    if rtcp::is_rtcp(data) {
                        self.take_rtcp(data);
                        rtcp_remote = Some(from);
                        continue;
                    }
                    if self.signalled.has_changed().unwrap_or(false) {
                        if let Some(addr) = *self.signalled.borrow_and_update() {
                            latch.set_signalled(addr);
                        }
                    }
                    if let Some((ssrc, seq, ts)) = self.take_rtp(&mut ring, &mut latch, data, from) {
                        remote = Some(from);
                        let arrival = base.elapsed().as_secs_f64() * self.clock_rate as f64;
                        reception.update(ssrc, seq, ts, arrival);
                    }
                }
                r = recv_opt(&self.rtcp, &mut rtcp_buf) => {
                    if let Some((n, from)) = r {
                        self.take_rtcp(&rtcp_buf[..n]);
                        rtcp_remote = Some(from);
                    }
                }
                _ = timer.tick() => {
                    if let Some(to) = report_target(remote, rtcp_remote, self.rtcp.is_some()) {
                        let pkt = self.report(&mut reception);
                        self.send_rtcp(&pkt, to).await;
                    }
                }
            }
        }
        if let Some(to) = report_target(remote, rtcp_remote, self.rtcp.is_some()) {
            let mut pkt = self.report(&mut reception);
            pkt.extend(rtcp::bye(self.our_ssrc()));
            self.send_rtcp(&pkt, to).await;
        }
    }

    fn our_ssrc(&self) -> u32 {
        self.mixer_stats.last_ssrc.load(Ordering::Relaxed) as u32
    }

    /// Parses one RTP packet and, when it is of this participant's stream,
    /// pushes it to the mixer; returns (ssrc, seq, ts) of a packet taken.
    fn take_rtp(
        &self,
        ring: &mut rtrb::Producer<InPacket>,
        latch: &mut SourceLatch,
        data: &[u8],
        from: SocketAddr,
    ) -> Option<(u32, u16, u32)> {
        let pkt = match rtp::packet::Packet::unmarshal(&mut &data[..]) {
            Ok(p) if p.header.version == 2 => p,
            _ => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        if pkt.payload.len() > MAX_PAYLOAD {
            self.stats.oversized.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let pt = pkt.header.payload_type;
        if pt != self.payload_types.0 && Some(pt) != self.payload_types.1 {
            self.mixer_stats
                .foreign_payload
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let arrival = Instant::now();
        match latch.handle(from, pkt.header.ssrc, arrival) {
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
            .and_then(|id| pkt.header.get_extension(id))
            .and_then(|b| b.first().copied())
            .map(|b| b & 0x7F);
        let mut p = InPacket {
            seq: pkt.header.sequence_number,
            timestamp: pkt.header.timestamp,
            payload_type: pkt.header.payload_type,
            ssrc: pkt.header.ssrc,
            audio_level,
            source: from,
            arrival,
            len: pkt.payload.len() as u16,
            payload: [0; MAX_PAYLOAD],
        };
        p.payload[..pkt.payload.len()].copy_from_slice(&pkt.payload);
        if ring.push(p).is_err() {
            self.stats.ring_full.fetch_add(1, Ordering::Relaxed);
        }
        Some((
            pkt.header.ssrc,
            pkt.header.sequence_number,
            pkt.header.timestamp,
        ))
    }

    fn take_rtcp(&self, data: &[u8]) {
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

    fn report(&self, reception: &mut ReceptionStats) -> Vec<u8> {
        let block = reception.report();
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

    async fn send_rtcp(&self, pkt: &[u8], to: SocketAddr) {
        let sock = self.rtcp.as_ref().unwrap_or(&self.rtp);
        if sock.send_to(pkt, to).await.is_ok() {
            self.stats.rtcp_out.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where RTCP goes: where RTCP came from, else the RTP source (port + 1 when not muxed).
fn report_target(
    rtp_remote: Option<SocketAddr>,
    rtcp_remote: Option<SocketAddr>,
    separate: bool,
) -> Option<SocketAddr> {
    rtcp_remote.or_else(|| {
        rtp_remote.map(|mut a| {
            if separate {
                a.set_port(a.port().wrapping_add(1));
            }
            a
        })
    })
}

async fn recv_opt(sock: &Option<UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}
