//! confab behind Kamailio (Debian `kamailio`), a stateful proxy that
//! record-routes and dispatches rooms to confab (`tests/kamailio/proxy.cfg`).
//! SIPp callers hold calls past 60 s and hang up from either side, a SIPp
//! watcher subscribes and un-subscribes, and two baresips hear each other
//! by tones: every request and NOTIFY through the proxy. With confab as
//! the registrar behind it, a baresip registers through Kamailio (which
//! adds a Path) and confab's dial-out reaches it back through Kamailio.
//! Needs kamailio,
//! sipp and baresip; without them the test says SKIPPED and passes, unless
//! `CONFAB_INTEROP=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::peers::{read_wav_mono, tone_dbfs, write_ulaw_tone};
use common::sipp::{report as sipp_report, run as sipp};
use common::{auth, free_port, in_process, peer_tool};
use policy_server::pb;
use policy_server::pb::conference_control_client::ConferenceControlClient;

/// A baresip that dials `target` with a sine of `freq` and records what it hears.
fn baresip(base: &Path, user: &str, freq: u32, target: &str) -> (PathBuf, Child) {
    let dir = base.join(user);
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let (sip, rtp) = (free_port(), free_port());
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{sip}\ncall_local_timeout 120\n\
             audio_path /usr/share/baresip\naudio_source ausine,{freq}\naudio_player aubridge,{user}\naudio_alert aubridge,{user}\n\
             audio_level no\nausrc_format s16\nauplay_format s16\nauenc_format s16\naudec_format s16\naudio_buffer 20-160\n\
             rtp_ports {rtp}-{}\nrtcp_mux no\njitter_buffer_delay 5-10\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\nmodule cons.so\n\
             module_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\nsnd_path {}\nstatmode_default off\n\
             ausrc_srate 48000\nausrc_channels 2\ncons_listen 127.0.0.1:{}\n",
            rtp + 9,
            dir.join("rec").display(),
            free_port()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:{user}@127.0.0.1:{sip}>;regint=0;answermode=auto;audio_codecs=pcmu;ptime=20\n"
        ),
    )
    .unwrap();
    let child = Command::new("timeout")
        .args(["40", "baresip", "-f"])
        .arg(&dir)
        .args(["-e", &format!("/dial {target}"), "-t", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baresip");
    (dir, child)
}

/// A tone's level in dBFS over the middle of the WAV baresip decoded.
fn heard_level(dir: &Path, freq: f64) -> f64 {
    let wav = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("no recording in {}", dir.display()));
    let (samples, rate) = read_wav_mono(&wav);
    assert!(
        samples.len() > rate as usize * 3,
        "{}: too short",
        wav.display()
    );
    let mid = &samples[samples.len() / 3..samples.len() * 9 / 10];
    tone_dbfs(mid, rate, freq)
}

