//! Call flows through the sans-IO focus on a fake clock, with the phone in
//! memory: dial-in (INVITE, 200, ACK, BYE), the 2xx retransmitted until
//! ACKed and the call ended when no ACK comes (RFC 3261 §13.3.1.4),
//! re-INVITE and UPDATE hold and resume, CANCEL before the answer, REFER
//! bringing a third party in (RFC 3515, with sipfrag NOTIFYs), and a
//! subscription from its first NOTIFY to its last.

mod common;

use std::time::{Duration, Instant};

use common::{header, message, parse, request, sdp, sent, Edge, SERVER};
use focus::{Focus, FocusConfig, Input};
use sip::{Message, Method, Response};

struct Phone {
    focus: Focus,
    edge: Edge,
    now: Instant,
}

impl Phone {
    fn new(config: FocusConfig) -> Self {
        let (focus, edge) = common::start(config, 7);
        Self {
            focus,
            edge,
            now: Instant::now(),
        }
    }

    fn send(&mut self, port: u16, m: Message) -> Vec<(u16, Message)> {
        self.focus.handle_input(self.now, message(port, m));
        // The answer first, then what it made due (the fan-out), as the driver does.
        let mut out = sent(&mut self.focus, &mut self.edge, self.now);
        if self.focus.poll_timeout().is_some_and(|t| t <= self.now) {
            self.focus.handle_input(self.now, Input::Timeout);
            out.extend(sent(&mut self.focus, &mut self.edge, self.now));
        }
        out
    }

    /// Moves the clock on, firing every timer due on the way.
    fn wait(&mut self, d: Duration) -> Vec<(u16, Message)> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.focus.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.focus.handle_input(self.now, Input::Timeout);
            out.extend(sent(&mut self.focus, &mut self.edge, self.now));
        }
        self.now = end;
        out
    }

    fn status(&self, user: &str) -> Option<String> {
        self.focus
            .participants("big")?
            .into_iter()
            .find(|p| p.uri.contains(user))
            .map(|p| p.status)
    }
}

fn config() -> FocusConfig {
    FocusConfig {
        entry_exit_tones: false,
        // The phones of these tests are on the loopback.
        dial_out: focus::DialOutPolicy {
            allow: vec!["sip:*@127.0.0.1*".into()],
            ..Default::default()
        },
        ..FocusConfig::default()
    }
}

