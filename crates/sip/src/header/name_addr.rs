//! name-addr and addr-spec (RFC 3261 §20.10, §25.1): From, To, Contact,
//! Route, Record-Route, Refer-To, Referred-By.

use std::fmt;

use crate::error::ParseError;
use crate::scan::{is_token_char, is_ws, quoted_string, Params};
use crate::uri::Uri;

/// A URI with an optional display name and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`;tag=`, `;expires=`, `;isfocus`, …).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr with no display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Parses either form. In addr-spec form (no angle brackets) the URI
    /// ends at the first `;`, and a URI holding `?` or `,` is refused
    /// because it must be bracketed (RFC 3261 §20).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim_matches(is_ws);
        let (display, after_display) = if s.starts_with('"') {
            let (d, rest) = quoted_string(s)?;
            let rest = rest.trim_start_matches(is_ws);
            if !rest.starts_with('<') {
                return Err(ParseError::bad("quoted display name not followed by <URI>"));
            }
            (Some(d), rest)
        } else if let Some(lt) = s.find('<') {
            let d = s[..lt].trim_matches(is_ws);
            if !d
                .split(is_ws)
                .filter(|w| !w.is_empty())
                .all(|w| w.chars().all(is_token_char))
            {
                return Err(ParseError::bad(format!(
                    "display name {d:?} must be quoted"
                )));
            }
            (
                (!d.is_empty()).then(|| d.split_whitespace().collect::<Vec<_>>().join(" ")),
                &s[lt..],
            )
        } else {
            (None, s)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner
                .find('>')
                .ok_or_else(|| ParseError::bad("missing '>' after URI"))?;
            let uri_str = &inner[..gt];
            if uri_str.starts_with(is_ws) || uri_str.ends_with(is_ws) {
                return Err(ParseError::bad("white space inside <> around the URI"));
            }
            let uri = Uri::parse(uri_str)?;
            let params = Params::parse_header_params(&inner[gt + 1..])?;
            Ok(Self {
                display,
                uri,
                params,
            })
        } else {
            let end = after_display
                .find(|c: char| c == ';' || is_ws(c))
                .unwrap_or(after_display.len());
            let uri_str = &after_display[..end];
            if uri_str.contains(['?', ',']) {
                return Err(ParseError::bad(
                    "a URI with '?' or ',' must be enclosed in <>",
                ));
            }
            let uri = Uri::parse(uri_str)?;
            let params = Params::parse_header_params(&after_display[end..])?;
            Ok(Self {
                display: None,
                uri,
                params,
            })
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A Contact header element: `*` or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (REGISTER only).
    Wildcard,
    /// An address with parameters such as `expires` and `isfocus`.
    Addr(Box<NameAddr>),
}

impl Contact {
    /// Parses one Contact element.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.trim() == "*" {
            return Ok(Contact::Wildcard);
        }
        let na = NameAddr::parse(s)?;
        if let Some(e) = na.params.value("expires") {
            e.parse::<u32>().map_err(|_| {
                ParseError::bad(format!("Contact expires {e:?} is not a 32-bit number"))
            })?;
        }
        Ok(Contact::Addr(Box::new(na)))
    }

    /// The address, unless this is the wildcard.
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            Contact::Wildcard => None,
            Contact::Addr(a) => Some(a),
        }
    }

    /// True when the `isfocus` feature parameter is present (RFC 4579 §3.1).
    pub fn is_focus(&self) -> bool {
        self.addr().is_some_and(|a| a.params.has("isfocus"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#)
            .unwrap();
        assert_eq!(a.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(a.tag(), Some("98asjd8"));
        let b = NameAddr::parse("sip:caller@example.org;tag=33242").unwrap();
        assert_eq!(b.tag(), Some("33242"));
        assert!(b.uri.params.0.is_empty());
        let c = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(c.display.as_deref(), Some("caller"));
        let focus = Contact::parse("<sip:room@host>;isfocus").unwrap();
        assert!(focus.is_focus());
    }

    #[test]
    fn refused() {
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@bell-tel.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@ieee.org >").is_err());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
    }
}
