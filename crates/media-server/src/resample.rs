//! Fixed-chunk resampling between a codec's rate and the 48 kHz mix rate.
//! One 20 ms chunk in, one 20 ms chunk out, no allocation per chunk.
//!
//! The codecs' rates divide 48 kHz (8 and 16 kHz: ratios 6 and 3), so those
//! go through a polyphase FIR: a Kaiser-windowed sinc shared by every
//! resampler of a ratio, and a history of one filter length. With the cache
//! warm it costs what rubato's FFT resampler does (3.3 to 4.2 µs a chunk),
//! but rubato's instances each carry FFT plans and buffers of their own,
//! and a tick that walks hundreds of rooms pays for those in cache misses;
//! the FIR's whole state is its history. Any other ratio goes through
//! rubato's synchronous FFT resampler.

use std::sync::OnceLock;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Resamples 20 ms frames from one rate to another.
pub struct Resampler {
    inner: Inner,
    in_frames: usize,
    out_frames: usize,
}

enum Inner {
    Copy,
    Up(Polyphase),
    Down(Polyphase),
    Fft(Box<FftPath>),
}

/// rubato for ratios that are not whole numbers.
struct FftPath {
    fft: Fft<f32>,
    input: Box<[f32]>,
    output: Box<[f32]>,
}

/// A polyphase FIR for a whole-number ratio: `buf` holds the last
/// `history` input samples before the chunk, then the chunk. Interpolation
/// keeps one sample more than its taps need, so that [`Resampler::delayed`]
/// can delay by a whole round trip.
struct Polyphase {
    ratio: usize,
    filter: &'static Filter,
    buf: Box<[f32]>,
    history: usize,
}

/// Samples per chunk at the lower rate, at most (16 kHz, ratio 3).
const MAX_LOW: usize = 320;
/// Taps per phase, at most.
const MAX_TAPS_PER_PHASE: usize = 32;

/// A lowpass at the lower rate's Nyquist frequency, for the higher rate.
struct Filter {
    /// Taps per phase.
    taps_per_phase: usize,
    /// All `ratio · taps_per_phase` taps, in the order decimation reads them.
    taps: Box<[f32]>,
    /// Interpolation: phase `p`'s taps, in the order they meet the input,
    /// times the ratio (zero stuffing divides the level by it).
    phases: Box<[f32]>,
}

impl Filter {
    /// Kaiser-windowed sinc, 60 dB stopband (β = 5.65), cut off at the lower
    /// rate's Nyquist frequency. With 144 taps at 48 kHz the 8 kHz filter is
    /// flat to about 3.4 kHz and 60 dB down from 4.6 kHz; the 16 kHz one
    /// (96 taps) is flat to about 7.1 kHz and 60 dB down from 8.9 kHz.
    fn design(ratio: usize, taps_per_phase: usize) -> Self {
        const BETA: f64 = 5.65;
        let len = ratio * taps_per_phase;
        let mid = (len - 1) as f64 / 2.0;
        let cutoff = 0.5 / ratio as f64; // cycles per sample at the high rate
        let mut h: Vec<f64> = (0..len)
            .map(|k| {
                let t = k as f64 - mid;
                let sinc = if t == 0.0 {
                    2.0 * cutoff
                } else {
                    (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * t)
                };
                let r = t / mid;
                sinc * bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(BETA)
            })
            .collect();
        let sum: f64 = h.iter().sum();
        for v in &mut h {
            *v /= sum;
        }
        let taps = h.iter().rev().map(|&v| v as f32).collect();
        let mut phases = Vec::with_capacity(len);
        for p in 0..ratio {
            for i in 0..taps_per_phase {
                phases.push((h[(taps_per_phase - 1 - i) * ratio + p] * ratio as f64) as f32);
            }
        }
        Self {
            taps_per_phase,
            taps,
            phases: phases.into_boxed_slice(),
        }
    }

    /// The shared filter for `ratio`, if there is one: the codecs' 8 and
    /// 16 kHz against the 48 kHz mix.
    fn for_ratio(ratio: usize) -> Option<&'static Filter> {
        static SIX: OnceLock<Filter> = OnceLock::new();
        static THREE: OnceLock<Filter> = OnceLock::new();
        match ratio {
            6 => Some(SIX.get_or_init(|| Filter::design(6, 24))),
            3 => Some(THREE.get_or_init(|| Filter::design(3, MAX_TAPS_PER_PHASE))),
            _ => None,
        }
    }
}

/// The modified Bessel function of the first kind, order 0 (its series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

