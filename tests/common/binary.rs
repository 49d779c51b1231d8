//! The `confab` binary run by a test, its log read line by line: for what
//! only the process shows (signals, exit status, settings files).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::Killed;

/// A running `confab`, killed when dropped.
pub struct Logged {
    child: Killed,
    lines: mpsc::Receiver<String>,
}

impl Logged {
    /// Starts the binary with `args`, its log (RUST_LOG unset) read here.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(args)
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
        Self {
            child: Killed(child),
            lines,
        }
    }

    /// Log lines until one contains `needle` (or `t` passes), all of them.
    pub fn log_until(&self, needle: &str, t: Duration) -> String {
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

    /// Sends a signal (`-TERM`, `-HUP`).
    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.0.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit: its status and when.
    pub fn exit(&mut self, t: Duration) -> Option<(ExitStatus, Instant)> {
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
