//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).

use std::time::Duration;

use super::timer::{Deadlines, Timer};
use super::{Ctx, Event, Peer, TxId, TxKey};
use crate::header::HeaderName;
use crate::message::{Request, Response};
use crate::method::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE: Calling; non-INVITE: Trying.
    Calling,
    Proceeding,
    Completed,
    /// INVITE only: a 2xx arrived (RFC 6026 Timer M).
    Accepted,
    Terminated,
}

pub(crate) struct ClientTx {
    pub(crate) key: TxKey,
    invite: bool,
    state: State,
    peer: Peer,
    request: Request,
    request_bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    interval: Duration,
    pub(crate) deadlines: Deadlines,
}

impl ClientTx {
    pub(crate) fn new(ctx: &mut Ctx<'_>, key: TxKey, request: Request, peer: Peer) -> Self {
        let invite = request.method == Method::Invite;
        let request_bytes = request.to_bytes();
        ctx.send(peer, request_bytes.clone());
        let mut tx = Self {
            key,
            invite,
            state: State::Calling,
            peer,
            request,
            request_bytes,
            ack: None,
            interval: ctx.config.t1,
            deadlines: Deadlines::default(),
        };
        let reliable = peer.transport.is_reliable();
        let (retransmit, timeout) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !reliable {
            tx.deadlines.set(retransmit, ctx.now + tx.interval);
        }
        tx.deadlines.set(timeout, ctx.now + ctx.config.t1x64());
        tx
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Returns false when the response was a retransmission that was absorbed.
    pub(crate) fn handle_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: TxId,
        response: Response,
    ) -> bool {
        let status = response.status;
        let reliable = self.peer.transport.is_reliable();
        match (self.invite, self.state) {
            (_, State::Calling | State::Proceeding) if status < 200 => {
                self.state = State::Proceeding;
                if self.invite {
                    self.deadlines.clear(Timer::A);
                    self.deadlines.clear(Timer::B);
                } else if !reliable {
                    // §17.1.2.2: in Proceeding, Timer E fires every T2.
                    self.interval = ctx.config.t2;
                }
            }
            (true, State::Calling | State::Proceeding) if status < 300 => {
                self.state = State::Accepted;
                self.deadlines.clear_all();
                self.deadlines.set(Timer::M, ctx.now + ctx.config.t1x64());
            }
            (true, State::Calling | State::Proceeding) => {
                self.state = State::Completed;
                self.deadlines.clear_all();
                let ack = self.build_ack(&response).to_bytes();
                ctx.send(self.peer, ack.clone());
                self.ack = Some(ack);
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32)
                };
                self.deadlines.set(Timer::D, ctx.now + wait);
            }
            (false, State::Calling | State::Proceeding) => {
                self.state = State::Completed;
                self.deadlines.clear_all();
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    ctx.config.t4
                };
                self.deadlines.set(Timer::K, ctx.now + wait);
            }
            // RFC 6026: 2xx retransmissions go to the TU, which re-sends its ACK.
            (true, State::Accepted) if (200..300).contains(&status) => {}
            (true, State::Completed) if status >= 300 => {
                if let Some(ack) = &self.ack {
                    ctx.send(self.peer, ack.clone());
                }
                return false;
            }
            _ => return false,
        }
        ctx.events.push_back(Event::Response { tx: id, response });
        true
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same top Via and
    /// Request-URI, To from the response.
    fn build_ack(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        if let Some(v) = self.request.headers.values(&HeaderName::VIA).next() {
            ack.headers.push(HeaderName::VIA, v);
        }
        for name in [HeaderName::FROM, HeaderName::CALL_ID] {
            if let Some(v) = self.request.headers.get(&name) {
                ack.headers.push(name, v);
            }
        }
        if let Some(v) = response.headers.get(&HeaderName::TO) {
            ack.headers.push(HeaderName::TO, v);
        }
        let seq = self.request.headers.cseq().map(|c| c.seq).unwrap_or(1);
        ack.headers.push(HeaderName::CSEQ, format!("{seq} ACK"));
        for r in self.request.headers.get_all(&HeaderName::ROUTE) {
            ack.headers.push(HeaderName::ROUTE, r);
        }
        ack.headers.push(HeaderName::MAX_FORWARDS, "70");
        ack
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>, id: TxId, t: Timer) {
        self.deadlines.clear(t);
        match t {
            Timer::A => {
                ctx.send(self.peer, self.request_bytes.clone());
                // Timer A doubles without the T2 cap (§17.1.1.2).
                self.interval *= 2;
                self.deadlines.set(Timer::A, ctx.now + self.interval);
            }
            Timer::E => {
                ctx.send(self.peer, self.request_bytes.clone());
                if self.state == State::Calling {
                    self.interval = (self.interval * 2).min(ctx.config.t2);
                }
                self.deadlines.set(Timer::E, ctx.now + self.interval);
            }
            Timer::B | Timer::F => {
                ctx.events.push_back(Event::Timeout { tx: id });
                self.terminate();
            }
            Timer::D | Timer::K | Timer::M => self.terminate(),
            _ => {}
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.deadlines.clear_all();
    }
}
