//! SIP over TLS (RFC 3261 §26) and SRTP (SDES) against baresip: two phones
//! call a room over TLS and hear each other by tones while a client that
//! stops in the middle of its handshake is dropped and holds nothing up;
//! the certificate is replaced while running and a phone that trusts only
//! the new one gets in; confab calls a phone over TLS and verifies its
//! certificate; a phone registered over TLS is called back over its own
//! connection; SRTP phones hear each other in a room whose own policy
//! requires SRTP, and what the policy refuses gets 488. (Debian's SIPp is built without TLS, so SIPp cannot take
//! part here.) Needs baresip; without it the test says SKIPPED and
//! passes, unless `CONFAB_INTEROP=1`.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::api::{add_user, create_room, tempdir, Client};
use common::peers::{self, Baresip};
use common::{auth, free_port, peer_tool};
use policy_server::pb;

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key) PEM
/// files written in `dir` under `name`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a certificate");
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

async fn wait(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait for baresip"))
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A baresip on TLS trusting `ca`, dialing `target` (or waiting) with a sine.
fn tls_phone(
    base: &Path,
    user: &str,
    ca: &Path,
    freq: u32,
    target: Option<String>,
    secs: u32,
) -> (PathBuf, u16, Child) {
    phone(base, user, "tls", ca, false, freq, target, secs)
}

/// A baresip over `transport`, with SRTP (SDES, `srtp-mand`) or not.
#[allow(clippy::too_many_arguments)]
fn phone(
    base: &Path,
    user: &str,
    transport: &str,
    ca: &Path,
    srtp: bool,
    freq: u32,
    target: Option<String>,
    secs: u32,
) -> (PathBuf, u16, Child) {
    let mediaenc = if srtp { ";mediaenc=srtp-mand" } else { "" };
    peers::baresip(
        base,
        Baresip {
            user,
            account: format!("<sip:{user}@127.0.0.1;transport={transport}>;regint=0{mediaenc}"),
            freq,
            command: target.map(|t| format!("/dial {t}")),
            secs,
            extra_config: format!("sip_cafile {}\nmodule srtp.so\n", ca.display()),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_call_a_room_over_tls_and_a_stalled_handshake_holds_nothing_up() {
    if !peer_tool("baresip", "baresip") {
        return;
    }
    let base = tempdir("tls");
    let (cert, key) = certificate(&base, "first");
    let s = common::in_process(46000, |c| {
        c.focus.entry_exit_tones = false;
        c.sip_tls = confab::SipTls {
            listen: Some(([127, 0, 0, 1], free_port()).into()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ca: None,
        };
    })
    .await;
    let tls = s.sip_tls.expect("listening on TLS");
    // A client that sends half a ClientHello and stops.
    let stalled = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(tls).unwrap();
        c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap_or(0);
        (n, t0.elapsed())
    });
    let room = format!("sip:tlsroom@{tls};transport=tls");
    let (alice_dir, _, alice) = tls_phone(&base, "alice", &cert, 1200, Some(room.clone()), 10);
    let (bob_dir, _, bob) = tls_phone(&base, "bob", &cert, 700, Some(room.clone()), 10);
    let (alice, bob) = (wait(alice).await, wait(bob).await);
    assert!(
        text(&alice).contains("Call established"),
        "{}",
        text(&alice)
    );
    let (alice_hears, bob_hears) = (
        peers::baresip_heard(&alice_dir, 700.0),
        peers::baresip_heard(&bob_dir, 1200.0),
    );
    eprintln!(
        "over TLS alice hears bob at {alice_hears:.1} dBFS, bob hears alice at {bob_hears:.1} dBFS"
    );
    assert!(alice_hears > -30.0, "{}", text(&alice));
    assert!(bob_hears > -30.0, "{}", text(&bob));
    let (n, after) = stalled.join().unwrap();
    assert_eq!(n, 0, "the stalled client gets nothing but a close");
    assert!(after < Duration::from_secs(15), "closed after {after:?}");

    // A new certificate, read while running: a phone that trusts only it
    // gets in; a broken file is refused and the current one stays.
    let (cert2, key2) = certificate(&base, "second");
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    s.reload_tls().expect("the new certificate is usable");
    let (_, _, carol) = tls_phone(&base, "carol", &cert2, 900, Some(room), 4);
    let carol = wait(carol).await;
    assert!(
        text(&carol).contains("Call established"),
        "{}",
        text(&carol)
    );
    std::fs::write(&key, "not a key").unwrap();
    assert!(s.reload_tls().is_err());
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confab_calls_a_phone_over_tls_and_verifies_it() {
    call_out_over_tls("tls-out", false).await;
}

/// With SRTP required, the dial-out offers RTP/SAVP with SDES keys over
/// TLS, and refuses to send keys to a target in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_srtp_required_confab_calls_out_with_sdes_keys_over_tls_only() {
    call_out_over_tls("srtp-out", true).await;
}

async fn call_out_over_tls(name: &str, srtp: bool) {
    if !peer_tool("baresip", "baresip") {
        return;
    }
    let base = tempdir(name);
    let (cert, key) = certificate(&base, "confab");
    let (phone_cert, phone_key) = certificate(&base, "phone");
    // baresip's TLS identity is one PEM file with the key and the chain.
    let identity = base.join("phone.pem");
    std::fs::write(
        &identity,
        format!(
            "{}{}",
            std::fs::read_to_string(&phone_key).unwrap(),
            std::fs::read_to_string(&phone_cert).unwrap()
        ),
    )
    .unwrap();
    let dir = base.join("data");
    let s = common::in_process(if srtp { 50000 } else { 47000 }, |c| {
        c.focus.entry_exit_tones = false;
        c.focus.dial_out.allow = vec!["sip:dave@127.0.0.1:*".into()];
        if srtp {
            c.focus.srtp.mode = focus::SrtpMode::Required;
        }
        c.sip_tls = confab::SipTls {
            listen: Some(([127, 0, 0, 1], free_port()).into()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            // confab trusts the phone's certificate as a private CA.
            ca: Some(phone_cert.clone()),
        };
        c.policy = Some(common::api::policy(&dir));
    })
    .await;
    let admin = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let admin = admin.trim();
    let p = s.policy.as_ref().unwrap();
    let mut g = Client::connect(format!("http://{}", p.addr)).await.unwrap();
    create_room(&mut g, admin, "outbound").await;
    let (_, sip, dave) = peers::baresip(
        &base,
        Baresip {
            user: "dave",
            account: format!(
                "<sip:dave@127.0.0.1:{{sip}};transport=tls>;regint=0{}",
                if srtp { ";mediaenc=srtp-mand" } else { "" }
            ),
            freq: 1000,
            command: None,
            secs: 10,
            extra_config: format!(
                "sip_certificate {}\nsip_cafile {}\nmodule srtp.so\n",
                identity.display(),
                cert.display()
            ),
        },
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // baresip listens for TLS one port above its SIP port.
    let target: SocketAddr = ([127, 0, 0, 1], sip + 1).into();
    let placed = common::api::dial_out(
        &mut g,
        admin,
        "outbound",
        format!("sip:dave@{target};transport=tls"),
    )
    .await
    .expect("placed");
    let connected = common::api::connected(&mut g, admin, "outbound", &placed.id).await;
    if srtp {
        // Keys are not sent where anyone on the path could read them.
        let refused = common::api::dial_out(
            &mut g,
            admin,
            "outbound",
            format!("sip:dave@127.0.0.1:{sip}"),
        )
        .await
        .unwrap_err();
        assert!(refused.message().contains("488"), "{refused:?}");
    }
    let dave = wait(dave).await;
    assert!(connected, "dave answered over TLS: {}", text(&dave));
    if srtp {
        assert!(text(&dave).contains("SRTP is Enabled"), "{}", text(&dave));
    }
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

/// The server takes SRTP or RTP (`optional`, the default); the room was
/// made with SRTP required through the API, which wins for its calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_phones_over_tls_hear_each_other_and_what_policy_refuses_gets_488() {
    if !peer_tool("baresip", "baresip") {
        return;
    }
    let base = tempdir("srtp");
    let (cert, key) = certificate(&base, "srtp");
    let dir = base.join("data");
    let s = common::in_process(48000, |c| {
        c.focus.entry_exit_tones = false;
        c.sip_tls = confab::SipTls {
            listen: Some(([127, 0, 0, 1], free_port()).into()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ca: None,
        };
        c.policy = Some(common::api::policy(&dir));
    })
    .await;
    let (mut g, admin) = common::api::admin(&s, &dir).await;
    let admin = admin.as_str();
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(pb::Conference {
                name: "srtproom".into(),
                srtp: pb::SrtpMode::Required as i32,
                ..Default::default()
            }),
            blueprint: String::new(),
        },
        admin,
    ))
    .await
    .expect("room with SRTP required");
    let tls = s.sip_tls.expect("listening on TLS");
    let room = format!("sip:srtproom@{tls};transport=tls");
    let (alice_dir, _, alice) = phone(
        &base,
        "alice",
        "tls",
        &cert,
        true,
        1200,
        Some(room.clone()),
        10,
    );
    let (bob_dir, _, bob) = phone(
        &base,
        "bob",
        "tls",
        &cert,
        true,
        700,
        Some(room.clone()),
        10,
    );
    // SDES keys over UDP, where anyone can read them: refused.
    let udp_room = format!("sip:srtproom@{}", s.sip_udp);
    let (_, _, carol) = phone(&base, "carol", "udp", &cert, true, 900, Some(udp_room), 4);
    // Plain RTP where the room requires SRTP: refused.
    let (_, _, dave) = phone(&base, "dave", "tls", &cert, false, 900, Some(room), 4);
    // Plain RTP to a room that follows the server's `optional`: taken.
    let open = format!("sip:openroom@{tls};transport=tls");
    let (_, _, erin) = phone(&base, "erin", "tls", &cert, false, 900, Some(open), 4);
    let (alice, bob, carol, dave, erin) = (
        wait(alice).await,
        wait(bob).await,
        wait(carol).await,
        wait(dave).await,
        wait(erin).await,
    );
    assert!(text(&alice).contains("SRTP is Enabled"), "{}", text(&alice));
    let (alice_hears, bob_hears) = (
        peers::baresip_heard(&alice_dir, 700.0),
        peers::baresip_heard(&bob_dir, 1200.0),
    );
    eprintln!("over SRTP alice hears bob at {alice_hears:.1} dBFS, bob hears alice at {bob_hears:.1} dBFS");
    assert!(alice_hears > -30.0, "{}", text(&alice));
    assert!(bob_hears > -30.0, "{}", text(&bob));
    for (who, out) in [("carol", &carol), ("dave", &dave)] {
        let t = text(out);
        assert!(t.contains("488"), "{who} was refused: {t}");
        assert!(!t.contains("Call established"), "{who}: {t}");
    }
    let t = text(&erin);
    assert!(
        t.contains("Call established"),
        "erin, plain RTP elsewhere: {t}"
    );
    assert!(!t.contains("SRTP is Enabled"), "erin: {t}");
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_tls_is_called_back_over_its_own_connection() {
    if !peer_tool("baresip", "baresip") {
        return;
    }
    let base = tempdir("tls-reg");
    let (cert, key) = certificate(&base, "confab");
    let dir = base.join("data");
    let s = common::in_process(49000, |c| {
        c.focus.entry_exit_tones = false;
        c.focus.auth.mode = focus::AuthMode::Required;
        c.focus.auth.realm = policy_server::service::SIP_REALM.into();
        c.sip_tls = confab::SipTls {
            listen: Some(([127, 0, 0, 1], free_port()).into()),
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ca: None,
        };
        c.policy = Some(common::api::policy(&dir));
    })
    .await;
    let tls = s.sip_tls.expect("TLS");
    let admin = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let admin = admin.trim();
    let p = s.policy.as_ref().unwrap();
    let mut g = Client::connect(format!("http://{}", p.addr)).await.unwrap();
    add_user(&mut g, admin, "erin", "erin-secret-5").await;
    create_room(&mut g, admin, "callback").await;
    // Erin registers over TLS; the call to her goes back over the
    // connection she opened (RFC 5626 §5.3), as a phone behind NAT needs.
    let (_, _, erin) = peers::baresip(
        &base,
        Baresip {
            user: "erin",
            account: format!("<sip:erin@{tls};transport=tls>;auth_pass=erin-secret-5;regint=300"),
            freq: 1000,
            command: None,
            secs: 10,
            extra_config: format!("sip_cafile {}\n", cert.display()),
        },
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let placed = common::api::dial_out(&mut g, admin, "callback", format!("sip:erin@{tls}"))
        .await
        .expect("erin is registered");
    let connected = common::api::connected(&mut g, admin, "callback", &placed.id).await;
    let erin = wait(erin).await;
    assert!(
        connected,
        "erin answered over her own TLS connection: {}",
        text(&erin)
    );
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}
