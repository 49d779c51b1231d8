//! Inside a call: ACK (and the answer it may carry), BYE, re-INVITE and
//! UPDATE (hold, resume, session refresh), BYEs we send ourselves, session
//! timers and RTP timeouts, and the DTMF caller controls.

use std::time::Instant;

use media_server::mixer::Direction;
use sip::transaction::{Peer, TxId};
use sip::{HeaderName, Method, Request};

use crate::call::{CallState, DialogId};
use crate::core::Focus;
use crate::dialin::timer_due;
use crate::media::{mixer_direction, MediaCommand, MediaSpec};

/// A request refused: status, reason and the headers that explain it.
struct Refused(u16, String, Vec<(HeaderName, String)>);

impl Focus {
    /// An ACK outside any INVITE server transaction: the ACK for our 2xx.
    /// Returns true when it belonged to a call.
    pub(crate) fn on_ack(&mut self, now: Instant, ack: &Request) -> bool {
        let Some(id) = DialogId::of_request(ack) else {
            return false;
        };
        let Some(room) = self.call_rooms.get(&id) else {
            return false;
        };
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let media_room = r.media;
        let Some(call) = r.calls.get_mut(&id) else {
            return false;
        };
        if call.state == CallState::Answered {
            call.state = CallState::Confirmed;
        }
        if let Some(token) = call.awaiting_ack_answer.take() {
            // Our offer went in the 200; the answer is in this ACK (RFC 3264 §4).
            let answer = std::str::from_utf8(&ack.body)
                .ok()
                .and_then(|t| sdp::Session::parse(t).ok());
            let negotiated = answer
                .as_ref()
                .and_then(|a| sdp::accept_answer(&self.config.codecs, a).ok());
            let room = media_room;
            let spec = negotiated
                .as_ref()
                .and_then(|n| Some((n.codec, MediaSpec::from_negotiated(n, false)?)));
            match (spec, room) {
                (Some((codec, spec)), Some(room)) => {
                    let leg = self.media.new_leg();
                    self.media.send(MediaCommand::Join {
                        leg,
                        room,
                        port: token,
                        spec,
                    });
                    if let Some(c) = self.call_mut(&id) {
                        c.leg = Some(leg);
                        c.codec = Some(codec);
                        c.rtp_changed = now;
                    }
                    self.by_leg.insert(leg, id.clone());
                }
                _ => {
                    self.media.send(MediaCommand::Release { port: token });
                    tracing::info!(call_id = %id.call_id, "ACK carried no acceptable answer: ending the call");
                    self.end_call(
                        now,
                        &id,
                        Some(("SIP;cause=488", "no acceptable SDP answer in ACK")),
                    );
                }
            }
        }
        true
    }

    pub(crate) fn in_dialog(
        &mut self,
        now: Instant,
        tx: TxId,
        req: Request,
        id: &DialogId,
        source: Peer,
    ) {
        let tag = id.local_tag.clone();
        let checked = self.call_mut(id).map(|c| c.dialog.handle_request(&req));
        if let Some(Err(e)) = checked {
            // §12.2.2: an out-of-order request is refused.
            tracing::debug!(call_id = %id.call_id, error = %e, "in-dialog request refused");
            self.reply_tagged(
                now,
                tx,
                &req,
                500,
                "Server Internal Error: CSeq out of order",
                &[],
                None,
                &tag,
            );
            return;
        }
        match req.method {
            Method::Bye => {
                self.reply_tagged(now, tx, &req, 200, "OK", &[], None, &tag);
                self.drop_call(now, id, crate::metrics::EndCause::RemoteBye);
            }
            Method::Invite | Method::Update => self.modify(now, tx, &req, id),
            Method::Options => {
                let headers = vec![
                    (HeaderName::ALLOW, self.config.allow.join(", ")),
                    (HeaderName::ACCEPT, self.config.accept.join(", ")),
                ];
                self.reply_tagged(now, tx, &req, 200, "OK", &headers, None, &tag);
            }
            Method::Info => self.reply_tagged(now, tx, &req, 200, "OK", &[], None, &tag),
            Method::Message => self.on_message(now, tx, &req, Some(id), None),
            Method::Refer => self.on_refer(now, tx, &req, Some(id), source, None),
            _ => {
                let headers = vec![(HeaderName::ALLOW, self.config.allow.join(", "))];
                self.reply_tagged(
                    now,
                    tx,
                    &req,
                    405,
                    "Method Not Allowed",
                    &headers,
                    None,
                    &tag,
                );
            }
        }
    }

