//! The `confabctl` executable itself: help on stdout, and a clear message
//! with a failing exit status when the server cannot be reached.

use std::process::Command;

#[test]
fn help_succeeds_and_an_unreachable_server_fails_with_a_message() {
    let exe = env!("CARGO_BIN_EXE_confabctl");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("watch") && text.contains("--json"), "{text}");

    // Port 9 (discard) on loopback: nothing listens there.
    let down = Command::new(exe)
        .args(["--server", "http://127.0.0.1:9", "--token", "x", "rooms"])
        .output()
        .unwrap();
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");

    let bad = Command::new(exe)
        .args(["mute", "only-a-room"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("WHO"));
}
