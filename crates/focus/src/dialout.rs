//! Dial-out: the focus places a call into a room, for a REFER or for the
//! control API. It offers SDP on a pooled port, shows the callee as
//! dialing-out, alerting, then connected to subscribers, and tells the
//! referrer how it goes (see [`crate::refer`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sip::transaction::{Peer, TransportKind, TxId};
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
        use control::ControlError;
        let (uri, local_host) = match self.api_dial_target(room, target) {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if let Some(sip::Host::Name(host)) = &uri.host {
            // The core does no DNS: the io edge looks the name up first.
            let (host, port) = (host.clone(), uri.port.unwrap_or(5060));
            let dial = PendingDial {
                room: room.to_owned(),
                target: uri,
                referred_by: None,
                referrer: Referrer::Api,
                local_host,
                api_reply: Some(reply),
            };
            if let Err(d) = self.resolve_then_dial(host, port, dial) {
                if let Some(reply) = d.api_reply {
                    let busy = ControlError::Refused("too many dial-outs wait for DNS".into());
                    let _ = reply.send(Err(busy));
                }
            }
            return;
        }
        let target = DialTarget {
            uri,
            resolved: None,
        };
        let placed = self
            .dial_out(now, room, target, None, Referrer::Api, &local_host)
            .map_err(refused);
        let _ = reply.send(placed);
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
        if !matches!(uri.scheme, sip::Scheme::Sip) {
            return Err(ControlError::BadUri("only sip: URIs can be dialed".into()));
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
        } = target;
        let port = target.port.unwrap_or(5060);
        let addr = match (&target.host, resolved) {
            (Some(sip::Host::V4(a)), _) => SocketAddr::new((*a).into(), port),
            (Some(sip::Host::V6(a)), _) => SocketAddr::new((*a).into(), port),
            (_, Some(addr)) => addr,
            // A name nobody resolved: the core does no DNS (REFER targets
            // must be IP addresses; the API's are resolved at the edge).
            _ => return Err("SIP/2.0 604 Does Not Exist Anywhere"),
        };
        let peer = Peer {
            transport: TransportKind::Udp,
            addr,
        };
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
        let offer = sdp::offer(
            &self.config.codecs,
            local,
            sdp::Direction::SendRecv,
            session,
            1,
        );
        let (tag, branch) = (self.new_tag(), self.new_branch());
        let call_id = format!("{:016x}@confab", rand::Rng::random::<u64>(&mut self.rng));
        let mut inv = Request::new(Method::Invite, target.clone());
        inv.headers.push(
            HeaderName::VIA,
            format!("SIP/2.0/UDP {local_host};branch={branch};rport"),
        );
        inv.headers.push(HeaderName::MAX_FORWARDS, "70");
        inv.headers.push(
            HeaderName::FROM,
            format!("<sip:{room}@{local_host}>;tag={tag}"),
        );
        inv.headers.push(HeaderName::TO, format!("<{target}>"));
        inv.headers.push(HeaderName::CALL_ID, call_id);
        inv.headers.push(HeaderName::CSEQ, "1 INVITE");
        inv.headers.push(
            HeaderName::CONTACT,
            format!("<sip:{room}@{local_host}>;isfocus"),
        );
        inv.headers
            .push(HeaderName::ALLOW, self.config.allow.join(", "));
        if let Some(by) = &referred_by {
            inv.headers.push(HeaderName::REFERRED_BY, format!("<{by}>"));
        }
        inv.headers
            .push(HeaderName::CONTENT_TYPE, "application/sdp");
        inv.body = offer.into_bytes().into();
        let tx = match self.layer.send_request(now, inv.clone(), peer) {
            Ok(tx) => tx,
            Err(_) => {
                self.media.send(MediaCommand::Release { port: token });
                return Err("SIP/2.0 500 Server Internal Error");
            }
        };
        let user = aor(&format!("<{target}>"));
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
            self.sipfrag(
                now,
                &d.referrer,
                &format!("SIP/2.0 {} {}", resp.status, resp.reason),
                true,
            );
            self.room_changed(now, &d.room, &d.user);
            return true;
        }
        self.connect_dialout(now, tx, d, resp);
        true
    }

    fn connect_dialout(&mut self, now: Instant, tx: TxId, d: DialOut, resp: &Response) {
        let local = sip::dialog::Local {
            peer: d.peer,
            host: d.local_host.clone(),
            contact: format!("<sip:{}@{}>;isfocus", d.room, d.local_host),
        };
        let Some(mut dialog) = sip::dialog::Dialog::uac(&d.invite, resp, local) else {
            tracing::debug!("a 2xx to a dial-out without a To tag: dropped");
            return;
        };
        let id = dialog.id.clone();
        // The ACK for a 2xx is ours to send, outside the transaction, along
        // the route set (RFC 3261 §13.2.2.4).
        let branch = self.new_branch();
        let ack = dialog.request(Method::Ack, &branch);
        self.layer.send_stateless(d.peer, ack.to_bytes());
        let answer = std::str::from_utf8(&resp.body)
            .ok()
            .and_then(|t| sdp::Session::parse(t).ok());
        let negotiated = answer
            .as_ref()
            .and_then(|a| sdp::accept_answer(&self.config.codecs, a).ok());
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
            on_hold: false,
            self_muted: false,
            muted_by_focus: false,
            dialed_out: true,
            referred_by: d.referred_by.clone(),
            volume_db: 0.0,
            dtmf_star: false,
            control: Default::default(),
        };
        let ok = leg.is_some();
        if let Some(leg) = leg {
            self.by_leg.insert(leg, id.clone());
        }
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
        self.media.send(MediaCommand::Release { port: d.token });
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
