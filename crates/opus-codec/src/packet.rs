//! What an Opus packet says about itself before it is decoded (RFC 6716
//! §3.1–3.2): its mode, band, frame length and frame count, and whether
//! the encoder heard voice in it. Used to size buffers, to tell a DTX gap
//! from a loss, and to leave a quiet stream undecoded.

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

/// What a packet says about its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Every frame is DTX: nothing was sent.
    Silent,
    /// SILK flagged no voice activity in any frame.
    Inactive,
    /// SILK flagged voice activity in some frame.
    Active,
    /// CELT-only: only a decode can tell.
    Unknown,
}

/// Most frames in one packet (120 ms of 2.5 ms frames).
const MAX_FRAMES: usize = 48;

/// Reads the activity of `packet` from its TOC and its frames' first
/// bytes (RFC 6716 §4.2.3: the voice-activity flags, one per 20 ms SILK
/// frame, are coded first with probability ½, so they are the leading
/// bits, mid channel first). A frame of 0 or 1 bytes is DTX.
pub fn activity(packet: &[u8]) -> Result<Activity, Error> {
    let toc = Toc::parse(packet)?;
    let silk_frames = match toc.mode() {
        Mode::Celt => 0,
        _ => (toc.frame_samples_48k() / 960).max(1) as u32,
    };
    let mut sizes = [0u16; MAX_FRAMES];
    let mut any_sent = false;
    let mut any_active = false;
    for_each_frame(packet, &mut sizes, |frame| {
        if frame.len() <= 1 {
            return;
        }
        any_sent = true;
        // Mid channel's flags, most significant bit first.
        any_active |= silk_frames > 0 && frame[0] >> (8 - silk_frames) != 0;
    })?;
    Ok(match (any_sent, silk_frames, any_active) {
        (false, _, _) => Activity::Silent,
        (true, 0, _) => Activity::Unknown,
        (true, _, true) => Activity::Active,
        (true, _, false) => Activity::Inactive,
    })
}

/// Calls `f` with each frame of a packet (RFC 6716 §3.2), checking the
/// framing (§3.4's rules on lengths and padding); `sizes` is scratch for
/// code 3's frame lengths.
fn for_each_frame<'a>(
    packet: &'a [u8],
    sizes: &mut [u16; MAX_FRAMES],
    mut f: impl FnMut(&'a [u8]),
) -> Result<(), Error> {
    let (&toc, rest) = packet.split_first().ok_or(Error::InvalidPacket)?;
    match toc & 3 {
        0 => f(rest),
        1 => {
            // R3: two frames of equal size.
            if rest.len() % 2 != 0 {
                return Err(Error::InvalidPacket);
            }
            let (a, b) = rest.split_at(rest.len() / 2);
            f(a);
            f(b);
        }
        2 => {
            let (first, used) = frame_length(rest)?;
            let body = &rest[used..];
            if first > body.len() {
                return Err(Error::InvalidPacket);
            }
            let (a, b) = body.split_at(first);
            f(a);
            f(b);
        }
        _ => {
            let (&count, mut rest) = rest.split_first().ok_or(Error::InvalidPacket)?;
            let (vbr, padded, frames) = (count & 0x80 != 0, count & 0x40 != 0, count & 0x3f);
            let frames = frames as usize;
            if frames == 0 || frames > MAX_FRAMES {
                return Err(Error::InvalidPacket);
            }
            let mut padding = 0usize;
            if padded {
                // Each 255 adds 254 and another length byte follows (R6/R7).
                loop {
                    let (&p, r) = rest.split_first().ok_or(Error::InvalidPacket)?;
                    rest = r;
                    padding += if p == 255 { 254 } else { p as usize };
                    if p != 255 {
                        break;
                    }
                }
            }
            if vbr {
                for size in sizes.iter_mut().take(frames - 1) {
                    let (len, used) = frame_length(rest)?;
                    *size = len as u16;
                    rest = &rest[used..];
                }
            }
            let data_len = rest
                .len()
                .checked_sub(padding)
                .ok_or(Error::InvalidPacket)?;
            let mut data = &rest[..data_len];
            if vbr {
                let listed: usize = sizes[..frames - 1].iter().map(|&s| s as usize).sum();
                sizes[frames - 1] =
                    data_len.checked_sub(listed).ok_or(Error::InvalidPacket)? as u16;
            } else {
                if data_len % frames != 0 {
                    return Err(Error::InvalidPacket);
                }
                sizes[..frames].fill((data_len / frames) as u16);
            }
            for &size in &sizes[..frames] {
                let (a, b) = data.split_at(size as usize);
                f(a);
                data = b;
            }
        }
    }
    Ok(())
}

