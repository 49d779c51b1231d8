//! Building requests inside a dialog (RFC 3261 §12.2.1.1), for calls,
//! subscriptions and referrals alike.

use sip::transaction::TransportKind;
use sip::{HeaderName, Method, Request};

/// What a request inside a dialog is built from.
pub(crate) struct DialogParts<'a> {
    pub(crate) target: &'a sip::Uri,
    pub(crate) transport: TransportKind,
    pub(crate) local_host: &'a str,
    pub(crate) local_party: &'a str,
    pub(crate) remote_party: &'a str,
    pub(crate) call_id: &'a str,
    pub(crate) route_set: &'a [String],
    /// The room, for our `isfocus` Contact.
    pub(crate) room: &'a str,
}

/// Request-URI, Via, Max-Forwards, From, To, Call-ID, CSeq, Route and Contact.
pub(crate) fn in_dialog_request(
    d: &DialogParts<'_>,
    method: Method,
    cseq: u32,
    branch: &str,
) -> Request {
    let mut req = Request::new(method.clone(), d.target.clone());
    let h = &mut req.headers;
    h.push(
        HeaderName::VIA,
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            d.transport.via_token(),
            d.local_host
        ),
    );
    h.push(HeaderName::MAX_FORWARDS, "70");
    h.push(HeaderName::FROM, d.local_party);
    h.push(HeaderName::TO, d.remote_party);
    h.push(HeaderName::CALL_ID, d.call_id);
    h.push(HeaderName::CSEQ, format!("{cseq} {method}"));
    for r in d.route_set {
        h.push(HeaderName::ROUTE, r.clone());
    }
    h.push(
        HeaderName::CONTACT,
        format!("<sip:{}@{}>;isfocus", d.room, d.local_host),
    );
    req
}