fn responses(out: &[(u16, Message)]) -> Vec<&Response> {
    out.iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn requests(out: &[(u16, Message)], method: Method) -> Vec<(u16, &sip::Request)> {
    out.iter()
        .filter_map(|(p, m)| match m {
            Message::Request(r) if r.method == method => Some((*p, r)),
            _ => None,
        })
        .collect()
}

fn final_of(out: &[(u16, Message)]) -> (u16, Response) {
    let r = responses(out)
        .into_iter()
        .rfind(|r| r.status >= 200)
        .expect("a final response");
    (r.status, r.clone())
}

fn to_tag(r: &Response) -> String {
    r.headers.to().unwrap().tag().unwrap().to_owned()
}

fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Alice's INVITE, answered; her dialog's To tag.
fn dial_in(p: &mut Phone, user: &str, port: u16, call_id: &str) -> String {
    let invite = request(
        "INVITE",
        user,
        port,
        call_id,
        None,
        1,
        "",
        &sdp(port + 1, "sendrecv"),
    );
    let (status, ok) = final_of(&p.send(port, invite));
    assert_eq!(status, 200);
    assert!(header(&Message::Response(ok.clone()), "Contact")[0].contains("isfocus"));
    let tag = to_tag(&ok);
    let ack = request("ACK", user, port, call_id, Some(&tag), 1, "", "");
    assert!(
        p.send(port, ack).is_empty(),
        "an ACK is answered by nothing"
    );
    tag
}

#[test]
fn dial_in_ack_and_bye() {
    let mut p = Phone::new(config());
    let tag = dial_in(&mut p, "alice", 5080, "c1");
    assert_eq!(p.focus.call_count(), 1);
    assert_eq!(p.status("alice").as_deref(), Some("connected"));
    // Nothing is sent again once ACKed (within the RTP timeout: the fake
    // media reports no new packets).
    let later = p.wait(Duration::from_secs(20));
    assert!(later.is_empty(), "{later:#?}");
    let bye = request("BYE", "alice", 5080, "c1", Some(&tag), 2, "", "");
    let (status, _) = final_of(&p.send(5080, bye));
    assert_eq!(status, 200);
    assert_eq!(p.focus.call_count(), 0);
    assert_eq!(p.focus.room_size("big"), 0);
}

#[test]
fn a_200_never_acked_is_sent_again_then_the_call_ends() {
    let mut p = Phone::new(config());
    let invite = request(
        "INVITE",
        "alice",
        5080,
        "c2",
        None,
        1,
        "",
        &sdp(5081, "sendrecv"),
    );
    let (status, _) = final_of(&p.send(5080, invite));
    assert_eq!(status, 200);
    let out = p.wait(Duration::from_secs(40));
    let again = responses(&out).iter().filter(|r| r.status == 200).count();
    // T1 = 500 ms doubling to T2 = 4 s until 64*T1 = 32 s: 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s.
    assert!((9..=11).contains(&again), "200 sent again {again} times");
    let byes = requests(&out, Method::Bye);
    let branches: std::collections::BTreeSet<String> = byes
        .iter()
        .map(|(_, b)| b.headers.get(&sip::HeaderName::VIA).unwrap().to_owned())
        .collect();
    assert_eq!(
        branches.len(),
        1,
        "the call ends with one BYE (sent again until answered)"
    );
    let reason = byes[0].1.headers.get(&sip::HeaderName::new("Reason"));
    assert!(reason.is_some_and(|r| r.contains("408")), "{reason:?}");
    assert_eq!(p.focus.call_count(), 0);
}

#[test]
fn re_invite_and_update_put_on_hold_and_resume() {
    let mut p = Phone::new(config());
    let tag = dial_in(&mut p, "alice", 5080, "c3");
    // A new offer inside alice's call.
    let offer = |method: &str, cseq: u32, direction: &str| {
        request(
            method,
            "alice",
            5080,
            "c3",
            Some(&tag),
            cseq,
            "",
            &sdp(5081, direction),
        )
    };
    let hold = offer("INVITE", 2, "sendonly");
    let (status, ok) = final_of(&p.send(5080, hold));
    assert_eq!(status, 200);
    assert!(body(&ok).contains("a=recvonly"), "{}", body(&ok));
    p.send(
        5080,
        request("ACK", "alice", 5080, "c3", Some(&tag), 2, "", ""),
    );
    assert_eq!(p.status("alice").as_deref(), Some("on-hold"));
    // Resume by UPDATE (RFC 3311), inside the same dialog.
    let resume = offer("UPDATE", 3, "sendrecv");
    let (status, ok) = final_of(&p.send(5080, resume));
    assert_eq!(status, 200);
    assert!(body(&ok).contains("a=sendrecv"), "{}", body(&ok));
    assert_eq!(p.status("alice").as_deref(), Some("connected"));
    // Hold by UPDATE with inactive.
    let hold = offer("UPDATE", 4, "inactive");
    let (_, ok) = final_of(&p.send(5080, hold));
    assert!(body(&ok).contains("a=inactive"), "{}", body(&ok));
    assert_eq!(p.status("alice").as_deref(), Some("on-hold"));
    // A lower CSeq than the last one is refused (RFC 3261 §12.2.2).
    let stale = offer("INVITE", 3, "sendrecv");
    let (status, _) = final_of(&p.send(5080, stale));
    assert_eq!(status, 500);
}

#[test]
fn cancel_before_the_answer_ends_the_invite_with_487() {
    let mut p = Phone::new(FocusConfig {
        answer_delay: Duration::from_secs(2),
        ..config()
    });
    let invite = request(
        "INVITE",
        "alice",
        5080,
        "c4",
        None,
        1,
        "",
        &sdp(5081, "sendrecv"),
    );
    let out = p.send(5080, invite.clone());
    assert!(
        responses(&out).iter().all(|r| r.status < 200),
        "not answered yet"
    );
    assert_eq!(p.status("alice").as_deref(), Some("dialing-in"));
    let Message::Request(inv) = &invite else {
        unreachable!()
    };
    let cancel = parse(&format!(
        "CANCEL sip:big@{SERVER} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: <sip:big@{SERVER}>\r\n\
         Call-ID: c4\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
        inv.headers.get(&sip::HeaderName::VIA).unwrap(),
        inv.headers.get(&sip::HeaderName::FROM).unwrap(),
    ));
    let out = p.send(5080, cancel);
    let statuses: Vec<(u16, String)> = responses(&out)
        .iter()
        .map(|r| (r.status, r.headers.cseq().unwrap().method.to_string()))
        .collect();
    assert!(statuses.contains(&(200, "CANCEL".into())), "{statuses:?}");
    assert!(statuses.contains(&(487, "INVITE".into())), "{statuses:?}");
    assert_eq!(p.focus.call_count(), 0);
    // The answer delay passes: nothing is answered for the cancelled call.
    let later = p.wait(Duration::from_secs(3));
    assert!(
        responses(&later).iter().all(|r| r.status != 200),
        "{later:?}"
    );
}

#[test]
fn refer_brings_a_third_party_in_and_reports_with_sipfrag() {
    let mut p = Phone::new(config());
    let tag = dial_in(&mut p, "alice", 5080, "c5");
    let refer = request(
        "REFER",
        "alice",
        5080,
        "c5",
        Some(&tag),
        2,
        "Refer-To: <sip:carol@127.0.0.1:5090>\r\n",
        "",
    );
    let out = p.send(5080, refer);
    assert_eq!(final_of(&out).0, 202);
    let notify = requests(&out, Method::Notify);
    assert!(
        notify
            .iter()
            .any(|(port, n)| *port == 5080
                && String::from_utf8_lossy(&n.body).contains("SIP/2.0 100")),
        "the first sipfrag says Trying: {out:#?}"
    );
    // The focus calls Carol at the Refer-To address.
    let (port, invite) = requests(&out, Method::Invite)
        .into_iter()
        .next()
        .expect("an INVITE to carol");
    assert_eq!(port, 5090);
    assert_eq!(invite.uri.to_string(), "sip:carol@127.0.0.1:5090");
    assert!(header(&Message::Request(invite.clone()), "Referred-By")[0].contains("alice"));
    let mut ok = Response::to_request(invite, 200, "OK", Some("carol1"));
    ok.headers
        .push(sip::HeaderName::CONTACT, "<sip:carol@127.0.0.1:5090>");
    ok.headers
        .push(sip::HeaderName::CONTENT_TYPE, "application/sdp");
    ok.body = sdp(5091, "sendrecv").into_bytes().into();
    let out = p.send(5090, Message::Response(ok));
    let acks = requests(&out, Method::Ack);
    assert_eq!(acks.len(), 1, "the focus ACKs carol's 200");
    assert_eq!(acks[0].0, 5090);
    let done = requests(&out, Method::Notify);
    assert!(
        done.iter().any(|(port, n)| *port == 5080
            && String::from_utf8_lossy(&n.body).contains("SIP/2.0 200 OK")
            && n.headers
                .get(&sip::HeaderName::new("Subscription-State"))
                .is_some_and(|s| s.starts_with("terminated"))),
        "the last sipfrag says 200 and ends the implicit subscription: {out:#?}"
    );
    assert_eq!(p.focus.room_size("big"), 2);
    assert_eq!(p.status("carol").as_deref(), Some("connected"));
}

#[test]
fn a_subscription_from_its_first_notify_to_its_last() {
    let mut p = Phone::new(config());
    let _tag = dial_in(&mut p, "alice", 5080, "c6");
    let sub = request(
        "SUBSCRIBE",
        "alice",
        5080,
        "s6",
        None,
        1,
        "Event: conference\r\nExpires: 60\r\n",
        "",
    );
    let out = p.send(5080, sub);
    let (status, ok) = final_of(&out);
    assert_eq!(status, 200);
    let sub_tag = to_tag(&ok);
    let first = requests(&out, Method::Notify);
    assert_eq!(first.len(), 1);
    let doc =
        conference_info::ConferenceInfo::parse(&String::from_utf8_lossy(&first[0].1.body)).unwrap();
    assert_eq!(doc.state, conference_info::State::Full);
    let answer = |p: &mut Phone, n: &sip::Request| {
        p.send(
            5080,
            Message::Response(Response::to_request(n, 200, "OK", None)),
        )
    };
    answer(&mut p, first[0].1);
    // Bob joins: a partial NOTIFY.
    p.wait(Duration::from_secs(1));
    let out = {
        let invite = request(
            "INVITE",
            "bob",
            5082,
            "c7",
            None,
            1,
            "",
            &sdp(5083, "sendrecv"),
        );
        let mut out = p.send(5082, invite);
        out.extend(p.wait(Duration::from_millis(10)));
        out
    };
    let joined = requests(&out, Method::Notify);
    assert_eq!(joined.len(), 1, "{out:#?}");
    assert!(String::from_utf8_lossy(&joined[0].1.body).contains("state=\"partial\""));
    answer(&mut p, joined[0].1);
    // Expiry on the fake clock: a last NOTIFY, terminated;reason=timeout.
    let out = p.wait(Duration::from_secs(61));
    let last = requests(&out, Method::Notify)
        .into_iter()
        .rfind(|(_, n)| n.headers.call_id() == Some("s6"))
        .expect("a final NOTIFY");
    assert_eq!(
        last.1
            .headers
            .get(&sip::HeaderName::new("Subscription-State")),
        Some("terminated;reason=timeout")
    );
    // Refreshing it now is 481: it is gone.
    let refresh = request(
        "SUBSCRIBE",
        "alice",
        5080,
        "s6",
        Some(&sub_tag),
        2,
        "Event: conference\r\nExpires: 60\r\n",
        "",
    );
    assert_eq!(final_of(&p.send(5080, refresh)).0, 481);
}

/// A subscription is pending until its full document is answered: a
/// change meanwhile waits (a partial document must never overtake the full
/// one over UDP) and follows at once when the 200 arrives; after its final
/// NOTIFY it is terminated, and no longer counted.
#[test]
fn changes_wait_until_the_full_state_is_taken() {
    let mut p = Phone::new(config());
    dial_in(&mut p, "alice", 5080, "c8");
    let sub = request(
        "SUBSCRIBE",
        "alice",
        5080,
        "s8",
        None,
        1,
        "Event: conference\r\nExpires: 60\r\n",
        "",
    );
    let out = p.send(5080, sub);
    let sub_tag = to_tag(&final_of(&out).1);
    let full = requests(&out, Method::Notify)[0].1.clone();
    assert_eq!(p.focus.event_stats().subscriptions, 1);
    // Bob joins before alice answered the full document: nothing yet.
    let invite = request(
        "INVITE",
        "bob",
        5082,
        "c9",
        None,
        1,
        "",
        &sdp(5083, "sendrecv"),
    );
    let mut out = p.send(5082, invite);
    out.extend(p.wait(Duration::from_millis(300)));
    let early: Vec<_> = requests(&out, Method::Notify)
        .into_iter()
        .filter(|(_, n)| n.headers.call_id() == Some("s8") && n.headers.cseq().unwrap().seq > 1)
        .collect();
    assert!(
        early.is_empty(),
        "no partial before the full is taken: {early:#?}"
    );
    // The 200 for the full document lets bob's join out, as version 2.
    let out = p.send(
        5080,
        Message::Response(Response::to_request(&full, 200, "OK", None)),
    );
    let partial = requests(&out, Method::Notify);
    assert_eq!(partial.len(), 1, "{out:#?}");
    let doc = body_of(partial[0].1);
    assert!(
        doc.contains("state=\"partial\"") && doc.contains("version=\"2\""),
        "{doc}"
    );
    assert!(doc.contains("sip:bob@example.com"), "{doc}");
    let partial = partial[0].1.clone();
    p.send(
        5080,
        Message::Response(Response::to_request(&partial, 200, "OK", None)),
    );
    // Unsubscribing: the final NOTIFY, then the dialog is over (481).
    let unsub = request(
        "SUBSCRIBE",
        "alice",
        5080,
        "s8",
        Some(&sub_tag),
        2,
        "Event: conference\r\nExpires: 0\r\n",
        "",
    );
    let out = p.send(5080, unsub);
    let last = requests(&out, Method::Notify);
    assert_eq!(
        last[0].1.headers.get(&sip::HeaderName::SUBSCRIPTION_STATE),
        Some("terminated")
    );
    assert_eq!(p.focus.event_stats().subscriptions, 0);
    let again = request(
        "SUBSCRIBE",
        "alice",
        5080,
        "s8",
        Some(&sub_tag),
        3,
        "Event: conference\r\nExpires: 60\r\n",
        "",
    );
    assert_eq!(final_of(&p.send(5080, again)).0, 481);
}

fn body_of(r: &sip::Request) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_refer_outside_a_dialog_gets_its_own_and_the_ack_follows_the_route_set() {
    let mut p = Phone::new(config());
    let _tag = dial_in(&mut p, "alice", 5080, "c8");
    // Alice REFERs from another port, outside her call: a new dialog.
    let refer = request(
        "REFER",
        "alice",
        5084,
        "r8",
        None,
        1,
        "Refer-To: <sip:carol@127.0.0.1:5090>\r\n",
        "",
    );
    let out = p.send(5084, refer);
    assert_eq!(final_of(&out).0, 202);
    let (_, invite) = requests(&out, Method::Invite).into_iter().next().unwrap();
    // Carol answers through a record-routing proxy.
    let mut ok = Response::to_request(invite, 200, "OK", Some("carol8"));
    ok.headers
        .push(sip::HeaderName::RECORD_ROUTE, "<sip:127.0.0.1:5070;lr>");
    ok.headers
        .push(sip::HeaderName::CONTACT, "<sip:carol@127.0.0.1:5090>");
    ok.headers
        .push(sip::HeaderName::CONTENT_TYPE, "application/sdp");
    ok.body = sdp(5091, "sendrecv").into_bytes().into();
    let done = p.send(5090, Message::Response(ok));
    let out: Vec<_> = out.into_iter().chain(done).collect();
    let (_, ack) = requests(&out, Method::Ack).into_iter().next().unwrap();
    assert_eq!(
        header(&Message::Request(ack.clone()), "Route"),
        ["<sip:127.0.0.1:5070;lr>"],
        "the ACK for a 2xx follows the route set (RFC 3261 §13.2.2.4)"
    );
    assert_eq!(ack.headers.cseq().unwrap().seq, 1);
    // The sipfrag NOTIFYs go back where the REFER came from, in the
    // REFER's dialog, with a CSeq that grows.
    let notifies = requests(&out, Method::Notify);
    let seqs: Vec<(u16, u32, String)> = notifies
        .iter()
        .map(|(port, n)| {
            (
                *port,
                n.headers.cseq().unwrap().seq,
                n.headers.call_id().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [(5084, 1, "r8".to_owned()), (5084, 2, "r8".to_owned())],
        "{out:#?}"
    );
    assert_eq!(p.focus.room_size("big"), 2);
}

#[test]
fn a_moderator_dials_the_first_caller_into_an_empty_room() {
    let mut p = Phone::new(FocusConfig {
        // The address the focus calls from, as the binary sets it.
        sip_host: Some(SERVER.into()),
        ..config()
    });
    p.focus.handle_input(
        p.now,
        Input::Command(focus::FocusCommand::UpsertRoom(focus::RoomPolicy {
            name: "big".into(),
            ..Default::default()
        })),
    );
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    p.focus
        .dial_out_api(p.now, "big", "sip:carol@127.0.0.1:5090", tx);
    let id = rx.try_recv().expect("answered at once").expect("dialing");
    let out = sent(&mut p.focus, &mut p.edge, p.now);
    let (port, invite) = requests(&out, Method::Invite).into_iter().next().unwrap();
    assert_eq!(port, 5090);
    let mut ok = Response::to_request(invite, 200, "OK", Some("carol9"));
    ok.headers
        .push(sip::HeaderName::CONTACT, "<sip:carol@127.0.0.1:5090>");
    ok.headers
        .push(sip::HeaderName::CONTENT_TYPE, "application/sdp");
    ok.body = sdp(5091, "sendrecv").into_bytes().into();
    let out = p.send(5090, Message::Response(ok));
    assert_eq!(requests(&out, Method::Ack).len(), 1);
    // Its mixer room opened for it: it is in, not refused for want of media.
    assert_eq!(p.focus.room_size("big"), 1);
    assert!(requests(&out, Method::Bye).is_empty(), "{out:#?}");
    let carol = p.focus.participants("big").unwrap();
    assert_eq!(
        (carol[0].id.as_str(), carol[0].status.as_str()),
        (id.as_str(), "connected")
    );
}

#[test]
fn a_refer_the_focus_cannot_carry_out_is_refused_with_its_reason() {
    let mut p = Phone::new(config());
    let _tag = dial_in(&mut p, "alice", 5080, "c9");
    let refer = |call_id: &str, refer_to: &str| {
        request(
            "REFER",
            "alice",
            5084,
            call_id,
            None,
            1,
            &format!("Refer-To: {refer_to}\r\n"),
            "",
        )
    };
    let cases = [
        ("r9a", "<sip:bob@example.com;method=BYE>", 404),
        ("r9b", "<sip:bob@example.com;method=OPTIONS>", 501),
        ("r9c", "<sip:alice@example.com;method=BYE>", 202),
    ];
    for (call_id, refer_to, status) in cases {
        let out = p.send(5084, refer(call_id, refer_to));
        let (got, reason) = final_of(&out);
        assert_eq!(got, status, "{refer_to}: {reason:?}");
        if status != 202 {
            // Refused before anything was made: no sipfrag NOTIFY.
            assert!(requests(&out, Method::Notify).is_empty(), "{out:#?}");
        }
    }
    assert_eq!(p.focus.room_size("big"), 0, "alice removed herself");
}

/// A room's own SRTP mode wins over the server's: the same offers are
/// taken or refused (488 with a Warning) as the room's policy changes.
#[test]
fn a_room_s_srtp_mode_overrides_the_server_s() {
    let mut p = Phone::new(FocusConfig {
        srtp: focus::SrtpPolicy {
            mode: focus::SrtpMode::Optional,
            // The phone here is on UDP; keys in clear are allowed for the test.
            sdes_in_clear: true,
        },
        ..config()
    });
    // RFC 4568's example key: 30 bytes of key and salt.
    let savp = |port: u16| {
        sdp(port, "sendrecv").replace("RTP/AVP", "RTP/SAVP")
            + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    };
    let mut n = 0u16;
    let mut invite = |p: &mut Phone, body: String| {
        n += 1;
        let port = 6000 + 10 * n;
        let body = body.replace("m=audio 0 ", &format!("m=audio {} ", port + 1));
        let r = request(
            "INVITE",
            "alice",
            port,
            &format!("srtp{n}"),
            None,
            1,
            "",
            &body,
        );
        let (status, r) = final_of(&p.send(port, r));
        let warning = header(&Message::Response(r.clone()), "Warning").join(" ");
        (status, body_has_crypto(&r), warning)
    };
    let policy = |p: &mut Phone, srtp| {
        p.focus.handle_input(
            p.now,
            Input::Command(focus::FocusCommand::UpsertRoom(focus::RoomPolicy {
                name: "big".into(),
                srtp,
                ..Default::default()
            })),
        )
    };
    // The server's optional: both are taken; SRTP is answered with a key.
    assert_eq!(invite(&mut p, savp(0)).0, 200);
    assert!(invite(&mut p, savp(0)).1, "answered with our a=crypto");
    assert_eq!(
        invite(&mut p, sdp(0, "sendrecv")),
        (200, false, String::new())
    );

    policy(&mut p, Some(focus::SrtpMode::Required));
    let (status, _, warning) = invite(&mut p, sdp(0, "sendrecv"));
    assert_eq!(status, 488);
    assert!(warning.contains("SRTP"), "{warning}");
    // No offer at all: ours would carry keys in the 200, so it is refused too.
    assert_eq!(invite(&mut p, String::new()).0, 488);
    assert_eq!(invite(&mut p, savp(0)).0, 200);

    policy(&mut p, Some(focus::SrtpMode::Off));
    assert_eq!(invite(&mut p, savp(0)).0, 488);
    assert_eq!(invite(&mut p, sdp(0, "sendrecv")).0, 200);

    // Back to the server's setting.
    policy(&mut p, None);
    assert_eq!(invite(&mut p, savp(0)).0, 200);
}

fn body_has_crypto(r: &Response) -> bool {
    body(r).contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
}

/// Draining: the call in progress goes on, a new INVITE and a new
/// SUBSCRIBE get 503 with Retry-After, and at the end the call gets a BYE
/// that says why.
#[test]
fn a_drain_keeps_calls_refuses_new_ones_then_ends_the_rest() {
    let mut p = Phone::new(config());
    let tag = dial_in(&mut p, "alice", 5070, "d1");
    p.focus
        .handle_input(p.now, Input::Command(focus::FocusCommand::Drain));
    let invite = request(
        "INVITE",
        "bob",
        5080,
        "d2",
        None,
        1,
        "",
        &sdp(5081, "sendrecv"),
    );
    let (status, r) = final_of(&p.send(5080, invite));
    assert_eq!(status, 503);
    assert_eq!(header(&Message::Response(r), "Retry-After"), ["60"]);
    let sub = request(
        "SUBSCRIBE",
        "carol",
        5090,
        "d3",
        None,
        1,
        "Event: conference\r\nExpires: 600\r\n",
        "",
    );
    assert_eq!(final_of(&p.send(5090, sub)).0, 503);
    assert_eq!(p.status("alice").as_deref(), Some("connected"));
    // The call still answers in its dialog.
    let options = request("OPTIONS", "alice", 5070, "d1", Some(&tag), 2, "", "");
    assert_eq!(final_of(&p.send(5070, options)).0, 200);
    let (idle, mut idle_rx) = tokio::sync::oneshot::channel();
    p.focus
        .handle_input(p.now, Input::Command(focus::FocusCommand::WhenIdle(idle)));
    assert!(idle_rx.try_recv().is_err(), "a call is still open");
    p.focus
        .handle_input(p.now, Input::Command(focus::FocusCommand::EndAll));
    assert!(idle_rx.try_recv().is_ok(), "told when the last call ended");
    let out = sent(&mut p.focus, &mut p.edge, p.now);
    let byes = requests(&out, Method::Bye);
    assert_eq!(byes.len(), 1, "{out:?}");
    let reason = header(&Message::Request(byes[0].1.clone()), "Reason").join("");
    assert!(reason.contains("server shutting down"), "{reason}");
    assert_eq!(p.status("alice"), None);
    // Its call detail record says why, and the refused calls have none.
    let records = &p.edge.media.records;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.room.as_str(), r.cause, r.codec),
        ("big", "server shutting down", Some("PCMU"))
    );
    assert!(r.caller.starts_with("sip:alice@") && !r.dialed_out, "{r:?}");
}
