//! The focus core: transactions, then rooms and calls above them.
//!
//! Sans-IO: every input comes through [`Focus::handle_input`], every output
//! leaves through [`Focus::poll_output`], and [`Focus::poll_timeout`] says
//! when to feed [`crate::Input::Timeout`]. Media control leaves as commands
//! for the driver ([`crate::MediaCommand`]); its reports come back as inputs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use sip::routing::response_target;
use sip::transaction::{Event, Peer, TransactionLayer, TransportKind, TxId};
use sip::{HeaderName, Message, Method, ParseFailure, Request, Response};

use crate::call::DialogId;
use crate::config::FocusConfig;
use crate::media::{LegId, MediaControl};
use crate::responder::answer;

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
    /// Calls answered with 200.
    pub calls_answered: u64,
    /// Calls ended.
    pub calls_ended: u64,
}

/// The sans-IO focus.
pub struct Focus {
    pub(crate) config: FocusConfig,
    pub(crate) layer: TransactionLayer,
    pub(crate) rng: StdRng,
    pub(crate) stats: FocusStats,
    pub(crate) counters: crate::metrics::Counters,
    /// Draining: new calls, subscriptions and dial-outs are refused.
    pub(crate) draining: bool,
    /// Who waits for the last call to end.
    pub(crate) idle_waiters: Vec<crate::policy::Reply<()>>,
    /// Media commands for the driver, names for legs and rooms, bound ports.
    pub(crate) media: MediaControl,
    /// Rooms by name: each owns its policy, media, floor, hands, calls
    /// and subscriptions, and the index of the dial-outs placed into it.
    pub(crate) rooms: HashMap<String, crate::room::Room>,
    /// The room that holds each call.
    pub(crate) call_rooms: HashMap<DialogId, String>,
    pub(crate) by_invite_tx: HashMap<TxId, DialogId>,
    pub(crate) by_leg: HashMap<LegId, DialogId>,
    /// How many calls each source address has open.
    pub(crate) calls_by_ip: HashMap<IpAddr, usize>,
    pub(crate) next_check: Option<Instant>,
    /// The room that holds each subscription.
    pub(crate) subscription_rooms: HashMap<DialogId, String>,
    pub(crate) by_notify_tx: HashMap<TxId, DialogId>,
    pub(crate) event_stats: crate::subscription::EventStats,
    pub(crate) dialouts: HashMap<TxId, crate::dialout::DialOut>,
    /// Dialogs that REFERs outside a dialog created, until their last sipfrag NOTIFY.
    pub(crate) refer_dialogs: HashMap<DialogId, sip::dialog::Dialog>,
    pub(crate) room_events: std::collections::VecDeque<crate::room_events::RoomEvent>,
    pub(crate) resolver: crate::resolve::Resolver,
    /// Room changes noted and not yet fanned out to subscribers (room,
    /// changed user or None for the room itself), and since when.
    pub(crate) fanout: Vec<(String, Option<String>)>,
    pub(crate) fanout_at: Option<Instant>,
    /// Deadlines of calls and subscriptions, soonest first.
    pub(crate) timers: crate::timers::Timers,
    /// Digest authentication and lockouts.
    pub(crate) gate: crate::auth::Gate,
    /// Registered contacts by address of record.
    pub(crate) location: registrar::Location,
    /// Dial-outs per room this minute, and fork numbers.
    pub(crate) dial_rate: crate::dial_plan::DialRate,
    /// Binding changes not yet handed out for the store.
    pub(crate) registrations: std::collections::VecDeque<crate::registration::BindingsChanged>,
}

const CHECK_EVERY: Duration = Duration::from_secs(1);

