//! RFC 4579 call control: REFER to the focus. A `Refer-To` of a third
//! party makes the focus call it into the room (a dial-out), and the
//! referrer is told how it goes with `message/sipfrag` NOTIFYs (RFC 3515),
//! inside its call or in the REFER's own dialog. A `Refer-To` with
//! `method=BYE` removes that participant.

use std::time::Instant;

use sip::transaction::{Peer, TxId};
use sip::{HeaderName, Method, Request};

use crate::call::DialogId;
use crate::conference_doc::aor;
use crate::core::Focus;
use crate::message::Requester;
use crate::resolve::PendingDial;

/// Where the sipfrag NOTIFYs about a referral go.
#[derive(Clone)]
pub(crate) enum Referrer {
    /// Inside the referrer's call (its CSeq space).
    Call(DialogId),
    /// A REFER outside any dialog: the implicit subscription's own dialog
    /// (in `Focus::refer_dialogs` until its last NOTIFY).
    Own(DialogId),
    /// The control API: it watches the room instead of sipfrag NOTIFYs.
    Api,
}

/// What a REFER asks for, once checked.
enum ReferAction {
    /// `method=BYE`: remove this participant's call.
    Remove(DialogId),
    /// Call the target into the room.
    Invite(sip::Uri),
}

/// A REFER refused: the status and reason to answer with.
type Refusal = (u16, String);

impl Focus {
    /// A REFER for a room, in a participant's call or to the room URI:
    /// checked, accepted with 202, then carried out while the referrer
    /// hears how it goes.
    pub(crate) fn on_refer(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        dialog: Option<&DialogId>,
        source: Peer,
        who: Option<&crate::auth::Identity>,
    ) {
        let requester = self.requester(req, dialog, who);
        let tag = requester.tag.clone();
        let action = match self.read_refer(req, &requester) {
            Ok(action) => action,
            Err((status, reason)) => {
                self.reply_tagged(now, tx, req, status, &reason, &[], None, &tag);
                return;
            }
        };
        let local_host = self.local_host(req, source.transport);
        let referrer = self.referrer_of(req, dialog, source, &requester.room, &tag, &local_host);
        self.reply_tagged(now, tx, req, 202, "Accepted", &[], None, &tag);
        match action {
            ReferAction::Remove(victim) => {
                self.end_call(
                    now,
                    &victim,
                    Some(("SIP;cause=200", "removed by a participant")),
                );
                self.sipfrag(now, &referrer, "SIP/2.0 200 OK", true);
            }
            ReferAction::Invite(target) => {
                self.sipfrag(now, &referrer, "SIP/2.0 100 Trying", false);
                let referred_by = req
                    .headers
                    .referred_by()
                    .map(|r| r.uri.to_string())
                    .or(Some(requester.aor));
                self.refer_invite(
                    now,
                    requester.room,
                    target,
                    referred_by,
                    referrer,
                    local_host,
                );
            }
        }
    }

    /// Checks a REFER: from a participant allowed to refer, with a
    /// Refer-To whose method the focus carries out, naming someone in the
    /// room when it removes.
    fn read_refer(&self, req: &Request, requester: &Requester) -> Result<ReferAction, Refusal> {
        let refuse = |status: u16, reason: &str| (status, reason.to_owned());
        let Some(call) = &requester.call else {
            return Err(refuse(403, "Forbidden: only participants may refer"));
        };
        let Some(refer_to) = req.headers.refer_to() else {
            return Err(refuse(400, "Bad Request: missing or malformed Refer-To"));
        };
        let mut target = refer_to.uri.clone();
        let method = target.params.value("method").map(str::to_ascii_uppercase);
        let removing = method.as_deref() == Some("BYE");
        if let Some(why) = self.refer_refusal(&requester.room, call, removing) {
            return Err(refuse(403, why));
        }
        target.params.remove("method");
        target.headers.clear();
        match method.as_deref() {
            None | Some("INVITE") => Ok(ReferAction::Invite(target)),
            Some("BYE") => {
                let who = aor(&format!("<{target}>"));
                self.room_calls(&requester.room)
                    .find(|(_, c)| c.aor() == who)
                    .map(|(k, _)| ReferAction::Remove(k.clone()))
                    .ok_or_else(|| refuse(404, &format!("Not Found: {who} is not in the room")))
            }
            Some(_) => Err(refuse(501, "Not Implemented: Refer-To method")),
        }
    }

    /// Where the sipfrag NOTIFYs go: the referrer's call, or, for a REFER
    /// outside a dialog, the dialog of its implicit subscription (RFC 3515
    /// §2.4.1), made here.
    fn referrer_of(
        &mut self,
        req: &Request,
        dialog: Option<&DialogId>,
        source: Peer,
        room: &str,
        tag: &str,
        local_host: &str,
    ) -> Referrer {
        if let Some(d) = dialog {
            return Referrer::Call(d.clone());
        }
        let sips = req.uri.scheme == sip::Scheme::Sips;
        let local = sip::dialog::Local {
            peer: source,
            host: local_host.to_owned(),
            contact: self.focus_contact(room, local_host, source.transport, sips),
        };
        match sip::dialog::Dialog::uas(req, tag, local) {
            Some(own) => {
                let id = own.id.clone();
                self.refer_dialogs.insert(id.clone(), own);
                Referrer::Own(id)
            }
            None => Referrer::Api,
        }
    }

    /// Calls a referred target into the room, as the dial plan allows.
    fn refer_invite(
        &mut self,
        now: Instant,
        room: String,
        target: sip::Uri,
        referred_by: Option<String>,
        referrer: Referrer,
        local_host: String,
    ) {
        let dial = PendingDial {
            room,
            target,
            referred_by,
            referrer,
            local_host,
            api_reply: None,
        };
        self.start_dial(now, dial);
    }

    /// One RFC 3515 NOTIFY with a message/sipfrag status line.
    pub(crate) fn sipfrag(&mut self, now: Instant, referrer: &Referrer, line: &str, last: bool) {
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            "active;expires=60".to_string()
        };
        let headers = vec![
            (HeaderName::EVENT, "refer".to_string()),
            (HeaderName::SUBSCRIPTION_STATE, state),
        ];
        let body = format!("{line}\r\n").into_bytes();
        match referrer {
            Referrer::Api => {}
            Referrer::Call(id) => self.send_in_dialog_with(
                now,
                id,
                Method::Notify,
                headers,
                Some(("message/sipfrag;version=2.0", body)),
            ),
            Referrer::Own(id) => {
                let branch = self.new_branch();
                let Some(own) = self.refer_dialogs.get_mut(id) else {
                    return;
                };
                let notify = own.request(Method::Notify, &branch);
                let peer = own.peer;
                if last {
                    self.refer_dialogs.remove(id);
                }
                let body = Some(("message/sipfrag;version=2.0", body));
                self.send_built(now, notify, peer, headers, body);
            }
        }
    }
}
