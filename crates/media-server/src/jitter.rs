//! The per-participant jitter buffer, sans-IO: packets in with their arrival
//! time, frames out on the mixer's clock.
//!
//! * Reorders within its window, drops duplicates and packets that arrive
//!   after their turn was played.
//! * Measures interarrival jitter as RFC 3550 §6.4.1 does and adapts its
//!   target depth to `ptime + 3·jitter`, between one packet and the
//!   configured maximum delay.
//! * Absorbs clock drift: when the phone's clock runs fast the depth creeps
//!   above target, and one packet is dropped after it has stayed there for a
//!   second; a slow clock shows as underruns, which rebuffer to the target.
//! * Every slot's payload buffer is allocated up front: no allocation per packet.

use std::time::Instant;

/// Largest payload a slot holds (60 ms of G.711 is 480 bytes; Opus voice is far less).
pub const MAX_PAYLOAD: usize = 640;

/// Settings.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// Slots in the buffer (the reorder window), in packets.
    pub capacity: usize,
    /// Largest target delay, in milliseconds.
    pub max_delay_ms: u32,
    /// Packet time assumed until the stream shows its own, in milliseconds.
    pub ptime_ms: u32,
    /// RTP clock rate of the stream.
    pub clock_rate: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            capacity: 16,
            max_delay_ms: 200,
            ptime_ms: 20,
            clock_rate: 8000,
        }
    }
}

/// What the buffer holds for the next turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop<'a> {
    /// The packet whose turn it is.
    Packet {
        /// Its payload.
        payload: &'a [u8],
        /// Its RTP timestamp.
        timestamp: u32,
    },
    /// The packet for this turn is missing while later ones are here: conceal,
    /// or recover it from `next` (Opus in-band FEC).
    Lost {
        /// The following packet's payload, if it is here.
        next: Option<&'a [u8]>,
    },
    /// Nothing to play (not started, or underrun): play silence or conceal.
    Empty,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub received: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets that came after their turn.
    pub late: u64,
    /// Turns with no packet while later ones were here.
    pub lost: u64,
    /// Packets dropped to bring the depth back to target (drift).
    pub drift_drops: u64,
    /// Underruns (the buffer ran dry while playing).
    pub underruns: u64,
    /// Payloads larger than a slot, dropped.
    pub oversized: u64,
    /// Times the stream jumped and the buffer restarted.
    pub resyncs: u64,
}

#[derive(Clone)]
struct Slot {
    seq: u64,
    filled: bool,
    timestamp: u32,
    len: usize,
    payload: [u8; MAX_PAYLOAD],
}

/// The buffer.
pub struct JitterBuffer {
    cfg: JitterConfig,
    slots: Box<[Slot]>,
    next: Option<u64>,
    highest: u64,
    playing: bool,
    /// Interarrival jitter estimate, in RTP clock units (×16 fixed point is not needed in f64).
    jitter: f64,
    last_transit: Option<f64>,
    base: Option<Instant>,
    ptime_units: u32,
    last_ts: Option<(u64, u32)>,
    target: usize,
    above_target_pops: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with every slot allocated.
    pub fn new(cfg: JitterConfig) -> Self {
        let capacity = cfg.capacity.max(4);
        let slot = Slot {
            seq: 0,
            filled: false,
            timestamp: 0,
            len: 0,
            payload: [0; MAX_PAYLOAD],
        };
        Self {
            cfg: JitterConfig { capacity, ..cfg },
            slots: vec![slot; capacity].into_boxed_slice(),
            next: None,
            highest: 0,
            playing: false,
            jitter: 0.0,
            last_transit: None,
            base: None,
            ptime_units: cfg.ptime_ms * cfg.clock_rate / 1000,
            last_ts: None,
            target: 1,
            above_target_pops: 0,
            stats: JitterStats::default(),
        }
    }

    /// Forgets every packet and the stream state, keeping the slots (no allocation).
    pub fn restart(&mut self) {
        for s in self.slots.iter_mut() {
            s.filled = false;
        }
        self.next = None;
        self.highest = 0;
        self.playing = false;
        self.jitter = 0.0;
        self.last_transit = None;
        self.base = None;
        self.last_ts = None;
        self.target = 1;
        self.above_target_pops = 0;
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / self.cfg.clock_rate as f64
    }

    /// Packets from the next turn to the newest one held.
    pub fn depth(&self) -> usize {
        match self.next {
            Some(n) if self.highest >= n => (self.highest - n + 1) as usize,
            _ => 0,
        }
    }

