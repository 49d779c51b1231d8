//! Graceful drain of the `confab` binary, with SIPp as the caller: on
//! SIGTERM a call in progress is kept to its end while a new INVITE gets
//! 503 with Retry-After and gRPC health says NOT_SERVING, and confab exits
//! 0 soon after the last call ends; a drain asked for through the API
//! that outlasts `--drain-timeout-secs` ends the call with a BYE carrying a
//! Reason. Needs sipp; without it the tests say SKIPPED and pass, unless
//! `CONFAB_INTEROP=1`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::api::{tempdir, Client};
use common::peers::write_ulaw_tone;
use common::{auth, free_port, peer_tool, status, Killed, UdpClient};
use policy_server::pb;

/// The binary, its SIP and gRPC addresses, its data directory, and its log lines.
struct Confab {
    child: Killed,
    sip: SocketAddr,
    grpc: SocketAddr,
    data: PathBuf,
    lines: mpsc::Receiver<String>,
}

impl Confab {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let (sip, grpc) = (
            SocketAddr::from(([127, 0, 0, 1], free_port())),
            SocketAddr::from(([127, 0, 0, 1], free_port())),
        );
        let data = dir.join("data");
        let rtp = 30000 + (sip.port() % 100) * 100;
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args([
                "--sip-listen",
                &sip.to_string(),
                "--grpc-listen",
                &grpc.to_string(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .args(["--rtp-ports", &format!("{rtp}-{}", rtp + 98), "--no-tcp"])
            .args(extra)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start confab");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let c = Self {
            child: Killed(child),
            sip,
            grpc,
            data,
            lines,
        };
        c.log_until("confab listening", Duration::from_secs(20));
        c
    }

    /// Log lines until one contains `needle` (or `t` passes).
    fn log_until(&self, needle: &str, t: Duration) -> String {
        let deadline = Instant::now() + t;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l.contains(needle);
                    seen.push(l);
                    if done {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        seen.join("\n")
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.0.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit: its status and when.
    fn exit(&mut self, t: Duration) -> Option<(std::process::ExitStatus, Instant)> {
        let deadline = Instant::now() + t;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.0.try_wait() {
                return Some((s, Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
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
    let call = common::sipp::run(
        &dir,
        confab.sip,
        "held_call.xml",
        "drainroom",
        &["-d", "5000", "-key", "caller", "alice"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    confab.signal("-TERM");
    let log = confab.log_until("waiting for calls to end", Duration::from_secs(5));
    assert!(log.contains("calls=1"), "one call kept: {log}");
    let (refused, retry) = new_call(confab.sip, "drainroom");
    assert_eq!(
        (refused, retry.as_deref()),
        (503, Some("60")),
        "a new call while draining"
    );
    assert_eq!(health(confab.grpc).await, 2, "NOT_SERVING while draining");
    let call = tokio::task::spawn_blocking(move || call.wait_with_output().unwrap())
        .await
        .unwrap();
    let hung_up = Instant::now();
    assert!(
        call.status.success(),
        "the kept call ended normally: {}",
        common::sipp::report(&dir, "held_call.xml")
    );
    let (status, exited) = confab.exit(Duration::from_secs(10)).expect("confab exits");
    assert!(status.success(), "{status:?}");
    let log = confab.log_until("exiting", Duration::from_secs(1));
    assert!(log.contains("drained: the last call ended"), "{log}");
    let after = log
        .lines()
        .find_map(|l| l.split("after_last_call_ms=").nth(1))
        .unwrap_or("?");
    eprintln!(
        "drain: 1 call kept through SIGTERM; confab saw the last call end and exited {after} ms later \
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
    let call = common::sipp::run(
        &dir,
        confab.sip,
        "held_until_bye.xml",
        "drainroom",
        &["-key", "caller", "alice"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    let call = tokio::task::spawn_blocking(move || call.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = common::sipp::report(&dir, "held_until_bye.xml");
    assert!(call.status.success(), "{text}");
    assert!(
        text.contains("server shutting down"),
        "the BYE's Reason: {text}"
    );
    let (status, _) = confab.exit(Duration::from_secs(10)).expect("confab exits");
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
    let call = common::sipp::run(
        &dir,
        confab.sip,
        "held_until_bye.xml",
        "drainroom",
        &["-key", "caller", "alice"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    confab.signal("-TERM");
    confab.log_until("waiting for calls to end", Duration::from_secs(5));
    let second = Instant::now();
    confab.signal("-TERM");
    let (status, exited) = confab.exit(Duration::from_secs(10)).expect("confab exits");
    assert!(status.success(), "{status:?}");
    assert!(
        exited.duration_since(second) < Duration::from_secs(3),
        "at once, not after 600 s"
    );
    let call = tokio::task::spawn_blocking(move || call.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = common::sipp::report(&dir, "held_until_bye.xml");
    assert!(call.status.success(), "{text}");
    assert!(text.contains("server shutting down"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
