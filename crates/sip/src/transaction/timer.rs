//! Transaction timers (RFC 3261 §17, Table 4; RFC 6026 Timers L and M) and
//! their configuration.

use std::time::Duration;

/// T1, T2 and T4 (RFC 3261 §17.1.1.1), configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J, L, M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Which timer of a transaction is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait time for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE response retransmit (server, unreliable).
    G,
    /// Wait time for ACK receipt (server INVITE).
    H,
    /// Wait time for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait time for non-INVITE request retransmits (server).
    J,
    /// Wait time for response retransmits (client non-INVITE).
    K,
    /// Wait time for accepted INVITE request retransmits (server, RFC 6026).
    L,
    /// Wait time for retransmission of 2xx to INVITE (client, RFC 6026).
    M,
    /// The core's 2xx retransmission until ACK (RFC 3261 §13.3.1.4).
    Retransmit2xx,
    /// Giving up on the ACK for a 2xx (64·T1 after it was first sent).
    AckWait,
}

/// Table of deadlines for one transaction: at most one per timer kind.
#[derive(Debug, Default, Clone)]
pub(crate) struct Deadlines(Vec<(Timer, std::time::Instant)>);

impl Deadlines {
    pub(crate) fn set(&mut self, t: Timer, at: std::time::Instant) {
        self.clear(t);
        self.0.push((t, at));
    }
    pub(crate) fn clear(&mut self, t: Timer) {
        self.0.retain(|(k, _)| *k != t);
    }
    pub(crate) fn get(&self, t: Timer) -> Option<std::time::Instant> {
        self.0.iter().find(|(k, _)| *k == t).map(|(_, at)| *at)
    }
    pub(crate) fn clear_all(&mut self) {
        self.0.clear();
    }
}
