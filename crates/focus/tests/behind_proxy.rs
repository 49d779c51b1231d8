//! Behind a proxy (RFC 3261 §12.1.1, §12.2.1.1), in memory: requests arrive
//! from the proxy with a Request-URI that names the proxy's port and with
//! Record-Route. The 2xx that creates a dialog copies Record-Route; Contact
//! and Via name the port confab listens on; requests confab sends inside
//! the dialog carry the route set and go to the proxy.

mod common;

use std::time::Instant;

use common::{header, message, parse, request, sdp, sent, Edge};
use focus::{Focus, FocusConfig};
use sip::Message;

const RR: &str =
    "Record-Route: <sip:127.0.0.1:5060;lr;ftag=fp1>\r\nRecord-Route: <sip:10.0.0.9;lr>\r\n";

/// A request as the proxy at 127.0.0.1:5060 relays it from alice at 5080:
/// its own Via on top, Record-Route, and a Request-URI with its port.
fn relayed(method: &str, call_id: &str, extra: &str, body: &str) -> Message {
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    parse(&format!(
        "{method} sip:big@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpx{call_id}\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5080;received=127.0.0.1;rport=5080;branch=z9hG4bKua{call_id}\r\n{RR}Max-Forwards: 69\r\n\
         From: <sip:alice@example.com>;tag=fa{call_id}\r\nTo: <sip:big@127.0.0.1:5060>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\
         Contact: <sip:alice@127.0.0.1:5080>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn focus() -> (Focus, Edge) {
    let config = FocusConfig {
        entry_exit_tones: false,
        sip_port: Some(5062),
        ..FocusConfig::default()
    };
    common::start(config, 3)
}

#[test]
fn the_200_for_invite_and_subscribe_copies_record_route_and_names_our_port() {
    let (mut f, mut edge) = focus();
    let now = Instant::now();
    // The proxy at 127.0.0.1:5060 relays alice's INVITE and SUBSCRIBE.
    let invite = relayed("INVITE", "c1", "", &sdp(40000, "sendrecv"));
    f.handle_input(now, message(5060, invite));
    let subscribe = relayed(
        "SUBSCRIBE",
        "s1",
        "Event: conference\r\nExpires: 600\r\nAccept: application/conference-info+xml\r\n",
        "",
    );
    f.handle_input(now, message(5060, subscribe));
    let out = sent(&mut f, &mut edge, now);
    let ok: Vec<&Message> = out
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) if r.status == 200 => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(ok.len(), 2, "a 200 for each: {out:#?}");
    for m in ok {
        assert_eq!(
            header(m, "Record-Route"),
            vec!["<sip:127.0.0.1:5060;lr;ftag=fp1>", "<sip:10.0.0.9;lr>"]
        );
        let contact = header(m, "Contact")[0].clone();
        assert!(
            contact.contains("@127.0.0.1:5062"),
            "Contact names the proxy: {contact}"
        );
    }
    // The NOTIFY goes to the proxy with the route set, our port in Via and Contact.
    let notify = out
        .iter()
        .find_map(|(port, m)| match m {
            Message::Request(r) if r.method == sip::Method::Notify => Some((port, m, r)),
            _ => None,
        })
        .expect("a NOTIFY");
    assert_eq!(*notify.0, 5060, "NOTIFY sent to the proxy");
    assert_eq!(notify.2.uri.to_string(), "sip:alice@127.0.0.1:5080");
    assert_eq!(
        header(notify.1, "Route"),
        vec!["<sip:127.0.0.1:5060;lr;ftag=fp1>", "<sip:10.0.0.9;lr>"]
    );
    assert!(header(notify.1, "Via")[0].contains("127.0.0.1:5062;"));
    assert!(header(notify.1, "Contact")[0].contains("@127.0.0.1:5062"));
}

#[test]
fn options_allows_what_the_focus_does() {
    let (mut f, mut edge) = focus();
    let options = request("OPTIONS", "alice", 5080, "o1", None, 1, "", "");
    let now = Instant::now();
    f.handle_input(now, message(5080, options));
    let out = sent(&mut f, &mut edge, now);
    let allow = header(&out[0].1, "Allow").join(", ");
    for m in [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "SUBSCRIBE",
        "REFER",
        "MESSAGE",
    ] {
        assert!(allow.contains(m), "Allow lacks {m}: {allow}");
    }
}
