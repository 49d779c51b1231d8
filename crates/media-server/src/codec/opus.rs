//! Opus (RFC 6716, RTP payload RFC 7587) through mousiki, a pure-Rust port
//! of the reference libopus. Mono at 48 kHz; the RTP clock is always 48 kHz.

use mousiki::{Application, Bitrate, Channels, Decoder, Encoder, Signal};

use super::CodecError;

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate in bit/s.
    pub bitrate: i32,
    /// 0 (fastest) to 10 (best).
    pub complexity: i32,
    /// Discontinuous transmission during silence.
    pub dtx: bool,
    /// In-band forward error correction (LBRR), used by receivers on loss.
    pub fec: bool,
    /// Loss rate the encoder plans for (drives how much FEC it spends), percent.
    pub expected_loss_percent: i32,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            complexity: 5,
            dtx: false,
            fec: true,
            expected_loss_percent: 5,
        }
    }
}

pub(crate) struct OpusEncoder(Encoder);

impl OpusEncoder {
    pub(crate) fn new(cfg: &OpusConfig) -> Result<Self, CodecError> {
        let mut e = Encoder::new(48_000, Channels::Mono, Application::Voip)
            .map_err(|e| CodecError::Init(format!("{e:?}")))?;
        let ctl = |r: Result<(), mousiki::OpusEncoderCtlError>| {
            r.map_err(|e| CodecError::Init(format!("{e:?}")))
        };
        ctl(e.set_bitrate(Bitrate::Bits(cfg.bitrate)))?;
        ctl(e.set_complexity(cfg.complexity.clamp(0, 10)))?;
        ctl(e.set_dtx(cfg.dtx))?;
        ctl(e.set_inband_fec(cfg.fec))?;
        ctl(e.set_packet_loss_perc(cfg.expected_loss_percent.clamp(0, 100)))?;
        ctl(e.set_signal(Signal::Voice))?;
        Ok(Self(e))
    }

    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        self.0
            .encode(pcm, out)
            .map_err(|e| CodecError::Codec(format!("{e:?}")))
    }
}

pub(crate) struct OpusDecoder(Decoder);

impl OpusDecoder {
    pub(crate) fn new() -> Result<Self, CodecError> {
        Decoder::new(48_000, Channels::Mono)
            .map(Self)
            .map_err(|e| CodecError::Init(format!("{e:?}")))
    }

    pub(crate) fn decode(
        &mut self,
        payload: &[u8],
        out: &mut [i16],
        fec: bool,
    ) -> Result<usize, CodecError> {
        self.0
            .decode(payload, out, fec)
            .map_err(|e| CodecError::Codec(format!("{e:?}")))
    }

    pub(crate) fn conceal(&mut self, out: &mut [i16]) -> usize {
        self.0.conceal(out).unwrap_or_else(|_| {
            out.fill(0);
            out.len()
        })
    }
}
