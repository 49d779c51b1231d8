//! Media counters over every participant, past and present: what a
//! participant counted is added to the retired totals when it leaves, so
//! that a sum over the live ones plus the retired never goes down (what a
//! Prometheus counter must do).

use std::sync::atomic::Ordering;

use super::EndpointStats;
use crate::mixer::ParticipantStats;

/// Media counters summed over participants.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaTotals {
    /// RTP packets taken in by the mixers.
    pub packets_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// Of those, sent by the receive threads for a mixer with many participants.
    pub sent_by_receive_threads: u64,
    /// Packets the jitter buffers found missing.
    pub lost: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Packets that failed to decode.
    pub decode_errors: u64,
    /// Packets from a source other than the latched one.
    pub stray_packets: u64,
    /// Packets with a payload type that is neither the codec's nor DTMF.
    pub foreign_payload: u64,
    /// Datagrams that were not RTP or RTCP.
    pub malformed: u64,
    /// Packets dropped because a mixer's ring was full.
    pub ring_full: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// SRTP packets dropped (bad tag, replay, too short).
    pub srtp_dropped: u64,
}

impl MediaTotals {
    /// Adds one participant's counters.
    pub(crate) fn add(&mut self, p: &ParticipantStats, e: &EndpointStats) {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.packets_in += get(&p.packets_in);
        self.packets_out += get(&p.packets_out);
        self.sent_by_receive_threads += get(&e.rtp_sent_for_mixer);
        self.lost += get(&p.lost);
        self.late += get(&p.late);
        self.decode_errors += get(&p.decode_errors);
        self.stray_packets += get(&p.stray_packets);
        self.foreign_payload += get(&p.foreign_payload);
        self.malformed += get(&e.malformed);
        self.ring_full += get(&e.ring_full);
        self.send_errors += get(&p.send_errors);
        self.srtp_dropped += get(&p.srtp_dropped);
    }
}
