//! The settings file: the example documents every key with its default; a
//! key the file does not know, or a value of the wrong kind, is an error
//! that names the key and its line; flags and variables win over the file;
//! SIGHUP applies what can change live (here a rate, the log filter and
//! the static rooms, checked through the gRPC API) and logs what changed
//! and what waits for a restart.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::CommandFactory;
use common::api::{tempdir, Client};
use common::binary::Logged;
use common::{auth, free_port};
use confab::settings::Settings;
use policy_server::pb;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/confab.example.toml");

#[test]
fn the_example_file_documents_every_key_with_its_default() {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let example = Settings::from_toml(Path::new(EXAMPLE), &text).expect("the example parses");
    let effective = Settings::defaults().overlaid(&example).unwrap();
    // The example turns the metrics endpoint on, where it usually goes.
    assert_eq!(
        effective.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    let effective = Settings {
        metrics_listen: None,
        ..effective
    };
    assert_eq!(
        effective.to_toml(),
        Settings::defaults().to_toml(),
        "the example's other values are the defaults"
    );
    for arg in Settings::command().get_arguments() {
        let Some(key) = arg.get_long() else { continue };
        if ["config", "print-config"].contains(&key) {
            continue;
        }
        let documented = text
            .lines()
            .any(|l| l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key} =")));
        assert!(documented, "confab.example.toml documents {key}");
    }
}

#[test]
fn a_key_the_file_does_not_know_is_named_with_its_line() {
    let path = Path::new("confab.toml");
    let cases = [
        (
            "sip-listen = \"127.0.0.1:5060\"\n\nrtp-port = \"1-2\"\n",
            "rtp-port",
            3,
        ),
        ("max-message = \"big\"\n", "max-message", 1),
        ("[[room]]\nname = \"a\"\ncolour = \"blue\"\n", "colour", 3),
        (
            "[[room]]\nname = \"a\"\nsrtp = \"sometimes\"\n",
            "sometimes",
            3,
        ),
        ("auth = \"maybe\"\n", "maybe", 1),
        (
            "[[room]]\nname = \"a\"\nfloor = \"anarchy\"\n",
            "anarchy",
            3,
        ),
    ];
    for (text, key, line) in cases {
        let e = Settings::from_toml(path, text).unwrap_err().to_string();
        assert!(e.contains(key), "{key} is named: {e}");
        assert!(e.contains(&format!("line {line}")), "line {line}: {e}");
        assert!(e.starts_with("confab.toml"), "{e}");
    }
}

fn print_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The printout is pasted into tickets and chats: the database password
/// stays out of it, and what is printed still parses.
#[test]
fn print_config_masks_the_database_password() {
    let (ok, text) = print_config(
        &[],
        &[(
            "CONFAB_DATABASE_URL",
            "postgres://confab:s3cret@db.example/confab",
        )],
    );
    assert!(ok, "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let printed = Settings::from_toml(Path::new("printed"), &text).expect("it prints TOML");
    assert_eq!(
        printed.database_url.as_deref(),
        Some("postgres://confab:********@db.example/confab")
    );
}

#[test]
fn flags_and_variables_win_over_the_file() {
    let dir = tempdir("settings-layers");
    let file = dir.join("confab.toml");
    std::fs::write(
        &file,
        "sip-listen = \"127.0.0.1:5999\"\nlog = \"debug\"\nmax-room-size = 12\nroom = [\"lobby\"]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, text) = print_config(
        &["--config", path, "--max-room-size", "30"],
        &[("CONFAB_LOG", "warn")],
    );
    assert!(ok, "{text}");
    let printed = Settings::from_toml(Path::new("printed"), &text).expect("it prints TOML");
    assert_eq!(
        printed.sip_listen,
        Some("127.0.0.1:5999".parse().unwrap()),
        "from the file"
    );
    assert_eq!(printed.log.as_deref(), Some("warn"), "the variable wins");
    assert_eq!(printed.max_room_size, Some(30), "the flag wins");
    assert_eq!(printed.rooms.unwrap()[0].name, "lobby");
    assert_eq!(printed.t1_ms, Some(500), "a default");
    // The file given by variable; a bad file stops the start with its line.
    std::fs::write(
        &file,
        "sip-listen = \"127.0.0.1:5999\"\nsip-lisen = \"x\"\n",
    )
    .unwrap();
    let (ok, text) = print_config(&[], &[("CONFAB_CONFIG", path)]);
    assert!(!ok);
    assert!(
        text.contains("sip-lisen") && text.contains("line 2"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The room's subject through the API; None when there is no such room.
async fn subject(g: &mut Client, admin: &str, room: &str) -> Option<String> {
    g.get_conference(auth(pb::GetConferenceRequest { name: room.into() }, admin))
        .await
        .ok()
        .map(|r| r.into_inner().subject)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_what_can_change_live_and_logs_what_changed() {
    let dir = tempdir("settings-hup");
    let (sip, grpc) = (free_port(), free_port());
    let file = dir.join("confab.toml");
    let write = |extra: &str| {
        std::fs::write(
            &file,
            format!(
                "sip-listen = \"127.0.0.1:{sip}\"\ngrpc-listen = \"127.0.0.1:{grpc}\"\n\
                 data-dir = \"{}\"\nrtp-ports = \"46000-46098\"\n{extra}",
                dir.join("data").display()
            ),
        )
        .unwrap()
    };
    write("rate-per-source = 2000.0\n[[room]]\nname = \"alpha\"\nsubject = \"First\"\n");
    let run = Logged::start(&[OsStr::new("--config"), file.as_os_str()]);
    let read_until = |until: &str| run.log_until(until, Duration::from_secs(10));
    let started = read_until("confab listening");
    assert!(started.contains("static room declared"), "{started}");
    let admin = std::fs::read_to_string(dir.join("data/admin.token")).unwrap();
    let admin = admin.trim();
    let mut g = Client::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    assert_eq!(
        subject(&mut g, admin, "alpha").await.as_deref(),
        Some("First")
    );

    // A live rate, the log filter, a room changed and one added; and the
    // TCP switch, which waits for the next start.
    write(
        "rate-per-source = 500.0\nno-tcp = true\nlog = \"info,focus=debug\"\n\
         [[room]]\nname = \"alpha\"\nsubject = \"Second\"\n[[room]]\nname = \"beta\"\n",
    );
    run.signal("-HUP");
    let log = read_until("settings applied");
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).unwrap_or("");
    assert!(
        line("key=\"rate-per-source\"").contains("setting changed"),
        "{log}"
    );
    assert!(
        line("key=\"rate-per-source\"").contains("new=500.0"),
        "{log}"
    );
    assert!(line("key=\"no-tcp\"").contains("next start"), "{log}");
    assert!(line("key=\"log\"").contains("setting changed"), "{log}");
    assert!(line("room=alpha").contains("static room changed"), "{log}");
    assert!(line("room=beta").contains("static room declared"), "{log}");
    assert_eq!(
        subject(&mut g, admin, "alpha").await.as_deref(),
        Some("Second")
    );
    assert_eq!(subject(&mut g, admin, "beta").await.as_deref(), Some(""));

    // A room gone from the file is deleted; nothing else changed.
    write(
        "rate-per-source = 500.0\nno-tcp = true\nlog = \"info,focus=debug\"\nroom = [\"beta\"]\n",
    );
    run.signal("-HUP");
    let log = read_until("settings applied");
    assert!(line_in(&log, "room=alpha").contains("deleted"), "{log}");
    assert!(!log.contains("key=\"rate-per-source\""), "{log}");
    assert_eq!(subject(&mut g, admin, "alpha").await, None);
    assert!(subject(&mut g, admin, "beta").await.is_some());

    // A broken file changes nothing and the server goes on.
    write("rate-per-sauce = 1\n");
    run.signal("-HUP");
    let log = read_until("nothing changed");
    assert!(log.contains("rate-per-sauce"), "{log}");
    assert!(subject(&mut g, admin, "beta").await.is_some());

    drop(run);
    let _ = std::fs::remove_dir_all(&dir);
}

fn line_in<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines().find(|l| l.contains(needle)).unwrap_or("")
}
