//! Two confab nodes behind one Kamailio running the repo's cluster config
//! (deploy/kamailio/cluster.cfg): the callers of a room (two baresips)
//! land on the same node, chosen by a hash of the room's name, and hear
//! each other; a SIPp watcher's subscription works through the proxy; when
//! that node drains, a new caller of the room gets the other node (its 503
//! makes Kamailio try the next one). The nodes share one PostgreSQL store:
//! the admin token made by the first works on the second, and a lock set
//! through the drained node's API makes the other node refuse the room's
//! next caller. Call setup time through the proxy and direct is printed.
//! Needs kamailio, sipp, baresip and PostgreSQL; without them the test says
//! SKIPPED and passes, unless `CONFAB_INTEROP=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::peers::{self, write_ulaw_tone, Baresip};
use common::sipp::{report, run as sipp};
use common::{in_process, peer_tool};

/// A node: confab with its own policy server, in this process, on the
/// shared store at `database`.
async fn node(rtp_base: u16, dir: &Path, database: &str) -> confab::Server {
    let data = dir.to_owned();
    let database = database.to_owned();
    in_process(rtp_base, |c| {
        c.focus.entry_exit_tones = false;
        c.focus.watchers = vec!["*".into()];
        c.policy = Some(policy_server::PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: data,
            database_url: Some(database),
            ..Default::default()
        });
    })
    .await
}

