//! Dial-in end to end: the server runs in-process on loopback; test UAs
//! call a room over UDP with SDP, send tones over RTP, and what each one
//! hears is checked by its spectrum. Hold, DTMF self-mute, BYE, CANCEL,
//! session timer expiry, RTP timeout and refusals are checked too, and
//! every path ends with the media server holding no participant.

mod common;

use std::time::{Duration, Instant};

use common::header;
use common::ua::Ua;
use confab::{Server, ServerConfig};
use media_server::codec::CodecKind;
use media_server::tone::goertzel;

async fn server(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    common::in_process(40000, |c| {
        tweak(c);
    })
    .await
}

fn power(samples: &[i16], rate: u32, f: f64) -> f64 {
    if samples.len() < 400 {
        return 0.0;
    }
    goertzel(&samples[samples.len() / 4..], rate, f)
}

fn assert_hears(ua: &Ua, present: &[f64], absent: &[f64]) {
    let heard = ua.heard();
    let rate = ua.kind.pcm_rate();
    let weakest = present
        .iter()
        .map(|&f| power(&heard, rate, f))
        .fold(f64::MAX, f64::min);
    assert!(
        weakest > 1000.0,
        "{}: present tones too weak ({weakest}), {} samples",
        ua.call_id,
        heard.len()
    );
    for &f in absent {
        let p = power(&heard, rate, f);
        assert!(
            p * 100.0 < weakest,
            "{} hears {f} Hz: {p} vs {weakest}",
            ua.call_id
        );
    }
}

