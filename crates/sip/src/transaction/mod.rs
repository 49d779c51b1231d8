//! The RFC 3261 §17 transaction layer, sans-IO, with the RFC 6026 fixes.
//!
//! Push in with `handle_*`, pull out with `poll_*`; time is always an
//! argument. After every `handle_*` or [`TransactionLayer::respond`] /
//! [`TransactionLayer::send_request`], drain [`TransactionLayer::poll_transmit`]
//! and [`TransactionLayer::poll_event`], then re-arm one timer from
//! [`TransactionLayer::poll_timeout`].
//!
//! * Server INVITE: Proceeding (100 Trying sent at once) → Completed (3xx–6xx;
//!   Timer G retransmits, H gives up) → Confirmed (ACK; Timer I) → Terminated,
//!   or Proceeding → Accepted (2xx; Timer L, RFC 6026). While Accepted, the
//!   layer retransmits the 2xx on the TU's behalf (§13.3.1.4) until the ACK
//!   arrives or 64·T1 pass ([`Event::AckTimeout`]).
//! * Server non-INVITE: Trying → Proceeding → Completed (Timer J) → Terminated.
//! * Client INVITE: Calling (Timers A, B) → Proceeding → Completed (ACK sent,
//!   Timer D) or Accepted (Timer M; 2xx retransmits go to the TU).
//! * Client non-INVITE: Trying (Timers E, F) → Proceeding → Completed (Timer K).
//!
//! Retransmitted requests and responses are absorbed (and counted).

mod client;
mod key;
mod server;
mod timer;

pub use key::TxKey;
pub use timer::{Timer, TimerConfig};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use thiserror::Error;

use crate::header::HeaderName;
use crate::message::{Request, Response};
use crate::method::Method;

use client::ClientTx;
use server::ServerTx;

/// The transport a message travelled over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Datagrams: retransmissions are ours.
    Udp,
    /// A stream: reliable.
    Tcp,
    /// TLS over a stream: reliable.
    Tls,
}

impl TransportKind {
    /// True for stream transports.
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

/// A remote transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: TransportKind,
    /// The remote socket address.
    pub addr: SocketAddr,
}

/// A message to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub peer: Peer,
    /// The printed message.
    pub data: Vec<u8>,
}

/// A handle to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(u64);

/// What the transaction layer tells its user (the TU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request, not a retransmission; answer with [`TransactionLayer::respond`].
    Request {
        /// The new server transaction.
        tx: TxId,
        /// The request.
        request: Request,
        /// Where it came from.
        source: Peer,
    },
    /// An ACK that matched no INVITE server transaction in Completed: the ACK
    /// for a 2xx (its dialog takes it) or a stray one.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Peer,
        /// True when it acknowledged a 2xx that this layer was retransmitting.
        matched_2xx: bool,
    },
    /// A response for a client transaction.
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        response: Response,
    },
    /// A response that matched no client transaction.
    StrayResponse(Response),
    /// Timer B, F or H fired: no answer (client) or no ACK for a 3xx–6xx (server).
    Timeout {
        /// The transaction.
        tx: TxId,
    },
    /// A 2xx to an INVITE was never acknowledged (RFC 3261 §13.3.1.4): end the dialog.
    AckTimeout {
        /// The INVITE server transaction.
        tx: TxId,
        /// Call-ID of the unacknowledged 2xx.
        call_id: String,
    },
}

/// Misuse of the layer by its user.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TxError {
    /// The transaction does not exist (any more).
    #[error("no such transaction")]
    NoSuchTransaction,
    /// A final response was already sent.
    #[error("transaction already answered with a final response")]
    AlreadyFinal,
    /// The request lacks a Via with a branch, or a CSeq.
    #[error("request has no Via branch or CSeq")]
    BadRequest,
    /// A response to an ACK was attempted.
    #[error("ACK is never answered")]
    AckHasNoResponse,
}

/// Counters for what was absorbed or dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Request retransmissions absorbed or answered from the transaction.
    pub retransmissions_absorbed: u64,
    /// Response retransmissions absorbed by client transactions.
    pub response_retransmissions_absorbed: u64,
    /// Requests and responses we sent again on a timer (A, E, G, 2xx).
    pub retransmissions_sent: u64,
    /// Transactions that timed out (Timer B, F, H, or a 2xx never ACKed).
    pub timeouts: u64,
    /// Transactions alive.
    pub live: usize,
}

enum Tx {
    Server(ServerTx),
    Client(Box<ClientTx>),
}

/// Everything the state machines need to act: the clock, config and the queues.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a TimerConfig,
    pub(crate) transmits: &'a mut VecDeque<Transmit>,
    pub(crate) events: &'a mut VecDeque<Event>,
}

impl Ctx<'_> {
    pub(crate) fn send(&mut self, peer: Peer, data: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, data });
    }
}

