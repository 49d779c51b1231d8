//! Moderation over gRPC against a running server, end to end: three
//! callers with tones; a moderator mutes one (its tone leaves the others'
//! spectrum, a subscriber's NOTIFY shows muted-via-focus, WatchConference
//! streams the change), unmutes it, kicks one (BYE) and dials a fourth in.
//! Then PIN entry by DTMF, floor control, roles, deaf and mute-all.

mod common;

use std::time::{Duration, Instant};

use common::ua::{body, next_notify, subscribe, Ua};
use common::{auth, blocking, header, in_process};
use conference_info::{ConferenceInfo, EndpointStatus};
use media_server::codec::CodecKind;
use media_server::tone::goertzel;
use policy_server::pb::conference_control_client::ConferenceControlClient;
use policy_server::pb::conference_event::Event;
use policy_server::pb::{self, Conference};
use tonic::transport::Channel;
use tonic::Streaming;

type Client = ConferenceControlClient<Channel>;

/// A server with the policy server on; its client and admin token.
async fn start(rtp_base: u16, name: &str) -> (confab::Server, Client, String) {
    let dir = std::env::temp_dir().join(format!("confab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = in_process(rtp_base, |c| {
        c.focus.entry_exit_tones = false;
        c.focus.notify_min_interval = Duration::from_millis(0);
        c.focus.dial_out.allow = vec!["sip:*@127.0.0.1:*".into()];
        c.policy = Some(policy_server::PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir,
            ..Default::default()
        });
    })
    .await;
    let p = s.policy.as_ref().unwrap();
    let admin = p.admin_token.clone().unwrap();
    let g = Client::connect(format!("http://{}", p.addr)).await.unwrap();
    (s, g, admin)
}

async fn create(g: &mut Client, admin: &str, conf: Conference) {
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(conf),
            ..Default::default()
        },
        admin,
    ))
    .await
    .unwrap();
}

/// The next event on a watch stream that is not talking (talking comes and
/// goes with the tones).
async fn next_event(w: &mut Streaming<pb::ConferenceEvent>) -> Event {
    loop {
        match next_any(w).await {
            Event::Talking(_) => continue,
            other => return other,
        }
    }
}

/// The next event on a watch stream, whatever it is.
async fn next_any(w: &mut Streaming<pb::ConferenceEvent>) -> Event {
    let ev = tokio::time::timeout(Duration::from_secs(5), w.message())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("the stream goes on");
    ev.event.unwrap()
}

/// How strongly `ua` hears `freq` over the next second.
fn level(ua: &Ua, freq: f64) -> f64 {
    std::thread::sleep(Duration::from_millis(200));
    ua.heard();
    std::thread::sleep(Duration::from_millis(1000));
    let heard = ua.heard();
    assert!(
        heard.len() > 4000,
        "audio keeps coming ({} samples)",
        heard.len()
    );
    goertzel(&heard, 8000, freq)
}

const HEARD: f64 = 1000.0;
const SILENT: f64 = 100.0;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn update(room: &str, p: pb::Participant, paths: &[&str]) -> pb::UpdateParticipantRequest {
    pb::UpdateParticipantRequest {
        conference: room.into(),
        participant: Some(p),
        update_mask: mask(paths),
    }
}

