//! Digest authentication, the registrar and forked dial-outs through the
//! sans-IO focus on a fake clock: the 401 and its two challenges, a good
//! answer, wrong passwords until the address is ignored, a replayed
//! nonce-count, an expired nonce (`stale=true`), identity from the
//! credentials and not From, REGISTER with its rules, and a dial-out to a
//! registered user forked to both its phones, the loser cancelled.

mod common;

use std::time::{Duration, Instant};

use common::{message, parse, sdp, sent, Edge, SERVER};
use focus::{AuthConfig, AuthMode, Credentials, Focus, FocusCommand, FocusConfig, Input};
use sip::{HeaderName, Message, Method, Response};
use sip_auth::{Algorithm, Authorization};

const REALM: &str = "confab";

struct Net {
    focus: Focus,
    edge: Edge,
    now: Instant,
}

impl Net {
    fn new(mode: AuthMode) -> Self {
        let config = FocusConfig {
            entry_exit_tones: false,
            sip_host: Some(SERVER.into()),
            auth: AuthConfig {
                mode,
                max_failures: 5,
                algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                ..AuthConfig::default()
            },
            ..FocusConfig::default()
        };
        let (mut focus, edge) = common::start(config, 11);
        let now = Instant::now();
        for (user, pass) in [("alice", "wonderland1"), ("bob", "builder-22")] {
            focus.handle_input(
                now,
                Input::Command(FocusCommand::SetUser(
                    user.into(),
                    Credentials::from_password(user, REALM, pass),
                )),
            );
        }
        Self { focus, edge, now }
    }

    fn send(&mut self, port: u16, m: Message) -> Vec<(u16, Message)> {
        self.focus.handle_input(self.now, message(port, m));
        let mut out = sent(&mut self.focus, &mut self.edge, self.now);
        if self.focus.poll_timeout().is_some_and(|t| t <= self.now) {
            self.focus.handle_input(self.now, Input::Timeout);
            out.extend(sent(&mut self.focus, &mut self.edge, self.now));
        }
        out
    }
}

/// A request from `from_user`@example.com on 127.0.0.1:`port`.
#[allow(clippy::too_many_arguments)]
fn req(
    method: &str,
    target: &str,
    from_user: &str,
    port: u16,
    call_id: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> Message {
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let to = if method == "REGISTER" {
        format!("<sip:{from_user}@{SERVER}>")
    } else {
        format!("<{target}>")
    };
    parse(&format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}{method}\r\nMax-Forwards: 70\r\n\
         From: <sip:{from_user}@example.com>;tag=f{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:{from_user}@127.0.0.1:{port}>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn final_of(out: &[(u16, Message)]) -> Response {
    out.iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) if r.status >= 200 => Some(r.clone()),
            _ => None,
        })
        .next_back()
        .expect("a final response")
}

fn requests(out: &[(u16, Message)], method: Method) -> Vec<(u16, sip::Request)> {
    out.iter()
        .filter_map(|(p, m)| match m {
            Message::Request(r) if r.method == method => Some((*p, r.clone())),
            _ => None,
        })
        .collect()
}

/// The challenges of a 401, in order: (algorithm, nonce, stale).
fn challenges(r: &Response) -> Vec<(String, String, bool)> {
    r.headers
        .get_all(&HeaderName::WWW_AUTHENTICATE)
        .map(|v| {
            let param = |name: &str| {
                v.split(',')
                    .find_map(|p| {
                        p.trim()
                            .trim_start_matches("Digest ")
                            .strip_prefix(&format!("{name}="))
                    })
                    .map(|x| x.trim_matches('"').to_owned())
                    .unwrap_or_default()
            };
            (param("algorithm"), param("nonce"), param("stale") == "true")
        })
        .collect()
}

/// The Authorization header a client computes (RFC 7616 §3.4.1).
fn answer(
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    nonce: &str,
    alg: Algorithm,
    nc: u32,
) -> String {
    let mut a = Authorization {
        username: user.into(),
        realm: REALM.into(),
        nonce: nonce.into(),
        uri: uri.into(),
        response: String::new(),
        algorithm: alg,
        cnonce: "0a4f113b".into(),
        nc,
    };
    let ha1 = Credentials::from_password(user, REALM, password);
    a.response = a.expected_response(method, ha1.ha1(alg));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\", algorithm={}, cnonce=\"0a4f113b\", nc={nc:08x}, qop=auth\r\n",
        a.response,
        alg.name()
    )
}

const ROOM: &str = "sip:big@127.0.0.1:5060";

