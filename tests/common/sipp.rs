//! SIPp runs for the interop tests: a scenario of tests/sipp, once.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};

use crate::common::free_port;

/// Starts SIPp running `scenario` once against `to`, calling `room`, its
/// screen and logs in `dir`.
pub fn run(dir: &Path, to: SocketAddr, scenario: &str, room: &str, extra: &[&str]) -> Child {
    let out = std::fs::File::create(dir.join(format!("{scenario}.out"))).unwrap();
    Command::new("timeout")
        .arg("130")
        .arg("sipp")
        .arg(to.to_string())
        .arg("-sf")
        .arg(format!(
            "{}/tests/sipp/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(["-s", room, "-i", "127.0.0.1", "-p", "0", "-m", "1"])
        .args(["-mi", "127.0.0.1", "-mp", &free_port().to_string()])
        .args(["-nostdin", "-trace_err", "-trace_logs"])
        .args(extra)
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start sipp")
}

/// What a finished SIPp left for `scenario`: its screen and its error and log files.
pub fn report(dir: &Path, scenario: &str) -> String {
    let mut text = std::fs::read_to_string(dir.join(format!("{scenario}.out"))).unwrap_or_default();
    let stem = scenario.trim_end_matches(".xml");
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(stem) && (name.ends_with("_errors.log") || name.ends_with("_logs.log"))
        {
            text.push_str(&format!("\n--- {name}\n"));
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}