    /// re-INVITE or UPDATE: a new offer (hold, resume, new address), a
    /// session refresh, or both.
    fn modify(&mut self, now: Instant, tx: TxId, req: &Request, id: &DialogId) {
        let tag = id.local_tag.clone();
        let offer = match self.read_modify(req, id) {
            Ok(offer) => offer,
            Err(Refused(status, reason, headers)) => {
                self.reply_tagged(now, tx, req, status, &reason, &headers, None, &tag);
                return;
            }
        };
        let Some(call) = self.call_mut(id) else {
            return;
        };
        if offer.is_some() {
            call.sdp_version += 1;
        }
        if let Some(t) = call.timer.as_mut() {
            t.due = timer_due(now, t.interval, t.we_refresh);
        }
        let timer_header = call.timer.map(|t| {
            let refresher = if t.we_refresh { "uas" } else { "uac" };
            (
                HeaderName::SESSION_EXPIRES,
                format!("{};refresher={refresher}", t.interval),
            )
        });
        let answer = offer.as_ref().map(|(offer, n)| {
            sdp::answer(
                offer,
                n,
                call.local_media,
                n.remote_direction.reversed(),
                call.sdp_session,
                call.sdp_version,
            )
        });
        if let Some((_, n)) = &offer {
            self.redirect_media(now, id, mixer_direction(n.remote_direction), n.remote);
        }
        let mut headers = vec![
            (HeaderName::ALLOW, self.config.allow.join(", ")),
            (HeaderName::SUPPORTED, self.config.supported.join(", ")),
        ];
        if let Some(c) = self.call(id) {
            headers.insert(0, (HeaderName::CONTACT, c.dialog.contact.clone()));
        }
        headers.extend(timer_header);
        let body = answer.map(|t| ("application/sdp", t));
        self.reply_tagged(now, tx, req, 200, "OK", &headers, body, &tag);
    }

    /// Checks a re-INVITE or UPDATE: no offer of ours outstanding, a
    /// session interval not too small, and an offer (if any) that parses
    /// and still fits what the focus speaks (the codec in use first).
    fn read_modify(
        &self,
        req: &Request,
        id: &DialogId,
    ) -> Result<Option<(sdp::Session, sdp::Negotiated)>, Refused> {
        let Some(call) = self.call(id) else {
            return Ok(None);
        };
        if call.state == CallState::Ringing || call.awaiting_ack_answer.is_some() {
            // An offer while ours is outstanding (RFC 3261 §14.2): glare.
            let retry = vec![(HeaderName::RETRY_AFTER, "1".into())];
            return Err(Refused(491, "Request Pending".into(), retry));
        }
        if let Some(se) = req.headers.session_expires() {
            if se.interval < self.config.min_se {
                let min = vec![(HeaderName::MIN_SE, self.config.min_se.to_string())];
                return Err(Refused(422, "Session Interval Too Small".into(), min));
            }
        }
        if req.body.is_empty() {
            return Ok(None);
        }
        let parsed = std::str::from_utf8(&req.body).ok().map(sdp::Session::parse);
        let Some(Ok(offer)) = parsed else {
            return Err(Refused(
                400,
                "Bad Request: malformed SDP".into(),
                Vec::new(),
            ));
        };
        // Keep the codec in use when the new offer still has it.
        let mut prefs = self.config.codecs.clone();
        if let Some(cur) = call.codec {
            prefs.codecs.retain(|c| c.name == cur);
        }
        match sdp::negotiate(&offer, &prefs) {
            Ok(mut n) => {
                keep_keys(&offer, &mut n, call.srtp.as_ref()).map_err(|why| {
                    let host = &call.dialog.local_host;
                    let warning = vec![(HeaderName::WARNING, format!("305 {host} \"{why}\""))];
                    Refused(488, "Not Acceptable Here".into(), warning)
                })?;
                Ok(Some((offer, n)))
            }
            Err(e) => {
                // The session goes on as it was (§14.2).
                let host = &call.dialog.local_host;
                let warning = vec![(HeaderName::WARNING, format!("305 {host} \"{e}\""))];
                Err(Refused(488, "Not Acceptable Here".into(), warning))
            }
        }
    }

