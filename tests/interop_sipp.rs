//! SIPp against the running binary. Needs `sipp` (Debian `sip-tester`):
//! without it these tests say so and pass, unless `CONFAB_INTEROP=1`
//! (set by `.ci/run`), which makes a missing tool a failure.

mod common;

use std::process::Command;

use common::Server;

/// SIPp's name when it is installed, or None (after SKIPPED) when it may be skipped.
fn tool(name: &str) -> Option<String> {
    common::peer_tool(name, "sip-tester").then(|| name.to_owned())
}

fn run_scenario(
    sipp: &str,
    server: &Server,
    scenario: &str,
    transport: &str,
    calls: u32,
    rate: u32,
    extra: &[&str],
) -> (bool, String) {
    let dir = tempdir();
    let out = Command::new("timeout")
        .arg("60")
        .arg(sipp)
        .arg(server.sip.to_string())
        .args([
            "-sf",
            &format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR")),
        ])
        .args(["-s", "room", "-i", "127.0.0.1", "-p", "0", "-t", transport])
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-nostdin",
            "-trace_err",
        ])
        .args(extra)
        .current_dir(&dir)
        .output()
        .expect("run sipp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), text)
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "confab-sipp-{}-{}",
        std::process::id(),
        common::free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn sipp_options_over_udp_and_tcp() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let (ok, out) = run_scenario(&sipp, &server, "options.xml", "u1", 50, 50, &[]);
    assert!(ok, "UDP OPTIONS failed:\n{out}");
    let (ok, out) = run_scenario(&sipp, &server, "options.xml", "t1", 20, 20, &[]);
    assert!(ok, "TCP OPTIONS failed:\n{out}");
}

#[test]
fn sipp_unknown_method_gets_501() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let (ok, out) = run_scenario(&sipp, &server, "unknown_method.xml", "u1", 10, 10, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_malformed_requests_get_their_status() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let (ok, out) = run_scenario(&sipp, &server, "malformed.xml", "u1", 5, 5, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_dials_in_and_plays_g711_into_the_room() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let media_port = common::free_port().to_string();
    let (ok, out) = run_scenario(
        &sipp,
        &server,
        "dialin_pcap.xml",
        "u1",
        2,
        1,
        &["-mi", "127.0.0.1", "-mp", &media_port],
    );
    assert!(ok, "{out}");
}

#[test]
fn sipp_cancel_before_answer_gets_487() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&["--answer-delay-ms", "2000"]);
    let (ok, out) = run_scenario(&sipp, &server, "cancel.xml", "u1", 3, 3, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_reinvite_hold_and_resume() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let (ok, out) = run_scenario(&sipp, &server, "reinvite_hold.xml", "u1", 3, 3, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_malformed_invites_are_refused() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    let (ok, out) = run_scenario(&sipp, &server, "malformed_invite.xml", "u1", 3, 3, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_subscribe_gets_the_full_conference_state() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&["--watcher", "*", "--room", "lobby"]);
    let (ok, out) = run_scenario(&sipp, &server, "subscribe.xml", "u1", 3, 3, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_subscribe_refusals() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&["--watcher", "*", "--room", "lobby"]);
    let (ok, out) = run_scenario(&sipp, &server, "subscribe_refused.xml", "u1", 3, 3, &[]);
    assert!(ok, "{out}");
}

#[test]
fn sipp_keys_three_wrong_pins_with_rfc4733_and_is_hung_up_on() {
    let Some(sipp) = tool("sipp") else { return };
    let server = Server::start(&[]);
    // The room with a PIN, made over gRPC with the first admin token.
    let admin = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
    let grpc = format!("http://{}", server.grpc);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            use policy_server::pb;
            let mut g = pb::conference_control_client::ConferenceControlClient::connect(grpc)
                .await
                .unwrap();
            let room = pb::Conference {
                name: "vault".into(),
                pin: "1234".into(),
                ..Default::default()
            };
            g.create_conference(common::auth(
                pb::CreateConferenceRequest {
                    conference: Some(room),
                    ..Default::default()
                },
                admin.trim(),
            ))
            .await
            .unwrap();
        });
    let media_port = common::free_port().to_string();
    let (ok, out) = run_scenario(
        &sipp,
        &server,
        "pin_dtmf.xml",
        "u1",
        1,
        1,
        &["-s", "vault", "-mi", "127.0.0.1", "-mp", &media_port],
    );
    assert!(ok, "{out}");
}
