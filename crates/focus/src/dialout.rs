//! Dial-out: the focus places a call into a room, for a REFER or for the
//! control API. It offers SDP on a pooled port, shows the callee as
//! dialing-out, alerting, then connected to subscribers, and tells the
//! referrer how it goes (see [`crate::refer`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sip::transaction::{build_cancel, Peer, TransportKind, TxId};
use sip::{HeaderName, Method, Request, Response};

use crate::call::{Call, CallState};
use crate::conference_doc::aor;
use crate::core::Focus;
use crate::media::{MediaCommand, MediaSpec, PortToken};
use crate::refer::Referrer;
use crate::resolve::PendingDial;

/// Who to call: the URI, and where its host name resolved to when it
/// has one (names are resolved at the io edge).
pub(crate) struct DialTarget {
    pub(crate) uri: sip::Uri,
    pub(crate) resolved: Option<SocketAddr>,
    /// Where the INVITE goes when not to the URI's address: the flow a
    /// registered contact came over, or the first hop of its Path.
    pub(crate) next_hop: Option<Peer>,
    /// Route headers (a registered contact's Path, RFC 3327).
    pub(crate) route: Vec<String>,
    /// A branch of a fork: the shared Call-ID and From tag, and the group.
    pub(crate) fork: Option<Fork>,
}

impl DialTarget {
    /// A target reached at its URI's address (or the one resolved for it).
    pub(crate) fn direct(uri: sip::Uri, resolved: Option<SocketAddr>) -> Self {
        Self {
            uri,
            resolved,
            next_hop: None,
            route: Vec::new(),
            fork: None,
        }
    }
}

/// What the branches of one forked dial-out share (RFC 3261 §16.6: one
/// call, so one Call-ID and From tag; each branch its own transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fork {
    pub(crate) group: u64,
    pub(crate) call_id: String,
    pub(crate) tag: String,
    /// The address of record the branches are for.
    pub(crate) aor: String,
}

/// A call the focus is placing.
pub(crate) struct DialOut {
    pub(crate) room: String,
    pub(crate) user: String,
    pub(crate) invite: Request,
    /// The port our offer named, and its address.
    pub(crate) token: PortToken,
    pub(crate) local: SocketAddr,
    pub(crate) peer: Peer,
    pub(crate) local_host: String,
    pub(crate) referred_by: Option<String>,
    pub(crate) alerting: bool,
    pub(crate) referrer: Referrer,
    /// The fork this branch belongs to.
    pub(crate) fork: Option<Fork>,
    /// Another branch answered: this one was cancelled (a 2xx that still
    /// comes is acknowledged and hung up).
    pub(crate) cancelled: bool,
    /// The SDES keys our offer carried (none: plain RTP).
    pub(crate) offered: Vec<sdp::Crypto>,
}

