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
use crate::dialout::DialTarget;
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

impl Focus {
    /// A REFER for a room, in a participant's call or to the room URI.
    pub(crate) fn on_refer(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        dialog: Option<&DialogId>,
        source: Peer,
    ) {
        let Requester {
            tag,
            room,
            aor: referrer_aor,
            call,
        } = self.requester(req, dialog);
        let Some(referrer_call) = call else {
            self.reply_tagged(
                now,
                tx,
                req,
                403,
                "Forbidden: only participants may refer",
                &[],
                None,
                &tag,
            );
            return;
        };
        let Some(refer_to) = req.headers.refer_to() else {
            self.reply_tagged(
                now,
                tx,
                req,
                400,
                "Bad Request: missing or malformed Refer-To",
                &[],
                None,
                &tag,
            );
            return;
        };
        let mut target = refer_to.uri.clone();
        let method = target.params.value("method").map(str::to_ascii_uppercase);
        let removing = method.as_deref() == Some("BYE");
        if let Some(why) = self.refer_refusal(&room, &referrer_call, removing) {
            self.reply_tagged(now, tx, req, 403, why, &[], None, &tag);
            return;
        }
        target.params.remove("method");
        target.headers.clear();
        let local_host = self.local_host(req);
        let referrer = match dialog {
            Some(d) => Referrer::Call(d.clone()),
            None => {
                // A REFER outside a dialog makes one: the implicit
                // subscription's, for the sipfrag NOTIFYs (RFC 3515 §2.4.1).
                let local = sip::dialog::Local {
                    peer: source,
                    host: local_host.clone(),
                    contact: format!("<sip:{room}@{local_host}>;isfocus"),
                };
                match sip::dialog::Dialog::uas(req, &tag, local) {
                    Some(own) => {
                        let id = own.id.clone();
                        self.refer_dialogs.insert(id.clone(), own);
                        Referrer::Own(id)
                    }
                    None => Referrer::Api,
                }
            }
        };
        if method.as_deref() == Some("BYE") {
            let who = aor(&format!("<{target}>"));
            let victim = self
                .room_calls(&room)
                .find(|(_, c)| aor(&c.dialog.remote_party) == who)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                self.reply_tagged(
                    now,
                    tx,
                    req,
                    404,
                    &format!("Not Found: {who} is not in the room"),
                    &[],
                    None,
                    &tag,
                );
                return;
            };
            self.reply_tagged(now, tx, req, 202, "Accepted", &[], None, &tag);
            self.end_call(
                now,
                &victim,
                Some(("SIP;cause=200", "removed by a participant")),
            );
            self.sipfrag(now, &referrer, "SIP/2.0 200 OK", true);
            return;
        }
        if method.as_deref().is_some_and(|m| m != "INVITE") {
            self.reply_tagged(
                now,
                tx,
                req,
                501,
                "Not Implemented: Refer-To method",
                &[],
                None,
                &tag,
            );
            return;
        }
        self.reply_tagged(now, tx, req, 202, "Accepted", &[], None, &tag);
        self.sipfrag(now, &referrer, "SIP/2.0 100 Trying", false);
        let referred_by = req
            .headers
            .referred_by()
            .map(|r| r.uri.to_string())
            .or(Some(referrer_aor));
        if let Some(sip::Host::Name(host)) = &target.host {
            // The core does no DNS: the io edge looks the name up first.
            let (host, port) = (host.clone(), target.port.unwrap_or(5060));
            let dial = PendingDial {
                room,
                target,
                referred_by,
                referrer: referrer.clone(),
                local_host,
                api_reply: None,
            };
            if self.resolve_then_dial(host, port, dial).is_err() {
                self.sipfrag(now, &referrer, "SIP/2.0 503 Service Unavailable", true);
            }
            return;
        }
        if let Err(status) = self.dial_out(
            now,
            &room,
            DialTarget {
                uri: target,
                resolved: None,
            },
            referred_by,
            referrer.clone(),
            &local_host,
        ) {
            self.sipfrag(now, &referrer, status, true);
        }
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
