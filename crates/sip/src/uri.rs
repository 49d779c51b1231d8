//! SIP, SIPS and TEL URIs (RFC 3261 §19.1, RFC 3966), with parameters,
//! headers and `%` escapes. Other schemes are kept opaque so that a From or
//! To with a novel scheme still parses (RFC 4475 §3.3.3).

use std::fmt;

use crate::error::ParseError;
use crate::scan::{escape, unescape, Param, Params};

/// The scheme of a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Any other scheme, kept as written.
    Other(String),
}

/// The host part of a SIP URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name (kept in the case it was written; compared case-insensitively).
    Name(String),
    /// An IPv4 address.
    V4(std::net::Ipv4Addr),
    /// An IPv6 reference, written in brackets.
    V6(std::net::Ipv6Addr),
}

impl Host {
    /// Parses a host (`example.com`, `192.0.2.1`, `[2001:db8::1]`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| ParseError::bad("unterminated IPv6 reference"))?;
            return inner
                .parse()
                .map(Host::V6)
                .map_err(|_| ParseError::bad(format!("bad IPv6 address {inner}")));
        }
        if s.is_empty() {
            return Err(ParseError::bad("empty host"));
        }
        if let Ok(v4) = s.parse() {
            return Ok(Host::V4(v4));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ParseError::bad(format!("bad host name {s:?}")));
        }
        Ok(Host::Name(s.to_owned()))
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Host::V4(a),
            std::net::IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part, unescaped (for `tel:` the number).
    pub user: Option<String>,
    /// The password part, unescaped.
    pub password: Option<String>,
    /// The host; `None` for `tel:` and opaque URIs.
    pub host: Option<Host>,
    /// The port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`), values unescaped.
    pub params: Params,
    /// URI headers (`?subject=x&priority=y`), unescaped.
    pub headers: Vec<(String, String)>,
    /// For opaque schemes: everything after the colon.
    pub opaque: Option<String>,
}

fn user_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)
}
fn password_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,".contains(c)
}
fn param_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()[]/:&+$".contains(c)
}
fn header_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()[]/?:+$".contains(c)
}

impl Uri {
    /// A plain `sip:user@host[:port]` URI.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: Some(host),
            port,
            params: Params::default(),
            headers: Vec::new(),
            opaque: None,
        }
    }

    /// Parses a URI. White space anywhere is an error (RFC 4475 §3.1.2.8).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::bad("white space or control character in URI"));
        }
        let colon = s
            .find(':')
            .ok_or_else(|| ParseError::bad(format!("URI {s:?} has no scheme")))?;
        let scheme_str = &s[..colon];
        if scheme_str.is_empty()
            || !scheme_str.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme_str
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(ParseError::bad(format!("bad URI scheme {scheme_str:?}")));
        }
        let rest = &s[colon + 1..];
        let scheme = match scheme_str.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            _ => {
                return Ok(Self {
                    scheme: Scheme::Other(scheme_str.to_owned()),
                    user: None,
                    password: None,
                    host: None,
                    port: None,
                    params: Params::default(),
                    headers: Vec::new(),
                    opaque: Some(rest.to_owned()),
                })
            }
        };
        if scheme == Scheme::Tel {
            let (number, params) = match rest.find(';') {
                Some(i) => (&rest[..i], parse_uri_params(&rest[i..])?),
                None => (rest, Params::default()),
            };
            if number.is_empty() {
                return Err(ParseError::bad("empty tel: number"));
            }
            return Ok(Self {
                scheme,
                user: Some(unescape(number)?),
                password: None,
                host: None,
                port: None,
                params,
                headers: Vec::new(),
                opaque: None,
            });
        }
        // The user part cannot hold a raw '@' (RFC 3261 §25.1), so the
        // first one ends it, even if '?' or ';' come before it.
        let (userinfo, hostpart) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(ParseError::bad("empty user part in URI"));
                }
                (Some(unescape(u)?), p.map(unescape).transpose()?)
            }
            None => (None, None),
        };
        let (hostport_params, headers_str) = match hostpart.find('?') {
            Some(i) => (&hostpart[..i], Some(&hostpart[i + 1..])),
            None => (hostpart, None),
        };
        let (hostport, params_str) = match hostport_params.find(';') {
            Some(i) => (&hostport_params[..i], &hostport_params[i..]),
            None => (hostport_params, ""),
        };
        let (host_str, port) = split_host_port(hostport)?;
        let host = Host::parse(host_str)?;
        let params = parse_uri_params(params_str)?;
        let mut headers = Vec::new();
        if let Some(hs) = headers_str {
            for pair in hs.split('&').filter(|p| !p.is_empty()) {
                let (n, v) = pair
                    .split_once('=')
                    .ok_or_else(|| ParseError::bad(format!("URI header {pair:?} has no value")))?;
                headers.push((unescape(n)?, unescape(v)?));
            }
        }
        Ok(Self {
            scheme,
            user,
            password,
            host: Some(host),
            port,
            params,
            headers,
            opaque: None,
        })
    }

    /// The host as text (empty for URIs without one).
    pub fn host_str(&self) -> String {
        self.host
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(i) => match s[i + 1..].strip_prefix(':') {
                Some(p) => (&s[..=i], Some(p)),
                None if i + 1 == s.len() => (s, None),
                None => return Err(ParseError::bad("text after IPv6 reference")),
            },
            None => return Err(ParseError::bad("unterminated IPv6 reference")),
        }
    } else {
        match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| ParseError::bad(format!("bad port {p:?}")))
        })
        .transpose()?;
    Ok((host, port))
}

