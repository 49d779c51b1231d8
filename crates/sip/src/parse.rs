//! The message parser, in two phases. `split` reads the start line and
//! the header lines and frames the body; `validate` checks the headers a
//! transaction layer and a focus depend on. A failure in the second phase
//! keeps the raw headers, so the 400 can still be routed back.

use bytes::Bytes;

use crate::error::ParseError;
use crate::header::{
    typed::parse_u32_pub as parse_u32, CSeq, Contact, EventHeader, HeaderName, Headers, NameAddr,
    Via,
};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::scan::{is_token, is_ws, truncate};
use crate::uri::{Scheme, Uri};

/// Limits for the parser.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest message accepted, in bytes (default 64 KiB).
    pub max_message: usize,
    /// Most header lines accepted.
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_message: 64 * 1024,
            max_headers: 256,
        }
    }
}

/// A message that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// What is wrong, and the status to answer with.
    pub error: ParseError,
    /// Whether the start line looked like a request (`None` if unreadable).
    /// Only requests are answered; a bad response is dropped.
    pub is_request: Option<bool>,
    /// The header lines that could be read, to build the answer from.
    pub headers: Headers,
}

impl ParseFailure {
    fn new(error: ParseError, is_request: Option<bool>, headers: Headers) -> Self {
        Self {
            error,
            is_request,
            headers,
        }
    }

    /// True when an answer can be sent: a request with a Via line. Whatever
    /// of From, To, Call-ID and CSeq exists is copied into it; when the Via
    /// itself is unreadable the transport answers the packet's source.
    pub fn answerable(&self) -> bool {
        self.is_request == Some(true) && self.headers.get(&HeaderName::VIA).is_some()
    }

    /// The response to send back, if the failure is answerable.
    pub fn response(&self) -> Option<Response> {
        if !self.answerable() {
            return None;
        }
        let mut r =
            Response::from_headers(&self.headers, self.error.status, &self.error.reason, None);
        if self.error.status == 505 {
            r.headers
                .push(HeaderName::new("Supported-Version"), "SIP/2.0");
        }
        Some(r)
    }
}

enum StartLine {
    Request(Method, Result<Uri, ParseError>),
    Response(u16, String),
}

/// Parses one message from a datagram (or a frame cut by [`crate::StreamFramer`]).
/// Octets beyond Content-Length are ignored (RFC 4475 §3.1.1.8); a
/// Content-Length beyond the datagram is an error (§3.1.2.2).
pub fn parse_message(buf: &[u8], limits: &ParseLimits) -> Result<Message, ParseFailure> {
    parse_bytes(Bytes::copy_from_slice(buf), limits)
}

/// Like [`parse_message`] but takes ownership, so the body is a slice of `buf`.
pub fn parse_bytes(buf: Bytes, limits: &ParseLimits) -> Result<Message, ParseFailure> {
    let (head_end, body_start) = find_head_end(&buf).ok_or_else(|| {
        ParseFailure::new(
            ParseError::bad("no empty line after the headers"),
            None,
            Headers::new(),
        )
    })?;
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| {
        ParseFailure::new(
            ParseError::bad("header block is not UTF-8"),
            None,
            Headers::new(),
        )
    })?;
    let head = head.trim_start_matches(['\r', '\n']);
    let mut lines = unfold(head);
    if lines.is_empty() {
        return Err(ParseFailure::new(
            ParseError::bad("empty message"),
            None,
            Headers::new(),
        ));
    }
    let start = lines.remove(0);
    let looks_request = !start.starts_with("SIP/");
    let mut headers = Headers::new();
    let mut header_err = None;
    if lines.len() > limits.max_headers {
        header_err = Some(ParseError::with_status(
            513,
            format!("more than {} header lines", limits.max_headers),
        ));
    }
    for line in lines.iter().take(limits.max_headers) {
        match split_header(line) {
            Ok((n, v)) => headers.push(HeaderName::new(n), v),
            Err(e) => {
                header_err.get_or_insert(e);
            }
        }
    }
    let fail = |e: ParseError, headers: &Headers| {
        ParseFailure::new(e, Some(looks_request), headers.clone())
    };
    if buf.len() > limits.max_message {
        return Err(fail(
            ParseError::with_status(
                513,
                format!(
                    "message of {} bytes exceeds the {} byte limit",
                    buf.len(),
                    limits.max_message
                ),
            ),
            &headers,
        ));
    }
    let start = parse_start_line(&start).map_err(|e| fail(e, &headers))?;
    if let Some(e) = header_err {
        return Err(fail(e, &headers));
    }
    let available = buf.len() - body_start;
    let body_len = match headers.count(&HeaderName::CONTENT_LENGTH) {
        0 => available,
        1 => {
            let v = headers.get(&HeaderName::CONTENT_LENGTH).unwrap_or_default();
            let n = parse_u32(v, "Content-Length").map_err(|e| fail(e, &headers))? as usize;
            if n > available {
                return Err(fail(
                    ParseError::bad(format!(
                        "Content-Length {n} is larger than the {available} bytes of body received"
                    )),
                    &headers,
                ));
            }
            n
        }
        _ => {
            return Err(fail(
                ParseError::bad("multiple Content-Length headers"),
                &headers,
            ))
        }
    };
    let body = buf.slice(body_start..body_start + body_len);
    match start {
        StartLine::Request(method, uri) => {
            let uri = uri.map_err(|e| fail(e, &headers))?;
            validate_request(&method, &uri, &headers).map_err(|e| fail(e, &headers))?;
            Ok(Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }))
        }
        StartLine::Response(status, reason) => {
            validate_common(&headers).map_err(|e| fail(e, &headers))?;
            Ok(Message::Response(Response {
                status,
                reason,
                headers,
                body,
            }))
        }
    }
}

