//! The focus applies the policy set over gRPC: a locked room refuses calls
//! (403) until unlocked, the room's size limit holds, mute-on-entry keeps
//! a new caller out of the mix, and deleting the conference ends its calls
//! with BYE and a Reason.

mod common;

use std::time::Duration;

use common::ua::Ua;
use common::{auth, free_port, header};
use confab::{Server, ServerConfig};
use media_server::codec::CodecKind;
use media_server::tone::goertzel;
use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::{self, Conference};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_size_mute_on_entry_and_delete_reach_the_calls() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("confab-policy-focus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = ServerConfig {
        sip_listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tcp: false,
        ..ServerConfig::default()
    }
    .media_ip_from_sip();
    c.media.port_min = 45000 + (port % 20) * 100;
    c.media.port_max = c.media.port_min + 98;
    c.focus.auto_create = false;
    c.focus.entry_exit_tones = false;
    c.policy = Some(policy_server::PolicyConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: dir.clone(),
        ..Default::default()
    });
    let s = Server::start(c).await.unwrap();
    let p = s.policy.as_ref().unwrap();
    let admin = p.admin_token.clone().unwrap();
    let mut g = ConferenceControlClient::connect(format!("http://{}", p.addr))
        .await
        .unwrap();
    let conf = Conference {
        name: "board".into(),
        locked: true,
        max_participants: 2,
        mute_on_entry: false,
        ..Default::default()
    };
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(conf),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    let quiet = Conference {
        name: "quiet".into(),
        mute_on_entry: true,
        ..Default::default()
    };
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(quiet),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = s.sip_udp;

    let (mut a, mut b) = tokio::task::spawn_blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(a.call("board", ""), 403);
        assert!(a.last_response.lines().next().unwrap().contains("locked"));
        a.ack("board");
        (a, Ua::new(addr, CodecKind::Pcmu, 1000.0))
    })
    .await
    .unwrap();
    let unlock = pb::UpdateConferenceRequest {
        conference: Some(Conference {
            name: "board".into(),
            locked: false,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["locked".into(), "max_participants".into()],
        }),
    };
    // Unlocked, and the size limit set to 1 on the way.
    let mut unlock = unlock;
    if let Some(cf) = unlock.conference.as_mut() {
        cf.max_participants = 1;
    }
    g.update_conference(auth(unlock, &admin)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (a, b) = tokio::task::spawn_blocking(move || {
        a.to = None;
        a.cseq += 1;
        a.call_id.push_str("-2");
        assert_eq!(a.call("board", ""), 200);
        assert_eq!(b.call("board", ""), 486, "the room's limit is 1");
        b.ack("board");
        (a, b)
    })
    .await
    .unwrap();
    let _ = b;
    // Mute on entry: Q's tone never reaches R.
    tokio::task::spawn_blocking(move || {
        let mut q = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        let mut r = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(q.call("quiet", ""), 200);
        assert_eq!(r.call("quiet", ""), 200);
        std::thread::sleep(Duration::from_millis(1200));
        let heard = r.heard();
        assert!(heard.len() > 4000);
        assert!(
            goertzel(&heard, 8000, 2200.0) < 100.0,
            "a caller muted on entry is not mixed"
        );
        assert_eq!(q.bye("quiet"), 200);
        assert_eq!(r.bye("quiet"), 200);
    })
    .await
    .unwrap();
    // Deleting the conference ends its calls with BYE and a Reason.
    g.delete_conference(auth(
        pb::DeleteConferenceRequest {
            name: "board".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut a = a;
        let bye = a
            .next_request(Duration::from_secs(3))
            .expect("BYE after delete");
        assert!(bye.starts_with("BYE "), "{bye}");
        assert!(header(&bye, "Reason")
            .unwrap()
            .contains("conference deleted"));
    })
    .await
    .unwrap();
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