/// Polls until the media server holds no participant (or fails after 5 s).
async fn media_empties(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.media.participant_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "media server still holds {} participants",
            s.media.participant_count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

use common::blocking;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_callers_hear_each_other_hold_and_dtmf_mute_then_bye() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    let s_ref = &s;
    let (a, b, c) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::G722, 1000.0);
        let mut c = Ua::new(addr, CodecKind::Opus, 2200.0);
        assert_eq!(a.call("room1", ""), 200);
        let contact = header(&a.last_response, "Contact").unwrap().to_owned();
        assert!(
            contact.contains(";isfocus") && contact.contains("sip:room1@"),
            "{contact}"
        );
        assert_eq!(b.call("room1", ""), 200);
        assert_eq!(c.call("room1", ""), 200);
        std::thread::sleep(Duration::from_millis(1500));
        (a, b, c)
    })
    .await;
    assert_eq!(s_ref.media.participant_count(), 3);
    let (mut a, b, c) = blocking(move || {
        let mut a = a;
        assert_hears(&a, &[1000.0, 2200.0], &[440.0]);
        assert_hears(&b, &[440.0, 2200.0], &[1000.0]);
        assert_hears(&c, &[440.0, 1000.0], &[2200.0]);
        // A holds: its tone leaves the mix.
        assert_eq!(a.reinvite("room1", "sendonly"), 200);
        assert!(
            a.last_response.contains("a=recvonly"),
            "answer to sendonly is recvonly"
        );
        std::thread::sleep(Duration::from_millis(300));
        b.heard();
        c.heard();
        std::thread::sleep(Duration::from_millis(1000));
        assert_hears(&b, &[2200.0], &[440.0, 1000.0]);
        // Resume, then B mutes itself with *6.
        assert_eq!(a.reinvite("room1", "sendrecv"), 200);
        b.send_dtmf('*');
        b.send_dtmf('6');
        std::thread::sleep(Duration::from_millis(400));
        a.heard();
        c.heard();
        std::thread::sleep(Duration::from_millis(1000));
        assert_hears(&c, &[440.0], &[1000.0, 2200.0]);
        assert_hears(&a, &[2200.0], &[1000.0, 440.0]);
        (a, b, c)
    })
    .await;
    let (mut b, mut c) = (b, c);
    blocking(move || {
        assert_eq!(a.bye("room1"), 200);
        assert_eq!(b.bye("room1"), 200);
        assert_eq!(c.bye("room1"), 200);
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_the_answer_is_487_and_leaves_nothing() {
    let s = server(|c| c.focus.answer_delay = Duration::from_secs(2)).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut ua = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let sdp = ua.sdp("sendrecv");
        let invite = ua.request("INVITE", "room2", "", Some(&sdp));
        std::thread::sleep(Duration::from_millis(300));
        // CANCEL: same branch and CSeq number as the INVITE.
        let cancel = invite
            .split("\r\n")
            .filter(|l| {
                !l.starts_with("Content-")
                    && !l.starts_with("Contact")
                    && !l.starts_with("v=")
                    && !l.is_empty()
            })
            .map(|l| {
                if l.starts_with("INVITE ") {
                    l.replacen("INVITE", "CANCEL", 1)
                } else if l.starts_with("CSeq:") {
                    "CSeq: 1 CANCEL".into()
                } else {
                    l.to_owned()
                }
            })
            .filter(|l| {
                !l.starts_with("o=")
                    && !l.starts_with("s=")
                    && !l.starts_with("c=")
                    && !l.starts_with("t=")
                    && !l.starts_with("m=")
                    && !l.starts_with("a=")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\nContent-Length: 0\r\n\r\n";
        ua.sip.send_to(cancel.as_bytes(), addr).unwrap();
        let mut statuses = Vec::new();
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !statuses.contains(&487) {
            if let Ok((n, _)) = ua.sip.recv_from(&mut buf) {
                statuses.push(common::status(&String::from_utf8_lossy(&buf[..n])));
            }
        }
        assert!(statuses.contains(&180), "{statuses:?}");
        assert!(statuses.contains(&200), "200 for the CANCEL: {statuses:?}");
        assert!(statuses.contains(&487), "487 for the INVITE: {statuses:?}");
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timer_expiry_and_rtp_timeout_end_calls_with_bye() {
    let s = server(|c| {
        c.focus.min_se = 2;
        c.focus.rtp_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = s.sip_udp;
    blocking(move || {
        // Session-Expires 3 s, refresher uac, never refreshed: BYE at 2 s.
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(
            a.call(
                "room3",
                "Supported: timer\r\nSession-Expires: 3;refresher=uac\r\n"
            ),
            200
        );
        assert!(header(&a.last_response, "Session-Expires")
            .unwrap()
            .starts_with('3'));
        assert_eq!(header(&a.last_response, "Require"), Some("timer"));
        let bye = a
            .next_request(Duration::from_secs(5))
            .expect("BYE for the expired session");
        assert!(bye.starts_with("BYE "), "{bye}");
        assert!(
            header(&bye, "Reason").unwrap().contains("session timer"),
            "{bye}"
        );
        // RTP stops: BYE with Reason after the timeout.
        let mut b = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(b.call("room3", ""), 200);
        std::thread::sleep(Duration::from_millis(500));
        b.sending.store(false, std::sync::atomic::Ordering::Relaxed);
        let bye = b
            .next_request(Duration::from_secs(6))
            .expect("BYE after RTP stopped");
        assert!(
            header(&bye, "Reason").unwrap().contains("RTP timeout"),
            "{bye}"
        );
        // Too small an interval: 422 with Min-SE.
        let mut c = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(c.call("room3", "Session-Expires: 1\r\n"), 422);
        assert_eq!(header(&c.last_response, "Min-SE"), Some("2"));
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_leave_nothing_open() {
    let s = server(|c| {
        c.focus.auto_create = false;
        c.focus.rooms = vec!["only".into()];
        c.focus.max_room_size = 1;
    })
    .await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut ua = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(ua.call("nosuchroom", ""), 404);
        let mut first = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(first.call("only", ""), 200);
        let mut second = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(second.call("only", ""), 486);
        assert!(second
            .last_response
            .lines()
            .next()
            .unwrap()
            .contains("full"));
        second.ack("only");
        assert_eq!(first.bye("only"), 200);
        // No common codec: 488 with a Warning.
        let mut g729 = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let sdp = g729
            .sdp("sendrecv")
            .replace("RTP/AVP 0 101", "RTP/AVP 18")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
        g729.request("INVITE", "only", "", Some(&sdp));
        assert_eq!(g729.final_response(Duration::from_secs(3)), 488);
        assert!(header(&g729.last_response, "Warning")
            .unwrap()
            .starts_with("305 "));
        g729.ack("only");
        // Malformed SDP: 400 saying so.
        let mut bad = Ua::new(addr, CodecKind::Pcmu, 440.0);
        bad.request("INVITE", "only", "", Some("v=0\r\nthis is not SDP\r\n"));
        assert_eq!(bad.final_response(Duration::from_secs(3)), 400);
        assert!(bad.last_response.lines().next().unwrap().contains("SDP"));
        bad.ack("only");
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offerless_invite_gets_our_offer_and_the_ack_carries_the_answer() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut talker = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(talker.call("room5", ""), 200);
        let mut ua = Ua::new(addr, CodecKind::Pcmu, 440.0);
        ua.request("INVITE", "room5", "", None);
        assert_eq!(ua.final_response(Duration::from_secs(3)), 200);
        assert!(ua.last_response.contains("m=audio "), "the 200 carries an offer");
        ua.take_answer();
        // The ACK carries our answer: PCMU only.
        let answer = ua.sdp("sendrecv");
        let branch = "z9hG4bKackoffer";
        let ack = format!(
            "ACK sip:room5@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:ua@{}>;tag={}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            ua.local(),
            ua.local(),
            ua.from_tag,
            ua.to.clone().unwrap(),
            ua.call_id,
            answer.len()
        );
        ua.sip.send_to(ack.as_bytes(), addr).unwrap();
        ua.start_media();
        std::thread::sleep(Duration::from_millis(1500));
        assert_hears(&ua, &[1000.0], &[440.0]);
        assert_hears(&talker, &[440.0], &[1000.0]);
        assert_eq!(ua.bye("room5"), 200);
        assert_eq!(talker.bye("room5"), 200);
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_chime_and_star_one_room_size_beeps() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        // A silent caller (0 Hz) waits alone, then B joins: A hears the chime.
        let mut a = Ua::new(addr, CodecKind::Pcmu, 0.0);
        assert_eq!(a.call("room6", ""), 200);
        std::thread::sleep(Duration::from_millis(600));
        a.heard();
        let mut b = Ua::new(addr, CodecKind::Pcmu, 0.0);
        assert_eq!(b.call("room6", ""), 200);
        std::thread::sleep(Duration::from_millis(800));
        let heard = a.heard();
        let (low, high) = (goertzel(&heard, 8000, 523.0), goertzel(&heard, 8000, 784.0));
        assert!(
            low > 1000.0 && high > 1000.0,
            "entry chime: 523 Hz {low}, 784 Hz {high}"
        );
        // *1: two people in the room, two 880 Hz beeps, to A only.
        a.send_dtmf('*');
        a.send_dtmf('1');
        std::thread::sleep(Duration::from_millis(900));
        let heard = a.heard();
        let frames: Vec<bool> = heard
            .chunks(400)
            .map(|c| goertzel(c, 8000, 880.0) > 1e5)
            .collect();
        let beeps = frames.windows(2).filter(|w| !w[0] && w[1]).count()
            + usize::from(frames.first() == Some(&true));
        assert_eq!(beeps, 2, "{frames:?}");
        assert!(
            goertzel(&b.heard(), 8000, 880.0) < 1000.0,
            "the beeps are for A only"
        );
        assert_eq!(a.bye("room6"), 200);
        assert_eq!(b.bye("room6"), 200);
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_holds_and_too_many_calls_from_one_source_get_503() {
    let s = server(|c| c.focus.max_calls_per_source = 2).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(a.call("room7", ""), 200);
        assert_eq!(b.call("room7", ""), 200);
        // UPDATE with a sendonly offer holds, like a re-INVITE (RFC 3311).
        a.cseq += 1;
        let offer = a.sdp("sendonly");
        a.request("UPDATE", "room7", "", Some(&offer));
        assert_eq!(a.final_response(Duration::from_secs(3)), 200);
        assert!(a.last_response.contains("a=recvonly"));
        // Let the jitter buffer play out what A sent before the hold.
        std::thread::sleep(Duration::from_millis(500));
        b.heard();
        std::thread::sleep(Duration::from_millis(800));
        let heard = b.heard();
        // Heard tones measure around 10^6; 100 leaves room for codec noise.
        let level = goertzel(&heard, 8000, 440.0);
        assert!(level < 100.0, "a held participant is not mixed ({level})");
        // A third call from the same address: 503 with Retry-After.
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        assert_eq!(c.call("room7", ""), 503);
        assert!(header(&c.last_response, "Retry-After").is_some());
        assert_eq!(a.bye("room7"), 200);
        assert_eq!(b.bye("room7"), 200);
    })
    .await;
    media_empties(&s).await;
    s.shutdown().await;
}
