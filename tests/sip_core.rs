//! The running binary answers over real UDP and TCP sockets: OPTIONS,
//! unknown methods, Max-Forwards, Require, malformed and oversized messages,
//! retransmissions, idle TCP connections, and a flood of garbage.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn options_over_udp_lists_allow_accept_supported() {
    let s = Server::start(&[]);
    let c = UdpClient::new();
    c.send(&options(&c, s.sip, "opt1"), s.sip);
    let r = c.recv_timeout(WAIT).expect("answer");
    assert_eq!(status(&r), 200);
    assert!(header(&r, "Allow").unwrap().contains("INVITE"));
    assert_eq!(header(&r, "Accept"), Some("application/sdp, text/plain"));
    assert_eq!(header(&r, "Allow-Events"), Some("conference"));
    assert!(header(&r, "Supported").is_some());
    let via = header(&r, "Via").unwrap();
    assert!(via.contains(&format!("rport={}", c.addr().port())), "{via}");
    assert!(header(&r, "To").unwrap().contains("tag="));
}

#[test]
fn retransmitted_request_gets_the_same_answer() {
    let s = Server::start(&[]);
    let c = UdpClient::new();
    let m = options(&c, s.sip, "retx");
    c.send(&m, s.sip);
    let first = c.recv_timeout(WAIT).unwrap();
    c.send(&m, s.sip);
    let second = c.recv_timeout(WAIT).unwrap();
    assert_eq!(
        header(&first, "To"),
        header(&second, "To"),
        "same transaction, same tag"
    );
}

#[test]
fn status_codes_for_what_is_not_routed() {
    let s = Server::start(&[]);
    let c = UdpClient::new();
    let cases: &[(&str, &str, u16)] = &[
        ("FOOBAR", "", 501),
        ("PUBLISH", "", 405),
        ("MESSAGE", "", 403),
        ("INVITE", "Max-Forwards: 0\r\n", 483),
        ("OPTIONS", "Require: nothing-we-know\r\n", 420),
        ("BYE", "", 481),
    ];
    for (i, (method, extra, want)) in cases.iter().enumerate() {
        let id = format!("case{i}");
        let mut m = String::from_utf8(request(method, c.addr(), s.sip, &id, extra)).unwrap();
        if *extra == "Max-Forwards: 0\r\n" {
            m = m.replace("Max-Forwards: 70\r\n", "");
        }
        c.send(m.as_bytes(), s.sip);
        let rs = c.responses_until_final(WAIT);
        let last = rs.last().unwrap_or_else(|| panic!("{method}: no answer"));
        assert_eq!(status(last), *want, "{method}: {last}");
        match want {
            405 | 501 => assert!(header(last, "Allow").is_some()),
            403 => assert!(
                last.lines().next().unwrap().contains("participants"),
                "{last}"
            ),
            420 => assert_eq!(header(last, "Unsupported"), Some("nothing-we-know")),
            _ => {}
        }
    }
}

#[test]
fn invite_to_an_unknown_room_gets_trying_then_404_and_ack_stops_retransmission() {
    let s = Server::start(&["--no-auto-create"]);
    let c = UdpClient::new();
    c.send(&request("INVITE", c.addr(), s.sip, "inv1", ""), s.sip);
    let rs = c.responses_until_final(WAIT);
    assert_eq!(status(&rs[0]), 100);
    assert_eq!(status(rs.last().unwrap()), 404);
    let to = header(rs.last().unwrap(), "To").unwrap().to_owned();
    let ack = format!(
        "ACK sip:room@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-inv1;rport\r\nFrom: <sip:tester@{}>;tag=t-inv1\r\n\
         To: {to}\r\nCall-ID: inv1@test\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        s.sip,
        c.addr(),
        c.addr()
    );
    c.send(ack.as_bytes(), s.sip);
    // Timer G would resend the 404 at 0.5 s; after the ACK nothing comes.
    assert!(c.recv_timeout(Duration::from_millis(1500)).is_none());
}

#[test]
fn malformed_requests_get_400_with_a_reason_and_505() {
    let s = Server::start(&[]);
    let c = UdpClient::new();
    let bad_cseq = String::from_utf8(request("OPTIONS", c.addr(), s.sip, "bad1", ""))
        .unwrap()
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    c.send(bad_cseq.as_bytes(), s.sip);
    let r = c.recv_timeout(WAIT).unwrap();
    assert_eq!(status(&r), 400);
    assert!(r.lines().next().unwrap().contains("CSeq"), "{r}");
    let v7 = String::from_utf8(request("OPTIONS", c.addr(), s.sip, "bad2", ""))
        .unwrap()
        .replace(" SIP/2.0\r\nVia", " SIP/7.0\r\nVia");
    c.send(v7.as_bytes(), s.sip);
    assert_eq!(status(&c.recv_timeout(WAIT).unwrap()), 505);
    // A response nobody asked for and a response with a bad status are dropped.
    c.send(
        b"SIP/2.0 4294967301 better not\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\n\r\n",
        s.sip,
    );
    assert!(c.recv_timeout(Duration::from_millis(300)).is_none());
}

#[test]
fn oversized_datagram_is_513_and_truncated_ones_do_no_harm() {
    let s = Server::start(&["--max-message", "2000"]);
    let c = UdpClient::new();
    let pad = format!("X-Pad: {}\r\n", "p".repeat(3000));
    c.send(&request("OPTIONS", c.addr(), s.sip, "big", &pad), s.sip);
    let r = c.recv_timeout(WAIT).unwrap();
    assert_eq!(status(&r), 513);
    let full = options(&c, s.sip, "trunc");
    for cut in [10, 40, 80, 150, full.len() - 3] {
        c.send(&full[..cut], s.sip);
    }
    while c.recv_timeout(Duration::from_millis(200)).is_some() {}
    c.send(&options(&c, s.sip, "after"), s.sip);
    assert_eq!(status(&c.recv_timeout(WAIT).unwrap()), 200);
}