impl Focus {
    /// A focus whose tags and branches come from an RNG seeded with `seed`.
    pub fn new(config: FocusConfig, seed: u64) -> Self {
        let mut media = MediaControl::default();
        // Ports bound ahead, so that the first caller is answered at once.
        let now = Instant::now();
        media.top_up(now);
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // The nonce key is secret: from the OS's generator, not the seed.
        let key = config.auth.key.unwrap_or_else(|| rand::rng().random());
        Self {
            gate: crate::auth::Gate::new(config.auth.clone(), key, (now, epoch)),
            location: registrar::Location::new(config.registrar),
            registrations: Default::default(),
            dial_rate: Default::default(),
            layer: TransactionLayer::new(config.timers),
            config,
            rng: StdRng::seed_from_u64(seed),
            stats: FocusStats::default(),
            counters: Default::default(),
            draining: false,
            idle_waiters: Vec::new(),
            media,
            rooms: HashMap::new(),
            call_rooms: HashMap::new(),
            by_invite_tx: HashMap::new(),
            by_leg: HashMap::new(),
            calls_by_ip: HashMap::new(),
            next_check: None,
            subscription_rooms: HashMap::new(),
            by_notify_tx: HashMap::new(),
            event_stats: Default::default(),
            dialouts: HashMap::new(),
            refer_dialogs: HashMap::new(),
            room_events: Default::default(),
            resolver: Default::default(),
            fanout: Vec::new(),
            fanout_at: None,
            timers: Default::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> FocusStats {
        FocusStats {
            calls_ended: self.counters.calls_ended_total(),
            ..self.stats
        }
    }

    /// Authentication counters.
    pub fn auth_stats(&self) -> crate::auth::AuthStats {
        self.gate.stats
    }

    /// Addresses of record with a registered contact.
    pub fn registered_users(&self) -> usize {
        self.location.len()
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.call_rooms.len()
    }

    /// Participants in a room (0 if it does not exist).
    pub fn room_size(&self, room: &str) -> usize {
        self.rooms.get(room).map(|r| r.calls.len()).unwrap_or(0)
    }

    /// Feeds one received message (or the parser's failure to read one).
    pub(crate) fn handle_message(
        &mut self,
        now: Instant,
        peer: Peer,
        message: Result<Message, ParseFailure>,
    ) {
        // An address locked out after failing to authenticate too often
        // gets no answer at all, and costs no transaction.
        if self.gate.ignores(now, peer.addr.ip()) {
            return;
        }
        match message {
            Ok(Message::Request(req)) => {
                self.counters.request_in(&req.method);
                let target = response_target(&req, peer);
                self.layer.handle_request(now, req, target);
            }
            Ok(Message::Response(resp)) => {
                self.counters.response_in(resp.status);
                self.layer.handle_response(now, resp)
            }
            Err(failure) => match failure.response() {
                Some(mut resp) => {
                    tracing::debug!(%peer.addr, status = failure.error.status, reason = %failure.error.reason, "malformed request");
                    self.config.identify(&mut resp.headers, HeaderName::SERVER);
                    self.stats.malformed_answered += 1;
                    self.counters.response_out(resp.status);
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
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.process_events(now);
        self.handle_fanout(now);
        self.fire_timers(now);
        self.retry_media(now);
        if self.next_check.is_some_and(|t| t <= now) {
            self.next_check = None;
            self.check_calls(now);
            self.gate.tidy(now);
            self.dial_rate.tidy(now);
            self.expire_bindings(now);
            self.shrink();
        }
        self.process_events(now);
    }

    /// Once a second: gives back what a burst of calls, transactions or
    /// subscriptions left in the maps' capacity (they never shrink by
    /// themselves), so that memory returns to its level once a flood is over.
    fn shrink(&mut self) {
        use sip::transaction::shrink_map;
        self.layer.shrink();
        self.timers.shrink();
        shrink_map(&mut self.rooms);
        shrink_map(&mut self.call_rooms);
        shrink_map(&mut self.by_invite_tx);
        shrink_map(&mut self.by_leg);
        shrink_map(&mut self.calls_by_ip);
        shrink_map(&mut self.subscription_rooms);
        shrink_map(&mut self.by_notify_tx);
        shrink_map(&mut self.dialouts);
        shrink_map(&mut self.refer_dialogs);
        self.media.shrink();
        if sip::transaction::sparse(self.room_events.len(), self.room_events.capacity()) {
            self.room_events.shrink_to(self.room_events.len() * 2);
        }
    }

    /// When to feed [`crate::Input::Timeout`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.layer.poll_timeout(),
            self.next_check,
            self.timers.next(),
            self.fanout_at,
            self.media.retry.at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn arm_check(&mut self, now: Instant) {
        // Calls need their timers checked; a burst's leftovers need shrinking.
        let slack = self.layer.has_slack() || self.call_rooms.capacity() > 256;
        if self.next_check.is_none() && (!self.call_rooms.is_empty() || slack) {
            self.next_check = Some(now + CHECK_EVERY);
        }
    }

    pub(crate) fn process_events(&mut self, now: Instant) {
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                Event::Request {
                    tx,
                    request,
                    source,
                } => self.on_request(now, tx, request, source),
                Event::Ack {
                    request,
                    matched_2xx,
                    ..
                } => {
                    if !self.on_ack(now, &request) && !matched_2xx {
                        self.stats.stray_acks += 1;
                    }
                }
                Event::StrayResponse(r) => {
                    tracing::debug!(status = r.status, "stray response dropped");
                    self.stats.stray_responses += 1;
                }
                Event::AckTimeout { call_id, .. } => {
                    let ids: Vec<DialogId> = self
                        .call_rooms
                        .keys()
                        .filter(|k| k.call_id == call_id)
                        .cloned()
                        .collect();
                    for id in ids {
                        tracing::info!(call_id = %id.call_id, "no ACK for our 200: ending the call");
                        self.end_call(now, &id, Some(("SIP;cause=408", "ACK timeout")));
                    }
                }
                Event::Response { tx, response } => {
                    if !self.on_dialout_response(now, tx, &response) {
                        self.on_notify_response(now, tx, response.status);
                    }
                }
                Event::Timeout { tx } => {
                    if !self.on_dialout_timeout(now, tx) {
                        self.on_notify_timeout(tx);
                    }
                }
            }
        }
        self.arm_check(now);
    }

    fn on_request(&mut self, now: Instant, tx: TxId, request: Request, source: Peer) {
        if let Some(id) = DialogId::of_request(&request) {
            if self.has_call(&id) {
                self.in_dialog(now, tx, request, &id, source);
            } else if request.method == Method::Subscribe
                && self
                    .subscription(&id)
                    .is_some_and(|s| s.state != crate::subscription::SubState::Terminated)
            {
                self.on_resubscribe(now, tx, request, &id);
            } else if request.method == Method::Cancel || request.method == Method::Options {
                self.reply_unrouted(now, tx, &request);
            } else {
                self.reply(
                    now,
                    tx,
                    &request,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                    None,
                );
            }
            return;
        }
        let authenticated = match request.method {
            Method::Register => true,
            Method::Invite | Method::Subscribe | Method::Message | Method::Refer => {
                self.routable(&request)
            }
            _ => false,
        };
        if !authenticated {
            match request.method {
                Method::Cancel => self.on_cancel(now, tx, &request),
                _ => self.reply_unrouted(now, tx, &request),
            }
            return;
        }
        let Some(who) = self.authenticate(now, tx, &request, source) else {
            return;
        };
        match request.method {
            Method::Register => self.on_register(now, tx, &request, source, &who),
            Method::Invite => self.on_invite(now, tx, request, source, who),
            Method::Subscribe => self.on_subscribe(now, tx, request, source, &who),
            Method::Message => self.on_message(now, tx, &request, None, Some(&who)),
            _ => self.on_refer(now, tx, &request, None, source, Some(&who)),
        }
    }

    /// Who sent a request from outside a dialog, or None once it has been
    /// challenged. REGISTER must authenticate whenever authentication is on;
    /// with `rooms`, other requests must when their room admits only users.
    fn authenticate(
        &mut self,
        now: Instant,
        tx: TxId,
        request: &Request,
        source: Peer,
    ) -> Option<crate::auth::Identity> {
        use crate::auth::{AuthMode, Check, Identity};
        let required = match self.gate.mode() {
            AuthMode::Off => return Some(Identity::from_header(request)),
            AuthMode::Required => true,
            AuthMode::Rooms => request.method == Method::Register || self.members_only(request),
        };
        match self.gate.check(now, request, source.addr.ip(), required) {
            Check::Pass(who) => Some(who),
            Check::Challenge { stale } => {
                self.challenge(now, tx, request, stale);
                None
            }
        }
    }

    /// Answers 401 with fresh nonces.
    pub(crate) fn challenge(&mut self, now: Instant, tx: TxId, request: &Request, stale: bool) {
        let headers = self.gate.challenge(now, stale);
        self.reply(now, tx, request, 401, "Unauthorized", &headers, None);
    }

    /// True when the room a request names admits only users who authenticate.
    fn members_only(&self, request: &Request) -> bool {
        request
            .uri
            .user
            .as_deref()
            .and_then(|room| self.policy(room))
            .is_some_and(|p| p.members_only)
    }

    /// INVITEs and SUBSCRIBEs that pass the generic checks (method, hops, Require) go to the rooms.
    fn routable(&self, req: &Request) -> bool {
        answer(&self.config, req).status == 480
    }

    fn reply_unrouted(&mut self, now: Instant, tx: TxId, request: &Request) {
        let a = answer(&self.config, request);
        let headers: Vec<(HeaderName, String)> = a.headers;
        self.reply(now, tx, request, a.status, &a.reason, &headers, None);
    }

    fn on_cancel(&mut self, now: Instant, tx: TxId, cancel: &Request) {
        let invite_tx = self.layer.find_invite(cancel);
        match invite_tx {
            Some(itx) => {
                self.reply(now, tx, cancel, 200, "OK", &[], None);
                if let Some(id) = self.by_invite_tx.get(&itx).cloned() {
                    if self
                        .call(&id)
                        .is_some_and(|c| c.state == crate::call::CallState::Ringing)
                    {
                        if let Some(call) = self.call(&id) {
                            let inv = call.invite.clone();
                            let tag = id.local_tag.clone();
                            self.reply_tagged(
                                now,
                                itx,
                                &inv,
                                487,
                                "Request Terminated",
                                &[],
                                None,
                                &tag,
                            );
                        }
                        self.drop_call(now, &id, crate::metrics::EndCause::Cancelled);
                    }
                }
            }
            None => self.reply(
                now,
                tx,
                cancel,
                481,
                "Call/Transaction Does Not Exist",
                &[],
                None,
            ),
        }
    }

    /// Sends a response with a fresh To tag.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reply(
        &mut self,
        now: Instant,
        tx: TxId,
        request: &Request,
        status: u16,
        reason: &str,
        headers: &[(HeaderName, String)],
        body: Option<(&str, String)>,
    ) {
        let tag = self.new_tag();
        self.reply_tagged(now, tx, request, status, reason, headers, body, &tag);
    }

    /// Sends a response with the given To tag (the dialog's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reply_tagged(
        &mut self,
        now: Instant,
        tx: TxId,
        request: &Request,
        status: u16,
        reason: &str,
        headers: &[(HeaderName, String)],
        body: Option<(&str, String)>,
        tag: &str,
    ) {
        let resp = self.build_response(request, status, reason, headers, body, tag);
        self.stats.answered += 1;
        self.counters.response_out(status);
        if let Err(e) = self.layer.respond(now, tx, resp) {
            tracing::debug!(error = %e, status, "could not respond");
        }
    }

    pub(crate) fn build_response(
        &self,
        request: &Request,
        status: u16,
        reason: &str,
        headers: &[(HeaderName, String)],
        body: Option<(&str, String)>,
        tag: &str,
    ) -> Response {
        let mut resp = Response::to_request(request, status, reason, Some(tag));
        // A UAS copies Record-Route into responses that create a dialog
        // (RFC 3261 §12.1.1), so that the caller's ACK, BYE and re-INVITE
        // go through the proxies that asked to stay in the path.
        let creates_dialog = matches!(
            request.method,
            Method::Invite | Method::Subscribe | Method::Refer
        ) && (101..300).contains(&status)
            && request
                .headers
                .to()
                .and_then(|t| t.tag().map(|_| ()))
                .is_none();
        if creates_dialog {
            for rr in request.headers.get_all(&HeaderName::RECORD_ROUTE) {
                resp.headers.push(HeaderName::RECORD_ROUTE, rr);
            }
        }
        for (n, v) in headers {
            resp.headers.push(n.clone(), v.clone());
        }
        self.config.identify(&mut resp.headers, HeaderName::SERVER);
        if let Some((ctype, text)) = body {
            resp.headers.push(HeaderName::CONTENT_TYPE, ctype);
            resp.body = text.into_bytes().into();
        }
        resp
    }

    pub(crate) fn new_tag(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    pub(crate) fn new_branch(&mut self) -> String {
        format!(
            "{}{:016x}",
            sip::header::MAGIC_COOKIE,
            self.rng.random::<u64>()
        )
    }

    /// Our address for Contact and Via: the advertised (or bound) IP, else
    /// the IP the caller dialed, with the port we listen on. Never the
    /// Request-URI's port: behind a proxy that is the proxy's, and an ACK
    /// or BYE sent there never reaches us.
    pub(crate) fn local_host(&self, req: &Request, transport: TransportKind) -> String {
        let host = match (&req.uri.host, self.config.advertise_ip) {
            (_, Some(ip)) => sip::Host::from(ip).to_string(),
            (Some(h), None) => h.to_string(),
            (None, None) => "127.0.0.1".into(),
        };
        match self.local_port(transport).or(req.uri.port) {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The port we listen on for `transport`.
    pub(crate) fn local_port(&self, transport: TransportKind) -> Option<u16> {
        match transport {
            TransportKind::Tls => self.config.sip_tls_port,
            _ => self.config.sip_port,
        }
    }

    /// Our `isfocus` Contact for `room` (RFC 4579), reachable over
    /// `transport`: a `sips:` URI when the peer used one (RFC 5630), else
    /// with the transport named.
    pub(crate) fn focus_contact(
        &self,
        room: &str,
        local_host: &str,
        transport: TransportKind,
        sips: bool,
    ) -> String {
        let user = crate::dialin::escape_user(room);
        if sips {
            format!("<sips:{user}@{local_host}>;isfocus")
        } else {
            let t = transport.via_token().to_ascii_lowercase();
            format!("<sip:{user}@{local_host};transport={t}>;isfocus")
        }
    }

    /// The IP to put in SDP: the media bind address, else the advertised or dialed one.
    pub(crate) fn media_ip(&self, req: &Request, local: std::net::SocketAddr) -> IpAddr {
        if !local.ip().is_unspecified() {
            return local.ip();
        }
        if let Some(ip) = self.config.advertise_ip {
            return ip;
        }
        match &req.uri.host {
            Some(sip::Host::V4(a)) => IpAddr::V4(*a),
            Some(sip::Host::V6(a)) => IpAddr::V6(*a),
            _ => IpAddr::from([127, 0, 0, 1]),
        }
    }
}
