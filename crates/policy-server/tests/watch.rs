//! WatchConference with a stand-in for the focus: the snapshot first, then
//! only this room's events in order; a watcher that stops reading while
//! thousands of events pass is told it fell behind (ResourceExhausted)
//! instead of holding memory, and the server keeps serving.

use std::sync::Arc;
use std::time::Duration;

use policy_server::live::{
    ControlError, FloorAction, FloorInfo, HandAction, Live, LiveRoom, ParticipantInfo,
    ParticipantUpdate, RoomSnapshot,
};
use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::conference_event::Event;
use policy_server::pb::{self, Conference};
use policy_server::{PolicyConfig, PolicyServer};
use test_support::auth;
use tonic::Code;

/// One room, "r", with one participant, "p1".
struct OneRoom;

fn p1() -> ParticipantInfo {
    ParticipantInfo {
        id: "p1".into(),
        uri: "sip:p1@example.com".into(),
        display_name: String::new(),
        status: "connected".into(),
        muted: false,
        deaf: false,
        role: control::Role::Participant,
        input_gain_db: 0.0,
        output_gain_db: 0.0,
    }
}

#[tonic::async_trait]
impl Live for OneRoom {
    async fn rooms(&self) -> Vec<LiveRoom> {
        vec![LiveRoom {
            name: "r".into(),
            participants: 1,
            has_policy: false,
        }]
    }
    async fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>> {
        (room == "r").then(|| vec![p1()])
    }
    async fn snapshot(&self, room: &str) -> Option<RoomSnapshot> {
        (room == "r").then(|| RoomSnapshot {
            participants: vec![p1()],
            floor: FloorInfo::default(),
            hands: vec!["p1".into()],
        })
    }
    async fn update(&self, _: &str, _: &str, _: ParticipantUpdate) -> Option<ParticipantInfo> {
        None
    }
    async fn mute_all(&self, _: &str, _: bool) -> Option<usize> {
        None
    }
    async fn remove(&self, _: &str, _: &str) -> bool {
        false
    }
    async fn dial_out(&self, _: &str, _: &str) -> Result<String, ControlError> {
        Err(ControlError::Refused("not here".into()))
    }
    async fn floor(&self, _: &str, _: &str, _: FloorAction) -> Result<FloorInfo, ControlError> {
        Err(ControlError::Refused("not here".into()))
    }
    async fn floor_info(&self, _: &str) -> Option<FloorInfo> {
        None
    }
    async fn hand(&self, _: &str, _: HandAction) -> Result<Vec<String>, ControlError> {
        Err(ControlError::Refused("not here".into()))
    }
    async fn raised_hands(&self, room: &str) -> Option<Vec<String>> {
        (room == "r").then(|| vec!["p1".into()])
    }
    async fn start_recording(&self, _: &str) -> Result<control::RecordingInfo, ControlError> {
        Err(ControlError::Refused("not here".into()))
    }
    async fn stop_recording(&self, _: &str) -> Result<control::RecordingInfo, ControlError> {
        Err(ControlError::Refused("not here".into()))
    }
    async fn recordings(&self) -> Vec<control::RecordingInfo> {
        Vec::new()
    }
    async fn recording(&self, _: &str) -> Option<(control::RecordingInfo, std::path::PathBuf)> {
        None
    }
    async fn delete_recording(&self, _: &str) -> Result<(), ControlError> {
        Err(ControlError::NoRecording)
    }
}

fn talking(room: &str, n: u32) -> pb::ConferenceEvent {
    pb::ConferenceEvent {
        conference: room.into(),
        at_ms: n as i64,
        event: Some(Event::Talking(pb::Talking {
            participant: "p1".into(),
            talking: n.is_multiple_of(2),
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_this_rooms_events_and_a_slow_watcher_is_cut_off() {
    let dir = std::env::temp_dir().join(format!("confab-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = PolicyServer::start(
        PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.clone(),
            ..Default::default()
        },
        None,
        Some(Arc::new(OneRoom)),
    )
    .await
    .unwrap();
    let admin = s.admin_token.clone().unwrap();
    let mut c = ConferenceControlClient::connect(format!("http://{}", s.addr))
        .await
        .unwrap();
    let watch = || pb::WatchConferenceRequest {
        conference: "r".into(),
    };
    assert_eq!(
        c.watch_conference(auth(
            pb::WatchConferenceRequest {
                conference: "nope".into()
            },
            &admin
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );

    // In order, this room only.
    let mut w = c
        .watch_conference(auth(watch(), &admin))
        .await
        .unwrap()
        .into_inner();
    let first = w.message().await.unwrap().unwrap();
    match first.event.unwrap() {
        Event::Snapshot(snap) => {
            assert_eq!(
                snap.participants,
                vec![policy_server::convert::participant(p1())]
            );
            assert_eq!(snap.hands.unwrap().participants, ["p1"]);
            // A room the store does not know is shown by name.
            assert_eq!(snap.conference.unwrap().name, "r");
        }
        other => panic!("{other:?}"),
    }
    for n in 0..10 {
        s.events.send(talking("other", n)).unwrap();
        s.events.send(talking("r", n)).unwrap();
    }
    for n in 0..10 {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((ev.conference.as_str(), ev.at_ms), ("r", n as i64));
    }

    // A watcher that does not read while far more than the backlog passes.
    let mut slow = c
        .watch_conference(auth(watch(), &admin))
        .await
        .unwrap()
        .into_inner();
    for n in 0..(3 * policy_server::service::WATCH_BACKLOG as u32) {
        // Once every watcher has been cut off there is nobody to send to.
        let _ = s.events.send(talking("r", n));
    }
    let mut got = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.message()).await {
            Ok(Ok(Some(_))) => got += 1,
            Ok(Err(st)) => break st,
            other => panic!("the stream should end with a status, got {other:?} after {got}"),
        }
    };
    assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
    assert!(end.message().contains("watch again"), "{}", end.message());

    // Still serving, and a new watcher starts afresh.
    c.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(Conference {
                name: "r".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    let mut again = c
        .watch_conference(auth(watch(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        again.message().await.unwrap().unwrap().event,
        Some(Event::Snapshot(_))
    ));
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
