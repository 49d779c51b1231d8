//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).

use std::time::Duration;

use super::timer::{Deadlines, Timer};
use super::{Ctx, Event, Peer, TxError, TxId, TxKey};
use crate::message::{Request, Response};
use crate::method::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Non-INVITE only: nothing sent yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE only: the ACK for a 3xx–6xx arrived.
    Confirmed,
    /// INVITE only: a 2xx was sent (RFC 6026).
    Accepted,
    Terminated,
}

pub(crate) struct ServerTx {
    pub(crate) key: TxKey,
    invite: bool,
    state: State,
    peer: Peer,
    last_response: Option<Vec<u8>>,
    /// Current Timer G or 2xx retransmit interval.
    interval: Duration,
    acked_2xx: bool,
    call_id: String,
    pub(crate) deadlines: Deadlines,
}

impl ServerTx {
    pub(crate) fn new(ctx: &mut Ctx<'_>, key: TxKey, request: &Request, peer: Peer) -> Self {
        let invite = request.method == Method::Invite;
        let mut tx = Self {
            key,
            invite,
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            peer,
            last_response: None,
            interval: ctx.config.t1,
            acked_2xx: false,
            call_id: request.headers.call_id().unwrap_or_default().to_owned(),
            deadlines: Deadlines::default(),
        };
        if invite {
            // §17.2.1: the transaction answers 100 Trying itself, so the
            // client stops retransmitting while the TU works.
            let trying = Response::to_request(request, 100, "Trying", None);
            let bytes = trying.to_bytes();
            ctx.send(peer, bytes.clone());
            tx.last_response = Some(bytes);
        }
        tx
    }

    pub(crate) fn is_invite(&self) -> bool {
        self.invite
    }

    pub(crate) fn is_pending(&self) -> bool {
        matches!(self.state, State::Trying | State::Proceeding)
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub(crate) fn handle_retransmission(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Proceeding | State::Completed => {
                if let Some(r) = &self.last_response {
                    ctx.send(self.peer, r.clone());
                }
            }
            // Trying: nothing to resend. Accepted: the 2xx retransmission
            // covers it (RFC 6026 §7.1). Confirmed: absorbed.
            State::Trying | State::Accepted | State::Confirmed | State::Terminated => {}
        }
    }

    /// An ACK with this transaction's key. Returns true if it was absorbed here.
    pub(crate) fn handle_ack(&mut self, ctx: &mut Ctx<'_>) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.deadlines.clear(Timer::G);
                self.deadlines.clear(Timer::H);
                let wait = if self.peer.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    ctx.config.t4
                };
                self.deadlines.set(Timer::I, ctx.now + wait);
                true
            }
            State::Confirmed => true,
            _ => false,
        }
    }

    pub(crate) fn acked_2xx(&mut self) {
        self.acked_2xx = true;
        self.deadlines.clear(Timer::Retransmit2xx);
    }

    /// Sends a response. Returns true when it was a 2xx to an INVITE, which
    /// the layer then retransmits until the ACK.
    pub(crate) fn respond(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: &Response,
    ) -> Result<bool, TxError> {
        if !self.is_pending() {
            return Err(TxError::AlreadyFinal);
        }
        let bytes = response.to_bytes();
        ctx.send(self.peer, bytes.clone());
        self.last_response = Some(bytes);
        let reliable = self.peer.transport.is_reliable();
        let t1x64 = ctx.config.t1x64();
        if response.status < 200 {
            self.state = State::Proceeding;
            return Ok(false);
        }
        if self.invite {
            if response.status < 300 {
                self.state = State::Accepted;
                self.deadlines.set(Timer::L, ctx.now + t1x64);
                if !reliable {
                    self.interval = ctx.config.t1;
                    self.deadlines
                        .set(Timer::Retransmit2xx, ctx.now + self.interval);
                }
                return Ok(true);
            }
            self.state = State::Completed;
            if !reliable {
                self.interval = ctx.config.t1;
                self.deadlines.set(Timer::G, ctx.now + self.interval);
            }
            self.deadlines.set(Timer::H, ctx.now + t1x64);
        } else {
            self.state = State::Completed;
            let wait = if reliable { Duration::ZERO } else { t1x64 };
            self.deadlines.set(Timer::J, ctx.now + wait);
        }
        Ok(false)
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>, id: TxId, t: Timer) {
        self.deadlines.clear(t);
        match t {
            Timer::G | Timer::Retransmit2xx => {
                if let Some(r) = &self.last_response {
                    ctx.send(self.peer, r.clone());
                }
                self.interval = (self.interval * 2).min(ctx.config.t2);
                self.deadlines.set(t, ctx.now + self.interval);
            }
            Timer::H => {
                ctx.events.push_back(Event::Timeout { tx: id });
                self.terminate();
            }
            Timer::I | Timer::J => self.terminate(),
            Timer::L => {
                if !self.acked_2xx {
                    ctx.events.push_back(Event::AckTimeout {
                        tx: id,
                        call_id: self.call_id.clone(),
                    });
                }
                self.terminate();
            }
            _ => {}
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.deadlines.clear_all();
    }
}
