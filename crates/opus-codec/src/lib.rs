//! The reference Opus codec (RFC 6716) behind a small safe API.
//!
//! By default this is libopus 1.3.1 translated to Rust by c2rust
//! (`unsafe-libopus`): the reference code, built by cargo alone, with no
//! cmake and no system library. With the `system-libopus` feature it is the
//! system's libopus through `audiopus` instead. Either way what confab
//! encodes and decodes is what every phone's libopus does.
//!
//! This crate is the one place of the workspace that holds `unsafe` code,
//! in three modules: `reference`, the calls into the codec; `scratch`, the
//! stack its temporary arrays live on so that a codec call allocates
//! nothing from the heap ([`ScratchAlloc`]); and `counting`, the allocator
//! wrapper that tests and benches measure allocation with
//! ([`CountingAlloc`]). Everything else forbids it.

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod counting;
mod packet;
#[cfg(not(feature = "system-libopus"))]
#[allow(unsafe_code)]
mod reference;
#[allow(unsafe_code)]
mod scratch;
#[cfg(feature = "system-libopus")]
mod system;

#[cfg(not(feature = "system-libopus"))]
use reference as imp;
#[cfg(feature = "system-libopus")]
use system as imp;

pub use counting::{count_heap_calls, live_heap_bytes, CountingAlloc};
pub use packet::{activity, packet_samples, Activity, Mode, SilkFlags, Toc};
pub use scratch::{scratch_stats, ScratchAlloc, ScratchStats};

use thiserror::Error;

/// Which implementation this build uses (for logs and the README's figures).
pub const IMPLEMENTATION: &str = imp::NAME;

/// An Opus error, named after libopus's error codes.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An argument was out of range (sample rate, frame size, setting).
    #[error("bad argument")]
    BadArg,
    /// The output buffer is too small for the frame or packet.
    #[error("buffer too small")]
    BufferTooSmall,
    /// The codec failed internally.
    #[error("internal error")]
    Internal,
    /// The packet is corrupt or not Opus.
    #[error("invalid packet")]
    InvalidPacket,
    /// The request is not implemented.
    #[error("unimplemented")]
    Unimplemented,
    /// The codec state is invalid.
    #[error("invalid state")]
    InvalidState,
    /// Memory could not be allocated for the codec state.
    #[error("allocation failed")]
    AllocFail,
    /// This build cannot conceal a lost SILK or hybrid frame: conceal it
    /// another way (the pure-Rust translation's SILK concealment saturates;
    /// see [`Decoder::conceal`]).
    #[error("SILK concealment unavailable in this build")]
    PlcUnavailable,
    /// An error code libopus does not document.
    #[error("unknown error {0}")]
    Unknown(i32),
}

impl Error {
    /// The error for a negative libopus return code.
    pub(crate) fn from_code(code: i32) -> Self {
        match code {
            -1 => Error::BadArg,
            -2 => Error::BufferTooSmall,
            -3 => Error::Internal,
            -4 => Error::InvalidPacket,
            -5 => Error::Unimplemented,
            -6 => Error::InvalidState,
            -7 => Error::AllocFail,
            c => Error::Unknown(c),
        }
    }
}

/// A sample rate libopus takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRate {
    /// 8 kHz.
    Hz8000,
    /// 12 kHz.
    Hz12000,
    /// 16 kHz.
    Hz16000,
    /// 24 kHz.
    Hz24000,
    /// 48 kHz.
    Hz48000,
}

impl SampleRate {
    /// In Hz.
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8000,
            SampleRate::Hz12000 => 12000,
            SampleRate::Hz16000 => 16000,
            SampleRate::Hz24000 => 24000,
            SampleRate::Hz48000 => 48000,
        }
    }
}

/// Mono or stereo PCM (interleaved when stereo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One channel.
    Mono,
    /// Two channels, interleaved.
    Stereo,
}

impl Channels {
    /// 1 or 2.
    pub fn count(self) -> usize {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }
}

/// The encoder's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Application {
    /// Speech: best intelligibility (what phones use).
    Voip,
    /// Music and mixed content.
    Audio,
    /// Lowest delay, CELT only.
    LowDelay,
}

