//! Recording a room end to end, read back by third parties: two baresips
//! talk in a room while a moderator records it over gRPC. opusinfo finds a
//! valid Ogg Opus stream as long as the recording ran, opusdec hears each
//! caller at the level the other caller hears it (±1 dB) and the start
//! tone, which both callers heard too; watchers see it start and stop; the
//! sidecar names who was there; listing, fetching and deleting go through
//! the API, and bad requests get clear statuses. Needs baresip and
//! opus-tools; without them it says SKIPPED and passes, unless
//! `CONFAB_INTEROP=1`.

mod common;

use std::time::{Duration, Instant};

use common::peers::{self, read_wav_mono, tone_dbfs, Baresip};
use common::{api, auth, in_process, peer_tool};
use policy_server::pb;
use tonic::Code;

/// Seconds the callers stay; the recording runs from 3 s to 9 s.
const CALL_SECS: u32 = 14;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_is_ogg_opus_that_opus_tools_hear_as_the_room_does() {
    if !(peer_tool("baresip", "baresip")
        && peer_tool("opusdec", "opus-tools")
        && peer_tool("opusinfo", "opus-tools"))
    {
        return;
    }
    let base = api::tempdir("recording");
    let data = base.join("data");
    let server = in_process(36000, |c| {
        c.focus.entry_exit_tones = false;
        c.policy = Some(api::policy(&data));
    })
    .await;
    let (mut g, admin) = api::admin(&server, &data).await;
    let start = |room: &str| pb::StartRecordingRequest {
        conference: room.into(),
    };
    // Nothing to record yet; a path for an id is refused.
    let e = g
        .start_recording(auth(start("standup"), &admin))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let get = |id: &str| pb::GetRecordingRequest { id: id.into() };
    let e = g
        .get_recording(auth(get("../admin.token"), &admin))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let sip = server.sip_udp;
    let uri = format!("sip:standup@{sip}");
    let phone = |user, freq| peers::baresip(&base, Baresip::dialing(user, freq, &uri, CALL_SECS));
    let (alice_dir, _, alice) = phone("alice", 1200);
    let (bob_dir, _, bob) = phone("bob", 700);
    let phones = (common::Killed(alice), common::Killed(bob));
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.calls_active().await.unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "both callers are in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A watcher of the room sees the recording start and stop.
    let mut watch = g
        .watch_conference(auth(
            pb::WatchConferenceRequest {
                conference: "standup".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let watched = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(ev)) = watch.message().await {
            if let Some(pb::conference_event::Event::Recording(r)) = ev.event {
                seen.push(r.on);
                if !r.on {
                    break;
                }
            }
        }
        seen
    });

    // A viewer may not record; the admin may, once at a time.
    let viewer = g
        .create_token(auth(
            pb::CreateTokenRequest {
                role: pb::Role::Viewer as i32,
                rooms: vec![],
                description: "recording test".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let e = g
        .start_recording(auth(start("standup"), &viewer))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let rec = g
        .start_recording(auth(start("standup"), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(rec.active && rec.id.starts_with("standup-"), "{rec:?}");
    let e = g
        .start_recording(auth(start("standup"), &admin))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = g
        .fetch_recording(auth(
            pb::FetchRecordingRequest { id: rec.id.clone() },
            &admin,
        ))
        .await
        .expect_err("a recording going on is not fetched");
    assert_eq!(e.code(), Code::FailedPrecondition);

    tokio::time::sleep(Duration::from_secs(6)).await;
    g.stop_recording(auth(
        pb::StopRecordingRequest {
            conference: "standup".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let done = loop {
        let r = g
            .get_recording(auth(get(&rec.id), &admin))
            .await
            .unwrap()
            .into_inner();
        if !r.active {
            break r;
        }
        assert!(Instant::now() < deadline, "the file is finished within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.dropped_frames, 0);
    assert!(
        (5_500..=7_000).contains(&done.duration_ms),
        "about 6 s: {done:?}"
    );
    let seen = tokio::time::timeout(Duration::from_secs(5), watched)
        .await
        .expect("the watcher saw the stop")
        .unwrap();
    assert_eq!(seen, [true, false]);

    // Fetched over the API, in chunks, whole.
    let mut stream = g
        .fetch_recording(auth(
            pb::FetchRecordingRequest { id: rec.id.clone() },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut file = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        file.extend_from_slice(&chunk.data);
    }
    assert_eq!(file.len() as u64, done.bytes);
    let opus = base.join("fetched.opus");
    std::fs::write(&opus, &file).unwrap();

    let info = std::process::Command::new("opusinfo")
        .arg(&opus)
        .output()
        .unwrap();
    let info =
        String::from_utf8_lossy(&info.stdout).into_owned() + &String::from_utf8_lossy(&info.stderr);
    assert!(
        !info.contains("WARNING") && !info.contains("ERROR") && info.contains("TITLE=standup"),
        "opusinfo: {info}"
    );
    eprintln!(
        "opusinfo: {}",
        info.lines()
            .filter(|l| l.contains("Playback length") || l.contains("Average bitrate"))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let wav = base.join("recording.wav");
    let status = std::process::Command::new("opusdec")
        .args(["--quiet", "--rate", "48000", "--no-dither"])
        .arg(&opus)
        .arg(&wav)
        .status()
        .unwrap();
    assert!(status.success());
    // The callers hang up on their own; what they heard is then complete.
    let _phones = common::blocking(move || {
        let (mut a, mut b) = phones;
        let _ = (a.0.wait(), b.0.wait());
        (a, b)
    })
    .await;
    let (pcm, rate) = read_wav_mono(&wav);
    let secs = pcm.len() as f64 / rate as f64;
    assert!((5.5..7.0).contains(&secs), "{secs} s decoded");
    // The start tone is at its head; the talk is the rest.
    let head = &pcm[..rate as usize * 6 / 10];
    let talk = &pcm[rate as usize..pcm.len() - rate as usize];
    let (rec_alice, rec_bob) = (tone_dbfs(talk, rate, 1200.0), tone_dbfs(talk, rate, 700.0));
    let beep = tone_dbfs(head, rate, 1400.0);
    let (alice_hears_bob, bob_hears_alice) = (
        peers::baresip_heard(&alice_dir, 700.0),
        peers::baresip_heard(&bob_dir, 1200.0),
    );
    let peak = talk.iter().map(|s| (*s as i32).abs()).max().unwrap_or(0);
    eprintln!(
        "recording: alice {rec_alice:.1} dBFS (bob hears her at {bob_hears_alice:.1}), bob {rec_bob:.1} dBFS (alice hears him at {alice_hears_bob:.1}), start tone {beep:.1} dBFS, peak {peak}"
    );
    assert!((rec_alice - bob_hears_alice).abs() <= 1.0);
    assert!((rec_bob - alice_hears_bob).abs() <= 1.0);
    assert!(beep > -30.0, "the start tone is recorded: {beep:.1} dBFS");
    // No clipping check here: baresip's sines are at about -6 dBFS each, so
    // the full mix of both (what the recording and a silent listener get)
    // reaches full scale; each caller's own mix-minus does not.
    // Both callers heard the start tone.
    for dir in [&alice_dir, &bob_dir] {
        let heard = whole_recording(dir);
        let level = tone_dbfs(&heard.0, heard.1, 1400.0);
        assert!(
            level > -45.0,
            "{} heard the tone: {level:.1} dBFS",
            dir.display()
        );
    }

    // The sidecar names who was there.
    let side: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("recordings").join(format!("{}.json", rec.id))).unwrap(),
    )
    .unwrap();
    let present: Vec<&str> = side["present_at_start"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["uri"].as_str())
        .collect();
    assert_eq!(present.len(), 2, "{side}");
    assert!(
        present.iter().any(|u| u.contains("alice")) && present.iter().any(|u| u.contains("bob"))
    );
    assert_eq!(side["duration_ms"].as_u64(), Some(done.duration_ms));

    // Listed, then deleted: gone from the API and the disk.
    let listed = g
        .list_recordings(auth(
            pb::ListRecordingsRequest {
                conference: "standup".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .recordings;
    assert_eq!(listed.iter().map(|r| &r.id).collect::<Vec<_>>(), [&rec.id]);
    g.delete_recording(auth(
        pb::DeleteRecordingRequest { id: rec.id.clone() },
        &admin,
    ))
    .await
    .unwrap();
    let e = g
        .get_recording(auth(get(&rec.id), &admin))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(!data
        .join("recordings")
        .join(format!("{}.opus", rec.id))
        .exists());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

/// Everything a baresip decoded, and its rate.
fn whole_recording(dir: &std::path::Path) -> (Vec<i16>, u32) {
    let wav = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("a decoded recording");
    read_wav_mono(&wav)
}

/// A room whose policy records from its first call starts a recording when
/// that call comes in, with no one asking; the last call leaving ends it,
/// with its sidecar. Our own test phone calls: what is checked is the
/// server's behaviour, not a codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_records_from_its_first_call_does_so_until_its_last() {
    use common::ua::Ua;
    use media_server::codec::CodecKind;
    let base = api::tempdir("recording-auto");
    let data = base.join("data");
    let server = in_process(37000, |c| {
        c.focus.entry_exit_tones = false;
        c.policy = Some(api::policy(&data));
    })
    .await;
    let (mut g, admin) = api::admin(&server, &data).await;
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(pb::Conference {
                name: "minutes".into(),
                record: true,
                ..Default::default()
            }),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    let list = |mut g: api::Client| {
        let admin = admin.clone();
        async move {
            g.list_recordings(auth(pb::ListRecordingsRequest::default(), &admin))
                .await
                .unwrap()
                .into_inner()
                .recordings
        }
    };
    assert!(list(g.clone()).await.is_empty());
    let addr = server.sip_udp;
    let mut ua = common::blocking(move || {
        let mut ua = Ua::new(addr, CodecKind::Pcmu, 440.0);
        assert_eq!(ua.call("minutes", ""), 200);
        ua
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let rec = loop {
        if let Some(r) = list(g.clone()).await.into_iter().next() {
            break r;
        }
        assert!(Instant::now() < deadline, "a recording started by itself");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(rec.active && rec.conference == "minutes", "{rec:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    ua = common::blocking(move || {
        assert_eq!(ua.bye("minutes"), 200);
        ua
    })
    .await;
    drop(ua);
    let deadline = Instant::now() + Duration::from_secs(5);
    let done = loop {
        let r = list(g.clone()).await;
        if r.iter().all(|r| !r.active) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the room's end ended the recording"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.len(), 1);
    assert!(done[0].duration_ms >= 1_500, "{done:?}");
    let side = data.join("recordings").join(format!("{}.json", rec.id));
    let side: serde_json::Value = serde_json::from_slice(&std::fs::read(side).unwrap()).unwrap();
    let events = side["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["event"] == "left"),
        "the caller's leaving is in the sidecar: {side}"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}