    /// Current buffering delay in milliseconds.
    pub fn delay_ms(&self) -> u32 {
        self.depth() as u32 * self.ptime_ms()
    }

    /// The target depth in packets.
    pub fn target(&self) -> usize {
        self.target
    }

    fn ptime_ms(&self) -> u32 {
        (self.ptime_units * 1000 / self.cfg.clock_rate.max(1)).max(1)
    }

    fn max_depth(&self) -> usize {
        ((self.cfg.max_delay_ms / self.ptime_ms()) as usize).clamp(1, self.cfg.capacity - 1)
    }

    /// Extends a 16-bit sequence number next to the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        if self.next.is_none() && self.highest == 0 {
            return (1u64 << 16) + seq as u64;
        }
        let base = self.highest & !0xFFFF;
        let candidates = [
            base.wrapping_sub(1 << 16) + seq as u64,
            base + seq as u64,
            base + (1 << 16) + seq as u64,
        ];
        candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(self.highest))
            .unwrap_or(base + seq as u64)
    }

    /// Takes one packet. `arrival` is when it came off the socket.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: &[u8], arrival: Instant) {
        if payload.len() > MAX_PAYLOAD {
            self.stats.oversized += 1;
            return;
        }
        let ext = self.extend(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next {
            self.stats.late += 1;
            return;
        }
        if ext >= next + self.cfg.capacity as u64 {
            // A jump beyond the window (new stream, long outage): restart.
            self.stats.resyncs += 1;
            for s in self.slots.iter_mut() {
                s.filled = false;
            }
            self.next = Some(ext);
            self.highest = ext;
            self.playing = false;
        }
        let cap = self.cfg.capacity as u64;
        let slot = &mut self.slots[(ext % cap) as usize];
        if slot.filled && slot.seq == ext {
            self.stats.duplicates += 1;
            return;
        }
        slot.seq = ext;
        slot.filled = true;
        slot.timestamp = timestamp;
        slot.len = payload.len();
        slot.payload[..payload.len()].copy_from_slice(payload);
        self.stats.received += 1;
        self.highest = self.highest.max(ext);
        self.update_jitter(ext, timestamp, arrival);
    }

    fn update_jitter(&mut self, ext: u64, timestamp: u32, arrival: Instant) {
        let base = *self.base.get_or_insert(arrival);
        let arrival_units =
            arrival.saturating_duration_since(base).as_secs_f64() * self.cfg.clock_rate as f64;
        let transit = arrival_units - timestamp as f64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs();
            // Ignore timestamp jumps (a new talkspurt or stream) as jitter.
            if d < self.cfg.clock_rate as f64 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
        if let Some((prev_seq, prev_ts)) = self.last_ts {
            if ext == prev_seq + 1 {
                let delta = timestamp.wrapping_sub(prev_ts);
                if delta > 0 && delta <= self.cfg.clock_rate / 10 * 2 {
                    self.ptime_units = delta;
                }
            }
        }
        self.last_ts = Some((ext, timestamp));
        let ptime = self.ptime_units.max(1) as f64;
        let want = ((ptime + 3.0 * self.jitter) / ptime).ceil() as usize;
        self.target = want.clamp(1, self.max_depth());
    }

    /// The packet for the next turn, or what to do instead.
    pub fn pop(&mut self) -> Pop<'_> {
        let Some(next) = self.next else {
            return Pop::Empty;
        };
        let depth = self.depth();
        if !self.playing {
            if depth < self.target || depth == 0 {
                return Pop::Empty;
            }
            self.playing = true;
        }
        if depth == 0 {
            self.stats.underruns += 1;
            self.playing = false;
            return Pop::Empty;
        }
        self.trim_for_drift(depth);
        let next = self.next.unwrap_or(next);
        let cap = self.cfg.capacity as u64;
        self.next = Some(next + 1);
        let idx = (next % cap) as usize;
        if self.slots[idx].filled && self.slots[idx].seq == next {
            self.slots[idx].filled = false;
            let s = &self.slots[idx];
            return Pop::Packet {
                payload: &s.payload[..s.len],
                timestamp: s.timestamp,
            };
        }
        self.stats.lost += 1;
        let n = ((next + 1) % cap) as usize;
        let s = &self.slots[n];
        Pop::Lost {
            next: (s.filled && s.seq == next + 1).then(|| &s.payload[..s.len]),
        }
    }

    /// Drops the oldest packet when the depth stayed above target for about
    /// a second, or at once when it exceeds the maximum delay.
    fn trim_for_drift(&mut self, depth: usize) {
        let threshold = self.target + 2;
        if depth > threshold {
            self.above_target_pops += 1;
        } else {
            self.above_target_pops = 0;
        }
        let sustained = self.above_target_pops as u64 * self.ptime_ms() as u64 >= 1000;
        if depth > self.max_depth() + 1 || sustained {
            if let Some(n) = self.next {
                let idx = (n % self.cfg.capacity as u64) as usize;
                self.slots[idx].filled = false;
                self.next = Some(n + 1);
                self.stats.drift_drops += 1;
                self.above_target_pops = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn payload(seq: u16) -> [u8; 4] {
        [seq as u8, (seq >> 8) as u8, 0, 0]
    }

    fn played(p: Pop<'_>) -> Option<u16> {
        match p {
            Pop::Packet { payload, .. } => Some(payload[0] as u16 | (payload[1] as u16) << 8),
            _ => None,
        }
    }

    #[test]
    fn reorders_and_drops_duplicates_and_late() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t = Instant::now();
        for seq in [10u16, 12, 11, 11, 13] {
            jb.push(seq, seq as u32 * 160, &payload(seq), t);
        }
        assert_eq!(jb.stats().duplicates, 1);
        let out: Vec<_> = (0..4).map(|_| played(jb.pop())).collect();
        assert_eq!(out, vec![Some(10), Some(11), Some(12), Some(13)]);
        jb.push(9, 9 * 160, &payload(9), t);
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn loss_is_reported_with_the_next_packet_for_fec() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t = Instant::now();
        for seq in [1u16, 3, 4] {
            jb.push(seq, seq as u32 * 160, &payload(seq), t);
        }
        assert_eq!(played(jb.pop()), Some(1));
        assert_eq!(
            jb.pop(),
            Pop::Lost {
                next: Some(&payload(3)[..])
            }
        );
        assert_eq!(played(jb.pop()), Some(3));
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn sequence_wraps() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t = Instant::now();
        let mut out = Vec::new();
        for i in 0..10u32 {
            let seq = 65530u16.wrapping_add(i as u16);
            jb.push(seq, i * 160, &payload(seq), t);
            out.push(played(jb.pop()));
        }
        assert!(out.iter().all(Option::is_some), "{out:?}");
    }

    /// Jittery arrivals raise the target; the delay stays bounded by the maximum.
    #[test]
    fn adapts_to_jitter_and_stays_bounded() {
        let cfg = JitterConfig {
            max_delay_ms: 120,
            ..JitterConfig::default()
        };
        let mut jb = JitterBuffer::new(cfg);
        let t0 = Instant::now();
        let mut x: u32 = 12345;
        let mut max_delay = 0;
        let mut seq = 0u16;
        for tick in 0..2000u32 {
            // One packet per 20 ms with up to 60 ms of random extra delay.
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let jitter_ms = (x >> 16) % 60;
            let arrival = t0 + Duration::from_millis(tick as u64 * 20 + jitter_ms as u64);
            jb.push(seq, seq as u32 * 160, &payload(seq), arrival);
            seq = seq.wrapping_add(1);
            let _ = jb.pop();
            max_delay = max_delay.max(jb.delay_ms());
        }
        assert!(jb.jitter_ms() > 5.0, "jitter {}", jb.jitter_ms());
        assert!(jb.target() > 1, "target grew to {}", jb.target());
        assert!(max_delay <= 160, "delay stayed bounded: {max_delay} ms");
    }

    /// A phone whose clock is 1% fast: depth would grow forever; drift drops keep it near target.
    #[test]
    fn fast_clock_drift_is_absorbed() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        let mut seq = 0u16;
        let mut sent = 0u64;
        for tick in 0..6000u64 {
            // 101 packets per 100 ticks.
            while sent * 100 < (tick + 1) * 101 {
                jb.push(
                    seq,
                    seq as u32 * 160,
                    &payload(seq),
                    t0 + Duration::from_millis(tick * 20),
                );
                seq = seq.wrapping_add(1);
                sent += 1;
            }
            let _ = jb.pop();
        }
        assert!(
            jb.depth() <= jb.target() + 3,
            "depth {} target {}",
            jb.depth(),
            jb.target()
        );
        assert!(jb.stats().drift_drops > 30);
    }

    #[test]
    fn oversized_and_jumps() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t = Instant::now();
        jb.push(1, 0, &[0u8; MAX_PAYLOAD + 1], t);
        assert_eq!(jb.stats().oversized, 1);
        jb.push(100, 0, &payload(100), t);
        jb.push(30000, 0, &payload(30000), t);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(played(jb.pop()), Some(30000));
    }
}
