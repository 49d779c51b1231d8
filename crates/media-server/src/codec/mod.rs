//! Codecs behind one small interface: [`Decoder`] and [`Encoder`] are enums
//! over PCMU, PCMA, G.722 and Opus (static dispatch, no allocation per
//! frame). Concealment: Opus uses its PLC and in-band FEC; G.711 and G.722
//! repeat the last frame with a fade.

mod dtmf;
mod g711;
mod g722;
mod opus;

pub use dtmf::{Dtmf, DtmfDetector, TelephoneEvent};
pub use g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
pub use g722::{G722Decoder, G722Encoder};
pub use opus::OpusConfig;

use thiserror::Error;

/// Largest PCM frame handled: 60 ms at 48 kHz.
pub const MAX_FRAME_SAMPLES: usize = 2880;

/// A codec failure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The codec could not be created with these settings.
    #[error("codec init failed: {0}")]
    Init(String),
    /// Opus (libopus) refused a packet or a frame.
    #[error("opus: {0}")]
    Opus(#[from] opus_codec::Error),
}

/// The audio codecs confab speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 64 kbit/s.
    G722,
    /// Opus.
    Opus,
}

impl CodecKind {
    /// The sample rate of the PCM the codec takes and gives.
    pub fn pcm_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16000,
            CodecKind::Opus => 48000,
        }
    }

    /// The RTP clock rate (RFC 3551; G.722 is 8000 for historical reasons).
    pub fn rtp_clock(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// The static payload type, if any.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus => None,
        }
    }

    /// Index for per-codec tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// All kinds, in table order.
    pub(crate) const ALL: [CodecKind; 4] = [
        CodecKind::Pcmu,
        CodecKind::Pcma,
        CodecKind::G722,
        CodecKind::Opus,
    ];
}

/// A decoder for one participant's stream.
pub struct Decoder {
    kind: CodecKind,
    state: DecoderState,
    /// The last frame decoded, for concealment: as long as this codec's
    /// longest packet (120 ms at its rate).
    last: Box<[i16]>,
    last_len: usize,
    fade: i32,
}

enum DecoderState {
    G711,
    G722(Box<G722Decoder>),
    Opus(Box<opus::OpusDecoder>),
}

impl Decoder {
    /// A decoder for `kind`.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        let state = match kind {
            CodecKind::Pcmu | CodecKind::Pcma => DecoderState::G711,
            CodecKind::G722 => DecoderState::G722(Box::default()),
            CodecKind::Opus => DecoderState::Opus(Box::new(opus::OpusDecoder::new()?)),
        };
        Ok(Self {
            kind,
            state,
            last: vec![0; (kind.pcm_rate() as usize * 120 / 1000).min(MAX_FRAME_SAMPLES)]
                .into_boxed_slice(),
            last_len: 0,
            fade: 0,
        })
    }

    /// The codec.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Decodes a payload into `out` (at [`CodecKind::pcm_rate`]); returns samples written.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let n = match &mut self.state {
            DecoderState::G711 => {
                let n = payload.len().min(out.len());
                // One loop per law, so the table lookup is inlined.
                if self.kind == CodecKind::Pcmu {
                    for (o, &b) in out.iter_mut().zip(&payload[..n]) {
                        *o = ulaw_decode(b);
                    }
                } else {
                    for (o, &b) in out.iter_mut().zip(&payload[..n]) {
                        *o = alaw_decode(b);
                    }
                }
                n
            }
            DecoderState::G722(d) => d.decode(payload, out),
            DecoderState::Opus(d) => match d.decode(payload, out, false) {
                // A DTX packet where libopus's SILK concealment is unusable.
                Err(CodecError::Opus(opus_codec::Error::PlcUnavailable)) => {
                    let n = opus_codec::packet_samples(payload)
                        .unwrap_or(out.len())
                        .min(out.len());
                    return Ok(self.fade(&mut out[..n]));
                }
                r => r?,
            },
        };
        self.remember(&out[..n]);
        Ok(n)
    }

    /// Recovers a lost frame from the packet after it (Opus in-band FEC);
    /// other codecs conceal.
    pub fn decode_fec(
        &mut self,
        next_payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        match &mut self.state {
            DecoderState::Opus(d) => match d.decode(next_payload, out, true) {
                Err(CodecError::Opus(opus_codec::Error::PlcUnavailable)) => Ok(self.fade(out)),
                r => {
                    let n = r?;
                    self.remember(&out[..n]);
                    Ok(n)
                }
            },
            _ => Ok(self.conceal(out)),
        }
    }

    /// Fills `out` for a lost frame: Opus PLC (where the build's libopus
    /// can conceal this stream), or the last frame faded by half each time.
    pub fn conceal(&mut self, out: &mut [i16]) -> usize {
        if let DecoderState::Opus(d) = &mut self.state {
            if let Some(n) = d.conceal(out) {
                return n;
            }
        }
        self.fade(out)
    }

    /// The last frame again, halved once more for each frame lost in a row.
    fn fade(&mut self, out: &mut [i16]) -> usize {
        self.fade = (self.fade + 1).min(16);
        let n = out.len();
        for (i, o) in out.iter_mut().enumerate() {
            let src = if self.last_len == 0 {
                0
            } else {
                self.last[i % self.last_len] as i32
            };
            *o = (src >> self.fade) as i16;
        }
        n
    }

    /// Restarts the codec state (after decoding was skipped for a while).
    pub fn reset(&mut self) {
        match &mut self.state {
            DecoderState::G722(d) => **d = G722Decoder::default(),
            DecoderState::Opus(d) => d.reset(),
            DecoderState::G711 => {}
        }
        self.last_len = 0;
    }

    fn remember(&mut self, pcm: &[i16]) {
        let n = pcm.len().min(self.last.len());
        self.last[..n].copy_from_slice(&pcm[..n]);
        self.last_len = n;
        self.fade = 0;
    }
}

