//! Ogg Opus (RFC 7845) for a mono 48 kHz stream of 20 ms packets: the
//! identification and comment headers, then the audio with each page's
//! granule position, over any `Write`. The last packet is held back until
//! the next one (or the end) arrives, so that it can carry end-of-stream.

use std::io::Write;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Samples per 20 ms packet at 48 kHz (granule positions count these).
pub const SAMPLES_PER_PACKET: u64 = 960;
/// Encoder delay the decoder skips: libopus's lookahead at 48 kHz for the
/// VOIP application (2.5 ms plus 4 ms of delay compensation).
pub const PRE_SKIP: u16 = 312;
/// Packets per page: a page is flushed every second, so a crash loses at
/// most that much.
const PACKETS_PER_PAGE: u64 = 50;
/// A packet that carries no audio (TOC only: CELT fullband 20 ms, code 0,
/// an empty frame). The decoder conceals it; it keeps the timeline when
/// the mixer had nothing (a frame dropped on a full queue).
pub const GAP_PACKET: [u8; 1] = [31 << 3];

/// The identification header (RFC 7845 §5.1): mono, mapping family 0.
pub fn opus_head(input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(1); // channels
    h.extend_from_slice(&PRE_SKIP.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family
    h
}

/// The comment header (RFC 7845 §5.2): vendor and `KEY=value` comments.
pub fn opus_tags(vendor: &str, comments: &[(&str, &str)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    t.extend_from_slice(&len(vendor.len()));
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&len(comments.len()));
    for (k, v) in comments {
        let c = format!("{k}={v}");
        t.extend_from_slice(&len(c.len()));
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// Writes one logical Ogg Opus stream.
pub struct OggOpusWriter<W: Write> {
    ogg: PacketWriter<'static, W>,
    serial: u32,
    held: Option<Vec<u8>>,
    packets: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: both headers, each on a page of its own as RFC
    /// 7845 §3 requires.
    pub fn new(
        out: W,
        serial: u32,
        vendor: &str,
        comments: &[(&str, &str)],
    ) -> std::io::Result<Self> {
        let mut ogg = PacketWriter::new(out);
        ogg.write_packet(opus_head(48_000), serial, PacketWriteEndInfo::EndPage, 0)?;
        ogg.write_packet(
            opus_tags(vendor, comments),
            serial,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        Ok(Self {
            ogg,
            serial,
            held: None,
            packets: 0,
        })
    }

    /// Adds the next 20 ms packet.
    pub fn push(&mut self, packet: &[u8]) -> std::io::Result<()> {
        if let Some(prev) = self.held.replace(packet.to_vec()) {
            self.write(prev, false)?;
        }
        Ok(())
    }

    fn write(&mut self, packet: Vec<u8>, last: bool) -> std::io::Result<()> {
        self.packets += 1;
        let info = if last {
            PacketWriteEndInfo::EndStream
        } else if self.packets.is_multiple_of(PACKETS_PER_PAGE) {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        let granule = self.packets * SAMPLES_PER_PACKET;
        self.ogg.write_packet(packet, self.serial, info, granule)
    }

    /// Packets added so far.
    pub fn packets(&self) -> u64 {
        self.packets + u64::from(self.held.is_some())
    }

    /// Ends the stream (the held packet carries end-of-stream; a stream
    /// without audio gets one gap packet, as a page needs a packet) and
    /// returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        let last = self.held.take().unwrap_or_else(|| GAP_PACKET.to_vec());
        self.write(last, true)?;
        let mut out = self.ogg.into_inner();
        out.flush()?;
        Ok(out)
    }

    /// The output, for flushing it to disk between pages.
    pub fn output(&mut self) -> &mut W {
        self.ogg.inner_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_rfc_7845() {
        let h = opus_head(48_000);
        assert_eq!(h.len(), 19);
        assert_eq!(&h[..8], b"OpusHead");
        assert_eq!((h[8], h[9]), (1, 1));
        assert_eq!(u16::from_le_bytes([h[10], h[11]]), PRE_SKIP);
        assert_eq!(u32::from_le_bytes([h[12], h[13], h[14], h[15]]), 48_000);
        let t = opus_tags("confab", &[("TITLE", "standup")]);
        assert_eq!(&t[..8], b"OpusTags");
        assert_eq!(u32::from_le_bytes([t[8], t[9], t[10], t[11]]), 6);
        assert_eq!(&t[12..18], b"confab");
        assert_eq!(u32::from_le_bytes([t[18], t[19], t[20], t[21]]), 1);
        assert_eq!(&t[26..], b"TITLE=standup");
    }

    /// Pages as the Ogg framing (RFC 3533) lays them out: capture pattern,
    /// flags, granule, serial and sequence, read back by hand.
    #[test]
    fn pages_carry_granules_and_the_last_one_ends_the_stream() {
        let mut w = OggOpusWriter::new(Vec::new(), 7, "confab", &[]).unwrap();
        for _ in 0..120 {
            w.push(&[0xfc, 1, 2, 3]).unwrap();
        }
        assert_eq!(w.packets(), 120);
        let out = w.finish().unwrap();
        let mut pages = Vec::new();
        let mut at = 0;
        while at < out.len() {
            assert_eq!(&out[at..at + 4], b"OggS");
            let flags = out[at + 5];
            let granule = u64::from_le_bytes(out[at + 6..at + 14].try_into().unwrap());
            let serial = u32::from_le_bytes(out[at + 14..at + 18].try_into().unwrap());
            let segments = out[at + 26] as usize;
            let body: usize = out[at + 27..at + 27 + segments]
                .iter()
                .map(|&b| b as usize)
                .sum();
            pages.push((flags, granule, serial));
            at += 27 + segments + body;
        }
        // Two header pages, one page a second of audio, the last flagged.
        assert_eq!(pages.len(), 2 + 3, "{pages:?}");
        assert_eq!(pages[0], (2, 0, 7), "beginning of stream");
        assert_eq!(pages[1].1, 0);
        assert_eq!(pages[2].1, 50 * 960);
        assert_eq!(pages[3].1, 100 * 960);
        assert_eq!(pages[4], (4, 120 * 960, 7), "end of stream");
    }
}
