//! Host names in dial-out targets (REFER and the control API), resolved
//! without I/O in the core: the focus asks with [`crate::Output::Resolve`],
//! the io edge looks the name up and answers with
//! [`crate::Input::Resolved`], and the dial-out goes on (or the referrer
//! hears 604 in its sipfrag NOTIFY, or the API caller gets
//! [`ControlError::Unresolvable`]). The one resolver of confab.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use control::ControlError;

use crate::core::Focus;
use crate::dialout::{refused, DialTarget};
use crate::policy::Reply;
use crate::refer::Referrer;

/// A name the focus needs an address for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    /// Echo it in [`crate::Input::Resolved`].
    pub id: u64,
    /// The host name.
    pub host: String,
    /// The port to pair with the address.
    pub port: u16,
}

/// A referral waiting for its target's address.
pub(crate) struct PendingDial {
    pub(crate) room: String,
    pub(crate) target: sip::Uri,
    pub(crate) referred_by: Option<String>,
    pub(crate) referrer: Referrer,
    pub(crate) local_host: String,
    /// For the control API: where the new participant's id (or why not) goes.
    pub(crate) api_reply: Option<Reply<Result<String, ControlError>>>,
}

/// Lookups asked for and not yet answered.
#[derive(Default)]
pub(crate) struct Resolver {
    next: u64,
    asked: VecDeque<ResolveRequest>,
    pending: std::collections::HashMap<u64, PendingDial>,
}

impl Resolver {
    /// Most referrals waiting for DNS at once; beyond, 503 to the referrer.
    const MAX_PENDING: usize = 1024;
}

impl Focus {
    /// Queues a lookup for a dial-out to a host name; gives the dial back
    /// when too many wait.
    pub(crate) fn resolve_then_dial(
        &mut self,
        host: String,
        port: u16,
        dial: PendingDial,
    ) -> Result<(), Box<PendingDial>> {
        let r = &mut self.resolver;
        if r.pending.len() >= Resolver::MAX_PENDING {
            return Err(Box::new(dial));
        }
        r.next += 1;
        let id = r.next;
        r.pending.insert(id, dial);
        r.asked.push_back(ResolveRequest { id, host, port });
        Ok(())
    }

    /// The next name to look up.
    pub(crate) fn poll_resolve(&mut self) -> Option<ResolveRequest> {
        self.resolver.asked.pop_front()
    }

    /// The answer to a [`ResolveRequest`]: an address, or why there is none.
    pub(crate) fn handle_resolved(
        &mut self,
        now: Instant,
        id: u64,
        result: Result<SocketAddr, String>,
    ) {
        let Some(d) = self.resolver.pending.remove(&id) else {
            return;
        };
        let host = d
            .target
            .host
            .as_ref()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let placed = match result {
            Ok(addr) => self
                .dial_out(
                    now,
                    &d.room,
                    DialTarget::direct(d.target.clone(), Some(addr)),
                    d.referred_by.clone(),
                    d.referrer.clone(),
                    &d.local_host,
                )
                .map_err(|status| (status, refused(status))),
            Err(why) => {
                tracing::info!(%host, %why, "dial-out target does not resolve");
                Err((
                    "SIP/2.0 604 Does Not Exist Anywhere",
                    ControlError::Unresolvable(format!("{host}: {why}")),
                ))
            }
        };
        self.finish_dial(now, d, placed);
        self.process_events(now);
    }
}
