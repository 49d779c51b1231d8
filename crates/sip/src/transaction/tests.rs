//! Transaction state machines driven on a fake clock: every timer and every
//! retransmission path, and a client and a server wired back to back.

use std::time::{Duration, Instant};

use super::*;
use crate::message::Message;
use crate::parse::{parse_message, ParseLimits};

fn udp(port: u16) -> Peer {
    Peer {
        transport: TransportKind::Udp,
        addr: ([127, 0, 0, 1], port).into(),
    }
}
fn tcp(port: u16) -> Peer {
    Peer {
        transport: TransportKind::Tcp,
        addr: ([127, 0, 0, 1], port).into(),
    }
}

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\n\r\n"
    );
    match parse_message(text.as_bytes(), &ParseLimits::default()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn ack_for(req: &Request, branch: &str, to_tag: &str) -> Request {
    let mut a = Request::new(Method::Ack, req.uri.clone());
    a.headers.push(
        HeaderName::VIA,
        format!("SIP/2.0/UDP 127.0.0.1:5070;branch={branch}"),
    );
    a.headers.push(
        HeaderName::FROM,
        req.headers.get(&HeaderName::FROM).unwrap(),
    );
    a.headers
        .push(HeaderName::TO, format!("<sip:room@127.0.0.1>;tag={to_tag}"));
    a.headers
        .push(HeaderName::CALL_ID, req.headers.call_id().unwrap());
    a.headers.push(HeaderName::CSEQ, "1 ACK");
    a
}

fn drain(l: &mut TransactionLayer) -> (Vec<Transmit>, Vec<Event>) {
    let mut t = Vec::new();
    let mut e = Vec::new();
    while let Some(x) = l.poll_transmit() {
        t.push(x);
    }
    while let Some(x) = l.poll_event() {
        e.push(x);
    }
    (t, e)
}

/// Runs timers up to `until`, returning the instants at which something was sent.
fn run_until(l: &mut TransactionLayer, until: Instant) -> (Vec<Instant>, Vec<Event>) {
    let mut sends = Vec::new();
    let mut events = Vec::new();
    while let Some(at) = l.poll_timeout() {
        if at > until {
            break;
        }
        l.handle_timeout(at);
        let (t, e) = drain(l);
        sends.extend(t.iter().map(|_| at));
        events.extend(e);
    }
    (sends, events)
}

fn status_of(t: &Transmit) -> u16 {
    match parse_message(&t.data, &ParseLimits::default()).unwrap() {
        Message::Response(r) => r.status,
        Message::Request(_) => 0,
    }
}

#[test]
fn client_invite_timer_a_doubles_and_b_fires_at_64_t1() {
    let cfg = TimerConfig::default();
    let mut l = TransactionLayer::new(cfg);
    let t0 = Instant::now();
    let tx = l
        .send_request(t0, request("INVITE", "z9hG4bKa"), udp(5060))
        .unwrap();
    assert_eq!(drain(&mut l).0.len(), 1);
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(60));
    let offsets: Vec<u128> = sends.iter().map(|s| (*s - t0).as_millis()).collect();
    // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
    assert_eq!(offsets, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(events, vec![Event::Timeout { tx }]);
    assert_eq!(l.stats().live, 0);
}

#[test]
fn client_invite_over_tcp_does_not_retransmit() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    l.send_request(t0, request("INVITE", "z9hG4bKb"), tcp(5060))
        .unwrap();
    drain(&mut l);
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(60));
    assert!(sends.is_empty());
    assert_eq!(events.len(), 1);
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn client_non_invite_timer_e_caps_at_t2() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    l.send_request(t0, request("OPTIONS", "z9hG4bKc"), udp(5060))
        .unwrap();
    drain(&mut l);
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(40));
    let offsets: Vec<u128> = sends.iter().map(|s| (*s - t0).as_millis()).collect();
    assert_eq!(&offsets[..5], &[500, 1500, 3500, 7500, 11500]);
    assert!(offsets.windows(2).skip(3).all(|w| w[1] - w[0] == 4000));
    assert!(matches!(events[..], [Event::Timeout { .. }]));
}

