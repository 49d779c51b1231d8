//! Per-source admission: a token bucket per IP address, so that one peer
//! flooding the server cannot starve the others. Sans-IO: time is an argument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Limits for one source address.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    /// Sustained messages per second per source IP.
    pub messages_per_sec: f64,
    /// Burst size per source IP.
    pub burst: f64,
    /// Most tracked sources before old ones are forgotten.
    pub max_sources: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            messages_per_sec: 2000.0,
            burst: 4000.0,
            max_sources: 65536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by source IP.
#[derive(Debug)]
pub struct RateLimiter {
    limits: SourceLimits,
    buckets: HashMap<IpAddr, Bucket>,
    refused: u64,
}

impl RateLimiter {
    /// A limiter with the given limits.
    pub fn new(limits: SourceLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
            refused: 0,
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= self.limits.max_sources && !self.buckets.contains_key(&ip) {
            // Forget sources whose bucket has refilled: they are idle.
            let (rate, burst) = (self.limits.messages_per_sec, self.limits.burst);
            self.buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: self.limits.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limits.messages_per_sec).min(self.limits.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// Messages refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills() {
        let mut r = RateLimiter::new(SourceLimits {
            messages_per_sec: 10.0,
            burst: 5.0,
            max_sources: 2,
        });
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!((0..10).filter(|_| r.admit(a, t0)).count(), 5);
        assert!(!r.admit(a, t0));
        assert!(r.admit(a, t0 + Duration::from_millis(150)));
        // Another source is unaffected.
        assert!(r.admit([10, 0, 0, 2].into(), t0));
        assert_eq!(r.refused(), 6);
    }
}