/// Finds the end of the header block: the index where the empty line
/// starts and the index where the body starts. Bare LF is tolerated.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    // Leading CRLFs (keep-alives) are skipped by the caller's trim; look for
    // the first "\n\r\n" or "\n\n" after some content.
    while i < buf.len() {
        if buf[i] == b'\n' && i > 0 {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Splits the header block into logical lines, joining folded lines
/// (RFC 3261 §7.3.1) with a single space.
fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with(is_ws) && !out.is_empty() {
            let last = out.last_mut().expect("checked non-empty");
            last.push(' ');
            last.push_str(line.trim_start_matches(is_ws));
        } else if !line.is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

fn split_header(line: &str) -> Result<(&str, &str), ParseError> {
    let colon = line
        .find(':')
        .ok_or_else(|| ParseError::bad(format!("header line {:?} has no colon", truncate(line))))?;
    let name = line[..colon].trim_end_matches(is_ws);
    if !is_token(name) {
        return Err(ParseError::bad(format!(
            "bad header name {:?}",
            truncate(name)
        )));
    }
    Ok((name, line[colon + 1..].trim_matches(is_ws)))
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if version != "2.0" {
            return Err(ParseError::with_status(
                505,
                format!("SIP version {version} is not supported"),
            ));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::bad(format!(
                "bad status code {:?}",
                truncate(code)
            )));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| ParseError::bad("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::bad(format!(
                "status code {status} out of range"
            )));
        }
        return Ok(StartLine::Response(status, reason.to_owned()));
    }
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ParseError::bad(
            "Request-Line is not 'METHOD SP Request-URI SP SIP-Version'",
        ));
    }
    let method = Method::parse(parts[0])?;
    let version = parts[2];
    match version.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => {
            if &version[4..] != "2.0" {
                return Err(ParseError::with_status(
                    505,
                    format!("SIP version {} is not supported", &version[4..]),
                ));
            }
        }
        _ => {
            return Err(ParseError::bad(format!(
                "bad SIP version {:?}",
                truncate(version)
            )))
        }
    }
    let uri_str = parts[1];
    let uri = if uri_str.starts_with('<') {
        Err(ParseError::bad("Request-URI must not be enclosed in <>"))
    } else {
        Uri::parse(uri_str).and_then(|u| match &u.scheme {
            Scheme::Other(s) => Err(ParseError::with_status(
                416,
                format!("URI scheme {s:?} is not supported"),
            )),
            _ if !u.headers.is_empty() => {
                Err(ParseError::bad("Request-URI must not carry headers"))
            }
            _ => Ok(u),
        })
    };
    Ok(StartLine::Request(method, uri))
}

