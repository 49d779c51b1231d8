//! Instant messages in a room (RFC 3428): a participant's MESSAGE to the
//! room URI, or inside its call, is relayed to every other participant's
//! Contact, from the sender's address. Others get 403.

use std::time::Instant;

use sip::transaction::TxId;
use sip::{HeaderName, Method, Request};

use crate::call::DialogId;
use crate::core::Focus;

/// Who sent a request for a room, and from where.
pub(crate) struct Requester {
    /// The To tag to answer with (the dialog's, or a new one).
    pub(crate) tag: String,
    /// The room the request is for.
    pub(crate) room: String,
    /// The sender's AOR.
    pub(crate) aor: String,
    /// The sender's call in that room; None when it is not a participant.
    pub(crate) call: Option<DialogId>,
}

impl Focus {
    /// The room of a request (its call's, or the Request-URI's) and the
    /// sender's call in it, found by the AOR of From.
    pub(crate) fn requester(
        &mut self,
        req: &Request,
        dialog: Option<&DialogId>,
        who: Option<&crate::auth::Identity>,
    ) -> Requester {
        let tag = dialog
            .map(|d| d.local_tag.clone())
            .unwrap_or_else(|| self.new_tag());
        let in_call = dialog.and_then(|d| self.call(d));
        let room = match in_call {
            Some(c) => c.room.clone(),
            None => req.uri.user.clone().unwrap_or_default(),
        };
        // Inside a call, the call says who it is; outside, the gate did.
        let aor_from = match (in_call, who) {
            (Some(c), _) => c.aor(),
            (None, Some(w)) => w.aor.clone(),
            (None, None) => crate::auth::Identity::from_header(req).aor,
        };
        let call = self
            .room_calls(&room)
            .find(|(_, c)| c.aor() == aor_from)
            .map(|(k, _)| k.clone());
        Requester {
            tag,
            room,
            aor: aor_from,
            call,
        }
    }

    /// A MESSAGE for a room; `dialog` is set when it came inside a call.
    pub(crate) fn on_message(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        dialog: Option<&DialogId>,
        who: Option<&crate::auth::Identity>,
    ) {
        let Requester {
            tag,
            room,
            aor: sender,
            call,
        } = self.requester(req, dialog, who);
        let Some(sender_call) = call else {
            self.reply_tagged(
                now,
                tx,
                req,
                403,
                "Forbidden: only participants may message the room",
                &[],
                None,
                &tag,
            );
            return;
        };
        if let Some(why) = self.message_refusal(&sender_call) {
            self.reply_tagged(now, tx, req, 403, why, &[], None, &tag);
            return;
        }
        let ctype = req
            .headers
            .content_type()
            .unwrap_or_else(|| "text/plain".into());
        if !ctype.starts_with("text/") && ctype != "message/cpim" {
            let h = vec![(HeaderName::ACCEPT, "text/plain, message/cpim".to_string())];
            self.reply_tagged(now, tx, req, 415, "Unsupported Media Type", &h, None, &tag);
            return;
        }
        // 202: accepted for the room, not a proof of delivery to each member (RFC 3428 §7).
        self.reply_tagged(now, tx, req, 202, "Accepted", &[], None, &tag);
        let from_value = req.headers.get(&HeaderName::FROM).unwrap_or_default();
        let display_from = match sip::header::NameAddr::parse(from_value) {
            Ok(mut na) => {
                na.params.remove("tag");
                na.to_string()
            }
            Err(_) => format!("<{sender}>"),
        };
        let targets: Vec<DialogId> = self
            .room_calls(&room)
            .filter(|(k, _)| **k != sender_call)
            .map(|(k, _)| k.clone())
            .collect();
        for id in targets {
            let (branch, tag, call_id) = (
                self.new_branch(),
                self.new_tag(),
                format!("{:016x}@confab", rand::Rng::random::<u64>(&mut self.rng)),
            );
            let Some(c) = self.call(&id) else {
                continue;
            };
            let mut m = Request::new(Method::Message, c.dialog.remote_target.clone());
            m.headers.push(
                HeaderName::VIA,
                format!(
                    "SIP/2.0/{} {};branch={branch};rport",
                    c.dialog.peer.transport.via_token(),
                    c.dialog.local_host
                ),
            );
            m.headers.push(HeaderName::MAX_FORWARDS, "70");
            m.headers
                .push(HeaderName::FROM, format!("{display_from};tag={tag}"));
            m.headers
                .push(HeaderName::TO, c.dialog.remote_party.clone());
            m.headers.push(HeaderName::CALL_ID, call_id);
            m.headers.push(HeaderName::CSEQ, "1 MESSAGE");
            m.headers.push(
                HeaderName::CONTENT_TYPE,
                req.headers
                    .get(&HeaderName::CONTENT_TYPE)
                    .unwrap_or("text/plain")
                    .to_owned(),
            );
            m.body = req.body.clone();
            let peer = c.dialog.peer;
            if let Err(e) = self.send_request(now, m, peer) {
                tracing::debug!(error = %e, "could not relay MESSAGE");
            }
        }
    }
}
