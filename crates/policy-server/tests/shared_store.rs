//! Two policy servers on one real PostgreSQL server, as two confab nodes
//! behind one proxy run them: rooms (with their PINs), users and tokens made
//! through one are served by the other, and each node's focus hears what
//! the other node changed (LISTEN/NOTIFY), without a restart.

use std::time::Duration;

use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::{self, Conference};
use policy_server::service::PolicyChange;
use policy_server::{PolicyConfig, PolicyServer};
use test_support::auth;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tonic::transport::Channel;
use tonic::Code;

type Client = ConferenceControlClient<Channel>;

struct Node {
    server: PolicyServer,
    client: Client,
    /// What this node tells its focus.
    focus: UnboundedReceiver<PolicyChange>,
}

async fn node(name: &str, url: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("confab-shared-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (tx, focus) = unbounded_channel();
    let server = PolicyServer::start(
        PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir,
            database_url: Some(url.to_owned()),
            ..Default::default()
        },
        Some(tx),
        None,
    )
    .await
    .unwrap();
    let client = ConferenceControlClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    Node {
        server,
        client,
        focus,
    }
}

/// The next thing a node told its focus (within 5 s).
async fn told(n: &mut Node) -> PolicyChange {
    tokio::time::timeout(Duration::from_secs(5), n.focus.recv())
        .await
        .expect("the node tells its focus within 5 s")
        .expect("the channel is open")
}

fn get(name: &str) -> pb::GetConferenceRequest {
    pb::GetConferenceRequest { name: name.into() }
}

#[tokio::test]
async fn two_nodes_on_one_postgresql_share_rooms_users_and_tokens_and_hear_each_other() {
    let Some(pg) = test_support::postgres::Postgres::start("shared") else {
        return;
    };
    let mut a = node("a", &pg.url()).await;
    let admin = a
        .server
        .admin_token
        .clone()
        .expect("the first node makes the admin token");
    let mut b = node("b", &pg.url()).await;
    assert!(
        b.server.admin_token.is_none(),
        "the second node finds the first one's token"
    );

    // A room with a PIN made on A: B serves it, and B's focus is told.
    let room = Conference {
        name: "standup".into(),
        subject: "Daily".into(),
        pin: "4321".into(),
        ..Default::default()
    };
    a.client
        .create_conference(auth(
            pb::CreateConferenceRequest {
                conference: Some(room),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap();
    match told(&mut a).await {
        PolicyChange::Upsert(r) => assert_eq!(r.name, "standup"),
        other => panic!("A's own focus: {other:?}"),
    }
    match told(&mut b).await {
        PolicyChange::Upsert(r) => {
            assert_eq!(
                (r.name.as_str(), r.subject.as_str(), r.pin.as_deref()),
                ("standup", "Daily", Some("4321"))
            );
        }
        other => panic!("B's focus: {other:?}"),
    }
    let on_b = b
        .client
        .get_conference(auth(get("standup"), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(on_b.has_pin);

    // Changed on B: A's focus hears the lock, B's own focus once.
    b.client
        .update_conference(auth(
            pb::UpdateConferenceRequest {
                conference: Some(Conference {
                    name: "standup".into(),
                    locked: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["locked".into()],
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    assert!(matches!(told(&mut b).await, PolicyChange::Upsert(r) if r.locked));
    assert!(
        matches!(told(&mut a).await, PolicyChange::Upsert(r) if r.locked && r.pin.as_deref() == Some("4321"))
    );

    // A SIP user made on A reaches B's focus with its HA1 values.
    a.client
        .create_user(auth(
            pb::CreateUserRequest {
                name: "carol".into(),
                password: "correct horse".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let _ = told(&mut a).await;
    match told(&mut b).await {
        PolicyChange::User(name, creds) => {
            assert_eq!(name, "carol");
            assert_eq!(
                creds,
                sip_auth::Credentials::from_password("carol", "confab", "correct horse")
            );
        }
        other => panic!("B's focus: {other:?}"),
    }
    a.client
        .delete_user(auth(
            pb::DeleteUserRequest {
                name: "carol".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let _ = told(&mut a).await;
    assert!(matches!(told(&mut b).await, PolicyChange::UserRemoved(n) if n == "carol"));

    // A token made on A works on B; revoked on A, B refuses it at once
    // (well before its cache would have let it go).
    let viewer = a
        .client
        .create_token(auth(
            pb::CreateTokenRequest {
                role: pb::Role::Viewer as i32,
                rooms: vec![],
                description: "shared".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    b.client
        .get_conference(auth(get("standup"), &viewer.token))
        .await
        .unwrap();
    a.client
        .delete_token(auth(pb::DeleteTokenRequest { id: viewer.id }, &admin))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match b
            .client
            .get_conference(auth(get("standup"), &viewer.token))
            .await
        {
            Err(e) if e.code() == Code::Unauthenticated => break,
            r => assert!(
                tokio::time::Instant::now() < deadline,
                "B still takes the revoked token after 2 s: {r:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Deleted on B: A's focus ends it.
    b.client
        .delete_conference(auth(
            pb::DeleteConferenceRequest {
                name: "standup".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let _ = told(&mut b).await;
    assert!(matches!(told(&mut a).await, PolicyChange::Delete(n) if n == "standup"));
    let gone = a
        .client
        .get_conference(auth(get("standup"), &admin))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    a.server.stop();
    b.server.stop();
}
