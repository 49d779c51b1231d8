//! The registrar (RFC 3261 §10.3): phones register their contacts so that
//! the focus can call them (dial-out and REFER to a local address of
//! record fork to them). The rules live in the `registrar` crate; this
//! answers the REGISTER, checks that an authenticated user registers only
//! their own address, and hands every change out for the store.

use std::time::Instant;

use registrar::{Binding, Outcome, Register};
use sip::transaction::{Peer, TxId};
use sip::{HeaderName, Request};

use crate::auth::Identity;
use crate::core::Focus;

/// The bindings of one address of record after a change, for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingsChanged {
    /// The address of record.
    pub aor: String,
    /// Its bindings now (empty: none left).
    pub bindings: Vec<Binding>,
}

impl Focus {
    /// A REGISTER, from `who`.
    pub(crate) fn on_register(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        source: Peer,
        who: &Identity,
    ) {
        let mut reg = match Register::from_request(req) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("Bad Request: {e}");
                self.reply(now, tx, req, 400, &reason, &[], None);
                return;
            }
        };
        if let Some(user) = &who.user {
            // RFC 3261 §10.3 step 3: the authenticated user may change
            // only their own bindings.
            if user_of(&reg.aor) != Some(user.as_str()) {
                tracing::info!(%user, aor = %reg.aor, "REGISTER for someone else refused");
                self.reply(
                    now,
                    tx,
                    req,
                    403,
                    "Forbidden: not your address of record",
                    &[],
                    None,
                );
                return;
            }
        }
        reg.source = Some(source);
        let secs = self.gate.seconds(now);
        let changes = reg.contacts.as_ref().is_none_or(|c| !c.is_empty());
        match self.location.register(&reg, secs) {
            Outcome::Ok(bindings) => {
                let mut headers: Vec<(HeaderName, String)> = bindings
                    .iter()
                    .map(|b| {
                        let mut c = b.contact.clone();
                        let left = b.expires_at.saturating_sub(secs).to_string();
                        c.params.set("expires", Some(&left));
                        (HeaderName::CONTACT, c.to_string())
                    })
                    .collect();
                // RFC 3327 §5.3: the Path a proxy recorded goes back in the 200.
                for p in &reg.path {
                    headers.push((HeaderName::PATH, p.clone()));
                }
                headers.push((
                    HeaderName::DATE,
                    crate::UtcTime::from_unix(secs).http_date(),
                ));
                self.reply(now, tx, req, 200, "OK", &headers, None);
                if changes {
                    tracing::debug!(aor = %reg.aor, contacts = bindings.len(), "registered");
                    self.registrations.push_back(BindingsChanged {
                        aor: reg.aor,
                        bindings,
                    });
                }
            }
            Outcome::IntervalTooBrief(min) => {
                let h = [(HeaderName::MIN_EXPIRES, min.to_string())];
                self.reply(now, tx, req, 423, "Interval Too Brief", &h, None);
            }
            Outcome::OutOfOrder => {
                let h = [(HeaderName::RETRY_AFTER, "1".to_string())];
                self.reply(
                    now,
                    tx,
                    req,
                    500,
                    "Server Internal Error: REGISTER out of order",
                    &h,
                    None,
                );
            }
            Outcome::TooMany => {
                self.reply(
                    now,
                    tx,
                    req,
                    403,
                    "Forbidden: too many registrations",
                    &[],
                    None,
                );
            }
        }
    }

    /// Bindings the store kept from before a restart.
    pub(crate) fn restore_bindings(&mut self, aor: String, bindings: Vec<Binding>) {
        self.location.restore(aor, bindings);
    }

    /// The live contacts of an address of record, best first.
    pub(crate) fn registered(&mut self, now: Instant, aor: &str) -> Vec<Binding> {
        let secs = self.gate.seconds(now);
        self.location.lookup(aor, secs)
    }

    /// Drops expired bindings (once a second).
    pub(crate) fn expire_bindings(&mut self, now: Instant) {
        let secs = self.gate.seconds(now);
        self.location.expire(secs);
    }

    pub(crate) fn poll_registration(&mut self) -> Option<BindingsChanged> {
        self.registrations.pop_front()
    }
}

/// The user part of `sip:user@host`.
fn user_of(aor: &str) -> Option<&str> {
    let rest = aor.split_once(':')?.1;
    Some(rest.split_once('@')?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_of_an_aor() {
        assert_eq!(user_of("sip:alice@example.com"), Some("alice"));
        assert_eq!(user_of("sip:example.com"), None);
    }
}