/// An encoder (one per codec group, or one per talker).
pub struct Encoder {
    kind: CodecKind,
    state: EncoderState,
}

enum EncoderState {
    G711,
    G722(Box<G722Encoder>),
    Opus(Box<opus::OpusEncoder>),
}

impl Encoder {
    /// An encoder for `kind`; `opus` applies to Opus only.
    pub fn new(kind: CodecKind, opus: &OpusConfig) -> Result<Self, CodecError> {
        let state = match kind {
            CodecKind::Pcmu | CodecKind::Pcma => EncoderState::G711,
            CodecKind::G722 => EncoderState::G722(Box::default()),
            CodecKind::Opus => EncoderState::Opus(Box::new(opus::OpusEncoder::new(opus)?)),
        };
        Ok(Self { kind, state })
    }

    /// The codec.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Encodes one frame of PCM (at [`CodecKind::pcm_rate`]); returns bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        match &mut self.state {
            EncoderState::G711 => {
                let n = pcm.len().min(out.len());
                let f = if self.kind == CodecKind::Pcmu {
                    ulaw_encode
                } else {
                    alaw_encode
                };
                for (o, &s) in out.iter_mut().zip(&pcm[..n]) {
                    *o = f(s);
                }
                Ok(n)
            }
            EncoderState::G722(e) => Ok(e.encode(pcm, out)),
            EncoderState::Opus(e) => e.encode(pcm, out),
        }
    }

    /// Starts the stream afresh (after frames it did not encode).
    pub fn reset(&mut self) {
        match &mut self.state {
            EncoderState::G711 => {}
            EncoderState::G722(e) => **e = G722Encoder::default(),
            EncoderState::Opus(e) => e.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{goertzel, sine};

    /// Encode then decode a tone through each codec; the tone survives and a
    /// different frequency stays absent.
    #[test]
    fn tones_survive_every_codec() {
        for kind in CodecKind::ALL {
            let rate = kind.pcm_rate();
            let frame = (rate / 50) as usize;
            let mut enc = Encoder::new(kind, &OpusConfig::default()).unwrap();
            let mut dec = Decoder::new(kind).unwrap();
            let mut decoded = Vec::new();
            let input = sine(1000.0, rate, frame * 50, 8000.0);
            for chunk in input.chunks(frame) {
                let mut pkt = [0u8; 1500];
                let n = enc.encode(chunk, &mut pkt).unwrap();
                let mut pcm = [0i16; MAX_FRAME_SAMPLES];
                let m = dec.decode(&pkt[..n], &mut pcm[..frame]).unwrap();
                decoded.extend_from_slice(&pcm[..m]);
            }
            // Skip the codec's start-up (Opus look-ahead, G.722 adaptation).
            let tail = &decoded[decoded.len() / 2..];
            let on = goertzel(tail, rate, 1000.0);
            let off = goertzel(tail, rate, 440.0);
            assert!(on > 100.0 * off, "{kind:?}: 1000 Hz {on} vs 440 Hz {off}");
            let rms =
                (tail.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
            assert!(
                (rms - 8000.0 / 2f64.sqrt()).abs() < 2000.0,
                "{kind:?}: rms {rms}"
            );
        }
    }

    #[test]
    fn concealment_fades_and_garbage_does_not_panic() {
        let mut dec = Decoder::new(CodecKind::Pcmu).unwrap();
        let mut pcm = [0i16; 160];
        dec.decode(&[0x80; 160], &mut pcm).unwrap();
        let mut lost = [0i16; 160];
        dec.conceal(&mut lost);
        assert_eq!(lost[0], pcm[0] / 2);
        for kind in CodecKind::ALL {
            let mut d = Decoder::new(kind).unwrap();
            let mut out = [0i16; MAX_FRAME_SAMPLES];
            for len in [0usize, 1, 3, 17, 200, 1275] {
                let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
                let _ = d.decode(&junk, &mut out[..(kind.pcm_rate() / 50) as usize]);
            }
            d.conceal(&mut out[..(kind.pcm_rate() / 50) as usize]);
        }
    }
}