fn wait(child: Child) -> Output {
    child.wait_with_output().expect("wait for a peer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_subscriptions_through_kamailio_last_and_end_from_either_side() {
    if !(peer_tool("kamailio", "kamailio")
        && peer_tool("sipp", "sip-tester")
        && peer_tool("baresip", "baresip"))
    {
        return;
    }
    let base = std::env::temp_dir().join(format!("confab-kamailio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let s = in_process(41000, |c| {
        c.focus.entry_exit_tones = false;
        c.policy = Some(common::api::policy(&data));
    })
    .await;
    let p = s.policy.as_ref().unwrap();
    let admin = p.admin_token.clone().unwrap();
    let mut g = ConferenceControlClient::connect(format!("http://{}", p.addr))
        .await
        .unwrap();
    // A stored room that anyone may watch.
    g.create_conference(auth(
        pb::CreateConferenceRequest {
            conference: Some(pb::Conference {
                name: "proxied".into(),
                watchers: vec!["*".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    let k = Kamailio::proxy(s.sip_udp, &base, &[]);
    let proxy = k.addr();
    let sipp_dir = base.join("sipp");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    write_ulaw_tone(&sipp_dir);

    // The watcher first, then two callers into its room: one hangs up after
    // 65 s, the other is hung up on by the focus after 62 s.
    // -aa: SIPp answers a NOTIFY that overtook the SUBSCRIBE's 200.
    let watcher = sipp(&sipp_dir, proxy, "proxy_subscribe.xml", "proxied", &["-aa"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let caller = sipp(
        &sipp_dir,
        proxy,
        "proxy_call.xml",
        "proxied",
        &["-d", "65000", "-key", "caller", "callera"],
    );
    let kicked = sipp(
        &sipp_dir,
        proxy,
        "proxy_call_ended_by_focus.xml",
        "proxied",
        &["-key", "caller", "callerb"],
    );

    // Meanwhile two baresips talk through the proxy in another room.
    let target = format!("sip:proxbare@{proxy}");
    let (ann, ann_run) = baresip(&base, "ann", 450, &target);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ben, ben_run) = baresip(&base, "ben", 850, &target);
    let (a_out, b_out) = tokio::task::spawn_blocking(move || (wait(ann_run), wait(ben_run)))
        .await
        .unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&a_out.stdout),
        String::from_utf8_lossy(&b_out.stdout)
    );
    assert!(
        logs.matches("Call established").count() >= 2,
        "both baresips connected through the proxy:\n{logs}\n{}",
        k.log()
    );
    for (dir, own, other) in [(&ann, 450.0, 850.0), (&ben, 850.0, 450.0)] {
        let (hears, itself) = (heard_level(dir, other), heard_level(dir, own));
        eprintln!(
            "{} hears the other at {hears:.1} dBFS, itself at {itself:.1} dBFS",
            dir.display()
        );
        assert!(hears > -30.0, "{}: {hears:.1} dBFS", dir.display());
        assert!(itself < hears - 30.0, "{} hears itself", dir.display());
    }

    let watcher = tokio::task::spawn_blocking(move || wait(watcher))
        .await
        .unwrap();
    assert!(
        watcher.status.success(),
        "the subscription through the proxy:\n{}",
        sipp_report(&sipp_dir, "proxy_subscribe.xml")
    );

    // Past a minute (the 32 s of a lost ACK are long gone), the focus hangs
    // up on caller B through the proxy.
    tokio::time::sleep(Duration::from_secs(62).saturating_sub(started.elapsed())).await;
    let people = g
        .list_participants(auth(
            pb::ListParticipantsRequest {
                conference: "proxied".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .participants;
    let uris: Vec<&str> = people.iter().map(|p| p.uri.as_str()).collect();
    assert_eq!(people.len(), 2, "both calls are up after 62 s: {uris:?}");
    let b = people
        .iter()
        .find(|p| p.uri.contains("callerb"))
        .unwrap_or_else(|| panic!("caller B in {uris:?}"));
    g.remove_participant(auth(
        pb::RemoveParticipantRequest {
            conference: "proxied".into(),
            id: b.id.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let (caller, kicked) = tokio::task::spawn_blocking(move || (wait(caller), wait(kicked)))
        .await
        .unwrap();
    assert!(
        kicked.status.success(),
        "caller B got the focus's BYE through the proxy:\n{}\n{}",
        sipp_report(&sipp_dir, "proxy_call_ended_by_focus.xml"),
        k.log()
    );
    assert!(
        caller.status.success(),
        "caller A held 65 s and hung up through the proxy:\n{}\n{}",
        sipp_report(&sipp_dir, "proxy_call.xml"),
        k.log()
    );
    assert!(started.elapsed() > Duration::from_secs(65));
    s.shutdown().await;
    drop(k);
    let _ = std::fs::remove_dir_all(&base);
}

/// liblinphone as the conference-aware client: registered to Kamailio's
/// registrar, it calls a room through the proxy, subscribes to it by itself
/// (the 200's Contact says `isfocus`), and its conference log shows a SIPp
/// caller added and removed as it joins and leaves; it hears that caller.
/// Meanwhile a second SIPp caller raises its hand with `*9`: liblinphone
/// gets confab's raised-hands extension in its NOTIFYs, skips it, and goes
/// on following the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphone_registered_behind_kamailio_sees_others_come_and_go() {
    if !(peer_tool("kamailio", "kamailio")
        && peer_tool("sipp", "sip-tester")
        && peer_tool("linphonec", "linphone-cli"))
    {
        return;
    }
    let base = std::env::temp_dir().join(format!("confab-linphone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let home = base.join("home");
    // liblinphone does not start without its data directory.
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let s = in_process(43000, |c| c.focus.entry_exit_tones = false).await;
    let k = Kamailio::proxy(s.sip_udp, &base, &[]);
    let proxy = k.addr();
    let sipp_dir = base.join("sipp");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    write_ulaw_tone(&sipp_dir);

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
             [proxy_0]\nreg_proxy=<sip:{proxy};transport=udp>\nreg_identity=\"Carol\" <sip:carol@127.0.0.1>\n\
             reg_expires=3600\nreg_sendregister=1\npublish=0\ndial_escape_plus=0\n"
        ),
    )
    .unwrap();
    let (log, rec) = (base.join("carol.log"), base.join("carol-rec.wav"));
    let script = format!(
        "echo 'soundcard use files'; echo 'record {}'; sleep 3; echo 'call sip:linroom@{proxy}'; \
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
    // Dave and Erin join once Carol is in and subscribed; Erin keys *9
    // after 1 s; both stay about 4 s and leave.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let dave = sipp(
        &sipp_dir,
        proxy,
        "proxy_call.xml",
        "linroom",
        &["-d", "4000", "-key", "caller", "dave"],
    );
    let erin = sipp(
        &sipp_dir,
        proxy,
        "proxy_hand.xml",
        "linroom",
        &["-d", "2500", "-key", "caller", "erin"],
    );
    let (dave, erin, linphone) =
        tokio::task::spawn_blocking(move || (wait(dave), wait(erin), wait(linphone)))
            .await
            .unwrap();
    assert!(
        dave.status.success(),
        "{}",
        sipp_report(&sipp_dir, "proxy_call.xml")
    );
    assert!(
        erin.status.success(),
        "{}",
        sipp_report(&sipp_dir, "proxy_hand.xml")
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let seen = |needle: &str| text.contains(needle);
    let context = || {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&linphone.stdout),
            text.lines()
                .filter(|l| l.contains("onference") || l.contains("articipant"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(
        seen("NOTIFY received for conference"),
        "liblinphone subscribed and was notified:\n{}",
        context()
    );
    assert!(
        seen("Addition of participant with address IdentityAddress(sip:dave@127.0.0.1)"),
        "liblinphone saw dave join:\n{}",
        context()
    );
    assert!(
        seen("user=\"sip:erin@127.0.0.1\" participant="),
        "liblinphone was sent erin's raised hand:\n{}",
        context()
    );
    assert!(
        seen("Removal of participant with address IdentityAddress(sip:dave@127.0.0.1)"),
        "liblinphone saw dave leave:\n{}",
        context()
    );
    assert!(
        seen("Removal of participant with address IdentityAddress(sip:erin@127.0.0.1)"),
        "liblinphone saw erin leave after her hand went up:\n{}",
        context()
    );
    // Dave's 1 kHz tone, in what Carol recorded while he was in.
    let (samples, rate) = read_wav_mono(&rec);
    let dave_in =
        &samples[(rate as usize * 5).min(samples.len())..(rate as usize * 8).min(samples.len())];
    let level = tone_dbfs(dave_in, rate, 1000.0);
    eprintln!("carol hears dave at {level:.1} dBFS");
    assert!(level > -30.0, "carol hears dave at {level:.1} dBFS");
    s.shutdown().await;
    drop(k);
    let _ = std::fs::remove_dir_all(&base);
}

/// confab as the registrar behind Kamailio (RFC 3327): Kamailio forwards a
/// baresip's REGISTER (digest and all) to confab with a Path naming
/// itself; a dial-out to that user then goes to Kamailio first, with a
/// Route, and on to the phone; the phone hears a caller who dialled in
/// directly, and the caller hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_through_kamailio_is_called_back_through_it() {
    use common::api::{add_user, create_room, tempdir};
    use common::peers::{self, Baresip};
    if !(peer_tool("kamailio", "kamailio") && peer_tool("baresip", "baresip")) {
        return;
    }
    let base = tempdir("kamailio-path");
    let dir = base.join("data");
    let s = in_process(45000, |c| {
        c.focus.entry_exit_tones = false;
        c.focus.auth.mode = focus::AuthMode::Rooms;
        c.focus.auth.realm = policy_server::service::SIP_REALM.into();
        c.policy = Some(common::api::policy(&dir));
    })
    .await;
    let (mut g, admin) = common::api::admin(&s, &dir).await;
    let admin = admin.as_str();
    add_user(&mut g, admin, "alice", "alice-secret-1").await;
    create_room(&mut g, admin, "pathroom").await;
    let k = Kamailio::proxy(s.sip_udp, &base, &["WITH_PATH"]);
    let (confab, proxy) = (s.sip_udp, k.addr());
    let (alice_dir, _, alice) = peers::baresip(
        &base,
        Baresip {
            user: "alice",
            account: format!(
                "<sip:alice@{confab}>;auth_pass=alice-secret-1;regint=300;outbound=\"sip:{proxy}\""
            ),
            freq: 1200,
            command: None,
            secs: 14,
            extra_config: String::new(),
        },
    );
    let (bob_dir, _, bob) = peers::baresip(
        &base,
        Baresip::dialing("bob", 700, &format!("sip:pathroom@{confab}"), 12),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let placed =
        common::api::dial_out(&mut g, admin, "pathroom", format!("sip:alice@{confab}")).await;
    let connected = match &placed {
        Ok(p) => common::api::connected(&mut g, admin, "pathroom", &p.id).await,
        Err(_) => false,
    };
    let (alice, bob) = tokio::task::spawn_blocking(move || (wait(alice), wait(bob)))
        .await
        .unwrap();
    let out = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let log = k.log();
    assert!(
        log.contains("REGISTER sip:alice@") && log.contains("with a Path"),
        "the REGISTER went through Kamailio: {log}"
    );
    assert!(
        placed.is_ok() && connected,
        "{placed:?}\nalice: {}\nkamailio: {log}",
        out(&alice)
    );
    assert!(
        log.contains("INVITE from confab to registered sip:alice"),
        "the dial-out followed the Path: {log}"
    );
    let alice_hears = peers::baresip_heard(&alice_dir, 700.0);
    let bob_hears = peers::baresip_heard(&bob_dir, 1200.0);
    eprintln!("through Kamailio's Path: alice hears bob at {alice_hears:.1} dBFS, bob hears alice at {bob_hears:.1} dBFS");
    assert!(alice_hears > -30.0, "alice: {}", out(&alice));
    assert!(bob_hears > -30.0, "bob: {}", out(&bob));
    s.shutdown().await;
    drop(k);
    let _ = std::fs::remove_dir_all(&base);
}
