//! Tones generated inside the mixer: entry and exit chimes for a room,
//! and beeps for one participant (the room size on `*1`). A pattern is a
//! fixed array of (frequency, duration) segments, so playing one allocates
//! nothing; frequency 0 is a pause.

use super::MIX_RATE;

/// Most segments in one pattern.
pub const MAX_SEGMENTS: usize = 16;

/// A tone pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TonePattern {
    segments: [(u16, u16); MAX_SEGMENTS],
    len: usize,
}

impl TonePattern {
    /// A pattern of (Hz, ms) segments; extra segments beyond the maximum are ignored.
    pub fn new(segments: &[(u16, u16)]) -> Self {
        let mut s = [(0, 0); MAX_SEGMENTS];
        let len = segments.len().min(MAX_SEGMENTS);
        s[..len].copy_from_slice(&segments[..len]);
        Self { segments: s, len }
    }

    /// Two rising notes (C5, G5): someone joined.
    pub fn entry() -> Self {
        Self::new(&[(523, 120), (0, 30), (784, 160)])
    }

    /// Two falling notes (G5, C5): someone left.
    pub fn exit() -> Self {
        Self::new(&[(784, 120), (0, 30), (523, 160)])
    }

    /// Three rising notes: enter the room's PIN, then `#`.
    pub fn pin_prompt() -> Self {
        Self::new(&[(440, 150), (0, 50), (660, 150), (0, 50), (880, 250)])
    }

    /// Two high beeps: this room is being recorded from now on.
    pub fn recording_started() -> Self {
        Self::new(&[(1400, 250), (0, 150), (1400, 250)])
    }

    /// A high beep, then a low one: the recording stopped.
    pub fn recording_stopped() -> Self {
        Self::new(&[(1400, 250), (0, 150), (700, 400)])
    }

    /// Two soft notes: the room has not started; a moderator is awaited.
    pub fn waiting() -> Self {
        Self::new(&[(392, 300), (0, 100), (330, 400)])
    }

    /// A low buzz (that was wrong), then the PIN prompt again.
    pub fn wrong_pin() -> Self {
        Self::new(&[
            (300, 400),
            (0, 200),
            (440, 150),
            (0, 50),
            (660, 150),
            (0, 50),
            (880, 250),
        ])
    }

    /// `n` short beeps (at most 8), e.g. the number of people in the room.
    pub fn count(n: usize) -> Self {
        let mut segs = [(0u16, 0u16); MAX_SEGMENTS];
        let n = n.clamp(1, MAX_SEGMENTS / 2);
        for i in 0..n {
            segs[2 * i] = (880, 150);
            segs[2 * i + 1] = (0, 150);
        }
        Self::new(&segs[..2 * n])
    }
}

/// Plays one pattern at a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct TonePlayer {
    pattern: Option<TonePattern>,
    segment: usize,
    left: usize,
    phase: f32,
}

const AMPLITUDE: f32 = 4000.0;

impl TonePlayer {
    pub(crate) fn play(&mut self, p: TonePattern) {
        self.pattern = Some(p);
        self.segment = 0;
        self.left = p.segments[0].1 as usize * MIX_RATE as usize / 1000;
        self.phase = 0.0;
    }

    pub(crate) fn active(&self) -> bool {
        self.pattern.is_some()
    }

    /// Adds the next 20 ms of the pattern to `buf`, sampled at `rate`
    /// (the mix rate, or 8 kHz in a narrowband room).
    pub(crate) fn add_to(&mut self, buf: &mut [i32], rate: u32) {
        let Some(p) = self.pattern else { return };
        // `left` counts mix-rate samples; the codecs' rates divide it.
        let step = (MIX_RATE / rate.max(1)).max(1) as usize;
        for s in buf.iter_mut() {
            while self.left == 0 {
                self.segment += 1;
                if self.segment >= p.len {
                    self.pattern = None;
                    return;
                }
                self.left = p.segments[self.segment].1 as usize * MIX_RATE as usize / 1000;
            }
            let freq = p.segments[self.segment].0;
            if freq > 0 {
                *s += (AMPLITUDE * self.phase.sin()) as i32;
                self.phase += 2.0 * std::f32::consts::PI * freq as f32 / rate as f32;
                if self.phase > 2.0 * std::f32::consts::PI {
                    self.phase -= 2.0 * std::f32::consts::PI;
                }
            }
            self.left = self.left.saturating_sub(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixer::FRAME;

    #[test]
    fn count_plays_its_beeps_then_stops() {
        let mut t = TonePlayer::default();
        t.play(TonePattern::count(3));
        let mut total = Vec::new();
        for _ in 0..50 {
            let mut buf = [0i32; FRAME];
            t.add_to(&mut buf, MIX_RATE);
            total.extend_from_slice(&buf);
        }
        assert!(!t.active());
        // 3 beeps of 150 ms with pauses: count the bursts.
        let frames: Vec<bool> = total
            .chunks(480)
            .map(|c| c.iter().any(|&s| s.abs() > 1000))
            .collect();
        let bursts = frames.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(frames[0]);
        assert_eq!(bursts, 3);
    }

    /// At 8 kHz the pattern lasts as long and has the same pitch.
    #[test]
    fn a_narrowband_frame_plays_the_same_pattern() {
        use crate::tone::goertzel;
        let mut wide = TonePlayer::default();
        let mut narrow = TonePlayer::default();
        wide.play(TonePattern::recording_started());
        narrow.play(TonePattern::recording_started());
        let (mut w_frames, mut n_frames) = (0, 0);
        let mut heard = Vec::new();
        while wide.active() || narrow.active() {
            let mut w = [0i32; FRAME];
            let mut n = [0i32; 160];
            w_frames += usize::from(wide.active());
            n_frames += usize::from(narrow.active());
            wide.add_to(&mut w, MIX_RATE);
            narrow.add_to(&mut n, 8000);
            heard.extend(n.iter().map(|&v| v as i16));
            assert!(w_frames < 1000 && n_frames < 1000);
        }
        assert_eq!(w_frames, n_frames);
        let on = goertzel(&heard, 8000, 1400.0);
        let off = goertzel(&heard, 8000, 1000.0);
        assert!(on > 100.0 * off.max(1e-6), "{on} vs {off}");
    }
}
