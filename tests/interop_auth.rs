//! Digest authentication and the registrar against third-party SIP:
//! SIPp's `[authentication]` (REGISTER and INVITE challenged with 401 and
//! answered; a wrong password refused), SIPp phones registered under one
//! user and reached by a dial-out forked to both after confab restarted
//! (the bindings come back from the store; the loser gets CANCEL), baresip
//! accounts with passwords that register, call a room and are called into
//! it, and liblinphone registered to confab calling a room and
//! subscribing to it. Audio is checked by tones. Needs sipp, baresip and
//! linphonec; without them each test says SKIPPED and passes, unless
//! `CONFAB_INTEROP=1`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::api::{add_user, create_room, tempdir, Client};
use common::peers::{self, read_wav_mono, tone_dbfs, write_ulaw_tone};
use common::{auth, free_port, peer_tool};
use policy_server::pb;

/// A confab with the policy server, on `sip` (a free port when None), with
/// `--auth required` and the digest algorithms in `algorithms` order.
async fn start(
    dir: &Path,
    sip: Option<u16>,
    algorithms: &[focus::Algorithm],
) -> (confab::Server, Client, String) {
    let port = sip.unwrap_or_else(free_port);
    let mut c = confab::ServerConfig {
        sip_listen: SocketAddr::from(([127, 0, 0, 1], port)),
        tcp: false,
        policy: Some(policy_server::PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.join("data"),
            ..Default::default()
        }),
        ..confab::ServerConfig::default()
    }
    .media_ip_from_sip();
    c.media.port_min = 44000 + (port % 40) * 200;
    c.media.port_max = c.media.port_min + 198;
    c.focus.entry_exit_tones = false;
    c.focus.auth.mode = focus::AuthMode::Required;
    c.focus.auth.realm = policy_server::service::SIP_REALM.into();
    c.focus.auth.algorithms = algorithms.to_vec();
    // Phones on the loopback that did not register may be called in.
    c.focus.dial_out.allow = vec!["sip:dave@127.0.0.1:*".into()];
    let s = confab::Server::start(c).await.expect("server starts");
    let p = s.policy.as_ref().unwrap();
    let token = std::fs::read_to_string(dir.join("data/admin.token")).unwrap();
    let g = Client::connect(format!("http://{}", p.addr)).await.unwrap();
    (s, g, token.trim().to_owned())
}

