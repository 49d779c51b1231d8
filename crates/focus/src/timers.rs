//! One structure for the focus's own deadlines (delayed answers, PIN
//! prompts, subscription expiry, coalesced NOTIFYs): a min-heap of (when,
//! what), so that the next deadline is found without looking at every
//! call and subscription on each turn of the loop. Entries are never
//! removed early: a deadline that moved or whose call is gone is found
//! stale when it comes up and dropped, which costs one wake-up at most.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::call::DialogId;
use crate::core::Focus;

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A call's delayed 200 is due.
    Answer(DialogId),
    /// A caller at the PIN prompt is out of time.
    Pin(DialogId),
    /// A subscription expires.
    Expiry(DialogId),
    /// A subscription's coalesced NOTIFY is due.
    Notify(DialogId),
}

/// The deadlines, soonest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    /// Wakes the focus for `timer` at `at`.
    pub(crate) fn set(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The soonest deadline (perhaps a stale one).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next deadline that is due at `now`, taken out.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, t))| t)
    }

    /// Gives back the capacity a burst left.
    pub(crate) fn shrink(&mut self) {
        if sip::transaction::sparse(self.heap.len(), self.heap.capacity()) {
            self.heap.shrink_to(self.heap.len() * 2);
        }
    }
}

impl Focus {
    /// Acts on every deadline due at `now` that still stands.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                // Only a call still holding its 200 has one to send.
                Timer::Answer(id) => self.send_delayed_answer(now, &id),
                Timer::Pin(id) => self.pin_timeout(now, &id),
                Timer::Expiry(id) => self.subscription_expiry(now, &id),
                Timer::Notify(id) => self.notify_due(now, &id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(n: &str) -> DialogId {
        DialogId {
            call_id: n.into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
        }
    }

    #[test]
    fn deadlines_come_up_soonest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(t0 + Duration::from_secs(3), Timer::Expiry(id("a")));
        t.set(t0 + Duration::from_secs(1), Timer::Pin(id("b")));
        t.set(t0 + Duration::from_secs(2), Timer::Answer(id("c")));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        let due: Vec<Timer> =
            std::iter::from_fn(|| t.pop_due(t0 + Duration::from_secs(2))).collect();
        assert_eq!(due, [Timer::Pin(id("b")), Timer::Answer(id("c"))]);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
    }
}
