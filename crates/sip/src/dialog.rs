//! Dialogs (RFC 3261 §12): what two user agents share once a request has
//! created one (ids and tags, the parties, CSeq in each direction, the
//! remote target and the route set), built as UAS from the request
//! (§12.1.1) or as UAC from our request and its 2xx (§12.1.2). A dialog
//! builds the requests sent inside it (§12.2.1.1) and checks those that
//! arrive (§12.2.2). Sans-IO: where a request goes is the `peer` it names.

use crate::header::HeaderName;
use crate::transaction::Peer;
use crate::{Method, Request, Response, Uri};

/// A dialog's id, from our side: Call-ID, our tag, the remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (To of requests we receive, From of those we send).
    pub local_tag: String,
    /// The remote party's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a request inside one belongs to, as its UAS sees it;
    /// None when the request carries no To tag (it is outside any dialog).
    pub fn of_request(req: &Request) -> Option<Self> {
        Some(Self {
            call_id: req.headers.call_id()?.to_owned(),
            local_tag: req.headers.to()?.tag()?.to_owned(),
            remote_tag: req
                .headers
                .from()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
        })
    }
}

/// Why a request inside a dialog is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A CSeq lower than the last one seen (§12.2.2): answer 500.
    #[error("CSeq {got} is lower than the last one, {last}")]
    OutOfOrder {
        /// The last remote CSeq.
        last: u32,
        /// The request's.
        got: u32,
    },
}

/// One dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Its id.
    pub id: DialogId,
    /// Our name-addr with our tag: From of what we send.
    pub local_party: String,
    /// The remote name-addr with its tag: To of what we send.
    pub remote_party: String,
    /// Where requests inside it are addressed: the remote Contact.
    pub remote_target: Uri,
    /// Route headers for requests inside it, in the order they are sent.
    pub route_set: Vec<String>,
    /// Where requests inside it are sent: the next hop, with its transport.
    pub peer: Peer,
    /// Our host:port for Via.
    pub local_host: String,
    /// Our Contact header value.
    pub contact: String,
    local_cseq: u32,
    remote_cseq: Option<u32>,
}

/// What a new dialog is made from besides the messages: where its
/// requests go and how we name ourselves in them.
#[derive(Debug, Clone)]
pub struct Local {
    /// Where requests inside it are sent (for a UAS, where the creating
    /// request came from: the remote is reachable there even behind NAT).
    pub peer: Peer,
    /// Our host:port for Via.
    pub host: String,
    /// Our Contact header value.
    pub contact: String,
}

/// The Contact URI of a message, if it has one.
fn contact_uri(headers: &crate::Headers) -> Option<Uri> {
    headers
        .contacts()
        .first()
        .and_then(|c| c.addr())
        .map(|a| a.uri.clone())
}

impl Dialog {
    /// As UAS: the dialog that `req` creates when we answer it with a 2xx
    /// (or 1xx) tagged `local_tag` (§12.1.1). The route set is its
    /// Record-Route as it came; without a Contact, the Request-URI stands
    /// in for the remote target. None when it lacks Call-ID or From.
    pub fn uas(req: &Request, local_tag: &str, local: Local) -> Option<Self> {
        let from = req.headers.get(&HeaderName::FROM)?;
        let to = req.headers.get(&HeaderName::TO).unwrap_or_default();
        Some(Self {
            id: DialogId {
                call_id: req.headers.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: req
                    .headers
                    .from()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default(),
            },
            local_party: format!("{to};tag={local_tag}"),
            remote_party: from.to_owned(),
            remote_target: contact_uri(&req.headers).unwrap_or_else(|| req.uri.clone()),
            route_set: req
                .headers
                .get_all(&HeaderName::RECORD_ROUTE)
                .map(str::to_owned)
                .collect(),
            peer: local.peer,
            local_host: local.host,
            contact: local.contact,
            local_cseq: 0,
            remote_cseq: req.headers.cseq().map(|c| c.seq),
        })
    }