/// A frame length of one or two bytes (RFC 6716 §3.2.1); (length, bytes used).
fn frame_length(data: &[u8]) -> Result<(usize, usize), Error> {
    match data {
        [b, ..] if *b < 252 => Ok((*b as usize, 1)),
        [b, c, ..] => Ok((*b as usize + 4 * *c as usize, 2)),
        _ => Err(Error::InvalidPacket),
    }
}

#[cfg(test)]
mod activity_tests {
    use super::*;

    /// A TOC byte: configuration, stereo flag, frame-count code.
    fn toc(config: u8, code: u8) -> u8 {
        config << 3 | code
    }

    #[test]
    fn silk_flags_are_the_top_bits_of_each_frame() {
        // SILK-only WB 20 ms: one flag.
        assert_eq!(activity(&[toc(9, 0), 0x80, 0x11]), Ok(Activity::Active));
        assert_eq!(activity(&[toc(9, 0), 0x7f, 0x11]), Ok(Activity::Inactive));
        // 60 ms: three flags; only the third set.
        assert_eq!(activity(&[toc(11, 0), 0x20, 0]), Ok(Activity::Active));
        assert_eq!(activity(&[toc(11, 0), 0x1f, 0]), Ok(Activity::Inactive));
        // Hybrid FB 20 ms.
        assert_eq!(activity(&[toc(15, 0), 0x80, 0]), Ok(Activity::Active));
        // CELT-only cannot tell.
        assert_eq!(activity(&[toc(31, 0), 0x00, 0]), Ok(Activity::Unknown));
    }

    #[test]
    fn dtx_frames_are_silent() {
        assert_eq!(activity(&[toc(9, 0)]), Ok(Activity::Silent));
        assert_eq!(activity(&[toc(9, 0), 0xff]), Ok(Activity::Silent));
        assert_eq!(activity(&[toc(31, 0)]), Ok(Activity::Silent));
    }

    #[test]
    fn every_framing_code_is_walked() {
        // Code 1: two equal frames, the second active.
        assert_eq!(
            activity(&[toc(9, 1), 0x00, 0x00, 0x80, 0x00]),
            Ok(Activity::Active)
        );
        assert_eq!(activity(&[toc(9, 1), 0, 0, 0]), Err(Error::InvalidPacket));
        // Code 2: first frame of 3 bytes (inactive), second of 2 (active).
        assert_eq!(
            activity(&[toc(9, 2), 3, 0x10, 0, 0, 0x80, 0]),
            Ok(Activity::Active)
        );
        assert_eq!(activity(&[toc(9, 2), 9, 0, 0]), Err(Error::InvalidPacket));
        // Code 3 CBR, three frames of 2 bytes, 2 bytes of padding.
        assert_eq!(
            activity(&[toc(9, 3), 0x43, 2, 0, 0, 0, 0, 0x80, 0, 0xaa, 0xaa]),
            Ok(Activity::Active)
        );
        // Code 3 VBR: frames of 1 (DTX) and 3 bytes.
        assert_eq!(
            activity(&[toc(9, 3), 0x82, 1, 0x80, 0x00, 0x00, 0x00]),
            Ok(Activity::Inactive)
        );
        assert_eq!(activity(&[toc(9, 3), 0x80]), Err(Error::InvalidPacket));
        assert_eq!(
            activity(&[toc(9, 3), 0x43, 200, 0]),
            Err(Error::InvalidPacket)
        );
        assert_eq!(activity(&[]), Err(Error::InvalidPacket));
    }

    #[test]
    fn truncated_and_random_packets_never_panic() {
        let mut x: u32 = 0x1234_5678;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x % 64) as usize;
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let _ = activity(&buf[..len]);
        }
    }
}
