//! What the focus counts for operators: requests by method, responses by
//! status, calls by how they ended, subscriptions and NOTIFYs, and the
//! transaction layer's retransmissions and timeouts. The binary exports a
//! snapshot as Prometheus metrics; label values come from closed sets (our
//! own cause texts, known methods, status codes), never from the network.

use std::collections::BTreeMap;

use sip::Method;

use crate::core::Focus;

/// Counters the focus keeps as it runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests_in: BTreeMap<&'static str, u64>,
    responses_out: BTreeMap<u16, u64>,
    responses_in: BTreeMap<u16, u64>,
    requests_out: BTreeMap<&'static str, u64>,
    calls_started: u64,
    calls_ended: BTreeMap<&'static str, u64>,
    pub(crate) notifies_failed: u64,
}

impl Counters {
    pub(crate) fn request_in(&mut self, m: &Method) {
        *self.requests_in.entry(method_name(m)).or_default() += 1;
    }

    pub(crate) fn request_out(&mut self, m: &Method) {
        *self.requests_out.entry(method_name(m)).or_default() += 1;
    }

    pub(crate) fn response_out(&mut self, status: u16) {
        *self.responses_out.entry(status).or_default() += 1;
    }

    pub(crate) fn response_in(&mut self, status: u16) {
        *self.responses_in.entry(status).or_default() += 1;
    }

    pub(crate) fn call_started(&mut self) {
        self.calls_started += 1;
    }

    pub(crate) fn call_ended(&mut self, cause: &'static str) {
        *self.calls_ended.entry(cause).or_default() += 1;
    }

    pub(crate) fn calls_ended_total(&self) -> u64 {
        self.calls_ended.values().sum()
    }
}

/// A known method's name; "other" for extension methods (their names come
/// from the network and would make the label set unbounded).
fn method_name(m: &Method) -> &'static str {
    m.standard_name().unwrap_or("other")
}

/// Why a call ended, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndCause {
    /// The caller hung up (BYE).
    RemoteBye,
    /// The caller gave up before the answer (CANCEL).
    Cancelled,
    /// We ended it, for this reason (the BYE's Reason text).
    Ours(&'static str),
}

impl EndCause {
    pub(crate) fn label(self) -> &'static str {
        match self {
            EndCause::RemoteBye => "remote BYE",
            EndCause::Cancelled => "cancelled",
            EndCause::Ours(why) => why,
        }
    }
}

/// A snapshot of the focus's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FocusMetrics {
    /// Requests received, by method (retransmissions included).
    pub requests_received: Vec<(&'static str, u64)>,
    /// Requests sent (new transactions), by method.
    pub requests_sent: Vec<(&'static str, u64)>,
    /// Responses sent, by status.
    pub responses_sent: Vec<(u16, u64)>,
    /// Responses received, by status.
    pub responses_received: Vec<(u16, u64)>,
    /// Calls connected (answered dial-ins and dial-outs).
    pub calls_started: u64,
    /// Calls ended, by cause.
    pub calls_ended: Vec<(&'static str, u64)>,
    /// Calls open now.
    pub calls_active: u64,
    /// Rooms with calls or subscriptions now.
    pub rooms_active: u64,
    /// Calls open now by codec.
    pub participants_by_codec: Vec<(&'static str, u64)>,
    /// Subscriptions alive.
    pub subscriptions: u64,
    /// NOTIFYs sent.
    pub notifies_sent: u64,
    /// NOTIFYs refused or timed out.
    pub notifies_failed: u64,
    /// The transaction layer's counters.
    pub transactions: sip::transaction::Stats,
    /// Digest authentication's counters.
    pub auth: crate::auth::AuthStats,
    /// Malformed messages, stray ACKs and responses.
    pub focus: crate::core::FocusStats,
    /// Addresses of record with a registered contact.
    pub registered: u64,
}

impl Focus {
    /// Starts a client transaction, counted by method.
    pub(crate) fn send_request(
        &mut self,
        now: std::time::Instant,
        request: sip::Request,
        peer: sip::transaction::Peer,
    ) -> Result<sip::transaction::TxId, sip::transaction::TxError> {
        self.counters.request_out(&request.method);
        self.layer.send_request(now, request, peer)
    }

    /// Counts a call's end.
    pub(crate) fn count_end(&mut self, cause: EndCause) {
        self.counters.call_ended(cause.label());
    }

    /// Everything the focus counts, now.
    pub fn metrics(&self) -> FocusMetrics {
        let c = &self.counters;
        let mut by_codec: BTreeMap<&'static str, u64> = BTreeMap::new();
        for room in self.rooms.values() {
            for call in room.calls.values() {
                *by_codec.entry(call.codec.unwrap_or("none")).or_default() += 1;
            }
        }
        let events = self.event_stats();
        FocusMetrics {
            requests_received: c.requests_in.iter().map(|(k, v)| (*k, *v)).collect(),
            requests_sent: c.requests_out.iter().map(|(k, v)| (*k, *v)).collect(),
            responses_sent: c.responses_out.iter().map(|(k, v)| (*k, *v)).collect(),
            responses_received: c.responses_in.iter().map(|(k, v)| (*k, *v)).collect(),
            calls_started: c.calls_started,
            calls_ended: c.calls_ended.iter().map(|(k, v)| (*k, *v)).collect(),
            calls_active: self.call_rooms.len() as u64,
            rooms_active: self.rooms.len() as u64,
            participants_by_codec: by_codec.into_iter().collect(),
            subscriptions: events.subscriptions as u64,
            notifies_sent: events.notifies,
            notifies_failed: c.notifies_failed,
            transactions: self.layer.stats(),
            auth: self.auth_stats(),
            focus: self.stats(),
            registered: self.location.len() as u64,
        }
    }
}