#[test]
fn tcp_reuses_the_connection_and_frames_fragments() {
    let s = Server::start(&[]);
    let mut t = TcpClient::connect(s.sip);
    let local = t.addr();
    let mk = |id: &str| {
        String::from_utf8(request("OPTIONS", local, s.sip, id, ""))
            .unwrap()
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
    };
    let two = format!("{}{}", mk("tcp1"), mk("tcp2"));
    // Two requests in arbitrary fragments on one connection.
    for chunk in two.as_bytes().chunks(37) {
        t.send(chunk);
        std::thread::sleep(Duration::from_millis(1));
    }
    let a = t.recv(WAIT).expect("first");
    let b = t.recv(WAIT).expect("second");
    assert_eq!((status(&a), status(&b)), (200, 200));
    assert_eq!(header(&a, "Call-ID"), Some("tcp1@test"));
    assert_eq!(header(&b, "Call-ID"), Some("tcp2@test"));
}

#[test]
fn tcp_bad_content_length_closes_the_connection_and_idle_ones_close() {
    let s = Server::start(&["--tcp-idle-secs", "1"]);
    let mut t = TcpClient::connect(s.sip);
    t.send(b"OPTIONS sip:x@y SIP/2.0\r\nContent-Length: -5\r\n\r\n");
    assert!(t.closed_within(WAIT));
    let mut idle = TcpClient::connect(s.sip);
    assert!(
        idle.closed_within(Duration::from_secs(4)),
        "idle connection closed after 1 s"
    );
}

#[test]
fn tcp_connection_limit_per_source() {
    let s = Server::start(&["--max-tcp-per-ip", "3"]);
    let mut conns: Vec<TcpClient> = (0..3).map(|_| TcpClient::connect(s.sip)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpClient::connect(s.sip);
    assert!(
        extra.closed_within(WAIT),
        "a fourth connection from one IP is refused"
    );
    let local = conns[0].addr();
    let m = String::from_utf8(request("OPTIONS", local, s.sip, "lim", ""))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    conns[0].send(m.as_bytes());
    assert_eq!(status(&conns[0].recv(WAIT).unwrap()), 200);
}

#[test]
fn garbage_flood_leaves_the_server_healthy() {
    let s = Server::start(&[]);
    let flooder = UdpClient::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 1400) as usize + 1;
        let junk: Vec<u8> = (0..len)
            .map(|j| (x.rotate_left(j as u32 % 64) & 0xff) as u8)
            .collect();
        flooder.send(&junk, s.sip);
        if i % 500 == 0 {
            flooder.send(b"INVITE sip:x SIP/2.0\r\nVia: garbage\r\n\r\n", s.sip);
        }
    }
    // The kernel drops datagrams while its buffer is full, so the probe is
    // retransmitted as a UA's Timer E would.
    let c = UdpClient::new();
    let probe = options(&c, s.sip, "healthy");
    let answer = (0..10).find_map(|_| {
        c.send(&probe, s.sip);
        c.recv_timeout(Duration::from_millis(500))
    });
    assert_eq!(
        status(&answer.expect("server answers after the flood")),
        200
    );
}

/// Issue 11, defect 1: a TCP peer that sends and never reads. Its
/// answers fill the socket buffers and the connection's writer queue; the
/// focus must go on answering everyone else meanwhile (it drops, counts
/// and logs what that one peer cannot take).
#[test]
fn a_tcp_peer_that_never_reads_delays_nobody_else() {
    let s = Server::start(&["--rate-per-source", "1000000"]);
    let sip = s.sip;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flood = stop.clone();
    // Several MB of answers (more than any socket buffer holds), never read.
    let flood = std::thread::spawn(move || {
        let mut t = TcpClient::connect(sip);
        let local = t.addr();
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend(
                String::from_utf8(request("OPTIONS", local, sip, &format!("nr{i}"), ""))
                    .unwrap()
                    .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
                    .into_bytes(),
            );
        }
        t.stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut sent = 0;
        while !stop_flood.load(std::sync::atomic::Ordering::Relaxed) && sent < 60_000 {
            if std::io::Write::write_all(&mut t.stream, &batch).is_ok() {
                sent += 200;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        t // kept open, unread, until the end
    });
    // Meanwhile a UDP peer asks every 100 ms for 6 s: every ask is answered, promptly.
    let c = UdpClient::new();
    let mut slowest = Duration::ZERO;
    let mut unanswered = 0;
    for i in 0..60 {
        let asked = std::time::Instant::now();
        c.send(&options(&c, sip, &format!("udp{i}")), sip);
        match c.recv_timeout(Duration::from_secs(2)) {
            Some(r) => {
                assert_eq!(status(&r), 200);
                slowest = slowest.max(asked.elapsed());
            }
            None => unanswered += 1,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _unread = flood.join().unwrap();
    eprintln!("udp OPTIONS during the flood: slowest {slowest:?}, {unanswered} unanswered");
    // Before the fix the loop stopped for good once the queue was full:
    // 57 of 60 asks unanswered. Latency is printed only (CI shares 2 cores).
    assert_eq!(
        unanswered, 0,
        "the focus waited on the peer that does not read"
    );
}
