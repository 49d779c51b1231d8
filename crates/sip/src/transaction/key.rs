//! Matching messages to transactions (RFC 3261 §17.1.3 and §17.2.3, with the
//! RFC 2543 fallback for branches without the magic cookie).

use crate::header::HeaderName;
use crate::message::{Request, Response};
use crate::method::Method;

/// What identifies a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// The branch (or the RFC 2543 composite key).
    id: String,
    /// The method, with ACK folded into INVITE so an ACK finds its INVITE.
    method: Method,
    /// Which side created it.
    server: bool,
}

fn fold(m: &Method) -> Method {
    if *m == Method::Ack {
        Method::Invite
    } else {
        m.clone()
    }
}

impl TxKey {
    /// The server key of an incoming request.
    pub fn server(req: &Request) -> Option<Self> {
        let via = req.headers.top_via()?;
        let id = match via.branch() {
            Some(b) if via.is_rfc3261() => format!("{b}|{}|{:?}", via.host, via.port),
            _ => {
                // RFC 3261 §17.2.3 backwards compatibility: Request-URI, From
                // tag, Call-ID, CSeq number and top Via; To tag except for ACK.
                let h = &req.headers;
                let to_tag = if req.method == Method::Ack {
                    String::new()
                } else {
                    h.to()
                        .and_then(|t| t.tag().map(str::to_owned))
                        .unwrap_or_default()
                };
                format!(
                    "2543|{}|{}|{}|{}|{}|{}",
                    req.uri,
                    h.from()
                        .and_then(|f| f.tag().map(str::to_owned))
                        .unwrap_or_default(),
                    to_tag,
                    h.call_id().unwrap_or_default(),
                    h.cseq().map(|c| c.seq).unwrap_or_default(),
                    h.get(&HeaderName::VIA).unwrap_or_default()
                )
            }
        };
        Some(Self {
            id,
            method: fold(&req.method),
            server: true,
        })
    }

    /// The server key of the INVITE that a CANCEL cancels.
    pub fn invite_for_cancel(cancel: &Request) -> Option<Self> {
        let mut k = Self::server(cancel)?;
        k.method = Method::Invite;
        Some(k)
    }

    /// The client key of a request we send (its top Via is ours).
    pub fn client(req: &Request) -> Option<Self> {
        let via = req.headers.top_via()?;
        Some(Self {
            id: via.branch()?.to_owned(),
            method: fold(&req.method),
            server: false,
        })
    }

    /// The client key a response matches (top Via branch and CSeq method).
    pub fn for_response(resp: &Response) -> Option<Self> {
        let via = resp.headers.top_via()?;
        let method = resp.headers.cseq()?.method;
        Some(Self {
            id: via.branch()?.to_owned(),
            method: fold(&method),
            server: false,
        })
    }
}
