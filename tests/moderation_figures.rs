//! Figures for the moderation API, printed, never asserted on time (run
//! with `cargo test --release --test moderation_figures -- --ignored
//! --nocapture`): UpdateParticipant (mute) calls per second, over one
//! connection and over eight, and how many mixer ticks pass from the
//! call's return to the first packet a listener gets without the muted
//! participant's tone.

mod common;

use std::time::{Duration, Instant};

use common::ua::Ua;
use common::{auth, blocking, in_process};
use media_server::codec::CodecKind;
use media_server::tone::goertzel;
use policy_server::pb;
use policy_server::pb::conference_control_client::ConferenceControlClient;
use tonic::transport::Channel;

fn mute(id: &str, on: bool) -> pb::UpdateParticipantRequest {
    pb::UpdateParticipantRequest {
        conference: "bench".into(),
        participant: Some(pb::Participant {
            id: id.into(),
            muted: on,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["muted".into()],
        }),
    }
}

fn quantiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn mute_rate_and_ticks_until_the_mute_is_heard() {
    let dir = std::env::temp_dir().join(format!("confab-figures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = in_process(38000, |c| {
        c.focus.entry_exit_tones = false;
        c.policy = Some(policy_server::PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.clone(),
            rate_per_token: 1e9,
            ..Default::default()
        });
    })
    .await;
    let p = s.policy.as_ref().unwrap();
    let (admin, url) = (p.admin_token.clone().unwrap(), format!("http://{}", p.addr));
    let mut g = ConferenceControlClient::<Channel>::connect(url.clone())
        .await
        .unwrap();
    let addr = s.sip_udp;
    let (a, b) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(a.call("bench", ""), 200);
        assert_eq!(b.call("bench", ""), 200);
        std::thread::sleep(Duration::from_millis(500));
        (a, b)
    })
    .await;
    let list = g
        .list_participants(auth(
            pb::ListParticipantsRequest {
                conference: "bench".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let a_uri = format!("sip:{}@127.0.0.1", a.user);
    let a_id = list
        .participants
        .iter()
        .find(|p| p.uri == a_uri)
        .unwrap()
        .id
        .clone();

    // Ticks from the call's return to the first frame B gets without A's tone.
    let mut ticks = Vec::new();
    for round in 0..20 {
        let b2 = b.received.clone();
        tokio::time::sleep(Duration::from_millis(300)).await;
        b2.lock().unwrap().clear();
        g.update_participant(auth(mute(&a_id, true), &admin))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let frames = b.heard_frames();
        let first_silent = frames
            .iter()
            .position(|f| goertzel(f, 8000, 440.0) < 1000.0)
            .unwrap_or(frames.len());
        ticks.push(first_silent as f64);
        g.update_participant(auth(mute(&a_id, false), &admin))
            .await
            .unwrap();
        if round == 0 {
            eprintln!(
                "round 0: {} frames after the call, first without A at {first_silent}",
                frames.len()
            );
        }
    }
    let (lo, mid, hi) = quantiles(ticks);
    eprintln!("FIGURE mute-to-mixer: min {lo} / median {mid} / max {hi} ticks (20 ms) from UpdateParticipant's return to the first frame without the muted tone");

    // Calls per second, one connection, sequential.
    let n = 2000;
    let t0 = Instant::now();
    for i in 0..n {
        g.update_participant(auth(mute(&a_id, i % 2 == 0), &admin))
            .await
            .unwrap();
    }
    let seq = n as f64 / t0.elapsed().as_secs_f64();
    eprintln!("FIGURE UpdateParticipant sequential, one connection: {seq:.0} calls/s");

    // Eight clients at once.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, admin, a_id) = (url.clone(), admin.clone(), a_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut g = ConferenceControlClient::<Channel>::connect(url)
                .await
                .unwrap();
            for i in 0..500 {
                g.update_participant(auth(mute(&a_id, i % 2 == 0), &admin))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let par = 4000.0 / t0.elapsed().as_secs_f64();
    eprintln!("FIGURE UpdateParticipant, eight connections: {par:.0} calls/s");
    drop((a, b));
    s.shutdown().await;
}