/// Rounds to the nearest integer with SSE2 alone (`f32::round` is a libm
/// call on the baseline target, once per sample).
fn to_int(v: f32) -> i32 {
    (v + 0.5f32.copysign(v)) as i32
}

/// Copies a chunk across unchanged, widened to i32.
fn copy_through(input: &[i16], output: &mut [i32]) {
    for (o, &i) in output.iter_mut().zip(input) {
        *o = i as i32;
    }
}

/// `acc += c · x`: contiguous and without a reduction, so it vectorizes.
fn axpy(acc: &mut [f32], c: f32, x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a += c * *v;
    }
}

impl Polyphase {
    fn new(ratio: usize, filter: &'static Filter, in_frames: usize, up: bool) -> Self {
        // Decimation keeps a whole filter length, so the chunk after it
        // splits evenly into `ratio` interleaved streams.
        let history = if up {
            filter.taps_per_phase
        } else {
            filter.taps.len()
        };
        Self {
            ratio,
            filter,
            buf: vec![0.0; history + in_frames].into_boxed_slice(),
            history,
        }
    }

    /// Takes the chunk in after the history (short input is padded with silence).
    fn load(&mut self, input: &[i16]) {
        let len = self.buf.len();
        self.buf.copy_within(len - self.history.., 0);
        for (dst, i) in self.buf[self.history..].iter_mut().zip(0..) {
            *dst = input.get(i).copied().unwrap_or(0) as f32;
        }
    }

    /// Output `m·ratio + p` is phase `p`'s taps against the inputs from
    /// `m`: one pass per phase and tap over all `m`.
    fn up(&mut self, input: &[i16], output: &mut [i32]) {
        self.load(input);
        let t = self.filter.taps_per_phase;
        let n = (output.len() / self.ratio).min(MAX_LOW);
        let mut acc = [0f32; MAX_LOW];
        let acc = &mut acc[..n];
        // The taps meet the last `t - 1` samples of the history.
        let first = self.history + 1 - t;
        for p in 0..self.ratio {
            acc.fill(0.0);
            for (i, &c) in self.filter.phases[p * t..(p + 1) * t].iter().enumerate() {
                axpy(acc, c, &self.buf[first + i..first + i + n]);
            }
            for (m, a) in acc.iter().enumerate() {
                output[m * self.ratio + p] = to_int(*a);
            }
        }
    }

    /// Output `m` is the filter against inputs `m·ratio + 1 ..`; split into
    /// the `ratio` interleaved input streams, it is one pass per tap over
    /// all `m` as well.
    fn down(&mut self, input: &[i16], output: &mut [i32]) {
        self.load(input);
        let r = self.ratio;
        let t = self.filter.taps_per_phase;
        let n = output.len().min(MAX_LOW);
        let mut acc = [0f32; MAX_LOW];
        let acc = &mut acc[..n];
        let mut stream = [0f32; MAX_LOW + MAX_TAPS_PER_PHASE];
        let stream = &mut stream[..n + t - 1];
        for p in 0..r {
            for (k, s) in stream.iter_mut().enumerate() {
                *s = self.buf[k * r + 1 + p];
            }
            for j in 0..t {
                axpy(acc, self.filter.taps[j * r + p], &stream[j..j + n]);
            }
        }
        for (o, a) in output.iter_mut().zip(acc.iter()) {
            *o = to_int(*a);
        }
    }

    fn reset(&mut self) {
        self.buf.fill(0.0);
    }
}

