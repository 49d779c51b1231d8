//! Dial-in: an INVITE to `sip:ROOM@host` becomes a call in room ROOM
//! (admission, session timer, offer/answer, a media leg, 200 with an
//! `isfocus` Contact), or a clear refusal that leaves nothing half-open.

use std::time::Instant;

use sip::transaction::{Peer, TransportKind, TxId};
use sip::{HeaderName, Request};

use crate::call::{Call, CallState, DialogId, SessionTimer};
use crate::core::Focus;
use crate::media::{mixer_direction, MediaCommand, MediaSpec};
use crate::timers::Timer;

/// A refusal: status, reason phrase, extra headers.
/// A refusal of a new call or subscription: status, reason, headers.
pub(crate) type Refusal = (u16, String, Vec<(HeaderName, String)>);

/// An INVITE's offer, negotiated, and the leg it asks for.
struct Offer {
    session: sdp::Session,
    negotiated: sdp::Negotiated,
    spec: MediaSpec,
}

/// What a new call's media is: its leg (or the port kept for the ACK's
/// answer), our SDP, and our address in it.
struct CallMedia {
    leg: Option<crate::media::LegId>,
    sdp: String,
    awaiting_ack_answer: Option<crate::media::PortToken>,
    local: std::net::SocketAddr,
    session_id: u64,
}

impl Focus {
    pub(crate) fn on_invite(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        source: Peer,
        who: crate::auth::Identity,
    ) {
        match self.admit(now, tx, &req, source, who) {
            Ok(()) => {}
            Err((status, reason, headers)) => {
                tracing::info!(status, %reason, room = ?req.uri.user, "INVITE refused");
                self.reply(now, tx, &req, status, &reason, &headers, None);
            }
        }
    }

    /// Admission in steps: the room and its limits, the session timer, the
    /// offer, the dialog, the media; then the call exists and is answered
    /// (or rings first when an answer delay is configured). A step that
    /// refuses leaves nothing behind: the port is only taken once nothing
    /// after it can fail.
    fn admit(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        source: Peer,
        who: crate::auth::Identity,
    ) -> Result<(), Refusal> {
        let room = self.admit_room(req, source)?;
        let timer = self.session_timer(now, req)?;
        let offer = self.read_offer(&room, req, source.transport)?;
        let (dialog, contact) = self.uas_dialog(req, &room, source)?;
        let media = self.call_media(now, req, &room, offer.as_ref())?;
        let id = dialog.id.clone();
        let headers = self.answer_headers(req, contact, timer.as_ref());
        let ok = self.build_response(
            req,
            200,
            "OK",
            &headers,
            Some(("application/sdp", media.sdp)),
            &id.local_tag,
        );
        let call = Call {
            room,
            leg: media.leg,
            state: CallState::Ringing,
            invite: req.clone(),
            invite_tx: tx,
            dialog,
            sdp_session: media.session_id,
            sdp_version: 1,
            codec: offer.as_ref().map(|o| o.negotiated.codec),
            awaiting_ack_answer: media.awaiting_ack_answer,
            local_media: media.local,
            pending_answer: None,
            timer,
            rtp_seen: 0,
            rtp_changed: now,
            started: now,
            on_hold: offer.as_ref().is_some_and(|o| {
                mixer_direction(o.negotiated.remote_direction)
                    == media_server::mixer::Direction::Inactive
            }),
            self_muted: false,
            muted_by_focus: false,
            dialed_out: false,
            referred_by: None,
            volume_db: 0.0,
            dtmf_star: false,
            control: Default::default(),
            identity: who.user.map(|_| who.aor),
            srtp: offer.as_ref().and_then(|o| {
                o.negotiated
                    .local_crypto
                    .clone()
                    .zip(o.negotiated.crypto.clone())
            }),
        };
        if let Some(l) = media.leg {
            self.by_leg.insert(l, id.clone());
        }
        self.by_invite_tx.insert(tx, id.clone());
        self.add_call(id.clone(), call);
        if self.config.answer_delay.is_zero() {
            self.answer_now(now, &id, ok);
        } else {
            let ringing_headers = vec![(HeaderName::CONTACT, headers[0].1.clone())];
            self.reply_tagged(
                now,
                tx,
                req,
                180,
                "Ringing",
                &ringing_headers,
                None,
                &id.local_tag,
            );
            let at = now + self.config.answer_delay;
            if let Some(c) = self.call_mut(&id) {
                c.pending_answer = Some(ok);
            }
            self.timers.set(at, Timer::Answer(id));
        }
        Ok(())
    }

