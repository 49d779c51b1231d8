//! Fixed-chunk resampling between a codec's rate and the 48 kHz mix rate,
//! with rubato's synchronous FFT resampler and its allocation-free
//! `process_into_buffer`. One 20 ms chunk in, one 20 ms chunk out.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Resamples 20 ms frames from one rate to another.
pub struct Resampler {
    inner: Option<Fft<f32>>,
    input: Box<[f32]>,
    output: Box<[f32]>,
    in_frames: usize,
    out_frames: usize,
}

impl Resampler {
    /// A resampler for 20 ms chunks from `from` Hz to `to` Hz. Equal rates copy.
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        let in_frames = (from / 50) as usize;
        let out_frames = (to / 50) as usize;
        let inner = if from == to {
            None
        } else {
            Some(
                Fft::<f32>::new(from as usize, to as usize, in_frames, 1, FixedSync::Both)
                    .map_err(|e| e.to_string())?,
            )
        };
        let out_cap = inner
            .as_ref()
            .map(|r| r.output_frames_max())
            .unwrap_or(out_frames)
            .max(out_frames);
        Ok(Self {
            inner,
            input: vec![0.0; in_frames].into_boxed_slice(),
            output: vec![0.0; out_cap].into_boxed_slice(),
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

    /// Forgets the filter's history, for a stream that resumes after chunks
    /// that were not resampled.
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
        }
    }

    /// Resamples one chunk: `input` has [`Self::input_len`] samples, `output`
    /// receives [`Self::output_len`]. Short input is padded with silence.
    pub fn process(&mut self, input: &[i16], output: &mut [i32]) {
        let Some(r) = self.inner.as_mut() else {
            for (o, &i) in output.iter_mut().zip(input) {
                *o = i as i32;
            }
            return;
        };
        for (dst, i) in self.input.iter_mut().zip(0..) {
            *dst = input.get(i).copied().unwrap_or(0) as f32;
        }
        let out_cap = self.output.len();
        let written = match (
            InterleavedSlice::new(&self.input[..], 1, self.in_frames),
            InterleavedSlice::new_mut(&mut self.output[..], 1, out_cap),
        ) {
            (Ok(inp), Ok(mut out)) => r
                .process_into_buffer(&inp, &mut out, None)
                .map(|(_, w)| w)
                .unwrap_or(0),
            _ => 0,
        };
        for (i, o) in output.iter_mut().take(self.out_frames).enumerate() {
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
        for (from, to) in [(8000, 48000), (16000, 48000), (48000, 8000), (48000, 16000)] {
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
}