impl Resampler {
    /// A resampler for 20 ms chunks from `from` Hz to `to` Hz. Equal rates copy.
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        let in_frames = (from / 50) as usize;
        let out_frames = (to / 50) as usize;
        let whole = |hi: u32, lo: u32| {
            (lo > 0 && hi.is_multiple_of(lo))
                .then(|| Filter::for_ratio((hi / lo) as usize).map(|f| ((hi / lo) as usize, f)))
                .flatten()
        };
        let inner = if from == to {
            Inner::Copy
        } else if let Some((ratio, filter)) = whole(to, from) {
            Inner::Up(Polyphase::new(ratio, filter, in_frames, true))
        } else if let Some((ratio, filter)) = whole(from, to) {
            Inner::Down(Polyphase::new(ratio, filter, in_frames, false))
        } else {
            let fft = Fft::<f32>::new(from as usize, to as usize, in_frames, 1, FixedSync::Both)
                .map_err(|e| e.to_string())?;
            let out_cap = fft.output_frames_max().max(out_frames);
            Inner::Fft(Box::new(FftPath {
                fft,
                input: vec![0.0; in_frames].into_boxed_slice(),
                output: vec![0.0; out_cap].into_boxed_slice(),
            }))
        };
        Ok(Self {
            inner,
            in_frames,
            out_frames,
        })
    }

    /// Input samples per chunk.
    pub fn input_len(&self) -> usize {
        self.in_frames
    }

    /// Output samples per chunk.
    pub fn output_len(&self) -> usize {
        self.out_frames
    }

    /// Samples, at the lower rate, that going up through this resampler and
    /// back down through its mirror delays a stream: the two filters' group
    /// delays, rounded. Zero for any resampler but a polyphase upsampler.
    pub fn round_trip_delay(&self) -> usize {
        match &self.inner {
            Inner::Up(p) => ((p.filter.taps.len() - 1) as f32 / p.ratio as f32).round() as usize,
            _ => 0,
        }
    }

    /// Takes a chunk in as [`Self::process`] would, keeping the filter's
    /// history, but writes it out at the input rate, [`Self::round_trip_delay`]
    /// samples late: a stream mixed at its own rate this tick is as late as
    /// one resampled up and down, so a room that changes between the two
    /// does not jump in time, and the next resampled chunk finds its history.
    pub fn delayed(&mut self, input: &[i16], output: &mut [i32]) {
        let n = self.in_frames.min(output.len());
        let delay = self.round_trip_delay();
        match &mut self.inner {
            Inner::Up(p) => {
                p.load(input);
                let start = p.history - delay.min(p.history);
                for (o, v) in output[..n].iter_mut().zip(&p.buf[start..]) {
                    *o = *v as i32;
                }
            }
            _ => copy_through(input, &mut output[..n]),
        }
    }

    /// Forgets the filter's history, for a stream that resumes after chunks
    /// that were not resampled.
    pub fn reset(&mut self) {
        match &mut self.inner {
            Inner::Copy => {}
            Inner::Up(p) | Inner::Down(p) => p.reset(),
            Inner::Fft(f) => f.fft.reset(),
        }
    }

    /// Resamples one chunk: `input` has [`Self::input_len`] samples, `output`
    /// receives [`Self::output_len`]. Short input is padded with silence.
    pub fn process(&mut self, input: &[i16], output: &mut [i32]) {
        let n = self.out_frames.min(output.len());
        let output = &mut output[..n];
        match &mut self.inner {
            Inner::Copy => copy_through(input, output),
            Inner::Up(p) => p.up(input, output),
            Inner::Down(p) => p.down(input, output),
            Inner::Fft(f) => f.process(self.in_frames, input, output),
        }
    }
}