#[test]
fn client_non_invite_proceeding_then_final_then_k() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKd");
    let tx = l.send_request(t0, req.clone(), udp(5060)).unwrap();
    drain(&mut l);
    let trying = Response::to_request(&req, 100, "Trying", None);
    l.handle_response(t0 + Duration::from_millis(100), trying);
    let (_, e) = drain(&mut l);
    assert!(matches!(e[..], [Event::Response { .. }]));
    // In Proceeding, Timer E fires at T2 intervals.
    let (sends, _) = run_until(&mut l, t0 + Duration::from_millis(4600));
    assert_eq!(
        sends
            .iter()
            .map(|s| (*s - t0).as_millis())
            .collect::<Vec<_>>(),
        vec![500, 4500]
    );
    let ok = Response::to_request(&req, 200, "OK", Some("x"));
    l.handle_response(t0 + Duration::from_secs(5), ok.clone());
    assert!(matches!(drain(&mut l).1[..], [Event::Response { tx: t, .. }] if t == tx));
    // A retransmitted 200 is absorbed; Timer K ends the transaction after T4.
    l.handle_response(t0 + Duration::from_secs(6), ok);
    assert!(drain(&mut l).1.is_empty());
    run_until(&mut l, t0 + Duration::from_secs(11));
    assert_eq!(l.stats().live, 0);
    assert_eq!(l.stats().response_retransmissions_absorbed, 1);
}

#[test]
fn client_invite_non_2xx_is_acked_and_retransmissions_reack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKe");
    l.send_request(t0, req.clone(), udp(5060)).unwrap();
    drain(&mut l);
    let busy = Response::to_request(&req, 486, "Busy Here", Some("t"));
    l.handle_response(t0, busy.clone());
    let (t, e) = drain(&mut l);
    assert_eq!(t.len(), 1);
    assert!(String::from_utf8_lossy(&t[0].data).starts_with("ACK sip:room@127.0.0.1"));
    assert!(String::from_utf8_lossy(&t[0].data).contains("CSeq: 1 ACK"));
    assert_eq!(e.len(), 1);
    l.handle_response(t0 + Duration::from_secs(1), busy);
    let (t, e) = drain(&mut l);
    assert_eq!((t.len(), e.len()), (1, 0));
    // Timer D: 32 s.
    run_until(&mut l, t0 + Duration::from_secs(31));
    assert_eq!(l.stats().live, 1);
    run_until(&mut l, t0 + Duration::from_secs(33));
    assert_eq!(l.stats().live, 0);
}

#[test]
fn client_invite_2xx_retransmissions_reach_the_tu_until_timer_m() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKf");
    l.send_request(t0, req.clone(), udp(5060)).unwrap();
    drain(&mut l);
    let ok = Response::to_request(&req, 200, "OK", Some("t"));
    l.handle_response(t0, ok.clone());
    l.handle_response(t0 + Duration::from_secs(1), ok);
    let (t, e) = drain(&mut l);
    assert!(t.is_empty(), "the TU, not the transaction, ACKs a 2xx");
    assert_eq!(e.len(), 2);
    run_until(&mut l, t0 + Duration::from_secs(33));
    assert_eq!(l.stats().live, 0);
}

#[test]
fn server_invite_sends_trying_and_absorbs_retransmissions() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKg");
    l.handle_request(t0, req.clone(), udp(5070));
    let (t, e) = drain(&mut l);
    assert_eq!(status_of(&t[0]), 100);
    assert!(matches!(e[..], [Event::Request { .. }]));
    l.handle_request(t0 + Duration::from_millis(500), req, udp(5070));
    let (t, e) = drain(&mut l);
    assert_eq!(
        status_of(&t[0]),
        100,
        "retransmission answered with the last provisional"
    );
    assert!(e.is_empty());
    assert_eq!(l.stats().retransmissions_absorbed, 1);
}

#[test]
fn server_invite_error_timer_g_then_h_without_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKh");
    l.handle_request(t0, req.clone(), udp(5070));
    let Some(Event::Request { tx, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    l.respond(
        t0,
        tx,
        Response::to_request(&req, 486, "Busy Here", Some("s")),
    )
    .unwrap();
    drain(&mut l);
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(40));
    let offsets: Vec<u128> = sends.iter().map(|s| (*s - t0).as_millis()).collect();
    assert_eq!(&offsets[..5], &[500, 1500, 3500, 7500, 11500]);
    assert_eq!(events, vec![Event::Timeout { tx }]);
    assert_eq!(
        l.respond(t0, tx, Response::to_request(&req, 500, "x", None)),
        Err(TxError::NoSuchTransaction)
    );
}

