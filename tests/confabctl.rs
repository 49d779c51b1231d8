//! confabctl end to end against the running `confab` binary: rooms, show,
//! create (from a blueprint), lock and unlock, mute and unmute, kick, dial,
//! floor, watch and delete, each as a table and as JSON.

mod common;

use std::time::Duration;

use common::ua::Ua;
use common::{blocking, header, Server};
use media_server::codec::CodecKind;
use serde_json::Value;

/// Runs confabctl against `s` with the admin token file; returns stdout.
async fn ctl(s: &Server, args: &[&str]) -> anyhow::Result<String> {
    let server = format!("http://{}", s.grpc);
    let token_file = s.data_dir.join("admin.token");
    let mut argv: Vec<String> = vec![
        "confabctl".into(),
        "--server".into(),
        server,
        "--token-file".into(),
        token_file.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut out = Vec::new();
    confabctl::run(argv, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

async fn json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = ctl(s, &a).await.unwrap();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabctl_moderates_a_room_of_the_running_server() {
    let s = Server::start(&[
        "--dial-out-allow",
        "sip:*@localhost:*",
        "--dial-out-allow",
        "sip:*@*.invalid",
    ]);
    let help = ctl(&s, &["--help"]).await.unwrap();
    for cmd in [
        "rooms", "show", "mute", "kick", "lock", "dial", "floor", "hands", "watch", "create",
        "drain", "delete",
    ] {
        assert!(help.contains(cmd), "--help lists {cmd}");
    }
    let made = json(
        &s,
        &[
            "create",
            "standup",
            "--blueprint",
            "meeting",
            "--subject",
            "Daily",
        ],
    )
    .await;
    assert_eq!(made["name"], "standup");
    assert_eq!(made["subject"], "Daily");
    assert_eq!(made["srtp"], "server");
    let vault = json(
        &s,
        &["create", "vault", "--srtp", "required", "--members-only"],
    )
    .await;
    assert_eq!(
        (&vault["srtp"], &vault["members_only"]),
        (&"required".into(), &true.into())
    );
    let table = ctl(&s, &["rooms"]).await.unwrap();
    assert!(table.starts_with("ROOM"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("standup") && l.contains("open")),
        "{table}"
    );
    let bps = json(&s, &["blueprints"]).await;
    let town_hall = bps
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "town-hall")
        .expect("the recorded blueprint");
    assert_eq!(town_hall["settings"]["record"], true);
    assert_eq!(bps.as_array().unwrap().len(), 5);

    let addr = s.sip;
    let (a, b) = blocking(move || {
        let mut a = Ua::new(addr, CodecKind::Pcmu, 440.0);
        let mut b = Ua::new(addr, CodecKind::Pcmu, 1000.0);
        assert_eq!(a.call("standup", ""), 200);
        assert_eq!(b.call("standup", ""), 200);
        (a, b)
    })
    .await;
    let shown = json(&s, &["show", "standup"]).await;
    let people = shown["participants"].as_array().unwrap();
    assert_eq!(people.len(), 2, "{shown}");
    let human = ctl(&s, &["show", "standup"]).await.unwrap();
    assert!(human.contains("ID") && human.contains(&a.user), "{human}");

    // Mute A by the user part of its URI; show says so; unmute it.
    let out = ctl(&s, &["mute", "standup", &a.user]).await.unwrap();
    assert!(out.starts_with("muted "), "{out}");
    let shown = json(&s, &["show", "standup"]).await;
    let a_row = shown["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["uri"].as_str().unwrap().contains(&a.user))
        .unwrap()
        .clone();
    assert_eq!(a_row["muted"], true);
    assert_eq!(a_row["status"], "muted-via-focus");
    let unmuted = json(&s, &["unmute", "standup", a_row["id"].as_str().unwrap()]).await;
    assert_eq!(unmuted["muted"], false);
    let all = json(&s, &["mute", "standup", "all"]).await;
    assert_eq!(all["changed"], 2);
    json(&s, &["unmute", "standup", "all"]).await;

    // Record a second of the room, then fetch the file and delete it.
    let started = ctl(&s, &["record", "start", "standup"]).await.unwrap();
    assert!(
        started.starts_with("recording standup: standup-"),
        "{started}"
    );
    let id = started.trim().rsplit(' ').next().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(ctl(&s, &["record", "stop", "standup"]).await.is_ok());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while json(&s, &["record", "show", &id]).await["active"] == true {
        assert!(std::time::Instant::now() < deadline, "the file ends");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let list = ctl(&s, &["record", "list"]).await.unwrap();
    assert!(
        list.starts_with("ID") && list.contains(&id) && list.contains("done"),
        "{list}"
    );
    let file = std::env::temp_dir().join(format!("confabctl-{}.opus", std::process::id()));
    let fetched = json(&s, &["record", "fetch", &id, file.to_str().unwrap()]).await;
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"OggS"), "an Ogg stream");
    assert_eq!(fetched["bytes"], bytes.len());
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        json(&s, &["record", "delete", &id]).await["deleted"],
        id.as_str()
    );
    let gone = ctl(&s, &["record", "show", &id]).await;
    assert!(gone.is_err_and(|e| e.to_string().contains("NotFound")));

    // watch: the snapshot first, as one JSON line.
    let snap = json(&s, &["watch", "standup", "--count", "1"]).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["participants"].as_array().unwrap().len(), 2);

    // Lock: a new caller is refused; unlock lets it in.
    let locked = json(&s, &["lock", "standup"]).await;
    assert_eq!(locked["locked"], true);
    let mut c = blocking(move || {
        let mut c = Ua::new(addr, CodecKind::Pcmu, 2200.0);
        assert_eq!(c.call("standup", ""), 403);
        c
    })
    .await;
    ctl(&s, &["unlock", "standup"]).await.unwrap();
    let c_user = c.user.clone();
    let mut c = blocking(move || {
        assert_eq!(c.call("standup", ""), 200);
        c
    })
    .await;

    // Kick C: it gets BYE.
    let out = ctl(&s, &["kick", "standup", &c_user]).await.unwrap();
    assert!(out.starts_with("removed "), "{out}");
    let bye = blocking(move || c.next_request(Duration::from_secs(3)))
        .await
        .expect("BYE");
    assert!(bye.starts_with("BYE "), "{bye}");

    // Dial D in.
    let mut d = Ua::new(addr, CodecKind::Pcmu, 2200.0);
    // By host name: the server resolves it.
    let d_uri = format!("sip:{}@localhost:{}", d.user, d.local().port());
    let dialing = json(&s, &["dial", "standup", &d_uri]).await;
    assert_eq!(dialing["status"], "dialing-out");
    let invite = blocking(move || d.accept_call(Duration::from_secs(5)))
        .await
        .expect("INVITE");
    assert!(header(&invite, "Contact").unwrap().contains("isfocus"));

    let err = ctl(&s, &["dial", "standup", "sip:x@no-such-host.invalid"])
        .await
        .unwrap_err();
    assert!(
        format!("{err}").contains("FailedPrecondition: cannot resolve"),
        "{err}"
    );
    // Outside the --dial-out-allow patterns, and not a registered user.
    let err = ctl(&s, &["dial", "standup", "sip:x@192.0.2.1"])
        .await
        .unwrap_err();
    assert!(
        format!("{err}").contains("PermissionDenied: dial-out to sip:x@192.0.2.1 is not allowed"),
        "{err}"
    );

    // Floor: none in a meeting room; asking for it is a clear error.
    let floor = json(&s, &["floor", "standup"]).await;
    assert_eq!(floor["policy"], "none");
    let err = ctl(&s, &["floor", "standup", "request", &a.user])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("FailedPrecondition"), "{err}");

    // Raised hands: B keys *9, then a moderator raises A's; both show in
    // that order, in `show` and in a new watcher's snapshot; all go down.
    b.send_dtmf('*');
    b.send_dtmf('9');
    let id_of = |shown: &Value, user: &str| {
        shown["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["uri"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("sip:{user}@"))
            })
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let shown = json(&s, &["show", "standup"]).await;
    let (a_id, b_id) = (id_of(&shown, &a.user), id_of(&shown, &b.user));
    let mut hands = json(&s, &["hands", "standup"]).await;
    for _ in 0..20 {
        if hands.as_array().is_some_and(|h| !h.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        hands = json(&s, &["hands", "standup"]).await;
    }
    assert_eq!(hands, serde_json::json!([b_id]), "*9 raised B's hand");
    let hands = json(&s, &["hands", "standup", "raise", &a.user]).await;
    assert_eq!(hands, serde_json::json!([b_id, a_id]));
    let human = ctl(&s, &["show", "standup"]).await.unwrap();
    let line = human
        .lines()
        .find(|l| l.starts_with("hands:"))
        .unwrap_or("");
    assert!(
        line.contains(&format!("1. {b_id} (sip:{}@", b.user))
            && line.contains(&format!("2. {a_id} (sip:{}@", a.user)),
        "{human}"
    );
    assert_eq!(json(&s, &["show", "standup"]).await["hands"], hands);
    let snap = json(&s, &["watch", "standup", "--count", "1"]).await;
    assert_eq!(snap["data"]["hands"], hands);
    let out = ctl(&s, &["hands", "standup", "lower", &b.user])
        .await
        .unwrap();
    assert_eq!(out.trim(), format!("hands: 1. {a_id}"));
    let none = json(&s, &["hands", "standup", "lower", "all"]).await;
    assert_eq!(none, serde_json::json!([]));
    let err = ctl(&s, &["hands", "standup", "raise"]).await.unwrap_err();
    assert!(format!("{err}").contains("needs WHO"), "{err}");

    // Errors are messages, not panics.
    let err = ctl(&s, &["show", "nosuchroom"]).await.unwrap_err();
    assert!(format!("{err}").contains("NotFound"), "{err}");
    let err = ctl(&s, &["mute", "standup", "nobody"]).await.unwrap_err();
    assert!(format!("{err}").contains("no participant"), "{err}");

    // A moderator token for this room: it can mute here, not list tokens; revoked, nothing.
    let made = json(
        &s,
        &[
            "token",
            "create",
            "--role",
            "moderator",
            "--room",
            "standup",
        ],
    )
    .await;
    let (tok, id) = (
        made["token"].as_str().unwrap(),
        made["id"].as_str().unwrap(),
    );
    let out = ctl(&s, &["--token", tok, "mute", "standup", &a.user])
        .await
        .unwrap();
    assert!(out.starts_with("muted "), "{out}");
    let err = ctl(&s, &["--token", tok, "token", "list"])
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("PermissionDenied"), "{err}");
    let list = ctl(&s, &["token", "list"]).await.unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with(id) && l.contains("moderator") && l.contains("standup")),
        "{list}"
    );
    assert!(!list.contains(tok), "secrets are never listed");
    ctl(&s, &["token", "revoke", id]).await.unwrap();
    let err = ctl(&s, &["--token", tok, "rooms"]).await.unwrap_err();
    assert!(format!("{err}").contains("Unauthenticated"), "{err}");

    let deleted = json(&s, &["delete", "standup"]).await;
    assert_eq!(deleted["deleted"], "standup");
    json(&s, &["delete", "vault"]).await;
    let rooms = json(&s, &["rooms"]).await;
    assert!(rooms.as_array().unwrap().is_empty());
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confabctl_manages_sip_users() {
    let s = Server::start(&[]);
    let added = ctl(&s, &["user", "add", "alice", "--password", "correct horse"])
        .await
        .unwrap();
    assert!(added.contains("added user alice"), "{added}");
    let dup = ctl(&s, &["user", "add", "alice", "--password", "correct horse"]).await;
    assert!(dup.is_err(), "a second alice is refused");
    let short = ctl(&s, &["user", "add", "bob", "--password", "short"]).await;
    assert!(
        short.is_err_and(|e| e.to_string().contains("password")),
        "a short password is refused, naming the field"
    );
    let table = ctl(&s, &["user", "list"]).await.unwrap();
    assert!(
        table.contains("alice") && table.contains("confab"),
        "{table}"
    );
    let list = json(&s, &["user", "list"]).await;
    assert_eq!(list[0]["name"], "alice");
    assert!(list[0].get("password").is_none() && list[0].get("ha1").is_none());
    let set = ctl(
        &s,
        &["user", "passwd", "alice", "--password", "battery staple"],
    )
    .await
    .unwrap();
    assert!(set.contains("password set for alice"), "{set}");
    let gone = json(&s, &["user", "remove", "alice"]).await;
    assert_eq!(gone["removed"], "alice");
    assert_eq!(json(&s, &["user", "list"]).await, Value::Array(vec![]));
    // Drained with no call in progress, the server exits at once.
    assert_eq!(json(&s, &["drain"]).await["draining"], true);
    let probe = common::UdpClient::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut gone = false;
    while !gone && std::time::Instant::now() < deadline {
        probe.send(&common::options(&probe, s.sip, "after-drain"), s.sip);
        gone = probe
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_none();
    }
    assert!(gone, "the server stopped answering once drained");
}
