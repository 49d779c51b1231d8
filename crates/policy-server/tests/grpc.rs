//! The policy server over real loopback gRPC: the first-start admin token,
//! CRUD with field masks and paging, persistence across a restart, every
//! authorization case, bad input, request size, and the health service.

use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::{self, Conference};
use policy_server::{PolicyConfig, PolicyServer};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

fn data_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("confab-policy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(dir: &std::path::Path) -> PolicyServer {
    start_on(dir, None).await
}

/// A server on `database` (a URL), or on SQLite in `dir` when None.
async fn start_on(dir: &std::path::Path, database: Option<&str>) -> PolicyServer {
    PolicyServer::start(
        PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.to_path_buf(),
            database_url: database.map(str::to_owned),
            ..Default::default()
        },
        None,
        None,
    )
    .await
    .unwrap()
}

async fn client(s: &PolicyServer) -> ConferenceControlClient<Channel> {
    ConferenceControlClient::connect(format!("http://{}", s.addr))
        .await
        .unwrap()
}

fn with_token<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {t}")).unwrap(),
        );
    }
    r
}

fn room(name: &str) -> Conference {
    Conference {
        name: name.into(),
        subject: "Weekly".into(),
        max_participants: 20,
        pin: "1234".into(),
        ..Default::default()
    }
}

async fn create(
    c: &mut ConferenceControlClient<Channel>,
    token: &str,
    name: &str,
) -> Result<Conference, tonic::Status> {
    c.create_conference(with_token(
        pb::CreateConferenceRequest {
            conference: Some(room(name)),
            ..Default::default()
        },
        Some(token),
    ))
    .await
    .map(|r| r.into_inner())
}

async fn token(
    c: &mut ConferenceControlClient<Channel>,
    admin: &str,
    role: pb::Role,
    rooms: &[&str],
) -> String {
    let req = pb::CreateTokenRequest {
        role: role as i32,
        rooms: rooms.iter().map(|s| s.to_string()).collect(),
        description: "test".into(),
    };
    c.create_token(with_token(req, Some(admin)))
        .await
        .unwrap()
        .into_inner()
        .token
}

#[tokio::test]
async fn crud_persists_across_a_restart_and_the_admin_token_is_made_once() {
    crud_persists("crud", None).await;
}

/// The same on PostgreSQL: the same migrations, the same queries.
#[tokio::test]
async fn crud_persists_on_postgresql_too() {
    let Some(pg) = test_support::postgres::Postgres::start("crud") else {
        return;
    };
    crud_persists("crud-pg", Some(&pg.url())).await;
}

