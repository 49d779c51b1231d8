//! The participant, floor, dial-out, blueprint and watch methods over real
//! loopback gRPC, without a focus: every one checks its token
//! (Unauthenticated, PermissionDenied for a viewer or another room's
//! moderator) and its fields (InvalidArgument naming the field) before it
//! asks for live calls, which then fails as Unavailable. Also blueprints,
//! the per-token rate limit and TLS.

use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::{self, Conference};
use policy_server::{PolicyConfig, PolicyServer, TlsFiles};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

fn data_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("confab-control-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(dir: &std::path::Path, tweak: impl FnOnce(&mut PolicyConfig)) -> PolicyServer {
    let mut c = PolicyConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    tweak(&mut c);
    PolicyServer::start(c, None, None).await.unwrap()
}

fn auth<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {t}")).unwrap(),
        );
    }
    r
}

type Client = ConferenceControlClient<Channel>;

/// Every live-call method once, for `room` and participant `id`, with `token`.
async fn every_live_call(
    c: &mut Client,
    token: Option<&str>,
    room: &str,
    id: &str,
) -> Vec<(&'static str, Status)> {
    let mut out = Vec::new();
    let conf = || room.to_owned();
    macro_rules! call {
        ($name:literal, $e:expr) => {
            out.push((
                $name,
                $e.await.err().unwrap_or_else(|| Status::ok("succeeded")),
            ));
        };
    }
    call!(
        "list_participants",
        c.list_participants(auth(
            pb::ListParticipantsRequest { conference: conf() },
            token
        ))
    );
    call!(
        "get_participant",
        c.get_participant(auth(
            pb::GetParticipantRequest {
                conference: conf(),
                id: id.into()
            },
            token
        ))
    );
    call!(
        "update_participant",
        c.update_participant(auth(
            pb::UpdateParticipantRequest {
                conference: conf(),
                participant: Some(pb::Participant {
                    id: id.into(),
                    muted: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["muted".into()]
                }),
            },
            token
        ))
    );
    call!(
        "remove_participant",
        c.remove_participant(auth(
            pb::RemoveParticipantRequest {
                conference: conf(),
                id: id.into()
            },
            token
        ))
    );
    call!(
        "dial_out",
        c.dial_out(auth(
            pb::DialOutRequest {
                conference: conf(),
                uri: "sip:bob@127.0.0.1:5099".into()
            },
            token
        ))
    );
    call!(
        "mute_all",
        c.mute_all(auth(
            pb::MuteAllRequest {
                conference: conf(),
                muted: true
            },
            token
        ))
    );
    call!(
        "get_floor",
        c.get_floor(auth(pb::GetFloorRequest { conference: conf() }, token))
    );
    let fr = || pb::FloorRequest {
        conference: conf(),
        participant: id.into(),
    };
    call!("request_floor", c.request_floor(auth(fr(), token)));
    call!("release_floor", c.release_floor(auth(fr(), token)));
    call!("grant_floor", c.grant_floor(auth(fr(), token)));
    call!("deny_floor", c.deny_floor(auth(fr(), token)));
    call!(
        "watch_conference",
        c.watch_conference(auth(
            pb::WatchConferenceRequest { conference: conf() },
            token
        ))
    );
    call!(
        "start_recording",
        c.start_recording(auth(
            pb::StartRecordingRequest { conference: conf() },
            token
        ))
    );
    call!(
        "stop_recording",
        c.stop_recording(auth(pb::StopRecordingRequest { conference: conf() }, token))
    );
    call!(
        "list_recordings",
        c.list_recordings(auth(
            pb::ListRecordingsRequest { conference: conf() },
            token
        ))
    );
    out
}

const READS: &[&str] = &[
    "list_participants",
    "get_participant",
    "get_floor",
    "watch_conference",
    "list_recordings",
];