#[test]
fn an_invite_is_challenged_then_admitted_as_the_user_not_as_from() {
    let mut n = Net::new(AuthMode::Required);
    let offer = sdp(5081, "sendrecv");
    let out = n.send(
        5080,
        req("INVITE", ROOM, "mallory", 5080, "a1", 1, "", &offer),
    );
    let r = final_of(&out);
    assert_eq!(r.status, 401);
    let ch = challenges(&r);
    assert_eq!(
        ch.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["SHA-256", "MD5"],
        "SHA-256 preferred, MD5 for older phones"
    );
    // From says mallory; the credentials are alice's.
    let auth = answer(
        "INVITE",
        ROOM,
        "alice",
        "wonderland1",
        &ch[1].1,
        Algorithm::Md5,
        1,
    );
    let out = n.send(
        5080,
        req("INVITE", ROOM, "mallory", 5080, "a1", 2, &auth, &offer),
    );
    assert_eq!(final_of(&out).status, 200, "{out:#?}");
    let who = n.focus.participants("big").expect("room");
    assert_eq!(who[0].uri, "sip:alice@example.com");
}

#[test]
fn by_default_only_md5_is_offered_and_a_sha256_answer_is_refused() {
    let config = FocusConfig {
        auth: AuthConfig {
            mode: AuthMode::Required,
            ..AuthConfig::default()
        },
        ..FocusConfig::default()
    };
    let (focus, edge) = common::start(config, 5);
    let mut n = Net {
        focus,
        edge,
        now: Instant::now(),
    };
    n.focus.handle_input(
        n.now,
        Input::Command(FocusCommand::SetUser(
            "alice".into(),
            Credentials::from_password("alice", REALM, "wonderland1"),
        )),
    );
    let r = final_of(&n.send(5080, req("MESSAGE", ROOM, "alice", 5080, "d0", 1, "", "")));
    let ch = challenges(&r);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].0, "MD5");
    let sha = answer(
        "MESSAGE",
        ROOM,
        "alice",
        "wonderland1",
        &ch[0].1,
        Algorithm::Sha256,
        1,
    );
    let r = final_of(&n.send(5080, req("MESSAGE", ROOM, "alice", 5080, "d1", 1, &sha, "")));
    assert_eq!(r.status, 401, "an algorithm not offered");
    let md5 = answer(
        "MESSAGE",
        ROOM,
        "alice",
        "wonderland1",
        &ch[0].1,
        Algorithm::Md5,
        2,
    );
    let r = final_of(&n.send(5080, req("MESSAGE", ROOM, "alice", 5080, "d2", 1, &md5, "")));
    assert_eq!(r.status, 403, "past the gate: not a participant");
}

#[test]
fn every_refusal_is_the_same_401_and_an_address_that_keeps_failing_is_ignored() {
    let mut n = Net::new(AuthMode::Required);
    let out = n.send(5080, req("INVITE", ROOM, "alice", 5080, "b0", 1, "", ""));
    let nonce = challenges(&final_of(&out))[0].1.clone();
    // Wrong password, unknown user, a room that does not exist: all 401.
    let cases = [
        ("alice", "guess", ROOM),
        ("nobody", "guess", ROOM),
        ("alice", "guess", "sip:no-such-room@127.0.0.1:5060"),
        ("alice", "guess2", ROOM),
    ];
    for (i, (user, pass, target)) in cases.into_iter().enumerate() {
        let auth = answer("INVITE", target, user, pass, &nonce, Algorithm::Sha256, 1);
        let cid = format!("b{i}");
        let out = n.send(
            5080,
            req("INVITE", target, "alice", 5080, &cid, 2, &auth, ""),
        );
        let r = final_of(&out);
        assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
    }
    // The fifth failure locks the address out: no answer at all, even to
    // a good password, until the lockout ends.
    let auth = answer("INVITE", ROOM, "alice", "bad", &nonce, Algorithm::Sha256, 1);
    assert_eq!(
        final_of(&n.send(5080, req("INVITE", ROOM, "alice", 5080, "b5", 2, &auth, ""))).status,
        401
    );
    let auth = answer(
        "INVITE",
        ROOM,
        "alice",
        "wonderland1",
        &nonce,
        Algorithm::Sha256,
        2,
    );
    let out = n.send(
        5080,
        req(
            "INVITE",
            ROOM,
            "alice",
            5080,
            "b6",
            2,
            &auth,
            &sdp(5081, "sendrecv"),
        ),
    );
    assert!(out.is_empty(), "{out:#?}");
    let stats = n.focus.auth_stats();
    assert_eq!((stats.lockouts, stats.ignored), (1, 1));
    n.now += Duration::from_secs(601);
    let out = n.send(5080, req("INVITE", ROOM, "alice", 5080, "b7", 1, "", ""));
    assert_eq!(
        final_of(&out).status,
        401,
        "answered again after the lockout"
    );
}

