//! The conference event package end to end: a participant subscribes to
//! its room and sees the full state, then one partial NOTIFY per join,
//! hold, resume, self-mute and leave, each version one more than the last.
//! Every body validates against the RFC 4575 schema (xmllint, when
//! installed) and the subscriber's copy, built with `apply`, ends equal to
//! a fresh full document. Refusals, expiry, fetch and 481 are covered too.

mod common;

use std::process::Command;
use std::time::Duration;

use common::ua::{body, next_notify, subscribe, Ua};
use common::{free_port, header};
use confab::{Server, ServerConfig};
use conference_info::{ConferenceInfo, EndpointStatus, State};
use media_server::codec::CodecKind;

async fn server(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    common::in_process(30000, |c| {
        c.focus.entry_exit_tones = false;
        // The REFER tests bring in phones on the loopback and by name.
        c.focus.dial_out.allow = vec!["*".into()];
        tweak(c);
    })
    .await
}

use common::blocking;

fn validate(xml: &str) {
    if !test_support::peer_tool("xmllint", "libxml2-utils") {
        return;
    }
    let path =
        std::env::temp_dir().join(format!("notify-{}-{}.xml", std::process::id(), free_port()));
    std::fs::write(&path, xml).unwrap();
    let out = Command::new("xmllint")
        .args([
            "--noout",
            "--schema",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xsd/conference-info.xsd"),
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "NOTIFY body does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status_of(doc: &ConferenceInfo, user: &str) -> Option<EndpointStatus> {
    doc.users
        .as_ref()?
        .users
        .iter()
        .find(|u| u.entity.as_deref() == Some(user))?
        .endpoints
        .first()?
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_sees_full_state_then_partials_with_consecutive_versions() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room8", ""), 200);
        let aor_a = format!("sip:{}@127.0.0.1", a.user);
        assert_eq!(subscribe(&mut a, "room8", "sub-a", 600, None, 1), 200);
        let sub_tag = header(&a.last_response, "To")
            .unwrap()
            .split("tag=")
            .nth(1)
            .unwrap()
            .to_owned();
        let first = next_notify(&mut a, "sub-a");
        assert!(header(&first, "Subscription-State")
            .unwrap()
            .starts_with("active"));
        assert_eq!(header(&first, "Event"), Some("conference"));
        validate(body(&first));
        let mut state = ConferenceInfo::parse(body(&first)).unwrap();
        assert_eq!((state.state, state.version), (State::Full, Some(1)));
        assert_eq!(status_of(&state, &aor_a), Some(EndpointStatus::Connected));

        let mut expect = |a: &mut Ua, what: &str, check: &dyn Fn(&ConferenceInfo)| {
            let n = next_notify(a, "sub-a");
            validate(body(&n));
            let doc = ConferenceInfo::parse(body(&n)).unwrap();
            assert_eq!(doc.state, State::Partial, "{what}");
            state.apply(&doc).unwrap_or_else(|e| panic!("{what}: {e}"));
            check(&state);
        };
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let aor_b = format!("sip:{}@127.0.0.1", b.user);
        assert_eq!(b.call("room8", ""), 200);
        expect(&mut a, "join", &|st| {
            assert_eq!(status_of(st, &aor_b), Some(EndpointStatus::Connected))
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(b.reinvite("room8", "sendonly"), 200);
        expect(&mut a, "hold", &|st| {
            assert_eq!(status_of(st, &aor_b), Some(EndpointStatus::OnHold))
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(b.reinvite("room8", "sendrecv"), 200);
        expect(&mut a, "resume", &|st| {
            assert_eq!(status_of(st, &aor_b), Some(EndpointStatus::Connected))
        });
        std::thread::sleep(Duration::from_millis(300));
        b.send_dtmf('*');
        b.send_dtmf('6');
        expect(&mut a, "self-mute", &|st| {
            assert_eq!(status_of(st, &aor_b), Some(EndpointStatus::MutedViaFocus))
        });
        // *9: B's hand goes up, in confab's extension to the document.
        std::thread::sleep(Duration::from_millis(300));
        b.send_dtmf('*');
        b.send_dtmf('9');
        expect(&mut a, "hand", &|st| {
            let hands = focus::raised_hands_in(st).expect("the raised-hands extension");
            assert_eq!(hands.len(), 1, "{hands:?}");
            assert_eq!(hands[0].0, aor_b);
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(b.bye("room8"), 200);
        expect(&mut a, "leave", &|st| {
            assert!(status_of(st, &aor_b).is_none());
            assert_eq!(
                focus::raised_hands_in(st),
                Some(vec![]),
                "the hand left with B"
            );
        });
        assert_eq!(state.version, Some(7), "one version per document, no gap");

        // Refresh: a full document, version 7, equal to the state we built.
        assert_eq!(
            subscribe(&mut a, "room8", "sub-a", 600, Some(&sub_tag), 2),
            200
        );
        let refreshed = ConferenceInfo::parse(body(&next_notify(&mut a, "sub-a"))).unwrap();
        assert_eq!((refreshed.state, refreshed.version), (State::Full, Some(8)));
        assert_eq!(refreshed.users, state.users);
        // Unsubscribe: final NOTIFY, terminated.
        assert_eq!(
            subscribe(&mut a, "room8", "sub-a", 0, Some(&sub_tag), 3),
            200
        );
        let last = next_notify(&mut a, "sub-a");
        assert!(header(&last, "Subscription-State")
            .unwrap()
            .starts_with("terminated"));
        assert_eq!(a.bye("room8"), 200);
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_fetch_expiry_and_481() {
    let s = server(|c| c.focus.subscription_min = 1).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room9", ""), 200);
        assert_eq!(subscribe(&mut a, "nosuchroom", "s1", 600, None, 1), 404);
        let mut outsider = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(subscribe(&mut outsider, "room9", "s2", 600, None, 1), 403);
        // A bad Event: 489 with Allow-Events.
        let bad = format!(
            "SUBSCRIBE sip:room9@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKbadev;rport\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{}>;tag=x\r\n\
             To: <sip:room9@{addr}>\r\nCall-ID: s3\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:x@{}>\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n",
            a.local(),
            a.user,
            a.local(),
            a.local()
        );
        a.sip.send_to(bad.as_bytes(), addr).unwrap();
        assert_eq!(a.final_response(Duration::from_secs(3)), 489);
        assert_eq!(header(&a.last_response, "Allow-Events"), Some("conference"));
        // Expires: 0 is a one-time fetch: full state, then terminated.
        assert_eq!(subscribe(&mut a, "room9", "s4", 0, None, 1), 200);
        let fetched = next_notify(&mut a, "s4");
        assert_eq!(header(&fetched, "Subscription-State"), Some("terminated;reason=timeout"));
        assert_eq!(ConferenceInfo::parse(body(&fetched)).unwrap().state, State::Full);
        // Expiry: 2 s, then a final NOTIFY terminated;reason=timeout.
        assert_eq!(subscribe(&mut a, "room9", "s5", 2, None, 1), 200);
        let _ = next_notify(&mut a, "s5");
        let end = next_notify(&mut a, "s5");
        assert_eq!(header(&end, "Subscription-State"), Some("terminated;reason=timeout"));
        // A 481 to a NOTIFY ends the subscription (RFC 6665 §4.1.3): later
        // changes send nothing to it.
        assert_eq!(subscribe(&mut a, "room9", "s6", 600, None, 1), 200);
        let (first, from) = a
            .recv_sip(Duration::from_secs(3))
            .expect("the first NOTIFY");
        assert!(first.starts_with("NOTIFY ") && header(&first, "Call-ID") == Some("s6"), "{first}");
        a.answer(&first, from, 481);
        std::thread::sleep(Duration::from_millis(300));
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(b.call("room9", ""), 200);
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        while std::time::Instant::now() < deadline {
            if let Some((m, from)) = a.recv_sip(Duration::from_millis(200)) {
                assert!(header(&m, "Call-ID") != Some("s6"), "a NOTIFY after the 481: {m}");
                if !m.starts_with("SIP/2.0") {
                    a.answer(&m, from, 200);
                }
            }
        }
        assert_eq!(b.bye("room9"), 200);
        assert_eq!(a.bye("room9"), 200);
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_brief_is_423_with_min_expires() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room10", ""), 200);
        assert_eq!(subscribe(&mut a, "room10", "t1", 10, None, 1), 423);
        assert_eq!(header(&a.last_response, "Min-Expires"), Some("60"));
        assert_eq!(a.bye("room10"), 200);
    })
    .await;
    s.shutdown().await;
}

fn message(ua: &mut Ua, room: &str, text: &str) -> u16 {
    let msg = format!(
        "MESSAGE sip:{room}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKmsg{};rport\r\nMax-Forwards: 70\r\nFrom: \"Sender\" <sip:{}@{}>;tag=m1\r\n\
         To: <sip:{room}@{}>\r\nCall-ID: msg{}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
        ua.server,
        ua.local(),
        free_port(),
        ua.user,
        ua.local(),
        ua.server,
        free_port(),
        text.len()
    );
    ua.sip.send_to(msg.as_bytes(), ua.server).unwrap();
    ua.final_response(Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_to_the_room_reaches_the_others_and_outsiders_get_403() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        for ua in [&mut a, &mut b, &mut c] {
            assert_eq!(ua.call("room11", ""), 200);
        }
        assert_eq!(message(&mut a, "room11", "hello room"), 202);
        for ua in [&mut b, &mut c] {
            let m = loop {
                let m = ua
                    .next_request(Duration::from_secs(3))
                    .expect("relayed MESSAGE");
                if m.starts_with("MESSAGE ") {
                    break m;
                }
            };
            assert!(m.ends_with("hello room"), "{m}");
            assert!(
                header(&m, "From")
                    .unwrap()
                    .contains(&format!("sip:{}@127.0.0.1", a.user)),
                "{m}"
            );
        }
        let mut buf = [0u8; 4096];
        a.sip
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        while let Ok((n, _)) = a.sip.recv_from(&mut buf) {
            assert!(
                !String::from_utf8_lossy(&buf[..n]).starts_with("MESSAGE "),
                "the sender gets no copy"
            );
        }
        let mut outsider = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(message(&mut outsider, "room11", "let me in"), 403);
        for (ua, room) in [(&mut a, "room11"), (&mut b, "room11"), (&mut c, "room11")] {
            assert_eq!(ua.bye(room), 200);
        }
    })
    .await;
    s.shutdown().await;
}

/// The sipfrag status lines up to `until`; other requests stay in the inbox, in order.
fn sipfrags(ua: &mut Ua, until: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut others = Vec::new();
    while let Some(m) = ua.next_request(Duration::from_secs(5)) {
        if m.starts_with("NOTIFY ") && header(&m, "Event") == Some("refer") {
            let line = body(&m).lines().next().unwrap_or("").to_owned();
            let done = line.starts_with(until);
            lines.push(line);
            if done {
                break;
            }
        } else {
            others.push(m);
        }
    }
    for m in others.into_iter().rev() {
        ua.inbox.push_front(m);
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_to_a_host_name_is_resolved_and_an_unknown_one_is_604() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room15", ""), 200);
        let mut carol = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let carol_uri = format!("sip:{}@localhost:{}", carol.user, carol.local().port());
        let carol_thread =
            std::thread::spawn(move || carol.accept_call(Duration::from_secs(5)).is_some());
        let refer = |a: &mut Ua, to: &str| {
            a.cseq += 1;
            a.request("REFER", "room15", &format!("Refer-To: <{to}>\r\n"), None);
            assert_eq!(a.final_response(Duration::from_secs(3)), 202);
        };
        refer(&mut a, &carol_uri);
        let frags = sipfrags(&mut a, "SIP/2.0 200");
        assert!(
            frags.last().unwrap().starts_with("SIP/2.0 200"),
            "{frags:?}"
        );
        assert!(carol_thread.join().unwrap(), "carol is called at localhost");
        refer(&mut a, "sip:nobody@no-such-host.invalid");
        let frags = sipfrags(&mut a, "SIP/2.0 604");
        assert!(
            frags.last().unwrap().starts_with("SIP/2.0 604"),
            "{frags:?}"
        );
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_dials_a_third_party_in_and_method_bye_removes_one() {
    // No coalescing: every step of the dial-out is its own NOTIFY here.
    let s = server(|c| c.focus.notify_min_interval = Duration::ZERO).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room12", ""), 200);
        assert_eq!(subscribe(&mut a, "room12", "sub12", 600, None, 1), 200);
        let _full = next_notify(&mut a, "sub12");
        // Carol is outside; A refers her in, inside its call.
        let mut carol = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let carol_uri = format!("sip:{}@{}", carol.user, carol.local());
        let carol_aor = format!("sip:{}@127.0.0.1", carol.user);
        let carol_thread = std::thread::spawn(move || {
            let inv = carol
                .accept_call(Duration::from_secs(5))
                .expect("the focus calls carol");
            assert!(header(&inv, "Contact").unwrap().contains(";isfocus"));
            assert!(header(&inv, "Referred-By").is_some());
            std::thread::sleep(Duration::from_millis(1500));
            carol
        });
        a.cseq += 1;
        a.request(
            "REFER",
            "room12",
            &format!(
                "Refer-To: <{carol_uri}>\r\nReferred-By: <sip:{}@127.0.0.1>\r\n",
                a.user
            ),
            None,
        );
        assert_eq!(a.final_response(Duration::from_secs(3)), 202);
        let frags = sipfrags(&mut a, "SIP/2.0 200");
        assert_eq!(
            frags.first().map(String::as_str),
            Some("SIP/2.0 100 Trying"),
            "{frags:?}"
        );
        assert!(
            frags.iter().any(|f| f.starts_with("SIP/2.0 180")),
            "{frags:?}"
        );
        assert!(
            frags.last().unwrap().starts_with("SIP/2.0 200"),
            "{frags:?}"
        );
        // The subscriber saw carol dialing-out, alerting, then connected, referred by A.
        let mut seen = Vec::new();
        while seen.last() != Some(&EndpointStatus::Connected) {
            let n = next_notify(&mut a, "sub12");
            validate(body(&n));
            let doc = ConferenceInfo::parse(body(&n)).unwrap();
            if let Some(u) = doc.user(&carol_aor) {
                let ep = &u.endpoints[0];
                assert_eq!(
                    ep.joining_method,
                    Some(conference_info::JoiningMethod::DialedOut)
                );
                assert!(ep.referred.as_ref().and_then(|r| r.by.as_ref()).is_some());
                seen.push(ep.status.unwrap());
            }
        }
        assert_eq!(seen.first(), Some(&EndpointStatus::DialingOut), "{seen:?}");
        assert!(seen.contains(&EndpointStatus::Alerting), "{seen:?}");
        let carol = carol_thread.join().unwrap();
        // Carol hears A.
        let heard = carol.heard();
        assert!(
            media_server::tone::goertzel(&heard[heard.len() / 3..], 8000, 440.0) > 1000.0,
            "carol hears A"
        );
        // A removes carol with method=BYE; carol gets a BYE.
        a.cseq += 1;
        a.request(
            "REFER",
            "room12",
            &format!("Refer-To: <{carol_uri};method=BYE>\r\n"),
            None,
        );
        assert_eq!(a.final_response(Duration::from_secs(3)), 202);
        let frags = sipfrags(&mut a, "SIP/2.0 200");
        assert_eq!(frags.last().map(String::as_str), Some("SIP/2.0 200 OK"));
        let mut carol = carol;
        let bye = carol
            .next_request(Duration::from_secs(3))
            .expect("carol is sent BYE");
        assert!(bye.starts_with("BYE "), "{bye}");
        assert_eq!(a.bye("room12"), 200);
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conference_factory_makes_a_new_room() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("conference", ""), 200);
        let contact = header(&a.last_response, "Contact").unwrap().to_owned();
        assert!(
            contact.contains("sip:adhoc-") && contact.ends_with(";isfocus"),
            "{contact}"
        );
        // The new room is a room: someone else can dial its URI.
        let room = contact
            .split("sip:")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned();
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(b.call(&room, ""), 200);
        std::thread::sleep(Duration::from_millis(1200));
        let heard = b.heard();
        assert!(media_server::tone::goertzel(&heard[heard.len() / 3..], 8000, 440.0) > 1000.0);
        // A second factory call makes another room.
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        assert_eq!(c.call("conference", ""), 200);
        assert_ne!(header(&c.last_response, "Contact").unwrap(), contact);
        for (ua, r) in [
            (&mut a, "conference"),
            (&mut b, room.as_str()),
            (&mut c, "conference"),
        ] {
            assert_eq!(ua.bye(r), 200);
        }
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_outside_a_dialog_to_the_room_uri_works_too() {
    let s = server(|_| {}).await;
    let addr = s.sip_udp;
    blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("room13", ""), 200);
        let mut dave = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let dave_uri = format!("sip:{}@{}", dave.user, dave.local());
        let dave_thread = std::thread::spawn(move || dave.accept_call(Duration::from_secs(5)).is_some());
        // A fresh dialog: new Call-ID, no To tag.
        let refer = format!(
            "REFER sip:room13@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKoodrefer;rport\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{}>;tag=r1\r\n\
             To: <sip:room13@{addr}>\r\nCall-ID: ood-refer\r\nCSeq: 1 REFER\r\nContact: <sip:{}@{}>\r\nRefer-To: <{dave_uri}>\r\nContent-Length: 0\r\n\r\n",
            a.local(),
            a.user,
            a.local(),
            a.user,
            a.local()
        );
        a.sip.send_to(refer.as_bytes(), addr).unwrap();
        assert_eq!(a.final_response(Duration::from_secs(3)), 202);
        let frags = sipfrags(&mut a, "SIP/2.0 200");
        assert_eq!(frags.first().map(String::as_str), Some("SIP/2.0 100 Trying"));
        assert!(frags.last().unwrap().starts_with("SIP/2.0 200"), "{frags:?}");
        assert!(dave_thread.join().unwrap(), "dave was called");
        // An outsider may not refer.
        let mut outsider = Ua::new(addr, CodecKind::Pcmu, 440.0);
        outsider.request("REFER", "room13", &format!("Refer-To: <{dave_uri}>\r\n"), None);
        assert_eq!(outsider.final_response(Duration::from_secs(3)), 403);
        assert_eq!(a.bye("room13"), 200);
    })
    .await;
    s.shutdown().await;
}
