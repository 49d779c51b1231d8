//! Where responses go (RFC 3261 §18.2.2 with RFC 3581), and stamping
//! `received`/`rport` on incoming requests (§18.2.1).

use std::net::{IpAddr, SocketAddr};

use crate::header::{HeaderName, Via};
use crate::message::Request;
use crate::transaction::Peer;
use crate::uri::Host;

/// Adds `received` (when the sent-by host is not the source IP) and fills a
/// bare `rport` with the source port, on the top Via of a request.
pub fn stamp_received(req: &mut Request, source: SocketAddr) {
    let Some(first_line) = req
        .headers
        .get_all(&HeaderName::VIA)
        .next()
        .map(str::to_owned)
    else {
        return;
    };
    let elements = crate::scan::split_commas(&first_line);
    let Ok(mut via) = Via::parse(elements[0]) else {
        return;
    };
    let sent_by_ip = match &via.host {
        Host::V4(a) => Some(IpAddr::V4(*a)),
        Host::V6(a) => Some(IpAddr::V6(*a)),
        Host::Name(_) => None,
    };
    let mut changed = false;
    if sent_by_ip != Some(source.ip()) || via.params.has("rport") {
        via.params.set("received", Some(&source.ip().to_string()));
        changed = true;
    }
    if via.params.get("rport") == Some(None) {
        via.params.set("rport", Some(&source.port().to_string()));
        changed = true;
    }
    if !changed {
        return;
    }
    let mut rebuilt = vec![via.to_string()];
    rebuilt.extend(elements[1..].iter().map(|s| (*s).to_owned()));
    let mut lines: Vec<String> = req
        .headers
        .get_all(&HeaderName::VIA)
        .map(str::to_owned)
        .collect();
    lines[0] = rebuilt.join(", ");
    req.headers.remove(&HeaderName::VIA);
    for l in lines.into_iter().rev() {
        req.headers.push_front(HeaderName::VIA, l);
    }
}

/// The peer that responses to a request received from `source` go to.
/// Reliable transports answer on the same connection; over UDP the
/// `maddr`, `received` and `rport` of the top Via decide, falling back to the
/// source address when the Via is unreadable.
pub fn response_target(req: &Request, source: Peer) -> Peer {
    if source.transport.is_reliable() {
        return source;
    }
    let Some(via) = req.headers.top_via() else {
        return source;
    };
    if let Some(Ok(ip)) = via.params.value("maddr").map(str::parse::<IpAddr>) {
        return Peer {
            transport: source.transport,
            addr: SocketAddr::new(ip, via.port.unwrap_or(5060)),
        };
    }
    let ip = match via.received().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => ip,
        _ => match via.host {
            Host::V4(a) => IpAddr::V4(a),
            Host::V6(a) => IpAddr::V6(a),
            Host::Name(_) => source.addr.ip(),
        },
    };
    let port = match via.rport() {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(5060),
    };
    Peer {
        transport: source.transport,
        addr: SocketAddr::new(ip, port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::parse::{parse_message, ParseLimits};
    use crate::transaction::TransportKind;

    fn req(via: &str) -> Request {
        let t = format!("OPTIONS sip:x@y SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bKp\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n");
        let Ok(Message::Request(r)) = parse_message(t.as_bytes(), &ParseLimits::default()) else {
            panic!()
        };
        r
    }

    #[test]
    fn rport_behind_nat() {
        let mut r = req("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport");
        let src: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        stamp_received(&mut r, src);
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.received(), Some("192.0.2.7"));
        assert_eq!(via.rport(), Some(Some(40000)));
        assert_eq!(r.headers.vias().len(), 2);
        let target = response_target(
            &r,
            Peer {
                transport: TransportKind::Udp,
                addr: src,
            },
        );
        assert_eq!(target.addr, src);
    }

    #[test]
    fn received_without_rport_uses_via_port() {
        let mut r = req("SIP/2.0/UDP phone.example.com:5070;branch=z9hG4bK1");
        let src: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        stamp_received(&mut r, src);
        let target = response_target(
            &r,
            Peer {
                transport: TransportKind::Udp,
                addr: src,
            },
        );
        assert_eq!(target.addr, "192.0.2.7:5070".parse().unwrap());
        let tcp = Peer {
            transport: TransportKind::Tcp,
            addr: src,
        };
        assert_eq!(response_target(&r, tcp), tcp);
    }

    #[test]
    fn same_host_is_not_stamped() {
        let mut r = req("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1");
        stamp_received(&mut r, "192.0.2.7:5070".parse().unwrap());
        assert_eq!(r.headers.top_via().unwrap().received(), None);
    }
}
