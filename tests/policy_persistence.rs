//! The binary's policy store survives `kill -9`: rooms (with PINs and floor
//! policy, from a spec or a blueprint) and tokens created over gRPC are
//! there after a restart on the same data directory.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::auth;
use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::{self, Conference};

fn spawn(sip: u16, grpc: u16, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "--sip-listen",
            &format!("127.0.0.1:{sip}"),
            "--grpc-listen",
            &format!("127.0.0.1:{grpc}"),
            "--data-dir",
        ])
        .arg(dir)
        .args([
            "--rtp-ports",
            &format!(
                "{}-{}",
                50000 + (sip % 100) * 50,
                50000 + (sip % 100) * 50 + 48
            ),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn connect(grpc: u16) -> ConferenceControlClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = ConferenceControlClient::connect(format!("http://127.0.0.1:{grpc}")).await {
            return c;
        }
        assert!(Instant::now() < deadline, "gRPC did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rooms_and_tokens_survive_kill_minus_nine() {
    let dir = std::env::temp_dir().join(format!("confab-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (sip, grpc) = (common::free_port(), common::free_port());
    let mut child = spawn(sip, grpc, &dir);
    let mut c = connect(grpc).await;
    let admin = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let conf = Conference {
        name: "durable".into(),
        subject: "Survives".into(),
        pin: "4321".into(),
        moderator_pin: "8765".into(),
        ..Default::default()
    };
    c.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(conf),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    // One from a blueprint, with its floor policy.
    c.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(Conference {
                name: "seminar".into(),
                ..Default::default()
            }),
            blueprint: "lecture".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let viewer = c
        .create_token(auth(
            pb::CreateTokenRequest {
                role: pb::Role::Viewer as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    // SIGKILL: no shutdown path runs.
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = spawn(sip, grpc, &dir);
    let mut c = connect(grpc).await;
    let got = c
        .get_conference(auth(
            pb::GetConferenceRequest {
                name: "durable".into(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.subject, "Survives");
    assert!(got.has_pin && got.has_moderator_pin, "PINs survive");
    let seminar = c
        .get_conference(auth(
            pb::GetConferenceRequest {
                name: "seminar".into(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(seminar.mute_on_entry);
    assert_eq!(
        seminar.floor_policy,
        pb::FloorPolicy::ModeratorGranted as i32
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("admin.token"))
            .unwrap()
            .trim(),
        admin,
        "no new admin token"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
