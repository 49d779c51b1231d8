//! What an Opus packet says about itself before it is decoded (RFC 6716
//! §3.1): its mode, band, frame length and frame count. Used to size
//! buffers and to tell a DTX gap from a loss without a decode.

use crate::{Bandwidth, Error};

/// Codec mode of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Linear prediction (speech), up to wideband.
    Silk,
    /// SILK below 8 kHz and CELT above.
    Hybrid,
    /// MDCT (music, low delay).
    Celt,
}

/// The table-of-contents byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toc {
    config: u8,
    /// The packet carries two channels.
    pub stereo: bool,
    code: u8,
}

impl Toc {
    /// Reads the first byte of a packet.
    pub fn parse(packet: &[u8]) -> Result<Self, Error> {
        let &b = packet.first().ok_or(Error::InvalidPacket)?;
        Ok(Self {
            config: b >> 3,
            stereo: b & 0x04 != 0,
            code: b & 0x03,
        })
    }

    /// The mode.
    pub fn mode(self) -> Mode {
        match self.config {
            0..=11 => Mode::Silk,
            12..=15 => Mode::Hybrid,
            _ => Mode::Celt,
        }
    }

    /// The audio band.
    pub fn bandwidth(self) -> Bandwidth {
        match self.config {
            0..=3 | 16..=19 => Bandwidth::Narrow,
            4..=7 => Bandwidth::Medium,
            8..=11 | 20..=23 => Bandwidth::Wide,
            12 | 13 | 24..=27 => Bandwidth::SuperWide,
            _ => Bandwidth::Full,
        }
    }

    /// One frame's length in samples at 48 kHz.
    pub fn frame_samples_48k(self) -> usize {
        let c = self.config as usize;
        match self.mode() {
            Mode::Silk => [480, 960, 1920, 2880][c % 4],
            Mode::Hybrid => [480, 960][c % 2],
            Mode::Celt => [120, 240, 480, 960][c % 4],
        }
    }
}

/// The packet's duration in samples at 48 kHz (all its frames), checked
/// against the RFC's 120 ms limit.
pub fn packet_samples(packet: &[u8]) -> Result<usize, Error> {
    let toc = Toc::parse(packet)?;
    let frames = match toc.code {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let &count = packet.get(1).ok_or(Error::InvalidPacket)?;
            (count & 0x3f) as usize
        }
    };
    let total = frames * toc.frame_samples_48k();
    if frames == 0 || total > 5760 {
        return Err(Error::InvalidPacket);
    }
    Ok(total)
}

/// The SILK layer's first flags (RFC 6716 §4.2.3): voice activity in the
/// first SILK frame and whether LBRR (in-band FEC) data follows. Coded as
/// uniform binary symbols first of all, so they are the leading bits of the
/// first frame's first byte. None for CELT packets and for layouts whose
/// first frame does not start right after the TOC (codes 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilkFlags {
    /// The encoder's voice activity detector fired on the first frame.
    pub voice: bool,
    /// The packet carries FEC data for the frame before it.
    pub lbrr: bool,
}

impl SilkFlags {
    /// Reads the flags of `packet`.
    pub fn parse(packet: &[u8]) -> Option<Self> {
        let toc = Toc::parse(packet).ok()?;
        if toc.mode() == Mode::Celt || toc.code > 1 {
            return None;
        }
        let &first = packet.get(1)?;
        // One VAD bit per 20 ms SILK frame, then the LBRR flag, for the mid
        // channel and then (in stereo) the side channel.
        let silk_frames = (toc.frame_samples_48k() / 960).max(1);
        let bit = |i: usize| i < 8 && first & (0x80 >> i) != 0;
        let mut lbrr = bit(silk_frames);
        if toc.stereo {
            lbrr |= bit(2 * silk_frames + 1);
        }
        Some(Self {
            voice: bit(0),
            lbrr,
        })
    }
}
