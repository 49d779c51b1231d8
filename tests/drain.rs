//! Graceful drain of the `confab` binary, with SIPp as the caller: on
//! SIGTERM a call in progress is kept to its end while a new INVITE gets
//! 503 with Retry-After and gRPC health says NOT_SERVING, and confab exits
//! 0 soon after the last call ends; a drain asked for through the API
//! that outlasts `--drain-timeout-secs` ends the call with a BYE carrying a
//! Reason. Needs sipp; without it the tests say SKIPPED and pass, unless
//! `CONFAB_INTEROP=1`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::api::{tempdir, Client};
use common::binary::Logged;
use common::peers::write_ulaw_tone;
use common::{auth, free_port, peer_tool, status, UdpClient};
use policy_server::pb;

/// The binary on free ports, its data directory, and its log.
struct Confab {
    run: Logged,
    sip: SocketAddr,
    grpc: SocketAddr,
    data: PathBuf,
}

impl Confab {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let (sip, grpc) = (
            SocketAddr::from(([127, 0, 0, 1], free_port())),
            SocketAddr::from(([127, 0, 0, 1], free_port())),
        );
        let data = dir.join("data");
        let rtp = 30000 + (sip.port() % 100) * 100;
        let mut args = vec![
            "--sip-listen".to_string(),
            sip.to_string(),
            "--grpc-listen".into(),
            grpc.to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--rtp-ports".into(),
            format!("{rtp}-{}", rtp + 98),
            "--no-tcp".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = Logged::start(&args);
        run.log_until("confab listening", Duration::from_secs(20));
        Self {
            run,
            sip,
            grpc,
            data,
        }
    }
}

/// SIPp as alice, in room drainroom with `scenario`; returns once her
/// call is up (1.5 s later).
async fn alice_calls(confab: &Confab, dir: &Path, scenario: &str, extra: &[&str]) -> Child {
    let mut args = vec!["-key", "caller", "alice"];
    args.extend_from_slice(extra);
    let call = common::sipp::run(dir, confab.sip, scenario, "drainroom", &args);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    call
}

