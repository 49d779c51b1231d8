//! The gRPC calls the interop tests make of a running server.

use std::time::Duration;

use policy_server::pb;
use policy_server::pb::conference_control_client::ConferenceControlClient;
use tonic::transport::Channel;

use crate::common::auth;

/// A client of the conference control API.
pub type Client = ConferenceControlClient<Channel>;

/// Adds a SIP user.
pub async fn add_user(g: &mut Client, admin: &str, name: &str, password: &str) {
    g.create_user(auth(
        pb::CreateUserRequest {
            name: name.into(),
            password: password.into(),
        },
        admin,
    ))
    .await
    .unwrap();
}

/// Creates a room with the default settings.
pub async fn create_room(g: &mut Client, admin: &str, name: &str) {
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(pb::Conference {
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        admin,
    ))
    .await
    .unwrap();
}

/// Asks the API to call `uri` into `room`: the new participant, or why not.
pub async fn dial_out(
    g: &mut Client,
    admin: &str,
    room: &str,
    uri: impl Into<String>,
) -> Result<pb::Participant, tonic::Status> {
    g.dial_out(auth(
        pb::DialOutRequest {
            conference: room.into(),
            uri: uri.into(),
        },
        admin,
    ))
    .await
    .map(tonic::Response::into_inner)
}

/// True once participant `id` of `room` is connected (within 5 s).
pub async fn connected(g: &mut Client, admin: &str, room: &str, id: &str) -> bool {
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let list = g
            .list_participants(auth(
                pb::ListParticipantsRequest {
                    conference: room.into(),
                },
                admin,
            ))
            .await
            .unwrap()
            .into_inner();
        if list
            .participants
            .iter()
            .any(|p| p.id == id && p.status == "connected")
        {
            return true;
        }
    }
    false
}

/// A policy server on a free loopback port keeping its store in `data`.
pub fn policy(data: &std::path::Path) -> policy_server::PolicyConfig {
    policy_server::PolicyConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: data.to_owned(),
        ..Default::default()
    }
}

/// A client of an in-process server's API, and the admin token its first
/// start wrote in `data`.
pub async fn admin(s: &confab::Server, data: &std::path::Path) -> (Client, String) {
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let addr = s.policy.as_ref().expect("a policy server").addr;
    let g = Client::connect(format!("http://{addr}")).await.unwrap();
    (g, token.trim().to_owned())
}

/// A fresh directory under the system's temporary one.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("confab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
