//! The replay list (RFC 3711 §3.3.2): the highest index received and a
//! bitmap of the 64 before it.

const WINDOW: u64 = 64;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Replay {
    highest: Option<u64>,
    /// Bit i: index `highest - i` was received.
    seen: u64,
}

impl Replay {
    /// True when `index` may be accepted (not seen, not too old).
    pub(crate) fn check(&self, index: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if index > h => true,
            Some(h) => {
                let back = h - index;
                back < WINDOW && self.seen & (1 << back) == 0
            }
        }
    }

    /// Marks `index` received (after its packet authenticated).
    pub(crate) fn accept(&mut self, index: u64) {
        match self.highest {
            Some(h) if index <= h => self.seen |= 1 << (h - index),
            Some(h) => {
                let shift = index - h;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(index);
            }
            None => {
                self.seen = 1;
                self.highest = Some(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_each_within_the_window() {
        let mut r = Replay::default();
        for i in [10, 12, 11] {
            assert!(r.check(i));
            r.accept(i);
        }
        assert!(!r.check(11));
        assert!(!r.check(12));
        r.accept(100);
        assert!(!r.check(36), "64 behind the highest is too old");
        assert!(r.check(37));
        assert!(r.check(101));
    }
}
