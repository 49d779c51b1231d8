//! Graceful drain: the focus stops taking new calls and subscriptions (503
//! with Retry-After, so that a proxy in front fails over to another node)
//! and refuses dial-outs, while the calls it has go on; at the end the
//! binary asks it to end the rest, each with a BYE and a Reason.

use std::time::Instant;

use sip::HeaderName;

use crate::core::Focus;
use crate::dialin::Refusal;
use crate::subscription::EndReason;

/// Seconds a refused caller is told to wait: by then another node (or
/// this one, restarted) takes calls.
const RETRY_AFTER_SECS: &str = "60";

impl Focus {
    /// From now on new calls, subscriptions and dial-outs are refused.
    pub(crate) fn start_drain(&mut self) {
        if !self.draining {
            self.draining = true;
            tracing::info!(
                calls = self.call_rooms.len(),
                "draining: new calls get 503, calls in progress go on"
            );
        }
    }

    /// The 503 a new call or subscription gets while draining.
    pub(crate) fn drain_refusal(&self) -> Option<Refusal> {
        self.draining.then(|| {
            (
                503,
                "Service Unavailable: this server is shutting down".to_string(),
                vec![(HeaderName::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
            )
        })
    }

    /// `reply` hears once no call is open.
    pub(crate) fn when_idle(&mut self, reply: crate::policy::Reply<()>) {
        if self.call_rooms.is_empty() {
            let _ = reply.send(());
        } else {
            self.idle_waiters.push(reply);
        }
    }

    /// A call ended: if it was the last, whoever waits hears it.
    pub(crate) fn check_idle(&mut self) {
        if self.call_rooms.is_empty() {
            for w in self.idle_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// Ends every call (BYE with a Reason) and every subscription (a final
    /// NOTIFY): the drain's time is up.
    pub(crate) fn end_all(&mut self, now: Instant) {
        self.start_drain();
        let calls: Vec<_> = self.call_rooms.keys().cloned().collect();
        for id in &calls {
            self.end_call(now, id, Some(("SIP;cause=503", "server shutting down")));
        }
        let subs: Vec<_> = self.subscription_rooms.keys().cloned().collect();
        for id in &subs {
            self.end_subscription(now, id, EndReason::NoResource);
        }
        tracing::info!(
            calls = calls.len(),
            subscriptions = subs.len(),
            "drain time is up: calls and subscriptions ended"
        );
    }
}
