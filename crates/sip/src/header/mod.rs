//! Header fields: names (case-insensitive, compact forms expanded), the
//! ordered header list of a message, and typed views of the fields a focus
//! uses.

mod name_addr;
pub(crate) mod typed;
mod via;

pub use name_addr::{Contact, NameAddr};
pub use typed::{CSeq, EventHeader, Reason, SessionExpires, SubscriptionState, Warning};
pub use via::{Via, MAGIC_COOKIE};

use std::fmt;

/// A header name. Known names are compared and printed in their canonical
/// form; compact forms (RFC 3261 §7.3.3 and extensions) are expanded.
#[derive(Debug, Clone, Eq)]
pub struct HeaderName(std::borrow::Cow<'static, str>);

macro_rules! known_headers {
    ($($konst:ident = $name:literal $(/ $compact:literal)?),* $(,)?) => {
        impl HeaderName {
            $(
                #[doc = concat!("`", $name, "`")]
                pub const $konst: HeaderName = HeaderName(std::borrow::Cow::Borrowed($name));
            )*

            /// Canonicalizes a name as received on the wire.
            pub fn new(raw: &str) -> Self {
                $(
                    if raw.eq_ignore_ascii_case($name) $(|| raw.eq_ignore_ascii_case($compact))? {
                        return Self::$konst;
                    }
                )*
                HeaderName(std::borrow::Cow::Owned(raw.to_owned()))
            }
        }
    };
}

known_headers! {
    ACCEPT = "Accept",
    ACCEPT_CONTACT = "Accept-Contact" / "a",
    ALLOW = "Allow",
    ALLOW_EVENTS = "Allow-Events" / "u",
    AUTHORIZATION = "Authorization",
    CALL_ID = "Call-ID" / "i",
    CONTACT = "Contact" / "m",
    CONTENT_ENCODING = "Content-Encoding" / "e",
    CONTENT_LENGTH = "Content-Length" / "l",
    CONTENT_TYPE = "Content-Type" / "c",
    CSEQ = "CSeq",
    DATE = "Date",
    EVENT = "Event" / "o",
    EXPIRES = "Expires",
    FROM = "From" / "f",
    MAX_FORWARDS = "Max-Forwards",
    MIN_EXPIRES = "Min-Expires",
    MIN_SE = "Min-SE",
    PATH = "Path",
    PROXY_AUTHENTICATE = "Proxy-Authenticate",
    PROXY_AUTHORIZATION = "Proxy-Authorization",
    PROXY_REQUIRE = "Proxy-Require",
    REASON = "Reason",
    RECORD_ROUTE = "Record-Route",
    REFER_TO = "Refer-To" / "r",
    REFERRED_BY = "Referred-By" / "b",
    REQUIRE = "Require",
    RETRY_AFTER = "Retry-After",
    ROUTE = "Route",
    SERVER = "Server",
    SESSION_EXPIRES = "Session-Expires" / "x",
    SUBJECT = "Subject" / "s",
    SUBSCRIPTION_STATE = "Subscription-State",
    SUPPORTED = "Supported" / "k",
    TO = "To" / "t",
    UNSUPPORTED = "Unsupported",
    USER_AGENT = "User-Agent",
    VIA = "Via" / "v",
    WARNING = "Warning",
    WWW_AUTHENTICATE = "WWW-Authenticate",
}

impl HeaderName {
    /// The canonical (or as-received) name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Headers whose value is a comma-separated list (RFC 3261 §7.3.1), so
    /// that several lines and one comma list mean the same thing.
    pub fn is_list(&self) -> bool {
        [
            Self::ACCEPT,
            Self::ALLOW,
            Self::ALLOW_EVENTS,
            Self::CONTACT,
            Self::PATH,
            Self::PROXY_REQUIRE,
            Self::RECORD_ROUTE,
            Self::REQUIRE,
            Self::ROUTE,
            Self::SUPPORTED,
            Self::UNSUPPORTED,
            Self::VIA,
            Self::WARNING,
            Self::REASON,
        ]
        .iter()
        .any(|h| self == h)
    }

    /// Headers that may appear only once (RFC 4475 §3.3.8).
    pub fn is_single(&self) -> bool {
        [
            Self::CALL_ID,
            Self::CONTENT_LENGTH,
            Self::CONTENT_TYPE,
            Self::CSEQ,
            Self::FROM,
            Self::MAX_FORWARDS,
            Self::TO,
            Self::EXPIRES,
        ]
        .iter()
        .any(|h| self == h)
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl PartialEq<str> for HeaderName {
    fn eq(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One header line (unfolded, value trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The raw value.
    pub value: String,
}

/// The headers of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts a header line at the top (for Via and Record-Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Replaces every line of this header by one line.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.0.iter().position(|h| h.name == name) {
            self.0[pos].value = value;
            let mut i = 0;
            self.0.retain(|h| {
                i += 1;
                i - 1 == pos || h.name != name
            });
        } else {
            self.push(name, value);
        }
    }

    /// Removes every line of this header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// The first line's value.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every line's value, unsplit.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every element of a list header, across lines and commas.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(crate::scan::split_commas)
            .filter(|v| !v.is_empty())
    }

    /// True when any element of a list header equals `token` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        self.values(name).any(|v| v.eq_ignore_ascii_case(token))
    }

    /// How many lines carry this header.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    /// Iterates over all lines.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no lines.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::new("v"), HeaderName::VIA);
        assert_eq!(HeaderName::new("cALL-iD"), HeaderName::CALL_ID);
        assert_eq!(HeaderName::new("o"), HeaderName::EVENT);
        assert_eq!(HeaderName::new("X-Thing").as_str(), "X-Thing");
    }

    #[test]
    fn list_values_across_lines() {
        let mut h = Headers::new();
        h.push(HeaderName::ALLOW, "INVITE, ACK");
        h.push(HeaderName::new("allow"), "BYE");
        assert_eq!(
            h.values(&HeaderName::ALLOW).collect::<Vec<_>>(),
            vec!["INVITE", "ACK", "BYE"]
        );
        h.set(HeaderName::ALLOW, "OPTIONS");
        assert_eq!(h.count(&HeaderName::ALLOW), 1);
    }
}