/// All transactions of one endpoint.
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    by_key: HashMap<TxKey, TxId>,
    txs: HashMap<TxId, Tx>,
    /// 2xx responses being retransmitted, by (Call-ID, CSeq number).
    pending_2xx: HashMap<(String, u32), TxId>,
    timers: BinaryHeap<Reverse<(Instant, TxId, Timer)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl TransactionLayer {
    /// A layer with the given timer values.
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config,
            next_id: 1,
            by_key: HashMap::new(),
            txs: HashMap::new(),
            pending_2xx: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            live: self.txs.len(),
            ..self.stats
        }
    }

    fn alloc(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    /// True when some map or queue holds more than the capacity always
    /// kept: [`TransactionLayer::shrink`] may have something to give back.
    pub fn has_slack(&self) -> bool {
        [
            self.by_key.capacity(),
            self.txs.capacity(),
            self.pending_2xx.capacity(),
            self.timers.capacity(),
        ]
        .iter()
        .any(|&c| c > SLACK)
    }

    /// Gives back the memory of a burst once it is over: maps and queues
    /// keep their peak capacity otherwise, so a flood's transactions would
    /// hold memory long after they ended. Cheap when there is nothing to do.
    pub fn shrink(&mut self) {
        shrink_map(&mut self.by_key);
        shrink_map(&mut self.txs);
        shrink_map(&mut self.pending_2xx);
        if sparse(self.timers.len(), self.timers.capacity()) {
            self.timers.shrink_to(self.timers.len() * 2);
        }
        if sparse(self.transmits.len(), self.transmits.capacity()) {
            self.transmits.shrink_to(self.transmits.len() * 2);
        }
        if sparse(self.events.len(), self.events.capacity()) {
            self.events.shrink_to(self.events.len() * 2);
        }
    }

    fn ctx(&mut self, now: Instant) -> (Ctx<'_>, &mut HashMap<TxId, Tx>) {
        (
            Ctx {
                now,
                config: &self.config,
                transmits: &mut self.transmits,
                events: &mut self.events,
            },
            &mut self.txs,
        )
    }

    /// Feeds a parsed request received from `source`.
    pub fn handle_request(&mut self, now: Instant, request: Request, source: Peer) {
        let Some(key) = TxKey::server(&request) else {
            return;
        };
        if let Some(&id) = self.by_key.get(&key) {
            let is_ack = request.method == Method::Ack;
            let (mut ctx, txs) = self.ctx(now);
            if let Some(Tx::Server(tx)) = txs.get_mut(&id) {
                if is_ack {
                    if tx.handle_ack(&mut ctx) {
                        self.reschedule(id);
                        return;
                    }
                } else {
                    tx.handle_retransmission(&mut ctx);
                    self.stats.retransmissions_absorbed += 1;
                    return;
                }
            }
        }
        if request.method == Method::Ack {
            let k = (
                request.headers.call_id().unwrap_or_default().to_owned(),
                request.headers.cseq().map(|c| c.seq).unwrap_or(0),
            );
            let matched_2xx = if let Some(id) = self.pending_2xx.remove(&k) {
                if let Some(Tx::Server(tx)) = self.txs.get_mut(&id) {
                    tx.acked_2xx();
                }
                self.reschedule(id);
                true
            } else {
                false
            };
            self.events.push_back(Event::Ack {
                request,
                source,
                matched_2xx,
            });
            return;
        }
        let id = self.alloc();
        let (mut ctx, txs) = self.ctx(now);
        let tx = ServerTx::new(&mut ctx, key.clone(), &request, source);
        txs.insert(id, Tx::Server(tx));
        self.by_key.insert(key, id);
        self.events.push_back(Event::Request {
            tx: id,
            request,
            source,
        });
        self.reschedule(id);
    }

    /// Finds the INVITE server transaction a CANCEL refers to (RFC 3261 §9.2).
    pub fn find_invite(&self, cancel: &Request) -> Option<TxId> {
        let key = TxKey::invite_for_cancel(cancel)?;
        let id = *self.by_key.get(&key)?;
        match self.txs.get(&id) {
            Some(Tx::Server(tx)) if tx.is_invite() => Some(id),
            _ => None,
        }
    }

    /// True when the server transaction has not sent a final response yet.
    pub fn is_pending(&self, tx: TxId) -> bool {
        matches!(self.txs.get(&tx), Some(Tx::Server(s)) if s.is_pending())
    }

    /// Sends a response on a server transaction.
    pub fn respond(&mut self, now: Instant, tx: TxId, response: Response) -> Result<(), TxError> {
        let (mut ctx, txs) = self.ctx(now);
        let Some(Tx::Server(s)) = txs.get_mut(&tx) else {
            return Err(TxError::NoSuchTransaction);
        };
        let two_xx = s.respond(&mut ctx, &response)?;
        if two_xx {
            let k = (
                response.headers.call_id().unwrap_or_default().to_owned(),
                response.headers.cseq().map(|c| c.seq).unwrap_or(0),
            );
            self.pending_2xx.insert(k, tx);
        }
        self.reschedule(tx);
        Ok(())
    }

    /// Starts a client transaction for `request` (which carries our Via with a
    /// fresh branch) towards `peer`. ACK for a 2xx is not a transaction: send
    /// it with [`TransactionLayer::send_stateless`].
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
    ) -> Result<TxId, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::AckHasNoResponse);
        }
        let key = TxKey::client(&request).ok_or(TxError::BadRequest)?;
        request.headers.cseq().ok_or(TxError::BadRequest)?;
        let id = self.alloc();
        let (mut ctx, txs) = self.ctx(now);
        let tx = ClientTx::new(&mut ctx, key.clone(), request, peer);
        txs.insert(id, Tx::Client(Box::new(tx)));
        self.by_key.insert(key, id);
        self.reschedule(id);
        Ok(id)
    }

    /// Sends a message outside any transaction (ACK for 2xx, stateless answers).
    pub fn send_stateless(&mut self, peer: Peer, data: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, data });
    }

    /// Feeds a parsed response.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let id = TxKey::for_response(&response).and_then(|k| self.by_key.get(&k).copied());
        let Some(id) = id else {
            self.events.push_back(Event::StrayResponse(response));
            return;
        };
        let (mut ctx, txs) = self.ctx(now);
        match txs.get_mut(&id) {
            Some(Tx::Client(c)) => {
                if !c.handle_response(&mut ctx, id, response) {
                    self.stats.response_retransmissions_absorbed += 1;
                }
            }
            _ => self.events.push_back(Event::StrayResponse(response)),
        }
        self.reschedule(id);
    }

    /// The next instant at which [`TransactionLayer::handle_timeout`] must run.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id, t))) = self.timers.peek().copied() {
            if self.deadline(id, t) == Some(at) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.deadline(id, t) != Some(at) {
                continue;
            }
            let (sent, told) = (self.transmits.len(), self.events.len());
            let (mut ctx, txs) = self.ctx(now);
            match txs.get_mut(&id) {
                Some(Tx::Server(s)) => s.on_timer(&mut ctx, id, t),
                Some(Tx::Client(c)) => c.on_timer(&mut ctx, id, t),
                None => {}
            }
            // What a timer sends is always a retransmission.
            self.stats.retransmissions_sent += (self.transmits.len() - sent) as u64;
            self.stats.timeouts += self
                .events
                .iter()
                .skip(told)
                .filter(|e| matches!(e, Event::Timeout { .. } | Event::AckTimeout { .. }))
                .count() as u64;
            self.reschedule(id);
        }
    }

    /// The next datagram or stream write to perform.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn deadline(&self, id: TxId, t: Timer) -> Option<Instant> {
        match self.txs.get(&id)? {
            Tx::Server(s) => s.deadlines.get(t),
            Tx::Client(c) => c.deadlines.get(t),
        }
    }

    /// Pushes the transaction's current deadlines, or removes it if terminated.
    fn reschedule(&mut self, id: TxId) {
        let (terminated, deadlines) = match self.txs.get(&id) {
            Some(Tx::Server(s)) => (s.is_terminated(), s.deadlines.clone()),
            Some(Tx::Client(c)) => (c.is_terminated(), c.deadlines.clone()),
            None => return,
        };
        if terminated {
            if let Some(tx) = self.txs.remove(&id) {
                let key = match &tx {
                    Tx::Server(s) => &s.key,
                    Tx::Client(c) => &c.key,
                };
                if self.by_key.get(key) == Some(&id) {
                    self.by_key.remove(key);
                }
            }
            self.pending_2xx.retain(|_, v| *v != id);
            return;
        }
        for t in [
            Timer::A,
            Timer::B,
            Timer::D,
            Timer::E,
            Timer::F,
            Timer::G,
            Timer::H,
            Timer::I,
            Timer::J,
            Timer::K,
            Timer::L,
            Timer::M,
            Timer::Retransmit2xx,
        ] {
            if let Some(at) = deadlines.get(t) {
                self.timers.push(Reverse((at, id, t)));
            }
        }
    }
}