    /// As UAC: the dialog that the 2xx `resp` to our `req` creates
    /// (§12.1.2): the route set is its Record-Route in reverse, the remote
    /// target its Contact (else our Request-URI), and our CSeq goes on
    /// from the request's. None when the response lacks a To tag.
    pub fn uac(req: &Request, resp: &Response, local: Local) -> Option<Self> {
        let to_tag = resp.headers.to()?.tag()?.to_owned();
        let mut route_set: Vec<String> = resp
            .headers
            .get_all(&HeaderName::RECORD_ROUTE)
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        Some(Self {
            id: DialogId {
                call_id: req.headers.call_id()?.to_owned(),
                local_tag: req.headers.from()?.tag()?.to_owned(),
                remote_tag: to_tag,
            },
            local_party: req.headers.get(&HeaderName::FROM)?.to_owned(),
            remote_party: resp.headers.get(&HeaderName::TO)?.to_owned(),
            remote_target: contact_uri(&resp.headers).unwrap_or_else(|| req.uri.clone()),
            route_set,
            peer: local.peer,
            local_host: local.host,
            contact: local.contact,
            local_cseq: req.headers.cseq().map(|c| c.seq).unwrap_or(1),
            remote_cseq: None,
        })
    }

    /// Checks a request that arrived inside the dialog (§12.2.2): its CSeq
    /// must not go back (ACK and CANCEL carry the INVITE's and are not
    /// checked); a target refresh (re-INVITE, UPDATE, SUBSCRIBE, NOTIFY:
    /// RFC 3311, RFC 6665 §4.1.2.4) with a Contact moves the remote target.
    pub fn handle_request(&mut self, req: &Request) -> Result<(), DialogError> {
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let got = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if let Some(last) = self.remote_cseq.filter(|last| got < *last) {
            return Err(DialogError::OutOfOrder { last, got });
        }
        self.remote_cseq = Some(got);
        let refreshes = matches!(
            req.method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify
        );
        if let Some(uri) = contact_uri(&req.headers).filter(|_| refreshes) {
            self.remote_target = uri;
        }
        Ok(())
    }

