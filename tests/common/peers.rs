//! What the interop tests share about third-party peers' audio: a tone
//! for SIPp's rtp_stream, and the level of a tone in a WAV a peer recorded.

use std::path::Path;

use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::tone::goertzel;

/// One second of a 1 kHz tone at -16 dBFS, as raw µ-law for SIPp's
/// rtp_stream, written to `dir/tone.ulaw`.
pub fn write_ulaw_tone(dir: &Path) {
    let pcm: Vec<i16> = (0..8000)
        .map(|i| (5000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut enc = Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap();
    let mut out = Vec::new();
    for frame in pcm.chunks(160) {
        let mut buf = [0u8; 160];
        let n = enc.encode(frame, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    std::fs::write(dir.join("tone.ulaw"), out).unwrap();
}

/// A 16-bit PCM WAV's first channel, and its rate.
pub fn read_wav_mono(wav: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let (mut i, mut channels, mut rate, mut samples) = (12, 1usize, 8000u32, Vec::new());
    while i + 8 <= b.len() {
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        match &b[i..i + 4] {
            b"fmt " => {
                channels = u16::from_le_bytes([body[2], body[3]]) as usize;
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            }
            b"data" => {
                samples = body
                    .chunks_exact(2 * channels)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
            }
            _ => {}
        }
        i += 8 + len + (len & 1);
    }
    (samples, rate)
}

/// The level of a `freq` tone in `samples`, in dBFS (a full-scale sine is 0).
pub fn tone_dbfs(samples: &[i16], rate: u32, freq: f64) -> f64 {
    10.0 * (goertzel(samples, rate, freq) / (16384.0f64 * 16384.0))
        .max(1e-12)
        .log10()
}
