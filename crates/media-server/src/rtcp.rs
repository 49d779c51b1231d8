//! RTCP (RFC 3550 §6), sans-IO: reception statistics for our receiver
//! reports (Appendix A.3 and A.8), and building and parsing SR, RR and BYE.

/// One report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The SSRC reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, out of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP clock units.
    pub jitter: u32,
}

/// What an incoming compound packet told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpInfo {
    /// Sender reports seen (their sender SSRC).
    pub sender_reports: u32,
    /// Receiver reports seen.
    pub receiver_reports: u32,
    /// Report blocks about our stream.
    pub blocks: Vec<ReportBlock>,
    /// A BYE was present.
    pub bye: bool,
}

/// Reception statistics for one incoming stream.
#[derive(Debug, Clone, Default)]
pub struct ReceptionStats {
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    jitter: f64,
    last_transit: Option<f64>,
    started: bool,
}

impl ReceptionStats {
    /// Accounts one packet; `arrival` is in RTP clock units on any fixed base.
    pub fn update(&mut self, ssrc: u32, seq: u16, timestamp: u32, arrival: f64) {
        if !self.started || ssrc != self.ssrc {
            *self = Self {
                ssrc,
                base_seq: seq as u32,
                max_seq: seq,
                started: true,
                ..Self::default()
            };
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta < 0x8000 {
                if seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = seq;
            }
        }
        self.received += 1;
        let transit = arrival - timestamp as f64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// The report block for the next RR/SR (advances the interval counters).
    pub fn report(&mut self) -> Option<ReportBlock> {
        if !self.started {
            return None;
        }
        let extended = self.cycles + self.max_seq as u32;
        let expected = extended.wrapping_sub(self.base_seq) + 1;
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64) as u8
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost: fraction,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: extended,
            jitter: self.jitter as u32,
        })
    }
}

fn header(buf: &mut Vec<u8>, count: u8, pt: u8, words_after: usize) {
    buf.push(0x80 | (count & 0x1F));
    buf.push(pt);
    buf.extend_from_slice(&(words_after as u16).to_be_bytes());
}

fn block(buf: &mut Vec<u8>, b: &ReportBlock) {
    buf.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost as u32) & 0xFF_FFFF;
    buf.push(b.fraction_lost);
    buf.extend_from_slice(&lost.to_be_bytes()[1..]);
    buf.extend_from_slice(&b.highest_seq.to_be_bytes());
    buf.extend_from_slice(&b.jitter.to_be_bytes());
    buf.extend_from_slice(&[0; 8]); // LSR and DLSR: we do not track SR arrival times yet
}

/// A sender report: NTP time, RTP time, counts, and an optional report block.
pub fn sender_report(
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    report: Option<&ReportBlock>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(52);
    let n = report.is_some() as u8;
    header(&mut buf, n, 200, 6 + 6 * n as usize);
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf.extend_from_slice(&ntp.to_be_bytes());
    buf.extend_from_slice(&rtp_ts.to_be_bytes());
    buf.extend_from_slice(&packets.to_be_bytes());
    buf.extend_from_slice(&octets.to_be_bytes());
    if let Some(b) = report {
        block(&mut buf, b);
    }
    buf
}

/// A receiver report.
pub fn receiver_report(ssrc: u32, report: Option<&ReportBlock>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let n = report.is_some() as u8;
    header(&mut buf, n, 201, 1 + 6 * n as usize);
    buf.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(b) = report {
        block(&mut buf, b);
    }
    buf
}

/// A BYE for `ssrc`.
pub fn bye(ssrc: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(8);
    header(&mut buf, 1, 203, 1);
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf
}

/// True when a datagram on a muxed port is RTCP (RFC 5761 §4: PT 192–223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// Parses a compound packet; None when it is malformed.
pub fn parse(mut buf: &[u8]) -> Option<RtcpInfo> {
    let mut info = RtcpInfo::default();
    if buf.len() < 4 {
        return None;
    }
    while buf.len() >= 4 {
        if buf[0] >> 6 != 2 {
            return None;
        }
        let count = (buf[0] & 0x1F) as usize;
        let pt = buf[1];
        let len = (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1) * 4;
        let pkt = buf.get(..len)?;
        let blocks_at = match pt {
            200 => {
                info.sender_reports += 1;
                Some(28)
            }
            201 => {
                info.receiver_reports += 1;
                Some(8)
            }
            203 => {
                info.bye = true;
                None
            }
            _ => None,
        };
        if let Some(at) = blocks_at {
            for i in 0..count {
                let b = pkt.get(at + i * 24..at + (i + 1) * 24)?;
                let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
                let lost = if lost & 0x80_0000 != 0 {
                    lost as i32 - 0x100_0000
                } else {
                    lost as i32
                };
                info.blocks.push(ReportBlock {
                    ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    fraction_lost: b[4],
                    cumulative_lost: lost,
                    highest_seq: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    jitter: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                });
            }
        }
        buf = &buf[len..];
    }
    Some(info)
}

/// The current time as a 64-bit NTP timestamp.
pub fn ntp_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_roundtrip() {
        let mut s = ReceptionStats::default();
        for (i, seq) in [65534u16, 65535, 1, 2, 3].iter().enumerate() {
            s.update(9, *seq, i as u32 * 160, i as f64 * 160.0);
        }
        let r = s.report().unwrap();
        assert_eq!(r.cumulative_lost, 1, "seq 0 is missing");
        assert_eq!(r.highest_seq, (1 << 16) + 3);
        assert_eq!(r.fraction_lost, (256 / 6) as u8);
        let sr = sender_report(5, ntp_now(), 1234, 10, 1600, Some(&r));
        let mut compound = sr.clone();
        compound.extend(bye(5));
        let info = parse(&compound).unwrap();
        assert_eq!((info.sender_reports, info.bye), (1, true));
        assert_eq!(info.blocks, vec![r]);
        assert!(is_rtcp(&sr));
        let rr = receiver_report(5, None);
        assert_eq!(parse(&rr).unwrap().receiver_reports, 1);
        assert_eq!(parse(&sr[..10]), None);
        assert_eq!(parse(&[0x80, 200, 0xFF, 0xFF]), None);
    }
}