#[test]
fn server_invite_error_ack_confirms_then_timer_i() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKi");
    l.handle_request(t0, req.clone(), udp(5070));
    let Some(Event::Request { tx, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    l.respond(
        t0,
        tx,
        Response::to_request(&req, 404, "Not Found", Some("s")),
    )
    .unwrap();
    l.handle_request(
        t0 + Duration::from_millis(100),
        ack_for(&req, "z9hG4bKi", "s"),
        udp(5070),
    );
    let (t, e) = drain(&mut l);
    assert_eq!(t.len(), 1, "only the 404 itself");
    assert!(e.is_empty(), "the ACK of a non-2xx is absorbed");
    let (sends, _) = run_until(&mut l, t0 + Duration::from_secs(6));
    assert!(sends.is_empty(), "no Timer G after the ACK");
    assert_eq!(l.stats().live, 0, "Timer I (T4) ended it");
}

#[test]
fn server_2xx_is_retransmitted_until_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKj");
    l.handle_request(t0, req.clone(), udp(5070));
    let Some(Event::Request { tx, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    l.respond(t0, tx, Response::to_request(&req, 200, "OK", Some("s")))
        .unwrap();
    drain(&mut l);
    let (sends, _) = run_until(&mut l, t0 + Duration::from_secs(2));
    assert_eq!(sends.len(), 2, "at 0.5 s and 1.5 s");
    l.handle_request(
        t0 + Duration::from_secs(2),
        ack_for(&req, "z9hG4bKnew", "s"),
        udp(5070),
    );
    let (_, e) = drain(&mut l);
    assert!(matches!(
        e[..],
        [Event::Ack {
            matched_2xx: true,
            ..
        }]
    ));
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(40));
    assert!(sends.is_empty());
    assert!(events.is_empty());
    assert_eq!(l.stats().live, 0);
}

#[test]
fn server_2xx_without_ack_reports_ack_timeout() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKk");
    l.handle_request(t0, req.clone(), udp(5070));
    let Some(Event::Request { tx, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    l.respond(t0, tx, Response::to_request(&req, 200, "OK", Some("s")))
        .unwrap();
    drain(&mut l);
    // The retransmitted INVITE is absorbed while Accepted (RFC 6026).
    l.handle_request(t0 + Duration::from_millis(10), req, udp(5070));
    assert!(drain(&mut l).0.is_empty());
    let (sends, events) = run_until(&mut l, t0 + Duration::from_secs(40));
    assert_eq!(sends.len(), 10, "0.5,1.5,3.5,7.5,11.5,…,31.5 s");
    assert!(matches!(&events[..], [Event::AckTimeout { tx: t, .. }] if *t == tx));
    let stats = l.stats();
    assert_eq!((stats.retransmissions_sent, stats.timeouts), (10, 1));
    assert_eq!(stats.retransmissions_absorbed, 1);
}

#[test]
fn server_non_invite_timer_j_and_retransmitted_response() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKl");
    l.handle_request(t0, req.clone(), udp(5070));
    let (t, e) = drain(&mut l);
    assert!(t.is_empty(), "no 100 for non-INVITE");
    let Some(Event::Request { tx, .. }) = e.into_iter().next() else {
        panic!()
    };
    l.handle_request(t0, req.clone(), udp(5070));
    assert!(drain(&mut l).0.is_empty(), "absorbed while Trying");
    l.respond(t0, tx, Response::to_request(&req, 200, "OK", Some("s")))
        .unwrap();
    l.handle_request(t0 + Duration::from_secs(1), req.clone(), udp(5070));
    assert_eq!(drain(&mut l).0.len(), 2, "the 200 and its resend");
    assert_eq!(
        l.respond(t0, tx, Response::to_request(&req, 200, "OK", None)),
        Err(TxError::AlreadyFinal)
    );
    run_until(&mut l, t0 + Duration::from_secs(33));
    assert_eq!(l.stats().live, 0);
    // Over TCP Timer J is zero.
    l.handle_request(t0, request("OPTIONS", "z9hG4bKm"), tcp(5070));
    let Some(Event::Request { tx, request: r, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    l.respond(t0, tx, Response::to_request(&r, 200, "OK", None))
        .unwrap();
    run_until(&mut l, t0);
    assert_eq!(l.stats().live, 0);
}

#[test]
fn cancel_finds_its_invite_and_rfc2543_keys_work() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKn");
    l.handle_request(t0, inv.clone(), udp(5070));
    let Some(Event::Request { tx: inv_tx, .. }) = drain(&mut l).1.pop() else {
        panic!()
    };
    let cancel = build_cancel(&inv);
    l.handle_request(t0, cancel.clone(), udp(5070));
    let Some(Event::Request {
        tx: cancel_tx,
        request,
        ..
    }) = drain(&mut l).1.pop()
    else {
        panic!()
    };
    assert_ne!(inv_tx, cancel_tx);
    assert_eq!(l.find_invite(&request), Some(inv_tx));
    assert!(l.is_pending(inv_tx));
    // RFC 2543 branch (no magic cookie) still matches retransmissions.
    let old = request_2543();
    l.handle_request(t0, old.clone(), udp(5071));
    l.handle_request(t0, old, udp(5071));
    let (_, e) = drain(&mut l);
    assert_eq!(e.len(), 1);
}

fn request_2543() -> Request {
    let text = "INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
                From: <sip:+13035551111@ift.client.example.net;user=phone>\r\nTo: sip:+16505552222@ss1.example.net;user=phone\r\n\
                Call-ID: 1717@ift.client.example.com\r\nCSeq: 56 INVITE\r\n\r\n";
    match parse_message(text.as_bytes(), &ParseLimits::default()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// A client and a server layer back to back over a lossy in-memory link.
#[test]
fn pair_over_lossy_link_completes() {
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let mut now = Instant::now();
    let req = request("INVITE", "z9hG4bKpair");
    let ctx = client.send_request(now, req, udp(5060)).unwrap();
    let mut dropped_first = false;
    let mut got_final = false;
    for _ in 0..200 {
        while let Some(t) = client.poll_transmit() {
            // Lose the first INVITE: Timer A must recover it.
            if !dropped_first {
                dropped_first = true;
                continue;
            }
            if let Ok(Message::Request(r)) = parse_message(&t.data, &ParseLimits::default()) {
                server.handle_request(now, r, udp(5070));
            }
        }
        while let Some(e) = server.poll_event() {
            if let Event::Request { tx, request, .. } = e {
                if request.method == Method::Invite {
                    server
                        .respond(
                            now,
                            tx,
                            Response::to_request(&request, 603, "Decline", Some("srv")),
                        )
                        .unwrap();
                }
            }
        }
        while let Some(t) = server.poll_transmit() {
            match parse_message(&t.data, &ParseLimits::default()) {
                Ok(Message::Response(r)) => client.handle_response(now, r),
                Ok(Message::Request(_)) | Err(_) => {}
            }
        }
        while let Some(e) = client.poll_event() {
            if let Event::Response { tx, response } = e {
                assert_eq!(tx, ctx);
                if response.status == 603 {
                    got_final = true;
                }
            }
        }
        let next = [client.poll_timeout(), server.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = next;
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    assert!(got_final);
    assert_eq!(client.stats().live, 0);
    assert_eq!(server.stats().live, 0);
}

#[test]
fn a_burst_of_transactions_gives_its_memory_back_once_over() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    for i in 0..5000 {
        let req = request("OPTIONS", &format!("z9hG4bKburst{i}"));
        l.handle_request(t0, req.clone(), udp(5070));
        let Some(Event::Request { tx, .. }) = drain(&mut l).1.pop() else {
            panic!("request {i} not delivered")
        };
        l.respond(t0, tx, Response::to_request(&req, 200, "OK", None))
            .unwrap();
        drain(&mut l);
    }
    assert_eq!(l.stats().live, 5000);
    assert!(l.has_slack());
    // While they live, shrinking keeps what they use.
    l.shrink();
    assert_eq!(l.stats().live, 5000);
    assert!(l.has_slack());
    run_until(&mut l, t0 + Duration::from_secs(33));
    assert_eq!(l.stats().live, 0);
    l.shrink();
    assert!(!l.has_slack(), "capacity kept after the burst ended");
    // And the layer still works afterwards.
    let req = request("OPTIONS", "z9hG4bKafter");
    l.handle_request(t0 + Duration::from_secs(34), req, udp(5070));
    assert!(matches!(drain(&mut l).1.pop(), Some(Event::Request { .. })));
}