/// Builds the CANCEL for a request we sent (RFC 3261 §9.1): same Request-URI,
/// Call-ID, From, To, CSeq number, top Via and Route.
pub fn build_cancel(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(v) = invite.headers.get_all(&HeaderName::VIA).next() {
        c.headers
            .push(HeaderName::VIA, crate::scan::split_commas(v)[0]);
    }
    for name in [HeaderName::FROM, HeaderName::TO, HeaderName::CALL_ID] {
        if let Some(v) = invite.headers.get(&name) {
            c.headers.push(name, v);
        }
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
    c.headers.push(HeaderName::CSEQ, format!("{seq} CANCEL"));
    for r in invite.headers.get_all(&HeaderName::ROUTE) {
        c.headers.push(HeaderName::ROUTE, r);
    }
    c.headers.push(HeaderName::MAX_FORWARDS, "70");
    c
}

#[cfg(test)]
mod tests;

/// True when a collection uses under a quarter of a capacity worth giving back.
pub fn sparse(len: usize, capacity: usize) -> bool {
    capacity > SLACK && len * 4 < capacity
}

/// Capacity always kept: below it, shrinking is not worth a reallocation.
const SLACK: usize = 256;

/// Shrinks a map to twice its length when it is [`sparse`].
pub fn shrink_map<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if sparse(map.len(), map.capacity()) {
        map.shrink_to(map.len() * 2);
    }
}