    /// A new offer's direction and address reach the call's leg; a change
    /// of hold is announced.
    fn redirect_media(
        &mut self,
        now: Instant,
        id: &DialogId,
        direction: Direction,
        remote: std::net::SocketAddr,
    ) {
        let Some(call) = self.call_mut(id) else {
            return;
        };
        let Some(leg) = call.leg else {
            return;
        };
        let was_held = call.on_hold;
        call.on_hold = direction == Direction::Inactive;
        call.rtp_changed = now;
        self.media
            .send(MediaCommand::SetDirection { leg, direction });
        self.media.send(MediaCommand::SetRemote { leg, remote });
        if was_held != (direction == Direction::Inactive) {
            self.call_changed(now, id);
        }
    }

    /// Ends a call from our side: BYE with a Reason (RFC 3326), or 487 if unanswered.
    pub(crate) fn end_call(
        &mut self,
        now: Instant,
        id: &DialogId,
        reason: Option<(&str, &'static str)>,
    ) {
        let Some(call) = self.call(id) else {
            return;
        };
        if call.state == CallState::Ringing {
            let (inv, tx, tag) = (call.invite.clone(), call.invite_tx, id.local_tag.clone());
            self.reply_tagged(
                now,
                tx,
                &inv,
                480,
                "Temporarily Unavailable",
                &[],
                None,
                &tag,
            );
        } else {
            let extra = reason
                .map(|(proto, text)| vec![(HeaderName::REASON, format!("{proto};text=\"{text}\""))])
                .unwrap_or_default();
            self.send_in_dialog(now, id, sip::Method::Bye, extra);
        }
        let cause = reason.map_or("ended by the focus", |(_, text)| text);
        self.drop_call(now, id, crate::metrics::EndCause::Ours(cause));
    }

    /// Sends a request inside a call's dialog (RFC 3261 §12.2.1.1).
    pub(crate) fn send_in_dialog(
        &mut self,
        now: Instant,
        id: &DialogId,
        method: Method,
        extra: Vec<(HeaderName, String)>,
    ) {
        self.send_in_dialog_with(now, id, method, extra, None);
    }

    /// [`Focus::send_in_dialog`] with a body (content type, bytes).
    pub(crate) fn send_in_dialog_with(
        &mut self,
        now: Instant,
        id: &DialogId,
        method: Method,
        extra: Vec<(HeaderName, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) {
        let branch = self.new_branch();
        let Some(call) = self.call_mut(id) else {
            return;
        };
        let req = call.dialog.request(method, &branch);
        // Sent to where the caller's requests come from (it is reachable
        // there even behind NAT), which for direct calls is the Contact.
        let peer = call.dialog.peer;
        self.send_built(now, req, peer, extra, body);
    }

    /// Adds `extra`, User-Agent and the body to a request a dialog built,
    /// and sends it to `peer`.
    pub(crate) fn send_built(
        &mut self,
        now: Instant,
        mut req: Request,
        peer: Peer,
        extra: Vec<(HeaderName, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) {
        for (n, v) in extra {
            req.headers.push(n, v);
        }
        self.config
            .identify(&mut req.headers, HeaderName::USER_AGENT);
        if let Some((ctype, bytes)) = body {
            req.headers.push(HeaderName::CONTENT_TYPE, ctype);
            req.body = bytes.into();
        }
        let method = req.method.clone();
        if let Err(e) = self.send_request(now, req, peer) {
            tracing::debug!(error = %e, "could not send {method}");
        }
    }

    /// Once a second: session timers and RTP timeouts.
    pub(crate) fn check_calls(&mut self, now: Instant) {
        let ids: Vec<DialogId> = self.call_rooms.keys().cloned().collect();
        for id in ids {
            let Some(call) = self.call_mut(&id) else {
                continue;
            };
            if let Some(t) = call.timer {
                if t.due <= now && call.state != CallState::Ringing {
                    if t.we_refresh {
                        if let Some(t) = call.timer.as_mut() {
                            t.due = timer_due(now, t.interval, true);
                        }
                        let se = (
                            HeaderName::SESSION_EXPIRES,
                            format!("{};refresher=uas", t.interval),
                        );
                        self.send_in_dialog(now, &id, Method::Update, vec![se]);
                    } else {
                        tracing::info!(call_id = %id.call_id, "session expired without refresh");
                        self.end_call(now, &id, Some(("SIP;cause=408", "session timer expired")));
                    }
                    continue;
                }
            }
            let Some(call) = self.call(&id) else {
                continue;
            };
            // The counters come from the media side (MediaInput::RtpActivity).
            if call.leg.is_some()
                && !call.on_hold
                && call.state == CallState::Confirmed
                && now.duration_since(call.rtp_changed) >= self.config.rtp_timeout
            {
                tracing::info!(call_id = %id.call_id, "no RTP: ending the call");
                self.end_call(now, &id, Some(("SIP;cause=408", "RTP timeout")));
            }
        }
        self.arm_check(now);
    }

    /// DTMF caller controls: `*6` toggles self-mute, `*4`/`*7` lower/raise
    /// what the caller hears by 3 dB, `*1` beeps the room size (up to 8).
    pub(crate) fn dtmf(&mut self, now: Instant, id: &DialogId, digit: char) {
        if self.call(id).is_some_and(|c| c.control.pin.is_some()) {
            self.pin_digit(now, id, digit);
            return;
        }
        if !self.config.dtmf_controls {
            return;
        }
        let Some(call) = self.call_mut(id) else {
            return;
        };
        let Some(leg) = call.leg else { return };
        if digit == '*' {
            call.dtmf_star = true;
            return;
        }
        if !std::mem::take(&mut call.dtmf_star) {
            return;
        }
        match digit {
            '6' => {
                call.self_muted = !call.self_muted;
                tracing::info!(call_id = %id.call_id, muted = call.self_muted, "self-mute by DTMF");
                self.apply_media(id);
                self.call_changed(now, id);
            }
            '5' => self.toggle_floor(now, id),
            '9' => self.toggle_hand(now, id),
            '1' => {
                let room = call.room.clone();
                let size = self.room_size(&room);
                let pattern = media_server::mixer::TonePattern::count(size);
                self.media.send(MediaCommand::Tone { leg, pattern });
            }
            '4' | '7' => {
                call.volume_db =
                    (call.volume_db + if digit == '7' { 3.0 } else { -3.0 }).clamp(-24.0, 12.0);
                self.apply_media(id);
            }
            _ => {}
        }
    }
}

/// A new offer in a call keeps its media security: an SRTP call's offer
/// must carry the same remote key (answered with our same key), a plain
/// call's must stay plain. Rekeying mid-call is not supported.
fn keep_keys(
    offer: &sdp::Session,
    n: &mut sdp::Negotiated,
    keys: Option<&(sdp::Crypto, sdp::Crypto)>,
) -> Result<(), &'static str> {
    match (keys, n.secure) {
        (None, false) => Ok(()),
        (Some((local, remote)), true) => {
            let same = offer.media[n.m_index]
                .crypto
                .iter()
                .find(|c| c.suite == remote.suite && c.key_salt == remote.key_salt)
                .ok_or("changing SRTP keys mid-call is not supported")?;
            n.crypto = Some(same.clone());
            n.local_crypto = Some(sdp::Crypto {
                tag: same.tag,
                ..local.clone()
            });
            Ok(())
        }
        _ => Err("a call's media cannot switch between RTP and SRTP"),
    }
}