/// The widest audio band the encoder may use (RFC 7587 `maxplaybackrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bandwidth {
    /// 4 kHz (8 kHz sampling).
    Narrow,
    /// 6 kHz (12 kHz sampling).
    Medium,
    /// 8 kHz (16 kHz sampling).
    Wide,
    /// 12 kHz (24 kHz sampling).
    SuperWide,
    /// 20 kHz (48 kHz sampling).
    Full,
}

impl Bandwidth {
    /// The narrowest band that carries audio sampled at `rate_hz`.
    pub fn for_rate(rate_hz: u32) -> Self {
        match rate_hz {
            0..=8000 => Bandwidth::Narrow,
            8001..=12000 => Bandwidth::Medium,
            12001..=16000 => Bandwidth::Wide,
            16001..=24000 => Bandwidth::SuperWide,
            _ => Bandwidth::Full,
        }
    }
}

/// Encoder settings, applied at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Target bitrate in bit/s (6,000 to 510,000).
    pub bitrate: i32,
    /// 0 (fastest) to 10 (best).
    pub complexity: i32,
    /// Discontinuous transmission: a packet every 400 ms in silence.
    pub dtx: bool,
    /// In-band forward error correction (LBRR).
    pub fec: bool,
    /// Loss the encoder plans for, percent (drives how much FEC it spends).
    pub packet_loss_percent: i32,
    /// Widest band to encode.
    pub max_bandwidth: Bandwidth,
    /// Constant bitrate instead of VBR.
    pub cbr: bool,
}

impl EncoderSettings {
    /// The settings as libopus encoder requests (its `OPUS_SET_*_REQUEST`
    /// numbers and values, the same for every libopus build), clamped to
    /// the ranges libopus takes.
    pub(crate) fn requests(&self) -> [(i32, i32); 8] {
        // OPUS_BANDWIDTH_NARROWBAND .. OPUS_BANDWIDTH_FULLBAND.
        let bandwidth = match self.max_bandwidth {
            Bandwidth::Narrow => 1101,
            Bandwidth::Medium => 1102,
            Bandwidth::Wide => 1103,
            Bandwidth::SuperWide => 1104,
            Bandwidth::Full => 1105,
        };
        const OPUS_SIGNAL_VOICE: i32 = 3001;
        [
            (4002, self.bitrate.clamp(6_000, 510_000)),
            (4010, self.complexity.clamp(0, 10)),
            (4016, i32::from(self.dtx)),
            (4012, i32::from(self.fec)),
            (4014, self.packet_loss_percent.clamp(0, 100)),
            (4004, bandwidth),
            (4006, i32::from(!self.cbr)),
            (4024, OPUS_SIGNAL_VOICE),
        ]
    }
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            complexity: 5,
            dtx: false,
            fec: true,
            packet_loss_percent: 5,
            max_bandwidth: Bandwidth::Full,
            cbr: false,
        }
    }
}

/// An Opus encoder: PCM frames in, packets out.
pub struct Encoder {
    inner: imp::Encoder,
    rate: SampleRate,
    channels: Channels,
}

impl Encoder {
    /// An encoder for voice (signal type voice) with these settings.
    pub fn new(
        rate: SampleRate,
        channels: Channels,
        application: Application,
        settings: &EncoderSettings,
    ) -> Result<Self, Error> {
        let mut inner = imp::Encoder::new(rate, channels, application)?;
        inner.apply(settings)?;
        Ok(Self {
            inner,
            rate,
            channels,
        })
    }

    /// Changes the settings of a running encoder.
    pub fn set(&mut self, settings: &EncoderSettings) -> Result<(), Error> {
        self.inner.apply(settings)
    }

    /// Encodes one frame (2.5 to 60 ms, interleaved when stereo) into
    /// `out`; returns the packet's length. A length of 1 or 2 in DTX
    /// means "nothing to send".
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, Error> {
        let per_channel = pcm.len() / self.channels.count();
        if per_channel * self.channels.count() != pcm.len() || !valid_frame(per_channel, self.rate)
        {
            return Err(Error::BadArg);
        }
        self.inner.encode(pcm, per_channel, out)
    }

