//! Per-token request rate limit: a token bucket for each API token, so one
//! client (or a runaway script) cannot starve the others. Beyond the rate
//! a call gets `ResourceExhausted`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most tokens tracked; beyond it the longest idle are forgotten.
const MAX_TRACKED: usize = 10_000;

struct Bucket {
    level: f64,
    at: Instant,
}

/// Token buckets keyed by principal id.
pub struct RateLimiter {
    /// Sustained rate and burst: one lock with the buckets, so that a
    /// change while running is seen whole.
    inner: Mutex<Inner>,
}

struct Inner {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// `per_sec` sustained, `burst` at once.
    pub fn new(per_sec: f64, burst: f64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                per_sec,
                burst: burst.max(1.0),
                buckets: HashMap::new(),
            }),
        }
    }

    /// New rates from now on; buckets keep their level up to the new burst.
    pub fn set_rate(&self, per_sec: f64, burst: f64) {
        if let Ok(mut i) = self.inner.lock() {
            i.per_sec = per_sec;
            i.burst = burst.max(1.0);
        }
    }

    /// Takes one request from `key`'s bucket at `now`; false when it is empty.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return true;
        };
        let Inner {
            per_sec,
            burst,
            buckets,
        } = &mut *inner;
        let (per_sec, burst) = (*per_sec, *burst);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            let oldest = buckets
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                buckets.remove(&k);
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            level: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * per_sec;
        b.level = (b.level + refill).min(burst);
        b.at = now;
        if b.level >= 1.0 {
            b.level -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let r = RateLimiter::new(10.0, 5.0);
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| r.allow("a", t0)).count(), 5);
        // Another key has its own bucket.
        assert!(r.allow("b", t0));
        // 0.5 s refills 5 requests.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..8).filter(|_| r.allow("a", t1)).count(), 5);
    }
}