async fn crud_persists(name: &str, database: Option<&str>) {
    let dir = data_dir(name);
    let s = start_on(&dir, database).await;
    let admin = s
        .admin_token
        .clone()
        .expect("first start makes an admin token");
    let file = dir.join("admin.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), admin);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut c = client(&s).await;
    let made = create(&mut c, &admin, "alpha").await.unwrap();
    assert!(
        made.has_pin && made.pin.is_empty(),
        "the PIN is never returned"
    );
    assert_eq!(
        create(&mut c, &admin, "alpha").await.unwrap_err().code(),
        Code::AlreadyExists
    );
    for n in ["bravo", "charlie", "delta"] {
        create(&mut c, &admin, n).await.unwrap();
    }
    // Paging: two per page.
    let p1 = c
        .list_conferences(with_token(
            pb::ListConferencesRequest {
                page_size: 2,
                page_token: String::new(),
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p1.conferences
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["alpha", "bravo"]
    );
    let p2 = c
        .list_conferences(with_token(
            pb::ListConferencesRequest {
                page_size: 2,
                page_token: p1.next_page_token,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p2.conferences
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["charlie", "delta"]
    );
    // Update with a field mask: only the named fields change.
    let upd = pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: "alpha".into(),
            subject: "Changed".into(),
            locked: true,
            max_participants: 999,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["subject".into(), "locked".into()],
        }),
    };
    let after = c
        .update_conference(with_token(upd, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (after.subject.as_str(), after.locked, after.max_participants),
        ("Changed", true, 20)
    );
    assert_eq!(after.srtp(), pb::SrtpMode::Unspecified, "the server's own");
    // A room's own SRTP mode, set and read back.
    let upd = pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: "alpha".into(),
            srtp: pb::SrtpMode::Required as i32,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["srtp".into()],
        }),
    };
    c.update_conference(with_token(upd, Some(&admin)))
        .await
        .unwrap();
    let got = c
        .get_conference(with_token(
            pb::GetConferenceRequest {
                name: "alpha".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.srtp(), got.subject.as_str()),
        (pb::SrtpMode::Required, "Changed")
    );
    c.delete_conference(with_token(
        pb::DeleteConferenceRequest {
            name: "delta".into(),
        },
        Some(&admin),
    ))
    .await
    .unwrap();
    let gone = c
        .get_conference(with_token(
            pb::GetConferenceRequest {
                name: "delta".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let viewer = token(&mut c, &admin, pb::Role::Viewer, &[]).await;
    s.stop();

    // Restart on the same store: everything is there, no second admin token.
    let s = start_on(&dir, database).await;
    assert!(s.admin_token.is_none());
    let mut c = client(&s).await;
    let got = c
        .get_conference(with_token(
            pb::GetConferenceRequest {
                name: "alpha".into(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.subject.as_str(), got.locked), ("Changed", true));
    let all = c
        .list_conferences(with_token(
            pb::ListConferencesRequest::default(),
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.conferences.len(), 3);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_call_checks_its_token() {
    let dir = data_dir("auth");
    let s = start(&dir).await;
    let admin = s.admin_token.clone().unwrap();
    let mut c = client(&s).await;
    create(&mut c, &admin, "a").await.unwrap();
    create(&mut c, &admin, "b").await.unwrap();
    let viewer = token(&mut c, &admin, pb::Role::Viewer, &[]).await;
    let mod_a = token(&mut c, &admin, pb::Role::Moderator, &["a"]).await;

    // No token, a malformed header, an unknown token: Unauthenticated, for every method.
    for t in [None, Some("not-a-real-token")] {
        let code = |r: Result<tonic::Response<Conference>, tonic::Status>| r.unwrap_err().code();
        assert_eq!(
            code(
                c.get_conference(with_token(pb::GetConferenceRequest { name: "a".into() }, t))
                    .await
            ),
            Code::Unauthenticated
        );
        assert_eq!(
            code(
                c.create_conference(with_token(
                    pb::CreateConferenceRequest {
                        conference: Some(room("x")),
                        ..Default::default()
                    },
                    t
                ))
                .await
            ),
            Code::Unauthenticated
        );
        let list = c
            .list_conferences(with_token(pb::ListConferencesRequest::default(), t))
            .await;
        assert_eq!(list.unwrap_err().code(), Code::Unauthenticated);
        let del = c
            .delete_conference(with_token(
                pb::DeleteConferenceRequest { name: "a".into() },
                t,
            ))
            .await;
        assert_eq!(del.unwrap_err().code(), Code::Unauthenticated);
        let tok = c
            .create_token(with_token(
                pb::CreateTokenRequest {
                    role: pb::Role::Viewer as i32,
                    ..Default::default()
                },
                t,
            ))
            .await;
        assert_eq!(tok.unwrap_err().code(), Code::Unauthenticated);
    }
    let mut raw = Request::new(pb::GetConferenceRequest { name: "a".into() });
    raw.metadata_mut()
        .insert("authorization", MetadataValue::from_static("Basic abc"));
    assert_eq!(
        c.get_conference(raw).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A viewer reads but changes nothing.
    c.get_conference(with_token(
        pb::GetConferenceRequest { name: "b".into() },
        Some(&viewer),
    ))
    .await
    .unwrap();
    assert_eq!(
        create(&mut c, &viewer, "v").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let mask = || {
        Some(prost_types::FieldMask {
            paths: vec!["locked".into()],
        })
    };
    let lock = |name: &str| pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: name.into(),
            locked: true,
            ..Default::default()
        }),
        update_mask: mask(),
    };
    assert_eq!(
        c.update_conference(with_token(lock("a"), Some(&viewer)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // A moderator of a changes a, not b, and sees only a.
    c.update_conference(with_token(lock("a"), Some(&mod_a)))
        .await
        .unwrap();
    assert_eq!(
        c.update_conference(with_token(lock("b"), Some(&mod_a)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let b = c
        .get_conference(with_token(
            pb::GetConferenceRequest { name: "b".into() },
            Some(&mod_a),
        ))
        .await;
    assert_eq!(b.unwrap_err().code(), Code::PermissionDenied);
    let seen = c
        .list_conferences(with_token(
            pb::ListConferencesRequest::default(),
            Some(&mod_a),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        seen.conferences
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(
        create(&mut c, &mod_a, "m").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let t = c
        .create_token(with_token(
            pb::CreateTokenRequest {
                role: pb::Role::Viewer as i32,
                ..Default::default()
            },
            Some(&mod_a),
        ))
        .await;
    assert_eq!(t.unwrap_err().code(), Code::PermissionDenied);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_the_server_keeps_serving() {
    let dir = data_dir("bad");
    let s = start(&dir).await;
    let admin = s.admin_token.clone().unwrap();
    let mut c = client(&s).await;
    let cases: Vec<(Conference, &str)> = vec![
        (
            Conference {
                name: String::new(),
                ..Default::default()
            },
            "name",
        ),
        (
            Conference {
                name: "has space".into(),
                ..Default::default()
            },
            "name",
        ),
        (
            Conference {
                name: "x".repeat(65),
                ..Default::default()
            },
            "name",
        ),
        (
            Conference {
                name: "ok".into(),
                pin: "12".into(),
                ..Default::default()
            },
            "pin",
        ),
        (
            Conference {
                name: "ok".into(),
                moderator_pin: "abcd".into(),
                ..Default::default()
            },
            "moderator_pin",
        ),
        (
            Conference {
                name: "ok".into(),
                subject: "s".repeat(300),
                ..Default::default()
            },
            "subject",
        ),
        (
            Conference {
                name: "ok".into(),
                max_participants: 1_000_000,
                ..Default::default()
            },
            "max_participants",
        ),
        (
            Conference {
                name: "ok".into(),
                talkers_mixed: 99,
                ..Default::default()
            },
            "talkers_mixed",
        ),
        (
            Conference {
                name: "ok".into(),
                watchers: vec![String::new()],
                ..Default::default()
            },
            "watchers",
        ),
        (
            Conference {
                name: "ok".into(),
                srtp: 99,
                ..Default::default()
            },
            "srtp",
        ),
    ];
    for (conf, field) in cases {
        let e = c
            .create_conference(with_token(
                pb::CreateConferenceRequest {
                    conference: Some(conf),
                    ..Default::default()
                },
                Some(&admin),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    let e = c
        .create_conference(with_token(
            pb::CreateConferenceRequest::default(),
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("conference"));
    create(&mut c, &admin, "ok").await.unwrap();
    let bad_mask = pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: "ok".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["created_at".into()],
        }),
    };
    let e = c
        .update_conference(with_token(bad_mask, Some(&admin)))
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("update_mask"));
    let e = c
        .list_conferences(with_token(
            pb::ListConferencesRequest {
                page_size: 5000,
                page_token: String::new(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("page_size"));
    let e = c
        .list_conferences(with_token(
            pb::ListConferencesRequest {
                page_size: 1,
                page_token: "../etc".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("page_token"));
    let e = c
        .create_token(with_token(
            pb::CreateTokenRequest {
                role: pb::Role::Moderator as i32,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("rooms"));
    let e = c
        .create_token(with_token(
            pb::CreateTokenRequest {
                role: 42,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("role"));
    // An oversized request is refused by size, not processed.
    let huge = Conference {
        name: "huge".into(),
        watchers: vec!["w".repeat(200); 400],
        ..Default::default()
    };
    let e = c
        .create_conference(with_token(
            pb::CreateConferenceRequest {
                conference: Some(huge),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    // Still serving.
    c.get_conference(with_token(
        pb::GetConferenceRequest { name: "ok".into() },
        Some(&admin),
    ))
    .await
    .unwrap();
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn health_service_reports_serving() {
    let dir = data_dir("health");
    let s = start(&dir).await;
    let ch = Channel::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "confab.v1.ConferenceControl".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Server reflection as grpcurl uses it (`list`, then `describe`), in
/// both protocol versions: v1 and v1alpha (older grpcurl, grpcui, Postman
/// and evans ask only v1alpha). The health service is described too, so
/// `grpcurl describe grpc.health.v1.Health` works.
#[tokio::test]
async fn reflection_v1_and_v1alpha_list_and_describe_the_control_and_health_services() {
    let dir = data_dir("reflection");
    let s = start(&dir).await;
    let ch = Channel::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    macro_rules! ask_both {
        ($v:ident) => {{
            use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$v::ServerReflectionRequest;
            let mut r = ServerReflectionClient::new(ch.clone());
            let asks = vec![
                ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::ListServices(String::new())),
                },
                ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::FileContainingSymbol(
                        "grpc.health.v1.Health".into(),
                    )),
                },
                ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::FileContainingSymbol(
                        "confab.v1.ConferenceControl".into(),
                    )),
                },
            ];
            let mut answers = r
                .server_reflection_info(tokio_stream::iter(asks))
                .await
                .unwrap()
                .into_inner();
            let list = match answers.message().await.unwrap().unwrap().message_response {
                Some(MessageResponse::ListServicesResponse(l)) => l,
                other => panic!("{other:?}"),
            };
            let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            let mut described = Vec::new();
            for _ in 0..2 {
                match answers.message().await.unwrap().unwrap().message_response {
                    Some(MessageResponse::FileDescriptorResponse(f)) => {
                        described.push(f.file_descriptor_proto.len())
                    }
                    other => panic!("{other:?}"),
                }
            }
            (names, described)
        }};
    }
    for (version, (names, described)) in [("v1", ask_both!(v1)), ("v1alpha", ask_both!(v1alpha))] {
        for want in [
            "confab.v1.ConferenceControl",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{version}: {want} in {names:?}"
            );
        }
        assert!(
            described.iter().all(|&n| n > 0),
            "{version}: both services described ({described:?})"
        );
    }
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A third-party reflection client: grpcio-reflection (PyPI; it asks only
/// v1alpha) lists and describes the control and health services
/// (tests/grpc/reflect.py). SKIPPED without it unless CONFAB_INTEROP=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_reflection_client_describes_the_api_over_v1alpha() {
    if !test_support::python_module("grpc_reflection", "grpcio grpcio-reflection") {
        return;
    }
    let dir = data_dir("pyreflect");
    let s = start(&dir).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/grpc/reflect.py");
    let addr = s.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the v1alpha client found everything");
    assert!(text.contains("reflection v1alpha: ok"));
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIP users: only admins manage them; the store keeps HA1 values for the
/// realm, never the password; bad names and passwords are refused by field;
/// they survive a restart.
#[tokio::test]
async fn sip_users_keep_only_ha1_values_and_only_admins_manage_them() {
    use sip_auth::Credentials;
    let dir = data_dir("users");
    let s = start(&dir).await;
    let admin = s.admin_token.clone().unwrap();
    let mut c = client(&s).await;
    let create = |name: &str, password: &str| pb::CreateUserRequest {
        name: name.into(),
        password: password.into(),
    };
    let alice = c
        .create_user(with_token(create("alice", "correct horse"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (alice.name.as_str(), alice.realm.as_str()),
        ("alice", "confab")
    );
    let again = c
        .create_user(with_token(create("alice", "another one"), Some(&admin)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    for (name, password, field) in [
        ("", "correct horse", "name"),
        ("al@ce", "correct horse", "name"),
        (&"x".repeat(65), "correct horse", "name"),
        ("bob", "short", "password"),
    ] {
        let e = c
            .create_user(with_token(create(name, password), Some(&admin)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{name:?} {password:?}");
        assert!(e.message().starts_with(field), "{}", e.message());
    }
    // Only admins.
    let moderator = token(&mut c, &admin, pb::Role::Moderator, &["r1"]).await;
    let denied = c
        .list_users(with_token(pb::ListUsersRequest {}, Some(&moderator)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let anonymous = c
        .create_user(with_token(create("eve", "correct horse"), None))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    // The store: HA1 values for the realm, and the password nowhere.
    let store = policy_server::store::Store::open(&dir.join("policy.sqlite"))
        .await
        .unwrap();
    let row = store.user("alice").await.unwrap();
    assert_eq!(
        row.credentials,
        Credentials::from_password("alice", "confab", "correct horse")
    );
    let set = pb::SetUserPasswordRequest {
        name: "alice".into(),
        password: "battery staple".into(),
    };
    c.set_user_password(with_token(set, Some(&admin)))
        .await
        .unwrap();
    let row = store.user("alice").await.unwrap();
    assert_eq!(
        row.credentials,
        Credentials::from_password("alice", "confab", "battery staple")
    );
    let mut on_disk = Vec::new();
    for f in ["policy.sqlite", "policy.sqlite-wal"] {
        on_disk.extend(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    for secret in ["correct horse", "battery staple"] {
        assert!(
            !on_disk
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "the password {secret:?} is not stored"
        );
    }
    let missing = pb::SetUserPasswordRequest {
        name: "nobody".into(),
        password: "correct horse".into(),
    };
    let e = c
        .set_user_password(with_token(missing, Some(&admin)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    c.create_user(with_token(create("bob", "correct horse"), Some(&admin)))
        .await
        .unwrap();
    // Kept across a restart; deleted once.
    s.stop();
    drop(store);
    let s = start(&dir).await;
    let mut c = client(&s).await;
    let names: Vec<String> = c
        .list_users(with_token(pb::ListUsersRequest {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let del = |name: &str| pb::DeleteUserRequest { name: name.into() };
    c.delete_user(with_token(del("bob"), Some(&admin)))
        .await
        .unwrap();
    let e = c
        .delete_user(with_token(del("bob"), Some(&admin)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