    /// Forgets the audio encoded so far (settings stay): the next frame
    /// starts a stream afresh, as after a gap.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.inner.reset()
    }
}

/// An Opus decoder: packets in, PCM out at its own rate.
pub struct Decoder {
    inner: imp::Decoder,
    rate: SampleRate,
    channels: Channels,
    /// The mode of the last packet decoded: what a concealment continues.
    last_mode: Option<Mode>,
}

impl Decoder {
    /// A decoder giving `channels` at `rate` (a stereo stream decoded as
    /// mono is mixed down by libopus).
    pub fn new(rate: SampleRate, channels: Channels) -> Result<Self, Error> {
        Ok(Self {
            inner: imp::Decoder::new(rate, channels)?,
            rate,
            channels,
            last_mode: None,
        })
    }

    /// Decodes `packet` into `out`; returns samples per channel written.
    /// `out` must hold the packet's whole duration. A DTX packet (the TOC
    /// byte alone) is concealed, as libopus does.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, Error> {
        let toc = Toc::parse(packet)?;
        let per_channel = out.len() / self.channels.count();
        if packet.len() == 1 {
            let samples = toc.frame_samples_48k() * self.rate.hz() as usize / 48_000;
            let n = samples.min(per_channel) * self.channels.count();
            return self.conceal(&mut out[..n]);
        }
        let n = self.inner.decode(Some(packet), out, per_channel, false)?;
        self.last_mode = Some(toc.mode());
        Ok(n)
    }

    /// Recovers the frame lost before `next` from `next`'s in-band FEC
    /// (or conceals it when `next` carries none). `out` is the lost
    /// frame's duration, a multiple of 2.5 ms.
    pub fn decode_fec(&mut self, next: &[u8], out: &mut [i16]) -> Result<usize, Error> {
        let per_channel = out.len() / self.channels.count();
        if next.is_empty() || !valid_plc(per_channel, self.rate) {
            return Err(Error::BadArg);
        }
        let single_silk_frame = Toc::parse(next)?.frame_samples_48k() <= 960;
        let has_fec = SilkFlags::parse(next).is_some_and(|f| f.lbrr) && single_silk_frame;
        if !has_fec {
            return self.conceal(out);
        }
        self.inner.decode(Some(next), out, per_channel, true)
    }

    /// Packet loss concealment (and comfort noise after DTX) for `out`'s
    /// duration, a multiple of 2.5 ms. In the pure-Rust build, a stream
    /// whose last packet was SILK or hybrid gets [`Error::PlcUnavailable`]:
    /// unsafe-libopus 0.2.0 saturates its output there (seen on every SILK
    /// and hybrid loss), so the caller conceals instead.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, Error> {
        let per_channel = out.len() / self.channels.count();
        if !valid_plc(per_channel, self.rate) {
            return Err(Error::BadArg);
        }
        match self.last_mode {
            None => {
                out.fill(0);
                Ok(per_channel)
            }
            Some(Mode::Silk | Mode::Hybrid) if !imp::SILK_PLC_WORKS => Err(Error::PlcUnavailable),
            Some(_) => self.inner.decode(None, out, per_channel, false),
        }
    }

    /// Forgets the stream (a new SSRC): the next packet starts afresh.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.last_mode = None;
        self.inner.reset()
    }
}

/// Frame sizes the encoder takes: 2.5, 5, 10, 20, 40, 60 ms.
fn valid_frame(samples: usize, rate: SampleRate) -> bool {
    let per_2_5ms = rate.hz() as usize / 400;
    [1, 2, 4, 8, 16, 24]
        .iter()
        .any(|&k| k * per_2_5ms == samples)
}

/// Concealment and FEC cover any multiple of 2.5 ms up to 120 ms.
fn valid_plc(samples: usize, rate: SampleRate) -> bool {
    let per_2_5ms = rate.hz() as usize / 400;
    samples > 0 && samples.is_multiple_of(per_2_5ms) && samples <= 48 * per_2_5ms
}

#[cfg(test)]
mod tests;