#[test]
fn a_replayed_nonce_count_and_an_expired_nonce_are_challenged_again() {
    let mut n = Net::new(AuthMode::Required);
    let out = n.send(5080, req("MESSAGE", ROOM, "alice", 5080, "m0", 1, "", ""));
    let nonce = challenges(&final_of(&out))[0].1.clone();
    let auth = answer(
        "MESSAGE",
        ROOM,
        "alice",
        "wonderland1",
        &nonce,
        Algorithm::Sha256,
        1,
    );
    // Authenticated, then refused as no participant: past the gate.
    let out = n.send(
        5080,
        req("MESSAGE", ROOM, "alice", 5080, "m1", 1, &auth, ""),
    );
    assert_eq!(final_of(&out).status, 403);
    let out = n.send(
        5080,
        req("MESSAGE", ROOM, "alice", 5080, "m2", 1, &auth, ""),
    );
    let r = final_of(&out);
    assert_eq!(r.status, 401, "the same nonce-count again is a replay");
    assert!(!challenges(&r)[0].2);
    n.now += Duration::from_secs(301);
    let auth = answer(
        "MESSAGE",
        ROOM,
        "alice",
        "wonderland1",
        &nonce,
        Algorithm::Sha256,
        2,
    );
    let r = final_of(&n.send(
        5080,
        req("MESSAGE", ROOM, "alice", 5080, "m3", 1, &auth, ""),
    ));
    assert_eq!(r.status, 401);
    assert!(challenges(&r).iter().all(|c| c.2), "stale=true: {r:?}");
}

#[test]
fn rooms_mode_admits_anonymous_callers_except_to_members_only_rooms() {
    let mut n = Net::new(AuthMode::Rooms);
    n.focus.handle_input(
        n.now,
        Input::Command(FocusCommand::UpsertRoom(focus::RoomPolicy {
            name: "board".into(),
            members_only: true,
            ..Default::default()
        })),
    );
    let offer = sdp(5081, "sendrecv");
    let out = n.send(
        5080,
        req("INVITE", ROOM, "guest", 5080, "r1", 1, "", &offer),
    );
    assert_eq!(final_of(&out).status, 200);
    let board = "sip:board@127.0.0.1:5060";
    let out = n.send(
        5082,
        req("INVITE", board, "guest", 5082, "r2", 1, "", &offer),
    );
    let r = final_of(&out);
    assert_eq!(r.status, 401);
    let nonce = challenges(&r)[0].1.clone();
    let auth = answer(
        "INVITE",
        board,
        "bob",
        "builder-22",
        &nonce,
        Algorithm::Sha256,
        1,
    );
    let out = n.send(
        5082,
        req("INVITE", board, "guest", 5082, "r2", 2, &auth, &offer),
    );
    assert_eq!(final_of(&out).status, 200);
}

#[test]
fn a_watcher_is_who_authenticated_not_who_from_claims() {
    let mut n = Net::new(AuthMode::Required);
    n.focus.handle_input(
        n.now,
        Input::Command(FocusCommand::UpsertRoom(focus::RoomPolicy {
            name: "big".into(),
            watchers: vec!["sip:alice@example.com".into()],
            ..Default::default()
        })),
    );
    let sub = |cseq: u32, extra: &str| {
        let extra = format!("Event: conference\r\nExpires: 600\r\n{extra}");
        req("SUBSCRIBE", ROOM, "alice", 5090, "s1", cseq, &extra, "")
    };
    let nonce = challenges(&final_of(&n.send(5090, sub(1, ""))))[0]
        .1
        .clone();
    // From says alice, the credentials are bob's: not a watcher.
    let auth = answer(
        "SUBSCRIBE",
        ROOM,
        "bob",
        "builder-22",
        &nonce,
        Algorithm::Sha256,
        1,
    );
    assert_eq!(final_of(&n.send(5090, sub(2, &auth))).status, 403);
    let auth = answer(
        "SUBSCRIBE",
        ROOM,
        "alice",
        "wonderland1",
        &nonce,
        Algorithm::Sha256,
        2,
    );
    assert_eq!(final_of(&n.send(5090, sub(3, &auth))).status, 200);
}

/// Registers `user`'s phone on `port`; the 200.
fn register(n: &mut Net, user: &str, pass: &str, port: u16, cseq: u32, extra: &str) -> Response {
    let registrar = "sip:127.0.0.1:5060";
    let cid = format!("reg-{user}-{port}");
    let r = final_of(&n.send(
        port,
        req("REGISTER", registrar, user, port, &cid, cseq, extra, ""),
    ));
    if r.status != 401 {
        return r;
    }
    let nonce = challenges(&r)[0].1.clone();
    let auth = answer(
        "REGISTER",
        registrar,
        user,
        pass,
        &nonce,
        Algorithm::Sha256,
        1,
    );
    let extra = format!("{extra}{auth}");
    final_of(&n.send(
        port,
        req(
            "REGISTER",
            registrar,
            user,
            port,
            &cid,
            cseq + 1,
            &extra,
            "",
        ),
    ))
}

