//! The answer to a request the focus does not route yet, decided from the
//! request alone (RFC 3261 §8.2 order: method, Max-Forwards, Require).

use sip::{HeaderName, Method, Request};

use crate::config::FocusConfig;

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) reason: String,
    /// Extra headers for this answer.
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl Answer {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
    fn with(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Methods the focus recognises but does not accept at a room or server URI.
fn known_not_allowed(m: &Method) -> bool {
    matches!(
        m,
        Method::Register
            | Method::Publish
            | Method::Notify
            | Method::Info
            | Method::Prack
            | Method::Update
    )
}

pub(crate) fn answer(config: &FocusConfig, req: &Request) -> Answer {
    let allow = config.allow.join(", ");
    if let Method::Extension(name) = &req.method {
        return Answer::new(501, format!("Method {name} Not Implemented"))
            .with(HeaderName::ALLOW, allow);
    }
    if known_not_allowed(&req.method) {
        return Answer::new(405, "Method Not Allowed").with(HeaderName::ALLOW, allow);
    }
    if req.headers.max_forwards() == Some(0) && req.method != Method::Options {
        // §16.3 lets an OPTIONS with Max-Forwards 0 be answered by its final
        // recipient; anything else has run out of hops.
        return Answer::new(483, "Too Many Hops");
    }
    let unsupported: Vec<&str> = req
        .headers
        .values(&HeaderName::REQUIRE)
        .filter(|tag| !config.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if !unsupported.is_empty() && req.method != Method::Cancel {
        return Answer::new(420, "Bad Extension")
            .with(HeaderName::UNSUPPORTED, unsupported.join(", "));
    }
    match req.method {
        Method::Options => Answer::new(200, "OK")
            .with(HeaderName::ALLOW, allow)
            .with(HeaderName::ACCEPT, config.accept.join(", "))
            .with(HeaderName::SUPPORTED, config.supported.join(", "))
            .with(HeaderName::ALLOW_EVENTS, "conference"),
        Method::Invite => Answer::new(480, "Temporarily Unavailable: rooms are not open yet"),
        // Routed to the event package and to the room's IM when the checks above pass.
        Method::Subscribe | Method::Message | Method::Refer => {
            Answer::new(480, "Temporarily Unavailable")
        }
        Method::Bye => Answer::new(481, "Call Does Not Exist"),
        Method::Cancel => Answer::new(481, "Transaction Does Not Exist"),
        _ => Answer::new(501, "Not Implemented").with(HeaderName::ALLOW, allow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::{parse_message, Message, ParseLimits};

    fn req(method: &str, extra: &str) -> Request {
        let t = format!(
            "{method} sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:room@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}\r\n"
        );
        let Ok(Message::Request(r)) = parse_message(t.as_bytes(), &ParseLimits::default()) else {
            panic!()
        };
        r
    }

    #[test]
    fn decisions() {
        let c = FocusConfig::default();
        assert_eq!(answer(&c, &req("OPTIONS", "")).status, 200);
        assert_eq!(
            answer(&c, &req("OPTIONS", "Max-Forwards: 0\r\n")).status,
            200
        );
        assert_eq!(
            answer(&c, &req("INVITE", "Max-Forwards: 0\r\n")).status,
            483
        );
        assert_eq!(answer(&c, &req("FOO", "")).status, 501);
        assert_eq!(answer(&c, &req("REGISTER", "")).status, 405);
        assert_eq!(
            answer(&c, &req("MESSAGE", "")).status,
            480,
            "routed, not refused"
        );
        let a = answer(&c, &req("OPTIONS", "Require: nothing, 100rel\r\n"));
        assert_eq!(a.status, 420);
        assert_eq!(
            a.headers[0],
            (HeaderName::UNSUPPORTED, "nothing, 100rel".into())
        );
        assert_eq!(answer(&c, &req("INVITE", "")).status, 480);
        assert_eq!(
            answer(&c, &req("SUBSCRIBE", "Event: conference\r\n")).status,
            480
        );
    }
}
