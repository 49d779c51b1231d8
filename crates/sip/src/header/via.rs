//! The Via header (RFC 3261 §20.42, RFC 3581 rport).

use std::fmt;

use crate::error::ParseError;
use crate::scan::{is_ws, Params};
use crate::uri::Host;

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport as written (UDP, TCP, TLS, SCTP, or anything else).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters: branch, received, rport, maddr, ttl, …
    pub params: Params,
}

impl Via {
    /// Parses one Via element, allowing LWS around `/` (RFC 4475 §3.1.1.1).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut rest = s.trim_matches(is_ws);
        let mut parts = [""; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            let end = rest
                .find(|c: char| c == '/' || is_ws(c))
                .unwrap_or(rest.len());
            *part = &rest[..end];
            rest = rest[end..].trim_start_matches(is_ws);
            if i < 2 {
                rest = rest
                    .strip_prefix('/')
                    .ok_or_else(|| {
                        ParseError::bad("Via sent-protocol is not NAME/VERSION/TRANSPORT")
                    })?
                    .trim_start_matches(is_ws);
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" || parts[2].is_empty() {
            return Err(ParseError::bad(format!(
                "bad Via protocol {}/{}/{}",
                parts[0], parts[1], parts[2]
            )));
        }
        let end = rest
            .find(|c: char| c == ';' || is_ws(c))
            .unwrap_or(rest.len());
        let sent_by = &rest[..end];
        let mut after = rest[end..].trim_start_matches(is_ws);
        let (host_str, port) = if sent_by.starts_with('[') {
            let close = sent_by
                .find(']')
                .ok_or_else(|| ParseError::bad("bad IPv6 in Via"))?;
            (&sent_by[..=close], sent_by[close + 1..].strip_prefix(':'))
        } else {
            match sent_by.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (sent_by, None),
            }
        };
        // `host : port` with LWS: take a port that follows after spaces.
        let port = match port {
            Some(p) => Some(p.to_owned()),
            None if after.starts_with(':') => {
                let p = after[1..].trim_start_matches(is_ws);
                let e = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
                after = p[e..].trim_start_matches(is_ws);
                Some(p[..e].to_owned())
            }
            None => None,
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| ParseError::bad(format!("bad Via port {p:?}")))
            })
            .transpose()?;
        let host = Host::parse(host_str)?;
        let params = Params::parse_header_params(after)?;
        if let Some(Some(r)) = params.get("rport") {
            r.parse::<u16>()
                .map_err(|_| ParseError::bad("bad Via rport"))?;
        }
        Ok(Self {
            transport: parts[2].to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The received parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// `Some(None)` for a bare `rport` (client asks for it), `Some(Some(p))` once filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn is_rfc3261(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lws_everywhere() {
        let v = Via::parse("SIP  /   2.0  /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.is_rfc3261());
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.host, Host::Name("spindle.example.com".into()));
        assert!(v.is_rfc3261());
    }

    #[test]
    fn rport_and_print() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(v.rport(), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport"
        );
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse("SIP/3.0/UDP host").is_err());
    }
}