/// SIPp running a scenario of tests/sipp against `server` (a UAS on
/// `listen` when `server` is None), its output in `dir`.
fn sipp(dir: &Path, server: Option<SocketAddr>, scenario: &str, args: &[&str]) -> Child {
    let out = std::fs::File::create(dir.join(format!("{scenario}.{}.out", free_port()))).unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg("sipp");
    if let Some(s) = server {
        cmd.arg(s.to_string());
    }
    cmd.arg("-sf")
        .arg(format!(
            "{}/tests/sipp/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(["-i", "127.0.0.1", "-m", "1", "-nostdin", "-trace_err"])
        .args(args)
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start sipp")
}

/// Everything SIPp left in `dir` (screens and error logs), for a failure.
fn report(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".out") || name.ends_with("_errors.log") {
            text.push_str(&format!("\n--- {name}\n"));
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}

async fn wait(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait for a peer"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_and_calls_with_digest_and_a_wrong_password_is_refused() {
    if !peer_tool("sipp", "sip-tester") {
        return;
    }
    let dir = tempdir("sipp-auth");
    // SIPp 3.6 answers only the first challenge, and knows only MD5.
    let (s, mut g, admin) = start(&dir, None, &[focus::Algorithm::Md5]).await;
    add_user(&mut g, &admin, "sipper", "sipper-pass-1").await;
    let server = s.sip_udp;
    let contact = format!("sip:sipper@127.0.0.1:{}", free_port());
    let register = |password: &str| {
        sipp(
            &dir,
            Some(server),
            "register_auth.xml",
            &[
                "-p", "0", "-key", "user", "sipper", "-key", "contact", &contact,
            ]
            .into_iter()
            .chain(["-au", "sipper", "-ap", password])
            .collect::<Vec<_>>(),
        )
    };
    let ok = wait(register("sipper-pass-1")).await;
    assert!(ok.status.success(), "{}", report(&dir));
    let bad = wait(register("not-the-password")).await;
    assert!(!bad.status.success(), "a wrong password is refused");
    // The binding is in the store.
    let now = policy_server::service::now_ms() / 1000;
    let stored = s
        .policy
        .as_ref()
        .unwrap()
        .store
        .bindings(now)
        .await
        .unwrap();
    let aor = format!("sip:sipper@{server}");
    assert!(
        stored
            .iter()
            .any(|(a, b)| *a == aor && b[0].contact.contains(&contact)),
        "{stored:?}"
    );
    write_ulaw_tone(&dir);
    let media = free_port().to_string();
    let call = wait(sipp(
        &dir,
        Some(server),
        "call_auth.xml",
        &[
            "-p",
            "0",
            "-s",
            "authroom",
            "-d",
            "2000",
            "-mi",
            "127.0.0.1",
            "-mp",
            &media,
            "-key",
            "caller",
            "sipper",
            "-au",
            "sipper",
            "-ap",
            "sipper-pass-1",
        ],
    ))
    .await;
    assert!(call.status.success(), "{}", report(&dir));
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_out_to_a_registered_user_forks_to_both_phones_after_a_restart() {
    if !peer_tool("sipp", "sip-tester") {
        return;
    }
    let dir = tempdir("sipp-fork");
    let algorithms = [focus::Algorithm::Md5];
    let (s, mut g, admin) = start(&dir, None, &algorithms).await;
    let server = s.sip_udp;
    add_user(&mut g, &admin, "bob", "bob-the-builder").await;
    create_room(&mut g, &admin, "forked").await;
    // Bob's two phones: one answers, one only rings.
    let (answers, rings) = (free_port(), free_port());
    let answer_port = answers.to_string();
    let ring_port = rings.to_string();
    let media = free_port().to_string();
    let phone_a = sipp(
        &dir,
        None,
        "uas_answer.xml",
        &["-p", &answer_port, "-mi", "127.0.0.1", "-mp", &media],
    );
    let phone_b = sipp(&dir, None, "uas_ring_cancel.xml", &["-p", &ring_port]);
    for port in [answers, rings] {
        let contact = format!("sip:bob@127.0.0.1:{port}");
        let reg = wait(sipp(
            &dir,
            Some(server),
            "register_auth.xml",
            &[
                "-p",
                "0",
                "-key",
                "user",
                "bob",
                "-key",
                "contact",
                &contact,
                "-au",
                "bob",
                "-ap",
                "bob-the-builder",
            ],
        ))
        .await;
        assert!(reg.status.success(), "{}", report(&dir));
    }
    // Restart on the same port: the bindings come back from the store.
    s.shutdown().await;
    drop(g);
    let (s, mut g, admin) = start(&dir, Some(server.port()), &algorithms).await;
    let placed = common::api::dial_out(&mut g, &admin, "forked", format!("sip:bob@{server}"))
        .await
        .expect("a registered user may be dialled");
    let connected = common::api::connected(&mut g, &admin, "forked", &placed.id).await;
    assert!(connected, "the answering phone is in: {}", report(&dir));
    // Anyone else may not be dialled.
    let refused = common::api::dial_out(&mut g, &admin, "forked", "sip:mallory@192.0.2.7")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    g.remove_participant(auth(
        pb::RemoveParticipantRequest {
            conference: "forked".into(),
            id: placed.id.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let (a, b) = (wait(phone_a).await, wait(phone_b).await);
    assert!(a.status.success(), "answering phone: {}", report(&dir));
    assert!(
        b.status.success(),
        "ringing phone got CANCEL: {}",
        report(&dir)
    );
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A baresip playing a sine of `freq` and recording what it hears, with an
/// account that registers to confab with a password (`registrar`: the
/// server and the password) or none; it runs `command` (a dial, or
/// nothing to wait for a call, answered at once) and quits after `secs`.
fn baresip(
    base: &Path,
    user: &str,
    registrar: Option<(SocketAddr, &str)>,
    freq: u32,
    command: Option<&str>,
    secs: u32,
) -> (PathBuf, Child) {
    // With a registrar the AOR is at confab, so baresip registers there
    // (regint) and answers the digest challenges with auth_pass.
    let account = match registrar {
        Some((server, password)) => {
            format!("<sip:{user}@{server}>;auth_pass={password};regint=300")
        }
        None => format!("<sip:{user}@127.0.0.1:{{sip}}>;regint=0"),
    };
    let spec = peers::Baresip {
        user,
        account,
        freq,
        command: command.map(str::to_owned),
        secs,
        extra_config: String::new(),
    };
    let (dir, _, child) = peers::baresip(base, spec);
    (dir, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_baresips_call_in_and_are_called_in_and_hear_each_other() {
    if !peer_tool("baresip", "baresip") {
        return;
    }
    let base = tempdir("baresip-auth");
    // The default, MD5 alone: baresip 1.0 gives up on any challenge that
    // is not MD5.
    let (s, mut g, admin) = start(&base, None, &[focus::Algorithm::Md5]).await;
    let server = s.sip_udp;
    add_user(&mut g, &admin, "alice", "alice-secret-1").await;
    add_user(&mut g, &admin, "bob", "bob-secret-22").await;
    create_room(&mut g, &admin, "meet").await;
    // Bob registers and waits; Alice registers and dials the room.
    let (bob_dir, bob) = baresip(&base, "bob", Some((server, "bob-secret-22")), 700, None, 14);
    let target = format!("/dial sip:meet@{server}");
    let (alice_dir, alice) = baresip(
        &base,
        "alice",
        Some((server, "alice-secret-1")),
        1200,
        Some(&target),
        12,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Bob is called into the room at the contact he registered.
    let dialled = common::api::dial_out(&mut g, &admin, "meet", format!("sip:bob@{server}")).await;
    let (alice, bob) = (wait(alice).await, wait(bob).await);
    let out = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(dialled.is_ok(), "{dialled:?}\nbob: {}", out(&bob));
    let alice_hears = peers::baresip_heard(&alice_dir, 700.0);
    let bob_hears = peers::baresip_heard(&bob_dir, 1200.0);
    eprintln!("alice hears bob at {alice_hears:.1} dBFS, bob hears alice at {bob_hears:.1} dBFS");
    assert!(alice_hears > -30.0, "alice: {}", out(&alice));
    assert!(bob_hears > -30.0, "bob: {}", out(&bob));
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphone_registered_to_confab_calls_a_room_and_subscribes() {
    if !(peer_tool("linphonec", "linphone-cli") && peer_tool("baresip", "baresip")) {
        return;
    }
    let base = tempdir("linphone-auth");
    let home = base.join("home");
    // liblinphone does not start without its data directory.
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    // SHA-256 first: liblinphone picks the first challenge it supports.
    let (s, mut g, admin) = start(
        &base,
        None,
        &[focus::Algorithm::Sha256, focus::Algorithm::Md5],
    )
    .await;
    let server = s.sip_udp;
    add_user(&mut g, &admin, "carol", "carol-secret-3").await;
    create_room(&mut g, &admin, "linroom").await;
    let (sip, rtp) = (free_port(), free_port());
    let rc = base.join("carol.rc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={sip}\nsip_tcp_port=0\nsip_tls_port=0\nbind_address=127.0.0.1\n\
             contact=\"Carol\" <sip:carol@127.0.0.1:{sip}>\nuse_ipv6=0\nipv6_migration_done=1\nguess_hostname=0\n\
             register_only_when_network_is_up=0\nregister_only_when_upnp_is_ok=0\n\n\
             [rtp]\nbind_address=127.0.0.1\naudio_rtp_port={rtp}\naudio_jitt_comp=60\nnortp_timeout=30\nrtcp_mux=0\n\n\
             [sound]\nechocancellation=0\n\n\
             [video]\nautomatically_initiate=0\nautomatically_accept=0\ncapture=0\ndisplay=0\n\n\
             [misc]\nconference_event_log_enabled=1\n\n\
             [auth_info_0]\nusername=carol\npasswd=carol-secret-3\nrealm=confab\ndomain=127.0.0.1\n\n\
             [proxy_0]\nreg_proxy=<sip:{server};transport=udp>\nreg_identity=\"Carol\" <sip:carol@127.0.0.1>\n\
             reg_expires=3600\nreg_sendregister=1\npublish=0\ndial_escape_plus=0\n"
        ),
    )
    .unwrap();
    let (log, rec) = (base.join("carol.log"), base.join("carol-rec.wav"));
    let script = format!(
        "echo 'soundcard use files'; echo 'record {}'; sleep 3; echo 'call sip:linroom@{server}'; \
         sleep 16; echo calls; echo terminate; sleep 3; echo quit",
        rec.display()
    );
    let linphone = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "({script}) | timeout 45 linphonec -c {} -d 6 -l {}",
            rc.display(),
            log.display()
        ))
        .env("HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start linphonec");
    // Dave, an unregistered phone, is called in with a 1 kHz tone once
    // Carol is in and subscribed (an allowed dial-out target).
    let (dave_dir, dave) = baresip(&base, "dave", None, 1000, None, 14);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let accounts = std::fs::read_to_string(dave_dir.join("accounts")).unwrap();
    let dave_uri = accounts[1..accounts.find('>').unwrap()].to_owned();
    common::api::dial_out(&mut g, &admin, "linroom", dave_uri)
        .await
        .expect("dave is an allowed target");
    let (_dave, linphone) = (wait(dave).await, wait(linphone).await);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let context = || {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&linphone.stdout),
            text.lines()
                .filter(|l| {
                    l.contains("onference") || l.contains("egistration") || l.contains("401")
                })
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(
        text.contains("RegistrationOk"),
        "liblinphone registered to confab with its password:\n{}",
        context()
    );
    assert!(
        text.contains("algorithm=SHA-256"),
        "liblinphone answered the SHA-256 challenge:\n{}",
        context()
    );
    assert!(
        text.contains("NOTIFY received for conference"),
        "liblinphone subscribed and was notified:\n{}",
        context()
    );
    assert!(
        text.contains("Addition of participant with address IdentityAddress(sip:dave@127.0.0.1)"),
        "liblinphone saw dave called in:\n{}",
        context()
    );
    let (samples, rate) = read_wav_mono(&rec);
    let dave_in =
        &samples[(rate as usize * 6).min(samples.len())..(rate as usize * 9).min(samples.len())];
    let level = tone_dbfs(dave_in, rate, 1000.0);
    eprintln!("carol hears dave at {level:.1} dBFS");
    assert!(level > -30.0, "carol hears dave at {level:.1} dBFS");
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipvicious_svwar_cannot_tell_users_or_rooms_that_exist_from_those_that_do_not() {
    if !peer_tool("svwar", "sipvicious") {
        return;
    }
    let dir = tempdir("svwar");
    let (s, mut g, admin) = start(&dir, None, &[focus::Algorithm::Md5]).await;
    add_user(&mut g, &admin, "alice", "alice-secret-1").await;
    create_room(&mut g, &admin, "board").await;
    std::fs::write(dir.join("dict"), "alice\nboard\nzed\n100\nadmin\n").unwrap();
    let port = s.sip_udp.port().to_string();
    for method in ["REGISTER", "INVITE"] {
        let out = tokio::task::spawn_blocking({
            let (dir, port) = (dir.clone(), port.clone());
            move || {
                Command::new("timeout")
                    .args(["60", "svwar", "--force", "-m", method, "-d", "dict", "-p"])
                    .arg(&port)
                    .arg("127.0.0.1")
                    .current_dir(&dir)
                    .output()
                    .expect("run svwar")
            }
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every answer is the same 401, so it lists no extension at all.
        assert!(text.contains("found nothing"), "{method}: {text}");
        for name in ["alice", "board"] {
            assert!(
                !text.lines().any(|l| l.starts_with('|') && l.contains(name)),
                "{method}: svwar told {name} apart: {text}"
            );
        }
    }
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
