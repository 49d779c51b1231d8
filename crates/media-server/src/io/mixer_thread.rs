//! The mixer's OS thread: ticks on an absolute deadline so the clock never
//! drifts, and a pump thread that forwards events and frees what the mixer
//! hands back. The pump sleeps until a tick leaves it something: polling
//! every few milliseconds cost a tenth of the server's CPU in a room of 100.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::send_queue::{Offload, SendWake};
use crate::mixer::{Garbage, Mixer, MixerEvent};

/// Counters of one mixer thread.
#[derive(Debug, Default)]
pub struct MixerThreadStats {
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Ticks that took longer than the period.
    pub overruns: AtomicU64,
    /// Longest tick so far, in microseconds.
    pub max_tick_us: AtomicU64,
    /// Participants in the mixer after the last tick.
    pub participants: AtomicU64,
    /// Ticks by duration: `tick_buckets[i]` counts the ticks of at most
    /// `TICK_BUCKETS_US[i]` µs that fit no smaller bucket; the last counts
    /// the longer ones.
    pub tick_buckets: [AtomicU64; TICK_BUCKETS_US.len() + 1],
    /// Time spent in ticks, µs.
    pub tick_us_sum: AtomicU64,
}

/// Upper bounds of the tick duration buckets, µs (the period is 20,000).
pub const TICK_BUCKETS_US: [u64; 10] =
    [50, 100, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 40_000];

impl MixerThreadStats {
    /// Counts one tick of `us` µs: atomics only, for the mixer thread.
    fn record_tick(&self, us: u64) {
        let i = TICK_BUCKETS_US.partition_point(|&b| b < us);
        self.tick_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.tick_us_sum.fetch_add(us, Ordering::Relaxed);
        self.max_tick_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// The longest a pump sleeps without being woken: a backstop, since the
/// mixer wakes it after every tick that leaves it something.
const PUMP_IDLE: Duration = Duration::from_millis(500);

/// Who a mixer thread wakes after a tick.
pub(crate) struct Wakes {
    /// Its event pump.
    pub(crate) pump: std::thread::Thread,
    /// Whether it queues its sends, by its participant count.
    pub(crate) offload: Offload,
    /// The receive threads, which send what it queued.
    pub(crate) senders: Vec<SendWake>,
}

impl Wakes {
    /// After the tick, not in it: a wake-up is a system call, made only
    /// when there is something to take or to send.
    fn after_tick(&self, mixer: &Mixer) {
        if mixer.has_handoffs() {
            self.pump.unpark();
        }
        // The mode this tick ran in decides: a tick that queued is sent
        // even if the mode turns off now.
        let queued = self.offload.is_on();
        self.offload.update(mixer.participant_count());
        if queued {
            for s in &self.senders {
                s.notify();
            }
        }
    }
}

pub(crate) fn spawn_mixer(
    index: usize,
    mut mixer: Mixer,
    first: Instant,
    period: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<MixerThreadStats>,
    wakes: Wakes,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("confab-mixer-{index}"))
        .spawn(move || {
            let mut deadline = first;
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
                let start = Instant::now();
                mixer.tick(deadline);
                let spent = start.elapsed();
                stats.ticks.fetch_add(1, Ordering::Relaxed);
                stats
                    .participants
                    .store(mixer.participant_count() as u64, Ordering::Relaxed);
                stats.record_tick(spent.as_micros() as u64);
                if spent > period {
                    stats.overruns.fetch_add(1, Ordering::Relaxed);
                }
                wakes.after_tick(&mixer);
                deadline += period;
                // Far behind (the machine stalled): skip ahead instead of bursting.
                if Instant::now() > deadline + period * 5 {
                    deadline = Instant::now() + period;
                }
            }
        })
}

pub(crate) fn spawn_pump(
    index: usize,
    mut events: rtrb::Consumer<MixerEvent>,
    mut garbage: rtrb::Consumer<Garbage>,
    out: broadcast::Sender<MixerEvent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("confab-mixer-pump-{index}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                while let Ok(e) = events.pop() {
                    let _ = out.send(e);
                }
                while let Ok(g) = garbage.pop() {
                    drop(g);
                }
                std::thread::park_timeout(PUMP_IDLE);
            }
        })
}