/// Mean SIP response time (INVITE to 200) over SIPp's rtt file in `dir`, ms.
fn mean_rtt(dir: &Path, scenario: &str) -> Option<f64> {
    let stem = scenario.trim_end_matches(".xml");
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(stem) && n.ends_with("_rtt.csv")
        })?;
    let text = std::fs::read_to_string(file.path()).ok()?;
    let times: Vec<f64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(';').nth(1)?.trim().parse().ok())
        .collect();
    (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_behind_kamailio_a_room_meets_on_one_and_a_drain_moves_new_calls() {
    if !(peer_tool("kamailio", "kamailio")
        && peer_tool("sipp", "sip-tester")
        && peer_tool("baresip", "baresip"))
    {
        return;
    }
    let Some(pg) = test_support::postgres::Postgres::start("cluster") else {
        return;
    };
    let base = common::api::tempdir("cluster");
    let a = node(33000, &base.join("a"), &pg.url()).await;
    let b = node(43000, &base.join("b"), &pg.url()).await;
    // One admin token for both: the first node made it, the second found it.
    let (api_a, admin) = common::api::admin(&a, &base.join("a")).await;
    assert!(!base.join("b").join("admin.token").exists());
    let b_addr = b.policy.as_ref().expect("a policy server").addr;
    let mut api_b = common::api::Client::connect(format!("http://{b_addr}"))
        .await
        .unwrap();
    let alpha = policy_server::pb::Conference {
        name: "alpha".into(),
        subject: "Cluster standup".into(),
        ..Default::default()
    };
    api_b
        .create_conference(common::auth(
            policy_server::pb::CreateConferenceRequest {
                conference: Some(alpha),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("node b takes node a's admin token");
    let k = Kamailio::cluster(&[a.sip_udp, b.sip_udp], &base);
    let proxy = k.addr();
    let sipp_dir = base.join("sipp");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    write_ulaw_tone(&sipp_dir);

    // Two phones call room alpha through the proxy and stay 12 s.
    let uri = format!("sip:alpha@{proxy}");
    let phone = |user, freq| peers::baresip(&base, Baresip::dialing(user, freq, &uri, 12));
    let (alice_dir, _, alice) = phone("alice", 1200);
    let (bob_dir, _, bob) = phone("bob", 700);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (on_a, on_b) = (
        a.calls_active().await.unwrap_or(0),
        b.calls_active().await.unwrap_or(0),
    );
    assert!(
        (on_a, on_b) == (2, 0) || (on_a, on_b) == (0, 2),
        "both callers of alpha on one node: a={on_a} b={on_b}\n{}",
        k.log()
    );
    let (home, other) = if on_a == 2 { (&a, &b) } else { (&b, &a) };
    let mut home_api = if on_a == 2 { api_a } else { api_b };
    // A watcher of alpha through the proxy sees both users, then leaves.
    let watcher = sipp(&sipp_dir, proxy, "proxy_subscribe.xml", "alpha", &["-aa"]);
    let (alice, bob, watcher) = tokio::task::spawn_blocking(move || {
        (
            alice.wait_with_output().unwrap(),
            bob.wait_with_output().unwrap(),
            watcher.wait_with_output().unwrap(),
        )
    })
    .await
    .unwrap();
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(
        watcher.status.success(),
        "subscription through the proxy: {}",
        report(&sipp_dir, "proxy_subscribe.xml")
    );
    let (alice_hears, bob_hears) = (
        peers::baresip_heard(&alice_dir, 700.0),
        peers::baresip_heard(&bob_dir, 1200.0),
    );
    eprintln!("on one node through Kamailio: alice hears bob at {alice_hears:.1} dBFS, bob hears alice at {bob_hears:.1} dBFS");
    assert!(alice_hears > -30.0, "alice: {}", text(&alice));
    assert!(bob_hears > -30.0, "bob: {}", text(&bob));

    // Setup time: INVITE to 200, ten calls each, through the proxy and direct.
    let timed = |to, scenario: &'static str| {
        sipp(
            &sipp_dir,
            to,
            scenario,
            "timing",
            &[
                "-m",
                "10",
                "-r",
                "10",
                "-d",
                "200",
                "-trace_rtt",
                "-rtt_freq",
                "1",
                "-key",
                "caller",
                "timer",
            ],
        )
    };
    let through = timed(proxy, "proxy_call.xml");
    let direct = timed(other.sip_udp, "held_call.xml");
    let (through, direct) = tokio::task::spawn_blocking(move || {
        (
            through.wait_with_output().unwrap(),
            direct.wait_with_output().unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(
        through.status.success(),
        "{}",
        report(&sipp_dir, "proxy_call.xml")
    );
    assert!(
        direct.status.success(),
        "{}",
        report(&sipp_dir, "held_call.xml")
    );
    eprintln!(
        "call setup (INVITE to 200), mean of 10: through Kamailio {:.2} ms, direct {:.2} ms",
        mean_rtt(&sipp_dir, "proxy_call.xml").unwrap_or(f64::NAN),
        mean_rtt(&sipp_dir, "held_call.xml").unwrap_or(f64::NAN)
    );

    // The home node drains: a new caller of alpha is sent to the other one.
    home.drain().await;
    let before = other.calls_active().await.unwrap_or(0);
    let late = sipp(
        &sipp_dir,
        proxy,
        "proxy_call.xml",
        "alpha",
        &["-d", "3000", "-key", "caller", "carol"],
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut moved = false;
    while Instant::now() < deadline && !moved {
        tokio::time::sleep(Duration::from_millis(100)).await;
        moved = other.calls_active().await.unwrap_or(0) > before;
    }
    let late = tokio::task::spawn_blocking(move || late.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        late.status.success(),
        "{}",
        report(&sipp_dir, "proxy_call.xml")
    );
    assert!(moved, "the new call went to the other node: {}", k.log());
    assert!(k.log().contains("answered 503"), "{}", k.log());

    // Locked through the drained node's API: the other node's focus hears
    // of it through the shared store and refuses the next caller.
    home_api
        .update_conference(common::auth(
            policy_server::pb::UpdateConferenceRequest {
                conference: Some(policy_server::pb::Conference {
                    name: "alpha".into(),
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
    // The announcement takes milliseconds; the wait is for a loaded CI.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = sipp(
        &sipp_dir,
        proxy,
        "proxy_call_refused.xml",
        "alpha",
        &["-key", "caller", "dave"],
    );
    let refused = tokio::task::spawn_blocking(move || refused.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        refused.status.success(),
        "{}\n{}",
        report(&sipp_dir, "proxy_call_refused.xml"),
        k.log()
    );
    drop(k);
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}