    /// A request inside the dialog (§12.2.1.1): Request-URI the remote
    /// target, Via (with `branch`), Max-Forwards, From, To, Call-ID, the
    /// next CSeq (an ACK takes the INVITE's), Route and Contact.
    pub fn request(&mut self, method: Method, branch: &str) -> Request {
        if method != Method::Ack {
            self.local_cseq += 1;
        }
        let mut req = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut req.headers;
        h.push(
            HeaderName::VIA,
            format!(
                "SIP/2.0/{} {};branch={branch};rport",
                self.peer.transport.via_token(),
                self.local_host
            ),
        );
        h.push(HeaderName::MAX_FORWARDS, "70");
        h.push(HeaderName::FROM, self.local_party.clone());
        h.push(HeaderName::TO, self.remote_party.clone());
        h.push(HeaderName::CALL_ID, self.id.call_id.clone());
        h.push(HeaderName::CSEQ, format!("{} {method}", self.local_cseq));
        for r in &self.route_set {
            h.push(HeaderName::ROUTE, r.clone());
        }
        if method != Method::Ack {
            h.push(HeaderName::CONTACT, self.contact.clone());
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::TransportKind;
    use crate::{parse_message, Message, ParseLimits};

    fn parse(text: &str) -> Message {
        parse_message(text.as_bytes(), &ParseLimits::default()).unwrap()
    }

    fn local(port: u16, user: &str) -> Local {
        Local {
            peer: Peer {
                transport: TransportKind::Udp,
                addr: ([127, 0, 0, 1], port).into(),
            },
            host: format!("127.0.0.1:{port}"),
            contact: format!("<sip:{user}@127.0.0.1:{port}>"),
        }
    }

    /// An INVITE from alice (5080) through a proxy (5060) that records its
    /// route, and the focus's 200 for it.
    fn invite_and_ok() -> (Request, Response) {
        let Message::Request(invite) = parse(
            "INVITE sip:room@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKa\r\nRecord-Route: <sip:127.0.0.1:5060;lr>\r\n\
             Record-Route: <sip:10.0.0.9;lr>\r\nMax-Forwards: 69\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:room@example.com>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@127.0.0.1:5080>\r\n\
             Content-Length: 0\r\n\r\n",
        ) else {
            unreachable!()
        };
        let mut ok = Response::to_request(&invite, 200, "OK", Some("f1"));
        for rr in invite.headers.get_all(&HeaderName::RECORD_ROUTE) {
            ok.headers.push(HeaderName::RECORD_ROUTE, rr);
        }
        ok.headers
            .push(HeaderName::CONTACT, "<sip:room@127.0.0.1:5062>;isfocus");
        (invite, ok)
    }

    #[test]
    fn both_ends_of_one_dialog_agree() {
        let (invite, ok) = invite_and_ok();
        let mut uas = Dialog::uas(&invite, "f1", local(5060, "room")).unwrap();
        let mut uac = Dialog::uac(&invite, &ok, local(5060, "alice")).unwrap();
        assert_eq!(
            uas.route_set,
            ["<sip:127.0.0.1:5060;lr>", "<sip:10.0.0.9;lr>"]
        );
        assert_eq!(
            uac.route_set,
            ["<sip:10.0.0.9;lr>", "<sip:127.0.0.1:5060;lr>"]
        );
        assert_eq!(uas.remote_target.to_string(), "sip:alice@127.0.0.1:5080");
        assert_eq!(uac.remote_target.to_string(), "sip:room@127.0.0.1:5062");
        // What one sends, the other takes as its own dialog's.
        let bye = uas.request(Method::Bye, "z9hG4bKb1");
        let seen = DialogId::of_request(&bye).unwrap();
        assert_eq!(seen.call_id, uac.id.call_id);
        assert_eq!(
            (seen.local_tag.as_str(), seen.remote_tag.as_str()),
            ("a1", "f1")
        );
        assert_eq!(uac.handle_request(&bye), Ok(()));
        assert_eq!(bye.headers.cseq().unwrap().seq, 1);
        assert_eq!(
            bye.headers.get_all(&HeaderName::ROUTE).collect::<Vec<_>>(),
            ["<sip:127.0.0.1:5060;lr>", "<sip:10.0.0.9;lr>"]
        );
        // The UAC's CSeq goes on from its INVITE's; its ACK keeps it.
        let ack = uac.request(Method::Ack, "z9hG4bKk");
        assert_eq!(ack.headers.cseq().unwrap().seq, 7);
        assert!(ack.headers.get(&HeaderName::CONTACT).is_none());
        let reinvite = uac.request(Method::Invite, "z9hG4bKr");
        assert_eq!(reinvite.headers.cseq().unwrap().seq, 8);
        assert_eq!(uas.handle_request(&ack), Ok(()));
        assert_eq!(uas.handle_request(&reinvite), Ok(()));
    }

    #[test]
    fn a_cseq_going_back_is_refused_and_a_refresh_moves_the_target() {
        let (invite, _) = invite_and_ok();
        let mut uas = Dialog::uas(&invite, "f1", local(5060, "room")).unwrap();
        let mut update = invite.clone();
        update.method = Method::Update;
        update.headers = crate::Headers::default();
        for h in invite.headers.iter() {
            match h.name.as_str() {
                "CSeq" => update.headers.push(HeaderName::CSEQ, "8 UPDATE"),
                "Contact" => update
                    .headers
                    .push(HeaderName::CONTACT, "<sip:alice@192.0.2.7:5090>"),
                _ => update.headers.push(h.name.clone(), h.value.clone()),
            }
        }
        assert_eq!(uas.handle_request(&update), Ok(()));
        assert_eq!(uas.remote_target.to_string(), "sip:alice@192.0.2.7:5090");
        assert_eq!(
            uas.handle_request(&invite),
            Err(DialogError::OutOfOrder { last: 8, got: 7 })
        );
    }
}