fn validate_common(h: &Headers) -> Result<(), ParseError> {
    for name in [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        if h.get(&name).is_none() {
            return Err(ParseError::bad(format!("missing {name} header")));
        }
    }
    for h_line in h.iter() {
        if h_line.name.is_single() && h.count(&h_line.name) > 1 {
            return Err(ParseError::bad(format!("multiple {} headers", h_line.name)));
        }
    }
    for v in h.values(&HeaderName::VIA) {
        Via::parse(v).map_err(|e| ParseError::bad(format!("bad Via: {}", e.reason)))?;
    }
    // A bare comma or an empty element in a Via list is an error (RFC 4475 §3.1.2.1).
    for line in h.get_all(&HeaderName::VIA) {
        if crate::scan::split_commas(line).iter().any(|e| e.is_empty()) {
            return Err(ParseError::bad("empty element in Via"));
        }
    }
    for name in [HeaderName::FROM, HeaderName::TO] {
        let v = h.get(&name).unwrap_or_default();
        NameAddr::parse(v).map_err(|e| ParseError::bad(format!("bad {name}: {}", e.reason)))?;
    }
    if h.call_id().is_none_or(str::is_empty) {
        return Err(ParseError::bad("empty Call-ID"));
    }
    CSeq::parse(h.get(&HeaderName::CSEQ).unwrap_or_default())
        .map_err(|e| ParseError::bad(format!("bad CSeq: {}", e.reason)))?;
    for name in [
        HeaderName::EXPIRES,
        HeaderName::MIN_EXPIRES,
        HeaderName::RETRY_AFTER,
    ] {
        if let Some(v) = h.get(&name) {
            let n = v.split([';', '(']).next().unwrap_or("");
            parse_u32(n, name.as_str())?;
        }
    }
    if let Some(v) = h.get(&HeaderName::MAX_FORWARDS) {
        let n = parse_u32(v, "Max-Forwards")?;
        if n > 255 {
            return Err(ParseError::bad(format!("Max-Forwards {n} is above 255")));
        }
    }
    for v in h.values(&HeaderName::CONTACT) {
        Contact::parse(v).map_err(|e| ParseError::bad(format!("bad Contact: {}", e.reason)))?;
    }
    for name in [HeaderName::ROUTE, HeaderName::RECORD_ROUTE] {
        for v in h.values(&name) {
            NameAddr::parse(v).map_err(|e| ParseError::bad(format!("bad {name}: {}", e.reason)))?;
        }
    }
    for name in [HeaderName::REFER_TO, HeaderName::REFERRED_BY] {
        if let Some(v) = h.get(&name) {
            NameAddr::parse(v).map_err(|e| ParseError::bad(format!("bad {name}: {}", e.reason)))?;
        }
    }
    if let Some(v) = h.get(&HeaderName::EVENT) {
        EventHeader::parse(v)?;
    }
    if let Some(v) = h.get(&HeaderName::DATE) {
        // RFC 3261 §20.17: SIP-date is an RFC 1123 date, always in GMT.
        if !v.trim_end().ends_with(" GMT") {
            return Err(ParseError::bad("Date must be given in GMT"));
        }
    }
    Ok(())
}

fn validate_request(method: &Method, _uri: &Uri, h: &Headers) -> Result<(), ParseError> {
    validate_common(h)?;
    let cseq = CSeq::parse(h.get(&HeaderName::CSEQ).unwrap_or_default())?;
    if &cseq.method != method {
        return Err(ParseError::bad(format!(
            "CSeq method {} does not match request method {method}",
            cseq.method
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn roundtrip() {
        let m = parse_message(OPTIONS.as_bytes(), &ParseLimits::default()).unwrap();
        let again = parse_message(&m.to_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn too_large_is_513() {
        let limits = ParseLimits {
            max_message: 100,
            ..Default::default()
        };
        let e = parse_message(OPTIONS.as_bytes(), &limits).unwrap_err();
        assert_eq!(e.error.status, 513);
        assert!(e.answerable());
    }

    #[test]
    fn truncated_everywhere_never_panics() {
        for i in 0..OPTIONS.len() {
            let _ = parse_message(&OPTIONS.as_bytes()[..i], &ParseLimits::default());
        }
    }
}
