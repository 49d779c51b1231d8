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

/// Refusals since the last report: what an operator is told, at most once
/// a second while a flood lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    /// Messages refused since the last report.
    pub dropped: u64,
    /// The source refused last.
    pub last_source: IpAddr,
}

/// How often refusals are reported.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Counts events (drops, refusals) and says when to tell an operator: the
/// first at once, then at most once a second while they go on, with how
/// many happened since the last report. Sans-IO: time is an argument.
#[derive(Debug, Clone, Default)]
pub struct OncePerSecond {
    unreported: u64,
    reported_at: Option<Instant>,
}

impl OncePerSecond {
    /// One more event.
    pub fn note(&mut self) {
        self.unreported += 1;
    }

    /// The events not yet reported, when a report is due.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .reported_at
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        if self.unreported == 0 || !due {
            return None;
        }
        self.reported_at = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// Token buckets keyed by source IP.
#[derive(Debug)]
pub struct RateLimiter {
    limits: SourceLimits,
    buckets: HashMap<IpAddr, Bucket>,
    refused: u64,
    report: OncePerSecond,
    last_refused: Option<IpAddr>,
}

impl RateLimiter {
    /// A limiter with the given limits.
    pub fn new(limits: SourceLimits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
            refused: 0,
            report: OncePerSecond::default(),
            last_refused: None,
        }
    }

    /// New rates from now on; buckets keep their tokens up to the new burst.
    pub fn set_rate(&mut self, messages_per_sec: f64, burst: f64) {
        self.limits.messages_per_sec = messages_per_sec;
        self.limits.burst = burst;
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
            self.report.note();
            self.last_refused = Some(ip);
            false
        }
    }

    /// The refusals not yet reported, when a report is due: the first at
    /// once, then at most one a second.
    pub fn poll_report(&mut self, now: Instant) -> Option<DropReport> {
        let last_source = self.last_refused?;
        let dropped = self.report.poll(now)?;
        Some(DropReport {
            dropped,
            last_source,
        })
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

    #[test]
    fn a_new_rate_applies_from_now_on() {
        let mut r = RateLimiter::new(SourceLimits {
            messages_per_sec: 10.0,
            burst: 5.0,
            max_sources: 2,
        });
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!((0..10).filter(|_| r.admit(a, t0)).count(), 5);
        r.set_rate(100.0, 200.0);
        // 0.1 s at the new rate refills 10, not 1.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..20).filter(|_| r.admit(a, t1)).count(), 10);
    }

    #[test]
    fn refusals_are_reported_once_a_second() {
        let mut r = RateLimiter::new(SourceLimits {
            messages_per_sec: 1.0,
            burst: 1.0,
            max_sources: 4,
        });
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(r.poll_report(t0), None);
        for _ in 0..4 {
            r.admit(a, t0);
        }
        let first = r.poll_report(t0).unwrap();
        assert_eq!((first.dropped, first.last_source), (3, a));
        for i in 0..10 {
            r.admit(a, t0 + Duration::from_millis(10 * i));
        }
        assert_eq!(r.poll_report(t0 + Duration::from_millis(500)), None);
        let second = r.poll_report(t0 + Duration::from_millis(1000)).unwrap();
        assert_eq!(second.dropped, 10);
        assert_eq!(r.poll_report(t0 + Duration::from_millis(3000)), None);
    }
}