fn parse_uri_params(s: &str) -> Result<Params, ParseError> {
    let mut out = Vec::new();
    for part in s.split(';').skip(1) {
        if part.is_empty() {
            // `;;` inside a URI is tolerated: it carries no parameter.
            continue;
        }
        let (n, v) = match part.split_once('=') {
            Some((n, v)) => (n, Some(unescape(v)?)),
            None => (part, None),
        };
        if n.is_empty() {
            return Err(ParseError::bad("URI parameter without a name"));
        }
        out.push(Param {
            name: unescape(n)?,
            value: v,
        });
    }
    Ok(Params(out))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scheme {
            Scheme::Sip => f.write_str("sip:")?,
            Scheme::Sips => f.write_str("sips:")?,
            Scheme::Tel => f.write_str("tel:")?,
            Scheme::Other(s) => return write!(f, "{s}:{}", self.opaque.as_deref().unwrap_or("")),
        }
        if let Some(u) = &self.user {
            if self.scheme == Scheme::Tel {
                f.write_str(&escape(u, |c| {
                    c.is_ascii_alphanumeric() || "-.()+*#".contains(c)
                }))?;
            } else {
                f.write_str(&escape(u, user_allowed))?;
                if let Some(p) = &self.password {
                    write!(f, ":{}", escape(p, password_allowed))?;
                }
                f.write_str("@")?;
            }
        }
        if let Some(h) = &self.host {
            write!(f, "{h}")?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in &self.params.0 {
            write!(f, ";{}", escape(&p.name, param_allowed))?;
            if let Some(v) = &p.value {
                write!(f, "={}", escape(v, param_allowed))?;
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(
                f,
                "{sep}{}={}",
                escape(n, header_allowed),
                escape(v, header_allowed)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_with_everything() {
        let u = Uri::parse(
            "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi%20there&x=y",
        )
        .unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Some(Host::V6("2001:db8::1".parse().unwrap())));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.value("transport"), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers[0], ("subject".into(), "hi there".into()));
        let again = Uri::parse(&u.to_string()).unwrap();
        assert_eq!(again, u);
    }

    #[test]
    fn semicolon_in_user() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        assert_eq!(u.host_str(), "example.com");
        assert!(u.params.0.is_empty());
    }

    #[test]
    fn tel_and_opaque() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(t.user.as_deref(), Some("+1-201-555-0123"));
        let o = Uri::parse("isbn:2983792873").unwrap();
        assert_eq!(o.scheme, Scheme::Other("isbn".into()));
        assert_eq!(o.to_string(), "isbn:2983792873");
    }

    #[test]
    fn bad_uris() {
        assert!(Uri::parse("sip:user@example.com; lr").is_err());
        assert!(Uri::parse("sip:user@exa mple.com").is_err());
        assert!(Uri::parse("sip:@example.com").is_err());
        assert!(Uri::parse("sip:user@example.com:99999").is_err());
        assert!(Uri::parse("nocolon").is_err());
    }
}
