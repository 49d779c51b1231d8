//! Small typed headers: CSeq, Event, Subscription-State, Session-Expires,
//! Reason and Warning.

use std::fmt;

use crate::error::ParseError;
use crate::method::Method;
use crate::scan::{is_token, is_ws, quoted_string, Params};

/// CSeq (RFC 3261 §20.16): a 32-bit sequence number and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (less than 2^31 per §8.1.1.5, but any u32 is accepted).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `0009\r\n INVITE` style values (LWS between the two parts).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut it = s.split(is_ws).filter(|p| !p.is_empty());
        let (Some(n), Some(m), None) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::bad("CSeq is not 'NUMBER METHOD'"));
        };
        let seq = n
            .parse::<u32>()
            .map_err(|_| ParseError::bad(format!("CSeq number {n:?} is not a 32-bit number")))?;
        Ok(Self {
            seq,
            method: Method::parse(m)?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Event (RFC 6665 §8.2.1): a package name with optional template and params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The event package, e.g. `conference` or `refer`.
    pub package: String,
    /// Parameters such as `id`.
    pub params: Params,
}

impl EventHeader {
    /// Parses an Event value.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let end = s.find(|c: char| c == ';' || is_ws(c)).unwrap_or(s.len());
        let package = &s[..end];
        if !is_token(package) {
            return Err(ParseError::bad(format!("bad Event package {package:?}")));
        }
        Ok(Self {
            package: package.to_ascii_lowercase(),
            params: Params::parse_header_params(&s[end..])?,
        })
    }
}

/// Subscription-State (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension.
    pub state: String,
    /// `expires`, `reason`, `retry-after`.
    pub params: Params,
}

impl SubscriptionState {
    /// Parses a Subscription-State value.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ev = EventHeader::parse(s)?;
        Ok(Self {
            state: ev.package,
            params: ev.params,
        })
    }

    /// The expires parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(|e| e.parse().ok())
    }
}

/// Session-Expires (RFC 4028 §4): interval and refresher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    /// Seconds.
    pub interval: u32,
    /// `uac` or `uas` if given.
    pub refresher: Option<String>,
}

impl SessionExpires {
    /// Parses a Session-Expires (or Min-SE, whose refresher is then `None`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let end = s.find(|c: char| c == ';' || is_ws(c)).unwrap_or(s.len());
        let interval = parse_u32_pub(&s[..end], "Session-Expires")?;
        let params = Params::parse_header_params(&s[end..])?;
        Ok(Self {
            interval,
            refresher: params.value("refresher").map(str::to_ascii_lowercase),
        })
    }
}

/// Reason (RFC 3326): protocol, cause and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `SIP`, `Q.850`, …
    pub protocol: String,
    /// The cause code.
    pub cause: Option<u16>,
    /// The text.
    pub text: Option<String>,
}

impl Reason {
    /// Parses one Reason element.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ev = EventHeader::parse(s)?;
        let cause = ev
            .params
            .value("cause")
            .map(|c| c.parse().map_err(|_| ParseError::bad("bad Reason cause")))
            .transpose()?;
        Ok(Self {
            protocol: s.trim()[..ev.package.len()].to_owned(),
            cause,
            text: ev.params.value("text").map(str::to_owned),
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.protocol)?;
        if let Some(c) = self.cause {
            write!(f, ";cause={c}")?;
        }
        if let Some(t) = &self.text {
            write!(f, ";text=\"{}\"", t.replace('"', "'"))?;
        }
        Ok(())
    }
}

/// Warning (RFC 3261 §20.43): code, agent and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Three-digit warning code.
    pub code: u16,
    /// The warning agent (host or pseudonym).
    pub agent: String,
    /// The quoted text.
    pub text: String,
}

impl Warning {
    /// Parses one Warning element.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let (code, rest) = s
            .split_once(is_ws)
            .ok_or_else(|| ParseError::bad("bad Warning"))?;
        let code: u16 = code
            .parse()
            .map_err(|_| ParseError::bad("bad Warning code"))?;
        if !(100..=999).contains(&code) {
            return Err(ParseError::bad("Warning code is not three digits"));
        }
        let rest = rest.trim_start();
        let (agent, rest) = rest
            .split_once(is_ws)
            .ok_or_else(|| ParseError::bad("bad Warning"))?;
        let (text, _) = quoted_string(rest.trim_start())?;
        Ok(Self {
            code,
            agent: agent.to_owned(),
            text,
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} \"{}\"",
            self.code,
            self.agent,
            self.text.replace('"', "'")
        )
    }
}

/// Parses a non-negative 32-bit decimal (Expires, Min-Expires, Content-Length…).
pub(crate) fn parse_u32_pub(s: &str, what: &str) -> Result<u32, ParseError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::bad(format!("{what} {s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| ParseError::bad(format!("{what} {s:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        let c = CSeq::parse("0009 \t INVITE").unwrap();
        assert_eq!(c.seq, 9);
        assert_eq!(c.method, Method::Invite);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
    }

    #[test]
    fn small_headers() {
        let e = EventHeader::parse("Conference;id=7").unwrap();
        assert_eq!(e.package, "conference");
        let s = SubscriptionState::parse("terminated;reason=timeout").unwrap();
        assert_eq!(s.params.value("reason"), Some("timeout"));
        let se = SessionExpires::parse("1800;refresher=UAC").unwrap();
        assert_eq!(se.refresher.as_deref(), Some("uac"));
        let r = Reason::parse("SIP ;cause=200;text=\"Call completed elsewhere\"").unwrap();
        assert_eq!((r.protocol.as_str(), r.cause), ("SIP", Some(200)));
        let w = Warning::parse("305 confab \"Incompatible media format\"").unwrap();
        assert_eq!(w.code, 305);
        assert!(Warning::parse("1812 overture \"In Progress\"").is_err());
    }
}