    /// The room the INVITE asks for (a new ad-hoc one from the factory
    /// URI), if it exists or may be created, is not locked or full, and
    /// the source has not too many calls.
    fn admit_room(&mut self, req: &Request, source: Peer) -> Result<String, Refusal> {
        if let Some(r) = self.drain_refusal() {
            return Err(r);
        }
        let mut room = req
            .uri
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                (
                    404,
                    "Not Found: no room in the Request-URI".to_string(),
                    vec![],
                )
            })?;
        let mut exists = self.room_known(&room) || self.config.rooms.contains(&room);
        if self.config.factory.as_deref() == Some(room.as_str()) {
            // RFC 4579 §5.4: the conference factory makes a new ad-hoc room.
            room = format!("adhoc-{:08x}", rand::Rng::random::<u32>(&mut self.rng));
            exists = true;
        }
        if !exists && !self.config.auto_create {
            return Err((404, format!("Not Found: no room {room}"), vec![]));
        }
        if self.policy(&room).is_some_and(|p| p.locked) {
            return Err((403, format!("Forbidden: room {room} is locked"), vec![]));
        }
        let max_size = self
            .policy(&room)
            .and_then(|p| p.max_participants)
            .unwrap_or(self.config.max_room_size);
        if self.room_size(&room) >= max_size {
            return Err((486, format!("Busy Here: room {room} is full"), vec![]));
        }
        if self.calls_from(source.addr.ip()) >= self.config.max_calls_per_source {
            return Err((
                503,
                "Service Unavailable: too many calls from this address".into(),
                vec![(HeaderName::RETRY_AFTER, "30".into())],
            ));
        }
        Ok(room)
    }

    /// The INVITE's SDP offer, negotiated against our codecs (RFC 3264);
    /// None when it has no body and we make the offer.
    fn read_offer(
        &mut self,
        room: &str,
        req: &Request,
        transport: TransportKind,
    ) -> Result<Option<Offer>, Refusal> {
        if req.body.is_empty() {
            if self.srtp_mode(room) == crate::secure_media::SrtpMode::Required {
                // Our offer would go out in the 200 and its keys with it;
                // let the caller offer RTP/SAVP instead.
                let host = self.local_host(req, transport);
                let why = "SRTP is required: offer RTP/SAVP with SDES keys";
                return Err((
                    488,
                    "Not Acceptable Here".into(),
                    vec![(HeaderName::WARNING, format!("305 {host} \"{why}\""))],
                ));
            }
            return Ok(None);
        }
        match req.headers.content_type().as_deref() {
            Some("application/sdp") => {}
            other => {
                return Err((
                    415,
                    format!("Unsupported Media Type {}", other.unwrap_or("(none)")),
                    vec![(HeaderName::ACCEPT, "application/sdp".into())],
                ))
            }
        }
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| (400, "Bad Request: SDP is not UTF-8".to_string(), vec![]))?;
        let session =
            sdp::Session::parse(text).map_err(|e| (400, format!("Bad Request: {e}"), vec![]))?;
        let negotiated = sdp::negotiate(&session, &self.config.codecs).map_err(|e| {
            let host = self.local_host(req, TransportKind::Udp);
            (
                488,
                "Not Acceptable Here".to_string(),
                vec![(HeaderName::WARNING, format!("305 {host} \"{e}\""))],
            )
        })?;
        let mut negotiated = negotiated;
        let host = self.local_host(req, transport);
        self.secure_answer(room, &mut negotiated, transport, &host)?;
        let spec = MediaSpec::from_negotiated(&negotiated, negotiated.rtcp_mux)
            .ok_or_else(|| (488, "Not Acceptable Here".to_string(), vec![]))?;
        Ok(Some(Offer {
            session,
            negotiated,
            spec,
        }))
    }

    /// The call's dialog, with our `isfocus` Contact on the transport the
    /// INVITE came over (RFC 4579).
    fn uas_dialog(
        &mut self,
        req: &Request,
        room: &str,
        source: Peer,
    ) -> Result<(sip::dialog::Dialog, String), Refusal> {
        let local_tag = self.new_tag();
        let local_host = self.local_host(req, source.transport);
        let sips = req.uri.scheme == sip::Scheme::Sips;
        let contact = self.focus_contact(room, &local_host, source.transport, sips);
        let local = sip::dialog::Local {
            peer: source,
            host: local_host,
            contact: contact.clone(),
        };
        let dialog = sip::dialog::Dialog::uas(req, &local_tag, local)
            .ok_or_else(|| (400, "Bad Request: no Call-ID or From".into(), vec![]))?;
        Ok((dialog, contact))
    }

    /// Media: a bound port for the SDP, the room's mixer room (opened if
    /// needed), and the leg when the offer settled the codec; else the
    /// port waits for the answer in the ACK.
    fn call_media(
        &mut self,
        now: Instant,
        req: &Request,
        room: &str,
        offer: Option<&Offer>,
    ) -> Result<CallMedia, Refusal> {
        let Some((port, bound)) = self.media.take_port(now) else {
            return Err((
                503,
                "Service Unavailable: no free media port".into(),
                vec![(HeaderName::RETRY_AFTER, "5".into())],
            ));
        };
        let local = std::net::SocketAddr::new(self.media_ip(req, bound), bound.port());
        let session_id: u64 = rand::Rng::random::<u32>(&mut self.rng) as u64;
        let media_room = self.open_media(room);
        Ok(match offer {
            Some(o) => {
                let leg = self.media.new_leg();
                self.media.send(MediaCommand::Join {
                    leg,
                    room: media_room,
                    port,
                    spec: o.spec.clone(),
                });
                let n = &o.negotiated;
                let dir = n.remote_direction.reversed();
                CallMedia {
                    leg: Some(leg),
                    sdp: sdp::answer(&o.session, n, local, dir, session_id, 1),
                    awaiting_ack_answer: None,
                    local,
                    session_id,
                }
            }
            None => CallMedia {
                leg: None,
                sdp: sdp::offer(
                    &self.config.codecs,
                    local,
                    sdp::Direction::SendRecv,
                    session_id,
                    1,
                    &[],
                ),
                awaiting_ack_answer: Some(port),
                local,
                session_id,
            },
        })
    }

    /// The 200's headers: Contact first (the 180 reuses it), what we allow
    /// and support, and the session timer when one runs.
    fn answer_headers(
        &self,
        req: &Request,
        contact: String,
        timer: Option<&SessionTimer>,
    ) -> Vec<(HeaderName, String)> {
        let mut headers = vec![
            (HeaderName::CONTACT, contact),
            (HeaderName::ALLOW, self.config.allow.join(", ")),
            (HeaderName::SUPPORTED, self.config.supported.join(", ")),
        ];
        if let Some(t) = timer {
            let who = if t.we_refresh { "uas" } else { "uac" };
            headers.push((
                HeaderName::SESSION_EXPIRES,
                format!("{};refresher={who}", t.interval),
            ));
            if req.headers.has_token(&HeaderName::SUPPORTED, "timer") {
                headers.push((HeaderName::REQUIRE, "timer".into()));
            }
        }
        headers
    }

    /// RFC 4028: checks the offered interval and decides who refreshes.
    fn session_timer(
        &mut self,
        now: Instant,
        req: &Request,
    ) -> Result<Option<SessionTimer>, Refusal> {
        let Some(se) = req.headers.session_expires() else {
            return Ok(None);
        };
        if se.interval < self.config.min_se {
            return Err((
                422,
                "Session Interval Too Small".into(),
                vec![(HeaderName::MIN_SE, self.config.min_se.to_string())],
            ));
        }
        let interval = se
            .interval
            .min(self.config.session_expires.max(self.config.min_se));
        let uac_can = req.headers.has_token(&HeaderName::SUPPORTED, "timer");
        let we_refresh = match se.refresher.as_deref() {
            Some("uas") => true,
            Some("uac") => false,
            _ => !uac_can,
        };
        Ok(Some(SessionTimer {
            interval,
            we_refresh,
            due: timer_due(now, interval, we_refresh),
        }))
    }

    pub(crate) fn answer_now(&mut self, now: Instant, id: &DialogId, ok: sip::Response) {
        let room = self.call(id).map(|c| c.room.clone()).unwrap_or_default();
        let wants_pin = self.room_wants_pin(&room);
        if !wants_pin {
            self.chime(id, media_server::mixer::TonePattern::entry());
        }
        let mute = self.policy(&room).is_some_and(|p| p.mute_on_entry);
        if let Some(c) = self.call_mut(id) {
            c.muted_by_focus = mute;
        }
        if wants_pin {
            self.start_pin_entry(now, id);
        } else if !self.hold_in_lobby(id) {
            self.apply_media(id);
        }
        let Some(call) = self.call_mut(id) else {
            return;
        };
        call.state = CallState::Answered;
        let tx = call.invite_tx;
        self.stats.calls_answered += 1;
        self.counters.call_started();
        self.stats.answered += 1;
        if let Err(e) = self.layer.respond(now, tx, ok) {
            tracing::debug!(error = %e, "could not send 200");
        }
        tracing::info!(call_id = %id.call_id, room = %self.call(id).map(|c| c.room.as_str()).unwrap_or(""), "call answered");
        self.call_changed(now, id);
    }

    pub(crate) fn send_delayed_answer(&mut self, now: Instant, id: &DialogId) {
        let ok = self.call_mut(id).and_then(|c| c.pending_answer.take());
        if let Some(ok) = ok {
            self.answer_now(now, id, ok);
        }
    }

    /// Closes a room's mixer room once it has no calls, and forgets the
    /// room when nothing else is left in it.
    pub(crate) fn close_room_if_empty(&mut self, room: &str) {
        let closing = self
            .rooms
            .get_mut(room)
            .filter(|r| r.calls.is_empty())
            .and_then(|r| r.media.take());
        if let Some(media) = closing {
            self.media.send(MediaCommand::CloseRoom { room: media });
            self.recording_closed(room);
        }
        self.forget_if_idle(room);
    }

    /// Plays a chime to a call's room, if enabled.
    pub(crate) fn chime(&mut self, id: &DialogId, pattern: media_server::mixer::TonePattern) {
        if !self.config.entry_exit_tones {
            return;
        }
        let media = self
            .call(id)
            .and_then(|c| self.rooms.get(&c.room))
            .and_then(|r| r.media);
        if let Some(room) = media {
            self.media.send(MediaCommand::RoomTone { room, pattern });
        }
    }

    /// Forgets a call and releases its media (no signalling).
    pub(crate) fn drop_call(
        &mut self,
        now: Instant,
        id: &DialogId,
        cause: crate::metrics::EndCause,
    ) {
        if self.call(id).is_some_and(|c| c.state != CallState::Ringing) {
            self.chime(id, media_server::mixer::TonePattern::exit());
        }
        let last = self.participant_info(id);
        let Some(call) = self.remove_call(id) else {
            return;
        };
        self.count_end(cause);
        let record = crate::CallRecord {
            room: call.room.clone(),
            caller: call.aor(),
            call_id: id.call_id.clone(),
            dialed_out: call.dialed_out,
            started: call.started,
            ended: now,
            cause: cause.label(),
            codec: call.codec,
            srtp: call.srtp.is_some(),
            media: None,
        };
        self.media.send(MediaCommand::CallEnded {
            leg: call.leg,
            record: Box::new(record),
        });
        if call.control.announced.is_some() {
            if let Some(info) = last {
                self.emit(&call.room, crate::room_events::RoomEventKind::Left(info));
            }
        }
        self.floor_left(now, &call.room, &id.local_tag);
        self.hand_left(&call.room, &id.local_tag);
        if let Some(leg) = call.leg {
            self.media.send(MediaCommand::Leave { leg });
            self.by_leg.remove(&leg);
        }
        if let Some(port) = call.awaiting_ack_answer {
            self.media.send(MediaCommand::Release { port });
        }
        self.by_invite_tx.remove(&call.invite_tx);
        self.close_room_if_empty(&call.room);
        self.check_idle();
        if call.state != CallState::Ringing {
            self.room_changed(now, &call.room, &call.aor());
        }
        tracing::info!(call_id = %id.call_id, room = %call.room, "call ended");
    }
}

/// When a session timer is due: our refresh at half the interval, or the
/// deadline for theirs (RFC 4028 §10: interval minus min(32 s, interval/3)).
pub(crate) fn timer_due(now: Instant, interval: u32, we_refresh: bool) -> Instant {
    let secs = if we_refresh {
        interval as f64 / 2.0
    } else {
        interval as f64 - (32f64).min(interval as f64 / 3.0)
    };
    now + std::time::Duration::from_secs_f64(secs.max(0.5))
}

pub(crate) fn escape_user(room: &str) -> String {
    room.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(*c))
        .collect()
}
