//! Test signals and what is measured of them.

use std::f64::consts::PI;

/// Interleaved PCM: a tone per channel (`freqs[c]`), amplitude `amp`,
/// with silences when `gaps` (one second on, one off) for DTX.
pub fn tones(freqs: &[f64], rate: u32, secs: f64, amp: f64, gaps: bool) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    let mut out = Vec::with_capacity(n * freqs.len());
    for i in 0..n {
        let t = i as f64 / rate as f64;
        let on = !gaps || (t as u64).is_multiple_of(2);
        for &f in freqs {
            let v = if on {
                amp * (2.0 * PI * f * t).sin()
            } else {
                0.0
            };
            out.push(v as i16);
        }
    }
    out
}

/// Something speech-like: a glottal pulse train (110-140 Hz, gliding)
/// through two vowel formants, at syllable rate (4 Hz) amplitude.
pub fn speech(rate: u32, secs: f64) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let f0 = 125.0 + 15.0 * (2.0 * PI * 0.7 * t).sin();
            phase += f0 / rate as f64;
            let envelope = 0.55 + 0.45 * (2.0 * PI * 4.0 * t).sin();
            let mut v = 0.0;
            for h in 1..30 {
                let f = h as f64 * f0;
                if f > rate as f64 / 2.2 {
                    break;
                }
                // Two formants (about /a/): 700 Hz and 1200 Hz.
                let w = 1.0 / (1.0 + ((f - 700.0) / 150.0).powi(2))
                    + 0.6 / (1.0 + ((f - 1200.0) / 200.0).powi(2))
                    + 0.05;
                v += w * (2.0 * PI * h as f64 * phase).sin() / h as f64;
            }
            (2500.0 * envelope * v) as i16
        })
        .collect()
}

/// Mono mix of interleaved PCM (what libopus gives a mono decoder).
pub fn downmix(pcm: &[i16], channels: usize) -> Vec<i16> {
    if channels == 1 {
        return pcm.to_vec();
    }
    pcm.chunks(channels)
        .map(|c| (c.iter().map(|&s| s as i32).sum::<i32>() / channels as i32) as i16)
        .collect()
}

/// RMS level in dB full scale.
pub fn rms_db(x: &[i16]) -> f64 {
    let ms = x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * (ms / (32768.0f64 * 32768.0)).max(1e-12).log10()
}

/// Level of one frequency in dB full scale (Goertzel over the whole slice).
pub fn tone_db(x: &[i16], rate: u32, freq: f64) -> f64 {
    let p = media_server::tone::goertzel(x, rate, freq);
    // A full-scale sine gives power (A/2)^2 with this normalisation.
    10.0 * (p / (16384.0f64 * 16384.0)).max(1e-12).log10()
}

/// The middle of a signal, dropping `edge` seconds at each end (codec
/// start-up, pre-skip and the encoder's last frame).
pub fn middle(x: &[i16], rate: u32, edge: f64) -> &[i16] {
    let e = (rate as f64 * edge) as usize;
    if x.len() <= 2 * e {
        return x;
    }
    &x[e..x.len() - e]
}
