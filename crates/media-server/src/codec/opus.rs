//! Opus (RFC 6716, RTP payload RFC 7587) through the reference libopus
//! (`opus-codec`). Mono at 48 kHz inside; the RTP clock is always 48 kHz.
//! A stereo stream is decoded mixed down to mono.

use opus_codec::{Application, Bandwidth, Channels, EncoderSettings, SampleRate};

use super::CodecError;

/// Encoder settings (what the peer's fmtp allows, RFC 7587 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpusConfig {
    /// Target bitrate in bit/s (`maxaveragebitrate` caps it).
    pub bitrate: i32,
    /// 0 (fastest) to 10 (best).
    pub complexity: i32,
    /// Discontinuous transmission during silence (`usedtx`).
    pub dtx: bool,
    /// In-band forward error correction (`useinbandfec`).
    pub fec: bool,
    /// Loss rate the encoder plans for (drives how much FEC it spends), percent.
    pub expected_loss_percent: i32,
    /// Highest sample rate the receiver renders (`maxplaybackrate`): the
    /// encoder spends no bits on a band it cannot hear.
    pub max_playback_rate: u32,
    /// Constant bitrate (`cbr`).
    pub cbr: bool,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            complexity: 5,
            dtx: false,
            fec: true,
            expected_loss_percent: 5,
            max_playback_rate: 48_000,
            cbr: false,
        }
    }
}

impl OpusConfig {
    fn settings(&self) -> EncoderSettings {
        EncoderSettings {
            bitrate: self.bitrate,
            complexity: self.complexity,
            dtx: self.dtx,
            fec: self.fec,
            packet_loss_percent: self.expected_loss_percent,
            max_bandwidth: Bandwidth::for_rate(self.max_playback_rate),
            cbr: self.cbr,
        }
    }
}

fn err(e: opus_codec::Error) -> CodecError {
    CodecError::Opus(e)
}

pub(crate) struct OpusEncoder(opus_codec::Encoder);

impl OpusEncoder {
    pub(crate) fn new(cfg: &OpusConfig) -> Result<Self, CodecError> {
        opus_codec::Encoder::new(
            SampleRate::Hz48000,
            Channels::Mono,
            Application::Voip,
            &cfg.settings(),
        )
        .map(Self)
        .map_err(err)
    }

    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        self.0.encode(pcm, out).map_err(err)
    }

    pub(crate) fn reset(&mut self) {
        // As for the decoder: a failure leaves the old state, which only
        // costs a less clean start.
        let _ = self.0.reset();
    }
}

pub(crate) struct OpusDecoder(opus_codec::Decoder);

impl OpusDecoder {
    pub(crate) fn new() -> Result<Self, CodecError> {
        opus_codec::Decoder::new(SampleRate::Hz48000, Channels::Mono)
            .map(Self)
            .map_err(err)
    }

    pub(crate) fn decode(
        &mut self,
        payload: &[u8],
        out: &mut [i16],
        fec: bool,
    ) -> Result<usize, CodecError> {
        if fec {
            self.0.decode_fec(payload, out).map_err(err)
        } else {
            self.0.decode(payload, out).map_err(err)
        }
    }

    /// libopus's concealment, or None when the caller must conceal.
    pub(crate) fn conceal(&mut self, out: &mut [i16]) -> Option<usize> {
        self.0.conceal(out).ok()
    }

    pub(crate) fn reset(&mut self) {
        // Reset cannot fail on a live decoder; a failure would leave the
        // old state, which the next packets overwrite anyway.
        let _ = self.0.reset();
    }
}