impl Focus {
    /// The control API asks the focus to call `target` into `room`; the
    /// new participant's id (or why not) goes to `reply`, at once or, when
    /// the target names a host, once the io edge has resolved it.
    pub fn dial_out_api(
        &mut self,
        now: Instant,
        room: &str,
        target: &str,
        reply: crate::policy::Reply<Result<String, control::ControlError>>,
    ) {
        let (uri, local_host) = match self.api_dial_target(room, target) {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let dial = PendingDial {
            room: room.to_owned(),
            target: uri,
            referred_by: None,
            referrer: Referrer::Api,
            local_host,
            api_reply: Some(reply),
        };
        self.start_dial(now, dial);
        self.process_events(now);
    }

    /// What an API dial-out calls and from where, or why it cannot.
    fn api_dial_target(
        &self,
        room: &str,
        target: &str,
    ) -> Result<(sip::Uri, String), control::ControlError> {
        use control::ControlError;
        if !self.room_known(room) {
            return Err(ControlError::NoRoom);
        }
        let uri = sip::Uri::parse(target)
            .map_err(|e| ControlError::BadUri(format!("not a SIP URI ({e})")))?;
        if !matches!(uri.scheme, sip::Scheme::Sip | sip::Scheme::Sips) {
            return Err(ControlError::BadUri(
                "only sip: and sips: URIs can be dialed".into(),
            ));
        }
        let local_host = self.config.sip_host.clone().ok_or_else(|| {
            ControlError::Refused("the focus has no SIP address to call from".into())
        })?;
        Ok((uri, local_host))
    }

    /// Places the call; returns the sipfrag status line on immediate failure.
    pub(crate) fn dial_out(
        &mut self,
        now: Instant,
        room: &str,
        target: DialTarget,
        referred_by: Option<String>,
        referrer: Referrer,
        local_host: &str,
    ) -> Result<String, &'static str> {
        let DialTarget {
            uri: target,
            resolved,
            next_hop,
            route,
            fork,
        } = target;
        let kind = uri_transport(&target);
        let port = target.port.unwrap_or(default_port(kind));
        let at = |addr| Peer {
            transport: kind,
            addr,
        };
        let peer = match (next_hop, &target.host, resolved) {
            (Some(p), _, _) => p,
            (None, Some(sip::Host::V4(a)), _) => at(SocketAddr::new((*a).into(), port)),
            (None, Some(sip::Host::V6(a)), _) => at(SocketAddr::new((*a).into(), port)),
            (None, _, Some(addr)) => at(addr),
            // A name nobody resolved: the core does no DNS (names are
            // looked up at the io edge before the dial-out is placed).
            _ => return Err("SIP/2.0 604 Does Not Exist Anywhere"),
        };
        // Over TLS we are reached at the TLS port.
        let local_host = &self.host_for(local_host, peer.transport);
        let (token, local) = self
            .media
            .take_port(now)
            .ok_or("SIP/2.0 503 Service Unavailable")?;
        let media_ip = self
            .config
            .advertise_ip
            .or_else(|| local_host.split(':').next().and_then(|h| h.parse().ok()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let local = SocketAddr::new(
            if local.ip().is_unspecified() {
                media_ip
            } else {
                local.ip()
            },
            local.port(),
        );
        let session: u64 = rand::Rng::random::<u32>(&mut self.rng) as u64;
        let offered = match self.offer_keys(room, peer.transport) {
            Ok(k) => k,
            Err(status) => {
                self.media.send(MediaCommand::Release { port: token });
                return Err(status);
            }
        };
        let offer = sdp::offer(
            &self.config.codecs,
            local,
            sdp::Direction::SendRecv,
            session,
            1,
            &offered,
        );
        let branch = self.new_branch();
        let (call_id, tag) = match &fork {
            Some(f) => (f.call_id.clone(), f.tag.clone()),
            None => (
                format!("{:016x}@confab", rand::Rng::random::<u64>(&mut self.rng)),
                self.new_tag(),
            ),
        };
        let mut inv = Request::new(Method::Invite, target.clone());
        inv.headers.push(
            HeaderName::VIA,
            format!(
                "SIP/2.0/{} {local_host};branch={branch};rport",
                peer.transport.via_token()
            ),
        );
        for r in &route {
            inv.headers.push(HeaderName::ROUTE, r.clone());
        }
        inv.headers.push(HeaderName::MAX_FORWARDS, "70");
        inv.headers.push(
            HeaderName::FROM,
            format!("<sip:{room}@{local_host}>;tag={tag}"),
        );
        let to = fork
            .as_ref()
            .map_or_else(|| target.to_string(), |f| f.aor.clone());
        inv.headers.push(HeaderName::TO, format!("<{to}>"));
        inv.headers.push(HeaderName::CALL_ID, call_id);
        inv.headers.push(HeaderName::CSEQ, "1 INVITE");
        let sips = target.scheme == sip::Scheme::Sips;
        inv.headers.push(
            HeaderName::CONTACT,
            self.focus_contact(room, local_host, peer.transport, sips),
        );
        inv.headers
            .push(HeaderName::ALLOW, self.config.allow.join(", "));
        self.config
            .identify(&mut inv.headers, HeaderName::USER_AGENT);
        if let Some(by) = &referred_by {
            inv.headers.push(HeaderName::REFERRED_BY, format!("<{by}>"));
        }
        inv.headers
            .push(HeaderName::CONTENT_TYPE, "application/sdp");
        inv.body = offer.into_bytes().into();
        let tx = match self.send_request(now, inv.clone(), peer) {
            Ok(tx) => tx,
            Err(_) => {
                self.media.send(MediaCommand::Release { port: token });
                return Err("SIP/2.0 500 Server Internal Error");
            }
        };
        let user = aor(&format!("<{to}>"));
        self.add_dialout(
            tx,
            DialOut {
                room: room.to_owned(),
                user: user.clone(),
                invite: inv,
                token,
                local,
                peer,
                local_host: local_host.to_owned(),
                referred_by,
                alerting: false,
                referrer,
                fork,
                cancelled: false,
                offered,
            },
        );
        self.room_changed(now, room, &user);
        Ok(tag)
    }

    /// A response to a dial-out INVITE. Returns false when `tx` is not one.
    pub(crate) fn on_dialout_response(&mut self, now: Instant, tx: TxId, resp: &Response) -> bool {
        let Some(d) = self.dialouts.get_mut(&tx) else {
            return false;
        };
        if d.cancelled {
            if resp.status >= 200 {
                if let Some(d) = self.remove_dialout(tx) {
                    if resp.status < 300 {
                        self.hang_up_branch(now, &d, resp);
                    }
                }
            }
            return true;
        }
        if resp.status < 200 {
            if resp.status >= 180 && !d.alerting {
                d.alerting = true;
                let (room, user, referrer) = (d.room.clone(), d.user.clone(), d.referrer.clone());
                self.sipfrag(
                    now,
                    &referrer,
                    &format!("SIP/2.0 {} {}", resp.status, resp.reason),
                    false,
                );
                self.room_changed(now, &room, &user);
            }
            return true;
        }
        let Some(d) = self.remove_dialout(tx) else {
            return true;
        };
        if resp.status >= 300 {
            self.media.send(MediaCommand::Release { port: d.token });
            if self.fork_alive(&d) {
                // Other contacts of the user may still answer.
                return true;
            }
            self.sipfrag(
                now,
                &d.referrer,
                &format!("SIP/2.0 {} {}", resp.status, resp.reason),
                true,
            );
            self.room_changed(now, &d.room, &d.user);
            return true;
        }
        self.cancel_siblings(now, &d);
        self.connect_dialout(now, tx, d, resp);
        true
    }

    /// True while another branch of `d`'s fork may still answer.
    fn fork_alive(&self, d: &DialOut) -> bool {
        let Some(f) = &d.fork else { return false };
        self.dialouts
            .values()
            .any(|o| !o.cancelled && o.fork.as_ref().is_some_and(|g| g.group == f.group))
    }

    /// The first 2xx of a fork wins: every other branch gets CANCEL
    /// (RFC 3261 §16.7 step 10) and gives back its port.
    fn cancel_siblings(&mut self, now: Instant, winner: &DialOut) {
        let Some(f) = &winner.fork else { return };
        let group = f.group;
        let siblings: Vec<TxId> = self
            .dialouts
            .iter()
            .filter(|(_, o)| !o.cancelled && o.fork.as_ref().is_some_and(|g| g.group == group))
            .map(|(tx, _)| *tx)
            .collect();
        for tx in siblings {
            let Some(o) = self.dialouts.get_mut(&tx) else {
                continue;
            };
            o.cancelled = true;
            let (cancel, peer, port) = (build_cancel(&o.invite), o.peer, o.token);
            self.media.send(MediaCommand::Release { port });
            if let Err(e) = self.send_request(now, cancel, peer) {
                tracing::debug!(error = %e, "could not cancel a fork branch");
            }
        }
    }

    /// A 2xx on a branch that was cancelled (it answered as the CANCEL
    /// crossed): acknowledged and hung up at once.
    fn hang_up_branch(&mut self, now: Instant, d: &DialOut, resp: &Response) {
        let Some(mut dialog) = self.acknowledge(d, resp) else {
            return;
        };
        let branch = self.new_branch();
        let bye = dialog.request(Method::Bye, &branch);
        if let Err(e) = self.send_request(now, bye, dialog.peer) {
            tracing::debug!(error = %e, "could not hang up a late fork branch");
        }
    }

    /// The dialog a 2xx to a dial-out made, with the ACK sent: ours to
    /// send, outside the transaction, along the route set (RFC 3261
    /// §13.2.2.4). None for a 2xx without a To tag.
    fn acknowledge(&mut self, d: &DialOut, resp: &Response) -> Option<sip::dialog::Dialog> {
        let local = sip::dialog::Local {
            peer: d.peer,
            host: d.local_host.clone(),
            contact: self.focus_contact(
                &d.room,
                &d.local_host,
                d.peer.transport,
                d.invite.uri.scheme == sip::Scheme::Sips,
            ),
        };
        let mut dialog = sip::dialog::Dialog::uac(&d.invite, resp, local)?;
        let branch = self.new_branch();
        let ack = dialog.request(Method::Ack, &branch);
        self.layer.send_stateless(d.peer, ack.to_bytes());
        Some(dialog)
    }

    fn connect_dialout(&mut self, now: Instant, tx: TxId, d: DialOut, resp: &Response) {
        let Some(dialog) = self.acknowledge(&d, resp) else {
            tracing::debug!("a 2xx to a dial-out without a To tag: dropped");
            return;
        };
        let id = dialog.id.clone();
        let answer = std::str::from_utf8(&resp.body)
            .ok()
            .and_then(|t| sdp::Session::parse(t).ok());
        let negotiated = answer
            .as_ref()
            .and_then(|a| sdp::accept_answer(&self.config.codecs, a).ok())
            .and_then(|mut n| {
                crate::secure_media::take_answer_keys(&mut n, &d.offered).then_some(n)
            });
        // A dial-out may be the room's first call: its mixer room opens now.
        let spec = negotiated
            .as_ref()
            .and_then(|n| MediaSpec::from_negotiated(n, false));
        let leg = match spec {
            Some(spec) => {
                let room = self.open_media(&d.room);
                let leg = self.media.new_leg();
                self.media.send(MediaCommand::Join {
                    leg,
                    room,
                    port: d.token,
                    spec,
                });
                Some(leg)
            }
            None => {
                self.media.send(MediaCommand::Release { port: d.token });
                None
            }
        };
        let call = Call {
            room: d.room.clone(),
            leg,
            state: CallState::Confirmed,
            invite: d.invite.clone(),
            invite_tx: tx,
            dialog,
            sdp_session: 0,
            sdp_version: 1,
            codec: negotiated.as_ref().map(|n| n.codec),
            awaiting_ack_answer: None,
            local_media: d.local,
            pending_answer: None,
            timer: None,
            rtp_seen: 0,
            rtp_changed: now,
            started: now,
            on_hold: false,
            self_muted: false,
            muted_by_focus: false,
            dialed_out: true,
            referred_by: d.referred_by.clone(),
            volume_db: 0.0,
            dtmf_star: false,
            control: Default::default(),
            identity: None,
            srtp: negotiated
                .as_ref()
                .and_then(|n| n.local_crypto.clone().zip(n.crypto.clone())),
        };
        let ok = leg.is_some();
        if let Some(leg) = leg {
            self.by_leg.insert(leg, id.clone());
        }
        self.counters.call_started();
        self.add_call(id.clone(), call);
        if ok {
            self.sipfrag(now, &d.referrer, "SIP/2.0 200 OK", true);
            self.chime(&id, media_server::mixer::TonePattern::entry());
            let muted = self.policy(&d.room).is_some_and(|p| p.mute_on_entry);
            if let Some(c) = self.call_mut(&id) {
                c.muted_by_focus = muted;
            }
            self.apply_media(&id);
            self.call_changed(now, &id);
        } else {
            self.sipfrag(now, &d.referrer, "SIP/2.0 488 Not Acceptable Here", true);
            self.end_call(
                now,
                &id,
                Some(("SIP;cause=488", "no acceptable SDP answer")),
            );
        }
    }

    /// A dial-out that got no answer at all.
    pub(crate) fn on_dialout_timeout(&mut self, now: Instant, tx: TxId) -> bool {
        let Some(d) = self.remove_dialout(tx) else {
            return false;
        };
        if d.cancelled {
            return true;
        }
        self.media.send(MediaCommand::Release { port: d.token });
        if self.fork_alive(&d) {
            return true;
        }
        self.sipfrag(now, &d.referrer, "SIP/2.0 408 Request Timeout", true);
        self.room_changed(now, &d.room, &d.user);
        true
    }
}

/// A dial-out the focus could not place, for the control API: the sipfrag
/// status line it would tell a referrer, without its "SIP/2.0 ".
pub(crate) fn refused(status: &str) -> control::ControlError {
    control::ControlError::Refused(status.trim_start_matches("SIP/2.0 ").to_owned())
}

/// The transport a URI asks for: `sips:` or `transport=tls` is TLS (RFC
/// 5630), `transport=tcp` TCP, anything else UDP.
pub(crate) fn uri_transport(uri: &sip::Uri) -> TransportKind {
    match uri.params.value("transport") {
        _ if uri.scheme == sip::Scheme::Sips => TransportKind::Tls,
        Some(t) if t.eq_ignore_ascii_case("tls") => TransportKind::Tls,
        Some(t) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
        _ => TransportKind::Udp,
    }
}

/// 5061 for TLS, 5060 for the others (RFC 3261 §19.1.2).
pub(crate) fn default_port(kind: TransportKind) -> u16 {
    match kind {
        TransportKind::Tls => 5061,
        _ => 5060,
    }
}

impl Focus {
    /// `local_host` with the port we listen on for `transport`.
    fn host_for(&self, local_host: &str, transport: TransportKind) -> String {
        let Some(port) = self.local_port(transport) else {
            return local_host.to_owned();
        };
        let host = match local_host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') => h,
            _ => local_host,
        };
        format!("{host}:{port}")
    }
}
