//! The focus core: transactions plus the decisions above them.

use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};
use sip::transaction::{Event, Peer, TimerConfig, TransactionLayer, Transmit};
use sip::transport::response_target;
use sip::{HeaderName, Message, Method, ParseFailure, Response};

use crate::responder::answer;

/// What the focus says about itself.
#[derive(Debug, Clone)]
pub struct FocusConfig {
    /// Methods listed in Allow.
    pub allow: Vec<String>,
    /// Bodies listed in Accept.
    pub accept: Vec<String>,
    /// Option tags listed in Supported; a Require outside it gets 420.
    pub supported: Vec<String>,
    /// Server header value.
    pub server: String,
    /// Transaction timers.
    pub timers: TimerConfig,
}

impl Default for FocusConfig {
    fn default() -> Self {
        Self {
            allow: ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "SUBSCRIBE"]
                .map(String::from)
                .to_vec(),
            accept: vec!["application/sdp".into()],
            supported: Vec::new(),
            server: format!("confab/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
        }
    }
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FocusStats {
    /// Requests answered.
    pub answered: u64,
    /// Malformed requests answered with a 4xx/5xx from the parser.
    pub malformed_answered: u64,
    /// Malformed messages that could not be answered (bad responses, no Via).
    pub malformed_dropped: u64,
    /// ACKs that matched nothing.
    pub stray_acks: u64,
    /// Responses that matched no client transaction.
    pub stray_responses: u64,
}

/// The sans-IO focus.
pub struct Focus {
    config: FocusConfig,
    layer: TransactionLayer,
    rng: StdRng,
    stats: FocusStats,
}

impl Focus {
    /// A focus whose tags and branches come from an RNG seeded with `seed`.
    pub fn new(config: FocusConfig, seed: u64) -> Self {
        Self {
            layer: TransactionLayer::new(config.timers),
            config,
            rng: StdRng::seed_from_u64(seed),
            stats: FocusStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> FocusStats {
        self.stats
    }

    /// Feeds one received message (or the parser's failure to read one).
    pub fn handle_message(
        &mut self,
        now: Instant,
        peer: Peer,
        message: Result<Message, ParseFailure>,
    ) {
        match message {
            Ok(Message::Request(req)) => {
                let target = response_target(&req, peer);
                self.layer.handle_request(now, req, target);
            }
            Ok(Message::Response(resp)) => self.layer.handle_response(now, resp),
            Err(failure) => match failure.response() {
                Some(mut resp) => {
                    tracing::debug!(%peer.addr, status = failure.error.status, reason = %failure.error.reason, "malformed request");
                    resp.headers
                        .push(HeaderName::SERVER, self.config.server.clone());
                    self.stats.malformed_answered += 1;
                    self.layer.send_stateless(peer, resp.to_bytes());
                }
                None => {
                    tracing::debug!(%peer.addr, reason = %failure.error.reason, "malformed message dropped");
                    self.stats.malformed_dropped += 1;
                }
            },
        }
        self.process_events(now);
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.process_events(now);
    }

    /// When to call [`Focus::handle_timeout`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.layer.poll_timeout()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    fn process_events(&mut self, now: Instant) {
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                Event::Request { tx, request, .. } => {
                    if request.method == Method::Cancel {
                        if let Some(invite) = self.layer.find_invite(&request) {
                            if self.layer.is_pending(invite) {
                                // Not reached while every INVITE is answered at once;
                                // kept so a CANCEL is always answered correctly.
                                let to_tag = self.new_tag();
                                let _ = self.layer.respond(
                                    now,
                                    tx,
                                    Response::to_request(&request, 200, "OK", Some(&to_tag)),
                                );
                                continue;
                            }
                        }
                    }
                    let a = answer(&self.config, &request);
                    let to_tag = self.new_tag();
                    let mut resp =
                        Response::to_request(&request, a.status, &a.reason, Some(&to_tag));
                    for (n, v) in a.headers {
                        resp.headers.push(n, v);
                    }
                    resp.headers
                        .push(HeaderName::SERVER, self.config.server.clone());
                    self.stats.answered += 1;
                    if let Err(e) = self.layer.respond(now, tx, resp) {
                        tracing::warn!(error = %e, "could not respond");
                    }
                }
                Event::Ack { matched_2xx, .. } => {
                    if !matched_2xx {
                        self.stats.stray_acks += 1;
                    }
                }
                Event::StrayResponse(r) => {
                    tracing::debug!(status = r.status, "stray response dropped");
                    self.stats.stray_responses += 1;
                }
                Event::Response { .. } | Event::Timeout { .. } | Event::AckTimeout { .. } => {}
            }
        }
    }

    fn new_tag(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }
}