impl FftPath {
    fn process(&mut self, in_frames: usize, input: &[i16], output: &mut [i32]) {
        for (dst, i) in self.input.iter_mut().zip(0..) {
            *dst = input.get(i).copied().unwrap_or(0) as f32;
        }
        let out_cap = self.output.len();
        let written = match (
            InterleavedSlice::new(&self.input[..], 1, in_frames),
            InterleavedSlice::new_mut(&mut self.output[..], 1, out_cap),
        ) {
            (Ok(inp), Ok(mut out)) => self
                .fft
                .process_into_buffer(&inp, &mut out, None)
                .map(|(_, w)| w)
                .unwrap_or(0),
            _ => 0,
        };
        for (i, o) in output.iter_mut().enumerate() {
            *o = if i < written {
                self.output[i] as i32
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{goertzel, sine};

    #[test]
    fn up_and_down_keep_the_tone() {
        for (from, to) in [
            (8000, 48000),
            (16000, 48000),
            (48000, 8000),
            (48000, 16000),
            (44100, 48000),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            assert_eq!(
                (r.input_len(), r.output_len()),
                ((from / 50) as usize, (to / 50) as usize)
            );
            let input = sine(1000.0, from, r.input_len() * 20, 10000.0);
            let mut out = Vec::new();
            let mut buf = vec![0i32; r.output_len()];
            for chunk in input.chunks(r.input_len()) {
                r.process(chunk, &mut buf);
                out.extend(buf.iter().map(|&s| s as i16));
            }
            let tail = &out[out.len() / 2..];
            let on = goertzel(tail, to, 1000.0);
            let off = goertzel(tail, to, 2500.0);
            assert!(on > 1000.0 * off.max(1e-3), "{from}->{to}: {on} vs {off}");
        }
    }

    /// Runs `input` through in chunks and returns the second half of the output.
    fn settled(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = vec![0i32; r.output_len()];
        for chunk in input.chunks(r.input_len()) {
            r.process(chunk, &mut buf);
            out.extend(buf.iter().map(|&s| s as i16));
        }
        out.split_off(out.len() / 2)
    }

    fn rms_db(x: &[i16]) -> f64 {
        let sum: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
        10.0 * (sum / x.len() as f64).log10()
    }

    /// In-band tones keep their level through both ways (a mixer's ±1 dB
    /// has none of it to spare).
    #[test]
    fn tones_in_band_keep_their_level() {
        for (from, to, hz) in [
            (8000, 48000, 300.0),
            (8000, 48000, 3000.0),
            (48000, 8000, 1000.0),
            (48000, 8000, 3300.0),
            (16000, 48000, 6500.0),
            (48000, 16000, 200.0),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            let input = sine(hz, from, r.input_len() * 20, 10000.0);
            let out = settled(&mut r, &input);
            let gain = rms_db(&out) - rms_db(&input);
            assert!(gain.abs() < 0.1, "{from}->{to} at {hz} Hz: {gain:.3} dB");
        }
    }

    /// Going down, what the lower rate cannot carry is filtered out, not
    /// folded into the band; going up, the images of the band are removed.
    #[test]
    fn aliases_and_images_are_60_db_down() {
        // 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz.
        let mut down = Resampler::new(48000, 8000).unwrap();
        let input = sine(6000.0, 48000, down.input_len() * 20, 10000.0);
        let out = settled(&mut down, &input);
        assert!(rms_db(&out) < rms_db(&input) - 60.0, "{}", rms_db(&out));
        // 1 kHz at 8 kHz has images at 7 and 9 kHz once zero-stuffed.
        let mut up = Resampler::new(8000, 48000).unwrap();
        let input = sine(1000.0, 8000, up.input_len() * 20, 10000.0);
        let out = settled(&mut up, &input);
        let tone = goertzel(&out, 48000, 1000.0);
        for image in [7000.0, 9000.0, 15000.0] {
            let db = 10.0 * (goertzel(&out, 48000, image) / tone).log10();
            assert!(db < -60.0, "image at {image} Hz: {db:.1} dB");
        }
    }

    /// A reset forgets the history: the chunk after it is what a fresh
    /// resampler makes of it.
    #[test]
    fn reset_forgets_the_history() {
        let mut used = Resampler::new(8000, 48000).unwrap();
        let mut fresh = Resampler::new(8000, 48000).unwrap();
        let noise = sine(700.0, 8000, 160 * 3, 12000.0);
        let mut a = vec![0i32; 960];
        let mut b = vec![0i32; 960];
        for chunk in noise.chunks(160) {
            used.process(chunk, &mut a);
        }
        used.reset();
        let next = sine(1100.0, 8000, 160, 9000.0);
        used.process(&next, &mut a);
        fresh.process(&next, &mut b);
        assert_eq!(a, b);
    }

    /// A chunk passed through `delayed` comes out as late as up and back
    /// down would make it, and the upsampler's next chunk continues from it
    /// as if every chunk had been resampled.
    #[test]
    fn delayed_matches_the_round_trip_and_keeps_the_history() {
        let mut up = Resampler::new(8000, 48000).unwrap();
        let mut down = Resampler::new(48000, 8000).unwrap();
        let mut direct = Resampler::new(8000, 48000).unwrap();
        assert_eq!(direct.round_trip_delay(), 24);
        let input = sine(700.0, 8000, 160 * 10, 10000.0);
        let mut wide = vec![0i32; 960];
        let mut wide16 = vec![0i16; 960];
        let mut back = vec![0i32; 160];
        let mut late = vec![0i32; 160];
        let (mut round_trip, mut delayed) = (Vec::new(), Vec::new());
        for chunk in input.chunks(160) {
            up.process(chunk, &mut wide);
            for (o, v) in wide16.iter_mut().zip(&wide) {
                *o = *v as i16;
            }
            down.process(&wide16, &mut back);
            round_trip.extend(back.iter().copied());
            direct.delayed(chunk, &mut late);
            delayed.extend(late.iter().copied());
        }
        // Past the start they agree but for the rounding: the round trip is
        // 23.83 samples, so 0.17 of a sample of 700 Hz at 10000 is about
        // 930 at most, where one whole sample off would be 5,400.
        let worst = round_trip[400..]
            .iter()
            .zip(&delayed[400..])
            .map(|(a, b)| (a - b).abs())
            .max()
            .unwrap();
        assert!(worst < 1100, "round trip vs delayed: {worst} of 10000");
        // The history is the input's: the next chunk resamples as if the
        // ones before had been resampled too.
        let next = sine(700.0, 8000, 160 * 11, 10000.0);
        let mut a = vec![0i32; 960];
        let mut b = vec![0i32; 960];
        direct.process(&next[1600..], &mut a);
        up.process(&next[1600..], &mut b);
        assert_eq!(a, b);
    }
}
