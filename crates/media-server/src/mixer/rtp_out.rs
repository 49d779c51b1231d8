//! Writing outgoing RTP headers in place (RFC 3550 §5.1), with the CSRCs of
//! the mixed talkers and, when negotiated, their RFC 6465 levels in a
//! one-byte header extension (RFC 8285). No allocation.

use super::control::MAX_TALKERS;

/// The state of one outgoing stream.
#[derive(Debug, Clone)]
pub(crate) struct RtpOut {
    pub(crate) ssrc: u32,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) started: bool,
}

impl RtpOut {
    pub(crate) fn new(ssrc: u32, seq: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            seq,
            timestamp,
            started: false,
        }
    }

    /// Writes a header for one packet into `buf`; returns its length. The
    /// stream advances by `ts_step`.
    pub(crate) fn write_header(
        &mut self,
        buf: &mut [u8],
        payload_type: u8,
        ts_step: u32,
        csrcs: &[(u32, u8)],
        level_ext: Option<u8>,
    ) -> usize {
        let csrcs = &csrcs[..csrcs.len().min(MAX_TALKERS).min(15)];
        let ext = level_ext.filter(|id| (1..=14).contains(id) && !csrcs.is_empty());
        let marker = !self.started;
        self.started = true;
        buf[0] = 0x80 | if ext.is_some() { 0x10 } else { 0 } | csrcs.len() as u8;
        buf[1] = (if marker { 0x80 } else { 0 }) | (payload_type & 0x7F);
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut n = 12;
        for (ssrc, _) in csrcs {
            buf[n..n + 4].copy_from_slice(&ssrc.to_be_bytes());
            n += 4;
        }
        if let Some(id) = ext {
            // One-byte header: id and len-1, then one level byte per CSRC.
            let body = 1 + csrcs.len();
            let words = body.div_ceil(4);
            buf[n..n + 2].copy_from_slice(&0xBEDEu16.to_be_bytes());
            buf[n + 2..n + 4].copy_from_slice(&(words as u16).to_be_bytes());
            n += 4;
            buf[n] = (id << 4) | (csrcs.len() as u8 - 1);
            for (i, (_, level)) in csrcs.iter().enumerate() {
                buf[n + 1 + i] = level & 0x7F;
            }
            for b in &mut buf[n + body..n + words * 4] {
                *b = 0;
            }
            n += words * 4;
        }
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(ts_step);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc_util::Unmarshal;

    #[test]
    fn header_parses_back_with_csrcs_and_levels() {
        let mut out = RtpOut::new(0xDEADBEEF, 65535, 1000);
        let mut buf = [0u8; 200];
        let n = out.write_header(&mut buf, 0, 160, &[(1, 10), (2, 20)], Some(3));
        buf[n..n + 4].copy_from_slice(b"abcd");
        let p = rtp::packet::Packet::unmarshal(&mut &buf[..n + 4]).unwrap();
        assert_eq!(p.header.ssrc, 0xDEADBEEF);
        assert_eq!(p.header.csrc, vec![1, 2]);
        assert!(p.header.marker);
        assert_eq!(p.header.get_extension(3).unwrap().as_ref(), &[10, 20]);
        assert_eq!(&p.payload[..], b"abcd");
        let n2 = out.write_header(&mut buf, 0, 160, &[], Some(3));
        assert_eq!(n2, 12);
        let p = rtp::packet::Packet::unmarshal(&mut &buf[..n2]).unwrap();
        assert_eq!(
            (
                p.header.sequence_number,
                p.header.timestamp,
                p.header.marker
            ),
            (0, 1160, false)
        );
    }
}