/// Waits, off the runtime, for a peer to finish.
async fn finished(peer: Child) -> Output {
    tokio::task::spawn_blocking(move || peer.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// An INVITE to `room` while draining: its final status and Retry-After.
fn new_call(to: SocketAddr, room: &str) -> (u16, Option<String>) {
    let phone = UdpClient::new();
    let invite = common::request("INVITE", phone.addr(), to, "late-caller", "")
        .into_iter()
        .collect::<Vec<u8>>();
    let invite = String::from_utf8(invite)
        .unwrap()
        .replace("sip:room@", &format!("sip:{room}@"));
    phone.send(invite.as_bytes(), to);
    let last = phone
        .responses_until_final(Duration::from_secs(3))
        .pop()
        .unwrap_or_default();
    (
        status(&last),
        common::header(&last, "Retry-After").map(str::to_owned),
    )
}

async fn health(grpc: SocketAddr) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    h.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    })
    .await
    .map(|r| r.into_inner().status)
    .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_the_call_to_its_end_refuses_new_ones_and_exits_0() {
    if !peer_tool("sipp", "sip-tester") {
        return;
    }
    let dir = tempdir("drain-term");
    write_ulaw_tone(&dir);
    let cdr = dir.join("calls.jsonl");
    let mut confab = Confab::start(
        &dir,
        &["--drain-timeout-secs", "30", "--cdr", cdr.to_str().unwrap()],
    );
    assert_eq!(health(confab.grpc).await, 1, "SERVING before");
    // A call that lasts 5 s, hung up by the caller.
    let call = alice_calls(&confab, &dir, "held_call.xml", &["-d", "5000"]).await;
    confab.run.signal("-TERM");
    let log = confab
        .run
        .log_until("waiting for calls to end", Duration::from_secs(5));
    assert!(log.contains("calls=1"), "one call kept: {log}");
    let (refused, retry) = new_call(confab.sip, "drainroom");
    assert_eq!(
        (refused, retry.as_deref()),
        (503, Some("60")),
        "a new call while draining"
    );
    assert_eq!(health(confab.grpc).await, 2, "NOT_SERVING while draining");
    let call = finished(call).await;
    let hung_up = Instant::now();
    assert!(
        call.status.success(),
        "the kept call ended normally: {}",
        common::sipp::report(&dir, "held_call.xml")
    );
    let (status, exited) = confab
        .run
        .exit(Duration::from_secs(10))
        .expect("confab exits");
    assert!(status.success(), "{status:?}");
    let log = confab.run.log_until("exiting", Duration::from_secs(1));
    assert!(log.contains("drained: the last call ended"), "{log}");
    let after = log
        .lines()
        .find_map(|l| l.split("after_last_call_us=").nth(1))
        .unwrap_or("?");
    eprintln!(
        "drain: 1 call kept through SIGTERM; confab saw the last call end and exited {after} µs later \
         (process gone {:.0} ms after SIPp was)",
        exited.saturating_duration_since(hung_up).as_secs_f64() * 1e3
    );
    // The call's detail record: the kept call, then the refused one has none.
    let records = records(&cdr);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["room"], "drainroom");
    assert!(
        r["caller"].as_str().unwrap().starts_with("sip:alice@"),
        "{r}"
    );
    assert_eq!(
        (&r["cause"], &r["codec"], &r["direction"]),
        (&"remote BYE".into(), &"PCMU".into(), &"in".into())
    );
    let secs = r["duration_s"].as_f64().unwrap();
    assert!((4.5..7.0).contains(&secs), "{r}");
    assert!(
        r["end"].as_f64().unwrap() - r["start"].as_f64().unwrap() > 4.5,
        "{r}"
    );
    // SIPp streamed its tone the whole call: 50 packets a second.
    let packets = r["media"]["packets_in"].as_u64().unwrap();
    assert!(packets as f64 > secs * 40.0, "{r}");
    eprintln!("call detail record: {r}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_from_the_api_that_times_out_ends_the_call_with_a_reason() {
    if !peer_tool("sipp", "sip-tester") {
        return;
    }
    let dir = tempdir("drain-api");
    write_ulaw_tone(&dir);
    let cdr = dir.join("calls.jsonl");
    let mut confab = Confab::start(
        &dir,
        &["--drain-timeout-secs", "1", "--cdr", cdr.to_str().unwrap()],
    );
    let call = alice_calls(&confab, &dir, "held_until_bye.xml", &[]).await;
    let admin = std::fs::read_to_string(confab.data.join("admin.token")).unwrap();
    let mut g = Client::connect(format!("http://{}", confab.grpc))
        .await
        .unwrap();
    let refused = g
        .drain(tonic::Request::new(pb::DrainRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    g.drain(auth(pb::DrainRequest {}, admin.trim()))
        .await
        .unwrap();
    let call = finished(call).await;
    let text = common::sipp::report(&dir, "held_until_bye.xml");
    assert!(call.status.success(), "{text}");
    assert!(
        text.contains("server shutting down"),
        "the BYE's Reason: {text}"
    );
    let (status, _) = confab
        .run
        .exit(Duration::from_secs(10))
        .expect("confab exits");
    assert!(status.success(), "{status:?}");
    let records = records(&cdr);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["cause"], "server shutting down");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The call detail records written to `file`, one JSON value a line.
fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_ends_the_calls_at_once() {
    if !peer_tool("sipp", "sip-tester") {
        return;
    }
    let dir = tempdir("drain-twice");
    write_ulaw_tone(&dir);
    let mut confab = Confab::start(&dir, &["--drain-timeout-secs", "600"]);
    let call = alice_calls(&confab, &dir, "held_until_bye.xml", &[]).await;
    confab.run.signal("-TERM");
    confab
        .run
        .log_until("waiting for calls to end", Duration::from_secs(5));
    let second = Instant::now();
    confab.run.signal("-TERM");
    let (status, exited) = confab
        .run
        .exit(Duration::from_secs(10))
        .expect("confab exits");
    assert!(status.success(), "{status:?}");
    assert!(
        exited.duration_since(second) < Duration::from_secs(3),
        "at once, not after 600 s"
    );
    let call = finished(call).await;
    let text = common::sipp::report(&dir, "held_until_bye.xml");
    assert!(call.status.success(), "{text}");
    assert!(text.contains("server shutting down"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