async fn id_of(g: &mut Client, admin: &str, room: &str, ua_user: &str) -> String {
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
    list.participants
        .iter()
        .find(|p| p.uri.starts_with(&format!("sip:{ua_user}@")))
        .unwrap_or_else(|| panic!("{ua_user} in {list:?}"))
        .id
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_mutes_kicks_and_dials_out_while_watchers_see_it() {
    let (s, mut g, admin) = start(30000, "moderation").await;
    create(
        &mut g,
        &admin,
        Conference {
            name: "board".into(),
            watchers: vec!["*".into()],
            ..Default::default()
        },
    )
    .await;
    let mut watch = g
        .watch_conference(auth(
            pb::WatchConferenceRequest {
                conference: "board".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    match next_event(&mut watch).await {
        Event::Snapshot(snap) => {
            assert!(snap.participants.is_empty());
            assert_eq!(snap.conference.unwrap().name, "board");
        }
        other => panic!("first a snapshot, not {other:?}"),
    }
    let addr = s.sip_udp;
    let (a, b, c, mut w) = blocking(move || {
        let mut w = Ua::new(addr, CodecKind::Pcmu, 300.0);
        assert_eq!(subscribe(&mut w, "board", "watch-1", 600, None, 1), 200);
        next_notify(&mut w, "watch-1");
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        for ua in [&mut a, &mut b, &mut c] {
            assert_eq!(ua.call("board", ""), 200);
        }
        (a, b, c, w)
    })
    .await;
    let (mut joined, mut talking) = (Vec::new(), Vec::new());
    while joined.len() < 3 || talking.is_empty() {
        match next_any(&mut watch).await {
            Event::Joined(p) => joined.push(p.uri),
            Event::Talking(t) if t.talking => talking.push(t.participant),
            _ => {}
        }
    }
    for ua in [&a, &b, &c] {
        assert!(
            joined.contains(&format!("sip:{}@127.0.0.1", ua.user)),
            "{joined:?}"
        );
    }
    let a_id = id_of(&mut g, &admin, "board", &a.user).await;
    let c_id = id_of(&mut g, &admin, "board", &c.user).await;
    // The mixer's talk detection reaches watchers: each tone is a talker.
    let b_id = id_of(&mut g, &admin, "board", &b.user).await;
    assert!(
        talking.iter().all(|t| [&a_id, &b_id, &c_id].contains(&t)),
        "{talking:?}"
    );

    // Mute A.
    let mute = |on: bool| {
        update(
            "board",
            pb::Participant {
                id: a_id.clone(),
                muted: on,
                ..Default::default()
            },
            &["muted"],
        )
    };
    let muted = g
        .update_participant(auth(mute(true), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(
        muted.muted && muted.status == "muted-via-focus",
        "{muted:?}"
    );
    match next_event(&mut watch).await {
        Event::Updated(p) => assert!(p.id == a_id && p.muted, "{p:?}"),
        other => panic!("an update for A, not {other:?}"),
    }
    let a_user = a.user.clone();
    let (b, c, mut w) = blocking(move || {
        // The subscriber's NOTIFYs after the joins end with A muted-via-focus.
        let a_aor = format!("sip:{a_user}@127.0.0.1");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = next_notify(&mut w, "watch-1");
            let doc = ConferenceInfo::parse(body(&n)).unwrap();
            let status = doc.users.as_ref().and_then(|us| {
                us.users
                    .iter()
                    .find(|u| u.entity.as_deref() == Some(a_aor.as_str()))
                    .and_then(|u| u.endpoints.first()?.status)
            });
            if status == Some(EndpointStatus::MutedViaFocus) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no NOTIFY with A muted-via-focus"
            );
        }
        assert!(level(&b, 440.0) < SILENT, "B hears muted A");
        assert!(level(&c, 440.0) < SILENT, "C hears muted A");
        assert!(level(&b, 2200.0) > HEARD, "B still hears C");
        (b, c, w)
    })
    .await;

    // Unmute: all three are heard again.
    g.update_participant(auth(mute(false), &admin))
        .await
        .unwrap();
    match next_event(&mut watch).await {
        Event::Updated(p) => assert!(p.id == a_id && !p.muted && p.status == "connected"),
        other => panic!("an update for A, not {other:?}"),
    }
    let (b, mut c) = blocking(move || {
        assert!(level(&b, 440.0) > HEARD, "B hears A again");
        assert!(level(&c, 440.0) > HEARD, "C hears A again");
        assert!(level(&c, 1000.0) > HEARD, "C hears B");
        (b, c)
    })
    .await;

    // Kick C: BYE with a Reason, and watchers see it leave.
    g.remove_participant(auth(
        pb::RemoveParticipantRequest {
            conference: "board".into(),
            id: c_id.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let bye = blocking(move || c.next_request(Duration::from_secs(3)))
        .await
        .expect("BYE");
    assert!(bye.starts_with("BYE "), "{bye}");
    assert!(header(&bye, "Reason").unwrap().contains("moderator"));
    match next_event(&mut watch).await {
        Event::Left(p) => assert_eq!(p.id, c_id),
        other => panic!("C leaves, not {other:?}"),
    }

    // Lock, with a subject: the watch stream and the subscriber's next
    // NOTIFY say so.
    g.update_conference(auth(
        pb::UpdateConferenceRequest {
            conference: Some(Conference {
                name: "board".into(),
                locked: true,
                subject: "Quarterly".into(),
                ..Default::default()
            }),
            update_mask: mask(&["locked", "subject"]),
        },
        &admin,
    ))
    .await
    .unwrap();
    match next_event(&mut watch).await {
        Event::ConferenceUpdated(c) => assert!(c.locked && c.subject == "Quarterly", "{c:?}"),
        other => panic!("the lock, not {other:?}"),
    }
    let w = blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = next_notify(&mut w, "watch-1");
            let doc = ConferenceInfo::parse(body(&n)).unwrap();
            let locked = doc.conference_state.as_ref().and_then(|s| s.locked);
            if locked == Some(true) {
                let subject = doc.description.as_ref().and_then(|d| d.subject.clone());
                assert_eq!(subject.as_deref(), Some("Quarterly"));
                break;
            }
            assert!(Instant::now() < deadline, "no NOTIFY with the lock");
        }
        w
    })
    .await;

    // Dial out to D (a moderator may call into a locked room), which
    // answers: it joins, hears A and B.
    let mut d = Ua::new(addr, CodecKind::Pcmu, 2200.0);
    let d_uri = format!("sip:{}@{}", d.user, d.local());
    let dialing = g
        .dial_out(auth(
            pb::DialOutRequest {
                conference: "board".into(),
                uri: d_uri,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dialing.status, "dialing-out");
    let d = blocking(move || {
        let invite = d
            .accept_call(Duration::from_secs(5))
            .expect("the focus calls D");
        assert!(header(&invite, "Contact").unwrap().contains("isfocus"));
        d
    })
    .await;
    match next_event(&mut watch).await {
        Event::Joined(p) => assert_eq!(p.id, dialing.id, "{p:?}"),
        other => panic!("D joins, not {other:?}"),
    }
    let mut w = blocking(move || {
        assert!(level(&d, 440.0) > HEARD, "D hears A");
        assert!(level(&d, 1000.0) > HEARD, "D hears B");
        drop((a, b, d));
        w
    })
    .await;
    // Deleting the room ends the stream with a deleted event, and the
    // subscription with a final NOTIFY.
    g.delete_conference(auth(
        pb::DeleteConferenceRequest {
            name: "board".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    loop {
        match next_event(&mut watch).await {
            Event::Deleted(_) => break,
            Event::Left(_) | Event::ConferenceUpdated(_) => {}
            other => panic!("leaves, then deleted; not {other:?}"),
        }
    }
    blocking(move || loop {
        let n = next_notify(&mut w, "watch-1");
        let state = header(&n, "Subscription-State").unwrap_or("").to_owned();
        if state.starts_with("terminated") {
            assert!(state.contains("noresource"), "{state}");
            break;
        }
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_key_the_pin_and_the_moderator_pin_starts_the_room() {
    let (s, mut g, admin) = start(32000, "pin").await;
    create(
        &mut g,
        &admin,
        Conference {
            name: "vault".into(),
            pin: "1234".into(),
            moderator_pin: "9876".into(),
            // The room starts with its moderator.
            auto_create: Some(false),
            ..Default::default()
        },
    )
    .await;
    let addr = s.sip_udp;
    let (a, b, wrong) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let mut wrong = Ua::new(addr, CodecKind::Pcmu, 1900.0);
        for ua in [&mut a, &mut b, &mut wrong] {
            assert_eq!(ua.call("vault", ""), 200);
        }
        // Nobody is in yet: A hears only the prompt, not B.
        assert!(
            level(&a, 1000.0) < SILENT,
            "a caller at the PIN prompt hears the room"
        );
        for d in "1234#".chars() {
            a.send_dtmf(d);
        }
        (a, b, wrong)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The right PIN, but no moderator yet: A waits.
    let a_id = id_of(&mut g, &admin, "vault", &a.user).await;
    let a_now = g
        .get_participant(auth(
            pb::GetParticipantRequest {
                conference: "vault".into(),
                id: a_id,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a_now.status, "pending", "{a_now:?}");
    let (a, b, mut wrong) = blocking(move || {
        for d in "9876#".chars() {
            b.send_dtmf(d);
        }
        (a, b, wrong)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = g
        .list_participants(auth(
            pb::ListParticipantsRequest {
                conference: "vault".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .participants;
    let find = |user: &str| {
        list.iter()
            .find(|p| p.uri.starts_with(&format!("sip:{user}@")))
            .unwrap()
            .clone()
    };
    let (pa, pb_, pw) = (find(&a.user), find(&b.user), find(&wrong.user));
    assert_eq!(
        (pa.status.as_str(), pa.role),
        ("connected", pb::ParticipantRole::Participant as i32)
    );
    assert_eq!(
        (pb_.status.as_str(), pb_.role),
        ("connected", pb::ParticipantRole::Moderator as i32)
    );
    assert_eq!(pw.status, "pending");
    let (a, b) = blocking(move || {
        assert!(level(&a, 1000.0) > HEARD, "A hears B once both are in");
        // 1900 Hz: clear of the G.711 harmonics of 440 and 1000.
        let l = level(&b, 1900.0);
        assert!(
            l < SILENT,
            "nobody hears a caller still at the prompt ({l})"
        );
        // Three wrong PINs end the call.
        for pin in ["1111#", "2222#", "3333#"] {
            for d in pin.chars() {
                wrong.send_dtmf(d);
            }
        }
        let bye = wrong
            .next_request(Duration::from_secs(3))
            .expect("BYE after three wrong PINs");
        assert!(bye.starts_with("BYE "), "{bye}");
        assert!(
            header(&bye, "Reason").unwrap().contains("wrong PIN"),
            "{bye}"
        );
        (a, b)
    })
    .await;
    drop((a, b));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_control_roles_deaf_and_mute_all_decide_who_is_heard() {
    let (s, mut g, admin) = start(34000, "floor").await;
    create(
        &mut g,
        &admin,
        Conference {
            name: "court".into(),
            floor_policy: pb::FloorPolicy::ModeratorGranted as i32,
            ..Default::default()
        },
    )
    .await;
    let addr = s.sip_udp;
    let (a, b, c) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        for ua in [&mut a, &mut b, &mut c] {
            assert_eq!(ua.call("court", ""), 200);
        }
        // Nobody holds the floor: nobody is heard.
        assert!(level(&c, 440.0) < SILENT && level(&c, 1000.0) < SILENT);
        // B asks with *5.
        b.send_dtmf('*');
        b.send_dtmf('5');
        (a, b, c)
    })
    .await;
    let (a_id, b_id, c_id) = (
        id_of(&mut g, &admin, "court", &a.user).await,
        id_of(&mut g, &admin, "court", &b.user).await,
        id_of(&mut g, &admin, "court", &c.user).await,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let floor = g
        .get_floor(auth(
            pb::GetFloorRequest {
                conference: "court".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(floor.queue, vec![b_id.clone()]);
    let fr = |id: &str| pb::FloorRequest {
        conference: "court".into(),
        participant: id.into(),
    };
    g.request_floor(auth(fr(&a_id), &admin)).await.unwrap();
    let granted = g
        .grant_floor(auth(fr(&a_id), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (granted.holder.as_str(), granted.queue.clone()),
        (a_id.as_str(), vec![b_id.clone()])
    );
    let (a, b, c) = blocking(move || {
        assert!(level(&c, 440.0) > HEARD, "the floor holder is heard");
        assert!(level(&c, 1000.0) < SILENT, "a queued request is not");
        (a, b, c)
    })
    .await;
    // Deny B, release A; make C a moderator: heard without the floor.
    let denied = g
        .deny_floor(auth(fr(&b_id), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(denied.queue.is_empty());
    let released = g
        .release_floor(auth(fr(&a_id), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(released.holder.is_empty());
    assert_eq!(
        g.release_floor(auth(fr(&a_id), &admin))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::FailedPrecondition
    );
    let role = |id: &str, r: pb::ParticipantRole| {
        update(
            "court",
            pb::Participant {
                id: id.into(),
                role: r as i32,
                ..Default::default()
            },
            &["role"],
        )
    };
    let c_mod = g
        .update_participant(auth(role(&c_id, pb::ParticipantRole::Moderator), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c_mod.status, "connected");
    // No floor control from here: listener, deaf and mute-all.
    g.update_conference(auth(
        pb::UpdateConferenceRequest {
            conference: Some(Conference {
                name: "court".into(),
                floor_policy: pb::FloorPolicy::None as i32,
                ..Default::default()
            }),
            update_mask: mask(&["floor_policy"]),
        },
        &admin,
    ))
    .await
    .unwrap();
    g.update_participant(auth(role(&b_id, pb::ParticipantRole::Listener), &admin))
        .await
        .unwrap();
    g.update_participant(auth(
        update(
            "court",
            pb::Participant {
                id: a_id.clone(),
                deaf: true,
                ..Default::default()
            },
            &["deaf"],
        ),
        &admin,
    ))
    .await
    .unwrap();
    let (a, b, c) = blocking(move || {
        assert!(level(&a, 2200.0) < SILENT, "deaf A hears nothing");
        assert!(level(&c, 440.0) > HEARD, "C hears A");
        assert!(level(&c, 1000.0) < SILENT, "listener B is not heard");
        assert!(level(&b, 2200.0) > HEARD, "listener B hears C");
        (a, b, c)
    })
    .await;
    let n = g
        .mute_all(auth(
            pb::MuteAllRequest {
                conference: "court".into(),
                muted: true,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .changed;
    assert_eq!(n, 2, "everyone but moderator C");
    blocking(move || {
        assert!(level(&c, 440.0) < SILENT, "mute-all silences A");
        assert!(level(&b, 2200.0) > HEARD, "moderator C is still heard");
        drop(a);
    })
    .await;
    s.shutdown().await;
}

/// A room that callers made by dialling in is a room to the API: listed
/// with its participant count, shown, and watchable from before its first
/// caller (an empty snapshot, then the joins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_callers_made_are_listed_shown_and_watched() {
    let (s, mut g, admin) = start(36000, "adhoc").await;
    create(
        &mut g,
        &admin,
        Conference {
            name: "stored".into(),
            subject: "kept".into(),
            ..Default::default()
        },
    )
    .await;
    let mut w = g
        .watch_conference(auth(
            pb::WatchConferenceRequest {
                conference: "grpcroom".into(),
            },
            &admin,
        ))
        .await
        .expect("a room the first dial-in will make can be watched")
        .into_inner();
    let Event::Snapshot(snap) = next_event(&mut w).await else {
        panic!("the first event is the snapshot")
    };
    assert!(snap.participants.is_empty());
    let conf = snap.conference.unwrap();
    assert_eq!((conf.name.as_str(), conf.ad_hoc), ("grpcroom", true));

    let addr = s.sip_udp;
    let calls = blocking(move || {
        let rooms = ["grpcroom", "grpcroom", "grpcroom", "stored"];
        let mut uas: Vec<(Ua, &str)> = rooms
            .into_iter()
            .map(|room| (Ua::new(addr, CodecKind::Pcmu, 440.0), room))
            .collect();
        for (ua, room) in &mut uas {
            assert_eq!(ua.call(room, ""), 200);
        }
        uas
    })
    .await;
    for _ in 0..3 {
        assert!(matches!(next_event(&mut w).await, Event::Joined(_)));
    }

    let list = g
        .list_conferences(auth(pb::ListConferencesRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<(&str, u32, bool)> = list
        .conferences
        .iter()
        .map(|c| (c.name.as_str(), c.participant_count, c.ad_hoc))
        .collect();
    assert_eq!(rows, [("grpcroom", 3, true), ("stored", 1, false)]);
    // Pages of one walk both kinds in name order.
    let first = g
        .list_conferences(auth(
            pb::ListConferencesRequest {
                page_size: 1,
                page_token: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.conferences[0].name, "grpcroom");
    let second = g
        .list_conferences(auth(
            pb::ListConferencesRequest {
                page_size: 1,
                page_token: first.next_page_token,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.conferences[0].name, "stored");
    assert_eq!(second.conferences[0].subject, "kept");

    let got = g
        .get_conference(auth(
            pb::GetConferenceRequest {
                name: "grpcroom".into(),
            },
            &admin,
        ))
        .await
        .expect("GetConference finds a room a caller made")
        .into_inner();
    assert_eq!((got.participant_count, got.ad_hoc), (3, true));
    let missing = g
        .get_conference(auth(
            pb::GetConferenceRequest {
                name: "nobody-here".into(),
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    blocking(move || {
        for (mut ua, room) in calls {
            assert_eq!(ua.bye(room), 200);
        }
    })
    .await;
    // Once its last caller has gone, a room a caller made is gone too.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let list = g
            .list_conferences(auth(pb::ListConferencesRequest::default(), &admin))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = list.conferences.iter().map(|c| c.name.as_str()).collect();
        if names == ["stored"] {
            break;
        }
        assert!(Instant::now() < deadline, "{names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown().await;
}

/// Raised hands over gRPC from a client that knows the API only by
/// reflection (tests/grpc/hands.py, grpcio-reflection): it raises two
/// hands, lists them in order and lowers all; a watcher sees each line.
/// SKIPPED without grpcio-reflection unless CONFAB_INTEROP=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflection_client_raises_and_lowers_hands_and_watchers_see_the_line() {
    if !test_support::python_module("grpc_reflection", "grpcio grpcio-reflection") {
        return;
    }
    let (s, mut g, admin) = start(47000, "hands").await;
    let addr = s.sip_udp;
    let (a, b) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(a.call("hands", ""), 200);
        assert_eq!(b.call("hands", ""), 200);
        (a, b)
    })
    .await;
    let mut w = g
        .watch_conference(auth(
            pb::WatchConferenceRequest {
                conference: "hands".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    match next_event(&mut w).await {
        Event::Snapshot(snap) => assert_eq!(snap.hands.unwrap().participants, Vec::<String>::new()),
        other => panic!("{other:?}"),
    }
    let grpc = s.policy.as_ref().unwrap().addr.to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/hands.py");
    let token = admin.clone();
    let out = blocking(move || {
        std::process::Command::new("python3")
            .args([script, &grpc, &token, "hands"])
            .output()
            .unwrap()
    })
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let people: Vec<String> = lines[0]["answer"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let (first, last) = (people[0].clone(), people[people.len() - 1].clone());
    let hands = |i: usize| lines[i]["answer"]["participants"].clone();
    assert_eq!(hands(1), serde_json::json!([last]));
    assert_eq!(hands(2), serde_json::json!([last, first]));
    assert_eq!(
        hands(3),
        serde_json::json!([last, first]),
        "ListRaisedHands"
    );
    assert_eq!(
        lines[4]["answer"],
        serde_json::json!({}),
        "LowerAllHands: none left"
    );
    assert_eq!(lines[5]["error"], "NOT_FOUND", "no such participant");
    for expected in [
        vec![last.clone()],
        vec![last.clone(), first.clone()],
        vec![],
    ] {
        loop {
            match next_event(&mut w).await {
                Event::Hands(h) => {
                    assert_eq!(h.participants, expected);
                    break;
                }
                // A join that raced the snapshot shows twice (by design:
                // never not at all).
                Event::Joined(p) if [&first, &last].contains(&&p.id) => continue,
                other => panic!("{other:?}"),
            }
        }
    }
    drop((a, b));
    s.shutdown().await;
}