#[test]
fn register_binds_contacts_by_the_rules_and_hands_them_to_the_store() {
    let mut n = Net::new(AuthMode::Required);
    let r = register(&mut n, "bob", "builder-22", 5070, 1, "Expires: 600\r\n");
    assert_eq!(r.status, 200, "{r:?}");
    let contacts: Vec<&str> = r.headers.values(&HeaderName::CONTACT).collect();
    assert_eq!(contacts, ["<sip:bob@127.0.0.1:5070>;expires=600"]);
    assert!(r.headers.get(&HeaderName::DATE).is_some());
    let b = n.edge.bindings.pop().expect("a change for the store");
    assert_eq!(b.aor, format!("sip:bob@{SERVER}"));
    assert_eq!(b.bindings.len(), 1);
    assert_eq!(b.bindings[0].source.map(|p| p.addr.port()), Some(5070));
    // Too brief: 423 with Min-Expires.
    let r = register(&mut n, "bob", "builder-22", 5071, 1, "Expires: 5\r\n");
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get(&HeaderName::MIN_EXPIRES), Some("60"));
    // Someone else's address of record: 403 (From and To say alice,
    // the credentials are bob's).
    let registrar = "sip:127.0.0.1:5060";
    let r = final_of(&n.send(
        5072,
        req("REGISTER", registrar, "alice", 5072, "x1", 1, "", ""),
    ));
    let nonce = challenges(&r)[0].1.clone();
    let auth = answer(
        "REGISTER",
        registrar,
        "bob",
        "builder-22",
        &nonce,
        Algorithm::Sha256,
        1,
    );
    let r = final_of(&n.send(
        5072,
        req("REGISTER", registrar, "alice", 5072, "x1", 2, &auth, ""),
    ));
    assert_eq!(r.status, 403);
}

#[test]
fn a_dial_out_to_a_registered_user_forks_and_the_first_answer_wins() {
    let mut n = Net::new(AuthMode::Required);
    assert_eq!(
        register(&mut n, "bob", "builder-22", 5070, 1, "").status,
        200
    );
    assert_eq!(
        register(&mut n, "bob", "builder-22", 5074, 1, "").status,
        200
    );
    n.focus.handle_input(
        n.now,
        Input::Command(FocusCommand::UpsertRoom(focus::RoomPolicy {
            name: "big".into(),
            ..Default::default()
        })),
    );
    // Not registered and no pattern allows it: refused.
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    n.focus
        .dial_out_api(n.now, "big", "sip:carol@192.0.2.9", tx);
    assert!(matches!(
        rx.try_recv(),
        Ok(Err(focus::ControlError::NotAllowed(_)))
    ));
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    n.focus
        .dial_out_api(n.now, "big", &format!("sip:bob@{SERVER}"), tx);
    let id = rx.try_recv().expect("answered").expect("placed");
    let out = sent(&mut n.focus, &mut n.edge, n.now);
    let invites = requests(&out, Method::Invite);
    let mut ports: Vec<u16> = invites.iter().map(|(p, _)| *p).collect();
    ports.sort();
    assert_eq!(ports, [5070, 5074], "both phones ring");
    let call_ids: Vec<&str> = invites
        .iter()
        .filter_map(|(_, i)| i.headers.call_id())
        .collect();
    assert_eq!(call_ids[0], call_ids[1], "one call, two branches");
    let (winner_port, winner) = invites.iter().find(|(p, _)| *p == 5074).unwrap();
    let mut ok = Response::to_request(winner, 200, "OK", Some("bob74"));
    ok.headers
        .push(HeaderName::CONTACT, "<sip:bob@127.0.0.1:5074>");
    ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
    ok.body = sdp(5075, "sendrecv").into_bytes().into();
    let out = n.send(*winner_port, Message::Response(ok));
    assert_eq!(requests(&out, Method::Ack).len(), 1);
    let cancels = requests(&out, Method::Cancel);
    assert_eq!(
        cancels.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [5070],
        "{out:#?}"
    );
    let who = n.focus.participants("big").unwrap();
    assert_eq!((who.len(), who[0].id.as_str()), (1, id.as_str()));
    // The cancelled phone answers anyway (the CANCEL crossed its 200):
    // acknowledged and hung up.
    let (_, loser) = invites.iter().find(|(p, _)| *p == 5070).unwrap();
    let ok = Response::to_request(loser, 200, "OK", Some("bob70"));
    let out = n.send(5070, Message::Response(ok));
    assert_eq!(requests(&out, Method::Ack).len(), 1);
    assert_eq!(requests(&out, Method::Bye).len(), 1);
    assert_eq!(n.focus.room_size("big"), 1);
}
