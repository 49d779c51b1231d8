//! Symmetric RTP (RFC 4961): which source a participant's stream is taken
//! from. Decided where packets arrive, before they are queued for the
//! mixer, so that a burst from a stranger never takes ring slots from the
//! genuine stream. Sans-IO: time is an argument.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the current source keeps the latch against a newcomer.
pub const LATCH_HOLD: Duration = Duration::from_secs(1);

/// What to do with a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the source already taken.
    Current,
    /// From a source now taken: the first, the signalled address, the same
    /// stream from a new address (NAT rebinding), or after the old source
    /// went quiet.
    Moved,
    /// From a stranger while the current source is live: drop it.
    Stray,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    addr: SocketAddr,
    ssrc: u32,
    last: Instant,
}

/// The source a participant's RTP is taken from.
#[derive(Debug, Clone, Default)]
pub struct SourceLatch {
    current: Option<Source>,
    /// Where the signalling (SDP) says the phone sends from.
    signalled: Option<SocketAddr>,
}

impl SourceLatch {
    /// A latch that takes `signalled` at once, and any first source.
    pub fn new(signalled: Option<SocketAddr>) -> Self {
        Self {
            current: None,
            signalled,
        }
    }

    /// A new SDP named this address.
    pub fn set_signalled(&mut self, addr: SocketAddr) {
        self.signalled = Some(addr);
    }

    /// The source taken, if any.
    pub fn current(&self) -> Option<SocketAddr> {
        self.current.map(|s| s.addr)
    }

    /// Decides on a packet with `ssrc` from `from`, arriving `now`.
    pub fn handle(&mut self, from: SocketAddr, ssrc: u32, now: Instant) -> Admit {
        let taken = Source {
            addr: from,
            ssrc,
            last: now,
        };
        let Some(cur) = self.current else {
            self.current = Some(taken);
            return Admit::Current;
        };
        if cur.addr == from {
            self.current = Some(taken);
            return Admit::Current;
        }
        let quiet = now.saturating_duration_since(cur.last) > LATCH_HOLD;
        if self.signalled == Some(from) || cur.ssrc == ssrc || quiet {
            self.current = Some(taken);
            Admit::Moved
        } else {
            Admit::Stray
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_stranger_cannot_take_a_live_stream() {
        let t0 = Instant::now();
        let mut l = SourceLatch::new(None);
        assert_eq!(l.handle(addr(4000), 7, t0), Admit::Current);
        for i in 0..100 {
            let at = t0 + Duration::from_millis(i);
            assert_eq!(l.handle(addr(9), 99, at), Admit::Stray);
        }
        assert_eq!(
            l.handle(addr(4000), 7, t0 + Duration::from_millis(20)),
            Admit::Current
        );
        assert_eq!(l.current(), Some(addr(4000)));
    }

    #[test]
    fn the_same_stream_from_a_new_address_moves_at_once() {
        let t0 = Instant::now();
        let mut l = SourceLatch::new(None);
        l.handle(addr(4000), 7, t0);
        assert_eq!(l.handle(addr(4100), 7, t0), Admit::Moved);
        assert_eq!(l.current(), Some(addr(4100)));
    }

    #[test]
    fn a_quiet_source_gives_way_and_the_signalled_one_always_wins() {
        let t0 = Instant::now();
        let mut l = SourceLatch::new(Some(addr(5000)));
        l.handle(addr(4000), 7, t0);
        let later = t0 + LATCH_HOLD + Duration::from_millis(1);
        assert_eq!(l.handle(addr(4200), 8, later), Admit::Moved);
        assert_eq!(l.handle(addr(5000), 9, later), Admit::Moved);
        l.set_signalled(addr(6000));
        assert_eq!(l.handle(addr(6000), 10, later), Admit::Moved);
        assert_eq!(l.handle(addr(5000), 9, later), Admit::Stray);
    }
}
