//! Test-signal helpers used by tests and benches: sine generation and the
//! Goertzel algorithm to measure the energy at one frequency.

/// `len` samples of a sine at `freq` Hz, amplitude `amp`, sampled at `rate`.
pub fn sine(freq: f64, rate: u32, len: usize, amp: f64) -> Vec<i16> {
    (0..len)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16)
        .collect()
}

/// Power of `freq` in `samples` (Goertzel), normalised by length.
pub fn goertzel(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}
