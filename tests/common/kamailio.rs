//! A Kamailio process for the interop tests, on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, options, UdpClient};

/// A Kamailio process, stopped on drop.
pub struct Kamailio {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Kamailio {
    /// The repo's test proxy (tests/kamailio/proxy.cfg) dispatching rooms
    /// to `confab`, with `-A` defines (`WITH_PATH`: confab is the registrar).
    pub fn proxy(confab: SocketAddr, dir: &Path, defines: &[&str]) -> Self {
        let port = free_port();
        let dir = dir.join("kamailio");
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("dispatcher.list");
        std::fs::write(&list, format!("1 sip:{confab}\n")).unwrap();
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/kamailio/proxy.cfg"
        ))
        .unwrap();
        let cfg = dir.join("proxy.cfg");
        std::fs::write(
            &cfg,
            template
                .replace("@PROXY_PORT@", &port.to_string())
                .replace("@DISPATCHER_LIST@", &list.display().to_string()),
        )
        .unwrap();
        Self::run(
            &cfg,
            port,
            dir,
            defines.iter().map(|d| d.to_string()).collect(),
        )
    }

    /// The repo's cluster config (deploy/kamailio/cluster.cfg) in front of
    /// `nodes`, as an operator would run it.
    pub fn cluster(nodes: &[SocketAddr], dir: &Path) -> Self {
        let port = free_port();
        let dir = dir.join("kamailio");
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("nodes.list");
        let lines: String = nodes.iter().map(|n| format!("1 sip:{n}\n")).collect();
        std::fs::write(&list, lines).unwrap();
        let cfg = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/kamailio/cluster.cfg"
        ));
        let defines = vec![
            format!("LISTEN=udp:127.0.0.1:{port}"),
            format!("ALIAS=127.0.0.1:{port}"),
            format!("NODES=\"{}\"", list.display()),
        ];
        Self::run(&cfg, port, dir, defines)
    }

    fn run(cfg: &Path, port: u16, dir: PathBuf, defines: Vec<String>) -> Self {
        let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
        let child = Command::new("timeout")
            .arg("150")
            .arg("kamailio")
            .arg("-f")
            .arg(cfg)
            .args(defines.iter().flat_map(|d| ["-A", d.as_str()]))
            // One UDP worker: messages leave in the order they came (with two,
            // a NOTIFY may overtake the 200 of its SUBSCRIBE, and SIPp scenarios
            // cannot take that). The -n flag wins over the config's `children`.
            .args(["-DD", "-E", "-n", "1", "-Y"])
            .arg(&dir)
            .arg("-w")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kamailio");
        let k = Self { child, port, dir };
        // Ready when it answers an OPTIONS (relayed to confab, or its own reply).
        let probe = UdpClient::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let to = k.addr();
        loop {
            probe.send(&options(&probe, to, "kprobe"), to);
            if probe.recv_timeout(Duration::from_millis(300)).is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not start: {}",
                k.log()
            );
        }
        k
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it on to Kamailio's main
        // process, which ends its children: a SIGKILL would stop `timeout`
        // alone and leave every Kamailio process running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
