//! Requests, responses and their printed form.

use std::fmt;

use bytes::Bytes;

use crate::header::{
    CSeq, Contact, EventHeader, HeaderName, Headers, NameAddr, SessionExpires, SubscriptionState,
    Via,
};
use crate::method::Method;
use crate::uri::Uri;

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Header lines in order (Content-Length is computed when printing).
    pub headers: Headers,
    /// The body (a slice of the received buffer: no copy).
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100 to 699.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header lines in order.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Prints the message to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// Typed views of the headers. They return `None` when the header is absent
/// or does not parse; the parser has already refused messages whose
/// mandatory headers are malformed.
impl Headers {
    /// The topmost Via.
    pub fn top_via(&self) -> Option<Via> {
        self.values(&HeaderName::VIA)
            .next()
            .and_then(|v| Via::parse(v).ok())
    }
    /// All Vias, top first.
    pub fn vias(&self) -> Vec<Via> {
        self.values(&HeaderName::VIA)
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }
    /// From.
    pub fn from(&self) -> Option<NameAddr> {
        self.get(&HeaderName::FROM)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// To.
    pub fn to(&self) -> Option<NameAddr> {
        self.get(&HeaderName::TO)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.get(&HeaderName::CALL_ID).map(str::trim)
    }
    /// CSeq.
    pub fn cseq(&self) -> Option<CSeq> {
        self.get(&HeaderName::CSEQ)
            .and_then(|v| CSeq::parse(v).ok())
    }
    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u8> {
        self.get(&HeaderName::MAX_FORWARDS)
            .and_then(|v| v.trim().parse().ok())
    }
    /// Contact elements.
    pub fn contacts(&self) -> Vec<Contact> {
        self.values(&HeaderName::CONTACT)
            .filter_map(|v| Contact::parse(v).ok())
            .collect()
    }
    /// Route set (Route or Record-Route), in order.
    pub fn routes(&self, name: &HeaderName) -> Vec<NameAddr> {
        self.values(name)
            .filter_map(|v| NameAddr::parse(v).ok())
            .collect()
    }
    /// Expires.
    pub fn expires(&self) -> Option<u32> {
        self.get(&HeaderName::EXPIRES)
            .and_then(|v| v.trim().parse().ok())
    }
    /// Min-Expires.
    pub fn min_expires(&self) -> Option<u32> {
        self.get(&HeaderName::MIN_EXPIRES)
            .and_then(|v| v.trim().parse().ok())
    }
    /// Content-Type, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.get(&HeaderName::CONTENT_TYPE).map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }
    /// Event.
    pub fn event(&self) -> Option<EventHeader> {
        self.get(&HeaderName::EVENT)
            .and_then(|v| EventHeader::parse(v).ok())
    }
    /// Subscription-State.
    pub fn subscription_state(&self) -> Option<SubscriptionState> {
        self.get(&HeaderName::SUBSCRIPTION_STATE)
            .and_then(|v| SubscriptionState::parse(v).ok())
    }
    /// Session-Expires.
    pub fn session_expires(&self) -> Option<SessionExpires> {
        self.get(&HeaderName::SESSION_EXPIRES)
            .and_then(|v| SessionExpires::parse(v).ok())
    }
    /// Min-SE.
    pub fn min_se(&self) -> Option<u32> {
        self.get(&HeaderName::MIN_SE)
            .and_then(|v| SessionExpires::parse(v).ok())
            .map(|s| s.interval)
    }
    /// Refer-To.
    pub fn refer_to(&self) -> Option<NameAddr> {
        self.get(&HeaderName::REFER_TO)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// Referred-By.
    pub fn referred_by(&self) -> Option<NameAddr> {
        self.get(&HeaderName::REFERRED_BY)
            .and_then(|v| NameAddr::parse(v).ok())
    }
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Self {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Prints the request. Content-Length always matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri).into_bytes();
        write_rest(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response to `req` (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq
    /// copied; `to_tag` is added to To when it has none.
    pub fn to_request(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        Self::from_headers(&req.headers, status, reason, to_tag)
    }

    /// Builds a response from the headers of a request, even one that did not
    /// fully parse (so a 400 can still be routed back).
    pub fn from_headers(h: &Headers, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut headers = Headers::new();
        for v in h.get_all(&HeaderName::VIA) {
            headers.push(HeaderName::VIA, v);
        }
        for name in [
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
            HeaderName::CSEQ,
        ] {
            if let Some(v) = h.get(&name) {
                let mut v = v.to_owned();
                if name == HeaderName::TO {
                    if let Some(tag) = to_tag {
                        let has_tag = NameAddr::parse(&v)
                            .map(|t| t.tag().is_some())
                            .unwrap_or(true);
                        if !has_tag && status != 100 {
                            v.push_str(";tag=");
                            v.push_str(tag);
                        }
                    }
                }
                headers.push(name, v);
            }
        }
        Self {
            status,
            reason: reason.to_owned(),
            headers,
            body: Bytes::new(),
        }
    }

    /// Prints the response. Control characters in the reason phrase (which
    /// may quote a parser's message) become spaces, so the status line holds.
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason: String = self
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, reason.trim()).into_bytes();
        write_rest(&mut out, &self.headers, &self.body);
        out
    }

    /// True for 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

fn write_rest(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers
        .iter()
        .filter(|h| h.name != HeaderName::CONTENT_LENGTH)
    {
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrase_cannot_break_the_status_line() {
        let r = Response {
            status: 400,
            reason: "Bad SDP:\r\nline 2\n".into(),
            headers: Headers::new(),
            body: Bytes::new(),
        };
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            text.starts_with("SIP/2.0 400 Bad SDP:  line 2\r\nContent-Length: 0\r\n\r\n"),
            "{text:?}"
        );
    }
}
