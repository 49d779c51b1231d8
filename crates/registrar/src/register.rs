//! A REGISTER request, read into what the registrar decides on.

use sip::header::{CSeq, Contact, NameAddr};
use sip::transaction::Peer;
use sip::{HeaderName, Request};
use thiserror::Error;

/// Why a REGISTER cannot be applied: answered with 400 and this reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegisterError {
    /// The To header is missing or not a URI.
    #[error("To is not an address of record")]
    To,
    /// A Contact header cannot be read.
    #[error("malformed Contact")]
    Contact,
    /// `Contact: *` with other contacts or a non-zero expiry.
    #[error("Contact: * needs Expires: 0 and no other Contact")]
    Wildcard,
    /// Expires, CSeq or Call-ID missing or malformed.
    #[error("malformed {0}")]
    Header(&'static str),
}

/// What a REGISTER asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The address of record (the To URI, without parameters).
    pub aor: String,
    /// The contacts, or None for `Contact: *`; empty means a query.
    pub contacts: Option<Vec<NameAddr>>,
    /// The request's `Expires`.
    pub expires: Option<u32>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// `Path` values, in order (RFC 3327).
    pub path: Vec<String>,
    /// The flow it came over (RFC 5626 §4.2: requests to the contact go
    /// back over it, so that a phone behind NAT or on a TCP/TLS
    /// connection it opened gets its calls). Set by whoever received it.
    pub source: Option<Peer>,
}

impl Register {
    /// Reads a REGISTER request.
    pub fn from_request(req: &Request) -> Result<Self, RegisterError> {
        let h = &req.headers;
        let to = h
            .get(&HeaderName::TO)
            .and_then(|v| NameAddr::parse(v).ok())
            .ok_or(RegisterError::To)?;
        let mut aor_uri = to.uri;
        aor_uri.params = Default::default();
        aor_uri.headers.clear();
        let mut contacts = Vec::new();
        let mut wildcard = false;
        for v in h.values(&HeaderName::CONTACT) {
            match Contact::parse(v).map_err(|_| RegisterError::Contact)? {
                Contact::Wildcard => wildcard = true,
                Contact::Addr(a) => contacts.push(*a),
            }
        }
        let expires = match h.get(&HeaderName::EXPIRES) {
            Some(v) => Some(
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| RegisterError::Header("Expires"))?,
            ),
            None => None,
        };
        if wildcard && (!contacts.is_empty() || expires != Some(0)) {
            return Err(RegisterError::Wildcard);
        }
        let call_id = h
            .get(&HeaderName::CALL_ID)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(RegisterError::Header("Call-ID"))?;
        let cseq = h
            .get(&HeaderName::CSEQ)
            .and_then(|v| CSeq::parse(v).ok())
            .ok_or(RegisterError::Header("CSeq"))?
            .seq;
        let path = h
            .values(&HeaderName::PATH)
            .map(|v| v.trim().to_string())
            .collect();
        Ok(Self {
            aor: aor_uri.to_string(),
            contacts: (!wildcard).then_some(contacts),
            expires,
            call_id,
            cseq,
            path,
            source: None,
        })
    }
}
