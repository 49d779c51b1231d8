//! Where a dial-out (the control API's or a REFER's) may go, and how: to
//! a registered user, forked to all their contacts at once; to a target
//! the `--dial-out-allow` patterns name; nowhere else, so that a
//! participant's REFER cannot turn confab into a free gateway. Each room
//! may place only so many dial-outs a minute.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use control::ControlError;
use registrar::Binding;
use sip::transaction::Peer;

use crate::core::Focus;
use crate::dialout::{refused, DialTarget, Fork};
use crate::resolve::PendingDial;

/// A refusal: the sipfrag status line for a referrer, the error for the API.
type Refusal = (&'static str, ControlError);

const WINDOW: Duration = Duration::from_secs(60);

/// Dial-outs counted per room in the current minute.
#[derive(Default)]
pub(crate) struct DialRate {
    rooms: HashMap<String, (Instant, u32)>,
    next_fork: u64,
}

impl DialRate {
    /// Counts one dial-out from `room`; false when over `limit` this minute.
    fn admit(&mut self, now: Instant, room: &str, limit: u32) -> bool {
        let w = self.rooms.entry(room.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(w.0) >= WINDOW {
            *w = (now, 0);
        }
        if w.1 >= limit {
            return false;
        }
        w.1 += 1;
        true
    }

    /// Forgets the windows that are over.
    pub(crate) fn tidy(&mut self, now: Instant) {
        self.rooms
            .retain(|_, w| now.saturating_duration_since(w.0) < WINDOW);
        sip::transaction::shrink_map(&mut self.rooms);
    }
}

impl Focus {
    /// Places a dial-out: forked to a registered user's contacts, or to
    /// an allowed target (its host name looked up at the io edge first).
    /// The API caller or the referrer hears the outcome.
    pub(crate) fn start_dial(&mut self, now: Instant, mut dial: PendingDial) {
        let result = match self.check_dial(now, &dial.room, &dial.target) {
            Err(e) => Err(e),
            Ok(Some(contacts)) => self.fork(now, &dial, contacts),
            Ok(None) => match dial.target.host.clone() {
                Some(sip::Host::Name(host)) => {
                    let port = dial.target.port.unwrap_or(5060);
                    match self.resolve_then_dial(host, port, dial) {
                        Ok(()) => return,
                        Err(back) => {
                            dial = *back;
                            Err((
                                "SIP/2.0 503 Service Unavailable",
                                ControlError::Refused("too many dial-outs wait for DNS".into()),
                            ))
                        }
                    }
                }
                _ => self
                    .dial_out(
                        now,
                        &dial.room,
                        DialTarget::direct(dial.target.clone(), None),
                        dial.referred_by.clone(),
                        dial.referrer.clone(),
                        &dial.local_host,
                    )
                    .map_err(|s| (s, refused(s))),
            },
        };
        self.finish_dial(now, dial, result);
    }

    /// Tells the API caller the new participant's id or why not; tells a
    /// referrer only a failure (progress comes from the dial-out itself).
    pub(crate) fn finish_dial(
        &mut self,
        now: Instant,
        dial: PendingDial,
        result: Result<String, Refusal>,
    ) {
        match (dial.api_reply, result) {
            (Some(reply), r) => {
                let _ = reply.send(r.map_err(|(_, e)| e));
            }
            (None, Err((status, _))) => self.sipfrag(now, &dial.referrer, status, true),
            (None, Ok(_)) => {}
        }
    }

    /// The rate, then the target: Some(contacts) for a registered user,
    /// None for an allowed target.
    fn check_dial(
        &mut self,
        now: Instant,
        room: &str,
        target: &sip::Uri,
    ) -> Result<Option<Vec<Binding>>, Refusal> {
        if self.draining {
            return Err((
                "SIP/2.0 503 Service Unavailable",
                ControlError::Refused("the server is shutting down".into()),
            ));
        }
        let limit = self.config.dial_out.per_room_per_minute;
        if !self.dial_rate.admit(now, room, limit) {
            tracing::info!(%room, limit, "dial-out rate limit reached");
            return Err(("SIP/2.0 503 Service Unavailable", ControlError::RateLimited));
        }
        let contacts = self.registered(now, &aor_of(target));
        if !contacts.is_empty() {
            return Ok(Some(contacts));
        }
        let text = aor_of(target);
        if self
            .config
            .dial_out
            .allow
            .iter()
            .any(|p| glob(p.as_bytes(), text.as_bytes()))
        {
            return Ok(None);
        }
        tracing::info!(%room, target = %text, "dial-out target not allowed");
        Err(("SIP/2.0 403 Forbidden", ControlError::NotAllowed(text)))
    }

    /// One INVITE per contact, in parallel, sharing a Call-ID and From tag
    /// (the participant's id); the first 2xx wins and the others get CANCEL.
    fn fork(
        &mut self,
        now: Instant,
        dial: &PendingDial,
        contacts: Vec<Binding>,
    ) -> Result<String, Refusal> {
        self.dial_rate.next_fork += 1;
        let fork = Fork {
            group: self.dial_rate.next_fork,
            call_id: format!("{:016x}@confab", rand::Rng::random::<u64>(&mut self.rng)),
            tag: self.new_tag(),
            aor: aor_of(&dial.target),
        };
        let mut placed = None;
        let mut last_err = "SIP/2.0 480 Temporarily Unavailable";
        for b in contacts {
            let Some(next_hop) = next_hop(&b) else {
                tracing::debug!(contact = %b.contact, "a registered contact with no address to reach");
                continue;
            };
            let target = DialTarget {
                uri: b.contact.uri.clone(),
                resolved: None,
                next_hop: Some(next_hop),
                route: b.path.clone(),
                fork: Some(fork.clone()),
            };
            match self.dial_out(
                now,
                &dial.room,
                target,
                dial.referred_by.clone(),
                dial.referrer.clone(),
                &dial.local_host,
            ) {
                Ok(tag) => placed = Some(tag),
                Err(e) => last_err = e,
            }
        }
        placed.ok_or((last_err, refused(last_err)))
    }
}

/// A URI as an address of record: scheme, user and host, no parameters.
fn aor_of(uri: &sip::Uri) -> String {
    let mut u = uri.clone();
    u.params = Default::default();
    u.headers.clear();
    u.to_string()
}

/// Where requests to a registered contact go: the first hop of its Path
/// (the proxy in front); back over the flow it registered on when that is
/// a connection (RFC 5626 §5.3: a phone on its own TCP or TLS connection
/// is reachable only that way), when the contact asks for it (`ob`), or
/// when the contact names another address than the REGISTER came from (a
/// phone behind NAT); else the contact's own address.
fn next_hop(b: &Binding) -> Option<Peer> {
    if let Some(first) = b.path.first() {
        let uri = sip::header::NameAddr::parse(first).ok()?.uri;
        return uri_peer(&uri);
    }
    let contact = uri_peer(&b.contact.uri);
    match (b.source, contact) {
        (Some(flow), Some(c)) => {
            let reuse = flow.transport.is_reliable()
                || b.contact.uri.params.has("ob")
                || flow.addr.ip() != c.addr.ip();
            Some(if reuse { flow } else { c })
        }
        (Some(flow), None) => Some(flow),
        (None, c) => c,
    }
}

fn uri_peer(uri: &sip::Uri) -> Option<Peer> {
    let ip = match uri.host.as_ref()? {
        sip::Host::V4(a) => std::net::IpAddr::V4(*a),
        sip::Host::V6(a) => std::net::IpAddr::V6(*a),
        sip::Host::Name(_) => return None,
    };
    let transport = crate::dialout::uri_transport(uri);
    Some(Peer {
        transport,
        addr: SocketAddr::new(
            ip,
            uri.port.unwrap_or(crate::dialout::default_port(transport)),
        ),
    })
}

/// `*` matches any run of bytes; everything else itself, ASCII case-insensitively.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| glob(p.as_bytes(), t.as_bytes());
        assert!(m("*", "sip:bob@10.0.0.1"));
        assert!(m("sip:*@10.0.0.*", "sip:bob@10.0.0.17:5070"));
        assert!(!m("sip:*@10.0.0.*", "sip:bob@10.0.1.17"));
        assert!(m(
            "sip:+4420*@GW.example.com",
            "sip:+442071234567@gw.example.com"
        ));
        assert!(!m(
            "sip:+4420*@gw.example.com",
            "sip:+331234@gw.example.com"
        ));
        assert!(!m("", "x"));
        assert!(m("", ""));
    }

    #[test]
    fn rate_counts_per_room_per_minute() {
        let mut r = DialRate::default();
        let t0 = Instant::now();
        assert!(r.admit(t0, "a", 2));
        assert!(r.admit(t0, "a", 2));
        assert!(!r.admit(t0, "a", 2));
        assert!(r.admit(t0, "b", 2));
        assert!(r.admit(t0 + WINDOW, "a", 2));
    }
}