#[tokio::test]
async fn every_live_method_checks_the_token_before_anything_else() {
    let dir = data_dir("auth");
    let s = start(&dir, |_| {}).await;
    let admin = s.admin_token.clone().unwrap();
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    for name in ["a", "b"] {
        c.create_conference(auth(
            pb::CreateConferenceRequest {
                conference: Some(Conference {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap();
    }
    let token = |role: pb::Role, rooms: &[&str]| pb::CreateTokenRequest {
        role: role as i32,
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        description: String::new(),
    };
    let viewer = c
        .create_token(auth(token(pb::Role::Viewer, &[]), Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .token;
    let mod_a = c
        .create_token(auth(token(pb::Role::Moderator, &["a"]), Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .token;

    for t in [None, Some("no-such-token")] {
        for (name, st) in every_live_call(&mut c, t, "a", "p1").await {
            assert_eq!(
                st.code(),
                Code::Unauthenticated,
                "{name} without a valid token"
            );
        }
    }
    for (name, st) in every_live_call(&mut c, Some(&viewer), "a", "p1").await {
        let want = if READS.contains(&name) {
            Code::Unavailable
        } else {
            Code::PermissionDenied
        };
        assert_eq!(st.code(), want, "{name} with a viewer token: {st:?}");
    }
    for (name, st) in every_live_call(&mut c, Some(&mod_a), "b", "p1").await {
        assert_eq!(
            st.code(),
            Code::PermissionDenied,
            "{name} by a's moderator on b: {st:?}"
        );
    }
    // Its own room passes every check; no focus is attached, so Unavailable.
    for (name, st) in every_live_call(&mut c, Some(&mod_a), "a", "p1").await {
        assert_eq!(
            st.code(),
            Code::Unavailable,
            "{name} by a's moderator on a: {st:?}"
        );
    }
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn malformed_fields_are_invalid_argument_naming_the_field() {
    let dir = data_dir("bad");
    let s = start(&dir, |_| {}).await;
    let admin = s.admin_token.clone().unwrap();
    let t = Some(admin.as_str());
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    for (room, id) in [("", "p1"), ("bad room", "p1"), (&*"r".repeat(65), "p1")] {
        for (name, st) in every_live_call(&mut c, t, room, id).await {
            if name == "list_recordings" && room.is_empty() {
                // No room named: every room's recordings.
                continue;
            }
            assert_eq!(
                st.code(),
                Code::InvalidArgument,
                "{name} with room {room:?}"
            );
            assert!(
                st.message().starts_with("conference"),
                "{name}: {}",
                st.message()
            );
        }
    }
    for id in ["", "../x", &"p".repeat(65)] {
        for (name, st) in every_live_call(&mut c, t, "a", id).await {
            if [
                "get_participant",
                "update_participant",
                "remove_participant",
                "request_floor",
                "release_floor",
                "grant_floor",
                "deny_floor",
            ]
            .contains(&name)
            {
                assert_eq!(st.code(), Code::InvalidArgument, "{name} with id {id:?}");
            }
        }
    }
    let update = |p: pb::Participant, paths: &[&str]| pb::UpdateParticipantRequest {
        conference: "a".into(),
        participant: Some(p),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        }),
    };
    let p = || pb::Participant {
        id: "p1".into(),
        ..Default::default()
    };
    let cases = vec![
        (update(p(), &[]), "update_mask"),
        (update(p(), &["uri"]), "update_mask"),
        (update(p(), &["role"]), "role"),
        (
            update(pb::Participant { role: 99, ..p() }, &["role"]),
            "role",
        ),
        (
            update(
                pb::Participant {
                    input_gain_db: 40.0,
                    ..p()
                },
                &["input_gain_db"],
            ),
            "input_gain_db",
        ),
        (
            update(
                pb::Participant {
                    output_gain_db: f32::NAN,
                    ..p()
                },
                &["output_gain_db"],
            ),
            "output_gain_db",
        ),
        (
            pb::UpdateParticipantRequest {
                participant: None,
                ..update(p(), &["muted"])
            },
            "participant",
        ),
        (
            pb::UpdateParticipantRequest {
                update_mask: None,
                ..update(p(), &["muted"])
            },
            "update_mask",
        ),
    ];
    for (req, field) in cases {
        let st = c
            .update_participant(auth(req.clone(), t))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{req:?}");
        assert!(st.message().starts_with(field), "{field}: {}", st.message());
    }
    for uri in [
        "",
        "tel:+123",
        "bob@host",
        &format!("sip:{}", "b".repeat(300)),
    ] {
        let st = c
            .dial_out(auth(
                pb::DialOutRequest {
                    conference: "a".into(),
                    uri: uri.into(),
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{uri:?}");
        assert!(st.message().starts_with("uri"), "{}", st.message());
    }
    for bad in ["", "no such", &"b".repeat(65)] {
        let st = c
            .get_blueprint(auth(pb::GetBlueprintRequest { name: bad.into() }, t))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{bad:?}");
    }
    let st = c
        .create_conference(auth(
            pb::CreateConferenceRequest {
                conference: Some(Conference {
                    name: "x".into(),
                    floor_policy: 42,
                    ..Default::default()
                }),
                ..Default::default()
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().starts_with("floor_policy"), "{}", st.message());
    // Still serving.
    c.list_blueprints(auth(pb::ListBlueprintsRequest {}, t))
        .await
        .unwrap();
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn blueprints_are_listed_and_make_rooms() {
    let dir = data_dir("blueprints");
    let s = start(&dir, |_| {}).await;
    let admin = s.admin_token.clone().unwrap();
    let t = Some(admin.as_str());
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    let all = c
        .list_blueprints(auth(pb::ListBlueprintsRequest {}, t))
        .await
        .unwrap()
        .into_inner()
        .blueprints;
    let names: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["huddle", "lecture", "meeting", "panel", "town-hall"]
    );
    let town_hall = all.iter().find(|b| b.name == "town-hall").unwrap();
    assert!(town_hall.settings.as_ref().is_some_and(|c| c.record));
    let lecture = c
        .get_blueprint(auth(
            pb::GetBlueprintRequest {
                name: "lecture".into(),
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    let settings = lecture.settings.unwrap();
    assert!(settings.mute_on_entry);
    assert_eq!(
        settings.floor_policy,
        pb::FloorPolicy::ModeratorGranted as i32
    );
    assert_eq!(
        c.get_blueprint(auth(
            pb::GetBlueprintRequest {
                name: "gala".into()
            },
            t
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let made = c
        .create_conference(auth(
            pb::CreateConferenceRequest {
                conference: Some(Conference {
                    name: "cs101".into(),
                    subject: "Compilers".into(),
                    pin: "2468".into(),
                    ..Default::default()
                }),
                blueprint: "lecture".into(),
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(made.mute_on_entry && made.has_pin && made.subject == "Compilers");
    assert_eq!(made.floor_policy, pb::FloorPolicy::ModeratorGranted as i32);
    assert_eq!(made.talkers_mixed, 2, "the lecturer and one question");
    let missing = c
        .create_conference(auth(
            pb::CreateConferenceRequest {
                conference: Some(Conference {
                    name: "x".into(),
                    ..Default::default()
                }),
                blueprint: "gala".into(),
            },
            t,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // A viewer may read blueprints; nobody without a token may.
    assert_eq!(
        c.list_blueprints(auth(pb::ListBlueprintsRequest {}, None))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    s.stop();
    // The floor policy survives a restart with the room.
    let s = start(&dir, |_| {}).await;
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    let again = c
        .get_conference(auth(
            pb::GetConferenceRequest {
                name: "cs101".into(),
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.floor_policy, pb::FloorPolicy::ModeratorGranted as i32);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_token_over_its_rate_gets_resource_exhausted_and_others_do_not() {
    let dir = data_dir("rate");
    let s = start(&dir, |c| c.rate_per_token = 5.0).await;
    let admin = s.admin_token.clone().unwrap();
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    let other = c
        .create_token(auth(
            pb::CreateTokenRequest {
                role: pb::Role::Viewer as i32,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut exhausted = 0;
    for _ in 0..30 {
        match c
            .list_blueprints(auth(pb::ListBlueprintsRequest {}, Some(&admin)))
            .await
        {
            Ok(_) => {}
            Err(st) if st.code() == Code::ResourceExhausted => exhausted += 1,
            Err(st) => panic!("{st:?}"),
        }
    }
    assert!(
        exhausted >= 15,
        "only {exhausted} of 30 refused at 5/s (burst 10)"
    );
    c.list_blueprints(auth(pb::ListBlueprintsRequest {}, Some(&other)))
        .await
        .unwrap();
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn grpc_over_tls_when_a_certificate_is_configured() {
    let dir = data_dir("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = start(&dir, |c| {
        c.tls = Some(TlsFiles {
            cert: cert_path.clone(),
            key: key_path.clone(),
        })
    })
    .await;
    let admin = s.admin_token.clone().unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert.cert.pem()))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://{}", s.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = Client::new(ch);
    let all = c
        .list_blueprints(auth(pb::ListBlueprintsRequest {}, Some(&admin)))
        .await
        .unwrap();
    assert_eq!(all.into_inner().blueprints.len(), 5);
    // Plain HTTP/2 to a TLS port gets nowhere.
    let plain = async {
        let mut p = Client::connect(format!("http://{}", s.addr)).await.ok()?;
        p.list_blueprints(auth(pb::ListBlueprintsRequest {}, Some(&admin)))
            .await
            .ok()
    };
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), plain).await;
    assert!(!matches!(r, Ok(Some(_))), "plain text must not be served");
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn auto_create_defaults_to_true_round_trips_and_needs_a_value_in_a_mask() {
    let dir = data_dir("autocreate");
    let s = start(&dir, |_| {}).await;
    let admin = s.admin_token.clone().unwrap();
    let t = Some(admin.as_str());
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    let make = |name: &str, auto: Option<bool>| pb::CreateConferenceRequest {
        conference: Some(Conference {
            name: name.into(),
            auto_create: auto,
            ..Default::default()
        }),
        ..Default::default()
    };
    let open = c
        .create_conference(auth(make("open", None), t))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.auto_create, Some(true));
    let led = c
        .create_conference(auth(make("led", Some(false)), t))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(led.auto_create, Some(false));
    let lecture = c
        .create_conference(auth(
            pb::CreateConferenceRequest {
                blueprint: "lecture".into(),
                ..make("class", None)
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        lecture.auto_create,
        Some(false),
        "the lecture blueprint starts with its moderator"
    );
    let update = |auto: Option<bool>| pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: "led".into(),
            auto_create: auto,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["auto_create".into()],
        }),
    };
    let st = c
        .update_conference(auth(update(None), t))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().starts_with("auto_create"), "{}", st.message());
    let now = c
        .update_conference(auth(update(Some(true)), t))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.auto_create, Some(true));
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked_at_once() {
    let dir = data_dir("tokens");
    let s = start(&dir, |_| {}).await;
    let admin = s.admin_token.clone().unwrap();
    let t = Some(admin.as_str());
    let mut c = Client::connect(format!("http://{}", s.addr)).await.unwrap();
    let made = c
        .create_token(auth(
            pb::CreateTokenRequest {
                role: pb::Role::Moderator as i32,
                rooms: vec!["a".into()],
                description: "alice".into(),
            },
            t,
        ))
        .await
        .unwrap()
        .into_inner();
    let all = c
        .list_tokens(auth(pb::ListTokensRequest {}, t))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(all.len(), 2);
    let alice = all.iter().find(|x| x.id == made.id).unwrap();
    assert_eq!(
        (alice.role, alice.rooms.clone(), alice.description.as_str()),
        (pb::Role::Moderator as i32, vec!["a".to_string()], "alice")
    );
    // The moderator may not list or revoke tokens.
    let st = c
        .list_tokens(auth(pb::ListTokensRequest {}, Some(&made.token)))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);
    // Bad and unknown ids.
    for (id, code) in [
        ("", Code::InvalidArgument),
        ("../x", Code::InvalidArgument),
        ("00ff00ff00ff00ff", Code::NotFound),
    ] {
        let st = c
            .delete_token(auth(pb::DeleteTokenRequest { id: id.into() }, t))
            .await
            .unwrap_err();
        assert_eq!(st.code(), code, "{id:?}");
    }
    // Revoked: the token stops working at once.
    c.delete_token(auth(
        pb::DeleteTokenRequest {
            id: made.id.clone(),
        },
        t,
    ))
    .await
    .unwrap();
    let st = c
        .list_blueprints(auth(pb::ListBlueprintsRequest {}, Some(&made.token)))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    // The last admin token stays.
    let admin_id = all
        .iter()
        .find(|x| x.role == pb::Role::Admin as i32)
        .unwrap()
        .id
        .clone();
    let st = c
        .delete_token(auth(pb::DeleteTokenRequest { id: admin_id }, t))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
